/* Unit tests of the real-time service's room registry
 * (realtime-svc/rooms.c): subscription callbacks, delivery walks that
 * survive members leaving, and a randomized run checked against a model. */
#include "rooms.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_LOG_SIZE 8

/* Counts the subscription callbacks of a registry and keeps the first
 * prefixes they received, in call order. */
typedef struct {
    size_t subscribe_calls;
    size_t unsubscribe_calls;
    char subscribed[PREFIX_LOG_SIZE][80];
    char unsubscribed[PREFIX_LOG_SIZE][80];
    int subscribe_status; /* what on_subscribe returns */
} subscription_log;

static int on_subscribe(const char *prefix, void *data)
{
    subscription_log *log = data;
    if (log->subscribe_calls < PREFIX_LOG_SIZE)
        snprintf(log->subscribed[log->subscribe_calls], sizeof(log->subscribed[0]), "%s", prefix);
    log->subscribe_calls++;
    return log->subscribe_status;
}

static int on_unsubscribe(const char *prefix, void *data)
{
    subscription_log *log = data;
    if (log->unsubscribe_calls < PREFIX_LOG_SIZE)
        snprintf(log->unsubscribed[log->unsubscribe_calls], sizeof(log->unsubscribed[0]), "%s", prefix);
    log->unsubscribe_calls++;
    return 0;
}

/* The registry and subscription log of the current test. */
static room_registry *registry;
static subscription_log subscriptions;

static void setup(void)
{
    memset(&subscriptions, 0, sizeof(subscriptions));
    registry = room_registry_new(on_subscribe, on_unsubscribe, &subscriptions);
    cr_assert(not(zero(ptr, registry)));
}

static void teardown(void)
{
    room_registry_destroy(&registry);
}

TestSuite(rooms, .init = setup, .fini = teardown);

static int join(const char *org, void *member)
{
    return room_join(registry, org, strlen(org), member);
}

static size_t member_count(const char *org)
{
    return room_member_count(registry, org, strlen(org));
}

/* Records the members that a walk visits, and what each visit does to the
 * room: make the visited member leave, make another member leave or join a
 * new member. */
typedef struct {
    void *visited[16];
    size_t visit_count;
    void *trigger_member; /* the member whose visit makes the two below leave or join */
    void *removed_member; /* made to leave when trigger_member is visited */
    void *joining_member; /* made to join `org` when trigger_member is visited */
    const char *org;
    bool leave_self; /* every visited member leaves */
} walk_log;

static void on_member(void *member, void *data)
{
    walk_log *log = data;
    cr_assert(lt(sz, log->visit_count, sizeof(log->visited) / sizeof(log->visited[0])));
    log->visited[log->visit_count++] = member;

    if (log->leave_self)
        room_leave(registry, member);
    if (member == log->trigger_member && log->removed_member)
        room_leave(registry, log->removed_member);
    if (member == log->trigger_member && log->joining_member)
        cr_assert(eq(int, join(log->org, log->joining_member), 0));
}

Test(rooms, subscribes_once_on_first_join)
{
    int members[3];

    for (int i = 0; i < 3; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    cr_assert(eq(sz, subscriptions.subscribe_calls, 1));
    cr_assert(eq(str, subscriptions.subscribed[0], "org:org_1:"));
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 0));
    cr_assert(eq(sz, member_count("org_1"), 3));
    cr_assert(eq(sz, room_count(registry), 1));
}

Test(rooms, unsubscribes_once_after_last_leave)
{
    int members[3];
    for (int i = 0; i < 3; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    room_leave(registry, &members[0]);
    room_leave(registry, &members[1]);
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 0));
    cr_assert(eq(sz, member_count("org_1"), 1));

    room_leave(registry, &members[2]);
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 1));
    cr_assert(eq(str, subscriptions.unsubscribed[0], "org:org_1:"));
    cr_assert(eq(sz, member_count("org_1"), 0));
    cr_assert(eq(sz, room_count(registry), 0));
    cr_assert(eq(sz, subscriptions.subscribe_calls, 1));
}

