/* helvino-store over ZeroMQ against a real PostgreSQL: every operation,
 * org isolation, events after commit, and bad input. */
#include "harness.h"
#include "hv_event.h"
#include "hv_msgpack.h"
#include "hv_uuid.h"
#include "hv_zmq.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

static store_fixture store;

static void start_store(void)
{
    store_start(&store, NULL);
}

static void stop_store(void)
{
    cr_expect_eq(store_stop(&store), 0, "helvino-store did not exit cleanly on SIGTERM");
}

TestSuite(store, .init = start_store, .fini = stop_store, .timeout = 120);

/* --- Organizations ------------------------------------------------------ */

Test(store, health_reports_database_ok)
{
    hv_call_result result;
    store_call(&store, &result, "health", NULL, NULL);
    cr_assert_eq(result.reply.status, 200);
    char database[16];
    body_string(result.reply.body, "database", database, sizeof(database));
    cr_assert_str_eq(database, "ok");
    hv_call_result_destroy(&result);
}

Test(store, demo_key_resolves_to_org_1)
{
    hv_call_result result;
    store_call(&store, &result, "org.resolve_key", NULL, "key", "demo", NULL);
    cr_assert_eq(result.reply.status, 200);
    char org[80], name[80];
    body_string(result.reply.body, "orgId", org, sizeof(org));
    body_string(result.reply.body, "name", name, sizeof(name));
    cr_assert_str_eq(org, "org_1");
    cr_assert_str_eq(name, "Demo Org");
    hv_call_result_destroy(&result);
}

Test(store, unknown_or_differently_cased_key_is_not_found)
{
    const char *keys[] = {"nope", "DEMO", "demo ", ""};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        hv_call_result result;
        store_call(&store, &result, "org.resolve_key", NULL, "key", keys[i], NULL);
        cr_assert_eq(result.reply.status, 404, "key \"%s\" returned %d", keys[i], result.reply.status);
        hv_call_result_destroy(&result);
    }
}

Test(store, created_org_is_listed_and_its_key_resolves)
{
    char org[80];
    create_unique_org(&store, "acme", org, sizeof(org));

    hv_call_result result;
    char key[96];
    snprintf(key, sizeof(key), "key-%s", org);
    store_call(&store, &result, "org.resolve_key", NULL, "key", key, NULL);
    cr_assert_eq(result.reply.status, 200);
    char resolved[80];
    body_string(result.reply.body, "orgId", resolved, sizeof(resolved));
    cr_assert_str_eq(resolved, org);
    hv_call_result_destroy(&result);

    store_call(&store, &result, "org.list", NULL, NULL);
    cr_assert_eq(result.reply.status, 200);
    const msgpack_object *list = hv_mp_map_get(result.reply.body, "organizations");
    cr_assert_not_null(list);
    bool found = false;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        char id[80];
        body_string(&list->via.array.ptr[i], "id", id, sizeof(id));
        found = found || strcmp(id, org) == 0;
    }
    cr_assert(found, "org.list does not contain %s", org);
    hv_call_result_destroy(&result);
}

Test(store, org_create_conflicts_return_409)
{
    char org[80];
    create_unique_org(&store, "dup", org, sizeof(org));
    char key[96];
    snprintf(key, sizeof(key), "key-%s", org);

    hv_call_result result;
    store_call(&store, &result, "org.create", NULL, "id", org, "key", "another-key", "name", "Again", NULL);
    cr_assert_eq(result.reply.status, 409, "same id returned %d", result.reply.status);
    hv_call_result_destroy(&result);

    store_call(&store, &result, "org.create", NULL, "id", "fresh_id_for_key_test", "key", key, "name", "Again", NULL);
    cr_assert_eq(result.reply.status, 409, "same key returned %d", result.reply.status);
    hv_call_result_destroy(&result);

    /* The failed create left no half-made org behind. */
    store_call(&store, &result, "org.create", NULL, "id", "fresh_id_for_key_test", "key", "unused-key", "name", "Ok", NULL);
    cr_assert_eq(result.reply.status, 201);
    hv_call_result_destroy(&result);
}

