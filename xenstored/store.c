/*
 * xenstored node store: nodes in one hash table keyed by full path, each node one allocation
 * (permissions, value, NUL-separated child names in insertion order, name) replaced wholesale on
 * change. A global generation counter is stamped on every written node.
 *
 * Transactions record every node they touch with the generation seen at first access
 * (SXS_NO_GEN for "did not exist") and keep their modifications as shadow nodes; commit checks
 * that none of the touched nodes changed globally (else EAGAIN), then installs the shadows and
 * fires the queued watches. This is C xenstored's scheme.
 */
#define SX_LOG_MODULE "xenstored"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenstored/store.h"

#define SXS_MAX_DOMID 0x10000u  /* owner counts are kept for domids below this */

struct hlink {
    struct hlink *next;
    uint32_t hash;
    const char *key;
};

struct htab {
    struct hlink **b;
    size_t nb;  /* power of two */
    size_t n;
};

struct node {
    struct hlink hl;
    uint64_t gen;
    unsigned nperms, datalen, childlen;
    struct xs_permissions *perms;
    char *data;
    char *children;
    char *name;
};

struct access {
    struct hlink hl;
    struct access *next;
    uint64_t gen;             /* global generation at first access, SXS_NO_GEN if absent */
    bool modified;
    bool fire, exact;
    struct node *shadow;      /* if modified: the transaction's version, NULL = deleted */
    unsigned noperms;
    struct xs_permissions *operms; /* permissions at first access (watch visibility) */
    char name[];
};

struct owner_delta {
    unsigned domid;
    int delta;
};

struct sxs_tx {
    struct htab acc;
    struct access *head, *tail;
    unsigned naccess;
    struct owner_delta *deltas;
    unsigned ndeltas, capdeltas;
    struct sxs_who who;
    bool fail;
    bool created;
};

struct sxs_store {
    struct htab nodes;
    uint64_t gen;
    uint32_t *owned;          /* nodes owned per domid */
    struct sxs_quota q;       /* the global quotas: dom0's ceilings, new domains' defaults */
    struct sxs_quota **dq;    /* per domid: an introduced domain's own quotas, or NULL */
    sxs_fire_fn *fire;
    void *fire_arg;
};

