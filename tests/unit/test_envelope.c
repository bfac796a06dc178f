/* Unit tests of the request/reply envelope codec (common/hv_envelope.c). */
#include "hv_envelope.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Each test packs one frame into `frame` and decodes it into `storage`. */
static msgpack_sbuffer frame;
static msgpack_packer packer;
static msgpack_unpacked storage;

static void setup(void)
{
    msgpack_sbuffer_init(&frame);
    msgpack_packer_init(&packer, &frame, msgpack_sbuffer_write);
    msgpack_unpacked_init(&storage);
}

static void teardown(void)
{
    msgpack_unpacked_destroy(&storage);
    msgpack_sbuffer_destroy(&frame);
}

TestSuite(envelope, .init = setup, .fini = teardown);

/* Copies a decoded string, which is not NUL-terminated, into one of a few
 * static buffers, because eq(str, ...) compares C strings. */
static char *text_of(const char *data, size_t len)
{
    static char buffers[4][256];
    static unsigned next;

    cr_assert(not(zero(ptr, (void *)data)));
    cr_assert(lt(sz, len, sizeof(buffers[0])));
    char *out = buffers[next++ % 4];
    memcpy(out, data, len);
    out[len] = '\0';
    return out;
}

static void pack_str(const char *text)
{
    msgpack_pack_str_with_body(&packer, text, strlen(text));
}

static void pack_key_str(const char *key, const char *value)
{
    pack_str(key);
    pack_str(value);
}

static void pack_key_uint(const char *key, uint64_t value)
{
    pack_str(key);
    msgpack_pack_uint64(&packer, value);
}

/* Packs a valid request whose args map is {"text": "hello", "count": 3}. */
static void pack_valid_request(uint64_t id)
{
    hv_request_pack_begin(&packer, id, "message.send", "org_1", "trace-7");
    msgpack_pack_map(&packer, 2);
    pack_key_str("text", "hello");
    pack_str("count");
    msgpack_pack_int(&packer, 3);
}

static int decode_request(hv_request *request, const char **error)
{
    *error = NULL;
    return hv_request_decode(frame.data, frame.size, &storage, request, error);
}

static int decode_reply(hv_reply *reply, const char **error)
{
    *error = NULL;
    return hv_reply_decode(frame.data, frame.size, &storage, reply, error);
}

/* Decodes a request from a heap copy of exactly `size` bytes, so that
 * AddressSanitizer reports any read past the end of the frame. */
static int decode_request_copy(const char *data, size_t size, const char **error)
{
    char *copy = malloc(size > 0 ? size : 1);
    cr_assert(not(zero(ptr, copy)));
    memcpy(copy, data, size);

    msgpack_unpacked prefix_storage;
    msgpack_unpacked_init(&prefix_storage);
    hv_request request;
    *error = NULL;
    int result = hv_request_decode(copy, size, &prefix_storage, &request, error);
    msgpack_unpacked_destroy(&prefix_storage);
    free(copy);
    return result;
}

/* Caps the address space of this test's process at 256 MiB above what it
 * maps now. msgpack-c allocates room for all the elements that an array or
 * map header declares before it reads them, so a forged count requests
 * gigabytes. Under the cap that request fails on every machine, instead of
 * succeeding lazily where memory is plentiful. */
static void limit_address_space(void)
{
    FILE *statm = fopen("/proc/self/statm", "r");
    cr_assert(not(zero(ptr, statm)));
    unsigned long pages = 0;
    int fields = fscanf(statm, "%lu", &pages);
    fclose(statm);
    cr_assert(eq(int, fields, 1));

    struct rlimit limit;
    cr_assert(eq(int, getrlimit(RLIMIT_AS, &limit), 0));
    limit.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
    cr_assert(eq(int, setrlimit(RLIMIT_AS, &limit), 0));
}

Test(envelope, request_round_trip_keeps_every_field)
{
    const uint64_t id = UINT64_C(1) << 40 | 7;
    pack_valid_request(id);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), 0));
    cr_assert(zero(ptr, (void *)error));

    cr_assert(eq(u64, request.id, id));
    cr_assert(eq(str, text_of(request.op, request.op_len), "message.send"));
    cr_assert(eq(str, text_of(request.org, request.org_len), "org_1"));
    cr_assert(eq(str, text_of(request.trace, request.trace_len), "trace-7"));

    const msgpack_object *args = request.args;
    cr_assert(eq(int, args->type, MSGPACK_OBJECT_MAP));
    cr_assert(eq(u32, args->via.map.size, 2));

    const msgpack_object_kv *text = &args->via.map.ptr[0];
    cr_assert(eq(str, text_of(text->key.via.str.ptr, text->key.via.str.size), "text"));
    cr_assert(eq(int, text->val.type, MSGPACK_OBJECT_STR));
    cr_assert(eq(str, text_of(text->val.via.str.ptr, text->val.via.str.size), "hello"));

    const msgpack_object_kv *count = &args->via.map.ptr[1];
    cr_assert(eq(str, text_of(count->key.via.str.ptr, count->key.via.str.size), "count"));
    cr_assert(eq(int, count->val.type, MSGPACK_OBJECT_POSITIVE_INTEGER));
    cr_assert(eq(u64, count->val.via.u64, 3));
}

