#include "latency.h"

#include <stdlib.h>

int latency_append(latency_list *list, int64_t value_ns)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 65536;
        int64_t *grown = realloc(list->values_ns, capacity * sizeof(*grown));
        if (!grown)
            return -1;
        list->values_ns = grown;
        list->capacity = capacity;
    }
    list->values_ns[list->count++] = value_ns;
    return 0;
}

static int compare_int64(const void *left, const void *right)
{
    int64_t a = *(const int64_t *)left, b = *(const int64_t *)right;
    return (a > b) - (a < b);
}

void latency_sort(latency_list *list)
{
    if (list->count > 0)
        qsort(list->values_ns, list->count, sizeof(int64_t), compare_int64);
}

int64_t latency_percentile_ns(const latency_list *sorted, unsigned percent)
{
    if (sorted->count == 0)
        return 0;
    size_t rank = (sorted->count * percent + 99) / 100;
    return sorted->values_ns[rank > 0 ? rank - 1 : 0];
}
