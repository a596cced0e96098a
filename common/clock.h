/* The one clock splitxen measures intervals with: CLOCK_MONOTONIC in nanoseconds. */
#ifndef SPLITXEN_CLOCK_H
#define SPLITXEN_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Inline: the data paths read it per batch (spin budgets, rate limits, late EOI). */
static inline uint64_t sx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t sx_now_us(void) { return sx_now_ns() / 1000u; }
static inline uint64_t sx_now_ms(void) { return sx_now_ns() / 1000000u; }

#endif