Test(rooms, org_1_and_org_10_are_separate_rooms)
{
    int first;
    int second;

    cr_assert(eq(int, join("org_1", &first), 0));
    cr_assert(eq(int, join("org_10", &second), 0));

    cr_assert(eq(sz, room_count(registry), 2));
    cr_assert(eq(sz, member_count("org_1"), 1));
    cr_assert(eq(sz, member_count("org_10"), 1));
    cr_assert(eq(sz, subscriptions.subscribe_calls, 2));
    cr_assert(eq(str, subscriptions.subscribed[0], "org:org_1:"));
    cr_assert(eq(str, subscriptions.subscribed[1], "org:org_10:"));

    room_leave(registry, &second);
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 1));
    cr_assert(eq(str, subscriptions.unsubscribed[0], "org:org_10:"));
    cr_assert(eq(sz, member_count("org_1"), 1));
}

Test(rooms, delivery_reaches_only_org_members)
{
    int org_1_members[3];
    int org_10_member;
    int org_2_member;
    for (int i = 0; i < 3; i++)
        cr_assert(eq(int, join("org_1", &org_1_members[i]), 0));
    cr_assert(eq(int, join("org_10", &org_10_member), 0));
    cr_assert(eq(int, join("org_2", &org_2_member), 0));

    walk_log log = {0};
    size_t visited = room_for_each_member(registry, "org_1", 5, on_member, &log);

    cr_assert(eq(sz, visited, 3));
    cr_assert(eq(sz, log.visit_count, 3));
    for (int i = 0; i < 3; i++)
        cr_assert(eq(ptr, log.visited[i], &org_1_members[i]), "visit %d", i);
}

Test(rooms, delivery_to_org_without_room)
{
    int member;
    cr_assert(eq(int, join("org_1", &member), 0));

    walk_log log = {0};
    cr_assert(eq(sz, room_for_each_member(registry, "org_2", 5, on_member, &log), 0));
    cr_assert(eq(sz, room_for_each_member(registry, "bad org", 7, on_member, &log), 0));
    cr_assert(eq(sz, log.visit_count, 0));
}

