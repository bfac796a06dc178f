/* Unit tests of the gateway's route table (gateway/routes.c): method names,
 * path matching, the :id segment, 405 Allow values and which routes need an
 * org key. */
#include "routes.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stddef.h>
#include <string.h>

#define ID_OFFSET (sizeof("/conversations/") - 1)

static route_match match(http_method method, const char *path)
{
    return routes_match(method, path, strlen(path));
}

/* Asserts that `path` matches no route for any method. */
static void assert_not_found(const char *path, size_t len)
{
    const http_method methods[] = {METHOD_GET, METHOD_HEAD, METHOD_POST, METHOD_OPTIONS, METHOD_OTHER};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        route_match result = routes_match(methods[i], path, len);
        cr_assert(eq(int, result.route, ROUTE_NOT_FOUND), "path \"%.*s\", method %d", (int)len, path, (int)methods[i]);
        cr_assert(zero(ptr, (void *)result.allow), "path \"%.*s\"", (int)len, path);
        cr_assert(zero(ptr, (void *)result.id), "path \"%.*s\"", (int)len, path);
        cr_assert(eq(sz, result.id_len, 0));
        cr_assert(eq(int, result.needs_org_key, 0), "path \"%.*s\"", (int)len, path);
    }
}

/* Asserts which of GET, HEAD, POST, OPTIONS and another method `path`
 * allows, and that every method gets the same route and Allow value. */
