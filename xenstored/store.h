/*
 * xenstored's node store (private to xenstored): an in-memory tree keyed by full path,
 * Xen's permission model, node quotas, and optimistic transactions with per-node generation
 * counts (a transaction fails with EAGAIN when a node it touched changed behind its back).
 *
 * Paths passed to sxs_store_* are canonical (see sxs_canon). Every function returns 0 or -errno.
 * Not thread-safe: the server serialises calls.
 */
#ifndef SPLITXEN_XENSTORED_STORE_H
#define SPLITXEN_XENSTORED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xenstore_lib.h> /* struct xs_permissions, XS_PERM_*, <xen/io/xs_wire.h> */

#include "xenstored/xenstored.h"

#define SXS_NO_GEN UINT64_MAX
#define SXS_NO_TARGET 0xffffffffu

/* Who is asking. */
struct sxs_who {
    unsigned domid;
    unsigned target;  /* SXS_NO_TARGET or the domain this one is device model for */
    bool priv;        /* dom0: everything is permitted, quotas on nodes do not apply */
};

/* A change that may fire watches: path, whether only watches exactly on path fire, and the
 * permission lists that decide who may see it (any of them granting read is enough). */
struct sxs_change {
    const char *path;
    bool exact;
    const struct xs_permissions *perms[3]; /* node (or the removed node), old perms, parent */
    unsigned nperms[3];
};
typedef void sxs_fire_fn(void *arg, const struct sxs_change *ch);

struct sxs_store;
struct sxs_tx;

int sxs_store_open(struct sxs_store **out, const struct sxs_quota *q);
void sxs_store_close(struct sxs_store *st);
/* The global quotas: every domain without quotas of its own, and the defaults of new ones. */
void sxs_store_set_quota(struct sxs_store *st, const struct sxs_quota *q);
/* An introduced domain's own quotas (a copy), set when it comes and by XS_SET_QUOTA with its
 * domid; dropped when it goes, so a later domain with the same domid starts afresh. The
 * quotas that apply to domid: its own, else the global ones. */
int sxs_store_domain_quota_set(struct sxs_store *st, unsigned domid, const struct sxs_quota *q);
void sxs_store_domain_quota_drop(struct sxs_store *st, unsigned domid);
const struct sxs_quota *sxs_store_quota(const struct sxs_store *st, unsigned domid);
void sxs_store_set_fire(struct sxs_store *st, sxs_fire_fn *fn, void *arg);

/* Validate and canonicalise a client path: relative paths are under /local/domain/<domid>.
 * On success *out is malloc'ed and *prefix_len is the length stripped from event paths of a
 * relative watch (0 for absolute). -EINVAL for a bad path, -ENOMEM. */
int sxs_canon(const struct sxs_store *st, const struct sxs_who *who, const char *in,
              bool allow_special, char **out, size_t *prefix_len);

/* Permission bits (XS_PERM_READ|WRITE|OWNER) `who` has on a node with these perms. */
unsigned sxs_perm_for(const struct sxs_who *who, const struct xs_permissions *p, unsigned n);
/* "r5" -> {5, XS_PERM_READ}. Returns 0 or -EINVAL. */
int sxs_perm_parse(const char *s, struct xs_permissions *out);
/* {5, READ} -> "r5". Returns the string length or -EINVAL. */
int sxs_perm_format(const struct xs_permissions *p, char *buf, size_t len);
/* Is `path` equal to or below `parent`? */
bool sxs_path_is_child(const char *path, const char *parent);

/* Node operations; tx may be NULL. Returned pointers stay valid until the next call. */
int sxs_store_read(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                   const char *path, const char **data, unsigned *len);
int sxs_store_write(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                    const char *path, const void *data, unsigned len);
int sxs_store_mkdir(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                    const char *path);
int sxs_store_rm(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                 const char *path);
/* Children as NUL-terminated names back to back (childlen bytes), plus the node generation. */
int sxs_store_directory(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                        const char *path, const char **children, unsigned *childlen,
                        uint64_t *gen);
int sxs_store_get_perms(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                        const char *path, const struct xs_permissions **p, unsigned *n);
int sxs_store_set_perms(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                        const char *path, const struct xs_permissions *p, unsigned n);

/* Transactions (who: the connection's domain; fixed for the transaction's life).
 * tx_end always frees tx; commit=false aborts. Commit returns 0, -EAGAIN on a
 * conflict, -ENOSPC when it would exceed the node quota, -ENOMEM if the transaction failed. */
int sxs_store_tx_start(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx **out);
int sxs_store_tx_end(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                     bool commit);

/* Fire watches on a special node ("@introduceDomain", "@releaseDomain"). */
void sxs_store_fire_special(struct sxs_store *st, const char *name);

/* A domain is gone: nodes it owned are removed with their subtrees (as C xenstored since
 * XSA-419: given to dom0 they would escape every quota and pile up over reboots; watches on
 * them fire), and its entries in other nodes' permission lists are dropped, so a later domain
 * reusing the domid inherits nothing. Returns the number of nodes removed or changed, or
 * -ENOMEM. */
int sxs_store_domain_gone(struct sxs_store *st, unsigned domid);

/* Consistency check: every listed child exists exactly once, every node but the special ones
 * is reachable from "/", owner counts match. Returns 0 or -EIO (details logged). */
int sxs_store_check(struct sxs_store *st);

unsigned sxs_store_node_count(const struct sxs_store *st);
unsigned sxs_store_nodes_owned(const struct sxs_store *st, unsigned domid);

#endif
