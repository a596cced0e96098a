/*
 * xl.cfg parsing: libxlutil for the file syntax, disk specs and vif rates; the rest here.
 * See xlcfg.h for the contract and the error format.
 */
#include "toolstack/xlcfg.h"
#include "blkio/blkio.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxl.h>
#include <libxlutil.h>

#define CFG_MAX_FILE (1u << 20)     /* an xl.cfg is a few hundred bytes; refuse megabytes */
#define CFG_MAX_MEMORY_MIB (1u << 20)
#define CFG_MAX_VCPUS 128
#define CFG_MAX_QUEUES 64

/* ------------------------------------------------------------------------------------------ */
/* Error messages: "<where>:<line>: <key>: <message>" (": <line>" left out when line is 0). */

static int cfg_fail(char *err, size_t errlen, const char *where, int line, const char *key,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int cfg_fail(char *err, size_t errlen, const char *where, int line, const char *key,
                    const char *fmt, ...)
{
    if (!err || !errlen)
        return -EINVAL;
    int n;
    if (line > 0)
        n = snprintf(err, errlen, "%s:%d: %s: ", where, line, key);
    else
        n = snprintf(err, errlen, "%s: %s: ", where, key);
    if (n < 0 || (size_t)n >= errlen)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* libxlutil reports to a FILE*; capture it in memory so the text can be re-framed. */
struct report {
    FILE *f;
    char *buf;
    size_t len;
};

static int report_open(struct report *r)
{
    r->buf = NULL;
    r->len = 0;
    r->f = open_memstream(&r->buf, &r->len);
    return r->f ? 0 : -errno;
}

/* Flush and return the first line of what libxlutil printed, with `strip` prefixes removed
 * from its front (each only if present, in order). Owned by r. */
static const char *report_text(struct report *r, const char *const *strip, size_t nstrip)
{
    if (!r->f)
        return "";
    fflush(r->f);
    if (!r->buf)
        return "";
    char *nl = strchr(r->buf, '\n');
    if (nl)
        *nl = '\0';
    const char *s = r->buf;
    for (size_t i = 0; i < nstrip; i++) {
        size_t l = strlen(strip[i]);
        if (strncmp(s, strip[i], l) == 0)
            s += l;
    }
    return s;
}

static void report_close(struct report *r)
{
    if (r->f)
        fclose(r->f);
    free(r->buf);
    r->f = NULL;
    r->buf = NULL;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* vdev -> virtual-device number, as libxl__device_disk_dev_number (libxl_device.c). */

/* "xvd" + letters (bijective base 26: a..z, aa..) + optional partition without leading zero. */
static bool vdev_matches(const char *vdev, const char *prefix, int max_index, int max_part,
                         int *index, int *part)
{
    size_t pl = strlen(prefix);
    if (strncmp(vdev, prefix, pl) != 0)
        return false;
    const char *p = vdev + pl;
    long idx = -1;
    while (*p >= 'a' && *p <= 'z') {
        idx = (idx + 1) * 26 + (*p - 'a');
        if (idx > max_index)
            return false;
        p++;
    }
    if (idx < 0)
        return false;
    *index = (int)idx;
    if (!*p) {
        *part = 0;
        return true;
    }
    if (!isdigit((unsigned char)*p) || *p == '0')
        return false;   /* no sign, no leading zero */
    char *ep;
    errno = 0;
    unsigned long pn = strtoul(p, &ep, 10);
    if (errno || *ep || pn > (unsigned long)max_part)
        return false;
    *part = (int)pn;
    return true;
}

long sx_cfg_vdev_to_devid(const char *vdev)
{
    int disk, part;

    if (!vdev || !*vdev)
        return -EINVAL;

    /* dNpM */
    int used = -1;
    if (vdev[0] == 'd' && sscanf(vdev, "d%ip%i%n", &disk, &part, &used) >= 2 &&
        used == (int)strlen(vdev) && disk >= 0 && part >= 0 && disk < (1 << 20) && part < 256)
        goto xvd;
    if (vdev_matches(vdev, "xvd", (1 << 20) - 1, 255, &disk, &part))
        goto xvd;

    /* a plain number is taken as the device number itself */
    if (isdigit((unsigned char)vdev[0])) {
        char *ep;
        errno = 0;
        unsigned long ul = strtoul(vdev, &ep, 0);
        if (!errno && !*ep && ul <= INT_MAX)
            return (long)ul;
        return -EINVAL;
    }

    if (vdev_matches(vdev, "hd", 3, 63, &disk, &part))
        return ((long)(disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | part;
    if (vdev_matches(vdev, "sd", 15, 15, &disk, &part))
        return (8L << 8) | (disk << 4) | part;
    return -EINVAL;

xvd:
    if (disk <= 15 && part <= 15)
        return (202L << 8) | (disk << 4) | part;
    return (1L << 28) | ((long)disk << 8) | part;
}

int sx_cfg_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    int used = -1;
    if (!s || strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
            return -EINVAL;
    }
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &used) != 6 || used != 17)
        return -EINVAL;
    bool zero = true;
    for (int i = 0; i < 6; i++) {
        mac[i] = (uint8_t)v[i];
        zero = zero && !v[i];
    }
    if (zero || (mac[0] & 1))
        return -EINVAL;   /* all-zero or multicast: not a NIC address */
    return 0;
}

static const char *const action_names[] = {
    [SX_CFG_ACT_DESTROY] = "destroy",
    [SX_CFG_ACT_RESTART] = "restart",
    [SX_CFG_ACT_RENAME_RESTART] = "rename-restart",
    [SX_CFG_ACT_PRESERVE] = "preserve",
    [SX_CFG_ACT_COREDUMP_DESTROY] = "coredump-destroy",
    [SX_CFG_ACT_COREDUMP_RESTART] = "coredump-restart",
    [SX_CFG_ACT_SOFT_RESET] = "soft-reset",
};

const char *sx_cfg_action_name(enum sx_cfg_action a)
{
    if ((unsigned)a < sizeof(action_names) / sizeof(action_names[0]))
        return action_names[a];
    return "?";
}

const char *sx_cfg_domtype_name(enum sx_cfg_domtype t)
{
    return t == SX_CFG_HVM ? "hvm" : "pv";
}

static bool is_domain_ref(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Disk specs (xl-disk-configuration(5)). */

/* Keys libxlutil's disk lexer knows in key=value form; anything else in that form is ours
 * to reject with a clear message before libxlutil says "unknown parameter". */
static const char *const disk_keys[] = {
    "target", "format", "vdev", "access", "devtype", "backendtype", "backend", "script",
    "specification", "transport", "colo-host", "colo-port", "colo-export", "active-disk",
    "hidden-disk",
};

static int disk_check_keys(const char *spec, const char *where, int line, char *err,
                           size_t errlen)
{
    /* libxlutil's disk lexer has no rule for a newline (or other control bytes): it calls
     * exit() ("flex scanner jammed"), taking the whole toolstack with it (found by
     * tests/fuzz/fuzz_xlcfg). Refuse them here, naming where. */
    for (size_t i = 0; spec[i]; i++)
        if ((unsigned char)spec[i] < 0x20 || spec[i] == 0x7f)
            return cfg_fail(err, errlen, where, line, "disk",
                            "control character 0x%02x at offset %zu of the disk spec",
                            (unsigned char)spec[i], i);
    char *copy = strdup(spec);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (strncmp(t, "target=", 7) == 0)
            break;     /* target= takes the rest of the spec, commas included */
        size_t kl = strspn(t, "abcdefghijklmnopqrstuvwxyz-");
        if (kl == 0 || t[kl] != '=')
            continue;  /* positional parameter or flag: libxlutil decides */
        bool known = false;
        for (size_t i = 0; i < sizeof(disk_keys) / sizeof(disk_keys[0]); i++)
            if (strlen(disk_keys[i]) == kl && strncmp(disk_keys[i], t, kl) == 0)
                known = true;
        if (!known) {
            t[kl] = '\0';
            rc = cfg_fail(err, errlen, where, line, "disk",
                          "unknown key '%s' in disk spec '%s'", t, spec);
            break;
        }
    }
    free(copy);
    return rc;
}

void sx_cfg_disk_clear(struct sx_cfg_disk *d)
{
    if (!d)
        return;
    free(d->spec);
    free(d->vdev);
    free(d->target);
    free(d->script);
    free(d->backend);
    memset(d, 0, sizeof(*d));
}

int sx_cfg_parse_disk(const char *spec, const char *where, int line, struct sx_cfg_disk *out,
                      char *err, size_t errlen)
{
    struct report rep = { 0 };
    XLU_Config *xc = NULL;
    libxl_device_disk d;
    int rc;

    memset(out, 0, sizeof(*out));
    libxl_device_disk_init(&d);

    rc = disk_check_keys(spec, where, line, err, errlen);
    if (rc)
        goto out;

    rc = report_open(&rep);
    if (rc)
        goto out;
    xc = xlu_cfg_init(rep.f, where);
    if (!xc) {
        rc = -ENOMEM;
        goto out;
    }
    const char *specs[1] = { spec };
    int xr = xlu_disk_parse(xc, 1, specs, &d);
    if (xr) {
        char prefix[512];
        snprintf(prefix, sizeof(prefix), "%s: ", where);
        const char *strip[] = { prefix, "config parsing error in disk specification: " };
        const char *msg = report_text(&rep, strip, 2);
        rc = cfg_fail(err, errlen, where, line, "disk", "%s", msg[0] ? msg : strerror(xr));
        goto out;
    }

    if (!d.vdev || !*d.vdev) {
        rc = cfg_fail(err, errlen, where, line, "disk", "vdev: missing in disk spec '%s'",
                      spec);
        goto out;
    }
    long devid = sx_cfg_vdev_to_devid(d.vdev);
    if (devid < 0) {
        rc = cfg_fail(err, errlen, where, line, "disk",
                      "vdev: invalid virtual device '%s' in disk spec '%s'", d.vdev, spec);
        goto out;
    }
    if (d.format != LIBXL_DISK_FORMAT_UNKNOWN && d.format != LIBXL_DISK_FORMAT_RAW) {
        rc = cfg_fail(err, errlen, where, line, "disk",
                      "format: '%s' is not supported (splitxen serves raw images) in disk "
                      "spec '%s'", libxl_disk_format_to_string(d.format), spec);
        goto out;
    }
    if (d.backend == LIBXL_DISK_BACKEND_TAP || d.backend == LIBXL_DISK_BACKEND_STANDALONE) {
        rc = cfg_fail(err, errlen, where, line, "disk",
                      "backendtype: '%s' is not supported (phy or qdisk) in disk spec '%s'",
                      libxl_disk_backend_to_string(d.backend), spec);
        goto out;
    }
    if (d.specification == LIBXL_DISK_SPECIFICATION_VIRTIO) {
        rc = cfg_fail(err, errlen, where, line, "disk",
                      "specification: 'virtio' is not supported in disk spec '%s'", spec);
        goto out;
    }
    if (!d.pdev_path || !*d.pdev_path) {
        rc = cfg_fail(err, errlen, where, line, "disk", "target: missing in disk spec '%s'",
                      spec);
        goto out;
    }
    bool net = sx_bio_target_is_net(d.pdev_path);
    char terr[320];
    if (net && sx_bio_target_check(d.pdev_path, terr, sizeof(terr)) < 0) {
        rc = cfg_fail(err, errlen, where, line, "disk", "target: %s", terr);
        goto out;
    }
    /* A network target is reached by the backend; there is nothing to stat here. */
    struct stat st;
    if (net) {
        /* checked above */
    } else if (stat(d.pdev_path, &st) < 0) {
        rc = cfg_fail(err, errlen, where, line, "disk", "target: '%s': %s", d.pdev_path,
                      strerror(errno));
        goto out;
    }
    if (!net && S_ISDIR(st.st_mode)) {
        rc = cfg_fail(err, errlen, where, line, "disk", "target: '%s' is a directory",
                      d.pdev_path);
        goto out;
    }
    if (!net && d.readwrite && access(d.pdev_path, W_OK) < 0) {
        rc = cfg_fail(err, errlen, where, line, "disk",
                      "target: '%s' is not writable and access is rw: %s", d.pdev_path,
                      strerror(errno));
        goto out;
    }
    if (d.backend_domname && !is_domain_ref(d.backend_domname)) {
        rc = cfg_fail(err, errlen, where, line, "disk",
                      "backend: '%s' is not a domain name or id", d.backend_domname);
        goto out;
    }

    out->spec = strdup(spec);
    out->line = line;
    out->vdev = strdup(d.vdev);
    out->devid = (uint32_t)devid;
    out->target = strdup(d.pdev_path);
    out->net = net;
    out->readwrite = d.readwrite != 0;
    out->cdrom = d.is_cdrom != 0;
    out->discard = libxl_defbool_is_default(d.discard_enable) ? out->readwrite
                                                               : libxl_defbool_val(d.discard_enable);
    out->trusted = libxl_defbool_is_default(d.trusted) ? true : libxl_defbool_val(d.trusted);
    out->backendtype = d.backend == LIBXL_DISK_BACKEND_QDISK ? SX_CFG_DISK_QDISK
                                                             : SX_CFG_DISK_PHY;
    out->script = xstrdup(d.script);
    out->backend = xstrdup(d.backend_domname);
    if (!out->spec || !out->vdev || !out->target || (d.script && !out->script) ||
        (d.backend_domname && !out->backend)) {
        sx_cfg_disk_clear(out);
        rc = -ENOMEM;
        goto out;
    }
    rc = 0;
out:
    if (xc)
        xlu_cfg_destroy(xc);
    report_close(&rep);
    libxl_device_disk_dispose(&d);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* vif specs (xl-network-configuration(5)), plus splitxen's queues=N. */

void sx_cfg_vif_clear(struct sx_cfg_vif *v)
{
    if (!v)
        return;
    free(v->spec);
    free(v->bridge);
    free(v->ip);
    free(v->model);
    free(v->script);
    free(v->vifname);
    free(v->gatewaydev);
    free(v->backend);
    memset(v, 0, sizeof(*v));
}

static int set_str(char **dst, const char *val)
{
    char *n = strdup(val);
    if (!n)
        return -ENOMEM;
    free(*dst);
    *dst = n;
    return 0;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *ep;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(s, &ep, 10);
    if (errno || *ep || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int vif_rate(const char *rate, const char *where, int line, const char *spec,
                    struct sx_cfg_vif *v, char *err, size_t errlen)
{
    struct report rep = { 0 };
    XLU_Config *xc = NULL;
    libxl_device_nic nic;
    int rc;

    libxl_device_nic_init(&nic);
    rc = report_open(&rep);
    if (rc)
        goto out;
    xc = xlu_cfg_init(rep.f, where);
    if (!xc) {
        rc = -ENOMEM;
        goto out;
    }
    int xr = xlu_vif_parse_rate(xc, rate, &nic);
    if (xr) {
        char prefix[512];
        snprintf(prefix, sizeof(prefix), "%s: ", where);
        const char *strip[] = { prefix, "config parsing error in vif: " };
        const char *msg = report_text(&rep, strip, 2);
        rc = cfg_fail(err, errlen, where, line, "vif", "rate: %s in vif spec '%s'",
                      msg[0] ? msg : strerror(xr), spec);
        goto out;
    }
    v->rate_bytes_per_interval = nic.rate_bytes_per_interval;
    v->rate_interval_usecs = nic.rate_interval_usecs;
    rc = 0;
out:
    if (xc)
        xlu_cfg_destroy(xc);
    report_close(&rep);
    libxl_device_nic_dispose(&nic);
    return rc;
}

int sx_cfg_parse_vif(const char *spec, const char *where, int line, int devid,
                     struct sx_cfg_vif *v, char *err, size_t errlen)
{
    char *copy = NULL;
    bool have_mac = false;
    int rc;

    memset(v, 0, sizeof(*v));
    v->devid = devid;
    v->mtu = 1500;
    v->trusted = true;
    v->type = SX_CFG_NIC_VIF;

    copy = strdup(spec);
    v->spec = strdup(spec);
    if (!copy || !v->spec) {
        rc = -ENOMEM;
        goto fail;
    }

    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (!*t)
            continue;      /* xl tolerates empty items ("mac=..., ") */
        if (!strcmp(t, "trusted") || !strcmp(t, "untrusted")) {
            v->trusted = t[0] == 't';
            continue;
        }
        char *eq = strchr(t, '=');
        if (!eq) {
            rc = cfg_fail(err, errlen, where, line, "vif",
                          "malformed item '%s' (expected key=value) in vif spec '%s'", t, spec);
            goto fail;
        }
        *eq = '\0';
        char *key = trim(t), *val = trim(eq + 1);
        unsigned long n;
        rc = 0;
        if (!strcmp(key, "mac")) {
            if (sx_cfg_parse_mac(val, v->mac) < 0) {
                rc = cfg_fail(err, errlen, where, line, "vif",
                              "mac: invalid MAC address '%s' in vif spec '%s'", val, spec);
                goto fail;
            }
            have_mac = true;
        } else if (!strcmp(key, "bridge")) {
            rc = set_str(&v->bridge, val);
        } else if (!strcmp(key, "ip")) {
            rc = set_str(&v->ip, val);
        } else if (!strcmp(key, "model")) {
            rc = set_str(&v->model, val);
        } else if (!strcmp(key, "script")) {
            rc = set_str(&v->script, val);
        } else if (!strcmp(key, "vifname")) {
            if (!*val || strlen(val) > 15 || strchr(val, '/') || strchr(val, ' ')) {
                rc = cfg_fail(err, errlen, where, line, "vif",
                              "vifname: '%s' is not a valid interface name in vif spec '%s'",
                              val, spec);
                goto fail;
            }
            rc = set_str(&v->vifname, val);
        } else if (!strcmp(key, "gatewaydev")) {
            rc = set_str(&v->gatewaydev, val);
        } else if (!strcmp(key, "backend")) {
            if (!is_domain_ref(val)) {
                rc = cfg_fail(err, errlen, where, line, "vif",
                              "backend: '%s' is not a domain name or id in vif spec '%s'", val,
                              spec);
                goto fail;
            }
            rc = set_str(&v->backend, val);
        } else if (!strcmp(key, "type")) {
            if (!strcmp(val, "vif")) {
                v->type = SX_CFG_NIC_VIF;
            } else if (!strcmp(val, "ioemu")) {
                v->type = SX_CFG_NIC_IOEMU;
            } else {
                rc = cfg_fail(err, errlen, where, line, "vif",
                              "type: '%s' is not vif or ioemu in vif spec '%s'", val, spec);
                goto fail;
            }
        } else if (!strcmp(key, "rate")) {
            rc = vif_rate(val, where, line, spec, v, err, errlen);
            if (rc)
                goto fail;
        } else if (!strcmp(key, "mtu")) {
            if (parse_uint(val, 68, 65535, &n) < 0) {
                rc = cfg_fail(err, errlen, where, line, "vif",
                              "mtu: '%s' is not in 68..65535 in vif spec '%s'", val, spec);
                goto fail;
            }
            v->mtu = (unsigned)n;
        } else if (!strcmp(key, "devid")) {
            if (parse_uint(val, 0, 65535, &n) < 0) {
                rc = cfg_fail(err, errlen, where, line, "vif",
                              "devid: '%s' is not a number in 0..65535 in vif spec '%s'", val,
                              spec);
                goto fail;
            }
            v->devid = (int)n;
        } else if (!strcmp(key, "queues")) {
            if (parse_uint(val, 1, CFG_MAX_QUEUES, &n) < 0) {
                rc = cfg_fail(err, errlen, where, line, "vif",
                              "queues: '%s' is not in 1..%d in vif spec '%s'", val,
                              CFG_MAX_QUEUES, spec);
                goto fail;
            }
            v->queues = (unsigned)n;
        } else if (!strcmp(key, "accel")) {
            /* xl ignores it too (deprecated). */
        } else {
            rc = cfg_fail(err, errlen, where, line, "vif", "unknown key '%s' in vif spec '%s'",
                          key, spec);
            goto fail;
        }
        if (rc)
            goto fail;
    }

    if (!have_mac) {
        /* As libxl__device_nic_setdefault: Xen's OUI, the rest random, locally unique. */
        uint8_t r[3];
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
            rc = -errno;
            goto fail;
        }
        v->mac[0] = 0x00;
        v->mac[1] = 0x16;
        v->mac[2] = 0x3e;
        v->mac[3] = r[0] & 0x7f;
        v->mac[4] = r[1];
        v->mac[5] = r[2];
    }
    if ((!v->bridge && (rc = set_str(&v->bridge, "xenbr0"))) ||
        (!v->model && (rc = set_str(&v->model, "rtl8139"))) ||
        (!v->script && (rc = set_str(&v->script, "vif-bridge"))))
        goto fail;
    v->line = line;
    free(copy);
    return 0;

fail:
    free(copy);
    sx_cfg_vif_clear(v);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Where each top-level setting (and each item of a list setting) is in the file. libxlutil
 * keeps line numbers internally but does not expose them, so the file is scanned again with
 * the same lexical rules (comments, '...' and "..." strings, [ ] lists, = and +=). Only run
 * after libxlutil accepted the file, so the input is well-formed. */

struct keyloc {
    char *key;
    int line;
    int *items;      /* line of each string item of a list value */
    size_t nitems;
};

struct keylocs {
    struct keyloc *v;
    size_t n;
};

static void keylocs_free(struct keylocs *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].key);
        free(k->v[i].items);
    }
    free(k->v);
    k->v = NULL;
    k->n = 0;
}

static int keylocs_scan(const char *text, size_t len, struct keylocs *out)
{
    int line = 1, depth = 0;
    const char *ident = NULL;
    size_t ident_len = 0;
    int ident_line = 0;
    struct keyloc *cur = NULL;

    out->v = NULL;
    out->n = 0;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '\n') {
            line++;
            i++;
            ident = NULL;
            continue;
        }
        if (c == '#') {
            while (i < len && text[i] != '\n')
                i++;
            continue;
        }
        if (isspace((unsigned char)c)) {
            i++;
            continue;
        }
        if (c == '"' || c == '\'') {
            int sline = line;
            i++;
            while (i < len && text[i] != c) {
                if (c == '"' && text[i] == '\\' && i + 1 < len)
                    i++;
                if (text[i] == '\n')
                    line++;
                i++;
            }
            i++;
            if (cur && depth > 0) {
                int *n = realloc(cur->items, (cur->nitems + 1) * sizeof(int));
                if (!n)
                    goto nomem;
                cur->items = n;
                cur->items[cur->nitems++] = sline;
            }
            ident = NULL;
            continue;
        }
        if (isalpha((unsigned char)c) || c == '_') {
            size_t s = i;
            while (i < len && (isalnum((unsigned char)text[i]) || text[i] == '_' ||
                               text[i] == '.'))
                i++;
            ident = depth == 0 ? text + s : NULL;
            ident_len = i - s;
            ident_line = line;
            continue;
        }
        if (c == '=' || (c == '+' && i + 1 < len && text[i + 1] == '=')) {
            i += c == '+' ? 2 : 1;
            if (ident && depth == 0) {
                struct keyloc *n = realloc(out->v, (out->n + 1) * sizeof(*n));
                if (!n)
                    goto nomem;
                out->v = n;
                cur = &out->v[out->n++];
                memset(cur, 0, sizeof(*cur));
                cur->key = strndup(ident, ident_len);
                cur->line = ident_line;
                if (!cur->key)
                    goto nomem;
            }
            ident = NULL;
            continue;
        }
        if (c == '[')
            depth++;
        else if (c == ']' && depth > 0)
            depth--;
        ident = NULL;
        i++;
    }
    return 0;
