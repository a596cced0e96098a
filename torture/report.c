/*
 * torture, what every part uses: options, the generators, findings and their reports, the
 * torture log, the features offered. Contract in torture.h.
 */
#define SX_LOG_MODULE "torture"
#include "torture/priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "parse.h"
#include "rundir.h"

/* ------------------------------------------------------------------ options */

static const char *const fault_names[SX_TT_F_NR] = {
    [SX_TT_F_DELAY] = "delay",
    [SX_TT_F_REORDER] = "reorder",
    [SX_TT_F_EOPNOTSUPP] = "eopnotsupp",
    [SX_TT_F_ERROR] = "error",
    [SX_TT_F_PAUSE] = "pause",
    [SX_TT_F_BURST] = "burst",
    [SX_TT_F_PARTIAL] = "partial",
    [SX_TT_F_RECONNECT] = "reconnect",
    [SX_TT_F_FLAP] = "flap",
    [SX_TT_F_FEATURES] = "features",
};

const char sx_tt_usage[] =
    "  --check                report each frontend protocol mistake (per device, with the\n"
    "                         request and the rule): $SPLITXEN_RUN/check/<dev>.txt and .json\n"
    "  --torture[=SEED]       inject faults within the protocol's rules, reproducibly from\n"
    "                         SEED (default: from the clock, logged); each one is logged in\n"
    "                         $SPLITXEN_RUN/check/<dev>.torture.log\n"
    "  --torture-faults=LIST  which faults (default all but error): delay,reorder,eopnotsupp,\n"
    "                         error,pause,burst,partial,reconnect,flap,features, all, default\n";

const char *sx_tt_fault_name(enum sx_tt_fault f)
{
    return (unsigned)f < SX_TT_F_NR ? fault_names[f] : "?";
}

void sx_tt_opts_default(struct sx_tt_opts *o)
{
    *o = (struct sx_tt_opts){ .faults = SX_TT_FAULTS_DEFAULT, .notify_ms = 250 };
}