Test(store, org_create_rejects_invalid_arguments)
{
    const char *bad_ids[] = {"", "has:colon", "has space", "x/y",
                             "a123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        hv_call_result result;
        store_call(&store, &result, "org.create", NULL, "id", bad_ids[i], "key", "k-bad", "name", "Bad", NULL);
        cr_assert_eq(result.reply.status, 400, "id \"%s\" returned %d", bad_ids[i], result.reply.status);
        hv_call_result_destroy(&result);
    }

    hv_call_result result;
    store_call(&store, &result, "org.create", NULL, "id", "no_name_org", "key", "k-no-name", NULL);
    cr_assert_eq(result.reply.status, 400);
    hv_call_result_destroy(&result);
}

/* --- Conversations and messages ----------------------------------------- */

Test(store, conversation_create_returns_uuid_and_times)
{
    hv_call_result result;
    store_call(&store, &result, "conversation.create", "org_1", NULL);
    cr_assert_eq(result.reply.status, 201);

    char id[64], created[32], updated[32], org[80];
    body_string(result.reply.body, "id", id, sizeof(id));
    body_string(result.reply.body, "createdAt", created, sizeof(created));
    body_string(result.reply.body, "updatedAt", updated, sizeof(updated));
    body_string(result.reply.body, "orgId", org, sizeof(org));
    cr_assert(hv_uuid_is_valid(id, strlen(id)), "\"%s\" is not a UUID", id);
    cr_assert_eq(id[14], '7', "the id is not a UUIDv7: %s", id);
    cr_assert_eq(strlen(created), 24, "createdAt \"%s\" is not YYYY-MM-DDTHH:MM:SS.mmmZ", created);
    cr_assert_eq(created[23], 'Z');
    cr_assert_str_eq(created, updated);
    cr_assert_str_eq(org, "org_1");
    cr_assert_eq(body_int(result.reply.body, "messageCount"), 0);
    hv_call_result_destroy(&result);
}

Test(store, message_add_returns_message_and_bumps_conversation)
{
    char org[80], conversation[37];
    create_unique_org(&store, "msg", org, sizeof(org));
    create_conversation(&store, org, conversation);

    hv_call_result result;
    store_call(&store, &result, "message.add", org, "conversationId", conversation, "role", "user", "content", "Hello", NULL);
    cr_assert_eq(result.reply.status, 201);
    char id[64], conversation_id[64], role[16], content[16], timestamp[32];
    body_string(result.reply.body, "id", id, sizeof(id));
    body_string(result.reply.body, "conversationId", conversation_id, sizeof(conversation_id));
    body_string(result.reply.body, "role", role, sizeof(role));
    body_string(result.reply.body, "content", content, sizeof(content));
    body_string(result.reply.body, "timestamp", timestamp, sizeof(timestamp));
    cr_assert(hv_uuid_is_valid(id, strlen(id)));
    cr_assert_str_eq(conversation_id, conversation);
    cr_assert_str_eq(role, "user");
    cr_assert_str_eq(content, "Hello");
    hv_call_result_destroy(&result);

    store_call(&store, &result, "message.add", org, "conversationId", conversation, "role", "assistant", "content", "Hi!",
               NULL);
    cr_assert_eq(result.reply.status, 201);
    char second_timestamp[32];
    body_string(result.reply.body, "timestamp", second_timestamp, sizeof(second_timestamp));
    hv_call_result_destroy(&result);

    store_call(&store, &result, "conversation.get", org, "id", conversation, NULL);
    cr_assert_eq(result.reply.status, 200);
    cr_assert_eq(body_int(result.reply.body, "messageCount"), 2);
    char updated[32];
    body_string(result.reply.body, "updatedAt", updated, sizeof(updated));
    cr_assert_str_eq(updated, second_timestamp, "updatedAt is not the last message's time");

    const msgpack_object *messages = hv_mp_map_get(result.reply.body, "messages");
    cr_assert_not_null(messages);
    cr_assert_eq(messages->via.array.size, 2);
    char first_content[16], second_content[16];
    body_string(&messages->via.array.ptr[0], "content", first_content, sizeof(first_content));
    body_string(&messages->via.array.ptr[1], "content", second_content, sizeof(second_content));
    cr_assert_str_eq(first_content, "Hello", "messages are not oldest first");
    cr_assert_str_eq(second_content, "Hi!");
    hv_call_result_destroy(&result);
}

