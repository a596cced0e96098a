/*
 * torture: the daemon's and the devices' lifetimes, the control rounds, and the control plane's
 * torture decisions (feature sets, reconnects, state rewrites). The findings, reports and log
 * are report.c, the xenbus checks check.c, the rings' data path ring.c. Contract in torture.h.
 */
#define SX_LOG_MODULE "torture"
#include "torture/priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "rundir.h"

/* ------------------------------------------------------------------ daemon and devices */

int sx_tt_open(struct sx_tt **out, const struct sx_tt_opts *o, struct sx_gnt *gnt)
{
    struct sx_tt *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->o = *o;
    /* SPLITXEN_CHECK_NOTIFY_MS: how long a published request may wait for its notification
     * (twice this before it is a finding); slow hosts (emulators, sanitizers) need more. */
    const char *e = getenv("SPLITXEN_CHECK_NOTIFY_MS");
    unsigned long ms;
    if (e && *e && sx_parse_ulong(e, 600000, &ms) == 0 && ms > 0)
        t->o.notify_ms = (unsigned)ms;
    if (!t->o.notify_ms)
        t->o.notify_ms = 250;
    t->gnt = gnt;
    pthread_mutex_init(&t->lock, NULL);
    char fl[160];
    tt_faults_list(t->o.faults, fl, sizeof(fl));
    if (o->torture)
        sx_info("torture: seed %" PRIu64 " (replay with --torture=%" PRIu64 "), faults %s%s",
                o->seed, o->seed, fl, o->check ? "; check on" : "");
    else if (o->check)
        sx_info("check: frontend protocol checks on, reports in %s/check", sx_run_dir());
    *out = t;
    return 0;
}

struct sx_tt_dev *sx_tt_dev_open(struct sx_tt *t, enum sx_tt_proto proto, domid_t fe,
                                 unsigned devid, const char *fe_path, const char *be_path)
{
    if (!t)
        return NULL;
    struct sx_tt_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    const char *kind = proto == SX_TT_BLKIF ? "vbd" : "vif";
    d->t = t;
    d->proto = proto;
    d->fe = fe;
    d->devid = devid;
    d->log_fd = -1;
    d->skip_events = 1;
    snprintf(d->name, sizeof(d->name), "%s-%u", kind, devid);
    snprintf(d->file, sizeof(d->file), "%s-%u-%u", kind, fe, devid);
    snprintf(d->fe_path, sizeof(d->fe_path), "%s", fe_path);
    snprintf(d->be_path, sizeof(d->be_path), "%s", be_path);
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->ctl_lock, NULL);
    tt_rng_init(&d->ctl, t->o.seed, d->name, "ctl");
    tt_rng_init(&d->feat, t->o.seed, d->name, "feat");
    tt_ctl_draw(d, 0);
    char skind[8];
    snprintf(skind, sizeof(skind), "%schk", kind);
    int rc = sx_stats_create(&d->st, skind, fe, devid, tt_stat_names());
    if (rc < 0)
        sx_warn("%s: check stats file: %s", d->file, strerror(-rc));
    if (t->o.torture) {
        char dir[200], path[300];
        if (tt_check_dir(dir, sizeof(dir)) == 0) {
            snprintf(path, sizeof(path), "%s/%s.torture.log", dir, d->file);
            d->log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        }
        if (d->log_fd < 0) {
            sx_warn("%s: torture log: %s", d->file, strerror(errno));
        } else {
            char fl[160], head[300];
            tt_faults_list(t->o.faults, fl, sizeof(fl));
            int n = snprintf(head, sizeof(head), "# splitxen torture: seed %" PRIu64
                             ", device %s, faults %s\n", t->o.seed, d->name, fl);
            if (n > 0 && write(d->log_fd, head, (size_t)n) < 0)
                sx_warn("%s: torture log: %s", d->file, strerror(errno));
        }
    }
    tt_write_reports(d);
    pthread_mutex_lock(&t->lock);
    d->next = t->devs;
    t->devs = d;
    pthread_mutex_unlock(&t->lock);
    return d;
}

