/*
 * splitxen-test-ackcheck: a guest that checks that no acknowledged write is lost across a
 * storage outage, and that I/O resumes after it.
 *
 *   splitxen-test-ackcheck --domid D [--vdev xvda] [--bs BYTES] [--qd N] [--offset BYTES]
 *                          [--blocks N] [--interval-us US] [--resume K] [--progress FILE]
 *                          [--deadline S] [--hold FILE]
 *
 * Write phase: blocks 0..N-1 of bs bytes from offset are written in order, each once, with a
 * pattern naming the block, at most qd in flight, one submission every interval-us. Each
 * completion is recorded: acknowledged (OKAY) or failed. After a failure the next submission
 * waits 10 ms (a storage outage fails requests at once; the pause keeps blocks for later).
 * The phase ends when every block was written, or when K writes were acknowledged after the
 * first failure (--resume K: I/O resumed), or at the deadline. The counts go to the progress
 * file after every completion batch ("acked A failed F resumed R"), for the test to follow.
 * Verify phase: every acknowledged block is read back and compared with its pattern.
 *
 * Prints "acked A failed F resumed R lost L max_ms M" and exits 0 when nothing acknowledged
 * was lost (and, with --resume, I/O resumed), 1 otherwise, 2 on a setup error. With --hold,
 * the vbd stays connected after that line until FILE exists (the test reads the backend's
 * counters meanwhile) or the deadline passes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frontends/blkfront/blkfront.h"
#include "platform/platform.h"

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void fill(uint64_t *p, size_t bs, uint64_t block)
{
    for (size_t i = 0; i < bs / 8; i++)
        p[i] = 0x5358414b00000000ull ^ (block << 20) ^ i;   /* "SXAK" */
}

struct slot {
    uint64_t block, t0;
    uint64_t *buf;
    bool busy;
};