static void assert_methods(const char *path, route_id route, const char *allow, int get, int head, int post)
{
    const struct {
        http_method method;
        int allowed;
    } cases[] = {
        {METHOD_GET, get}, {METHOD_HEAD, head}, {METHOD_POST, post}, {METHOD_OPTIONS, 1}, {METHOD_OTHER, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route_match result = match(cases[i].method, path);
        cr_assert(eq(int, result.route, route), "path %s, method %d", path, (int)cases[i].method);
        cr_assert(eq(int, result.method_allowed, cases[i].allowed), "path %s, method %d", path, (int)cases[i].method);
        cr_assert(not(zero(ptr, (void *)result.allow)), "path %s", path);
        cr_assert(eq(str, (char *)result.allow, (char *)allow), "path %s", path);
    }
}

/* --- Methods -------------------------------------------------------------- */

Test(routes, parses_known_methods)
{
    cr_assert(eq(int, routes_parse_method("GET", 3), METHOD_GET));
    cr_assert(eq(int, routes_parse_method("HEAD", 4), METHOD_HEAD));
    cr_assert(eq(int, routes_parse_method("POST", 4), METHOD_POST));
    cr_assert(eq(int, routes_parse_method("OPTIONS", 7), METHOD_OPTIONS));
}

Test(routes, other_methods_are_other)
{
    const char *names[] = {"PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "FOO", ""};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert(eq(int, routes_parse_method(names[i], strlen(names[i])), METHOD_OTHER), "method \"%s\"", names[i]);
}

Test(routes, method_names_are_case_sensitive)
{
    cr_assert(eq(int, routes_parse_method("get", 3), METHOD_OTHER));
    cr_assert(eq(int, routes_parse_method("Get", 3), METHOD_OTHER));
    cr_assert(eq(int, routes_parse_method("post", 4), METHOD_OTHER));
    cr_assert(eq(int, routes_parse_method("options", 7), METHOD_OTHER));
}

Test(routes, method_must_match_whole_length)
{
    cr_assert(eq(int, routes_parse_method("GE", 2), METHOD_OTHER));
    cr_assert(eq(int, routes_parse_method("GETS", 4), METHOD_OTHER));
    cr_assert(eq(int, routes_parse_method("POST ", 5), METHOD_OTHER));
    cr_assert(eq(int, routes_parse_method("OPTION", 6), METHOD_OTHER));
}

Test(routes, method_reads_only_given_length)
{
    cr_assert(eq(int, routes_parse_method("GETX", 3), METHOD_GET));
    cr_assert(eq(int, routes_parse_method("POST /", 4), METHOD_POST));
}

/* --- Known paths and their methods ---------------------------------------- */

Test(routes, root_allows_get_and_head)
{
    assert_methods("/", ROUTE_ROOT, "GET, HEAD, OPTIONS", 1, 1, 0);
}

Test(routes, health_allows_get_and_head)
{
    assert_methods("/health", ROUTE_HEALTH, "GET, HEAD, OPTIONS", 1, 1, 0);
}

Test(routes, conversations_allows_get_and_post)
{
    assert_methods("/conversations", ROUTE_CONVERSATIONS, "GET, HEAD, POST, OPTIONS", 1, 1, 1);
}

Test(routes, conversation_allows_get_only)
{
    assert_methods("/conversations/c1", ROUTE_CONVERSATION, "GET, HEAD, OPTIONS", 1, 1, 0);
}

Test(routes, messages_allows_post_only)
{
    assert_methods("/conversations/c1/messages", ROUTE_MESSAGES, "POST, OPTIONS", 0, 0, 1);
}

Test(routes, disallowed_method_keeps_route_and_allow)
{
    route_match result = match(METHOD_POST, "/health");
    cr_assert(eq(int, result.route, ROUTE_HEALTH));
    cr_assert(eq(int, result.method_allowed, 0));
    cr_assert(eq(str, (char *)result.allow, "GET, HEAD, OPTIONS"));

    result = match(METHOD_GET, "/conversations/c1/messages");
    cr_assert(eq(int, result.route, ROUTE_MESSAGES));
    cr_assert(eq(int, result.method_allowed, 0));
    cr_assert(eq(str, (char *)result.allow, "POST, OPTIONS"));
    cr_assert(eq(sz, result.id_len, 2));
}

/* --- The :id segment -------------------------------------------------------- */

Test(routes, conversation_id_points_into_path)
{
    const char *path = "/conversations/0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b";
    route_match result = match(METHOD_GET, path);

    cr_assert(eq(int, result.route, ROUTE_CONVERSATION));
    cr_assert(eq(ptr, (void *)result.id, (void *)(path + ID_OFFSET)));
    cr_assert(eq(sz, result.id_len, 36));
}

Test(routes, messages_id_stops_before_slash)
{
    const char *path = "/conversations/abc/messages";
    route_match result = match(METHOD_POST, path);

    cr_assert(eq(int, result.route, ROUTE_MESSAGES));
    cr_assert(eq(ptr, (void *)result.id, (void *)(path + ID_OFFSET)));
    cr_assert(eq(sz, result.id_len, 3));
}

Test(routes, one_character_id_matches)
{
    const char *path = "/conversations/x";
    route_match result = match(METHOD_GET, path);
    cr_assert(eq(int, result.route, ROUTE_CONVERSATION));
    cr_assert(eq(ptr, (void *)result.id, (void *)(path + ID_OFFSET)));
    cr_assert(eq(sz, result.id_len, 1));

    path = "/conversations/x/messages";
    result = match(METHOD_POST, path);
    cr_assert(eq(int, result.route, ROUTE_MESSAGES));
    cr_assert(eq(ptr, (void *)result.id, (void *)(path + ID_OFFSET)));
    cr_assert(eq(sz, result.id_len, 1));
}

Test(routes, id_is_taken_as_is)
{
    /* The matcher does not check the id, because the store rejects ids it
     * does not know. */
    const char *path = "/conversations/messages";
    route_match result = match(METHOD_GET, path);
    cr_assert(eq(int, result.route, ROUTE_CONVERSATION));
    cr_assert(eq(ptr, (void *)result.id, (void *)(path + ID_OFFSET)));
    cr_assert(eq(sz, result.id_len, 8));

    path = "/conversations/a%20b";
    result = match(METHOD_GET, path);
    cr_assert(eq(int, result.route, ROUTE_CONVERSATION));
    cr_assert(eq(sz, result.id_len, 5));
}

Test(routes, routes_without_id_have_none)
{
    const char *paths[] = {"/", "/health", "/conversations"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        route_match result = match(METHOD_GET, paths[i]);
        cr_assert(zero(ptr, (void *)result.id), "path %s", paths[i]);
        cr_assert(eq(sz, result.id_len, 0), "path %s", paths[i]);
    }
}

/* --- Org keys ----------------------------------------------------------------- */

Test(routes, only_conversation_routes_need_org_key)
{
    const struct {
        const char *path;
        int needs_org_key;
    } cases[] = {
        {"/", 0}, {"/health", 0}, {"/conversations", 1}, {"/conversations/c1", 1}, {"/conversations/c1/messages", 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert(eq(int, match(METHOD_GET, cases[i].path).needs_org_key, cases[i].needs_org_key), "path %s", cases[i].path);
        cr_assert(eq(int, match(METHOD_POST, cases[i].path).needs_org_key, cases[i].needs_org_key), "path %s", cases[i].path);
        cr_assert(eq(int, match(METHOD_OPTIONS, cases[i].path).needs_org_key, cases[i].needs_org_key), "path %s", cases[i].path);
    }
}

/* --- Unknown paths -------------------------------------------------------------- */

Test(routes, empty_path_is_not_found)
{
    assert_not_found("", 0);
}

Test(routes, conversations_with_trailing_slash_is_not_found)
{
    assert_not_found("/conversations/", strlen("/conversations/"));
}

Test(routes, messages_without_id_is_not_found)
{
    assert_not_found("/conversations//messages", strlen("/conversations//messages"));
}

Test(routes, segment_after_messages_is_not_found)
{
    assert_not_found("/conversations/x/messages/extra", strlen("/conversations/x/messages/extra"));
    assert_not_found("/conversations/x/messages/", strlen("/conversations/x/messages/"));
}

Test(routes, other_segment_after_id_is_not_found)
{
    assert_not_found("/conversations/x/other", strlen("/conversations/x/other"));
    assert_not_found("/conversations/x/", strlen("/conversations/x/"));
    assert_not_found("/conversations/x/messagesx", strlen("/conversations/x/messagesx"));
    assert_not_found("/conversations/x/message", strlen("/conversations/x/message"));
}

Test(routes, longer_name_is_not_found)
{
    assert_not_found("/conversationsx", strlen("/conversationsx"));
    assert_not_found("/healthz", strlen("/healthz"));
}

Test(routes, segment_after_health_is_not_found)
{
    assert_not_found("/health/x", strlen("/health/x"));
    assert_not_found("/health/", strlen("/health/"));
}

Test(routes, paths_are_case_sensitive)
{
    assert_not_found("/Health", strlen("/Health"));
    assert_not_found("/CONVERSATIONS", strlen("/CONVERSATIONS"));
    assert_not_found("/conversations/x/Messages", strlen("/conversations/x/Messages"));
}

Test(routes, other_paths_are_not_found)
{
    const char *paths[] = {"//", "/x", "health", "conversations", "/conversation", "/messages", "/conversations/x/y/z"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_not_found(paths[i], strlen(paths[i]));
}

/* --- Path length ------------------------------------------------------------------ */

Test(routes, path_reads_only_given_length)
{
    /* h2o's path is not NUL-terminated, so only `path_len` bytes count. */
    const char *health = "/healthz";
    cr_assert(eq(int, routes_match(METHOD_GET, health, 7).route, ROUTE_HEALTH));

    const char *root = "/health";
    cr_assert(eq(int, routes_match(METHOD_GET, root, 1).route, ROUTE_ROOT));

    const char *messages = "/conversations/abc/messages/extra";
    route_match result = routes_match(METHOD_POST, messages, strlen("/conversations/abc/messages"));
    cr_assert(eq(int, result.route, ROUTE_MESSAGES));
    cr_assert(eq(sz, result.id_len, 3));

    const char *conversation = "/conversations/abc/messages";
    result = routes_match(METHOD_GET, conversation, strlen("/conversations/abc"));
    cr_assert(eq(int, result.route, ROUTE_CONVERSATION));
    cr_assert(eq(ptr, (void *)result.id, (void *)(conversation + ID_OFFSET)));
    cr_assert(eq(sz, result.id_len, 3));
}

Test(routes, truncated_prefix_is_not_found)
{
    const char *path = "/conversations/abc";
    assert_not_found(path, strlen("/conversations/"));
    assert_not_found(path, strlen("/conversation"));
}

/* --- Names for metrics ------------------------------------------------------ */

Test(routes, route_names_are_path_patterns)
{
    cr_assert(eq(str, (char *)routes_name(ROUTE_ROOT), "/"));
    cr_assert(eq(str, (char *)routes_name(ROUTE_HEALTH), "/health"));
    cr_assert(eq(str, (char *)routes_name(ROUTE_CONVERSATIONS), "/conversations"));
    cr_assert(eq(str, (char *)routes_name(ROUTE_CONVERSATION), "/conversations/:id"));
    cr_assert(eq(str, (char *)routes_name(ROUTE_MESSAGES), "/conversations/:id/messages"));
    cr_assert(eq(str, (char *)routes_name(ROUTE_NOT_FOUND), "unmatched"));
}

Test(routes, method_names_round_trip)
{
    const char *names[] = {"GET", "HEAD", "POST", "OPTIONS"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert(eq(str, (char *)routes_method_name(routes_parse_method(names[i], strlen(names[i]))), (char *)names[i]));
    cr_assert(eq(str, (char *)routes_method_name(routes_parse_method("DELETE", 6)), "other"));
}