nomem:
    keylocs_free(out);
    return -ENOMEM;
}

/* The last assignment wins in libxlutil, so report the last one's line. */
static const struct keyloc *keyloc_find(const struct keylocs *k, const char *key)
{
    for (size_t i = k->n; i-- > 0;)
        if (!strcmp(k->v[i].key, key))
            return &k->v[i];
    return NULL;
}

static int key_line(const struct keylocs *k, const char *key)
{
    const struct keyloc *l = keyloc_find(k, key);
    return l ? l->line : 0;
}

static int item_line(const struct keylocs *k, const char *key, int idx, int nitems)
{
    const struct keyloc *l = keyloc_find(k, key);
    if (!l)
        return 0;
    if (l->nitems == (size_t)nitems && idx < nitems)
        return l->items[idx];
    return l->line;
}

/* ------------------------------------------------------------------------------------------ */
/* Top-level keys. handled_keys have a field in struct sx_domcfg. ignored_keys are accepted
 * and ignored: they mean something to xl (CPU placement, consoles, emulated display and
 * firmware options, grant table sizes) but nothing to a splitxen sim guest, and are listed
 * so that a real xl.cfg still parses. Any other key is an error naming its line. */

static const char *const handled_keys[] = {
    "name", "type", "builder", "memory", "maxmem", "vcpus", "maxvcpus", "uuid", "kernel",
    "ramdisk", "extra", "cmdline", "root", "disk", "vif", "on_poweroff", "on_reboot",
    "on_crash", "on_watchdog", "on_soft_reset",
};

