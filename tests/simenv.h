/* Test fixture: an in-process splitxen-core on a private run dir, and helpers to act as domains. */
#ifndef SPLITXEN_TEST_SIMENV_H
#define SPLITXEN_TEST_SIMENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xen-core/core.h"
#include "platform/platform.h"

struct simenv {
    char dir[128];
    char sock[256];
    struct sxc_server *srv;
};

static inline int simenv_start(struct simenv *e, bool xenstored)
{
    snprintf(e->dir, sizeof(e->dir), "/tmp/sx-test-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(e->dir))
        return -1;
    setenv("SPLITXEN_RUN", e->dir, 1);
    struct sxc_server_opts o = { .run_dir = e->dir, .dom0_mem_mb = 16, .with_xenstored = xenstored };
    if (sxc_server_open(&e->srv, &o) < 0)
        return -1;
    sxc_socket_path(e->sock, sizeof(e->sock), e->dir);
    setenv("SPLITXEN_CORE", e->sock, 1);
    return 0;
}

static inline void simenv_stop(struct simenv *e)
{
    sxc_server_close(e->srv);
    e->srv = NULL;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
}

/* A platform handle acting as `domid`. */
static inline struct sx_plat *simenv_plat(struct simenv *e, domid_t domid)
{
    struct sx_plat *p = NULL;
    if (sx_plat_open(&p, SX_PLAT_SIM, domid, e->sock) < 0)
        return NULL;
    return p;
}

/* Start the core (no xenstored) and open a platform handle for dom0: the fixture of tests that
 * act as the toolstack. 0 or -1; simenv_stop_dom0 undoes it. */
static inline int simenv_start_dom0(struct simenv *e, struct sx_plat **dom0)
{
    if (simenv_start(e, false) < 0)
        return -1;
    *dom0 = simenv_plat(e, 0);
    return *dom0 ? 0 : -1;
}

static inline void simenv_stop_dom0(struct simenv *e, struct sx_plat *dom0)
{
    sx_plat_close(dom0);
    simenv_stop(e);
}

/* A suite acting as dom0: `env`, `dom0` and its setup/teardown hooks. */
#define SIMENV_DOM0_SUITE()                                                                  \
    static struct simenv env;                                                                \
    static struct sx_plat *dom0;                                                             \
    static int setup(void) { return simenv_start_dom0(&env, &dom0) < 0; }                    \
    static int teardown(void)                                                                \
    {                                                                                        \
        simenv_stop_dom0(&env, dom0);                                                        \
        return 0;                                                                            \
    }

/* Start the core (no xenstored) and open platform handles for dom0 and for a new 16 MiB PV
 * guest called `name`: the fixture of tests that play both ends of a channel. 0 or -1. */
static inline int simenv_start_pair(struct simenv *e, const char *name, struct sx_plat **dom0,
                                    struct sx_plat **guest, domid_t *gid)
{
    if (simenv_start(e, false) < 0 || !(*dom0 = simenv_plat(e, 0)))
        return -1;
    int d = sxc_domain_create((*dom0)->conn, name, SXD_TYPE_PV, 16, 1, false);
    if (d < 0)
        return -1;
    *gid = (domid_t)d;
    *guest = simenv_plat(e, *gid);
    return *guest ? 0 : -1;
}

#endif