Test(store, message_add_rejects_bad_role_and_content)
{
    char conversation[37];
    create_conversation(&store, "org_1", conversation);

    static const struct {
        const char *role;
        const char *content;
    } cases[] = {{"system", "x"}, {"", "x"}, {"USER", "x"}, {"user", ""}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hv_call_result result;
        store_call(&store, &result, "message.add", "org_1", "conversationId", conversation, "role", cases[i].role, "content",
                   cases[i].content, NULL);
        cr_assert_eq(result.reply.status, 400, "role \"%s\" content \"%s\" returned %d", cases[i].role, cases[i].content,
                     result.reply.status);
        hv_call_result_destroy(&result);
    }

    hv_call_result result;
    store_call(&store, &result, "message.add", "org_1", "conversationId", conversation, "role", "user", NULL);
    cr_assert_eq(result.reply.status, 400, "missing content returned %d", result.reply.status);
    hv_call_result_destroy(&result);

    store_call(&store, &result, "conversation.get", "org_1", "id", conversation, NULL);
    cr_assert_eq(body_int(result.reply.body, "messageCount"), 0, "a rejected message was counted");
    hv_call_result_destroy(&result);
}

/* Packs {conversationId, role, content} with a content of exact bytes. */
static void pack_message_args(msgpack_sbuffer *args, const char *conversation, const char *content, size_t content_len)
{
    msgpack_sbuffer_init(args);
    msgpack_packer packer;
    msgpack_packer_init(&packer, args, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, 3);
    hv_mp_pack_entry_str(&packer, "conversationId", conversation);
    hv_mp_pack_entry_str(&packer, "role", "user");
    hv_mp_pack_cstr(&packer, "content");
    hv_mp_pack_strn(&packer, content, content_len);
}

Test(store, content_with_nul_is_rejected)
{
    char conversation[37];
    create_conversation(&store, "org_1", conversation);

    msgpack_sbuffer args;
    pack_message_args(&args, conversation, "a\0b", 3);
    hv_call_result result;
    store_call_packed(&store, &result, "message.add", "org_1", &args);
    cr_assert_eq(result.reply.status, 400);
    hv_call_result_destroy(&result);
    msgpack_sbuffer_destroy(&args);
}

Test(store, invalid_utf8_content_is_rejected)
{
    char conversation[37];
    create_conversation(&store, "org_1", conversation);

    msgpack_sbuffer args;
    pack_message_args(&args, conversation, "bad \xff\xfe bytes", 12);
    hv_call_result result;
    store_call_packed(&store, &result, "message.add", "org_1", &args);
    cr_assert_eq(result.reply.status, 400, "invalid UTF-8 returned %d", result.reply.status);
    hv_call_result_destroy(&result);
    msgpack_sbuffer_destroy(&args);
}

Test(store, content_round_trips_byte_exact)
{
    char conversation[37];
    create_conversation(&store, "org_1", conversation);

    /* Lengths around every msgpack string header boundary (fixstr 31,
     * str8 255, str16 65535) with text that is easy to get wrong. */
    const char *piece = "\"q\" \\ \t\n \xf0\x9f\x98\x80 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d e\xcc\x81 ";
    size_t lengths[] = {1, 31, 32, 255, 256, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t len = lengths[i];
        char *content = malloc(len + 1);
        cr_assert_not_null(content);

        /* Whole pieces while they fit, then ASCII padding, so the text stays
         * valid UTF-8 at every length. */
        size_t piece_len = strlen(piece);
        size_t filled = 0;
        for (; filled + piece_len <= len; filled += piece_len)
            memcpy(content + filled, piece, piece_len);
        memset(content + filled, 'x', len - filled);

        msgpack_sbuffer args;
        pack_message_args(&args, conversation, content, len);
        hv_call_result result;
        store_call_packed(&store, &result, "message.add", "org_1", &args);
        cr_assert_eq(result.reply.status, 201, "length %zu returned %d", len, result.reply.status);
        const char *echoed;
        size_t echoed_len;
        cr_assert(hv_mp_map_get_str(result.reply.body, "content", &echoed, &echoed_len));
        cr_assert_eq(echoed_len, len);
        cr_assert_eq(memcmp(echoed, content, len), 0, "the reply changed content of length %zu", len);
        hv_call_result_destroy(&result);
        msgpack_sbuffer_destroy(&args);

        store_call(&store, &result, "conversation.get", "org_1", "id", conversation, NULL);
        cr_assert_eq(result.reply.status, 200);
        const msgpack_object *messages = hv_mp_map_get(result.reply.body, "messages");
        const msgpack_object *last = &messages->via.array.ptr[messages->via.array.size - 1];
        cr_assert(hv_mp_map_get_str(last, "content", &echoed, &echoed_len));
        cr_assert_eq(echoed_len, len);
        cr_assert_eq(memcmp(echoed, content, len), 0, "the stored content of length %zu differs", len);
        hv_call_result_destroy(&result);
        free(content);
    }
}

