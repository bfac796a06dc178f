/* helvino-admin: manage organizations and inspect data by talking to the
 * store over ZeroMQ. Prints each reply body as one line of JSON. */
#include "hv_config.h"
#include "hv_envelope.h"
#include "hv_json.h"
#include "hv_msgpack.h"
#include "hv_store_call.h"
#include "hv_version.h"
#include "hv_zmq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_REJECTED 1 /* the store replied with an error status */
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3 /* no reply within the timeout */

static struct {
    const char *store_endpoint;
    long timeout_ms;
} global;

static hv_setting global_settings[] = {
    {"store-endpoint", "HELVINO_STORE_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5555",
     "ZeroMQ endpoint of the store's request socket.", &global.store_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"timeout-ms", "HELVINO_ADMIN_TIMEOUT_MS", HV_SETTING_INT, "5000", "How long to wait for the store's reply, in milliseconds.",
     &global.timeout_ms, 1, 3600000, HV_SHOW_PLAIN},
};

/* Arguments of the subcommands; each subcommand declares the ones it takes. */
static struct {
    const char *id;
    const char *key;
    const char *name;
    const char *org;
    const char *conversation;
    const char *role;
    const char *content;
    long limit;
    const char *cursor;
} args;

#define ARG(flag, target, help) {flag, NULL, HV_SETTING_STRING, "", help, &args.target, 0, 0, HV_SHOW_PLAIN}

static hv_setting org_create_settings[] = {
    ARG("id", id, "Org id: 1 to 64 characters from A-Z a-z 0-9 _ -."),
    {"key", NULL, HV_SETTING_STRING, "", "The org's key (stored hashed).", &args.key, 0, 0, HV_SHOW_HIDDEN},
    ARG("name", name, "Display name."),
};
static hv_setting org_only_settings[] = {ARG("org", org, "Org id.")};
static hv_setting conversation_list_settings[] = {
    ARG("org", org, "Org id."),
    {"limit", NULL, HV_SETTING_INT, "50", "Page size.", &args.limit, 1, 200, HV_SHOW_PLAIN},
    ARG("cursor", cursor, "Cursor from the previous page's nextCursor."),
};
static hv_setting conversation_show_settings[] = {ARG("org", org, "Org id."), ARG("id", id, "Conversation id.")};
static hv_setting message_add_settings[] = {
    ARG("org", org, "Org id."),
    ARG("conversation", conversation, "Conversation id."),
    ARG("role", role, "user or assistant."),
    ARG("content", content, "Message text."),
};

typedef struct {
    const char *words; /* "org create" */
    const char *op;
    hv_setting *settings;
    size_t setting_count;
    const char *required; /* space-separated flags that must be non-empty */
    void (*pack_args)(msgpack_packer *packer);
} command;

static void pack_nothing(msgpack_packer *packer)
{
    msgpack_pack_map(packer, 0);
}

static void pack_org_create(msgpack_packer *packer)
{
    msgpack_pack_map(packer, 3);
    hv_mp_pack_entry_str(packer, "id", args.id);
    hv_mp_pack_entry_str(packer, "key", args.key);
    hv_mp_pack_entry_str(packer, "name", args.name);
}

static void pack_conversation_list(msgpack_packer *packer)
{
    msgpack_pack_map(packer, args.cursor[0] ? 2 : 1);
    hv_mp_pack_cstr(packer, "limit");
    msgpack_pack_long(packer, args.limit);
    if (args.cursor[0])
        hv_mp_pack_entry_str(packer, "cursor", args.cursor);
}

static void pack_conversation_show(msgpack_packer *packer)
{
    msgpack_pack_map(packer, 1);
    hv_mp_pack_entry_str(packer, "id", args.id);
}

static void pack_message_add(msgpack_packer *packer)
{
    msgpack_pack_map(packer, 3);
    hv_mp_pack_entry_str(packer, "conversationId", args.conversation);
    hv_mp_pack_entry_str(packer, "role", args.role);
    hv_mp_pack_entry_str(packer, "content", args.content);
}

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static const command commands[] = {
    {"health", "health", NULL, 0, "", pack_nothing},
    {"org list", "org.list", NULL, 0, "", pack_nothing},
    {"org create", "org.create", org_create_settings, COUNT(org_create_settings), "id key name", pack_org_create},
    {"conversation create", "conversation.create", org_only_settings, COUNT(org_only_settings), "org", pack_nothing},
    {"conversation list", "conversation.list", conversation_list_settings, COUNT(conversation_list_settings), "org",
     pack_conversation_list},
    {"conversation show", "conversation.get", conversation_show_settings, COUNT(conversation_show_settings), "org id",
     pack_conversation_show},
    {"message add", "message.add", message_add_settings, COUNT(message_add_settings), "org conversation role content",
     pack_message_add},
};

/* Returns whether `flag` is among the command's required flags. */
static bool is_required(const command *chosen, const char *flag)
{
    size_t len = strlen(flag);
    for (const char *word = chosen->required; *word;) {
        size_t word_len = strcspn(word, " ");
        if (word_len == len && strncmp(word, flag, len) == 0)
            return true;
        word += word_len + (word[word_len] == ' ');
    }
    return false;
}

static void print_usage(void)
{
    hv_config_print_usage(global_settings, COUNT(global_settings), "helvino-admin", "[OPTIONS] COMMAND [ARGUMENTS]");
    printf("\nCommands:\n");
    for (size_t i = 0; i < COUNT(commands); i++) {
        printf("  %s", commands[i].words);
        for (size_t j = 0; j < commands[i].setting_count; j++) {
            /* Optional flags are shown in brackets. */
            const char *flag = commands[i].settings[j].flag;
            bool required = is_required(&commands[i], flag);
            printf(required ? " --%s VALUE" : " [--%s VALUE]", flag);
        }
        printf("\n");
    }
    printf("\nEach command prints the store's reply as one line of JSON.\n"
           "Exit status: 0 success, 1 the store returned an error, 2 bad usage, 3 no reply in time.\n");
}