Test(envelope, reply_round_trip_keeps_every_field)
{
    hv_reply_pack_begin(&packer, 12345, HV_STATUS_CREATED);
    msgpack_pack_map(&packer, 1);
    pack_key_str("conversationId", "c-42");

    hv_reply reply;
    const char *error;
    cr_assert(eq(int, decode_reply(&reply, &error), 0));
    cr_assert(zero(ptr, (void *)error));

    cr_assert(eq(u64, reply.id, 12345));
    cr_assert(eq(int, reply.status, HV_STATUS_CREATED));
    cr_assert(eq(int, reply.body->type, MSGPACK_OBJECT_MAP));
    cr_assert(eq(u32, reply.body->via.map.size, 1));

    const msgpack_object_kv *entry = &reply.body->via.map.ptr[0];
    cr_assert(eq(str, text_of(entry->key.via.str.ptr, entry->key.via.str.size), "conversationId"));
    cr_assert(eq(str, text_of(entry->val.via.str.ptr, entry->val.via.str.size), "c-42"));
}

Test(envelope, reply_body_may_be_any_type)
{
    hv_reply_pack_begin(&packer, 3, HV_STATUS_OK);
    msgpack_pack_array(&packer, 0);

    hv_reply reply;
    const char *error;
    cr_assert(eq(int, decode_reply(&reply, &error), 0));
    cr_assert(eq(int, reply.body->type, MSGPACK_OBJECT_ARRAY));
}

Test(envelope, error_reply_has_error_body)
{
    hv_reply_pack_error(&packer, 9, HV_STATUS_NOT_FOUND, "conversation not found");

    hv_reply reply;
    const char *error;
    cr_assert(eq(int, decode_reply(&reply, &error), 0));
    cr_assert(eq(u64, reply.id, 9));
    cr_assert(eq(int, reply.status, HV_STATUS_NOT_FOUND));
    cr_assert(eq(int, reply.body->type, MSGPACK_OBJECT_MAP));
    cr_assert(eq(u32, reply.body->via.map.size, 1));

    const msgpack_object_kv *entry = &reply.body->via.map.ptr[0];
    cr_assert(eq(str, text_of(entry->key.via.str.ptr, entry->key.via.str.size), "error"));
    cr_assert(eq(int, entry->val.type, MSGPACK_OBJECT_STR));
    cr_assert(eq(str, text_of(entry->val.via.str.ptr, entry->val.via.str.size), "conversation not found"));
}

Test(envelope, nil_org_and_trace_decode_as_null)
{
    hv_request_pack_begin(&packer, 5, "org.list", NULL, NULL);
    msgpack_pack_nil(&packer);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), 0));
    cr_assert(zero(ptr, (void *)request.org));
    cr_assert(eq(sz, request.org_len, 0));
    cr_assert(zero(ptr, (void *)request.trace));
    cr_assert(eq(sz, request.trace_len, 0));

    /* Nil args decode as an empty map. */
    cr_assert(eq(int, request.args->type, MSGPACK_OBJECT_MAP));
    cr_assert(eq(u32, request.args->via.map.size, 0));
}

Test(envelope, absent_optional_fields_decode_as_defaults)
{
    msgpack_pack_map(&packer, 3);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_uint("id", 6);
    pack_key_str("op", "health");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), 0));
    cr_assert(zero(ptr, (void *)request.org));
    cr_assert(zero(ptr, (void *)request.trace));
    cr_assert(eq(int, request.args->type, MSGPACK_OBJECT_MAP));
    cr_assert(eq(u32, request.args->via.map.size, 0));
}

Test(envelope, rejects_truncated_request)
{
    pack_valid_request(77);

    for (size_t len = 0; len < frame.size; len++) {
        const char *error;
        int result = decode_request_copy(frame.data, len, &error);
        cr_assert(eq(int, result, -1), "a prefix of %zu of %zu bytes was accepted", len, frame.size);
        cr_assert(eq(str, (char *)error, "truncated msgpack"), "prefix of %zu bytes", len);
    }
}