/* ---- hash table ---------------------------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;  /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 16777619u;
    }
    return h;
}

static int ht_init(struct htab *t, size_t nb)
{
    t->b = calloc(nb, sizeof(*t->b));
    if (!t->b)
        return -ENOMEM;
    t->nb = nb;
    t->n = 0;
    return 0;
}

static struct hlink *ht_find(const struct htab *t, const char *key)
{
    uint32_t h = hash_str(key);
    for (struct hlink *l = t->b[h & (t->nb - 1)]; l; l = l->next)
        if (l->hash == h && !strcmp(l->key, key))
            return l;
    return NULL;
}

static void ht_grow(struct htab *t)
{
    size_t nb = t->nb * 2;
    struct hlink **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the higher load factor */
    for (size_t i = 0; i < t->nb; i++) {
        struct hlink *l = t->b[i];
        while (l) {
            struct hlink *next = l->next;
            l->next = b[l->hash & (nb - 1)];
            b[l->hash & (nb - 1)] = l;
            l = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

static void ht_add(struct htab *t, struct hlink *l)
{
    if (t->n >= t->nb)
        ht_grow(t);
    l->hash = hash_str(l->key);
    l->next = t->b[l->hash & (t->nb - 1)];
    t->b[l->hash & (t->nb - 1)] = l;
    t->n++;
}

static void ht_del(struct htab *t, struct hlink *l)
{
    struct hlink **pp = &t->b[l->hash & (t->nb - 1)];
    for (; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            t->n--;
            return;
        }
    }
}

/* ---- nodes --------------------------------------------------------------------------------- */

static struct node *node_new(const char *name, const struct xs_permissions *p, unsigned np,
                             const void *data, unsigned dlen, const char *ch, unsigned clen)
{
    size_t nlen = strlen(name) + 1;
    struct node *n = malloc(sizeof(*n) + np * sizeof(*p) + dlen + clen + nlen);
    if (!n)
        return NULL;
    n->gen = 0;
    n->nperms = np;
    n->datalen = dlen;
    n->childlen = clen;
    n->perms = (struct xs_permissions *)(n + 1);
    n->data = (char *)(n->perms + np);
    n->children = n->data + dlen;
    n->name = n->children + clen;
    if (np)
        memcpy(n->perms, p, np * sizeof(*p));
    if (dlen)
        memcpy(n->data, data, dlen);
    if (clen)
        memcpy(n->children, ch, clen);
    memcpy(n->name, name, nlen);
    n->hl.key = n->name;
    return n;
}

static unsigned node_size(unsigned np, unsigned dlen, unsigned clen)
{
    return np * (unsigned)sizeof(struct xs_permissions) + dlen + clen;
}

static unsigned owner_of(const struct node *n)
{
    return n->nperms ? n->perms[0].id : 0;
}

/* Length of the parent's name: "/a/b" -> 2 ("/a"), "/a" -> 1 ("/"), "@x" -> 1 ("/"). */
static size_t parent_len(const char *name, size_t len)
{
    for (size_t i = len; i > 1; i--)
        if (name[i - 1] == '/')
            return i - 1 > 0 ? i - 1 : 1;
    return 1;
}

static struct node *g_get(const struct sxs_store *st, const char *name)
{
    struct hlink *l = ht_find(&st->nodes, name);
    return l ? (struct node *)l : NULL;
}

static void owned_add(struct sxs_store *st, unsigned domid, int delta)
{
    if (domid < SXS_MAX_DOMID)
        st->owned[domid] += delta;
}

/* Replace (n != NULL) or delete (n == NULL) a global node; stamps a new generation. */
static void g_put(struct sxs_store *st, const char *name, struct node *n)
{
    struct node *old = g_get(st, name);
    if (old) {
        owned_add(st, owner_of(old), -1);
        ht_del(&st->nodes, &old->hl);
    }
    if (n) {
        n->gen = ++st->gen;
        n->hl.key = n->name;
        ht_add(&st->nodes, &n->hl);
        owned_add(st, owner_of(n), 1);
    }
    free(old);
}

/* ---- transactions: access records ---------------------------------------------------------- */

static struct access *acc_find(struct sxs_tx *tx, const char *name)
{
    struct hlink *l = ht_find(&tx->acc, name);
    return l ? (struct access *)l : NULL;
}

static int acc_add(struct sxs_store *st, struct sxs_tx *tx, const char *name,
                   const struct node *g, struct access **out)
{
    if (!tx->who.priv && tx->naccess >= sxs_store_quota(st, tx->who.domid)->trans_nodes) {
        tx->fail = true;
        return -ENOSPC;
    }
    size_t nlen = strlen(name) + 1;
    unsigned np = g ? g->nperms : 0;
    struct access *a = calloc(1, sizeof(*a) + nlen + np * sizeof(struct xs_permissions) + 8);
    if (!a) {
        tx->fail = true;
        return -ENOMEM;
    }
    memcpy(a->name, name, nlen);
    a->hl.key = a->name;
    a->gen = g ? g->gen : SXS_NO_GEN;
    if (np) {
        /* Permissions after the name, aligned. */
        uintptr_t p = ((uintptr_t)(a->name + nlen) + 7) & ~(uintptr_t)7;
        a->operms = (struct xs_permissions *)p;
        memcpy(a->operms, g->perms, np * sizeof(*a->operms));
        a->noperms = np;
    }
    ht_add(&tx->acc, &a->hl);
    if (tx->tail)
        tx->tail->next = a;
    else
        tx->head = a;
    tx->tail = a;
    tx->naccess++;
    *out = a;
    return 0;
}

static int tx_delta(const struct sxs_tx *tx, unsigned domid)
{
    for (unsigned i = 0; i < tx->ndeltas; i++)
        if (tx->deltas[i].domid == domid)
            return tx->deltas[i].delta;
    return 0;
}

static int tx_delta_add(struct sxs_tx *tx, unsigned domid, int d)
{
    for (unsigned i = 0; i < tx->ndeltas; i++) {
        if (tx->deltas[i].domid == domid) {
            tx->deltas[i].delta += d;
            return 0;
        }
    }
    if (tx->ndeltas == tx->capdeltas) {
        unsigned cap = tx->capdeltas ? tx->capdeltas * 2 : 4;
        struct owner_delta *nd = realloc(tx->deltas, cap * sizeof(*nd));
        if (!nd) {
            tx->fail = true;
            return -ENOMEM;
        }
        tx->deltas = nd;
        tx->capdeltas = cap;
    }
    tx->deltas[tx->ndeltas].domid = domid;
    tx->deltas[tx->ndeltas].delta = d;
    tx->ndeltas++;
    return 0;
}

/* ---- the view a caller sees: global store, or transaction over it -------------------------- */

static int v_get(struct sxs_store *st, struct sxs_tx *tx, const char *name, struct node **out)
{
    *out = NULL;
    if (!tx) {
        *out = g_get(st, name);
        return 0;
    }
    struct access *a = acc_find(tx, name);
    if (a) {
        *out = a->modified ? a->shadow : g_get(st, name);
        return 0;
    }
    struct node *g = g_get(st, name);
    int rc = acc_add(st, tx, name, g, &a);
    if (rc)
        return rc;
    *out = g;
    return 0;
}

/* Install n (or delete when NULL) as `name` in the caller's view. Takes ownership of n. */
static int v_put(struct sxs_store *st, struct sxs_tx *tx, const char *name, struct node *n)
{
    if (!tx) {
        g_put(st, name, n);
        return 0;
    }
    struct access *a = acc_find(tx, name);
    int rc = 0;
    if (!a)
        rc = acc_add(st, tx, name, g_get(st, name), &a);
    if (rc) {
        free(n);
        return rc;
    }
    struct node *old = a->modified ? a->shadow : g_get(st, name);
    if (old && tx_delta_add(tx, owner_of(old), -1)) {
        free(n);
        return -ENOMEM;
    }
    if (n && tx_delta_add(tx, owner_of(n), 1)) {
        free(n);
        return -ENOMEM;
    }
    if (a->modified)
        free(a->shadow);
    a->modified = true;
    a->shadow = n;
    if (n) {
        n->gen = ++st->gen;
        n->hl.key = n->name;
    }
    return 0;
}

static unsigned owned_in_view(const struct sxs_store *st, const struct sxs_tx *tx,
                              unsigned domid)
{
    long v = domid < SXS_MAX_DOMID ? st->owned[domid] : 0;
    if (tx)
        v += tx_delta(tx, domid);
    return v < 0 ? 0 : (unsigned)v;
}

/* Parent perms for watch visibility (global view: the change is being published). */
static void fire_now(struct sxs_store *st, const char *name, bool exact,
                     const struct xs_permissions *p, unsigned np,
                     const struct xs_permissions *op, unsigned nop)
{
    if (!st->fire)
        return;
    struct sxs_change ch = { .path = name, .exact = exact };
    ch.perms[0] = p;
    ch.nperms[0] = np;
    ch.perms[1] = op;
    ch.nperms[1] = nop;
    if (name[0] == '/' && name[1]) {
        size_t pl = parent_len(name, strlen(name));
        char *pn = strndup(name, pl);
        if (pn) {
            struct node *par = g_get(st, pn);
            if (par) {
                ch.perms[2] = par->perms;
                ch.nperms[2] = par->nperms;
            }
            free(pn);
        }
    }
    st->fire(st->fire_arg, &ch);
}

static void fire(struct sxs_store *st, struct sxs_tx *tx, const char *name, bool exact,
                 const struct node *n, const struct xs_permissions *op, unsigned nop)
{
    if (tx) {
        struct access *a = acc_find(tx, name);
        if (!a) {
            tx->fail = true;
            return;
        }
        if (!a->fire) {
            a->fire = true;
            a->exact = exact;
        } else if (!exact) {
            a->exact = false;
        }
        return;
    }
    fire_now(st, name, exact, n ? n->perms : NULL, n ? n->nperms : 0, op, nop);
}

/* ---- permissions ---------------------------------------------------------------------------- */

unsigned sxs_perm_for(const struct sxs_who *who, const struct xs_permissions *p, unsigned n)
{
    const unsigned all = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
    if (who->priv)
        return all;
    if (!n)
        return XS_PERM_NONE;
    if (p[0].id == who->domid || (who->target != SXS_NO_TARGET && p[0].id == who->target))
        return all;
    for (unsigned i = 1; i < n; i++)
        if (!(p[i].perms & XS_PERM_IGNORE) &&
            (p[i].id == who->domid || (who->target != SXS_NO_TARGET && p[i].id == who->target)))
            return p[i].perms & all;
    return p[0].perms & all;
}

int sxs_perm_parse(const char *s, struct xs_permissions *out)
{
    unsigned perms;
    switch (s[0]) {
    case 'n': perms = XS_PERM_NONE; break;
    case 'r': perms = XS_PERM_READ; break;
    case 'w': perms = XS_PERM_WRITE; break;
    case 'b': perms = XS_PERM_READ | XS_PERM_WRITE; break;
    default: return -EINVAL;
    }
    unsigned long id = 0;
    size_t i = 1;
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i > 5)
            return -EINVAL;
        id = id * 10 + (unsigned)(s[i] - '0');
    }
    if (i == 1 || id > 0xffff)
        return -EINVAL;
    out->id = (unsigned)id;
    out->perms = perms;
    return 0;
}

