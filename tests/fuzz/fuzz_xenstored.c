/*
 * xenstored's request handling, whole messages (xenstored/server.c, included here so the
 * harness can hand a connection's input buffer to the real parser without a socket round trip
 * per message, and xenstored/store.c under it): the input is what one connection sends, a
 * guest's (domain 1) or, when its first byte is odd, dom0's. Replies and events go out on a
 * socketpair and are thrown away. The connection closes at the end of each input (watches and
 * transactions go with it); the whole daemon starts afresh every 2048 inputs. What xenstored
 * promises: its consistency check (every node reachable once, owner counts right) passes (run
 * every 64th input: it walks everything).
 */
#include "tests/fuzz/fuzz.h"
#include "xenstored/server.c"

static struct sxs *S;
static char dir[64];
static unsigned runs;

static void daemon_open(void)
{
    if (S)
        sxs_close(S);
    S = NULL;
    if (sxs_open(&S, dir) || sxs_domain_add(S, 1) || sxs_domain_add(S, 2))
        abort();
    /* Guest 1's home is its own, as the toolstack makes it. */
    const char *owner1[] = { "n1" };
    if (sxs_mkdir(S, "/local/domain/1") || sxs_set_perms(S, "/local/domain/1", owner1, 1))
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/sx-fuzz-xs-%d", (int)getpid());
    setenv("SPLITXEN_LOG", "err", 1);
    daemon_open();
    return 0;
}

/* A connection of domid whose far end we read and drop. */
static struct conn *conn_new(struct sxs *s, unsigned domid, int *far)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        abort();
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->ep.kind = EP_CONN;
    c->fd = sv[0];
    c->domid = domid;
    c->next_txid = 1;
    c->next = s->conns;
    s->conns = c;
    s->stats.connections++;
    *far = sv[1];
    return c;
}

static void drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (++runs % 2048 == 0)
        daemon_open();
    struct sxs *s = S;
    int far;
    unsigned domid = data[0] & 1 ? 0 : 1;
    pthread_mutex_lock(&s->lock);
    struct conn *c = conn_new(s, domid, &far);
    for (size_t off = 1; off < size && !c->dead;) {
        size_t room = SXS_IN_CAP - c->in_len, k = size - off < room ? size - off : room;
        memcpy(c->inbuf + c->in_len, data + off, k);
        c->in_len += k;
        off += k;
        size_t before = c->in_len;
        conn_parse(s, c);
        conn_flush(s, c);
        drain(far);
        if (!c->dead && c->in_len == before && c->in_len == SXS_IN_CAP)
            break;   /* replies backed up and nothing taken: as a socket would stop reading */
        while (!c->dead && c->in_len >= SXS_HDR && c->reply_bytes < SXS_REPLY_BACKLOG) {
            size_t b = c->in_len;
            conn_parse(s, c);
            conn_flush(s, c);
            drain(far);
            if (c->in_len == b)
                break;
        }
    }
    for (struct conn *o = s->conns; o; o = o->next)
        conn_flush(s, o);
    conn_close(s, c);
    reap(s);
    /* The check walks the store and every domid's count: every 64th input, and the one
     * before a restart (a broken count persists until then). */
    if (runs % 64 == 0 || (runs + 1) % 2048 == 0)
        FUZZ_CHECK(sxs_store_check(s->st) == 0);
    pthread_mutex_unlock(&s->lock);
    close(far);
    return 0;
}