static const char *const ignored_keys[] = {
    "bootloader", "bootloader_args", "cpus", "cpus_soft", "cpu_weight", "cap", "localtime",
    "rtc_timeoffset", "serial", "vnc", "vnclisten", "vncdisplay", "vncunused", "vncpasswd",
    "sdl", "vga", "videoram", "stdvga", "boot", "acpi", "apic", "pae", "hap", "nestedhvm",
    "viridian", "device_model_version", "device_model_override", "xen_platform_pci", "usb",
    "usbdevice", "soundhw", "keymap", "vfb", "vkb", "seclabel", "max_grant_frames",
    "max_maptrack_frames", "claim_mode", "tsc_mode", "driver_domain", "e820_host",
    "nomigrate",
};

static bool in_list(const char *k, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i]))
            return true;
    return false;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct parse_ctx {
    const char *file;
    XLU_Config *xc;
    struct keylocs keys;
    char *err;
    size_t errlen;
};

/* Optional string setting: 0 (absent leaves *dst alone), or -EINVAL / -ENOMEM. */
static int get_str(struct parse_ctx *p, const char *key, char **dst)
{
    const char *v;
    if (!keyloc_find(&p->keys, key))
        return 0;
    int xr = xlu_cfg_get_string(p->xc, key, &v, 1);
    if (xr == ESRCH)
        return 0;
    if (xr)
        return cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, key), key,
                        "expected a string");
    return set_str(dst, v);
}

