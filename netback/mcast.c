/*
 * Multicast control (feature-multicast-control, feature-dynamic-multicast-control), as Linux
 * netback's xenvif_mcast_*: a frontend that writes request-multicast-control=1 receives only
 * the multicast frames whose destination it subscribed to with XEN_NETIF_EXTRA_TYPE_MCAST_ADD
 * (broadcast always passes). At most NB_MCAST_MAX addresses; an ADD beyond that is answered
 * with NETIF_RSP_ERROR. The list is per vif: tx threads update it, rx threads read it, under a
 * mutex that only multicast control requests and multicast frames ever take.
 */
#include <errno.h>
#include <string.h>

#include "netback/common.h"

void nb_mcast_init(struct nb_mcast *m)
{
    pthread_mutex_init(&m->lock, NULL);
    atomic_store(&m->enabled, false);
    m->n = 0;
}

void nb_mcast_destroy(struct nb_mcast *m)
{
    pthread_mutex_destroy(&m->lock);
}

void nb_mcast_reset(struct nb_mcast *m)
{
    pthread_mutex_lock(&m->lock);
    m->n = 0;
    pthread_mutex_unlock(&m->lock);
}

static int find(const struct nb_mcast *m, const uint8_t *a)
{
    for (unsigned i = 0; i < m->n; i++)
        if (!memcmp(m->addr[i], a, 6))
            return (int)i;
    return -1;
}

int nb_mcast_update(struct nb_mcast *m, uint8_t op, const uint8_t addr[6])
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    int i = find(m, addr);
    if (op == XEN_NETIF_EXTRA_TYPE_MCAST_ADD) {
        if (i < 0) {
            if (m->n < NB_MCAST_MAX)
                memcpy(m->addr[m->n++], addr, 6);
            else
                rc = -ENOSPC;
        }
    } else if (i >= 0) {
        memmove(m->addr[i], m->addr[i + 1], (m->n - (unsigned)i - 1) * 6u);
        m->n--;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

bool nb_mcast_pass(struct nb_mcast *m, const uint8_t *dst)
{
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    if (!(dst[0] & 1) || !memcmp(dst, bcast, 6) ||
        !atomic_load_explicit(&m->enabled, memory_order_relaxed))
        return true;
    pthread_mutex_lock(&m->lock);
    bool ok = find(m, dst) >= 0;
    pthread_mutex_unlock(&m->lock);
    return ok;
}
