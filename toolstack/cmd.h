/* What the `splitxen` commands share (domain.c), and the ones in migrate.c. Private to
 * toolstack/. */
#ifndef SPLITXEN_TOOLSTACK_CMD_H
#define SPLITXEN_TOOLSTACK_CMD_H

#include <stdbool.h>
#include <sys/types.h>

#include "toolstack/xlcfg.h"

struct sxc_conn;
struct xs_handle;

/* splitxen-core and its xenstored in $SPLITXEN_RUN; print why not. */
int sx_cmd_core_connect(struct sxc_conn **c);
struct xs_handle *sx_cmd_store_open(void);
/* NAME or numeric ID -> domid (-ENOENT). */
int sx_cmd_resolve_domain(struct sxc_conn *c, const char *ref);
/* The backend domain of a device (NULL: 0); `where`/`line` name the config item. */
int sx_cmd_resolve_backend(struct sxc_conn *c, const char *ref, const char *where, int line,
                           const char *what);
/* Close one device (its backend directory) or every device of a domain: backends to Closed,
 * within the device timeout. */
void sx_cmd_device_close(struct xs_handle *xs, const char *bpath);
void sx_cmd_devices_close(struct xs_handle *xs, unsigned domid);
/* Wait (-w) until every backend of a layout reports hotplug-status "connected". */
struct sx_layout;
int sx_cmd_wait_connected(struct xs_handle *xs, const struct sx_layout *l);
long sx_cmd_env_long(const char *name, long def, long min, long max);
/* The value at a printf-made path (malloc'ed), NULL when missing. */
char *sx_cmd_xs_read(struct xs_handle *xs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Commands on one existing domain other than 0: connect, resolve NAME|ID (printed when it
 * fails). 0 or -1; close in any case. */
struct sx_domcmd {
    struct sxc_conn *core;
    struct xs_handle *xs;
    int domid;
};
int sx_cmd_dom_open(struct sx_domcmd *d, const char *ref, bool need_xs);
void sx_cmd_dom_close(struct sx_domcmd *d);

/* Create a domain from a parsed config and write its xenstore layout, as `create` does, and
 * leave it paused. uuid: NULL for the config's or a new one. `where` names the config in
 * messages. Returns the domid; on failure (printed) nothing is left. */
int sx_cmd_build_domain(struct sxc_conn *core, struct xs_handle *xs,
                        const struct sx_domcfg *cfg, const char *where, const char *uuid,
                        bool wait_be, pid_t *dm_pid);
/* Undo it (or destroy any domain as `destroy` does): devices closed, nodes removed, domain
 * destroyed. 0 or the first -errno (printed). */
int sx_cmd_unbuild_domain(struct sxc_conn *core, struct xs_handle *xs, int domid);

/* $SPLITXEN_RUN/NAME; a program next to this one (build/bin), in ../sbin beside it, or from
 * PATH ($ENV overrides). */
void sx_cmd_run_file(char *buf, size_t len, const char *name);
int sx_cmd_sibling_bin(char *buf, size_t len, const char *name, const char *env);
/* Start args[0] as a daemon of its own session, output appended to logf; notify: its
 * $NOTIFY_SOCKET ("": none; NULL: this process's). Its pid, or -1 (errno) when fork failed. */
pid_t sx_cmd_spawn(char *const *args, const char *logf, const char *notify);

/* migrate.c */
int sx_cmd_save(int argc, char **argv);
int sx_cmd_restore(int argc, char **argv);
int sx_cmd_migrate(int argc, char **argv);
int sx_cmd_migrate_receive(int argc, char **argv);

#endif
