/*
 * splitxen top: a live, xentop-like view of domains and their vbds and vifs.
 *
 * Domains come from splitxen-core; device counters from the stats files backends publish
 * (common/stats.h: $SPLITXEN_RUN/stats/<kind>-<domid>-<devid>). Every counter a backend
 * publishes is shown with its rate per second over the last interval, so a new counter needs
 * no change here. Modes: interactive (refreshes in place), --batch (one block per interval),
 * --json (one JSON object per interval, one line each), --prometheus (OpenMetrics text: one
 * metric family per counter of each device kind, to stdout or, with --textfile DIR, into
 * DIR/splitxen.prom for node_exporter's textfile collector). --prometheus reads only the
 * stats files, so it also runs in a driver domain where no splitxen-core runs.
 */
#define SX_LOG_MODULE "splitxen"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rundir.h"
#include "stats.h"
#include "xen-core/core.h"
#include "platform/platform.h"
#include "toolstack/top.h"

#define MAX_DEVS 256
#define MAX_DOMS 1024

struct dev_sample {
    char kind[8];
    uint32_t domid, devid;
    int32_t pid;
    bool alive;
    unsigned nr;
    char names[SX_STATS_MAX][SX_STATS_NAME];
    bool gauge[SX_STATS_MAX];
    uint64_t v[SX_STATS_MAX];
};

struct sample {
    struct timespec at;
    unsigned ndev;
    struct dev_sample dev[MAX_DEVS];
};

static volatile sig_atomic_t top_stop;
static void top_on_signal(int sig) { (void)sig; top_stop = 1; }

static int dev_cmp(const void *a, const void *b)
{
    const struct dev_sample *x = a, *y = b;
    if (x->domid != y->domid)
        return x->domid < y->domid ? -1 : 1;
    int k = strcmp(x->kind, y->kind);
    if (k)
        return k;
    return x->devid < y->devid ? -1 : x->devid > y->devid;
}

static void take_sample(struct sample *s)
{
    char dir[256];
    s->ndev = 0;
    clock_gettime(CLOCK_MONOTONIC, &s->at);
    if (sx_stats_dir(dir, sizeof(dir)) < 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && s->ndev < MAX_DEVS) {
        if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
            continue;   /* temporaries being renamed in carry a .pid suffix */
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct sx_stats st;
        if (sx_stats_open_ro(&st, path) < 0)
            continue;
        struct dev_sample *ds = &s->dev[s->ndev++];
        memcpy(ds->kind, st.hdr->kind, sizeof(ds->kind));
        ds->kind[sizeof(ds->kind) - 1] = 0;
        ds->domid = st.hdr->domid;
        ds->devid = st.hdr->devid;
        ds->pid = st.hdr->pid;
        ds->alive = ds->pid > 0 && (kill(ds->pid, 0) == 0 || errno == EPERM);
        ds->nr = st.hdr->nr;
        for (unsigned i = 0; i < ds->nr; i++) {
            memcpy(ds->names[i], st.hdr->names[i], SX_STATS_NAME);
            ds->gauge[i] = sx_stats_is_gauge(st.hdr, i);
            ds->names[i][SX_STATS_NAME - 1] = 0;
            ds->v[i] = atomic_load_explicit(&st.v[i], memory_order_relaxed);
        }
        sx_stats_close_ro(&st);
    }
    closedir(d);
    qsort(s->dev, s->ndev, sizeof(s->dev[0]), dev_cmp);
}

static const struct dev_sample *find_prev(const struct sample *p, const struct dev_sample *d)
{
    if (!p)
        return NULL;
    for (unsigned i = 0; i < p->ndev; i++)
        if (p->dev[i].domid == d->domid && p->dev[i].devid == d->devid &&
            !strcmp(p->dev[i].kind, d->kind) && p->dev[i].pid == d->pid)
            return &p->dev[i];
    return NULL;
}

static double rate_of(const struct dev_sample *d, const struct dev_sample *p, unsigned i,
                      double secs)
{
    if (!p || secs <= 0)
        return 0;
    for (unsigned j = 0; j < p->nr; j++)
        if (!strcmp(p->names[j], d->names[i]))
            return d->v[i] >= p->v[j] ? (double)(d->v[i] - p->v[j]) / secs : 0;
    return 0;
}

