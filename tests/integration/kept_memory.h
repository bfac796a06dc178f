/* Memory that lives until the end of a test: the suite's fini frees it with
 * release_kept, so that a failed assertion in the middle of a test leaks
 * nothing. */
#ifndef TEST_KEPT_MEMORY_H
#define TEST_KEPT_MEMORY_H

#include <jansson.h>

/* Records `memory` (from malloc) for release_kept and returns it. Aborts the
 * test when `memory` is NULL, which is how an allocation that ran out of
 * memory gets here. */
void *keep(void *memory);

/* Records a JSON value, whose reference release_kept drops, and returns it.
 * Returns NULL for NULL, so that the caller can check a parse. */
json_t *keep_json(json_t *value);

/* Returns a formatted string that release_kept frees. */
char *format_kept(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Frees everything kept so far. */
void release_kept(void);

#endif
