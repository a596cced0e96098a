/*
 * Credit limiter for guest tx, Linux netback's tx_credit (xenvif_tx_credit_callback): the
 * `rate` key libxl writes is "BYTES,USECS" (bytes allowed per interval of USECS microseconds).
 * Each interval adds BYTES of credit; unused credit carries over up to a burst of
 * max(BYTES, 128 KiB), so even a rate below one 64 KiB GSO packet per interval lets every packet
 * through eventually (Linux's tx_add_credit). A packet that finds too little credit waits for
 * the next interval.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "netback/common.h"

int nb_rate_parse(const char *s, uint64_t *bytes, uint64_t *usecs)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long b = strtoull(s, &end, 10);
    if (errno || *end != ',' || end[1] < '0' || end[1] > '9')
        return -EINVAL;
    unsigned long long u = strtoull(end + 1, &end, 10);
    if (errno || *end || u == 0 || u > 1000000000ull * 60)
        return -EINVAL;
    *bytes = b;
    *usecs = u;
    return 0;
}

void nb_rate_init(struct nb_rate *r, uint64_t bytes, uint64_t usecs)
{
    r->bytes = bytes;
    r->usecs = usecs ? usecs : 1;
    r->remaining = 0;
    r->next_ns = 0;
}

bool nb_rate_take(struct nb_rate *r, uint64_t len, uint64_t now_ns, uint64_t *wait_ns)
{
    if (!r->bytes)
        return true;
    uint64_t period = r->usecs * 1000u;
    if (now_ns >= r->next_ns) {
        /* tx_add_credit: unused credit carries over up to a burst that fits any packet */
        uint64_t burst = r->bytes > NB_RATE_MIN_BURST ? r->bytes : NB_RATE_MIN_BURST;
        r->remaining = r->remaining + r->bytes < burst ? r->remaining + r->bytes : burst;
        r->next_ns = now_ns + period;
    }
    if (len <= r->remaining) {
        r->remaining -= len;
        return true;
    }
    *wait_ns = r->next_ns - now_ns;
    return false;
}