static int get_num(struct parse_ctx *p, const char *key, long min, long max, long *out,
                   bool *found)
{
    *found = false;
    if (!keyloc_find(&p->keys, key))
        return 0;
    long v;
    int xr = xlu_cfg_get_long(p->xc, key, &v, 1);
    if (xr == ESRCH)
        return 0;
    if (xr || v < min || v > max)
        return cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, key), key,
                        "expected a number in %ld..%ld", min, max);
    *out = v;
    *found = true;
    return 0;
}

static int get_action(struct parse_ctx *p, const char *key, enum sx_cfg_action *out)
{
    char *s = NULL;
    int rc = get_str(p, key, &s);
    if (rc || !s)
        return rc;
    for (size_t i = 0; i < ARRAY_LEN(action_names); i++) {
        if (!strcmp(s, action_names[i])) {
            *out = (enum sx_cfg_action)i;
            free(s);
            return 0;
        }
    }
    rc = cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, key), key,
                  "unknown action '%s' (destroy, restart, rename-restart, preserve, "
                  "coredump-destroy, coredump-restart, soft-reset)", s);
    free(s);
    return rc;
}

static bool uuid_valid(const char *u)
{
    if (strlen(u) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : !isxdigit((unsigned char)u[i]))
            return false;
    }
    return true;
}