Test(envelope, rejects_truncated_reply)
{
    hv_reply_pack_error(&packer, 8, HV_STATUS_CONFLICT, "already exists");

    for (size_t len = 0; len < frame.size; len++) {
        char *copy = malloc(len > 0 ? len : 1);
        cr_assert(not(zero(ptr, copy)));
        memcpy(copy, frame.data, len);

        msgpack_unpacked prefix_storage;
        msgpack_unpacked_init(&prefix_storage);
        hv_reply reply;
        const char *error = NULL;
        int result = hv_reply_decode(copy, len, &prefix_storage, &reply, &error);
        msgpack_unpacked_destroy(&prefix_storage);
        free(copy);

        cr_assert(eq(int, result, -1), "a prefix of %zu of %zu bytes was accepted", len, frame.size);
        cr_assert(not(zero(ptr, (void *)error)), "prefix of %zu bytes", len);
    }
}

Test(envelope, rejects_empty_frame)
{
    hv_request request;
    const char *error = NULL;
    cr_assert(eq(int, hv_request_decode("", 0, &storage, &request, &error), -1));
    cr_assert(eq(str, (char *)error, "truncated msgpack"));
    cr_assert(eq(u64, request.id, 0));
}

Test(envelope, rejects_garbage_bytes)
{
    /* 0xc1 is the one byte that msgpack never uses. */
    static const char never_used[] = "\xc1";
    const char *error;
    cr_assert(eq(int, decode_request_copy(never_used, 1, &error), -1));
    cr_assert(eq(str, (char *)error, "invalid msgpack"));

    /* A text frame parses as a positive fixint followed by other bytes. */
    static const char text[] = "GET / HTTP/1.1\r\n";
    cr_assert(eq(int, decode_request_copy(text, strlen(text), &error), -1));
    cr_assert(not(zero(ptr, (void *)error)));
}

Test(envelope, rejects_huge_container_count_as_truncated)
{
    /* Each frame declares far more elements than it has bytes left. */
    static const struct {
        const char *bytes;
        size_t size;
    } frames[] = {
        /* An array of 2^32 - 1 elements. */
        {"\xdd\xff\xff\xff\xff", 5},
        /* A map of 2^32 - 1 entries. */
        {"\xdf\xff\xff\xff\xff", 5},
        /* An array of 2^28 elements, 4 GiB of msgpack_object. */
        {"\xdd\x10\x00\x00\x00", 5},
        /* {"args": a map of 2^32 - 1 entries} */
        {"\x81\xa4"
         "args\xdf\xff\xff\xff\xff",
         11},
    };
    limit_address_space();

    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        const char *error;
        cr_assert(eq(int, decode_request_copy(frames[i].bytes, frames[i].size, &error), -1), "frame %zu", i);
        cr_assert(eq(str, (char *)error, "truncated msgpack"), "frame %zu", i);
    }
}

Test(envelope, rejects_random_bytes_without_crashing)
{
    /* A fixed-seed linear congruential generator keeps failures
     * reproducible. Random bytes that happen to form a whole envelope with
     * "v", "id" and "op" are too unlikely to matter. */
    uint32_t state = 12345;
    char bytes[64];
    limit_address_space();

    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(round % (int)sizeof(bytes)) + 1;
        for (size_t i = 0; i < len; i++) {
            state = state * 1103515245u + 12345u;
            bytes[i] = (char)(state >> 16);
        }
        const char *error;
        cr_assert(eq(int, decode_request_copy(bytes, len, &error), -1), "round %d", round);
        cr_assert(not(zero(ptr, (void *)error)), "round %d", round);
    }
}

Test(envelope, rejects_non_map_top_level)
{
    msgpack_pack_array(&packer, 2);
    msgpack_pack_int(&packer, 1);
    msgpack_pack_int(&packer, 2);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "envelope is not a map"));
}

Test(envelope, rejects_string_top_level)
{
    pack_str("message.send");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "envelope is not a map"));
}

Test(envelope, rejects_trailing_bytes)
{
    pack_valid_request(77);
    msgpack_pack_nil(&packer);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "trailing bytes after the msgpack object"));
}

Test(envelope, rejects_missing_id)
{
    msgpack_pack_map(&packer, 2);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_str("op", "health");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid request id \"id\""));
    cr_assert(eq(u64, request.id, 0));
}

Test(envelope, rejects_negative_id)
{
    msgpack_pack_map(&packer, 3);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_str("id");
    msgpack_pack_int64(&packer, -4);
    pack_key_str("op", "health");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid request id \"id\""));
    cr_assert(eq(u64, request.id, 0));
}

Test(envelope, rejects_missing_version)
{
    msgpack_pack_map(&packer, 2);
    pack_key_uint("id", 31);
    pack_key_str("op", "health");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "missing protocol version \"v\""));
    cr_assert(eq(u64, request.id, 31));
}

Test(envelope, rejects_wrong_version)
{
    msgpack_pack_map(&packer, 3);
    pack_key_uint("v", HV_PROTOCOL_VERSION + 1);
    pack_key_uint("id", 32);
    pack_key_str("op", "health");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "unsupported protocol version"));
    cr_assert(eq(u64, request.id, 32));
}