/* Finds the command named by the words at argv[first...]; sets *consumed. */
static const command *find_command(int argc, char **argv, int first, int *consumed)
{
    for (size_t i = 0; i < COUNT(commands); i++) {
        char words[64];
        snprintf(words, sizeof(words), "%s", commands[i].words);
        int position = first;
        bool match = true;
        for (char *word = strtok(words, " "); word; word = strtok(NULL, " ")) {
            if (position >= argc || strcmp(argv[position], word) != 0) {
                match = false;
                break;
            }
            position++;
        }
        if (match) {
            *consumed = position - first;
            return &commands[i];
        }
    }
    return NULL;
}

static int check_required(const command *chosen)
{
    char required[128];
    snprintf(required, sizeof(required), "%s", chosen->required);
    for (char *flag = strtok(required, " "); flag; flag = strtok(NULL, " ")) {
        for (size_t i = 0; i < chosen->setting_count; i++) {
            const hv_setting *setting = &chosen->settings[i];
            if (strcmp(setting->flag, flag) == 0 && setting->type == HV_SETTING_STRING &&
                **(const char **)setting->target == '\0') {
                fprintf(stderr, "helvino-admin: %s requires --%s\n", chosen->words, flag);
                return -1;
            }
        }
    }
    return 0;
}

static int print_reply(const hv_reply *reply)
{
    json_t *body = hv_json_from_msgpack(reply->body);
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);

    if (reply->status >= 300) {
        const char *message = "(unreadable)";
        const msgpack_object *error = hv_mp_map_get(reply->body, "error");
        char buffer[512];
        if (error && error->type == MSGPACK_OBJECT_STR) {
            snprintf(buffer, sizeof(buffer), "%.*s", (int)error->via.str.size, error->via.str.ptr);
            message = buffer;
        }
        fprintf(stderr, "helvino-admin: the store returned %d: %s\n", reply->status, message);
        free(text);
        return EXIT_REJECTED;
    }
    printf("%s\n", text ? text : "null");
    free(text);
    return 0;
}

static uint64_t new_request_id(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static int call_store(const command *chosen)
{
    void *context = zmq_ctx_new();
    void *dealer = hv_store_connect(context, global.store_endpoint);
    if (!dealer) {
        fprintf(stderr, "helvino-admin: invalid store endpoint \"%s\": %s\n", global.store_endpoint, zmq_strerror(errno));
        zmq_ctx_term(context);
        return EXIT_USAGE;
    }

    msgpack_sbuffer request;
    msgpack_sbuffer_init(&request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &request, msgpack_sbuffer_write);
    uint64_t id = new_request_id();
    hv_request_pack_begin(&packer, id, chosen->op, args.org && args.org[0] ? args.org : NULL, NULL);
    chosen->pack_args(&packer);

    hv_call_result result;
    int status;
    if (hv_store_call(dealer, &request, id, (int)global.timeout_ms, &result) == 0) {
        status = print_reply(&result.reply);
        hv_call_result_destroy(&result);
    } else if (errno == ETIMEDOUT) {
        fprintf(stderr, "helvino-admin: no reply from the store within %ld ms at %s; is helvino-store running?\n",
                global.timeout_ms, global.store_endpoint);
        status = EXIT_UNREACHABLE;
    } else {
        fprintf(stderr, "helvino-admin: request failed: %s\n", zmq_strerror(errno));
        status = EXIT_UNREACHABLE;
    }

    msgpack_sbuffer_destroy(&request);
    zmq_close(dealer);
    zmq_ctx_term(context);
    return status;
}

int main(int argc, char **argv)
{
    char error[256];
    int first = 0;
    int loaded = hv_config_load(global_settings, COUNT(global_settings), argc, argv, &first, error, sizeof(error));
    if (loaded == HV_CONFIG_HELP) {
        print_usage();
        return 0;
    }
    if (loaded == HV_CONFIG_ERROR) {
        fprintf(stderr, "helvino-admin: %s\n", error);
        return EXIT_USAGE;
    }

    int consumed = 0;
    const command *chosen = find_command(argc, argv, first, &consumed);
    if (!chosen) {
        if (first < argc)
            fprintf(stderr, "helvino-admin: unknown command \"%s\"; see --help\n", argv[first]);
        else
            fprintf(stderr, "helvino-admin: missing command; see --help\n");
        return EXIT_USAGE;
    }

    /* The subcommand's own flags follow its words; hv_config_load skips its
     * argv[0], so hand it the last command word in that place. */
    int sub_argc = argc - first - consumed + 1;
    char **sub_argv = argv + first + consumed - 1;
    if (chosen->setting_count > 0 || sub_argc > 1) {
        loaded = hv_config_load(chosen->settings, chosen->setting_count, sub_argc, sub_argv, NULL, error, sizeof(error));
        if (loaded == HV_CONFIG_HELP) {
            hv_config_print_usage(chosen->settings, chosen->setting_count, "helvino-admin", chosen->words);
            return 0;
        }
        if (loaded == HV_CONFIG_ERROR) {
            fprintf(stderr, "helvino-admin %s: %s\n", chosen->words, error);
            return EXIT_USAGE;
        }
    }
    if (check_required(chosen) != 0)
        return EXIT_USAGE;

    return call_store(chosen);
}