int sxs_perm_format(const struct xs_permissions *p, char *buf, size_t len)
{
    char c;
    switch (p->perms & (XS_PERM_READ | XS_PERM_WRITE)) {
    case XS_PERM_NONE: c = 'n'; break;
    case XS_PERM_READ: c = 'r'; break;
    case XS_PERM_WRITE: c = 'w'; break;
    default: c = 'b'; break;
    }
    int r = snprintf(buf, len, "%c%u", c, p->id);
    return (r < 0 || (size_t)r >= len) ? -EINVAL : r;
}

bool sxs_path_is_child(const char *path, const char *parent)
{
    if (!strcmp(parent, "/"))
        return path[0] == '/';
    size_t l = strlen(parent);
    return !strncmp(path, parent, l) && (path[l] == '/' || path[l] == '\0');
}

/*
 * Look `name` up with `need` permission. A caller without permission must not learn whether a
 * node exists: for a missing node the answer is ENOENT only if the nearest existing ancestor
 * grants `need` (any bit), EACCES otherwise (C xenstored's errno_from_parents).
 */
static int chk(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
               const char *name, unsigned need, struct node **out)
{
    struct node *n;
    int rc = v_get(st, tx, name, &n);
    if (rc)
        return rc;
    if (n && (sxs_perm_for(who, n->perms, n->nperms) & need) == need) {
        *out = n;
        return 0;
    }
    int err = n ? -EACCES : -ENOENT;
    if (!strcmp(name, "/"))
        return err;
    char *buf = strdup(name);
    if (!buf)
        return -ENOMEM;
    size_t len = strlen(buf);
    struct node *anc = NULL;
    for (;;) {
        len = parent_len(buf, len);
        buf[len] = '\0';
        rc = v_get(st, tx, buf, &anc);
        if (rc || anc || len == 1)
            break;
    }
    free(buf);
    if (rc)
        return rc;
    if (!anc)
        return -EACCES;
    return (sxs_perm_for(who, anc->perms, anc->nperms) & need) ? err : -EACCES;
}