static bool name_valid(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 64)
        return false;
    bool digits = true;
    for (const char *c = n; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return false;
        digits = digits && isdigit((unsigned char)*c);
    }
    return !digits;   /* all digits would be ambiguous with a domid */
}

static int get_list(struct parse_ctx *p, const char *key, XLU_ConfigList **list, int *n)
{
    *list = NULL;
    *n = 0;
    if (!keyloc_find(&p->keys, key))
        return 0;
    int xr = xlu_cfg_get_list(p->xc, key, list, n, 1);
    if (xr == ESRCH)
        return 0;
    if (xr)
        return cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, key), key,
                        "expected a list [ '...', ... ]");
    return 0;
}

static int parse_devices(struct parse_ctx *p, struct sx_domcfg *c)
{
    XLU_ConfigList *list;
    int n, rc;

    rc = get_list(p, "disk", &list, &n);
    if (rc)
        return rc;
    if (n > 0) {
        c->disks = calloc(n, sizeof(*c->disks));
        if (!c->disks)
            return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        const char *spec = xlu_cfg_get_listitem(list, i);
        int line = item_line(&p->keys, "disk", i, n);
        if (!spec)
            return cfg_fail(p->err, p->errlen, p->file, line, "disk",
                            "item %d is not a string", i);
        rc = sx_cfg_parse_disk(spec, p->file, line, &c->disks[i], p->err, p->errlen);
        if (rc)
            return rc;
        c->ndisks++;
        for (int j = 0; j < i; j++)
            if (c->disks[j].devid == c->disks[i].devid)
                return cfg_fail(p->err, p->errlen, p->file, line, "disk",
                                "vdev: '%s' is the same device as '%s' (line %d)",
                                c->disks[i].vdev, c->disks[j].vdev, c->disks[j].line);
    }

    rc = get_list(p, "vif", &list, &n);
    if (rc)
        return rc;
    if (n > 0) {
        c->vifs = calloc(n, sizeof(*c->vifs));
        if (!c->vifs)
            return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        const char *spec = xlu_cfg_get_listitem(list, i);
        int line = item_line(&p->keys, "vif", i, n);
        if (!spec)
            return cfg_fail(p->err, p->errlen, p->file, line, "vif",
                            "item %d is not a string", i);
        rc = sx_cfg_parse_vif(spec, p->file, line, i, &c->vifs[i], p->err, p->errlen);
        if (rc)
            return rc;
        c->nvifs++;
        struct sx_cfg_vif *v = &c->vifs[i];
        /* As libxl: an HVM guest's vif without type= is "ioemu" (an emulated NIC plus the PV
         * vif); a PV guest's is "vif". */
        if (c->type == SX_CFG_HVM && !strstr(v->spec, "type="))
            v->type = SX_CFG_NIC_IOEMU;
        if (v->type == SX_CFG_NIC_IOEMU && c->type != SX_CFG_HVM)
            return cfg_fail(p->err, p->errlen, p->file, line, "vif",
                            "type: 'ioemu' needs an HVM guest (type = \"hvm\")");
        for (int j = 0; j < i; j++) {
            if (c->vifs[j].devid == v->devid)
                return cfg_fail(p->err, p->errlen, p->file, line, "vif",
                                "devid: %d is already used (line %d)", v->devid,
                                c->vifs[j].line);
            if (!memcmp(c->vifs[j].mac, v->mac, 6))
                return cfg_fail(p->err, p->errlen, p->file, line, "vif",
                                "mac: the same address as the vif on line %d",
                                c->vifs[j].line);
        }
    }
    return 0;
}

