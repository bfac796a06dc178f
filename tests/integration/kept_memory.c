/* Two growing lists of what the current test allocated: plain memory for
 * free and JSON values for json_decref. */
#include "kept_memory.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void **blocks;
static size_t block_count, block_capacity;
static json_t **json_values;
static size_t json_count, json_capacity;

void *keep(void *memory)
{
    cr_assert_not_null(memory, "out of memory");
    if (block_count == block_capacity) {
        block_capacity = block_capacity ? block_capacity * 2 : 256;
        blocks = realloc(blocks, block_capacity * sizeof(*blocks));
        cr_assert_not_null(blocks, "out of memory");
    }
    blocks[block_count++] = memory;
    return memory;
}

json_t *keep_json(json_t *value)
{
    if (!value)
        return NULL;
    if (json_count == json_capacity) {
        json_capacity = json_capacity ? json_capacity * 2 : 256;
        json_values = realloc(json_values, json_capacity * sizeof(*json_values));
        cr_assert_not_null(json_values, "out of memory");
    }
    json_values[json_count++] = value;
    return value;
}

char *format_kept(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    char *text = NULL;
    int length = vasprintf(&text, format, arguments);
    va_end(arguments);
    cr_assert_geq(length, 0, "out of memory");
    return keep(text);
}

void release_kept(void)
{
    for (size_t i = 0; i < json_count; i++)
        json_decref(json_values[i]);
    free(json_values);
    json_values = NULL;
    json_count = json_capacity = 0;

    for (size_t i = 0; i < block_count; i++)
        free(blocks[i]);
    free(blocks);
    blocks = NULL;
    block_count = block_capacity = 0;
}