Test(rooms, member_leaving_itself_during_delivery)
{
    int members[3];
    for (int i = 0; i < 3; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    walk_log log = {.trigger_member = &members[1], .removed_member = &members[1]};
    size_t visited = room_for_each_member(registry, "org_1", 5, on_member, &log);

    cr_assert(eq(sz, visited, 3));
    cr_assert(eq(ptr, log.visited[0], &members[0]));
    cr_assert(eq(ptr, log.visited[1], &members[1]));
    cr_assert(eq(ptr, log.visited[2], &members[2]));
    cr_assert(eq(sz, member_count("org_1"), 2));
}

Test(rooms, member_removed_during_delivery_is_skipped)
{
    int members[4];
    for (int i = 0; i < 4; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    /* Visiting members[1] makes members[2], the next member, leave. */
    walk_log log = {.trigger_member = &members[1], .removed_member = &members[2]};
    size_t visited = room_for_each_member(registry, "org_1", 5, on_member, &log);

    cr_assert(eq(sz, visited, 3));
    cr_assert(eq(ptr, log.visited[0], &members[0]));
    cr_assert(eq(ptr, log.visited[1], &members[1]));
    cr_assert(eq(ptr, log.visited[2], &members[3]));
    cr_assert(eq(sz, member_count("org_1"), 3));
}

Test(rooms, member_visited_earlier_can_be_removed)
{
    int members[3];
    for (int i = 0; i < 3; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    walk_log log = {.trigger_member = &members[2], .removed_member = &members[0]};
    size_t visited = room_for_each_member(registry, "org_1", 5, on_member, &log);

    cr_assert(eq(sz, visited, 3));
    cr_assert(eq(ptr, log.visited[2], &members[2]));
    cr_assert(eq(sz, member_count("org_1"), 2));
}

Test(rooms, room_emptied_during_delivery)
{
    int members[3];
    for (int i = 0; i < 3; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    walk_log log = {.leave_self = true};
    size_t visited = room_for_each_member(registry, "org_1", 5, on_member, &log);

    cr_assert(eq(sz, visited, 3));
    cr_assert(eq(sz, room_count(registry), 0));
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 1));
    cr_assert(eq(str, subscriptions.unsubscribed[0], "org:org_1:"));
}

Test(rooms, last_member_removing_first_empties_room)
{
    int members[2];
    for (int i = 0; i < 2; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    /* members[0] removes members[1] before its turn, then leaves itself. */
    walk_log log = {.trigger_member = &members[0], .removed_member = &members[1], .leave_self = true};
    size_t visited = room_for_each_member(registry, "org_1", 5, on_member, &log);

    cr_assert(eq(sz, visited, 1));
    cr_assert(eq(sz, room_count(registry), 0));
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 1));
}

/* Outer walk callback of nested_delivery_skips_removed_member: its first visit
 * walks the same room again with the walk_log at `data`. */
static void walk_again_on_first_visit(void *member, void *data)
{
    static size_t outer_visits;
    walk_log *inner = data;
    (void)member;

    if (outer_visits++ == 0) {
        size_t inner_visited = room_for_each_member(registry, "org_1", 5, on_member, inner);
        cr_assert(eq(sz, inner_visited, 2));
    }
}

Test(rooms, nested_delivery_skips_removed_member)
{
    int members[3];
    for (int i = 0; i < 3; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    /* The inner walk removes members[2] while the outer walk is at members[0]. */
    walk_log inner = {.trigger_member = &members[1], .removed_member = &members[2]};
    size_t outer_visited = room_for_each_member(registry, "org_1", 5, walk_again_on_first_visit, &inner);

    cr_assert(eq(sz, outer_visited, 2));
    cr_assert(eq(ptr, inner.visited[0], &members[0]));
    cr_assert(eq(ptr, inner.visited[1], &members[1]));
    cr_assert(eq(sz, member_count("org_1"), 2));
}

Test(rooms, member_joining_during_delivery_is_not_visited)
{
    int members[2];
    int newcomer;
    for (int i = 0; i < 2; i++)
        cr_assert(eq(int, join("org_1", &members[i]), 0));

    walk_log log = {.trigger_member = &members[0], .joining_member = &newcomer, .org = "org_1"};
    size_t visited = room_for_each_member(registry, "org_1", 5, on_member, &log);

    cr_assert(eq(sz, visited, 2));
    cr_assert(eq(ptr, log.visited[1], &members[1]));
    cr_assert(eq(sz, member_count("org_1"), 3));
}

Test(rooms, rejoin_after_empty_room_resubscribes)
{
    int member;
    cr_assert(eq(int, join("org_1", &member), 0));
    room_leave(registry, &member);

    cr_assert(eq(int, join("org_1", &member), 0));

    cr_assert(eq(sz, subscriptions.subscribe_calls, 2));
    cr_assert(eq(str, subscriptions.subscribed[1], "org:org_1:"));
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 1));
    cr_assert(eq(sz, member_count("org_1"), 1));
}

Test(rooms, room_is_live_only_after_marked_until_it_empties)
{
    int first, second;
    cr_assert(eq(int, join("org_1", &first), 0));
    cr_assert(not(room_is_live(registry, "org_1", 5)));

    room_set_live(registry, "org_1", 5);
    cr_assert(room_is_live(registry, "org_1", 5));
    cr_assert(eq(int, join("org_1", &second), 0));
    cr_assert(room_is_live(registry, "org_1", 5), "a second member does not reset the room");
    cr_assert(not(room_is_live(registry, "org_10", 6)));

    room_leave(registry, &first);
    room_leave(registry, &second);
    cr_assert(eq(int, join("org_1", &first), 0));
    cr_assert(not(room_is_live(registry, "org_1", 5)), "a reopened room waits for its new subscription");
}

Test(rooms, marking_an_org_without_room_does_nothing)
{
    room_set_live(registry, "org_1", 5);
    cr_assert(not(room_is_live(registry, "org_1", 5)));
    cr_assert(eq(sz, room_count(registry), 0));
}

Test(rooms, join_rejects_invalid_org_ids)
{
    char too_long[66];
    memset(too_long, 'a', 65);
    too_long[65] = '\0';
    const char *invalid[] = {"", too_long, "org:1", "org 1", "org/1", "org.1", "\xc3\xa9t\xc3\xa9"};
    int member;

    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        cr_assert(eq(int, join(invalid[i], &member), ROOM_ERR_INVALID_ORG), "org id \"%s\"", invalid[i]);

    cr_assert(eq(int, room_join(registry, "org_1\0x", 7, &member), ROOM_ERR_INVALID_ORG));
    cr_assert(eq(sz, subscriptions.subscribe_calls, 0));
    cr_assert(eq(sz, room_count(registry), 0));
}