static int parse_settings(struct parse_ctx *p, struct sx_domcfg *c)
{
    int rc;
    long v;
    bool found;

    /* Every key must be one we handle or one we knowingly ignore. */
    for (size_t i = 0; i < p->keys.n; i++) {
        const char *k = p->keys.v[i].key;
        if (!in_list(k, handled_keys, ARRAY_LEN(handled_keys)) &&
            !in_list(k, ignored_keys, ARRAY_LEN(ignored_keys)))
            return cfg_fail(p->err, p->errlen, p->file, p->keys.v[i].line, k,
                            "unknown setting '%s'", k);
    }

    if ((rc = get_str(p, "name", &c->name)))
        return rc;
    if (!c->name)
        return cfg_fail(p->err, p->errlen, p->file, 0, "name", "missing (name = \"...\")");
    if (!name_valid(c->name))
        return cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, "name"), "name",
                        "'%s' is not a valid domain name (letters, digits, '-', '_', '.', "
                        "at most 64, not all digits)", c->name);

    char *t = NULL;
    const char *tkey = keyloc_find(&p->keys, "type") ? "type" : "builder";
    if ((rc = get_str(p, tkey, &t)))
        return rc;
    c->type = SX_CFG_PV;
    if (t) {
        if (!strcmp(t, "hvm"))
            c->type = SX_CFG_HVM;
        else if (strcmp(t, "pv") && !(tkey[0] == 'b' && !strcmp(t, "generic"))) {
            rc = cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, tkey), tkey,
                          "'%s' is not a supported domain type (pv or hvm)", t);
            free(t);
            return rc;
        }
        free(t);
    }

    c->memory_mib = 32;      /* libxl's LIBXL_MEMKB_DEFAULT */
    if ((rc = get_num(p, "memory", 1, CFG_MAX_MEMORY_MIB, &v, &found)))
        return rc;
    if (found)
        c->memory_mib = (uint64_t)v;
    c->maxmem_mib = c->memory_mib;
    if ((rc = get_num(p, "maxmem", 1, CFG_MAX_MEMORY_MIB, &v, &found)))
        return rc;
    if (found) {
        if ((uint64_t)v < c->memory_mib)
            return cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, "maxmem"),
                            "maxmem", "%ld is less than memory (%llu)", v,
                            (unsigned long long)c->memory_mib);
        c->maxmem_mib = (uint64_t)v;
    }
    c->vcpus = 1;
    if ((rc = get_num(p, "vcpus", 1, CFG_MAX_VCPUS, &v, &found)))
        return rc;
    if (found)
        c->vcpus = (unsigned)v;
    c->maxvcpus = c->vcpus;
    if ((rc = get_num(p, "maxvcpus", 1, CFG_MAX_VCPUS, &v, &found)))
        return rc;
    if (found) {
        if ((unsigned)v < c->vcpus)
            return cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, "maxvcpus"),
                            "maxvcpus", "%ld is less than vcpus (%u)", v, c->vcpus);
        c->maxvcpus = (unsigned)v;
    }

    if ((rc = get_str(p, "uuid", &c->uuid)))
        return rc;
    if (c->uuid && !uuid_valid(c->uuid))
        return cfg_fail(p->err, p->errlen, p->file, key_line(&p->keys, "uuid"), "uuid",
                        "'%s' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", c->uuid);

    if ((rc = get_str(p, "kernel", &c->kernel)) || (rc = get_str(p, "ramdisk", &c->ramdisk)) ||
        (rc = get_str(p, "extra", &c->extra)) || (rc = get_str(p, "cmdline", &c->cmdline)) ||
        (rc = get_str(p, "root", &c->root)))
        return rc;

    c->on_poweroff = SX_CFG_ACT_DESTROY;
    c->on_reboot = SX_CFG_ACT_RESTART;
    c->on_crash = SX_CFG_ACT_DESTROY;
    c->on_watchdog = SX_CFG_ACT_DESTROY;
    c->on_soft_reset = SX_CFG_ACT_SOFT_RESET;
    if ((rc = get_action(p, "on_poweroff", &c->on_poweroff)) ||
        (rc = get_action(p, "on_reboot", &c->on_reboot)) ||
        (rc = get_action(p, "on_crash", &c->on_crash)) ||
        (rc = get_action(p, "on_watchdog", &c->on_watchdog)) ||
        (rc = get_action(p, "on_soft_reset", &c->on_soft_reset)))
        return rc;

    return parse_devices(p, c);
}