Test(envelope, rejects_version_given_as_string)
{
    msgpack_pack_map(&packer, 3);
    pack_key_str("v", "1");
    pack_key_uint("id", 33);
    pack_key_str("op", "health");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "missing protocol version \"v\""));
    cr_assert(eq(u64, request.id, 33));
}

Test(envelope, rejects_missing_op)
{
    msgpack_pack_map(&packer, 2);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_uint("id", 34);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid operation \"op\""));
    cr_assert(eq(u64, request.id, 34));
}

Test(envelope, rejects_empty_op)
{
    hv_request_pack_begin(&packer, 35, "", "org_1", NULL);
    msgpack_pack_map(&packer, 0);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid operation \"op\""));
    cr_assert(eq(u64, request.id, 35));
}

Test(envelope, rejects_op_that_is_not_string)
{
    msgpack_pack_map(&packer, 3);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_uint("id", 36);
    pack_key_uint("op", 1);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid operation \"op\""));
    cr_assert(eq(u64, request.id, 36));
}

Test(envelope, rejects_org_that_is_not_string)
{
    msgpack_pack_map(&packer, 4);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_uint("id", 37);
    pack_key_str("op", "message.send");
    pack_key_uint("org", 1);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "invalid \"org\": expected a string or nil"));
    cr_assert(eq(u64, request.id, 37));
}

Test(envelope, rejects_trace_that_is_not_string)
{
    msgpack_pack_map(&packer, 4);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_uint("id", 38);
    pack_key_str("op", "message.send");
    pack_str("trace");
    msgpack_pack_true(&packer);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "invalid \"trace\": expected a string or nil"));
    cr_assert(eq(u64, request.id, 38));
}

Test(envelope, rejects_args_that_is_not_map)
{
    hv_request_pack_begin(&packer, 39, "message.send", "org_1", NULL);
    msgpack_pack_array(&packer, 1);
    msgpack_pack_int(&packer, 1);

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "invalid \"args\": expected a map"));
    cr_assert(eq(u64, request.id, 39));
}

Test(envelope, rejects_args_given_as_string)
{
    hv_request_pack_begin(&packer, 40, "message.send", "org_1", NULL);
    pack_str("text=hello");

    hv_request request;
    const char *error;
    cr_assert(eq(int, decode_request(&request, &error), -1));
    cr_assert(eq(str, (char *)error, "invalid \"args\": expected a map"));
    cr_assert(eq(u64, request.id, 40));
}

Test(envelope, reply_rejects_status_out_of_range)
{
    static const uint64_t statuses[] = {0, 99, 600, 100000};

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        msgpack_sbuffer_clear(&frame);
        msgpack_pack_map(&packer, 4);
        pack_key_uint("v", HV_PROTOCOL_VERSION);
        pack_key_uint("id", 41);
        pack_key_uint("status", statuses[i]);
        pack_str("body");
        msgpack_pack_map(&packer, 0);

        hv_reply reply;
        const char *error;
        cr_assert(eq(int, decode_reply(&reply, &error), -1), "status %lu", (unsigned long)statuses[i]);
        cr_assert(eq(str, (char *)error, "missing or invalid \"status\""), "status %lu", (unsigned long)statuses[i]);
        cr_assert(eq(u64, reply.id, 41), "status %lu", (unsigned long)statuses[i]);
    }
}

Test(envelope, reply_rejects_missing_body)
{
    msgpack_pack_map(&packer, 3);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_uint("id", 42);
    pack_key_uint("status", HV_STATUS_OK);

    hv_reply reply;
    const char *error;
    cr_assert(eq(int, decode_reply(&reply, &error), -1));
    cr_assert(eq(str, (char *)error, "missing \"body\""));
    cr_assert(eq(u64, reply.id, 42));
}

Test(envelope, reply_rejects_missing_status)
{
    msgpack_pack_map(&packer, 3);
    pack_key_uint("v", HV_PROTOCOL_VERSION);
    pack_key_uint("id", 43);
    pack_str("body");
    msgpack_pack_nil(&packer);

    hv_reply reply;
    const char *error;
    cr_assert(eq(int, decode_reply(&reply, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid \"status\""));
    cr_assert(eq(u64, reply.id, 43));
}

Test(envelope, reply_rejects_wrong_version)
{
    msgpack_pack_map(&packer, 4);
    pack_key_uint("v", 0);
    pack_key_uint("id", 44);
    pack_key_uint("status", HV_STATUS_OK);
    pack_str("body");
    msgpack_pack_nil(&packer);

    hv_reply reply;
    const char *error;
    cr_assert(eq(int, decode_reply(&reply, &error), -1));
    cr_assert(eq(str, (char *)error, "unsupported protocol version"));
    cr_assert(eq(u64, reply.id, 44));
}
