/* helvino-admin and helvino-trace run as an operator runs them: as child
 * processes against a real helvino-store, checked by their exit status,
 * their standard output and their standard error. */
#include "harness.h"
#include "hv_event.h"
#include "hv_msgpack.h"
#include "hv_time.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ADMIN_BIN_VARIABLE "HELVINO_ADMIN_BIN"
#define TRACE_BIN_VARIABLE "HELVINO_TRACE_BIN"

/* How long a tool that should exit by itself may run. Generous, because
 * the debug build runs the tools under AddressSanitizer on a shared
 * machine. */
#define EXIT_TIMEOUT_MS 20000

/* How long helvino-trace may take to subscribe, and then to print an event
 * that was published after it subscribed. */
#define SUBSCRIBE_TIMEOUT_MS 10000
#define EVENT_TIMEOUT_MS 10000

#define MAX_RUNNING 8
#define MAX_KEPT 128

/* A tool started in the background, writing to two files in the store's
 * temporary folder. */
typedef struct {
    pid_t pid;
    char stdout_path[256];
    char stderr_path[256];
} tool_process;

/* What a tool printed and how it ended. */
typedef struct {
    int exit_status; /* the exit code, or 128 + the number of the signal that ended it */
    int64_t elapsed_ms;
    char *stdout_text;
    char *stderr_text;
} tool_result;

static store_fixture store;

/* "HELVINO_STORE_ENDPOINT=ipc://..." and its events twin, set in every
 * tool's environment as an operator would export them in a shell. */
static char store_endpoint_variable[256];
static char events_endpoint_variable[256];

/* Children still running, killed by the suite's fini even when an
 * assertion ended the test early. */
static pid_t running[MAX_RUNNING];

/* Memory and JSON documents that live until the end of the test, so that
 * an assertion failure in the middle of a test leaks nothing. */
static void *kept_memory[MAX_KEPT];
static size_t kept_memory_count;
static json_t *kept_documents[MAX_KEPT];
static size_t kept_document_count;

static unsigned next_file_number;

/* --- Fixture ------------------------------------------------------------ */

static void start_store(void)
{
    store_start(&store, NULL);
    snprintf(store_endpoint_variable, sizeof(store_endpoint_variable), "HELVINO_STORE_ENDPOINT=%s", store.store_endpoint);
    snprintf(events_endpoint_variable, sizeof(events_endpoint_variable), "HELVINO_EVENTS_ENDPOINT=%s", store.events_endpoint);
}

static void kill_running_tools(void)
{
    for (size_t i = 0; i < MAX_RUNNING; i++) {
        if (running[i] <= 0)
            continue;
        kill(running[i], SIGKILL);
        waitpid(running[i], NULL, 0);
        running[i] = 0;
    }
}

static void release_kept(void)
{
    for (size_t i = 0; i < kept_document_count; i++)
        json_decref(kept_documents[i]);
    kept_document_count = 0;
    for (size_t i = 0; i < kept_memory_count; i++)
        free(kept_memory[i]);
    kept_memory_count = 0;
}

static void stop_store(void)
{
    kill_running_tools();
    release_kept();
    cr_expect_eq(store_stop(&store), 0, "helvino-store did not exit cleanly on SIGTERM");
}

TestSuite(admin, .init = start_store, .fini = stop_store, .timeout = 120);
TestSuite(trace, .init = start_store, .fini = stop_store, .timeout = 120);

static void *keep(void *memory)
{
    cr_assert_lt(kept_memory_count, MAX_KEPT, "too many allocations in one test; raise MAX_KEPT");
    kept_memory[kept_memory_count++] = memory;
    return memory;
}

static json_t *keep_document(json_t *document)
{
    cr_assert_lt(kept_document_count, MAX_KEPT, "too many JSON documents in one test; raise MAX_KEPT");
    kept_documents[kept_document_count++] = document;
    return document;
}

static void track_running(pid_t pid)
{
    for (size_t i = 0; i < MAX_RUNNING; i++) {
        if (running[i] == 0) {
            running[i] = pid;
            return;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_fatal("more than %d tools running at once; raise MAX_RUNNING", MAX_RUNNING);
}

static void untrack_running(pid_t pid)
{
    for (size_t i = 0; i < MAX_RUNNING; i++)
        if (running[i] == pid)
            running[i] = 0;
}

/* --- Child processes ---------------------------------------------------- */

/* Returns whether the environment entry "NAME=value" sets the variable
 * named by `other`, which may be a bare name or a whole entry too. */
static bool same_variable(const char *entry, const char *other)
{
    size_t name_length = strcspn(other, "=");
    return strncmp(entry, other, name_length) == 0 && entry[name_length] == '=';
}

/* Builds the tool's environment: the test's own, without any setting of
 * the tools that the test runner may have inherited, plus the store's
 * endpoints and `extra_env`. The caller frees the array but not the
 * strings, which it borrows. */
static char **build_environment(const char *const *extra_env)
{
    static const char *const replaced[] = {"HELVINO_STORE_ENDPOINT", "HELVINO_EVENTS_ENDPOINT", "HELVINO_ADMIN_TIMEOUT_MS"};
    size_t inherited = 0, extra = 0;
    while (environ[inherited])
        inherited++;
    while (extra_env && extra_env[extra])
        extra++;

    char **environment = calloc(inherited + extra + 3, sizeof(char *));
    cr_assert_not_null(environment);
    size_t count = 0;
    for (size_t i = 0; i < inherited; i++) {
        bool drop = false;
        for (size_t j = 0; j < sizeof(replaced) / sizeof(replaced[0]); j++)
            drop = drop || same_variable(environ[i], replaced[j]);
        for (size_t j = 0; j < extra; j++)
            drop = drop || same_variable(environ[i], extra_env[j]);
        if (!drop)
            environment[count++] = environ[i];
    }
    environment[count++] = store_endpoint_variable;
    environment[count++] = events_endpoint_variable;
    for (size_t j = 0; j < extra; j++)
        environment[count++] = (char *)extra_env[j];
    environment[count] = NULL;
    return environment;
}

static int open_output_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "failed to create %s: %s", path, strerror(errno));
    return fd;
}