/* ---- paths ---------------------------------------------------------------------------------- */

static bool valid_chars(const char *s)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-/_@";
    return strspn(s, ok) == strlen(s);
}

int sxs_canon(const struct sxs_store *st, const struct sxs_who *who, const char *in,
              bool allow_special, char **out, size_t *prefix_len)
{
    *out = NULL;
    if (prefix_len)
        *prefix_len = 0;
    if (!in || !valid_chars(in) || (in[0] == '@' && !allow_special))
        return -EINVAL;
    char *name;
    if (in[0] != '/' && in[0] != '@') {
        int pl;
        if (asprintf(&name, "/local/domain/%u/%n%s", who->domid, &pl, in) < 0)
            return -ENOMEM;
        if (prefix_len)
            *prefix_len = (size_t)pl;
    } else {
        name = strdup(in);
        if (!name)
            return -ENOMEM;
    }
    size_t len = strlen(name);
    size_t local_off = 0;
    static const char ld[] = "/local/domain/";
    if (!strncmp(name, ld, sizeof(ld) - 1)) {
        size_t i = sizeof(ld) - 1, d = 0;
        while (name[i + d] >= '0' && name[i + d] <= '9' && d < 5)
            d++;
        if (d && name[i + d] == '/')
            local_off = i + d + 1;
    }
    if (name[0] == '/' && ((len > 1 && name[len - 1] == '/') || strstr(name, "//"))) {
        free(name);
        return -EINVAL;
    }
    if (len - local_off > sxs_store_quota(st, who->domid)->path_max) {
        free(name);
        return -EINVAL;
    }
    *out = name;
    return 0;
}

/* ---- operations ----------------------------------------------------------------------------- */

int sxs_store_read(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                   const char *path, const char **data, unsigned *len)
{
    struct node *n;
    int rc = chk(st, who, tx, path, XS_PERM_READ, &n);
    if (rc)
        return rc;
    *data = n->data;
    *len = n->datalen;
    return 0;
}

int sxs_store_directory(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                        const char *path, const char **children, unsigned *childlen,
                        uint64_t *gen)
{
    struct node *n;
    int rc = chk(st, who, tx, path, XS_PERM_READ, &n);
    if (rc)
        return rc;
    *children = n->children;
    *childlen = n->childlen;
    if (gen)
        *gen = n->gen;
    return 0;
}

int sxs_store_get_perms(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                        const char *path, const struct xs_permissions **p, unsigned *np)
{
    struct node *n;
    int rc = chk(st, who, tx, path, XS_PERM_READ, &n);
    if (rc)
        return rc;
    *p = n->perms;
    *np = n->nperms;
    return 0;
}

/* Create `name` and any missing ancestors (inheriting the nearest ancestor's permissions; an
 * unprivileged creator owns what it creates). */