int sx_tt_parse_torture(struct sx_tt_opts *o, const char *arg)
{
    unsigned long v;
    if (!arg || !*arg) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (unsigned long)(((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec) % 1000000000u;
    } else if (sx_parse_ulong(arg, ULONG_MAX, &v) < 0) {
        return -EINVAL;
    }
    o->torture = true;
    o->seed = v;
    return 0;
}

int sx_tt_parse_faults(struct sx_tt_opts *o, const char *list)
{
    unsigned mask = 0;
    const char *p = list;
    if (!list || !*list)
        return -EINVAL;
    while (*p) {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        if (n == 3 && !strncmp(p, "all", 3))
            bit = SX_TT_FAULTS_ALL;
        else if (n == 7 && !strncmp(p, "default", 7))
            bit = SX_TT_FAULTS_DEFAULT;
        for (unsigned f = 0; !bit && f < SX_TT_F_NR; f++)
            if (strlen(fault_names[f]) == n && !strncmp(p, fault_names[f], n))
                bit = 1u << f;
        if (!bit)
            return -EINVAL;
        mask |= bit;
        p += n;
        if (*p == ',')
            p++;
    }
    o->faults = mask;
    return 0;
}

/* ------------------------------------------------------------------ generators */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

void tt_rng_init(struct tt_rng *r, uint64_t seed, const char *dev, const char *stream)
{
    uint64_t h = fnv1a(stream, fnv1a("/", fnv1a(dev, 0xcbf29ce484222325ull)));
    r->s = seed ^ h;
    (void)splitmix(&r->s);
    r->n = 0;
    snprintf(r->name, sizeof(r->name), "%s", stream);
}

uint64_t tt_rng_next(struct tt_rng *r)
{
    return splitmix(&r->s);
}

uint64_t tt_now_ms(void)
{
    return sx_now_ms();
}

/* ------------------------------------------------------------------ findings */

static const char *const kind_names[SX_TT_K_NR] = {
    [SX_TT_K_STATE] = "state_order",
    [SX_TT_K_KEY_MISSING] = "key_missing",
    [SX_TT_K_KEY_STATE] = "key_wrong_state",
    [SX_TT_K_KEY_VALUE] = "key_bad_value",
    [SX_TT_K_FEATURE] = "feature_not_offered",
    [SX_TT_K_GRANT_CLOSED] = "granted_after_closed",
    [SX_TT_K_ID_REUSE] = "id_reused_in_flight",
    [SX_TT_K_PROD_BACK] = "req_prod_backwards",
    [SX_TT_K_PROD_OVERFLOW] = "req_prod_overflow",
    [SX_TT_K_NOTIFY] = "notify_missing",
    [SX_TT_K_GRANT_REVOKED] = "grant_revoked_in_flight",
    [SX_TT_K_GRANT_BAD] = "grant_unusable",
    [SX_TT_K_SLOTS] = "tx_slot_chain",
    [SX_TT_K_SEGMENTS] = "segment_limit",
    [SX_TT_K_SEG_BOUNDS] = "segment_bounds",
    [SX_TT_K_RANGE] = "sector_range",
    [SX_TT_K_OP] = "bad_operation",
};

/* What the protocol says, for each kind, unless the finding brings its own rule. */
static const char *const kind_rules[SX_TT_K_NR] = {
    [SX_TT_K_STATE] =
        "<xen/io/blkif.h> STATE DIAGRAMS: the frontend goes Initialising -> (backend InitWait) "
        "-> Initialised -> (backend Connected) -> Connected; Closing and Closed end a "
        "connection (<xen/io/xenbus.h>: \"Closing: The device is being closed due to an error "
        "or an unplug event.\") and a new one starts again from Initialising",
    [SX_TT_K_KEY_MISSING] =
        "<xen/io/blkif.h>: the frontend must \"Publish transport parameters that will be in "
        "effect during this connection\" before it goes XenbusStateInitialised",
    [SX_TT_K_KEY_STATE] =
        "<xen/io/blkif.h>: transport parameters are published before Initialised and \"will be "
        "in effect during this connection\"",
    [SX_TT_K_KEY_VALUE] =
        "<xen/io/blkif.h>, <xen/io/netif.h>: multi-queue-num-queues \"must be greater than "
        "zero, and no more than the value reported by the backend in multi-queue-max-queues\"",
    [SX_TT_K_FEATURE] =
        "a frontend uses an optional feature only when the backend advertised it in its "
        "feature-* node (<xen/io/blkif.h>, <xen/io/netif.h>)",
    [SX_TT_K_GRANT_CLOSED] =
        "<xen/io/xenbus.h> XenbusStateClosed: the connection is gone; the ring granted for it "
        "(\"in effect during this connection\", <xen/io/blkif.h>) must be ended: "
        "<xen/grant_table.h> \"Invalidating an unused GTF_permit_access entry\"",
    [SX_TT_K_ID_REUSE] =
        "<xen/io/blkif.h>: \"uint64_t id; /* private guest value, echoed in resp */\" "
        "(<xen/io/netif.h>: \"id: request identifier, echoed in response\"): responses are "
        "matched to requests by id alone, so two requests in flight must not share one",
    [SX_TT_K_PROD_BACK] =
        "<xen/io/ring.h>: RING_PUSH_REQUESTS publishes req_prod = req_prod_pvt, a free-running "
        "index that only moves forward (\"back sees requests /before/ updated producer "
        "index\")",
    [SX_TT_K_PROD_OVERFLOW] =
        "<xen/io/ring.h>: \"Ill-behaved frontend determination: Can there be this many "
        "requests?\" RING_REQUEST_PROD_OVERFLOW(_r, _prod) (((_prod) - (_r)->rsp_prod_pvt) > "
        "RING_SIZE(_r)); the ring is halted",
    [SX_TT_K_NOTIFY] =
        "<xen/io/blkif.h>: \"When enqueuing a new request, sending a notification can be made "
        "conditional on req_event\"; RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: notify when "
        "(new - req_event) < (new - old) (<xen/io/netif.h>: \"Notifications after enqueuing "
        "any type of message should be conditional on the appropriate req_event\")",
    [SX_TT_K_GRANT_REVOKED] =
        "<xen/grant_table.h> \"Invalidating an unused GTF_permit_access entry: 1. flags = "
        "ent->flags. 2. Observe that !(flags & (GTF_reading|GTF_writing)). 3. Check result of "
        "SMP-safe CMPXCHG(&ent->flags, flags, 0).\"",
    [SX_TT_K_GRANT_BAD] =
        "<xen/io/blkif.h> blkif_request_segment: \"gref: reference to I/O buffer frame\" "
        "granted to the backend domain (<xen/io/netif.h>: \"grant ref: Reference to buffer "
        "page.\")",
    [SX_TT_K_SLOTS] =
        "<xen/io/netif.h> Guest transmit: \"Fragment 1: netif_tx_request_t - flags = "
        "NETTXF_*, size = total packet size\" ... \"XEN_NETIF_NR_SLOTS_MIN 18\"; Linux netback "
        "(xenvif_tx_build_gops) drops or halts on the chain",
    [SX_TT_K_SEGMENTS] =
        "<xen/io/blkif.h>: \"#define BLKIF_MAX_SEGMENTS_PER_REQUEST 11\"; "
        "\"#define BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST 8\"; indirect requests may carry "
        "\"any number of indirect segments as long as it's less than the number provided by "
        "the backend\" (feature-max-indirect-segments)",
    [SX_TT_K_SEG_BOUNDS] =
        "<xen/io/blkif.h> blkif_request_segment: \"@first_sect: first sector in frame to "
        "transfer (inclusive). @last_sect: last sector in frame to transfer (inclusive).\" "
        "within the 4 KiB frame",
    [SX_TT_K_RANGE] =
        "<xen/io/blkif.h> sectors: \"The size of the backend device, expressed in units of "
        "sector-size\"; a request must end within it",
    [SX_TT_K_OP] =
        "<xen/io/blkif.h> REQUEST CODES: BLKIF_OP_READ .. BLKIF_OP_INDIRECT, the optional ones "
        "only where the backend advertised them; mode \"r\": no writes",
};

const char *sx_tt_kind_name(enum sx_tt_kind k)
{
    return (unsigned)k < SX_TT_K_NR ? kind_names[k] : "?";
}

/* Stats file counters: every kind, the findings, every fault, the faults. */
#define ST_FINDINGS SX_TT_K_NR
#define ST_FAULT0 (SX_TT_K_NR + 1)
#define ST_FAULTS (ST_FAULT0 + SX_TT_F_NR)
const char *const *tt_stat_names(void)
{
    static const char *names[ST_FAULTS + 2];
    static char fault_stat[SX_TT_F_NR][SX_STATS_NAME];
    if (!names[0]) {
        for (unsigned k = 0; k < SX_TT_K_NR; k++)
            names[k] = kind_names[k];
        names[ST_FINDINGS] = "findings";
        for (unsigned f = 0; f < SX_TT_F_NR; f++) {
            snprintf(fault_stat[f], sizeof(fault_stat[f]), "fault_%s", fault_names[f]);
            names[ST_FAULT0 + f] = fault_stat[f];
        }
        names[ST_FAULTS] = "faults";
        names[ST_FAULTS + 1] = NULL;
    }
    return names;
}
_Static_assert(SX_TT_K_NR + 1 + SX_TT_F_NR + 1 <= SX_STATS_MAX, "stats file holds every counter");

static void where_str(char *buf, size_t len, const struct sx_tt_where *w)
{
    int n = 0;
    buf[0] = '\0';
    if (!w)
        return;
    if (w->queue >= 0)
        n = snprintf(buf, len, "queue %d%s%s", w->queue, w->ring ? " " : "", w->ring ? w->ring : "");
    if (w->has_req && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "%srequest id %" PRIu64 "%s%s%s",
                      n ? ", " : "", w->id, w->op ? " (" : "", w->op ? w->op : "",
                      w->op ? ")" : "");
    if (w->has_pos && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "%sat ring position %u",
                      n ? " " : "", (unsigned)w->pos);
}

void sx_tt_found(struct sx_tt_dev *d, enum sx_tt_kind k, const struct sx_tt_where *w,
                 const char *rule, const char *fmt, ...)
{
    if (!d || !d->t->o.check || (unsigned)k >= SX_TT_K_NR)
        return;   /* --torture alone injects faults and reports none */
    char wh[160], msg[TT_DETAIL];
    where_str(wh, sizeof(wh), w);
    int n = snprintf(msg, sizeof(msg), "%s%s", wh, wh[0] ? ": " : "");
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(msg))
        vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&d->lock);
    struct tt_finding *f = &d->f[k];
    bool first = f->count++ == 0;
    if (first) {
        snprintf(f->first, sizeof(f->first), "%s", msg);
        snprintf(f->first_fault, sizeof(f->first_fault), "%s", d->last_fault);
        f->rule = rule ? rule : kind_rules[k];
    }
    snprintf(f->last, sizeof(f->last), "%s", msg);
    d->dirty = true;
    pthread_mutex_unlock(&d->lock);
    sx_stats_add(&d->st, k, 1);
    sx_stats_add(&d->st, ST_FINDINGS, 1);
    if (first)
        sx_warn("check: %s: %s: %s", d->file, kind_names[k], msg);
    else
        sx_log_ratelimited(SX_LOG_INFO, "check: %s: %s: %s", d->file, kind_names[k], msg);
}

