/*
 * netback's control ring messages (netback/hash.c: nb_ctrl_handle), one after another on one
 * vif's hash state, the grant copies served from the input; then the hash of a frame from the
 * input under the resulting configuration. What the handler promises: a known status for every
 * request, the mapping table's size within its maximum and every entry naming an existing queue,
 * a hash that picks an existing queue.
 */
#include "tests/fuzz/fuzz.h"

#include "netback/common.h"

static struct fuzz_in *copy_src;

static int copy(void *arg, uint32_t gref, void *dst, uint32_t len)
{
    (void)arg;
    if (gref == 0xdead || len > 4096)
        return -EINVAL;   /* a grant the guest did not give */
    fuzz_take(copy_src, dst, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    copy_src = &in;
    unsigned nq = fuzz_u8(&in) % NB_MAX_QUEUES + 1;
    struct nb_hash h;
    pthread_mutex_init(&h.lock, NULL);
    nb_hash_init(&h, nq);
    unsigned nmsg = fuzz_u8(&in) % 16 + 1;
    for (unsigned i = 0; i < nmsg && in.n; i++) {
        struct xen_netif_ctrl_request rq;
        fuzz_take(&in, &rq, sizeof(rq));
        rq.type %= 12;   /* mostly known types; the rest are "not supported" */
        struct xen_netif_ctrl_response rs;
        memset(&rs, 0xa5, sizeof(rs));
        nb_ctrl_handle(&h, &rq, &rs, copy, NULL);
        FUZZ_CHECK(rs.id == rq.id && rs.type == rq.type);
        FUZZ_CHECK(rs.status == XEN_NETIF_CTRL_STATUS_SUCCESS ||
                   rs.status == XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED ||
                   rs.status == XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER ||
                   rs.status == XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW);
        FUZZ_CHECK(h.size <= NB_HASH_MAPPING_MAX);
        for (uint32_t k = 0; k < h.size; k++)
            FUZZ_CHECK(h.mapping[k] < nq);
    }
    static uint8_t frame[2048];
    size_t len = in.n < sizeof(frame) ? in.n : sizeof(frame);
    fuzz_take(&in, frame, len);
    uint32_t hash;
    uint8_t type;
    if (nb_hash_frame(&h.cfg, frame, (uint32_t)len, &hash, &type))
        FUZZ_CHECK(nb_hash_queue(&h, hash) < nq);
    nb_hash_destroy(&h);
    return 0;
}