/* The counter called name, or -1. */
static int counter_idx(const struct dev_sample *d, const char *name)
{
    for (unsigned i = 0; i < d->nr; i++)
        if (!strcmp(d->names[i], name))
            return (int)i;
    return -1;
}

/* Mean of a latency stage in us: lat_<stage>_ns over lat_<stage>_n, over the interval when
 * there is an earlier sample with samples in between, else since the device started. -1 when
 * the device has no such stage or no sample of it. */
static double stage_us(const struct dev_sample *d, const struct dev_sample *p, const char *stage)
{
    char ns[SX_STATS_NAME + 8], n[SX_STATS_NAME + 8];
    snprintf(ns, sizeof(ns), "lat_%s_ns", stage);
    snprintf(n, sizeof(n), "lat_%s_n", stage);
    int a = counter_idx(d, ns), b = counter_idx(d, n);
    if (a < 0 || b < 0)
        return -1;
    uint64_t sum = d->v[a], cnt = d->v[b];
    int pa = p ? counter_idx(p, ns) : -1, pb = p ? counter_idx(p, n) : -1;
    if (pa >= 0 && pb >= 0 && cnt > p->v[pb] && sum >= p->v[pa]) {
        sum -= p->v[pa];
        cnt -= p->v[pb];
    }
    return cnt ? (double)sum / (double)cnt / 1000.0 : -1;
}

/* A vbd's latency per request by stage (us; -1 = unknown): the backend's own stages from its
 * stats file, the frontend's from the vbdfe file a splitxen frontend publishes for the same
 * device; "ring" is what the frontend waited for beyond the backend's stages (both transits
 * of the ring, wakeups included). */
enum { ST_RING, ST_BACKEND, ST_ENGINE, ST_RESPONSE, ST_FRONTEND, ST_TOTAL, ST_NR };
static const char *const stage_names[ST_NR] = {
    "ring", "backend", "engine", "response", "frontend", "total",
};

static const struct dev_sample *find_dev(const struct sample *s, const char *kind, uint32_t domid,
                                         uint32_t devid)
{
    for (unsigned i = 0; s && i < s->ndev; i++)
        if (s->dev[i].domid == domid && s->dev[i].devid == devid && !strcmp(s->dev[i].kind, kind))
            return &s->dev[i];
    return NULL;
}

static bool vbd_latency(const struct sample *cur, const struct sample *prev,
                        const struct dev_sample *d, double out[ST_NR])
{
    for (unsigned i = 0; i < ST_NR; i++)
        out[i] = -1;
    if (strcmp(d->kind, "vbd"))
        return false;
    const struct dev_sample *p = find_prev(prev, d);
    out[ST_BACKEND] = stage_us(d, p, "backend");
    out[ST_ENGINE] = stage_us(d, p, "engine");
    out[ST_RESPONSE] = stage_us(d, p, "response");
    const struct dev_sample *fe = find_dev(cur, "vbdfe", d->domid, d->devid);
    if (fe) {
        const struct dev_sample *pfe = find_prev(prev, fe);
        out[ST_FRONTEND] = stage_us(fe, pfe, "frontend");
        out[ST_TOTAL] = stage_us(fe, pfe, "total");
        if (out[ST_TOTAL] >= 0 && out[ST_BACKEND] >= 0 && out[ST_ENGINE] >= 0 &&
            out[ST_RESPONSE] >= 0) {
            double r = out[ST_TOTAL] - out[ST_BACKEND] - out[ST_ENGINE] - out[ST_RESPONSE];
            out[ST_RING] = r > 0 ? r : 0;
        }
    }
    for (unsigned i = 0; i < ST_NR; i++)
        if (out[i] >= 0)
            return true;
    return false;
}

