/*
 * Credit limiter for guest tx, Linux netback's tx_credit (xenvif_tx_credit_callback): the
 * `rate` key libxl writes is "BYTES,USECS" (bytes allowed per interval of USECS microseconds).
 * Each interval the credit is reset to BYTES; a packet that finds too little credit waits for
 * the next interval. A packet larger than BYTES would never pass, so, as Linux, a full credit
 * always lets one packet through.
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
    r->remaining = bytes;
    r->next_ns = 0;
}

bool nb_rate_take(struct nb_rate *r, uint64_t len, uint64_t now_ns, uint64_t *wait_ns)
{
    if (!r->bytes)
        return true;
    uint64_t period = r->usecs * 1000u;
    if (now_ns >= r->next_ns) {
        r->remaining = r->bytes;
        r->next_ns = now_ns + period;
    }
    if (len <= r->remaining) {
        r->remaining -= len;
        return true;
    }
    if (len > r->bytes && r->remaining == r->bytes) {
        r->remaining = 0;      /* oversize packet: takes a whole interval's credit */
        return true;
    }
    *wait_ns = r->next_ns - now_ns;
    return false;
}