int main(int argc, char **argv)
{
    unsigned domid = 0, qd = 8, resume = 0, deadline_s = 60;
    uint64_t bs = 4096, off0 = 0, nblocks = 4096, interval_us = 0;
    const char *vdev = "xvda", *progress = NULL, *hold = NULL;
    static const struct option lo[] = {
        { "domid", required_argument, NULL, 'd' }, { "vdev", required_argument, NULL, 'v' },
        { "bs", required_argument, NULL, 'b' }, { "qd", required_argument, NULL, 'q' },
        { "offset", required_argument, NULL, 'o' }, { "blocks", required_argument, NULL, 'n' },
        { "interval-us", required_argument, NULL, 'i' }, { "resume", required_argument, NULL, 'r' },
        { "progress", required_argument, NULL, 'p' }, { "deadline", required_argument, NULL, 't' },
        { "hold", required_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'd': domid = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'v': vdev = optarg; break;
        case 'b': bs = strtoull(optarg, NULL, 0); break;
        case 'q': qd = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'o': off0 = strtoull(optarg, NULL, 0); break;
        case 'n': nblocks = strtoull(optarg, NULL, 0); break;
        case 'i': interval_us = strtoull(optarg, NULL, 0); break;
        case 'r': resume = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'p': progress = optarg; break;
        case 't': deadline_s = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'h': hold = optarg; break;
        default: fprintf(stderr, "ackcheck: bad option\n"); return 2;
        }
    }
    if (!domid || !bs || bs % 512 || !qd || qd > 64 || !nblocks) {
        fprintf(stderr, "ackcheck: need --domid, bs a multiple of 512, qd 1..64\n");
        return 2;
    }
    struct sx_plat *p;
    struct sx_blkfront *f;
    int rc = sx_plat_open(&p, SX_PLAT_SIM, (domid_t)domid, NULL);
    if (rc < 0) {
        fprintf(stderr, "ackcheck: attach to dom%u: %s\n", domid, strerror(-rc));
        return 2;
    }
    rc = sx_blkfront_open(&f, p, vdev, NULL);
    if (rc < 0) {
        fprintf(stderr, "ackcheck: open %s: %s\n", vdev, strerror(-rc));
        sx_plat_close(p);
        return 2;
    }
    if (off0 + nblocks * bs > sx_blkfront_info(f)->size_bytes) {
        fprintf(stderr, "ackcheck: %llu blocks of %llu from %llu do not fit the disk\n",
                (unsigned long long)nblocks, (unsigned long long)bs, (unsigned long long)off0);
        return 2;
    }
    uint8_t *acked = calloc(nblocks, 1);
    struct slot *slots = calloc(qd, sizeof(*slots));
    uint64_t *check = aligned_alloc(4096, (bs + 4095) & ~4095ull);
    for (unsigned i = 0; i < qd; i++)
        slots[i].buf = aligned_alloc(4096, (bs + 4095) & ~4095ull);
    uint64_t next = 0, nacked = 0, nfailed = 0, nresumed = 0, max_us = 0, inflight = 0;
    uint64_t unread = 0;        /* a request that could not be made, a block not read back */
    uint64_t deadline = now_us() + (uint64_t)deadline_s * 1000000u, next_at = 0;
    FILE *pf = progress ? fopen(progress, "w") : NULL;
    bool stop = false;

    /* ---- write phase ---- */
    while (inflight || (!stop && next < nblocks)) {
        uint64_t t = now_us();
        if (t > deadline)
            stop = true;
        for (unsigned i = 0; i < qd && !stop && next < nblocks && t >= next_at; i++) {
            if (slots[i].busy)
                continue;
            fill(slots[i].buf, bs, next);
            rc = sx_blkfront_submit(f, 0, SX_BLKFRONT_WRITE, off0 + next * bs, slots[i].buf, bs,
                                    &slots[i]);
            if (rc == -EAGAIN)
                break;
            if (rc < 0) {
                fprintf(stderr, "ackcheck: submit: %s\n", strerror(-rc));
                stop = true;
                unread++;
                break;
            }
            slots[i].busy = true;
            slots[i].block = next++;
            slots[i].t0 = t;
            inflight++;
            next_at = t + interval_us;
        }
        struct sx_blkfront_cpl cpl[64];
        int n = sx_blkfront_wait(f, 0, cpl, inflight ? 1 : 0, 64, inflight ? 100 : 1);
        if (n < 0) {
            fprintf(stderr, "ackcheck: wait: %s\n", strerror(-n));
            unread++;
            break;
        }
        for (int k = 0; k < n; k++) {
            struct slot *s = cpl[k].cookie;
            uint64_t lat = now_us() - s->t0;
            if (lat > max_us)
                max_us = lat;
            if (cpl[k].res >= 0) {
                acked[s->block] = 1;
                nacked++;
                if (nfailed)
                    nresumed++;
            } else {
                nfailed++;
                next_at = now_us() + 10000;
            }
            s->busy = false;
            inflight--;
        }
        if (resume && nresumed >= resume)
            stop = true;
        if (n > 0 && pf) {
            rewind(pf);
            fprintf(pf, "acked %llu failed %llu resumed %llu      \n",
                    (unsigned long long)nacked, (unsigned long long)nfailed,
                    (unsigned long long)nresumed);
            fflush(pf);
        }
    }

    /* ---- verify phase: every acknowledged block, one at a time (a read that fails is
     * tried again for up to 10 s: the storage may still be coming back) ---- */
    uint64_t lost = 0, retry_until = 0;
    for (uint64_t b = 0; b < next && !unread; b++) {
        if (!acked[b])
            continue;
        rc = sx_blkfront_submit(f, 0, SX_BLKFRONT_READ, off0 + b * bs, check, bs, check);
        struct sx_blkfront_cpl cpl;
        int n = rc < 0 ? rc : sx_blkfront_wait(f, 0, &cpl, 1, 1, 10000);
        if (n == 1 && cpl.res < 0) {
            if (!retry_until)
                retry_until = now_us() + 10000000u;
            if (now_us() < retry_until) {
                usleep(50000);
                b--;
                continue;
            }
        }
        if (n != 1 || cpl.res < 0) {
            fprintf(stderr, "ackcheck: reading block %llu back: %s\n", (unsigned long long)b,
                    n < 0 ? strerror(-n) : n == 0 ? "timed out" : strerror(-cpl.res));
            unread++;
            break;
        }
        retry_until = 0;
        fill(slots[0].buf, bs, b);
        if (memcmp(check, slots[0].buf, bs)) {
            if (lost < 5)
                fprintf(stderr, "ackcheck: block %llu was acknowledged but reads back "
                        "different\n", (unsigned long long)b);
            lost++;
        }
    }
    printf("acked %llu failed %llu resumed %llu lost %llu max_ms %llu\n",
           (unsigned long long)nacked, (unsigned long long)nfailed,
           (unsigned long long)nresumed, (unsigned long long)lost,
           (unsigned long long)(max_us / 1000));
    fflush(stdout);
    while (hold && access(hold, F_OK) < 0 && now_us() < deadline)
        usleep(10000);
    if (pf)
        fclose(pf);
    sx_blkfront_close(f);
    sx_plat_close(p);
    for (unsigned i = 0; i < qd; i++)
        free(slots[i].buf);
    free(slots);
    free(check);
    free(acked);
    return lost == 0 && !unread && (!resume || nresumed >= resume) ? 0 : 1;
}