static int create_node(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                       const char *name, const void *data, unsigned dlen)
{
    size_t L = strlen(name);
    char *buf = strdup(name);
    if (!buf)
        return -ENOMEM;
    struct node *anc = NULL;
    size_t alen = L;
    unsigned missing = 1;
    int rc;
    for (;;) {
        alen = parent_len(buf, alen);
        char save = buf[alen];
        buf[alen] = '\0';
        rc = v_get(st, tx, buf, &anc);
        buf[alen] = save;
        if (rc)
            goto out;
        if (anc)
            break;
        if (alen == 1) {
            rc = -ENOENT; /* no root: cannot happen */
            goto out;
        }
        missing++;
    }

    /* Check every limit before changing anything. */
    size_t start = alen == 1 ? 1 : alen + 1;
    size_t end = start;
    while (end < L && name[end] != '/')
        end++;
    unsigned base = (unsigned)(end - start);
    if (!who->priv) {
        const struct sxs_quota *q = sxs_store_quota(st, who->domid);
        if (owned_in_view(st, tx, who->domid) + missing > q->nodes_per_domain ||
            node_size(anc->nperms, anc->datalen, anc->childlen + base + 1) >
                q->max_node_size ||
            node_size(anc->nperms, dlen, 0) > q->max_node_size) {
            rc = -ENOSPC;
            goto out;
        }
    }

    unsigned np = anc->nperms;
    struct xs_permissions *perms = malloc((np ? np : 1) * sizeof(*perms));
    char *ch = malloc(anc->childlen + base + 1);
    struct node *na = NULL;
    if (perms && ch) {
        memcpy(perms, anc->perms, np * sizeof(*perms));
        if (!who->priv && np)
            perms[0].id = who->domid;
        memcpy(ch, anc->children, anc->childlen);
        memcpy(ch + anc->childlen, name + start, base);
        ch[anc->childlen + base] = '\0';
        na = node_new(anc->name, anc->perms, anc->nperms, anc->data, anc->datalen, ch,
                      anc->childlen + base + 1);
    }
    free(ch);
    if (!na) {
        free(perms);
        rc = -ENOMEM;
        goto out;
    }
    rc = v_put(st, tx, na->name, na);
    while (!rc) {
        /* Node name[0..end), its only child is the next component, if any. */
        size_t nstart = end + 1, nend = nstart;
        bool leaf = end >= L;
        while (!leaf && nend < L && name[nend] != '/')
            nend++;
        buf[end] = '\0';
        struct node *n = node_new(buf, perms, np, leaf ? data : NULL, leaf ? dlen : 0,
                                  leaf ? NULL : name + nstart,
                                  leaf ? 0 : (unsigned)(nend - nstart) + 1);
        if (n && !leaf)
            n->children[nend - nstart] = '\0';
        buf[end] = name[end];
        if (!n) {
            rc = -ENOMEM;
            break;
        }
        rc = v_put(st, tx, n->name, n);
        if (leaf)
            break;
        end = nend;
    }
    free(perms);
    if (!rc && tx)
        tx->created = true;
out:
    free(buf);
    return rc;
}

int sxs_store_write(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                    const char *path, const void *data, unsigned len)
{
    struct node *n;
    int rc = chk(st, who, tx, path, XS_PERM_WRITE, &n);
    if (rc == -ENOENT) {
        rc = create_node(st, who, tx, path, data, len);
    } else if (!rc) {
        if (!who->priv && node_size(n->nperms, len, n->childlen) >
                              sxs_store_quota(st, who->domid)->max_node_size)
            return -ENOSPC;
        struct node *nn = node_new(n->name, n->perms, n->nperms, data, len, n->children,
                                   n->childlen);
        if (!nn)
            return -ENOMEM;
        rc = v_put(st, tx, path, nn);
    }
    if (rc)
        return rc;
    struct node *now = NULL;
    if (!tx)
        now = g_get(st, path);
    fire(st, tx, path, false, now, NULL, 0);
    return 0;
}

int sxs_store_mkdir(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                    const char *path)
{
    struct node *n;
    int rc = chk(st, who, tx, path, XS_PERM_WRITE, &n);
    if (rc != -ENOENT)
        return rc;
    rc = create_node(st, who, tx, path, NULL, 0);
    if (rc)
        return rc;
    fire(st, tx, path, false, tx ? NULL : g_get(st, path), NULL, 0);
    return 0;
}

/* Remove `name` (which exists in the view) and its subtree, children first. */
static int rm_tree(struct sxs_store *st, struct sxs_tx *tx, const char *name, bool root,
                   unsigned depth)
{
    struct node *n;
    int rc = v_get(st, tx, name, &n);
    if (rc)
        return rc;
    if (!n)
        return 0;
    if (depth > 4096)
        return -EIO;
    size_t nl = strlen(name);
    for (unsigned off = 0; off < n->childlen;) {
        const char *c = n->children + off;
        size_t cl = strnlen(c, n->childlen - off);
        char *cn = malloc(nl + cl + 2);
        if (!cn)
            return -ENOMEM;
        memcpy(cn, name, nl);
        cn[nl] = '/';
        memcpy(cn + nl + 1, c, cl);
        cn[nl + 1 + cl] = '\0';
        rc = rm_tree(st, tx, !strcmp(name, "/") ? cn + 1 : cn, false, depth + 1);
        free(cn);
        if (rc)
            return rc;
        off += (unsigned)cl + 1;
    }
    /* Fire while the node and its parent are still visible: descendants only to watches
     * exactly on them, the removed root to watches on it or above. */
    fire(st, tx, name, !root, n, NULL, 0);
    return v_put(st, tx, name, NULL);
}

/* Remove path (which exists in the view, and is not "/") with its subtree, and its entry in
 * its parent's child list. */