/* ------------------------------------------------------------------ the torture log */

bool tt_fault_on(const struct sx_tt_dev *d, enum sx_tt_fault f)
{
    return d->t->o.torture && (d->t->o.faults & (1u << f));
}

void tt_log_fault(struct sx_tt_dev *d, enum sx_tt_fault f, const struct tt_rng *r,
                  const char *fmt, ...)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%s#%" PRIu64 " %s ", r->name, r->n, fault_names[f]);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(line) - 1)
        n += vsnprintf(line + n, sizeof(line) - 1 - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    pthread_mutex_lock(&d->lock);
    d->faults[f]++;
    snprintf(d->last_fault, sizeof(d->last_fault), "%s#%" PRIu64, r->name, r->n);
    d->dirty = true;
    pthread_mutex_unlock(&d->lock);
    /* O_APPEND: one write a line keeps the ring threads' lines whole */
    if (d->log_fd >= 0 && write(d->log_fd, line, (size_t)n) < 0)
        sx_log_ratelimited(SX_LOG_WARN, "%s: torture log: %s", d->file, strerror(errno));
    sx_stats_add(&d->st, ST_FAULT0 + f, 1);
    sx_stats_add(&d->st, ST_FAULTS, 1);
}

/* ------------------------------------------------------------------ reports */