Test(store, malformed_and_unknown_ids_are_not_found)
{
    const char *ids[] = {"not-a-uuid", "", "01a242bf-c5f4-70a8-a16c-14fab018164", "01a242bf-c5f4-70a8-a16c-14fab0181647",
                         "'; DROP TABLE messages; --"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        hv_call_result result;
        store_call(&store, &result, "conversation.get", "org_1", "id", ids[i], NULL);
        cr_assert_eq(result.reply.status, 404, "get \"%s\" returned %d", ids[i], result.reply.status);
        hv_call_result_destroy(&result);

        store_call(&store, &result, "message.add", "org_1", "conversationId", ids[i], "role", "user", "content", "x", NULL);
        cr_assert_eq(result.reply.status, 404, "add to \"%s\" returned %d", ids[i], result.reply.status);
        hv_call_result_destroy(&result);
    }
}

Test(store, list_is_newest_first_and_pages_with_cursor)
{
    char org[80];
    create_unique_org(&store, "list", org, sizeof(org));
    char ids[5][37];
    for (int i = 0; i < 5; i++)
        create_conversation(&store, org, ids[i]);

    /* A message moves the oldest conversation to the top. */
    hv_call_result result;
    store_call(&store, &result, "message.add", org, "conversationId", ids[0], "role", "user", "content", "bump", NULL);
    cr_assert_eq(result.reply.status, 201);
    hv_call_result_destroy(&result);

    /* Rows created within one millisecond share updatedAt, so the order
     * checked is the documented one: updatedAt descending, then id
     * descending. */
    char listed[5][37], listed_updated[5][32];
    int seen = 0;
    char cursor[128] = "";
    for (int page = 0; page < 3; page++) {
        msgpack_sbuffer args;
        msgpack_sbuffer_init(&args);
        msgpack_packer packer;
        msgpack_packer_init(&packer, &args, msgpack_sbuffer_write);
        msgpack_pack_map(&packer, cursor[0] ? 2 : 1);
        hv_mp_pack_cstr(&packer, "limit");
        msgpack_pack_int(&packer, 2);
        if (cursor[0])
            hv_mp_pack_entry_str(&packer, "cursor", cursor);
        store_call_packed(&store, &result, "conversation.list", org, &args);
        msgpack_sbuffer_destroy(&args);
        cr_assert_eq(result.reply.status, 200);

        const msgpack_object *list = hv_mp_map_get(result.reply.body, "conversations");
        cr_assert_not_null(list);
        cr_assert_eq(list->via.array.size, page < 2 ? 2u : 1u, "page %d has %u rows", page, list->via.array.size);
        for (uint32_t i = 0; i < list->via.array.size; i++, seen++) {
            body_string(&list->via.array.ptr[i], "id", listed[seen], sizeof(listed[seen]));
            body_string(&list->via.array.ptr[i], "updatedAt", listed_updated[seen], sizeof(listed_updated[seen]));
        }

        const msgpack_object *next = hv_mp_map_get(result.reply.body, "nextCursor");
        cr_assert_not_null(next);
        if (page < 2) {
            cr_assert_eq(next->type, MSGPACK_OBJECT_STR, "page %d has no nextCursor", page);
            snprintf(cursor, sizeof(cursor), "%.*s", (int)next->via.str.size, next->via.str.ptr);
        } else {
            cr_assert_eq(next->type, MSGPACK_OBJECT_NIL, "the last page has a nextCursor");
        }
        hv_call_result_destroy(&result);
    }
    cr_assert_eq(seen, 5);

    for (int row = 1; row < 5; row++) {
        int by_time = strcmp(listed_updated[row - 1], listed_updated[row]);
        cr_assert(by_time > 0 || (by_time == 0 && strcmp(listed[row - 1], listed[row]) > 0),
                  "rows %d and %d are out of order: %s %s, %s %s", row - 1, row, listed_updated[row - 1], listed[row - 1],
                  listed_updated[row], listed[row]);
    }
    for (int created = 0; created < 5; created++) {
        bool found = false;
        for (int row = 0; row < 5; row++)
            found = found || strcmp(listed[row], ids[created]) == 0;
        cr_assert(found, "conversation %s is missing from the pages", ids[created]);
    }
    /* The bumped conversation carries the newest updatedAt of all. */
    for (int row = 0; row < 5; row++)
        if (strcmp(listed[row], ids[0]) == 0)
            cr_assert_str_eq(listed_updated[row], listed_updated[0], "the bumped conversation is not the newest");
}