static int rm_linked(struct sxs_store *st, struct sxs_tx *tx, const char *path)
{
    struct node *par;
    size_t pl = parent_len(path, strlen(path));
    char *pn = strndup(path, pl);
    if (!pn)
        return -ENOMEM;
    int rc = rm_tree(st, tx, path, true, 0);
    if (!rc)
        rc = v_get(st, tx, pn, &par);
    if (!rc && par) {
        /* Drop the child entry from the parent. */
        const char *base = path + pl + (pl == 1 ? 0 : 1);
        char *ch = malloc(par->childlen ? par->childlen : 1);
        unsigned cl = 0;
        if (!ch) {
            rc = -ENOMEM;
        } else {
            for (unsigned off = 0; off < par->childlen;) {
                const char *c = par->children + off;
                unsigned l = (unsigned)strnlen(c, par->childlen - off);
                if (strcmp(c, base)) {
                    memcpy(ch + cl, c, l);
                    ch[cl + l] = '\0';
                    cl += l + 1;
                }
                off += l + 1;
            }
            struct node *np = node_new(par->name, par->perms, par->nperms, par->data,
                                       par->datalen, ch, cl);
            free(ch);
            rc = np ? v_put(st, tx, pn, np) : -ENOMEM;
        }
    }
    free(pn);
    return rc;
}

int sxs_store_rm(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                 const char *path)
{
    struct node *n, *par;
    int rc = chk(st, who, tx, path, XS_PERM_WRITE, &n);
    if (rc == -ENOENT) {
        /* Removing a missing node is fine if its parent exists. */
        char *pn = strndup(path, parent_len(path, strlen(path)));
        if (!pn)
            return -ENOMEM;
        int r2 = v_get(st, tx, pn, &par);
        free(pn);
        if (r2)
            return r2;
        return par ? 0 : -ENOENT;
    }
    if (rc || !strcmp(path, "/"))
        return rc ? rc : -EINVAL;
    return rm_linked(st, tx, path);
}

int sxs_store_set_perms(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                        const char *path, const struct xs_permissions *p, unsigned np)
{
    if (np < 1)
        return -EINVAL;
    if (!who->priv && np > sxs_store_quota(st, who->domid)->perms_per_node)
        return -ENOSPC;
    struct node *n;
    int rc = chk(st, who, tx, path, XS_PERM_WRITE | XS_PERM_OWNER, &n);
    if (rc)
        return rc;
    /* Unprivileged domains may not give their nodes away. */
    if (!who->priv && p[0].id != owner_of(n))
        return -EPERM;
    struct xs_permissions *old = malloc((n->nperms ? n->nperms : 1) * sizeof(*old));
    if (!old)
        return -ENOMEM;
    unsigned nold = n->nperms;
    memcpy(old, n->perms, nold * sizeof(*old));
    struct node *nn = node_new(n->name, p, np, n->data, n->datalen, n->children, n->childlen);
    if (!nn) {
        free(old);
        return -ENOMEM;
    }
    rc = v_put(st, tx, path, nn);
    if (!rc)
        fire(st, tx, path, false, tx ? NULL : nn, old, nold);
    free(old);
    return rc;
}

/* ---- transactions --------------------------------------------------------------------------- */

static void tx_free(struct sxs_tx *tx)
{
    struct access *a = tx->head;
    while (a) {
        struct access *next = a->next;
        if (a->modified)
            free(a->shadow);
        free(a);
        a = next;
    }
    free(tx->acc.b);
    free(tx->deltas);
    free(tx);
}

int sxs_store_tx_start(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx **out)
{
    struct sxs_tx *tx = calloc(1, sizeof(*tx));
    if (!tx || ht_init(&tx->acc, 16)) {
        free(tx);
        return -ENOMEM;
    }
    tx->who = *who;
    st->gen++;
    *out = tx;
    return 0;
}

int sxs_store_tx_end(struct sxs_store *st, const struct sxs_who *who, struct sxs_tx *tx,
                     bool commit)
{
    int rc = 0;
    if (!commit)
        goto out;
    if (tx->fail) {
        rc = -ENOMEM;
        goto out;
    }
    for (struct access *a = tx->head; a; a = a->next) {
        struct node *g = g_get(st, a->name);
        if ((g ? g->gen : SXS_NO_GEN) != a->gen) {
            rc = -EAGAIN;
            goto out;
        }
    }
    if (!who->priv && tx->created) {
        int d = tx_delta(tx, who->domid);
        if (d > 0 && owned_in_view(st, NULL, who->domid) + (unsigned)d >
                         sxs_store_quota(st, who->domid)->nodes_per_domain) {
            rc = -ENOSPC;
            goto out;
        }
    }
    for (struct access *a = tx->head; a; a = a->next) {
        if (!a->modified)
            continue;
        g_put(st, a->name, a->shadow);
        a->shadow = NULL;
    }
    for (struct access *a = tx->head; a; a = a->next) {
        if (!a->fire)
            continue;
        struct node *g = g_get(st, a->name);
        fire_now(st, a->name, a->exact, g ? g->perms : NULL, g ? g->nperms : 0, a->operms,
                 a->noperms);
    }
out:
    tx_free(tx);
    return rc;
}