static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    char *buf = malloc(CFG_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, CFG_MAX_FILE + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return -EIO;
    }
    if (n > CFG_MAX_FILE) {
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

void sx_cfg_free(struct sx_domcfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ndisks; i++)
        sx_cfg_disk_clear(&c->disks[i]);
    for (size_t i = 0; i < c->nvifs; i++)
        sx_cfg_vif_clear(&c->vifs[i]);
    free(c->disks);
    free(c->vifs);
    free(c->file);
    free(c->name);
    free(c->uuid);
    free(c->kernel);
    free(c->ramdisk);
    free(c->extra);
    free(c->cmdline);
    free(c->root);
    free(c);
}

/* Parse `len` bytes of xl.cfg text; `path` names it in messages. */
static int parse_text(const char *path, const char *text, size_t len, struct sx_domcfg **out,
                      char *err, size_t errlen)
{
    struct parse_ctx p = { .file = path, .err = err, .errlen = errlen };
    struct report rep = { 0 };
    struct sx_domcfg *c = NULL;
    int rc = report_open(&rep);
    if (rc)
        goto out;
    p.xc = xlu_cfg_init(rep.f, path);
    if (!p.xc) {
        rc = -ENOMEM;
        goto out;
    }
    int xr = xlu_cfg_readdata(p.xc, text, (int)len);
    if (xr) {
        /* libxlutil's own message already says "<file>:<line>: config parsing error ..." */
        const char *msg = report_text(&rep, NULL, 0);
        if (err && errlen)
            snprintf(err, errlen, "%s", msg[0] ? msg : strerror(xr));
        rc = -EINVAL;
        goto out;
    }
    rc = keylocs_scan(text, len, &p.keys);
    if (rc)
        goto out;

    c = calloc(1, sizeof(*c));
    if (!c || !(c->file = strdup(path))) {
        rc = -ENOMEM;
        goto out;
    }
    rc = parse_settings(&p, c);
    if (rc)
        goto out;
    *out = c;
    c = NULL;
out:
    if (rc == -ENOMEM && err && errlen && !err[0])
        snprintf(err, errlen, "%s: out of memory", path);
    sx_cfg_free(c);
    keylocs_free(&p.keys);
    if (p.xc)
        xlu_cfg_destroy(p.xc);
    report_close(&rep);
    return rc;
}

int sx_cfg_parse_file(const char *path, struct sx_domcfg **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    int rc = read_file(path, &text, &len);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    rc = parse_text(path, text, len, out, err, errlen);
    free(text);
    return rc;
}

int sx_cfg_parse_data(const char *name, const char *text, size_t len, struct sx_domcfg **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    /* libxlutil wants the text NUL-terminated. */
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rc = parse_text(name, copy, len, out, err, errlen);
    free(copy);
    return rc;
}