Test(store, list_rejects_bad_limit_and_cursor)
{
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, 1);
    hv_mp_pack_cstr(&packer, "limit");
    msgpack_pack_int(&packer, 201);
    hv_call_result result;
    store_call_packed(&store, &result, "conversation.list", "org_1", &args);
    cr_assert_eq(result.reply.status, 400, "limit 201 returned %d", result.reply.status);
    hv_call_result_destroy(&result);
    msgpack_sbuffer_destroy(&args);

    store_call(&store, &result, "conversation.list", "org_1", "cursor", "garbage", NULL);
    cr_assert_eq(result.reply.status, 400, "a bad cursor returned %d", result.reply.status);
    hv_call_result_destroy(&result);
}

/* --- Isolation ---------------------------------------------------------- */

Test(store, org_cannot_see_or_write_another_orgs_conversation)
{
    char org_a[80], org_b[80], conversation[37];
    create_unique_org(&store, "iso_a", org_a, sizeof(org_a));
    create_unique_org(&store, "iso_b", org_b, sizeof(org_b));
    create_conversation(&store, org_a, conversation);

    hv_call_result result;
    store_call(&store, &result, "conversation.get", org_b, "id", conversation, NULL);
    cr_assert_eq(result.reply.status, 404, "org B read org A's conversation");
    hv_call_result_destroy(&result);

    store_call(&store, &result, "message.add", org_b, "conversationId", conversation, "role", "user", "content", "intrude",
               NULL);
    cr_assert_eq(result.reply.status, 404, "org B posted into org A's conversation");
    hv_call_result_destroy(&result);

    store_call(&store, &result, "conversation.list", org_b, NULL);
    cr_assert_eq(result.reply.status, 200);
    cr_assert_eq(hv_mp_map_get(result.reply.body, "conversations")->via.array.size, 0u, "org B lists org A's conversation");
    hv_call_result_destroy(&result);

    store_call(&store, &result, "conversation.get", org_a, "id", conversation, NULL);
    cr_assert_eq(result.reply.status, 200);
    cr_assert_eq(body_int(result.reply.body, "messageCount"), 0, "org B's attempt changed org A's conversation");
    hv_call_result_destroy(&result);
}

Test(store, database_rejects_message_under_another_orgs_conversation)
{
    char org_a[80], org_b[80], conversation[37];
    create_unique_org(&store, "fk_a", org_a, sizeof(org_a));
    create_unique_org(&store, "fk_b", org_b, sizeof(org_b));
    create_conversation(&store, org_a, conversation);

    /* Bypass the store: the composite foreign key alone must refuse it. */
    PGconn *conn = PQconnectdb(getenv("HELVINO_DATABASE_URL"));
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    const char *params[] = {org_b, conversation};
    PGresult *result = PQexecParams(conn,
                                    "INSERT INTO messages (id, org_id, conversation_id, role, content, created_at)"
                                    " VALUES (gen_random_uuid(), $1, $2, 'user', 'x', now())",
                                    2, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(result), PGRES_FATAL_ERROR);
    cr_assert_str_eq(PQresultErrorField(result, PG_DIAG_SQLSTATE), "23503");
    PQclear(result);
    PQfinish(conn);
}

Test(store, org_scoped_operation_without_org_is_rejected)
{
    hv_call_result result;
    store_call(&store, &result, "conversation.list", NULL, NULL);
    cr_assert_eq(result.reply.status, 400);
    hv_call_result_destroy(&result);

    store_call(&store, &result, "conversation.create", "bad:org", NULL);
    cr_assert_eq(result.reply.status, 400);
    hv_call_result_destroy(&result);
}

