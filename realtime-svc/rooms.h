/* The room registry of the real-time service: one room per organization that
 * has live connections, named after the org id. The registry calls the
 * service back to subscribe to the org's event prefix "org:<orgId>:" when the
 * first member joins and to unsubscribe when the last member leaves. It walks
 * a room's members so that one encoded event is written to each of them. It
 * is not thread-safe, because the service's event loop alone uses it. */
#ifndef ROOMS_H
#define ROOMS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct room_registry room_registry;

/* Error codes of room_join, all negative. */
enum {
    ROOM_ERR_INVALID_ORG = -1,    /* org id is not 1 to 64 characters of [A-Za-z0-9_-] */
    ROOM_ERR_ALREADY_MEMBER = -2, /* the member is already in a room, this one or another */
    ROOM_ERR_NO_MEMORY = -3,
    ROOM_ERR_SUBSCRIBE = -4, /* the subscribe callback returned an error */
};

/* Called with the NUL-terminated prefix "org:<orgId>:" of a room, which is
 * what the service passes to ZMQ_SUBSCRIBE or ZMQ_UNSUBSCRIBE. `data` is the
 * pointer given to room_registry_new. Returns 0, or a negative value on
 * failure. The callback must not call back into the registry. */
typedef int (*room_subscription_cb)(const char *prefix, void *data);

/* Called by room_for_each_member for one member. The callback may make any
 * member leave (see room_for_each_member) or join. */
typedef void (*room_member_cb)(void *member, void *data);

/* Creates an empty registry. `on_subscribe` runs when a room gets its first
 * member. A failure it returns makes that room_join fail and leaves the room
 * absent. `on_unsubscribe` runs once the last member of a room has left.
 * Its return value is ignored because the member is gone either way, so it
 * should log its own failures. Either callback may be NULL. Returns NULL
 * when memory or the random hash seed cannot be obtained. */
room_registry *room_registry_new(room_subscription_cb on_subscribe, room_subscription_cb on_unsubscribe, void *data)
    __attribute__((warn_unused_result));

/* Frees the registry, its rooms and its bookkeeping of members, and sets
 * *registry to NULL. Accepts NULL and a pointer to NULL. It calls no
 * unsubscribe callback, because the service destroys the registry together
 * with its subscriber socket. The members themselves belong to the caller
 * and are not touched. Must not be called from a room_member_cb. */
void room_registry_destroy(room_registry **registry);

/* Adds `member` to the room of the org id `org` (`org_len` bytes, not
 * NUL-terminated), creating the room and calling on_subscribe when it is the
 * first member. A member is in at most one room. Returns 0, or a negative
 * ROOM_ERR_* code with nothing changed. `member` must not be NULL. Joins and
 * leaves take constant time on average. */
int room_join(room_registry *registry, const char *org, size_t org_len, void *member) __attribute__((warn_unused_result));

/* Removes `member` from its room. When the room becomes empty it is removed
 * and on_unsubscribe is called. Does nothing when `member` is in no room. */
void room_leave(room_registry *registry, void *member);

/* Returns the number of members in the room of `org`, 0 when the org has no
 * room or the org id is invalid. */
size_t room_member_count(const room_registry *registry, const char *org, size_t org_len);

/* Marks the room of `org` live: its subscription is known to have reached
 * the publisher, so members miss none of the org's events from now on. A
 * room starts not live, and a room that empties and is opened again starts
 * over. Does nothing when the org has no room. */
void room_set_live(room_registry *registry, const char *org, size_t org_len);

/* Returns whether the room of `org` exists and is live. */
bool room_is_live(const room_registry *registry, const char *org, size_t org_len);

/* Returns the number of non-empty rooms. */
size_t room_count(const room_registry *registry);

/* Calls `callback` once for each member of the room of `org`, in the order
 * they joined, and returns the number of calls. The callback may make members
 * leave: a member that leaves before its turn is not visited, and a room
 * emptied during the walk is unsubscribed at once. Members that join during
 * the walk, including a member that leaves and rejoins the same room, are not
 * visited by it. Returns 0 when the org has no room. */
size_t room_for_each_member(room_registry *registry, const char *org, size_t org_len, room_member_cb callback, void *data);

#endif
