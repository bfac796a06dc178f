/* Latency samples of the load tools, and their percentiles. */
#ifndef TOOLS_LATENCY_H
#define TOOLS_LATENCY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t *values_ns;
    size_t count;
    size_t capacity; /* 0 for an array the caller sized in advance */
} latency_list;

/* Appends a sample, growing the list. Returns 0, or -1 when out of memory. */
int latency_append(latency_list *list, int64_t value_ns);

/* Sorts the samples in increasing order, for latency_percentile_ns. */
void latency_sort(latency_list *list);

/* Returns the nearest-rank percentile of sorted samples: the smallest value
 * that at least `percent` percent of all samples do not exceed; 0 when
 * there are none. */
int64_t latency_percentile_ns(const latency_list *sorted, unsigned percent);

#endif