/* --- Events ------------------------------------------------------------- */

Test(store, message_event_reaches_only_its_org_after_commit)
{
    char org_a[80], org_b[80], conversation_a[37], conversation_b[37];
    create_unique_org(&store, "ev_a", org_a, sizeof(org_a));
    create_unique_org(&store, "ev_b", org_b, sizeof(org_b));
    create_conversation(&store, org_a, conversation_a);
    create_conversation(&store, org_b, conversation_b);

    event_listener listener_a, listener_b;
    listener_open(&listener_a, &store, org_a);
    listener_open(&listener_b, &store, org_b);

    hv_call_result result;
    store_call(&store, &result, "message.add", org_a, "conversationId", conversation_a, "role", "user", "content",
               "for A only", NULL);
    cr_assert_eq(result.reply.status, 201);
    char message_id[64];
    body_string(result.reply.body, "id", message_id, sizeof(message_id));
    hv_call_result_destroy(&result);

    received_event event;
    cr_assert(listener_next(&listener_a, 5000, &event), "org A's listener got no event within 5 s");
    char expected_topic[160];
    snprintf(expected_topic, sizeof(expected_topic), "org:%s:message:new", org_a);
    cr_assert_str_eq(event.topic, expected_topic);
    cr_assert_str_eq(event.event, "message:new");
    cr_assert_str_eq(event.org, org_a);
    char conversation_id[64], id[64], content[32];
    body_string(&event.data, "conversationId", conversation_id, sizeof(conversation_id));
    const msgpack_object *message = hv_mp_map_get(&event.data, "message");
    cr_assert_not_null(message);
    body_string(message, "id", id, sizeof(id));
    body_string(message, "content", content, sizeof(content));
    cr_assert_str_eq(conversation_id, conversation_a);
    cr_assert_str_eq(id, message_id);
    cr_assert_str_eq(content, "for A only");
    received_event_destroy(&event);

    /* After commit: the message is readable as soon as its event is seen. */
    store_call(&store, &result, "conversation.get", org_a, "id", conversation_a, NULL);
    cr_assert_eq(body_int(result.reply.body, "messageCount"), 1);
    hv_call_result_destroy(&result);

    /* Org B hears nothing of it. The store publishes in order, so when B's
     * own later message arrives first, A's can no longer come. */
    store_call(&store, &result, "message.add", org_b, "conversationId", conversation_b, "role", "user", "content", "for B",
               NULL);
    cr_assert_eq(result.reply.status, 201);
    hv_call_result_destroy(&result);
    cr_assert(listener_next(&listener_b, 5000, &event), "org B's listener got no event within 5 s");
    cr_assert_str_eq(event.org, org_b, "org B's listener received an event of %s", event.org);
    body_string(hv_mp_map_get(&event.data, "message"), "content", content, sizeof(content));
    cr_assert_str_eq(content, "for B");
    received_event_destroy(&event);

    listener_close(&listener_a);
    listener_close(&listener_b);
}

Test(store, failed_operation_publishes_nothing)
{
    char org[80], conversation[37];
    create_unique_org(&store, "noev", org, sizeof(org));
    create_conversation(&store, org, conversation);
    event_listener listener;
    listener_open(&listener, &store, org);

    hv_call_result result;
    store_call(&store, &result, "message.add", org, "conversationId", conversation, "role", "robot", "content", "x", NULL);
    cr_assert_eq(result.reply.status, 400);
    hv_call_result_destroy(&result);
    store_call(&store, &result, "message.add", org, "conversationId", conversation, "role", "user", "content", "ok", NULL);
    cr_assert_eq(result.reply.status, 201);
    hv_call_result_destroy(&result);

    received_event event;
    cr_assert(listener_next(&listener, 5000, &event));
    char content[16];
    body_string(hv_mp_map_get(&event.data, "message"), "content", content, sizeof(content));
    cr_assert_str_eq(content, "ok", "the first event is not the successful message's");
    received_event_destroy(&event);
    listener_close(&listener);
}

/* --- Bad input and load ------------------------------------------------- */

