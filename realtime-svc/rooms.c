/* The room registry: two hash tables, rooms by org id and memberships by
 * member pointer, both keyed with SipHash-2-4 under a random key so that a
 * client choosing org ids cannot force every room into one bucket. Each room
 * keeps its members in a doubly linked list in join order, so that joins and
 * leaves take constant time and a delivery walk can survive removals. */
#include "rooms.h"
#include "hv_hash.h"

#include "hv_event.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bucket count of a new table. Tables double when they hold more entries
 * than buckets and never shrink. */
#define INITIAL_BUCKET_COUNT 16

/* Chain link embedded in each entry of a hash table. The hash is stored so
 * that growing the table needs no rehashing of keys. */
typedef struct hash_node {
    struct hash_node *next;
    uint64_t hash;
} hash_node;

typedef struct {
    hash_node **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
} hash_table;

typedef struct room room;

typedef struct membership {
    hash_node by_member; /* link in room_registry.members, first so that a node casts to its entry */
    void *member;
    room *room;
    struct membership *previous;
    struct membership *next;
    uint64_t join_serial; /* order of joins across the registry, which walks use to skip later joins */
} membership;

/* The cursor of one room_for_each_member call in progress. A room can have
 * several when a member callback walks the same room again. */
typedef struct walk {
    membership *next;      /* next member to visit, moved on when that member leaves */
    uint64_t serial_limit; /* members with a join_serial at or above this joined during the walk */
    struct walk *outer;
} walk;

struct room {
    hash_node by_org; /* link in room_registry.rooms, first so that a node casts to its entry */
    membership *first;
    membership *last;
    size_t member_count;
    walk *walks; /* walks in progress, innermost first */
    /* Set when the room emptied during a walk. Such a room has left the table
     * and is freed when its last walk ends. */
    bool detached;
    bool live; /* the subscription has reached the publisher; see room_set_live */
    size_t org_len;
    char org[HV_ORG_ID_MAX + 1];
    char prefix[HV_TOPIC_SIZE];
};

struct room_registry {
    hash_table rooms;
    hash_table members;
    uint64_t hash_key[2];
    uint64_t next_join_serial;
    room_subscription_cb on_subscribe;
    room_subscription_cb on_unsubscribe;
    void *data;
};

/* Chained hash table of intrusive nodes. Lookups walk a bucket themselves,
 * because each table compares a different key. */

static int table_init(hash_table *table)
{
    table->buckets = calloc(INITIAL_BUCKET_COUNT, sizeof(*table->buckets));
    if (!table->buckets)
        return -1;
    table->bucket_count = INITIAL_BUCKET_COUNT;
    table->count = 0;
    return 0;
}

static hash_node **table_bucket(const hash_table *table, uint64_t hash)
{
    return &table->buckets[hash & (table->bucket_count - 1)];
}

/* Doubles the bucket array. A failed allocation keeps the old array, which
 * still works with longer chains, so the caller need not handle it. */
static void table_grow(hash_table *table)
{
    size_t new_count = table->bucket_count * 2;
    hash_node **new_buckets = calloc(new_count, sizeof(*new_buckets));
    if (!new_buckets)
        return;

    for (size_t i = 0; i < table->bucket_count; i++) {
        hash_node *node = table->buckets[i];
        while (node) {
            hash_node *next = node->next;
            hash_node **bucket = &new_buckets[node->hash & (new_count - 1)];
            node->next = *bucket;
            *bucket = node;
            node = next;
        }
    }
    free(table->buckets);
    table->buckets = new_buckets;
    table->bucket_count = new_count;
}

static void table_insert(hash_table *table, hash_node *node)
{
    if (table->count >= table->bucket_count)
        table_grow(table);
    hash_node **bucket = table_bucket(table, node->hash);
    node->next = *bucket;
    *bucket = node;
    table->count++;
}