/* Starts the tool named by the environment variable `binary_variable` with
 * `arguments` (NULL-terminated, without argv[0]). Its standard input is
 * /dev/null and its output goes to two new files. */
static void spawn_tool(tool_process *process, const char *binary_variable, const char *const *arguments,
                       const char *const *extra_env)
{
    const char *binary = getenv(binary_variable);
    cr_assert(binary && *binary, "%s is not set; run the integration tests through meson test", binary_variable);

    char *argv[32];
    size_t argc = 0;
    argv[argc++] = (char *)binary;
    for (const char *const *argument = arguments; *argument; argument++) {
        cr_assert_lt(argc, sizeof(argv) / sizeof(argv[0]) - 1, "too many arguments");
        argv[argc++] = (char *)*argument;
    }
    argv[argc] = NULL;

    unsigned number = next_file_number++;
    snprintf(process->stdout_path, sizeof(process->stdout_path), "%s/tool-%u.out", store.dir, number);
    snprintf(process->stderr_path, sizeof(process->stderr_path), "%s/tool-%u.err", store.dir, number);
    int stdout_fd = open_output_file(process->stdout_path);
    int stderr_fd = open_output_file(process->stderr_path);
    int stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(stdin_fd, 0, "failed to open /dev/null: %s", strerror(errno));
    char **environment = build_environment(extra_env);
    pid_t parent = getpid();

    process->pid = fork();
    if (process->pid == 0) {
        /* The child calls only async-signal-safe functions until execve,
         * because the test process runs ZeroMQ threads. The tool must not
         * outlive a test process that crashed or was killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);

        /* tests/with-postgres starts the test program in the background,
         * where bash ignores SIGINT. A tool started from an operator's shell
         * has every signal at its default action and unblocked. */
        sigset_t no_signals;
        sigemptyset(&no_signals);
        sigprocmask(SIG_SETMASK, &no_signals, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        if (dup2(stdin_fd, STDIN_FILENO) < 0 || dup2(stdout_fd, STDOUT_FILENO) < 0 || dup2(stderr_fd, STDERR_FILENO) < 0)
            _exit(126);
        execve(binary, argv, environment);
        _exit(127);
    }

    int fork_error = errno;
    free(environment);
    close(stdin_fd);
    close(stdout_fd);
    close(stderr_fd);
    cr_assert_neq(process->pid, -1, "fork failed: %s", strerror(fork_error));
    track_running(process->pid);
}

/* Waits up to `timeout_ms` for the process to exit. Returns its exit
 * status in the form of tool_result.exit_status, or -1 when it still runs. */
static int wait_for_exit(tool_process *process, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t done = waitpid(process->pid, &status, WNOHANG);
        cr_assert_neq(done, -1, "waitpid(%d) failed: %s", (int)process->pid, strerror(errno));
        if (done == process->pid) {
            untrack_running(process->pid);
            process->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (hv_time_monotonic_ms() >= deadline)
            return -1;
        struct timespec pause = {.tv_nsec = 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Returns the whole file as a NUL-terminated string that the caller frees,
 * or "" when the file does not exist. */
static char *read_file_contents(const char *path)
{
    char *text = NULL;
    size_t size = 0;
    FILE *copy = open_memstream(&text, &size);
    cr_assert_not_null(copy, "open_memstream failed: %s", strerror(errno));

    FILE *file = fopen(path, "rb");
    if (file) {
        char buffer[4096];
        size_t read;
        while ((read = fread(buffer, 1, sizeof(buffer), file)) > 0)
            fwrite(buffer, 1, read, copy);
        fclose(file);
    }
    fclose(copy);
    cr_assert_not_null(text);
    return text;
}

/* read_file_contents, with the result kept until the test ends. */
static char *read_text_file(const char *path)
{
    return keep(read_file_contents(path));
}

/* Runs a tool to its end and returns what it printed. Fails the test when
 * it runs longer than EXIT_TIMEOUT_MS. */
static const tool_result *run_tool(const char *binary_variable, const char *const *arguments, const char *const *extra_env)
{
    tool_result *result = keep(calloc(1, sizeof(*result)));
    cr_assert_not_null(result);
    const char *command = arguments[0] ? arguments[0] : "(no arguments)";
    tool_process process;
    int64_t started = hv_time_monotonic_ms();
    spawn_tool(&process, binary_variable, arguments, extra_env);

    result->exit_status = wait_for_exit(&process, EXIT_TIMEOUT_MS);
    result->elapsed_ms = hv_time_monotonic_ms() - started;
    cr_assert_neq(result->exit_status, -1, "%s %s did not exit within %d ms", binary_variable, command, EXIT_TIMEOUT_MS);

    result->stdout_text = read_text_file(process.stdout_path);
    result->stderr_text = read_text_file(process.stderr_path);
    cr_log_info("%s %s exited with %d after %lld ms; stdout: %s; stderr: %s", binary_variable, command, result->exit_status,
                (long long)result->elapsed_ms, result->stdout_text, result->stderr_text);
    return result;
}

#define ARGUMENTS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ARGUMENTS ((const char *const[]){NULL})

/* run_admin("org", "list") runs `helvino-admin org list` against the test's
 * store, and run_trace does the same for helvino-trace. */
#define run_admin(...) run_tool(ADMIN_BIN_VARIABLE, ARGUMENTS(__VA_ARGS__), NULL)
#define run_trace(...) run_tool(TRACE_BIN_VARIABLE, ARGUMENTS(__VA_ARGS__), NULL)
#define start_trace(process, ...) spawn_tool(process, TRACE_BIN_VARIABLE, ARGUMENTS(__VA_ARGS__), NULL)

/* Sends `signal_number` to a background tool and returns its exit status.
 * Fails the test when it does not exit within EXIT_TIMEOUT_MS. */
static int stop_tool(tool_process *process, int signal_number)
{
    kill(process->pid, signal_number);
    int status = wait_for_exit(process, EXIT_TIMEOUT_MS);
    cr_assert_neq(status, -1, "the tool did not exit within %d ms of %s", EXIT_TIMEOUT_MS, strsignal(signal_number));
    return status;
}

/* --- Output lines and JSON ---------------------------------------------- */

/* Returns a copy of the first complete line of `text` (without its
 * newline) that contains `needle`, kept until the test ends, or NULL. */
static char *find_line(const char *text, const char *needle)
{
    for (const char *line = text, *end; (end = strchr(line, '\n')) != NULL; line = end + 1) {
        size_t length = (size_t)(end - line);
        if (memmem(line, length, needle, strlen(needle)))
            return keep(strndup(line, length));
    }
    return NULL;
}

/* Returns the number of complete lines of `text` that contain `needle`. */
static int count_lines_containing(const char *text, const char *needle)
{
    int count = 0;
    for (const char *line = text, *end; (end = strchr(line, '\n')) != NULL; line = end + 1)
        if (memmem(line, (size_t)(end - line), needle, strlen(needle)))
            count++;
    return count;
}

static int count_lines(const char *text)
{
    int count = 0;
    for (const char *newline = strchr(text, '\n'); newline; newline = strchr(newline + 1, '\n'))
        count++;
    return count;
}

/* Waits up to `timeout_ms` until the background tool has printed a line
 * containing `needle` and returns that line, or NULL. */
static char *wait_for_line(const tool_process *process, const char *needle, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    for (;;) {
        char *output = read_file_contents(process->stdout_path);
        char *line = find_line(output, needle);
        free(output);
        if (line || hv_time_monotonic_ms() >= deadline)
            return line;
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Waits until a helvino-trace just started is subscribed, by creating
 * conversations in `org` until one of their events shows in its output.
 * ZeroMQ applies a subscription asynchronously, so the events published
 * right after the start can be lost. The trace must print `org`'s events. */
static void wait_until_subscribed(tool_process *trace, const char *org)
{
    int64_t deadline = hv_time_monotonic_ms() + SUBSCRIBE_TIMEOUT_MS;
    while (hv_time_monotonic_ms() < deadline) {
        char probe[37];
        create_conversation(&store, org, probe);
        if (wait_for_line(trace, "conversation:new", 200))
            return;

        /* A trace run with --count exits after its last event, which it may
         * have printed since the check above. WNOWAIT leaves the process
         * for wait_for_exit to reap. */
        siginfo_t exit_info = {0};
        int checked = waitid(P_PID, (id_t)trace->pid, &exit_info, WEXITED | WNOHANG | WNOWAIT);
        cr_assert_eq(checked, 0, "waitid(%d) failed: %s", (int)trace->pid, strerror(errno));
        if (exit_info.si_pid == trace->pid) {
            cr_assert_not_null(wait_for_line(trace, "conversation:new", 0), "helvino-trace exited before it printed an event: %s",
                               read_text_file(trace->stderr_path));
            return;
        }
    }
    cr_fatal("helvino-trace printed none of %s's events within %d ms", org, SUBSCRIBE_TIMEOUT_MS);
}

/* Parses `text` as one JSON value, kept until the test ends. */
static json_t *parse_json_text(const char *text)
{
    json_error_t error;
    json_t *document = json_loads(text, 0, &error);
    cr_assert_not_null(document, "invalid JSON (%s, column %d): %s", error.text, error.column, text);
    return keep_document(document);
}

/* Parses a tool's whole standard output, which must be one line of JSON. */
static json_t *parse_json_line(const char *output)
{
    size_t length = strlen(output);
    cr_assert(length > 0 && output[length - 1] == '\n', "the output does not end with a newline: \"%s\"", output);
    cr_assert_eq(count_lines(output), 1, "the output is not one line: \"%s\"", output);
    return parse_json_text(keep(strndup(output, length - 1)));
}

/* Fails the test unless `value`, which `name` describes in the message,
 * has the JSON type `type`. */
static void assert_json_type(const json_t *value, json_type type, const char *name)
{
    cr_assert(not(zero(ptr, (void *)value)), "%s is missing", name);
    cr_assert(eq(int, json_typeof(value), type), "%s has the wrong JSON type", name);
}

static const json_t *member(const json_t *object, const char *key)
{
    assert_json_type(object, JSON_OBJECT, "the value that should contain a member");
    const json_t *value = json_object_get(object, key);
    cr_assert_not_null(value, "the JSON object has no \"%s\"", key);
    return value;
}

/* Returns the string member `key` of `object`, or fails the test when it
 * is missing or not a string. The result is not const because Criterion's
 * str matcher takes a char pointer. */
static char *string_member(const json_t *object, const char *key)
{
    const json_t *value = member(object, key);
    assert_json_type(value, JSON_STRING, key);
    return (char *)json_string_value(value);
}

static long long integer_member(const json_t *object, const char *key)
{
    const json_t *value = member(object, key);
    assert_json_type(value, JSON_INTEGER, key);
    return json_integer_value(value);
}

/* Returns the element of `organizations` whose "id" is `org`, or NULL. */
static const json_t *find_org(const json_t *organizations, const char *org)
{
    assert_json_type(organizations, JSON_ARRAY, "organizations");
    size_t index;
    const json_t *element;
    json_array_foreach(organizations, index, element)
    {
        if (strcmp(string_member(element, "id"), org) == 0)
            return element;
    }
    return NULL;
}

/* An org id no other test uses, as the tests share one database. */
static void make_unique_org_id(const char *label, char *out, size_t size)
{
    static unsigned sequence;
    snprintf(out, size, "%s_%d_%lld_%u", label, (int)getpid(), (long long)(hv_time_now_ms() % 1000000), sequence++);
}

/* Creates a conversation in `org` with helvino-admin and returns its id. */
static void admin_create_conversation(const char *org, char id_out[37])
{
    const tool_result *create_result = run_admin("conversation", "create", "--org", org);
    cr_assert(eq(int, create_result->exit_status, 0), "stderr: %s", create_result->stderr_text);
    const char *id = string_member(parse_json_line(create_result->stdout_text), "id");
    cr_assert_eq(strlen(id), 36, "\"%s\" is not a UUID", id);
    memcpy(id_out, id, 37);
}

/* Adds a message with helvino-admin and returns the parsed reply. */
static const json_t *admin_add_message(const char *org, const char *conversation, const char *content)
{
    const tool_result *add_result =
        run_admin("message", "add", "--org", org, "--conversation", conversation, "--role", "user", "--content", content);
    cr_assert(eq(int, add_result->exit_status, 0), "stderr: %s", add_result->stderr_text);
    cr_assert(eq(str, add_result->stderr_text, ""));
    return parse_json_line(add_result->stdout_text);
}

/* --- helvino-admin: organizations ----------------------------------------- */

Test(admin, org_list_shows_demo_org)
{
    const tool_result *list_result = run_admin("org", "list");
    cr_assert(eq(int, list_result->exit_status, 0), "stderr: %s", list_result->stderr_text);
    cr_assert(eq(str, list_result->stderr_text, ""));

    const json_t *demo = find_org(member(parse_json_line(list_result->stdout_text), "organizations"), "org_1");
    cr_assert_not_null(demo, "org_1 is not listed: %s", list_result->stdout_text);
    cr_assert(eq(str, string_member(demo, "name"), "Demo Org"));
}

Test(admin, created_org_is_listed)
{
    char org[96], key[128];
    make_unique_org_id("acme", org, sizeof(org));
    snprintf(key, sizeof(key), "secret-%s", org);

    const tool_result *create_result = run_admin("org", "create", "--id", org, "--key", key, "--name", "Acme Corp");
    cr_assert(eq(int, create_result->exit_status, 0), "stderr: %s", create_result->stderr_text);
    cr_assert(eq(str, create_result->stderr_text, ""));
    const json_t *reply = parse_json_line(create_result->stdout_text);
    cr_assert(eq(str, string_member(reply, "id"), org));
    cr_assert(eq(str, string_member(reply, "name"), "Acme Corp"));
    cr_assert_null(strstr(create_result->stdout_text, key), "the reply shows the org's key: %s", create_result->stdout_text);

    const tool_result *list_result = run_admin("org", "list");
    cr_assert(eq(int, list_result->exit_status, 0), "stderr: %s", list_result->stderr_text);
    const json_t *acme = find_org(member(parse_json_line(list_result->stdout_text), "organizations"), org);
    cr_assert_not_null(acme, "%s is not listed: %s", org, list_result->stdout_text);
    cr_assert(eq(str, string_member(acme, "name"), "Acme Corp"));
}

Test(admin, duplicate_org_exits_1_with_409)
{
    char org[96], other_org[96], key[128];
    make_unique_org_id("dup", org, sizeof(org));
    make_unique_org_id("dup_key", other_org, sizeof(other_org));
    snprintf(key, sizeof(key), "secret-%s", org);

    const tool_result *first = run_admin("org", "create", "--id", org, "--key", key, "--name", "Acme Corp");
    cr_assert(eq(int, first->exit_status, 0), "stderr: %s", first->stderr_text);

    /* The same id, then the same key under another id. */
    const tool_result *same_id = run_admin("org", "create", "--id", org, "--key", "another-key", "--name", "Acme Corp");
    cr_assert(eq(int, same_id->exit_status, 1));
    cr_assert(eq(str, same_id->stdout_text, ""));
    cr_assert_not_null(strstr(same_id->stderr_text, "409"), "stderr: %s", same_id->stderr_text);
    cr_assert_not_null(strstr(same_id->stderr_text, "already exists"), "stderr: %s", same_id->stderr_text);

    const tool_result *same_key = run_admin("org", "create", "--id", other_org, "--key", key, "--name", "Acme Corp");
    cr_assert(eq(int, same_key->exit_status, 1));
    cr_assert(eq(str, same_key->stdout_text, ""));
    cr_assert_not_null(strstr(same_key->stderr_text, "409"), "stderr: %s", same_key->stderr_text);
}

/* --- helvino-admin: conversations and messages ---------------------------- */

Test(admin, message_content_round_trips_exactly)
{
    /* Characters that JSON escapes or encodes specially, several bytes of
     * UTF-8, and a value that looks like a flag. */
    const char *contents[] = {
        "h\xc3\xa9llo \"w\xc3\xb6rld\" \\ \xf0\x9f\x99\x82",
        "line one\nline two\ttabbed\r",
        "  spaces at both ends  ",
        "--content",
        "</script>&amp;\x01",
    };
    const size_t content_count = sizeof(contents) / sizeof(contents[0]);
    char conversation[37];
    admin_create_conversation("org_1", conversation);

    const char *message_ids[sizeof(contents) / sizeof(contents[0])];
    for (size_t i = 0; i < content_count; i++) {
        const json_t *message = admin_add_message("org_1", conversation, contents[i]);
        cr_assert(eq(str, string_member(message, "content"), (char *)contents[i]), "message %zu", i);
        cr_assert(eq(str, string_member(message, "conversationId"), conversation));
        cr_assert(eq(str, string_member(message, "role"), "user"));
        message_ids[i] = string_member(message, "id");
    }

    const tool_result *show_result = run_admin("conversation", "show", "--org", "org_1", "--id", conversation);
    cr_assert(eq(int, show_result->exit_status, 0), "stderr: %s", show_result->stderr_text);
    cr_assert(eq(str, show_result->stderr_text, ""));
    const json_t *conversation_reply = parse_json_line(show_result->stdout_text);
    cr_assert(eq(str, string_member(conversation_reply, "id"), conversation));
    cr_assert(eq(i64, integer_member(conversation_reply, "messageCount"), (int64_t)content_count));

    /* Oldest first, so in the order they were added. */
    const json_t *messages = member(conversation_reply, "messages");
    assert_json_type(messages, JSON_ARRAY, "messages");
    cr_assert(eq(sz, json_array_size(messages), content_count));
    for (size_t i = 0; i < content_count; i++) {
        const json_t *message = json_array_get(messages, i);
        cr_assert(eq(str, string_member(message, "id"), (char *)message_ids[i]), "message %zu", i);
        cr_assert(eq(str, string_member(message, "content"), (char *)contents[i]), "message %zu", i);
    }
}

Test(admin, conversation_list_pages_newest_first)
{
    char org[80], older[37], newer[37];
    create_unique_org(&store, "admin_list", org, sizeof(org));
    admin_create_conversation(org, older);
    admin_create_conversation(org, newer);

    const tool_result *whole_list = run_admin("conversation", "list", "--org", org);
    cr_assert(eq(int, whole_list->exit_status, 0), "stderr: %s", whole_list->stderr_text);
    const json_t *whole_reply = parse_json_line(whole_list->stdout_text);
    const json_t *conversations = member(whole_reply, "conversations");
    assert_json_type(conversations, JSON_ARRAY, "conversations");
    cr_assert(eq(sz, json_array_size(conversations), 2));
    cr_assert(eq(str, string_member(json_array_get(conversations, 0), "id"), newer));
    cr_assert(eq(str, string_member(json_array_get(conversations, 1), "id"), older));
    assert_json_type(member(whole_reply, "nextCursor"), JSON_NULL, "nextCursor of the last page");

    /* One per page: the cursor of the first page leads to the second. */
    const tool_result *first_page = run_admin("conversation", "list", "--org", org, "--limit", "1");
    cr_assert(eq(int, first_page->exit_status, 0), "stderr: %s", first_page->stderr_text);
    const json_t *first_reply = parse_json_line(first_page->stdout_text);
    conversations = member(first_reply, "conversations");
    assert_json_type(conversations, JSON_ARRAY, "conversations");
    cr_assert(eq(sz, json_array_size(conversations), 1));
    cr_assert(eq(str, string_member(json_array_get(conversations, 0), "id"), newer));
    const char *cursor = string_member(first_reply, "nextCursor");

    const tool_result *second_page = run_admin("conversation", "list", "--org", org, "--limit", "1", "--cursor", cursor);
    cr_assert(eq(int, second_page->exit_status, 0), "stderr: %s", second_page->stderr_text);
    conversations = member(parse_json_line(second_page->stdout_text), "conversations");
    assert_json_type(conversations, JSON_ARRAY, "conversations");
    cr_assert(eq(sz, json_array_size(conversations), 1));
    cr_assert(eq(str, string_member(json_array_get(conversations, 0), "id"), older));
}

Test(admin, other_orgs_conversation_exits_1_with_404)
{
    char org[80], conversation[37];
    create_unique_org(&store, "admin_other", org, sizeof(org));
    admin_create_conversation(org, conversation);

    const tool_result *show_result = run_admin("conversation", "show", "--org", "org_1", "--id", conversation);
    cr_assert(eq(int, show_result->exit_status, 1));
    cr_assert(eq(str, show_result->stdout_text, ""));
    cr_assert_not_null(strstr(show_result->stderr_text, "404"), "stderr: %s", show_result->stderr_text);
}

/* --- helvino-admin: usage, help and an unreachable store ------------------ */

Test(admin, usage_errors_exit_2)
{
    static const struct {
        const char *const arguments[8];
        const char *expected_message;
    } cases[] = {
        {{"frobnicate"}, "unknown command"},
        {{"org"}, "unknown command"},
        {{NULL}, "missing command"},
        {{"org", "create", "--id", "x"}, "--key"},
        {{"org", "create", "--id", "x", "--key", "k"}, "--name"},
        {{"message", "add", "--org", "org_1"}, "--conversation"},
        {{"org", "list", "extra"}, "extra"},
        {{"org", "create", "--colour", "red"}, "--colour"},
        {{"--timeout-ms", "abc", "health"}, "--timeout-ms"},
        {{"--timeout-ms", "0", "health"}, "--timeout-ms"},
        {{"--timeout-ms", "-5", "health"}, "--timeout-ms"},
        {{"--timeout-ms"}, "--timeout-ms"},
        {{"conversation", "list", "--org", "org_1", "--limit", "0"}, "--limit"},
        {{"--store-endpoint", "not-an-endpoint", "health"}, "not-an-endpoint"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const tool_result *result = run_tool(ADMIN_BIN_VARIABLE, cases[i].arguments, NULL);
        cr_assert(eq(int, result->exit_status, 2), "case %zu (%s)", i, cases[i].expected_message);
        cr_assert(eq(str, result->stdout_text, ""), "case %zu", i);
        cr_assert_not_null(strstr(result->stderr_text, cases[i].expected_message), "case %zu: stderr: %s", i, result->stderr_text);
    }
}

Test(admin, invalid_timeout_in_environment_exits_2)
{
    const tool_result *result = run_tool(ADMIN_BIN_VARIABLE, ARGUMENTS("health"), ARGUMENTS("HELVINO_ADMIN_TIMEOUT_MS=soon"));
    cr_assert(eq(int, result->exit_status, 2));
    cr_assert_not_null(strstr(result->stderr_text, "HELVINO_ADMIN_TIMEOUT_MS"), "stderr: %s", result->stderr_text);
}

Test(admin, help_exits_0_and_lists_commands)
{
    const char *expected[] = {
        "health",      "org list",         "org create",   "conversation create", "conversation list", "conversation show",
        "message add", "--store-endpoint", "--timeout-ms",
    };
    const tool_result *help = run_admin("--help");
    cr_assert(eq(int, help->exit_status, 0), "stderr: %s", help->stderr_text);
    cr_assert(eq(str, help->stderr_text, ""));
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        cr_assert_not_null(strstr(help->stdout_text, expected[i]), "--help does not mention \"%s\": %s", expected[i],
                           help->stdout_text);
}

Test(admin, unreachable_store_exits_3_in_time)
{
    /* A socket path in the test's folder that nothing binds. */
    char endpoint[256];
    snprintf(endpoint, sizeof(endpoint), "ipc://%s/nobody", store.dir);

    const tool_result *result = run_admin("--store-endpoint", endpoint, "--timeout-ms", "300", "health");
    cr_assert(eq(int, result->exit_status, 3), "stderr: %s", result->stderr_text);
    cr_assert(eq(str, result->stdout_text, ""));
    cr_assert_not_null(strstr(result->stderr_text, endpoint), "stderr does not name the endpoint: %s", result->stderr_text);

    /* It waited for the whole timeout, but not much longer: the bound
     * leaves room for a slow start under the sanitizers. */
    cr_assert(ge(i64, result->elapsed_ms, 300));
    cr_assert(lt(i64, result->elapsed_ms, 5000));
}

/* --- helvino-trace ------------------------------------------------------- */

Test(trace, org_filter_hides_other_orgs)
{
    char org_a[80], org_b[80], conversation_a[37], conversation_b[37];
    create_unique_org(&store, "trace_a", org_a, sizeof(org_a));
    create_unique_org(&store, "trace_b", org_b, sizeof(org_b));
    create_conversation(&store, org_a, conversation_a);
    create_conversation(&store, org_b, conversation_b);

    tool_process trace;
    start_trace(&trace, "--org", org_a);
    wait_until_subscribed(&trace, org_a);

    /* B's message first: the store publishes in order, so if the filter
     * let it through, it would be printed before A's. */
    admin_add_message(org_b, conversation_b, "for org B");
    const json_t *message_reply = admin_add_message(org_a, conversation_a, "for org A");

    char *line = wait_for_line(&trace, "for org A", EVENT_TIMEOUT_MS);
    cr_assert_not_null(line, "helvino-trace printed no event of the message in %s within %d ms", org_a, EVENT_TIMEOUT_MS);
    const char *output = read_text_file(trace.stdout_path);
    cr_assert_null(strstr(output, org_b), "helvino-trace --org %s printed an event of %s: %s", org_a, org_b, output);
    cr_assert_null(strstr(output, "for org B"), "helvino-trace --org %s printed %s's message: %s", org_a, org_b, output);
    cr_assert(eq(int, count_lines_containing(output, "message:new"), 1), "output: %s", output);

    const json_t *event = parse_json_text(line);
    char expected_topic[160];
    snprintf(expected_topic, sizeof(expected_topic), "org:%s:message:new", org_a);
    cr_assert(eq(str, string_member(event, "topic"), expected_topic));
    cr_assert(eq(str, string_member(event, "event"), "message:new"));
    cr_assert(eq(str, string_member(event, "orgId"), org_a));
    const json_t *data = member(event, "data");
    cr_assert(eq(str, string_member(data, "conversationId"), conversation_a));
    const json_t *message = member(data, "message");
    cr_assert(eq(str, string_member(message, "content"), "for org A"));
    cr_assert(eq(str, string_member(message, "id"), string_member(message_reply, "id")));

    cr_assert(eq(int, stop_tool(&trace, SIGTERM), 0), "helvino-trace did not exit cleanly on SIGTERM");
    cr_assert(eq(str, read_text_file(trace.stderr_path), ""));
}

Test(trace, without_org_shows_every_org)
{
    char org_a[80], org_b[80], conversation_a[37], conversation_b[37];
    create_unique_org(&store, "all_a", org_a, sizeof(org_a));
    create_unique_org(&store, "all_b", org_b, sizeof(org_b));
    create_conversation(&store, org_a, conversation_a);
    create_conversation(&store, org_b, conversation_b);

    tool_process trace;
    spawn_tool(&trace, TRACE_BIN_VARIABLE, NO_ARGUMENTS, NULL);
    wait_until_subscribed(&trace, org_a);

    admin_add_message(org_b, conversation_b, "seen from B");
    admin_add_message(org_a, conversation_a, "seen from A");

    const char *orgs[] = {org_a, org_b};
    const char *contents[] = {"seen from A", "seen from B"};
    for (size_t i = 0; i < 2; i++) {
        char *line = wait_for_line(&trace, contents[i], EVENT_TIMEOUT_MS);
        cr_assert_not_null(line, "helvino-trace printed no event of %s within %d ms", orgs[i], EVENT_TIMEOUT_MS);
        const json_t *event = parse_json_text(line);
        cr_assert(eq(str, string_member(event, "orgId"), (char *)orgs[i]));
        cr_assert(eq(str, string_member(event, "event"), "message:new"));
    }

    /* SIGINT, as when an operator presses Ctrl-C. */
    cr_assert(eq(int, stop_tool(&trace, SIGINT), 0), "helvino-trace did not exit cleanly on SIGINT");
    cr_assert(eq(str, read_text_file(trace.stderr_path), ""));
}

static int hex_digit_value(char digit)
{
    if (digit >= '0' && digit <= '9')
        return digit - '0';
    return tolower((unsigned char)digit) - 'a' + 10;
}

Test(trace, raw_prints_topic_and_hex_msgpack)
{
    char org[80];
    create_unique_org(&store, "raw", org, sizeof(org));

    tool_process trace;
    start_trace(&trace, "--raw", "--count", "1", "--org", org);
    wait_until_subscribed(&trace, org);
    int status = wait_for_exit(&trace, EXIT_TIMEOUT_MS);
    cr_assert(eq(int, status, 0), "helvino-trace --count 1 did not exit with 0 after one event");

    const char *output = read_text_file(trace.stdout_path);
    cr_assert(eq(int, count_lines(output), 1), "--count 1 printed other than one line: %s", output);
    cr_assert(eq(str, read_text_file(trace.stderr_path), ""));

    /* "<topic> <hex>\n" */
    char expected_topic[160];
    snprintf(expected_topic, sizeof(expected_topic), "org:%s:conversation:new", org);
    const char *space = strchr(output, ' ');
    cr_assert_not_null(space, "no space between the topic and the body: %s", output);
    char *topic = keep(strndup(output, (size_t)(space - output)));
    cr_assert(eq(str, topic, expected_topic));

    const char *hex = space + 1;
    size_t hex_length = strcspn(hex, "\n");
    cr_assert(hex_length > 0 && hex_length % 2 == 0, "the body is not whole bytes of hex: %s", hex);
    char *body = keep(malloc(hex_length / 2));
    for (size_t i = 0; i < hex_length; i += 2) {
        bool is_hex_pair = isxdigit((unsigned char)hex[i]) && isxdigit((unsigned char)hex[i + 1]);
        cr_assert(is_hex_pair, "the body has a non-hex character at %zu: %s", i, hex);
        body[i / 2] = (char)(hex_digit_value(hex[i]) * 16 + hex_digit_value(hex[i + 1]));
    }

    /* The body is one msgpack map, the store's event. */
    msgpack_unpacked storage;
    msgpack_unpacked_init(&storage);
    size_t offset = 0;
    cr_assert(eq(int, msgpack_unpack_next(&storage, body, hex_length / 2, &offset), MSGPACK_UNPACK_SUCCESS));
    msgpack_object_type body_type = storage.data.type;
    msgpack_unpacked_destroy(&storage);
    cr_assert(eq(int, body_type, MSGPACK_OBJECT_MAP), "the body is msgpack but not a map");
    cr_assert(eq(sz, offset, hex_length / 2), "bytes follow the msgpack map");

    msgpack_unpacked_init(&storage);
    hv_event event;
    const char *error = NULL;
    int decoded = hv_event_decode(body, hex_length / 2, &storage, &event, &error);
    char event_name[64] = "", event_org[80] = "";
    if (decoded == 0) {
        snprintf(event_name, sizeof(event_name), "%.*s", (int)event.event_len, event.event);
        snprintf(event_org, sizeof(event_org), "%.*s", (int)event.org_len, event.org);
    }
    msgpack_unpacked_destroy(&storage);
    cr_assert(eq(int, decoded, 0), "the body is not an event: %s", error);
    cr_assert(eq(str, event_name, "conversation:new"));
    cr_assert(eq(str, event_org, org));
}

Test(trace, invalid_org_exits_2)
{
    const char *bad_orgs[] = {
        "bad:org",
        "has space",
        "a1234567890123456789012345678901234567890123456789012345678901234",
    };
    for (size_t i = 0; i < sizeof(bad_orgs) / sizeof(bad_orgs[0]); i++) {
        const tool_result *result = run_trace("--org", bad_orgs[i]);
        cr_assert(eq(int, result->exit_status, 2), "--org \"%s\"", bad_orgs[i]);
        cr_assert(eq(str, result->stdout_text, ""), "--org \"%s\"", bad_orgs[i]);
        cr_assert_not_null(strstr(result->stderr_text, "invalid org id"), "stderr: %s", result->stderr_text);
        cr_assert_not_null(strstr(result->stderr_text, bad_orgs[i]), "stderr does not name the org: %s", result->stderr_text);
    }
}

Test(trace, usage_errors_exit_2)
{
    static const struct {
        const char *const arguments[4];
        const char *expected_message;
    } cases[] = {
        {{"--count", "-1"}, "--count"},
        {{"--timeout-ms", "soon"}, "--timeout-ms"},
        {{"--raw=maybe"}, "--raw"},
        {{"--follow"}, "--follow"},
        {{"extra"}, "extra"},
        {{"--events-endpoint", "not-an-endpoint"}, "not-an-endpoint"},
        {{"--events-endpoint", ""}, "--events-endpoint"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const tool_result *result = run_tool(TRACE_BIN_VARIABLE, cases[i].arguments, NULL);
        cr_assert(eq(int, result->exit_status, 2), "case %zu (%s)", i, cases[i].expected_message);
        cr_assert(eq(str, result->stdout_text, ""), "case %zu", i);
        cr_assert_not_null(strstr(result->stderr_text, cases[i].expected_message), "case %zu: stderr: %s", i, result->stderr_text);
    }
}

Test(trace, timeout_without_events_exits_0)
{
    const tool_result *result = run_trace("--timeout-ms", "200");
    cr_assert(eq(int, result->exit_status, 0), "stderr: %s", result->stderr_text);
    cr_assert(eq(str, result->stdout_text, ""));
    cr_assert(eq(str, result->stderr_text, ""));
    cr_assert(ge(i64, result->elapsed_ms, 200));
    cr_assert(lt(i64, result->elapsed_ms, 5000));
}

Test(trace, help_exits_0_and_lists_options)
{
    const char *options[] = {"--events-endpoint", "--org", "--raw", "--count", "--timeout-ms"};
    const tool_result *help = run_trace("--help");
    cr_assert(eq(int, help->exit_status, 0), "stderr: %s", help->stderr_text);
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        cr_assert_not_null(strstr(help->stdout_text, options[i]), "--help does not mention \"%s\": %s", options[i],
                           help->stdout_text);
}