int tt_check_dir(char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/check", sx_run_dir());
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    for (char *sl = strchr(buf + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
        *sl = '\0';
        mkdir(buf, 0755);
        *sl = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static const char *proto_name(const struct sx_tt_dev *d)
{
    return d->proto == SX_TT_BLKIF ? "blkif" : "netif";
}

/* The faults the device's protocol can meet, of those asked for. */
static unsigned faults_of(const struct sx_tt_dev *d)
{
    static const unsigned blkif_only = (1u << SX_TT_F_DELAY) | (1u << SX_TT_F_REORDER) |
                                       (1u << SX_TT_F_EOPNOTSUPP);
    static const unsigned netif_only = 1u << SX_TT_F_PARTIAL;
    unsigned f = d->t->o.torture ? d->t->o.faults : 0;
    return f & ~(d->proto == SX_TT_BLKIF ? netif_only : blkif_only);
}

void tt_faults_list(unsigned mask, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned f = 0; f < SX_TT_F_NR && n < len; f++)
        if (mask & (1u << f))
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", fault_names[f]);
}

/* A copy of what the report shows, taken under the lock. */
struct tt_snapshot {
    struct tt_finding f[SX_TT_K_NR];
    uint64_t faults[SX_TT_F_NR];
};

static void write_text(const struct sx_tt_dev *d, const struct tt_snapshot *s, FILE *f)
{
    const struct sx_tt_opts *o = &d->t->o;
    char fl[160];
    tt_faults_list(faults_of(d), fl, sizeof(fl));
    uint64_t nf = 0, nt = 0;
    for (unsigned k = 0; k < SX_TT_K_NR; k++)
        nf += s->f[k].count;
    for (unsigned k = 0; k < SX_TT_F_NR; k++)
        nt += s->faults[k];
    fprintf(f, "splitxen frontend check: %s %u of domain %u (%s)\n",
            d->proto == SX_TT_BLKIF ? "vbd" : "vif", d->devid, d->fe, proto_name(d));
    fprintf(f, "  frontend %s\n  backend  %s\n", d->fe_path, d->be_path);
    fprintf(f, "  check %s; torture %s", o->check ? "on" : "off", o->torture ? "on" : "off");
    if (o->torture)
        fprintf(f, ", seed %" PRIu64 " (faults %s): %" PRIu64 " injected, log %s.torture.log",
                o->seed, fl, nt, d->file);
    fprintf(f, "\n  connections %u, requests %" PRIu64 ", findings %" PRIu64 "\n", d->connections,
            (uint64_t)atomic_load(&d->reqs), nf);
    if (o->torture) {
        fprintf(f, "  faults:");
        for (unsigned k = 0; k < SX_TT_F_NR; k++)
            if (s->faults[k])
                fprintf(f, " %s=%" PRIu64, fault_names[k], s->faults[k]);
        fprintf(f, "\n");
    }
    for (unsigned k = 0; k < SX_TT_K_NR; k++) {
        const struct tt_finding *x = &s->f[k];
        if (!x->count)
            continue;
        fprintf(f, "\n%s: %" PRIu64 " time%s\n", kind_names[k], x->count, x->count == 1 ? "" : "s");
        fprintf(f, "  first: %s\n", x->first);
        if (x->count > 1)
            fprintf(f, "  last:  %s\n", x->last);
        fprintf(f, "  rule:  %s\n", x->rule);
        if (o->torture)
            fprintf(f, "  reproduce: --torture=%" PRIu64 "%s%s%s\n", o->seed,
                    x->first_fault[0] ? " (first seen after fault " : " (before any fault",
                    x->first_fault, ")");
        else
            fprintf(f, "  reproduce: --check (no fault injected)\n");
    }
    if (!nf)
        fprintf(f, "\nno findings\n");
}

static void write_json(const struct sx_tt_dev *d, const struct tt_snapshot *s, FILE *f)
{
    const struct sx_tt_opts *o = &d->t->o;
    fprintf(f, "{\"device\":");
    json_str(f, d->file);
    fprintf(f, ",\"kind\":\"%s\",\"domid\":%u,\"devid\":%u,\"protocol\":\"%s\",\"frontend\":",
            d->proto == SX_TT_BLKIF ? "vbd" : "vif", d->fe, d->devid, proto_name(d));
    json_str(f, d->fe_path);
    fprintf(f, ",\"backend\":");
    json_str(f, d->be_path);
    fprintf(f, ",\"check\":%s,\"torture\":%s", o->check ? "true" : "false",
            o->torture ? "true" : "false");
    if (o->torture)
        fprintf(f, ",\"seed\":%" PRIu64, o->seed);
    fprintf(f, ",\"connections\":%u,\"requests\":%" PRIu64 ",\"faults\":{", d->connections,
            (uint64_t)atomic_load(&d->reqs));
    bool first = true;
    for (unsigned k = 0; k < SX_TT_F_NR; k++) {
        if (!(faults_of(d) & (1u << k)))
            continue;
        fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", fault_names[k], s->faults[k]);
        first = false;
    }
    fprintf(f, "},\"findings\":[");
    first = true;
    for (unsigned k = 0; k < SX_TT_K_NR; k++) {
        const struct tt_finding *x = &s->f[k];
        if (!x->count)
            continue;
        fprintf(f, "%s{\"kind\":\"%s\",\"count\":%" PRIu64 ",\"first\":", first ? "" : ",",
                kind_names[k], x->count);
        json_str(f, x->first);
        fprintf(f, ",\"last\":");
        json_str(f, x->last);
        fprintf(f, ",\"rule\":");
        json_str(f, x->rule);
        if (o->torture) {
            fprintf(f, ",\"seed\":%" PRIu64 ",\"after_fault\":", o->seed);
            json_str(f, x->first_fault);
        } else {
            fprintf(f, ",\"seed\":null");
        }
        fprintf(f, "}");
        first = false;
    }
    fprintf(f, "]}\n");
}

static int write_file(const struct sx_tt_dev *d, const struct tt_snapshot *s, const char *ext,
                      bool json)
{
    char dir[200], path[300], tmp[320];
    int rc = tt_check_dir(dir, sizeof(dir));
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s.%s", dir, d->file, ext);
    snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    if (json)
        write_json(d, s, f);
    else
        write_text(d, s, f);
    if (fclose(f) != 0) {
        rc = -errno;
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path) < 0) {
        rc = -errno;
        unlink(tmp);
        return rc;
    }
    return 0;
}

void tt_write_reports(struct sx_tt_dev *d)
{
    struct tt_snapshot *s = malloc(sizeof(*s));
    if (!s)
        return;
    pthread_mutex_lock(&d->lock);
    memcpy(s->f, d->f, sizeof(s->f));
    memcpy(s->faults, d->faults, sizeof(s->faults));
    d->dirty = false;
    pthread_mutex_unlock(&d->lock);
    int rc = write_file(d, s, "txt", false);
    if (rc == 0)
        rc = write_file(d, s, "json", true);
    if (rc < 0)
        sx_log_ratelimited(SX_LOG_WARN, "%s: writing the check report: %s", d->file,
                           strerror(-rc));
    d->written_ms = tt_now_ms();
    free(s);
}

/* ------------------------------------------------------------------ the control stream */

void tt_ctl_draw(struct sx_tt_dev *d, uint64_t from)
{
    bool rec = tt_fault_on(d, SX_TT_F_RECONNECT), flap = tt_fault_on(d, SX_TT_F_FLAP);
    if (!rec && !flap) {
        d->next_ev = TT_EV_NONE;
        atomic_store(&d->next_ev_at, UINT64_MAX);
        return;
    }
    uint64_t a = tt_rng_next(&d->ctl), b = tt_rng_next(&d->ctl);
    d->ctl.n++;
    if (rec && flap)
        d->next_ev = (b % 100) < 35 ? TT_EV_RECONNECT : TT_EV_FLAP;
    else
        d->next_ev = rec ? TT_EV_RECONNECT : TT_EV_FLAP;
    atomic_store(&d->next_ev_at, from + 300 + a % 2700);
}

void tt_count(struct sx_tt_dev *d)
{
    uint64_t n = atomic_fetch_add_explicit(&d->reqs, 1, memory_order_relaxed) + 1;
    if (n < atomic_load_explicit(&d->next_ev_at, memory_order_relaxed))
        return;
    pthread_mutex_lock(&d->ctl_lock);
    uint64_t at = atomic_load(&d->next_ev_at);
    if (n >= at) {
        bool rec = d->next_ev == TT_EV_RECONNECT;
        tt_log_fault(d, rec ? SX_TT_F_RECONNECT : SX_TT_F_FLAP, &d->ctl, "after request %" PRIu64,
                     at);
        atomic_fetch_add(rec ? &d->due_reconnect : &d->due_flap, 1);
        tt_ctl_draw(d, at);
    }
    pthread_mutex_unlock(&d->ctl_lock);
}

/* ------------------------------------------------------------------ features offered */

uint64_t sx_tt_offered(const struct sx_tt_dev *d, const char *key, uint64_t dflt)
{
    if (!d)
        return dflt;
    for (unsigned i = 0; i < d->noffers; i++)
        if (!strcmp(d->offers[i].key, key))
            return d->offers[i].val;
    return dflt;
}