static void table_remove(hash_table *table, hash_node *node)
{
    hash_node **link = table_bucket(table, node->hash);
    while (*link != node)
        link = &(*link)->next;
    *link = node->next;
    table->count--;
}

/* Lookups by key. */

static uint64_t member_hash(const room_registry *registry, const void *member)
{
    uintptr_t address = (uintptr_t)member;
    return hv_siphash(registry->hash_key, &address, sizeof(address));
}

static membership *find_membership(const room_registry *registry, const void *member)
{
    uint64_t hash = member_hash(registry, member);
    for (hash_node *node = *table_bucket(&registry->members, hash); node; node = node->next) {
        membership *entry = (membership *)node;
        if (node->hash == hash && entry->member == member)
            return entry;
    }
    return NULL;
}

static room *find_room(const room_registry *registry, const char *org, size_t org_len, uint64_t hash)
{
    for (hash_node *node = *table_bucket(&registry->rooms, hash); node; node = node->next) {
        room *entry = (room *)node;
        if (node->hash == hash && entry->org_len == org_len && memcmp(entry->org, org, org_len) == 0)
            return entry;
    }
    return NULL;
}

/* Finds the room of a valid org id, or returns NULL. */
static room *lookup_room(const room_registry *registry, const char *org, size_t org_len)
{
    if (!hv_org_id_is_valid(org, org_len))
        return NULL;
    return find_room(registry, org, org_len, hv_siphash(registry->hash_key, org, org_len));
}

/* The registry. */

room_registry *room_registry_new(room_subscription_cb on_subscribe, room_subscription_cb on_unsubscribe, void *data)
{
    room_registry *registry = calloc(1, sizeof(*registry));
    if (!registry)
        return NULL;

    if (hv_hash_random_key(registry->hash_key) != 0)
        goto fail;
    if (table_init(&registry->rooms) != 0)
        goto fail;
    if (table_init(&registry->members) != 0)
        goto fail;

    registry->on_subscribe = on_subscribe;
    registry->on_unsubscribe = on_unsubscribe;
    registry->data = data;
    return registry;

fail:
    free(registry->rooms.buckets);
    free(registry->members.buckets);
    free(registry);
    return NULL;
}

static void free_room(room *entry)
{
    membership *current = entry->first;
    while (current) {
        membership *next = current->next;
        free(current);
        current = next;
    }
    free(entry);
}

void room_registry_destroy(room_registry **registry)
{
    if (!registry || !*registry)
        return;
    room_registry *self = *registry;

    /* Every membership belongs to exactly one room in the table, because
     * detached rooms exist only during a walk and destroy may not run then. */
    for (size_t i = 0; i < self->rooms.bucket_count; i++) {
        hash_node *node = self->rooms.buckets[i];
        while (node) {
            hash_node *next = node->next;
            free_room((room *)node);
            node = next;
        }
    }

    free(self->rooms.buckets);
    free(self->members.buckets);
    free(self);
    *registry = NULL;
}

/* Creates the room of a valid org id and subscribes to its prefix. The room
 * is not yet in the table. Returns 0 or a ROOM_ERR_* code. */
static int open_room(room_registry *registry, const char *org, size_t org_len, uint64_t hash, room **out)
{
    room *entry = calloc(1, sizeof(*entry));
    if (!entry)
        return ROOM_ERR_NO_MEMORY;

    entry->by_org.hash = hash;
    entry->org_len = org_len;
    memcpy(entry->org, org, org_len);
    int prefix_len = hv_topic_prefix(entry->prefix, sizeof(entry->prefix), org, org_len);
    /* The org id was validated and HV_TOPIC_SIZE leaves room for the longest one. */
    assert(prefix_len > 0);
    (void)prefix_len;

    if (registry->on_subscribe && registry->on_subscribe(entry->prefix, registry->data) != 0) {
        free(entry);
        return ROOM_ERR_SUBSCRIBE;
    }
    *out = entry;
    return 0;
}

