/*
 * splitxen-core: the sim hypervisor's control daemon and its client library.
 *
 * The daemon owns the domain table and hands memory, grant-table and event fds to processes over
 * a UNIX seqpacket socket with SCM_RIGHTS. The data path (grant map/copy, event notification)
 * never goes through it. The same server runs in-process for tests (sxc_server_open).
 *
 * Every call returns 0 (or a non-negative value) on success and -errno on failure.
 */
#ifndef SPLITXEN_XEN_CORE_CORE_H
#define SPLITXEN_XEN_CORE_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>

#include "xen-core/shared.h"

/* ---------------- server ---------------- */

struct sxc_server;

struct sxc_server_opts {
    const char *run_dir;        /* sockets go here: core.sock, xenstored/ */
    uint32_t dom0_mem_mb;       /* memory for domain 0 (default 64) */
    bool with_xenstored;        /* also run xenstored on run_dir/xenstored */
};

/* Start a server in a thread of this process. */
int sxc_server_open(struct sxc_server **out, const struct sxc_server_opts *opts);
/* Stop it; destroys every domain. NULL-safe. */
void sxc_server_close(struct sxc_server *srv);
/* Run the server in the calling thread until `*stop` becomes true (splitxen-core's main). */
int sxc_server_run(const struct sxc_server_opts *opts, volatile int *stop);

/* ---------------- client ---------------- */

struct sxc_conn;

/* A domain as seen from a client: its ctl region and guest memory, mapped. */
struct sxc_dom {
    domid_t domid;
    int ctl_fd, mem_fd;
    struct sxd_shared *shared;
    uint64_t shared_size;
    uint8_t *mem;               /* whole guest memory, read-write */
    const uint8_t *mem_ro;      /* the same, read-only: where read-only grants map */
    uint64_t mem_size;
    /* The connection's cache (client.c): the domid lookups match (UINT32_MAX while the slot
     * is unused or closing) and the references sxc_domain_get handed out. */
    _Atomic uint32_t key;
    _Atomic uint32_t refs;
};

struct sxc_dominfo {
    uint32_t domid, type, state, vcpus;
    uint64_t mem_mb;
    char name[64];
};

/* Core socket path inside a run dir. */
int sxc_socket_path(char *buf, size_t len, const char *run_dir);

/* Connect to the daemon at `sock_path` (NULL: default) acting as domain `self` (which must
 * exist; 0 always does). */
int sxc_connect(struct sxc_conn **out, const char *sock_path, domid_t self);
void sxc_disconnect(struct sxc_conn *c);        /* NULL-safe */
domid_t sxc_self(const struct sxc_conn *c);

int sxc_domain_create(struct sxc_conn *c, const char *name, enum sxd_dom_type type,
                      uint32_t mem_mb, uint32_t vcpus, bool paused);   /* returns domid */
int sxc_domain_destroy(struct sxc_conn *c, domid_t domid);
int sxc_domain_pause(struct sxc_conn *c, domid_t domid);
int sxc_domain_unpause(struct sxc_conn *c, domid_t domid);
/* Fill up to `max` entries; returns the number of domains. */
int sxc_domain_list(struct sxc_conn *c, struct sxc_dominfo *out, unsigned max);
/* Look up a domain by name; returns its domid or -ENOENT. */
int sxc_domain_lookup(struct sxc_conn *c, const char *name);

/* Map a domain's shared state and memory and take a reference on the mapping; every
 * successful get is paired with one sxc_domain_put. Used by backends for foreign grants and
 * event channels, and by a process for its own domain. A mapping of a live domain is found
 * in the connection's cache without a daemon round trip or a lock (one atomic on the
 * reference count); a dying domain's mapping is never handed out again. */
int sxc_domain_get(struct sxc_conn *c, domid_t domid, struct sxc_dom **out);
/* Drop a reference. The last one unmaps the domain's memory and control region and closes
 * their fds at once, so a destroyed guest's memory goes back to the system as soon as nothing
 * in this process maps it. NULL-safe. */
void sxc_domain_put(struct sxc_conn *c, struct sxc_dom *d);
/* Domains this connection has mapped now (for counters and tests). */
unsigned sxc_domains_mapped(struct sxc_conn *c);

/* Event channel control plane (used by evtchn/evtchn_sim.c). */
int sxc_evtchn_register(struct sxc_conn *c, int efd);                 /* returns handle id */
int sxc_evtchn_unregister(struct sxc_conn *c, uint32_t handle);
int sxc_evtchn_alloc_unbound(struct sxc_conn *c, uint32_t handle, domid_t remote);
int sxc_evtchn_bind_interdomain(struct sxc_conn *c, uint32_t handle, domid_t remote,
                                uint32_t rport);
int sxc_evtchn_close(struct sxc_conn *c, uint32_t port);
/* The event fd of whoever owns the far end of our `port`, with the far end's identity.
 * *efd is a new fd the caller owns. -ENOTCONN if the port is not connected. */
int sxc_evtchn_peer(struct sxc_conn *c, uint32_t port, domid_t *rdom, uint32_t *rport,
                    uint32_t *rgen, int *efd);

/* ---------------- suspend, resume, migration ----------------
 *
 * The processes acting as a domain's kernel join it; to suspend, each makes the suspend
 * hypercall, which returns when the toolstack resumes the domain: cancelled (the same domain
 * goes on here) or moved (go on as domain `domid` at the core socket `core_path`: reconnect
 * there). A domain is suspended once all its members are in the hypercall.
 */
struct sxc_resume {
    bool moved;
    domid_t domid;              /* the domain to go on as */
    char core_path[128];        /* moved: the new core's socket */
};

/* The caller's connection is part of its domain's kernel (self != 0). */
int sxc_domain_join(struct sxc_conn *c);
/* The suspend hypercall: blocks until the toolstack resumes the domain (holding the
 * connection: other threads' calls on it wait). 0 with *out filled, or -errno. */
int sxc_domain_suspend(struct sxc_conn *c, struct sxc_resume *out);
/* Toolstack: wait up to timeout_ms for every member of domid to be suspended (the domain is
 * then SXD_STATE_SUSPENDED). Returns the number of members (0: nothing runs in the domain),
 * -ETIMEDOUT, -ESRCH. */
int sxc_domain_wait_suspended(struct sxc_conn *c, domid_t domid, unsigned timeout_ms);
/* Toolstack: end the suspend hypercalls of domid's members (domid may be a domain destroyed
 * since: its members stay parked until resumed). Returns how many were released. */
int sxc_domain_resume(struct sxc_conn *c, domid_t domid, bool moved, domid_t new_domid,
                      const char *core_path);

/* Log-dirty mode of a domain (toolstack; xen-core/logdirty.c). ENABLE fails with -EOPNOTSUPP
 * when a process of the guest writes its memory untracked (*untracked says how many). ROUND
 * returns the number of frames now set in the domain's round bitmap (sxd_round_bitmap). */
enum sxc_logdirty_cmd { SXC_LOGDIRTY_ENABLE, SXC_LOGDIRTY_ROUND, SXC_LOGDIRTY_DISABLE };
int64_t sxc_domain_logdirty(struct sxc_conn *c, domid_t domid, enum sxc_logdirty_cmd cmd,
                            unsigned *untracked);
/* Toolstack: recreate `port` of paused domain domid as unbound for `remote` (a restore). */
int sxc_evtchn_restore(struct sxc_conn *c, domid_t domid, uint32_t port, domid_t remote);

#endif