void sxs_store_fire_special(struct sxs_store *st, const char *name)
{
    struct node *n = g_get(st, name);
    fire_now(st, name, true, n ? n->perms : NULL, n ? n->nperms : 0, NULL, 0);
}

static bool mentions(const struct node *n, unsigned domid)
{
    for (unsigned i = 0; i < n->nperms; i++)
        if (n->perms[i].id == domid)
            return true;
    return false;
}

int sxs_store_domain_gone(struct sxs_store *st, unsigned domid)
{
    if (!domid)
        return 0;
    /* Collect the names first: removing and replacing nodes reshapes the hash chains. */
    size_t cap = 16, n = 0;
    char **todo = malloc(cap * sizeof(*todo));
    if (!todo)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < st->nodes.nb && !rc; i++) {
        for (struct hlink *l = st->nodes.b[i]; l && !rc; l = l->next) {
            struct node *nd = (struct node *)l;
            if (!mentions(nd, domid))
                continue;
            if (n == cap) {
                char **t = realloc(todo, cap * 2 * sizeof(*todo));
                if (!t) {
                    rc = -ENOMEM;
                    break;
                }
                todo = t;
                cap *= 2;
            }
            if (!(todo[n] = strdup(nd->name)))
                rc = -ENOMEM;
            else
                n++;
        }
    }
    int changed = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct node *old = g_get(st, todo[i]);
        if (!old)
            continue;   /* below a node removed already */
        if (owner_of(old) == domid && old->name[0] == '/' && old->name[1]) {
            /* Its nodes go with it (XSA-419: given to dom0, which has no quota, they would
             * pile up over a guest's reboots). Watches on them fire. The path is our copy:
             * old->name is freed with the node, before rm_linked is done with it. */
            rc = rm_linked(st, NULL, todo[i]);
            changed++;
            continue;
        }
        struct xs_permissions p[old->nperms ? old->nperms : 1];
        unsigned np = 0;
        for (unsigned j = 0; j < old->nperms; j++) {
            if (j == 0) {
                p[np] = old->perms[0];
                if (p[np].id == domid)
                    p[np].id = 0;   /* a special node: dom0's again */
                np++;
            } else if (old->perms[j].id != domid) {
                p[np++] = old->perms[j];
            }
        }
        struct node *nn = node_new(old->name, p, np, old->data, old->datalen, old->children,
                                   old->childlen);
        if (!nn) {
            rc = -ENOMEM;
            break;
        }
        g_put(st, nn->name, nn); /* frees old */
        changed++;
    }
    for (size_t i = 0; i < n; i++)
        free(todo[i]);
    free(todo);
    return rc ? rc : changed;
}

/* Walk from name; count reachable nodes and per-owner counts. */
static int check_walk(struct sxs_store *st, const char *name, size_t *seen, uint32_t *owned,
                      unsigned depth)
{
    struct node *n = g_get(st, name);
    if (!n) {
        sx_err("check: %s is listed but missing", name);
        return -EIO;
    }
    if (depth > 4096)
        return -EIO;
    (*seen)++;
    if (owner_of(n) < SXS_MAX_DOMID)
        owned[owner_of(n)]++;
    size_t nl = strlen(name);
    int rc = 0;
    for (unsigned off = 0; off < n->childlen && !rc;) {
        const char *c = n->children + off;
        size_t cl = strnlen(c, n->childlen - off);
        if (!cl || off + cl >= n->childlen) {
            sx_err("check: %s has a malformed child list", name);
            return -EIO;
        }
        for (unsigned o2 = off + (unsigned)cl + 1; o2 < n->childlen;) {
            if (!strcmp(n->children + o2, c)) {
                sx_err("check: %s lists %s twice", name, c);
                return -EIO;
            }
            o2 += (unsigned)strlen(n->children + o2) + 1;
        }
        char *cn = malloc(nl + cl + 2);
        if (!cn)
            return -ENOMEM;
        snprintf(cn, nl + cl + 2, "%s/%s", strcmp(name, "/") ? name : "", c);
        rc = check_walk(st, cn, seen, owned, depth + 1);
        free(cn);
        off += (unsigned)cl + 1;
    }
    return rc;
}