/* Sends raw frames on the dealer and returns the decoded reply. */
static void send_raw(const void *data, size_t size, hv_call_result *out)
{
    cr_assert_eq(hv_zmq_send(store.dealer, data, size, 0), 0);
    zmq_pollitem_t item = {.socket = store.dealer, .events = ZMQ_POLLIN};
    cr_assert_eq(zmq_poll(&item, 1, 10000), 1, "no reply to a malformed request within 10 s");
    zmq_msg_init(&out->frame);
    cr_assert_geq(zmq_msg_recv(&out->frame, store.dealer, 0), 0);
    msgpack_unpacked_init(&out->storage);
    const char *error;
    cr_assert_eq(hv_reply_decode(zmq_msg_data(&out->frame), zmq_msg_size(&out->frame), &out->storage, &out->reply, &error),
                 0, "the error reply is malformed: %s", error);
}

Test(store, garbage_frames_get_400_and_store_keeps_serving)
{
    const char *garbage[] = {"", "\xc1", "hello", "\x92\x01\x02", "\x81\xa2id"};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        hv_call_result result;
        send_raw(garbage[i], strlen(garbage[i]), &result);
        cr_assert_eq(result.reply.status, 400, "garbage %zu returned %d", i, result.reply.status);
        cr_assert_eq(result.reply.id, 0u);
        hv_call_result_destroy(&result);
    }

    hv_call_result result;
    store_call(&store, &result, "health", NULL, NULL);
    cr_assert_eq(result.reply.status, 200, "the store stopped serving after garbage");
    hv_call_result_destroy(&result);
}

Test(store, bad_envelope_gets_400_with_its_id)
{
    msgpack_sbuffer request;
    msgpack_sbuffer_init(&request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &request, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, 2);
    hv_mp_pack_cstr(&packer, "v");
    msgpack_pack_int(&packer, 1);
    hv_mp_pack_cstr(&packer, "id");
    msgpack_pack_uint64(&packer, 4242);

    hv_call_result result;
    send_raw(request.data, request.size, &result);
    cr_assert_eq(result.reply.status, 400);
    cr_assert_eq(result.reply.id, 4242u, "the error reply lost the request id");
    hv_call_result_destroy(&result);
    msgpack_sbuffer_destroy(&request);

    store_call(&store, &result, "no.such.operation", NULL, NULL);
    cr_assert_eq(result.reply.status, 400);
    hv_call_result_destroy(&result);
}

Test(store, oversized_request_gets_413)
{
    char conversation[37];
    create_conversation(&store, "org_1", conversation);

    size_t len = 1024 * 1024 + 1;
    char *content = malloc(len);
    memset(content, 'a', len);
    msgpack_sbuffer args;
    pack_message_args(&args, conversation, content, len);
    hv_call_result result;
    store_call_packed(&store, &result, "message.add", "org_1", &args);
    cr_assert_eq(result.reply.status, 413);
    hv_call_result_destroy(&result);
    msgpack_sbuffer_destroy(&args);
    free(content);

    store_call(&store, &result, "conversation.get", "org_1", "id", conversation, NULL);
    cr_assert_eq(body_int(result.reply.body, "messageCount"), 0, "the oversized message was stored");
    hv_call_result_destroy(&result);
}

