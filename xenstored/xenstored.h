/*
 * splitxen xenstored: the sim platform's xenstore daemon, speaking <xen/io/xs_wire.h> over UNIX
 * sockets so that Debian's libxenstore and xenstore-utils work unmodified (XENSTORED_PATH).
 *
 * Layout under the directory given to sxs_open():
 *   <dir>/socket                 domain 0 (privileged: may do everything)
 *   <dir>/domain/<domid>.sock    one per introduced guest; a connection acts as that domid
 *
 * The daemon is one epoll fd: embed it in another loop (sxs_fd + sxs_step) or run it on its own
 * thread (sxs_start_thread/sxs_stop_thread). All functions are thread-safe against a running
 * sxs_step on another thread.
 */
#ifndef SPLITXEN_XENSTORED_H
#define SPLITXEN_XENSTORED_H

#include <stdbool.h>
#include <stdint.h>

struct sxs;

/* Limits; defaults follow C xenstored 4.17. Quotas apply to unprivileged domains unless noted;
 * a guest may hold at most 32 connections, and a connection at most 512 KiB of queued events. Dom0 has fixed ceilings (8192 watches and 1024
 * transactions per connection) so that its memory stays bounded too. */
struct sxs_quota {
    unsigned nodes_per_domain;  /* nodes owned by one domain (1000); dom0 exempt */
    unsigned max_node_size;     /* bytes of perms + value + child names in one node (2048) */
    unsigned perms_per_node;    /* entries in a node's permission list (5) */
    unsigned watches_per_conn;  /* watches (128), summed over a guest's connections */
    unsigned trans_per_conn;    /* open transactions (10), summed over a guest's connections */
    unsigned trans_nodes;       /* nodes touched by one transaction (1024) */
    unsigned pending_events;    /* queued watch events per connection, all domains (1024);
                                   further events for that connection are dropped and counted */
    unsigned path_max;          /* path length below /local/domain/<id>/ (2048), all domains */
};

struct sxs_stats {
    uint64_t requests;          /* messages processed */
    uint64_t errors;            /* XS_ERROR replies sent */
    uint64_t events_queued;     /* watch events queued */
    uint64_t events_dropped;    /* watch events dropped because a queue was full */
    uint64_t bad_clients;       /* connections closed for protocol violations */
    unsigned connections;       /* open connections */
    unsigned nodes;             /* nodes in the store, special nodes included */
    unsigned watches;           /* registered watches */
    unsigned transactions;      /* open transactions */
};

/* Fill q with the defaults. */
void sxs_quota_default(struct sxs_quota *q);

/* Create <dir> (and <dir>/domain) if needed, bind <dir>/socket, build the initial tree.
 * Returns 0 or -errno. */
int sxs_open(struct sxs **out, const char *dir);
/* Replace the limits (existing nodes/watches are not revisited). Returns 0 or -EINVAL. */
int sxs_set_quota(struct sxs *s, const struct sxs_quota *q);
/* NULL-safe, idempotent: stops the thread if running, closes every socket, unlinks them. */
void sxs_close(struct sxs *s);

/* One pollable fd (epoll) that is readable when sxs_step has work. */
int sxs_fd(const struct sxs *s);
/* Wait up to timeout_ms (-1: forever, 0: poll) and process ready events.
 * Returns the number of events handled, or -errno (-EINTR when a signal interrupted the wait). */
int sxs_step(struct sxs *s, int timeout_ms);

/* Run sxs_step on a private thread until sxs_stop_thread. Returns 0 or -errno (-EBUSY if running). */
int sxs_start_thread(struct sxs *s);
/* Idempotent. */
void sxs_stop_thread(struct sxs *s);

/* Introduce a guest: create <dir>/domain/<domid>.sock and fire @introduceDomain.
 * Returns 0, -EEXIST if already introduced, -EINVAL for domid 0 or >= DOMID_FIRST_RESERVED. */
int sxs_domain_add(struct sxs *s, unsigned domid);
/* Release a guest: close its socket and connections, fire @releaseDomain.
 * Returns 0 or -ENOENT. */
int sxs_domain_remove(struct sxs *s, unsigned domid);
/* Path of the socket for domid (0: the privileged one). Returns 0 or -ENAMETOOLONG. */
int sxs_socket_path(const struct sxs *s, unsigned domid, char *buf, unsigned long len);

void sxs_get_stats(struct sxs *s, struct sxs_stats *st);

/*
 * In-process access as domain 0, for the embedding daemon (e.g. the toolstack writing a new
 * domain's home). Same semantics as the wire operations, watches included: clients are woken
 * even when the loop runs on its own thread. Paths are absolute. Return 0 or -errno.
 */
int sxs_write(struct sxs *s, const char *path, const void *val, unsigned len);
/* *val is malloc'ed and NUL-terminated; *len (may be NULL) excludes the NUL. */
int sxs_read(struct sxs *s, const char *path, char **val, unsigned *len);
int sxs_mkdir(struct sxs *s, const char *path);
int sxs_rm(struct sxs *s, const char *path);
/* perms as xenstore-chmod writes them: {"n1", "r0"}: owner 1, domain 0 may read. */
int sxs_set_perms(struct sxs *s, const char *path, const char *const *perms, unsigned n);

#endif
