/*
 * xenbus helpers over libxenstore (<xenstore.h>): device paths, hostile-value parsing, the
 * XenbusState machine of <xen/io/xenbus.h>, and a token-dispatched watch wrapper.
 *
 * Works the same against real Xen's xenstored and splitxen's sim xenstored (a UNIX socket named
 * by XENSTORED_PATH). Every function returns 0 (or a count) or -errno; libxenstore's
 * false/NULL + errno is converted once, here.
 *
 * A handle is not thread-safe: use it from one thread (libxenstore's own read thread is fine).
 */
#ifndef SPLITXEN_XENBUS_H
#define SPLITXEN_XENBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/io/xenbus.h>
#include <xenstore.h>

struct sx_xenbus;
struct sx_plat;

/* Connect as the domain p acts as (sx_plat_xs_open): xenstored_path when given, else the
 * platform's xenstore for that domain; p NULL: xenstored_path or libxenstore's defaults
 * (which honour XENSTORED_PATH). Returns 0 or -errno. */
int sx_xenbus_open(struct sx_xenbus **out, const struct sx_plat *p, const char *xenstored_path);
/* NULL-safe. Removes this handle's watches with the connection. */
void sx_xenbus_close(struct sx_xenbus *xb);
/* The libxenstore handle, for anything not wrapped here. */
struct xs_handle *sx_xenbus_xs(struct sx_xenbus *xb);
/* Readable when watch events are pending (then call sx_xenbus_dispatch(xb, 0)). */
int sx_xenbus_fd(struct sx_xenbus *xb);
/* Text of the last failure that carries context (e.g. what sx_xenbus_wait_state waited on). */
const char *sx_xenbus_last_error(const struct sx_xenbus *xb);

/* "Unknown", "Initialising", ... "Reconfigured"; "Invalid" outside the enum. */
const char *sx_xenbus_state_name(int state);
/* Parse a state as written in xenstore ("4") or by name ("Connected", any case).
 * Returns 0 or -EINVAL. */
int sx_xenbus_state_parse(const char *s, enum xenbus_state *out);

/* /local/domain/<be>/backend/<type>/<fe>/<devid>. Returns 0, -EINVAL or -ENAMETOOLONG. */
int sx_xenbus_backend_path(char *buf, size_t len, unsigned be, const char *type, unsigned fe,
                           unsigned devid);
/* /local/domain/<fe>/device/<type>/<devid>. Returns 0, -EINVAL or -ENAMETOOLONG. */
int sx_xenbus_frontend_path(char *buf, size_t len, unsigned fe, const char *type,
                            unsigned devid);

/*
 * Keys: <dir>/<key> (key NULL or "" = dir itself), in transaction t or XBT_NULL.
 */
/* *val is malloc'ed and NUL-terminated; *len (may be NULL) excludes the NUL. */
int sx_xenbus_read(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key,
                   char **val, unsigned *len);
/* Into buf: -ENOENT missing, -E2BIG if it does not fit with its NUL, -EINVAL if it holds a
 * NUL byte. */
int sx_xenbus_read_str(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                       const char *key, char *buf, size_t size);
/* A decimal integer in [min, max]. Anything else (empty, sign, space, hex, trailing bytes,
 * overflow, out of range) is -EINVAL; a missing key is -ENOENT. */
int sx_xenbus_read_uint(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                        const char *key, uint64_t min, uint64_t max, uint64_t *out);
int sx_xenbus_write(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key,
                    const char *val);
int sx_xenbus_printf(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                     const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int sx_xenbus_rm(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key);
/* Remove every key directly under dir whose name `match` accepts: one listing, then one rm
 * each (a fresh directory costs one round trip). A missing dir removes nothing. */
int sx_xenbus_rm_if(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                    bool (*match)(const char *key));
/* 1 if it exists, 0 if not, -errno for anything else (e.g. -EACCES). */
int sx_xenbus_exists(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key);

int sx_xenbus_transaction_start(struct sx_xenbus *xb, xs_transaction_t *t);
/* -EAGAIN: a conflict, start over (the only backward jump STYLE.md allows, bounded). */
int sx_xenbus_transaction_end(struct sx_xenbus *xb, xs_transaction_t t, bool abort);

/* <dir>/state; a missing node reads as XenbusStateUnknown (as Linux's
 * xenbus_read_driver_state). -EINVAL for a value that is no state. */
int sx_xenbus_read_state(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                         enum xenbus_state *out);
/* Write <dir>/state in a transaction like Linux xenbus_switch_state: nothing is written if it
 * already holds `state`; -ENOENT if the node is gone (the toolstack removed the device: do not
 * recreate it); EAGAIN retried up to 16 times. */
int sx_xenbus_switch_state(struct sx_xenbus *xb, const char *dir, enum xenbus_state state);

/* Watches: one callback per token (tokens are unique per handle; -EEXIST otherwise). Like
 * every xenstore watch it fires once at registration. */
typedef void sx_xenbus_watch_fn(void *arg, const char *path, const char *token);
int sx_xenbus_watch(struct sx_xenbus *xb, const char *path, const char *token,
                    sx_xenbus_watch_fn *fn, void *arg);
/* Watch <dir>/state and call fn with the parsed state (-errno when unreadable or garbage). */
typedef void sx_xenbus_state_fn(void *arg, const char *dir, int state);
int sx_xenbus_watch_state(struct sx_xenbus *xb, const char *dir, const char *token,
                          sx_xenbus_state_fn *fn, void *arg);
/* Returns 0 or -ENOENT (unknown token). */
int sx_xenbus_unwatch(struct sx_xenbus *xb, const char *token);
/* Wait up to timeout_ms (-1 forever) for events and run their callbacks. Returns the number
 * dispatched, or -errno (-ENOTCONN when the connection to xenstored is gone). */
int sx_xenbus_dispatch(struct sx_xenbus *xb, int timeout_ms);
/* Wait until <dir>/state == want, dispatching other watches meanwhile. Returns 0, or
 * -ETIMEDOUT with sx_xenbus_last_error() naming the path, the wanted and the last seen state.
 * *seen (may be NULL) gets the last state read. */
int sx_xenbus_wait_state(struct sx_xenbus *xb, const char *dir, enum xenbus_state want,
                         int timeout_ms, enum xenbus_state *seen);

#endif