Test(store, concurrent_adds_to_one_conversation_all_count)
{
    enum { CALLERS = 200 };
    char conversation[37];
    create_conversation(&store, "org_1", conversation);

    /* All requests go out before any reply is read, so they are in flight
     * together and replies come back in any order. */
    for (uint64_t id = 1; id <= CALLERS; id++) {
        msgpack_sbuffer request;
        msgpack_sbuffer_init(&request);
        msgpack_packer packer;
        msgpack_packer_init(&packer, &request, msgpack_sbuffer_write);
        hv_request_pack_begin(&packer, 1000000 + id, "message.add", "org_1", NULL);
        msgpack_pack_map(&packer, 3);
        hv_mp_pack_entry_str(&packer, "conversationId", conversation);
        hv_mp_pack_entry_str(&packer, "role", "user");
        hv_mp_pack_entry_str(&packer, "content", "concurrent");
        cr_assert_eq(hv_zmq_send(store.dealer, request.data, request.size, 0), 0);
        msgpack_sbuffer_destroy(&request);
    }

    bool answered[CALLERS + 1] = {false};
    for (int received = 0; received < CALLERS; received++) {
        zmq_pollitem_t item = {.socket = store.dealer, .events = ZMQ_POLLIN};
        cr_assert_eq(zmq_poll(&item, 1, 20000), 1, "only %d of %d replies within 20 s", received, CALLERS);
        hv_call_result result;
        zmq_msg_init(&result.frame);
        cr_assert_geq(zmq_msg_recv(&result.frame, store.dealer, 0), 0);
        msgpack_unpacked_init(&result.storage);
        const char *error;
        cr_assert_eq(hv_reply_decode(zmq_msg_data(&result.frame), zmq_msg_size(&result.frame), &result.storage,
                                     &result.reply, &error),
                     0);
        cr_assert_eq(result.reply.status, 201);
        uint64_t index = result.reply.id - 1000000;
        cr_assert(index >= 1 && index <= CALLERS && !answered[index], "unexpected reply id %lu",
                  (unsigned long)result.reply.id);
        answered[index] = true;
        hv_call_result_destroy(&result);
    }

    hv_call_result result;
    store_call(&store, &result, "conversation.get", "org_1", "id", conversation, NULL);
    cr_assert_eq(result.reply.status, 200);
    cr_assert_eq(body_int(result.reply.body, "messageCount"), CALLERS);
    cr_assert_eq(hv_mp_map_get(result.reply.body, "messages")->via.array.size, (uint32_t)CALLERS);
    hv_call_result_destroy(&result);
}

Test(store, slow_statement_blocks_one_worker_then_times_out)
{
    char conversation[37];
    create_conversation(&store, "org_1", conversation);

    /* Hold the conversation's row lock, so that adding a message waits. */
    PGconn *locker = PQconnectdb(getenv("HELVINO_DATABASE_URL"));
    cr_assert_eq(PQstatus(locker), CONNECTION_OK, "%s", PQerrorMessage(locker));
    PQclear(PQexec(locker, "BEGIN"));
    const char *params[] = {conversation};
    PGresult *locked = PQexecParams(locker, "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", 1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(locked), PGRES_TUPLES_OK);
    PQclear(locked);

    store_fixture slow_store;
    const char *env[] = {"HELVINO_STORE_STATEMENT_TIMEOUT_MS=1500", NULL};
    store_start(&slow_store, env);

    msgpack_sbuffer request;
    msgpack_sbuffer_init(&request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &request, msgpack_sbuffer_write);
    hv_request_pack_begin(&packer, 777, "message.add", "org_1", NULL);
    msgpack_pack_map(&packer, 3);
    hv_mp_pack_entry_str(&packer, "conversationId", conversation);
    hv_mp_pack_entry_str(&packer, "role", "user");
    hv_mp_pack_entry_str(&packer, "content", "waits for the lock");
    cr_assert_eq(hv_zmq_send(slow_store.dealer, request.data, request.size, 0), 0);
    msgpack_sbuffer_destroy(&request);

    /* While one worker waits, the others keep serving. */
    hv_call_result result;
    store_call(&slow_store, &result, "conversation.create", "org_1", NULL);
    cr_assert_eq(result.reply.status, 201, "a blocked statement held up another request");
    hv_call_result_destroy(&result);

    zmq_pollitem_t item = {.socket = slow_store.dealer, .events = ZMQ_POLLIN};
    cr_assert_eq(zmq_poll(&item, 1, 10000), 1, "the blocked request got no reply within 10 s");
    zmq_msg_init(&result.frame);
    cr_assert_geq(zmq_msg_recv(&result.frame, slow_store.dealer, 0), 0);
    msgpack_unpacked_init(&result.storage);
    const char *error;
    cr_assert_eq(hv_reply_decode(zmq_msg_data(&result.frame), zmq_msg_size(&result.frame), &result.storage, &result.reply,
                                 &error),
                 0);
    cr_assert_eq(result.reply.id, 777u);
    cr_assert_eq(result.reply.status, 503, "a timed-out statement returned %d", result.reply.status);
    hv_call_result_destroy(&result);
    cr_assert_eq(store_log_count(&slow_store, "database statement timed out"), 1);

    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
    store_call(&slow_store, &result, "message.add", "org_1", "conversationId", conversation, "role", "user", "content",
               "after the lock", NULL);
    cr_assert_eq(result.reply.status, 201);
    hv_call_result_destroy(&result);
    cr_assert_eq(store_stop(&slow_store), 0);
}