int room_join(room_registry *registry, const char *org, size_t org_len, void *member)
{
    assert(member != NULL);
    if (!hv_org_id_is_valid(org, org_len))
        return ROOM_ERR_INVALID_ORG;
    if (find_membership(registry, member))
        return ROOM_ERR_ALREADY_MEMBER;

    /* Allocate the membership before subscribing, so that no failure after a
     * successful subscribe needs to be undone. */
    membership *entry = calloc(1, sizeof(*entry));
    if (!entry)
        return ROOM_ERR_NO_MEMORY;

    uint64_t org_hash = hv_siphash(registry->hash_key, org, org_len);
    room *target = find_room(registry, org, org_len, org_hash);
    if (!target) {
        int status = open_room(registry, org, org_len, org_hash, &target);
        if (status != 0) {
            free(entry);
            return status;
        }
        table_insert(&registry->rooms, &target->by_org);
    }

    entry->member = member;
    entry->room = target;
    entry->join_serial = registry->next_join_serial++;
    entry->previous = target->last;
    if (target->last)
        target->last->next = entry;
    else
        target->first = entry;
    target->last = entry;
    target->member_count++;

    entry->by_member.hash = member_hash(registry, member);
    table_insert(&registry->members, &entry->by_member);
    return 0;
}

/* Unlinks a membership from its room's list, moving on any walk that was
 * about to visit it. */
static void unlink_membership(room *target, membership *entry)
{
    for (walk *cursor = target->walks; cursor; cursor = cursor->outer) {
        if (cursor->next == entry)
            cursor->next = entry->next;
    }

    if (entry->previous)
        entry->previous->next = entry->next;
    else
        target->first = entry->next;
    if (entry->next)
        entry->next->previous = entry->previous;
    else
        target->last = entry->previous;
    target->member_count--;
}

void room_leave(room_registry *registry, void *member)
{
    membership *entry = find_membership(registry, member);
    if (!entry)
        return;

    room *target = entry->room;
    table_remove(&registry->members, &entry->by_member);
    unlink_membership(target, entry);
    free(entry);
    if (target->member_count > 0)
        return;

    /* The room is empty. Taking it out of the table means that any later
     * join, even one made during a walk of this room, opens a fresh room. */
    table_remove(&registry->rooms, &target->by_org);
    if (registry->on_unsubscribe)
        (void)registry->on_unsubscribe(target->prefix, registry->data);
    if (target->walks)
        target->detached = true;
    else
        free(target);
}

size_t room_member_count(const room_registry *registry, const char *org, size_t org_len)
{
    const room *target = lookup_room(registry, org, org_len);
    return target ? target->member_count : 0;
}

void room_set_live(room_registry *registry, const char *org, size_t org_len)
{
    room *entry = lookup_room(registry, org, org_len);
    if (entry)
        entry->live = true;
}

bool room_is_live(const room_registry *registry, const char *org, size_t org_len)
{
    const room *entry = lookup_room(registry, org, org_len);
    return entry && entry->live;
}

size_t room_count(const room_registry *registry)
{
    return registry->rooms.count;
}

size_t room_for_each_member(room_registry *registry, const char *org, size_t org_len, room_member_cb callback, void *data)
{
    room *target = lookup_room(registry, org, org_len);
    if (!target)
        return 0;

    /* The cursor is linked into the room so that room_leave can move it past
     * a member that leaves, whichever member the callback removes. */
    walk cursor = {.next = target->first, .serial_limit = registry->next_join_serial, .outer = target->walks};
    target->walks = &cursor;

    size_t visited = 0;
    while (cursor.next && cursor.next->join_serial < cursor.serial_limit) {
        membership *entry = cursor.next;
        cursor.next = entry->next;
        visited++;
        /* `entry` may be freed by the callback, so it is not used after. */
        callback(entry->member, data);
    }

    target->walks = cursor.outer;
    if (target->detached && !target->walks)
        free(target);
    return visited;
}