Test(rooms, join_accepts_longest_org_id)
{
    char longest[65];
    memset(longest, 'Z', 64);
    longest[64] = '\0';
    int member;
    int other_member;

    cr_assert(eq(int, join(longest, &member), 0));
    cr_assert(eq(int, join("A-b_9", &other_member), 0));
    cr_assert(eq(sz, member_count(longest), 1));
    cr_assert(eq(str, subscriptions.subscribed[0], "org:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ:"));
}

Test(rooms, join_rejects_member_already_in_room)
{
    int member;
    cr_assert(eq(int, join("org_1", &member), 0));

    cr_assert(eq(int, join("org_1", &member), ROOM_ERR_ALREADY_MEMBER));
    cr_assert(eq(int, join("org_2", &member), ROOM_ERR_ALREADY_MEMBER));
    cr_assert(eq(sz, member_count("org_1"), 1));
    cr_assert(eq(sz, room_count(registry), 1));
    cr_assert(eq(sz, subscriptions.subscribe_calls, 1));
}

Test(rooms, leave_of_non_member_does_nothing)
{
    int member;
    int stranger;
    cr_assert(eq(int, join("org_1", &member), 0));

    room_leave(registry, &stranger);
    room_leave(registry, &member);
    room_leave(registry, &member);

    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 1));
    cr_assert(eq(sz, room_count(registry), 0));
}

Test(rooms, failed_subscribe_rejects_join)
{
    int member;
    subscriptions.subscribe_status = -1;

    cr_assert(eq(int, join("org_1", &member), ROOM_ERR_SUBSCRIBE));
    cr_assert(eq(sz, room_count(registry), 0));
    cr_assert(eq(sz, member_count("org_1"), 0));

    /* The member was not recorded, so it can join once subscribing works. */
    subscriptions.subscribe_status = 0;
    cr_assert(eq(int, join("org_1", &member), 0));
    cr_assert(eq(sz, member_count("org_1"), 1));
    cr_assert(eq(sz, subscriptions.subscribe_calls, 2));
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 0));
}

Test(rooms, destroy_with_members_left)
{
    int members[5];
    for (int i = 0; i < 5; i++)
        cr_assert(eq(int, join(i % 2 ? "org_1" : "org_2", &members[i]), 0));

    room_registry_destroy(&registry);

    cr_assert(zero(ptr, registry));
    cr_assert(eq(sz, subscriptions.unsubscribe_calls, 0));
    room_registry_destroy(&registry);
    room_registry_destroy(NULL);
}

Test(rooms, callbacks_may_be_null)
{
    room_registry *quiet = room_registry_new(NULL, NULL, NULL);
    cr_assert(not(zero(ptr, quiet)));
    int member;

    cr_assert(eq(int, room_join(quiet, "org_1", 5, &member), 0));
    room_leave(quiet, &member);
    cr_assert(eq(sz, room_count(quiet), 0));

    room_registry_destroy(&quiet);
}

/* Randomized run: 10000 members over 100 orgs join, leave and rejoin in a
 * random order, checked against arrays that model the registry. The seed is
 * fixed so that a failure can be replayed. */

#define MODEL_MEMBERS 10000
#define MODEL_ORGS 100

typedef struct {
    int org_of_member[MODEL_MEMBERS]; /* -1 when the member is in no room */
    size_t members_of_org[MODEL_ORGS];
    bool subscribed[MODEL_ORGS];
    size_t rooms;
} room_model;

static room_model model;
static char model_members[MODEL_MEMBERS];

static void org_name(int org, char *out, size_t out_size)
{
    snprintf(out, out_size, "org_%d", org);
}

/* Parses the org index out of "org:org_<n>:". */
static int org_of_prefix(const char *prefix)
{
    int org = -1;
    cr_assert(eq(int, sscanf(prefix, "org:org_%d:", &org), 1), "prefix %s", prefix);
    return org;
}

static int on_model_subscribe(const char *prefix, void *data)
{
    (void)data;
    int org = org_of_prefix(prefix);
    cr_assert(not(model.subscribed[org]), "second subscribe to %s", prefix);
    cr_assert(eq(sz, model.members_of_org[org], 0), "subscribe to %s", prefix);
    model.subscribed[org] = true;
    return 0;
}