void tt_dev_free(struct sx_tt_dev *d)
{
    for (unsigned i = 0; i < TT_MAX_RINGS; i++)
        tt_q_free(d->q[i]);
    free(d->missing);
    free(d->snap);
    sx_stats_destroy(&d->st);
    if (d->log_fd >= 0)
        close(d->log_fd);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->ctl_lock);
    free(d);
}

static void dev_unlink_free(struct sx_tt *t, struct sx_tt_dev *d)
{
    pthread_mutex_lock(&t->lock);
    for (struct sx_tt_dev **pp = &t->devs; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    pthread_mutex_unlock(&t->lock);
    tt_write_reports(d);
    tt_dev_free(d);
}

void sx_tt_dev_close(struct sx_tt_dev *d)
{
    if (!d)
        return;
    d->closing = true;
    tt_probe_collect(d);
    if (!tt_probes_pending(d))
        dev_unlink_free(d->t, d);
    /* else: the next ticks run the probes, then free it */
}

void sx_tt_tick(struct sx_tt *t, struct sx_xenbus *xb)
{
    if (!t)
        return;
    uint64_t now = tt_now_ms();
    struct sx_tt_dev *d = t->devs, *next;
    for (; d; d = next) {
        next = d->next;
        if (!d->closing)
            tt_check_tick(d, xb, now);
        else
            tt_probe_collect(d);
        tt_probe_run(d, false, now);
        if (d->closing && !tt_probes_pending(d)) {
            dev_unlink_free(t, d);
            continue;
        }
        /* dirty is set by the ring threads under the device's lock */
        pthread_mutex_lock(&d->lock);
        bool due = d->dirty && now - d->written_ms >= 1000;
        pthread_mutex_unlock(&d->lock);
        if (due)
            tt_write_reports(d);
    }
}

void sx_tt_close(struct sx_tt *t)
{
    if (!t)
        return;
    uint64_t now = tt_now_ms();
    while (t->devs) {
        struct sx_tt_dev *d = t->devs;
        tt_probe_run(d, true, now);
        dev_unlink_free(t, d);
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* ------------------------------------------------------------------ control-plane torture */

uint64_t sx_tt_feature(struct sx_tt_dev *d, const char *key, uint64_t dflt,
                       const uint64_t *choices, unsigned n)
{
    if (!d)
        return dflt;
    uint64_t v = dflt;
    if (n && tt_fault_on(d, SX_TT_F_FEATURES)) {
        v = choices[tt_rng_next(&d->feat) % n];
        d->feat.n++;
        tt_log_fault(d, SX_TT_F_FEATURES, &d->feat, "%s = %" PRIu64 " (configured %" PRIu64 ")",
                     key, v, dflt);
    }
    unsigned i = 0;
    while (i < d->noffers && strcmp(d->offers[i].key, key))
        i++;
    if (i == d->noffers && i < TT_MAX_OFFERS)
        snprintf(d->offers[d->noffers++].key, sizeof(d->offers[0].key), "%s", key);
    if (i < TT_MAX_OFFERS)
        d->offers[i].val = v;
    return v;
}

/* One of what the data path decided (tt_count), each done once. */
static bool take_one(_Atomic unsigned *n)
{
    unsigned v = atomic_load(n);
    while (v && !atomic_compare_exchange_weak(n, &v, v - 1))
        ;
    return v != 0;
}

enum sx_tt_ctl sx_tt_ctl_due(struct sx_tt_dev *d)
{
    if (!d)
        return SX_TT_CTL_NONE;
    if (take_one(&d->due_reconnect))
        return SX_TT_CTL_RECONNECT;
    if (take_one(&d->due_flap))
        return SX_TT_CTL_FLAP;
    return SX_TT_CTL_NONE;
}