static const char *state_str(uint32_t s)
{
    return s == SXD_STATE_RUNNING ? "r" : s == SXD_STATE_PAUSED ? "p" : s == SXD_STATE_DYING ? "d" : "?";
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void print_json(FILE *f, const struct sxc_dominfo *doms, int ndom, const struct sample *cur,
                       const struct sample *prev, double secs)
{
    fprintf(f, "{\"time\":%ld,\"interval\":%.3f,\"domains\":[", (long)time(NULL), secs);
    for (int i = 0; i < ndom; i++) {
        fprintf(f, "%s{\"domid\":%u,\"name\":", i ? "," : "", doms[i].domid);
        json_str(f, doms[i].name);
        fprintf(f, ",\"state\":\"%s\",\"type\":\"%s\",\"mem_mb\":%" PRIu64 ",\"vcpus\":%u,\"devices\":[",
                state_str(doms[i].state), doms[i].type == SXD_TYPE_HVM ? "hvm" : "pv",
                doms[i].mem_mb, doms[i].vcpus);
        bool first = true;
        for (unsigned k = 0; k < cur->ndev; k++) {
            const struct dev_sample *d = &cur->dev[k];
            if (d->domid != doms[i].domid)
                continue;
            const struct dev_sample *p = find_prev(prev, d);
            fprintf(f, "%s{\"kind\":", first ? "" : ",");
            first = false;
            json_str(f, d->kind);
            fprintf(f, ",\"devid\":%u,\"backend_pid\":%d,\"backend_alive\":%s,\"counters\":{",
                    d->devid, d->pid, d->alive ? "true" : "false");
            for (unsigned c = 0; c < d->nr; c++) {
                fprintf(f, "%s", c ? "," : "");
                json_str(f, d->names[c]);
                fprintf(f, ":%" PRIu64, d->v[c]);
            }
            fprintf(f, "},\"rates\":{");
            for (unsigned c = 0; c < d->nr; c++) {
                fprintf(f, "%s", c ? "," : "");
                json_str(f, d->names[c]);
                fprintf(f, ":%.1f", rate_of(d, p, c, secs));
            }
            fprintf(f, "}");
            double lat[ST_NR];
            if (vbd_latency(cur, prev, d, lat)) {
                fprintf(f, ",\"latency_us\":{");
                bool lfirst = true;
                for (unsigned st = 0; st < ST_NR; st++) {
                    if (lat[st] < 0)
                        continue;
                    fprintf(f, "%s\"%s\":%.2f", lfirst ? "" : ",", stage_names[st], lat[st]);
                    lfirst = false;
                }
                fprintf(f, "}");
            }
            fprintf(f, "}");
        }
        fprintf(f, "]}");
    }
    fprintf(f, "]}\n");
}

static void print_text(FILE *f, const struct sxc_dominfo *doms, int ndom, const struct sample *cur,
                       const struct sample *prev, double secs)
{
    time_t t = time(NULL);
    char ts[32];
    strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
    fprintf(f, "splitxen top - %s  %d domains, %u devices\n", ts, ndom, cur->ndev);
    fprintf(f, "%5s %-24s %-5s %-4s %7s %5s\n", "ID", "NAME", "STATE", "TYPE", "MEM(M)", "VCPUS");
    for (int i = 0; i < ndom; i++) {
        fprintf(f, "%5u %-24.24s %-5s %-4s %7" PRIu64 " %5u\n", doms[i].domid, doms[i].name,
                state_str(doms[i].state), doms[i].type == SXD_TYPE_HVM ? "hvm" : "pv",
                doms[i].mem_mb, doms[i].vcpus);
        for (unsigned k = 0; k < cur->ndev; k++) {
            const struct dev_sample *d = &cur->dev[k];
            if (d->domid != doms[i].domid)
                continue;
            const struct dev_sample *p = find_prev(prev, d);
            fprintf(f, "      %s %u%s:", d->kind, d->devid, d->alive ? "" : " (backend gone)");
            for (unsigned c = 0; c < d->nr; c++) {
                double r = rate_of(d, p, c, secs);
                if (r > 0)
                    fprintf(f, " %s=%" PRIu64 " (%.0f/s)", d->names[c], d->v[c], r);
                else
                    fprintf(f, " %s=%" PRIu64, d->names[c], d->v[c]);
            }
            fputc('\n', f);
            double lat[ST_NR];
            if (vbd_latency(cur, prev, d, lat)) {
                fprintf(f, "        latency us/request:");
                for (unsigned st = 0; st < ST_NR; st++)
                    if (lat[st] >= 0)
                        fprintf(f, " %s %.2f", stage_names[st], lat[st]);
                fputc('\n', f);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Metrics for Prometheus. One family per (device kind, value name): splitxen_<kind>_<name>,
 * typed as the backend typed the value in its stats file (a counter or a gauge), with the
 * labels kind, domid, devid and device (the stats file's name); plus splitxen_backend_up, 1
 * while the process serving a device is alive. OpenMetrics 1.0 text (counter samples carry
 * _total, the exposition ends with # EOF) for scrapers, or the Prometheus 0.0.4 text format that
 * node_exporter's textfile collector parses (the family itself is named ..._total). */

/* [a-zA-Z0-9_] only: anything else in a kind or value name becomes '_'. */
static void om_sanitize(char *out, size_t len, const char *in)
{
    size_t i = 0;
    for (; in[i] && i + 1 < len; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (char)(((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_') ? c : '_');
    }
    out[i] = '\0';
}

static void om_labels(FILE *f, const struct dev_sample *d)
{
    char kind[sizeof(d->kind)];
    om_sanitize(kind, sizeof(kind), d->kind);
    fprintf(f, "{kind=\"%s\",domid=\"%u\",devid=\"%u\",device=\"%s-%u-%u\"}", kind, d->domid,
            d->devid, kind, d->domid, d->devid);
}

static int value_index(const struct dev_sample *d, const char *name)
{
    for (unsigned i = 0; i < d->nr; i++)
        if (!strcmp(d->names[i], name))
            return (int)i;
    return -1;
}

static void print_metrics(FILE *f, const struct sample *s, bool openmetrics)
{
    const char *suffix = openmetrics ? "" : "_total";   /* the family name of a counter */
    for (unsigned k = 0; k < s->ndev; k++) {
        const struct dev_sample *d = &s->dev[k];
        for (unsigned c = 0; c < d->nr; c++) {
            bool seen = false;   /* families come whole, where their kind first shows one */
            for (unsigned j = 0; j < k && !seen; j++)
                seen = !strcmp(s->dev[j].kind, d->kind) && value_index(&s->dev[j], d->names[c]) >= 0;
            if (seen)
                continue;
            char kind[sizeof(d->kind)], name[SX_STATS_NAME], fam[64];
            om_sanitize(kind, sizeof(kind), d->kind);
            om_sanitize(name, sizeof(name), d->names[c]);
            bool gauge = d->gauge[c];
            snprintf(fam, sizeof(fam), "splitxen_%s_%s", kind, name);
            fprintf(f, "# TYPE %s%s %s\n", fam, gauge ? "" : suffix, gauge ? "gauge" : "counter");
            fprintf(f, "# HELP %s%s %s %s of each %s (splitxen stats file)\n", fam,
                    gauge ? "" : suffix, gauge ? "Level" : "Count", name, kind);
            for (unsigned j = k; j < s->ndev; j++) {
                const struct dev_sample *e = &s->dev[j];
                int i = strcmp(e->kind, d->kind) ? -1 : value_index(e, d->names[c]);
                /* A device whose backend types the value otherwise (another version) is left
                 * out rather than given a wrong type. */
                if (i < 0 || e->gauge[i] != gauge)
                    continue;
                fprintf(f, "%s%s", fam, gauge ? "" : "_total");
                om_labels(f, e);
                fprintf(f, " %" PRIu64 "\n", e->v[i]);
            }
        }
    }
    fputs("# TYPE splitxen_backend_up gauge\n"
          "# HELP splitxen_backend_up 1 while the process serving the device runs\n", f);
    for (unsigned k = 0; k < s->ndev; k++) {
        fputs("splitxen_backend_up", f);
        om_labels(f, &s->dev[k]);
        fprintf(f, " %d\n", s->dev[k].alive ? 1 : 0);
    }
    if (openmetrics)
        fputs("# EOF\n", f);
}

/* DIR/splitxen.prom, replaced whole by a rename so that the collector never reads half a file
 * (the temporary's name does not end in .prom, which the collector ignores). 0 or -errno. */
static int write_textfile(const char *dir, const struct sample *s)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/.splitxen.prom.%d", dir, (int)getpid()) >= (int)sizeof(tmp) ||
        snprintf(path, sizeof(path), "%s/splitxen.prom", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = -errno;
        close(fd);
        unlink(tmp);
        return e;
    }
    print_metrics(f, s, false);
    int rc = 0;
    if (fflush(f) != 0 || fsync(fd) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static void top_usage(FILE *f)
{
    fprintf(f, "usage: splitxen top [--batch|-b] [--json] [--delay|-d SECONDS] "
               "[--iterations|-n N]\n"
               "       splitxen top --prometheus [--textfile DIR] [--delay|-d SECONDS] "
               "[--iterations|-n N]\n"
               "  interactive by default (refresh in place, Ctrl-C to quit);\n"
               "  --batch prints one block per interval, --json one JSON line per interval;\n"
               "  --prometheus prints the devices' counters in OpenMetrics text once (every\n"
               "  --delay seconds when given), without needing splitxen-core;\n"
               "  --textfile DIR writes them to DIR/splitxen.prom instead (node_exporter's\n"
               "  textfile collector), replacing the file atomically each time\n");
}

int sx_cmd_top(int argc, char **argv)
{
    bool batch = false, json = false, prom = false, delay_given = false;
    const char *textfile = NULL;
    double delay = 1.0;
    long iterations = -1;
    static const struct option opts[] = {
        { "batch", no_argument, NULL, 'b' },
        { "json", no_argument, NULL, 'j' },
        { "delay", required_argument, NULL, 'd' },
        { "iterations", required_argument, NULL, 'n' },
        { "prometheus", no_argument, NULL, 'P' },
        { "textfile", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "bjd:n:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'b': batch = true; break;
        case 'j': json = true; break;
        case 'P': prom = true; break;
        case 'T': textfile = optarg; break;
        case 'd':
            delay = strtod(optarg, &end);
            if (*end || delay < 0.05 || delay > 3600) {
                fprintf(stderr, "splitxen top: --delay: expected seconds in 0.05..3600, got '%s'\n", optarg);
                return 2;
            }
            delay_given = true;
            break;
        case 'n':
            iterations = strtol(optarg, &end, 10);
            if (*end || iterations < 1) {
                fprintf(stderr, "splitxen top: --iterations: expected a positive count, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': top_usage(stdout); return 0;
        default: top_usage(stderr); return 2;
        }
    }
    if (optind != argc || (textfile && !prom) || (prom && (batch || json))) {
        top_usage(stderr);
        return 2;
    }
    /* Metrics: one snapshot unless --delay asks for more. */
    if (prom && !delay_given && iterations < 0)
        iterations = 1;
    struct sxc_conn *core = NULL;
    int rc = prom ? 0 : sxc_connect(&core, NULL, 0);
    if (rc < 0) {
        fprintf(stderr, "splitxen top: cannot reach splitxen-core in %s: %s (is `splitxen up` done?)\n",
                sx_run_dir(), strerror(-rc));
        return 1;
    }
    struct sample *cur = calloc(1, sizeof(*cur)), *prev = calloc(1, sizeof(*prev));
    struct sxc_dominfo *doms = calloc(MAX_DOMS, sizeof(*doms));
    if (!cur || !prev || !doms) {
        sxc_disconnect(core);
        free(cur);
        free(prev);
        free(doms);
        return 1;
    }
    struct sigaction sa = { .sa_handler = top_on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool have_prev = false;
    int ret = 0;
    for (long it = 0; !top_stop && (iterations < 0 || it < iterations); it++) {
        int ndom = core ? sxc_domain_list(core, doms, MAX_DOMS) : 0;
        if (ndom < 0) {
            fprintf(stderr, "splitxen top: lost splitxen-core: %s\n", strerror(-ndom));
            ret = 1;
            break;
        }
        if (ndom > MAX_DOMS)
            ndom = MAX_DOMS;
        take_sample(cur);
        double secs = have_prev ? (cur->at.tv_sec - prev->at.tv_sec) +
                                      (cur->at.tv_nsec - prev->at.tv_nsec) / 1e9 : 0;
        const struct sample *p = have_prev ? prev : NULL;
        if (prom && textfile) {
            int wrc = write_textfile(textfile, cur);
            if (wrc < 0) {
                fprintf(stderr, "splitxen top: %s/splitxen.prom: %s\n", textfile, strerror(-wrc));
                ret = 1;
                break;
            }
        } else if (prom)
            print_metrics(stdout, cur, true);
        else if (json)
            print_json(stdout, doms, ndom, cur, p, secs);
        else {
            if (!batch)
                fputs("\033[H\033[2J", stdout);
            print_text(stdout, doms, ndom, cur, p, secs);
            if (batch)
                fputc('\n', stdout);
        }
        fflush(stdout);
        struct sample *t = prev;
        prev = cur;
        cur = t;
        have_prev = true;
        if (iterations >= 0 && it + 1 >= iterations)
            break;
        struct timespec ts = { (time_t)delay, (long)((delay - (time_t)delay) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !top_stop)
            ;
    }
    free(cur);
    free(prev);
    free(doms);
    sxc_disconnect(core);
    return ret;
}