int sxs_store_check(struct sxs_store *st)
{
    uint32_t *owned = calloc(SXS_MAX_DOMID, sizeof(*owned));
    if (!owned)
        return -ENOMEM;
    size_t seen = 0;
    int rc = check_walk(st, "/", &seen, owned, 0);
    size_t special = 0;
    for (size_t i = 0; i < st->nodes.nb; i++) {
        for (struct hlink *l = st->nodes.b[i]; l; l = l->next) {
            struct node *n = (struct node *)l;
            if (n->name[0] == '@') {
                special++;
                if (owner_of(n) < SXS_MAX_DOMID)
                    owned[owner_of(n)]++;
            }
        }
    }
    if (!rc && seen + special != st->nodes.n) {
        sx_err("check: %zu nodes reachable, %zu special, %zu stored", seen, special,
               st->nodes.n);
        rc = -EIO;
    }
    for (unsigned d = 0; !rc && d < SXS_MAX_DOMID; d++) {
        if (owned[d] != st->owned[d]) {
            sx_err("check: domain %u owns %u nodes, counted %u", d, owned[d], st->owned[d]);
            rc = -EIO;
        }
    }
    free(owned);
    return rc;
}

unsigned sxs_store_node_count(const struct sxs_store *st)
{
    return (unsigned)st->nodes.n;
}

unsigned sxs_store_nodes_owned(const struct sxs_store *st, unsigned domid)
{
    return owned_in_view(st, NULL, domid);
}

/* ---- setup ---------------------------------------------------------------------------------- */

void sxs_store_set_quota(struct sxs_store *st, const struct sxs_quota *q)
{
    st->q = *q;
}

const struct sxs_quota *sxs_store_quota(const struct sxs_store *st, unsigned domid)
{
    return domid < SXS_MAX_DOMID && st->dq[domid] ? st->dq[domid] : &st->q;
}

int sxs_store_domain_quota_set(struct sxs_store *st, unsigned domid, const struct sxs_quota *q)
{
    if (domid == 0 || domid >= SXS_MAX_DOMID)
        return -EINVAL;
    if (!st->dq[domid] && !(st->dq[domid] = malloc(sizeof(*q))))
        return -ENOMEM;
    *st->dq[domid] = *q;
    return 0;
}

void sxs_store_domain_quota_drop(struct sxs_store *st, unsigned domid)
{
    if (domid < SXS_MAX_DOMID) {
        free(st->dq[domid]);
        st->dq[domid] = NULL;
    }
}

void sxs_store_set_fire(struct sxs_store *st, sxs_fire_fn *fn, void *arg)
{
    st->fire = fn;
    st->fire_arg = arg;
}

static int manual_node(struct sxs_store *st, const char *name, const char *value,
                       const char *children, unsigned clen)
{
    static const struct xs_permissions n0 = { .id = 0, .perms = XS_PERM_NONE };
    struct node *n = node_new(name, &n0, 1, value, value ? (unsigned)strlen(value) : 0,
                              children, clen);
    if (!n)
        return -ENOMEM;
    g_put(st, name, n);
    return 0;
}

int sxs_store_open(struct sxs_store **out, const struct sxs_quota *q)
{
    struct sxs_store *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->q = *q;
    st->owned = calloc(SXS_MAX_DOMID, sizeof(*st->owned));
    st->dq = calloc(SXS_MAX_DOMID, sizeof(*st->dq));
    if (!st->owned || !st->dq || ht_init(&st->nodes, 1024))
        goto nomem;
    /* The tree a freshly booted Xen host has before any guest (values as Xen writes them). */
    static const char root_ch[] = "tool\0local";
    static const char dom0_ch[] = "domid\0name\0control";
    if (manual_node(st, "/", NULL, root_ch, sizeof(root_ch)) ||
        manual_node(st, "/tool", NULL, "xenstored", sizeof("xenstored")) ||
        manual_node(st, "/tool/xenstored", NULL, NULL, 0) ||
        manual_node(st, "/local", NULL, "domain", sizeof("domain")) ||
        manual_node(st, "/local/domain", NULL, "0", sizeof("0")) ||
        manual_node(st, "/local/domain/0", NULL, dom0_ch, sizeof(dom0_ch)) ||
        manual_node(st, "/local/domain/0/domid", "0", NULL, 0) ||
        manual_node(st, "/local/domain/0/name", "Domain-0", NULL, 0) ||
        manual_node(st, "/local/domain/0/control", NULL, NULL, 0) ||
        manual_node(st, "@introduceDomain", NULL, NULL, 0) ||
        manual_node(st, "@releaseDomain", NULL, NULL, 0))
        goto nomem;
    *out = st;
    return 0;
nomem:
    sxs_store_close(st);
    return -ENOMEM;
}

void sxs_store_close(struct sxs_store *st)
{
    if (!st)
        return;
    if (st->nodes.b) {
        for (size_t i = 0; i < st->nodes.nb; i++) {
            struct hlink *l = st->nodes.b[i];
            while (l) {
                struct hlink *next = l->next;
                free(l);
                l = next;
            }
        }
        free(st->nodes.b);
    }
    for (unsigned d = 0; st->dq && d < SXS_MAX_DOMID; d++)
        free(st->dq[d]);
    free(st->dq);
    free(st->owned);
    free(st);
}