static int on_model_unsubscribe(const char *prefix, void *data)
{
    (void)data;
    int org = org_of_prefix(prefix);
    cr_assert(model.subscribed[org], "unsubscribe from %s without subscribe", prefix);
    model.subscribed[org] = false;
    return 0;
}

static void model_join(room_registry *rooms, int member, int org)
{
    char name[16];
    org_name(org, name, sizeof(name));
    cr_assert(eq(int, room_join(rooms, name, strlen(name), &model_members[member]), 0), "member %d", member);

    if (model.members_of_org[org]++ == 0)
        model.rooms++;
    model.org_of_member[member] = org;
    cr_assert(model.subscribed[org], "member %d joined %s unsubscribed", member, name);
}

static void model_leave(room_registry *rooms, int member)
{
    int org = model.org_of_member[member];
    room_leave(rooms, &model_members[member]);

    if (--model.members_of_org[org] == 0)
        model.rooms--;
    model.org_of_member[member] = -1;
    cr_assert(eq(int, (int)model.subscribed[org], (int)(model.members_of_org[org] > 0)), "member %d left org %d", member, org);
}

static void check_against_model(const room_registry *rooms)
{
    cr_assert(eq(sz, room_count(rooms), model.rooms));
    for (int org = 0; org < MODEL_ORGS; org++) {
        char name[16];
        org_name(org, name, sizeof(name));
        cr_assert(eq(sz, room_member_count(rooms, name, strlen(name)), model.members_of_org[org]), "org %s", name);
    }
}

/* Checks that a visited member is, in the model, in the org at `data`. */
static void check_member_org(void *member, void *data)
{
    int index = (int)((char *)member - model_members);
    cr_assert(eq(int, model.org_of_member[index], *(int *)data), "member %d", index);
}

static void shuffle(int *values, size_t count)
{
    for (size_t i = count - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        int swap = values[i];
        values[i] = values[j];
        values[j] = swap;
    }
}

Test(rooms, random_joins_and_leaves_match_model)
{
    srand(20261204);
    memset(&model, 0, sizeof(model));
    for (int i = 0; i < MODEL_MEMBERS; i++)
        model.org_of_member[i] = -1;
    room_registry *rooms = room_registry_new(on_model_subscribe, on_model_unsubscribe, NULL);
    cr_assert(not(zero(ptr, rooms)));

    static int order[MODEL_MEMBERS];
    for (int i = 0; i < MODEL_MEMBERS; i++)
        order[i] = i;

    /* Everyone joins a random org, in random order. */
    shuffle(order, MODEL_MEMBERS);
    for (int i = 0; i < MODEL_MEMBERS; i++) {
        model_join(rooms, order[i], rand() % MODEL_ORGS);
        if (i % 1000 == 999)
            check_against_model(rooms);
    }

    /* Random members leave, or join a random org when they are in none. */
    for (int step = 0; step < 20000; step++) {
        int member = rand() % MODEL_MEMBERS;
        if (model.org_of_member[member] >= 0)
            model_leave(rooms, member);
        else
            model_join(rooms, member, rand() % MODEL_ORGS);
        if (step % 1000 == 999)
            check_against_model(rooms);
    }

    /* A walk visits exactly the members of its room. */
    for (int org = 0; org < MODEL_ORGS; org += 17) {
        char name[16];
        org_name(org, name, sizeof(name));
        size_t visited = room_for_each_member(rooms, name, strlen(name), check_member_org, &org);
        cr_assert(eq(sz, visited, model.members_of_org[org]), "org %s", name);
    }

    /* Everyone still in a room leaves, in random order. */
    shuffle(order, MODEL_MEMBERS);
    for (int i = 0; i < MODEL_MEMBERS; i++) {
        if (model.org_of_member[order[i]] >= 0)
            model_leave(rooms, order[i]);
        if (i % 1000 == 999)
            check_against_model(rooms);
    }

    cr_assert(eq(sz, room_count(rooms), 0));
    for (int org = 0; org < MODEL_ORGS; org++)
        cr_assert(not(model.subscribed[org]), "org_%d still subscribed", org);
    room_registry_destroy(&rooms);
}
