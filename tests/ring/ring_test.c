/*
 * ring/ring.c unit tests: layout equality with <xen/io/ring.h>, interoperation with ring.h's
 * own macros on both sides, overflow detection, copy-once, final check, notification batching,
 * index wrap-around, size validation and the adaptive-polling helper.
 */
#include "ring/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <xen/io/blkif.h>
#include <xen/io/netif.h>

#include "clock.h"
#include "tests/sxtest.h"

SX_RING_CHECK_TYPES(struct blkif_request, struct blkif_response);
SX_RING_CHECK_TYPES(struct netif_tx_request, struct netif_tx_response);
SX_RING_CHECK_TYPES(struct netif_rx_request, struct netif_rx_response);
SX_RING_CHECK_TYPES(struct xen_netif_ctrl_request, struct xen_netif_ctrl_response);

static void *ring_mem(unsigned order)
{
    size_t bytes = sx_ring_bytes(order);
    void *p = aligned_alloc(SX_RING_PAGE_SIZE, bytes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(p, 0xa5, bytes);   /* garbage: init must set what it needs */
    return p;
}

/* ---- barriers: <xen/io/ring.h> redefines xen_mb() as the kernel's mb() for userspace builds
 * (interface version 0); ring/ring.h puts barrier.h's C11 fences back. Regression test for that:
 * ring.h's own macros must expand to the same fences. */
#define STR_(x) #x
#define STR(x) STR_(x)

static void test_ring_h_barriers_are_c11_fences(void)
{
    CU_ASSERT_STRING_EQUAL(STR(xen_mb()), STR(sx_mb()));
    CU_ASSERT_STRING_EQUAL(STR(xen_rmb()), STR(sx_rmb()));
    CU_ASSERT_STRING_EQUAL(STR(xen_wmb()), STR(sx_wmb()));
    CU_ASSERT_STRING_NOT_EQUAL(STR(xen_mb()), "mb()");
}

/* ---- layout */

#define CHECK_HDR(tag)                                                                        \
    do {                                                                                      \
        CU_ASSERT_EQUAL(offsetof(struct tag##_sring, req_prod),                               \
                        offsetof(struct sx_sring_hdr, req_prod));                             \
        CU_ASSERT_EQUAL(offsetof(struct tag##_sring, req_event),                              \
                        offsetof(struct sx_sring_hdr, req_event));                            \
        CU_ASSERT_EQUAL(offsetof(struct tag##_sring, rsp_prod),                               \
                        offsetof(struct sx_sring_hdr, rsp_prod));                             \
        CU_ASSERT_EQUAL(offsetof(struct tag##_sring, rsp_event),                              \
                        offsetof(struct sx_sring_hdr, rsp_event));                            \
        CU_ASSERT_EQUAL(offsetof(struct tag##_sring, pvt), offsetof(struct sx_sring_hdr, pvt)); \
        CU_ASSERT_EQUAL(offsetof(struct tag##_sring, ring), SX_SRING_HDR_SIZE);               \
    } while (0)

static void test_header_layout_matches_ring_h(void)
{
    CHECK_HDR(blkif);
    CHECK_HDR(netif_tx);
    CHECK_HDR(netif_rx);
    CHECK_HDR(xen_netif_ctrl);
}

/* For each order, attach sx rings and ring.h rings to the same memory and compare sizes,
 * entry sizes and slot addresses. */
#define CHECK_SIZES(tag, req_t, rsp_t)                                                        \
    do {                                                                                      \
        for (unsigned order = 0; order <= SX_RING_MAX_ORDER; order++) {                       \
            size_t bytes = sx_ring_bytes(order);                                              \
            void *mem = ring_mem(order);                                                      \
            struct tag##_back_ring hb;                                                        \
            struct tag##_front_ring hf;                                                       \
            BACK_RING_INIT(&hb, (struct tag##_sring *)mem, bytes);                            \
            FRONT_RING_INIT(&hf, (struct tag##_sring *)mem, bytes);                           \
            struct sx_back_ring b;                                                            \
            struct sx_front_ring f;                                                           \
            CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&b, mem, bytes, sizeof(req_t),          \
                                                      sizeof(rsp_t)), 0);                     \
            CU_ASSERT_EQUAL_FATAL(sx_front_ring_init(&f, mem, bytes, sizeof(req_t),           \
                                                     sizeof(rsp_t)), 0);                      \
            CU_ASSERT_EQUAL(b.nr_ents, RING_SIZE(&hb));                                       \
            CU_ASSERT_EQUAL(f.nr_ents, RING_SIZE(&hf));                                       \
            CU_ASSERT_EQUAL(b.nr_ents, __CONST_RING_SIZE(tag, bytes));                        \
            CU_ASSERT_EQUAL(sx_ring_nr_ents(bytes, b.entry_size), RING_SIZE(&hb));            \
            CU_ASSERT_EQUAL(b.entry_size, sizeof(union tag##_sring_entry));                   \
            CU_ASSERT_PTR_EQUAL(b.ents, (uint8_t *)RING_GET_REQUEST(&hb, 0));                 \
            CU_ASSERT_PTR_EQUAL(b.ents + (size_t)(b.nr_ents - 1) * b.entry_size,              \
                                (uint8_t *)RING_GET_REQUEST(&hb, b.nr_ents - 1));             \
            free(mem);                                                                        \
        }                                                                                     \
    } while (0)

static void test_ring_size_equals_ring_h_orders_0_to_4(void)
{
    CHECK_SIZES(blkif, struct blkif_request, struct blkif_response);
    CHECK_SIZES(netif_tx, struct netif_tx_request, struct netif_tx_response);
    CHECK_SIZES(netif_rx, struct netif_rx_request, struct netif_rx_response);
    CHECK_SIZES(xen_netif_ctrl, struct xen_netif_ctrl_request, struct xen_netif_ctrl_response);
    /* The known values, so a change in both at once would still show. */
    CU_ASSERT_EQUAL(sx_ring_nr_ents(4096, sizeof(union blkif_sring_entry)), 32);
    CU_ASSERT_EQUAL(sx_ring_nr_ents(4096 << 4, sizeof(union blkif_sring_entry)), 512);
    CU_ASSERT_EQUAL(sx_ring_nr_ents(4096, sizeof(union netif_tx_sring_entry)), 256);
    CU_ASSERT_EQUAL(sx_ring_nr_ents(4096, sizeof(union netif_rx_sring_entry)), 256);
}

static void test_front_init_is_shared_ring_init(void)
{
    void *mem = ring_mem(0);
    struct sx_front_ring f;
    CU_ASSERT_EQUAL_FATAL(sx_front_ring_init(&f, mem, 4096, sizeof(blkif_request_t),
                                             sizeof(blkif_response_t)), 0);
    blkif_sring_t *s = mem;
    CU_ASSERT_EQUAL(s->req_prod, 0);
    CU_ASSERT_EQUAL(s->rsp_prod, 0);
    CU_ASSERT_EQUAL(s->req_event, 1);
    CU_ASSERT_EQUAL(s->rsp_event, 1);
    for (size_t i = 0; i < sizeof(s->pvt.pvt_pad); i++)
        CU_ASSERT_EQUAL(s->pvt.pvt_pad[i], 0);
    for (size_t i = 0; i < sizeof(s->__pad); i++)
        CU_ASSERT_EQUAL(s->__pad[i], 0);
    CU_ASSERT_EQUAL(sx_front_ring_free_slots(&f), 32);
    free(mem);
}

/* ---- interoperation with ring.h's macros */

static void test_sx_front_talks_to_ring_h_back(void)
{
    void *mem = ring_mem(1);
    struct sx_front_ring f;
    CU_ASSERT_EQUAL_FATAL(sx_front_ring_init(&f, mem, 8192, sizeof(blkif_request_t),
                                             sizeof(blkif_response_t)), 0);
    blkif_back_ring_t hb;
    BACK_RING_INIT(&hb, (blkif_sring_t *)mem, 8192);

    for (unsigned round = 0; round < 5; round++) {   /* 5 * 40 > 64 entries: wraps */
        for (unsigned i = 0; i < 40; i++) {
            blkif_request_t q = { .operation = BLKIF_OP_READ, .id = round * 1000 + i };
            q.sector_number = i * 8;
            CU_ASSERT_EQUAL_FATAL(sx_front_ring_put_req(&f, &q), 0);
        }
        sx_front_ring_push(&f);
        RING_IDX rp = hb.sring->req_prod;
        CU_ASSERT_EQUAL(rp - hb.req_cons, 40);
        for (unsigned i = 0; hb.req_cons != rp; i++) {
            blkif_request_t q;
            RING_COPY_REQUEST(&hb, hb.req_cons, &q);
            hb.req_cons++;
            CU_ASSERT_EQUAL(q.id, round * 1000 + i);
            CU_ASSERT_EQUAL(q.sector_number, i * 8);
            blkif_response_t *p = RING_GET_RESPONSE(&hb, hb.rsp_prod_pvt);
            p->id = q.id;
            p->operation = q.operation;
            p->status = BLKIF_RSP_OKAY;
            hb.rsp_prod_pvt++;
        }
        RING_PUSH_RESPONSES(&hb);
        blkif_response_t rsp[64];
        int n = sx_front_ring_take_rsp(&f, rsp, 64);
        CU_ASSERT_EQUAL_FATAL(n, 40);
        for (int i = 0; i < n; i++)
            CU_ASSERT_EQUAL(rsp[i].id, round * 1000 + (unsigned)i);
    }
    CU_ASSERT_EQUAL(f.stats.reqs, 200);
    CU_ASSERT_EQUAL(f.stats.rsps, 200);
    free(mem);
}

static void test_ring_h_front_talks_to_sx_back(void)
{
    void *mem = ring_mem(0);
    netif_tx_front_ring_t hf;
    XEN_FRONT_RING_INIT(&hf, (netif_tx_sring_t *)mem, 4096);
    struct sx_back_ring b;
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&b, mem, 4096, sizeof(netif_tx_request_t),
                                              sizeof(netif_tx_response_t)), 0);
    CU_ASSERT_EQUAL(b.nr_ents, 256);
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < 200; i++) {
            netif_tx_request_t *q = RING_GET_REQUEST(&hf, hf.req_prod_pvt);
            q->id = (uint16_t)(round * 200 + i);
            q->size = (uint16_t)(60 + i);
            q->gref = 1000 + i;
            hf.req_prod_pvt++;
        }
        int notify;
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&hf, notify);
        (void)notify;
        netif_tx_request_t got[256];
        int n = sx_back_ring_take(&b, got, 256);
        CU_ASSERT_EQUAL_FATAL(n, 200);
        for (unsigned i = 0; i < 200; i++) {
            CU_ASSERT_EQUAL(got[i].id, round * 200 + i);
            CU_ASSERT_EQUAL(got[i].size, 60 + i);
            CU_ASSERT_EQUAL(got[i].gref, 1000 + i);
            netif_tx_response_t r = { .id = got[i].id, .status = NETIF_RSP_OKAY };
            CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b, &r), 0);
        }
        sx_back_ring_push(&b);
        for (unsigned i = 0; i < 200; i++) {
            CU_ASSERT_FATAL(RING_HAS_UNCONSUMED_RESPONSES(&hf));
            netif_tx_response_t r;
            RING_COPY_RESPONSE(&hf, hf.rsp_cons, &r);
            hf.rsp_cons++;
            CU_ASSERT_EQUAL(r.id, round * 200 + i);
        }
        CU_ASSERT_FALSE(RING_HAS_UNCONSUMED_RESPONSES(&hf));
    }
    free(mem);
}

/* ---- hostile frontend / backend */

struct pair {
    void *mem;
    struct sx_front_ring f;
    struct sx_back_ring b;
};

static void pair_open(struct pair *p, unsigned order)
{
    p->mem = ring_mem(order);
    size_t bytes = sx_ring_bytes(order);
    CU_ASSERT_EQUAL_FATAL(sx_front_ring_init(&p->f, p->mem, bytes, sizeof(blkif_request_t),
                                             sizeof(blkif_response_t)), 0);
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&p->b, p->mem, bytes, sizeof(blkif_request_t),
                                              sizeof(blkif_response_t)), 0);
}

static void pair_close(struct pair *p)
{
    sx_front_ring_detach(&p->f);
    sx_back_ring_detach(&p->b);
    free(p->mem);
}

static void put_reqs(struct pair *p, unsigned n, uint64_t first_id)
{
    for (unsigned i = 0; i < n; i++) {
        blkif_request_t q = { .operation = BLKIF_OP_WRITE, .id = first_id + i };
        CU_ASSERT_EQUAL_FATAL(sx_front_ring_put_req(&p->f, &q), 0);
    }
}

static void test_req_prod_past_ring_halts_with_eproto(void)
{
    struct pair p;
    pair_open(&p, 0);
    blkif_request_t got[64];
    /* A frontend claiming nr_ents + 1 requests. */
    SX_WRITE_ONCE(p.b.sring->req_prod, p.b.nr_ents + 1);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), -EPROTO);
    CU_ASSERT_TRUE(p.b.halted);
    CU_ASSERT_EQUAL(p.b.stats.overflows, 1);
    CU_ASSERT_EQUAL(p.b.req_cons, 0);              /* nothing was consumed */
    /* Halted stays halted even once the index looks sane again. */
    SX_WRITE_ONCE(p.b.sring->req_prod, 1);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), -EPROTO);
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&p.b), -EPROTO);
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&p.b, &(blkif_response_t){0}), -EPROTO);
    CU_ASSERT_EQUAL(sx_back_ring_push(&p.b), 0);
    CU_ASSERT_EQUAL(p.b.stats.overflows, 1);
    pair_close(&p);
}

static void test_full_ring_is_not_overflow(void)
{
    struct pair p;
    pair_open(&p, 0);
    blkif_request_t got[64];
    put_reqs(&p, p.f.nr_ents, 0);
    CU_ASSERT_EQUAL(sx_front_ring_put_req(&p.f, &(blkif_request_t){0}), -EAGAIN);
    sx_front_ring_push(&p.f);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), (int)p.b.nr_ents);
    CU_ASSERT_FALSE(p.b.halted);
    /* All nr_ents in flight, none answered: one more request is an overflow (the frontend
     * cannot have a free slot), caught by RING_REQUEST_PROD_OVERFLOW against rsp_prod_pvt. */
    SX_WRITE_ONCE(p.b.sring->req_prod, p.b.nr_ents + 1);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), -EPROTO);
    CU_ASSERT_TRUE(p.b.halted);
    pair_close(&p);
}

static void test_req_prod_moving_backwards_halts(void)
{
    struct pair p;
    pair_open(&p, 0);
    blkif_request_t got[64];
    put_reqs(&p, 5, 0);
    sx_front_ring_push(&p.f);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), 5);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&p.b, &(blkif_response_t){ .id = (uint64_t)i }), 0);
    sx_back_ring_push(&p.b);
    /* req_prod goes back by one: rp - rsp_prod_pvt wraps, as does rp - req_cons. */
    SX_WRITE_ONCE(p.b.sring->req_prod, 4);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), -EPROTO);
    CU_ASSERT_TRUE(p.b.halted);
    pair_close(&p);
}

static void test_req_prod_behind_cons_with_responses_pending_halts(void)
{
    /* rp - rsp_prod_pvt looks legal, only rp - req_cons shows the bogus index. */
    struct pair p;
    pair_open(&p, 0);
    blkif_request_t got[64];
    put_reqs(&p, 10, 0);
    sx_front_ring_push(&p.f);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), 10);
    SX_WRITE_ONCE(p.b.sring->req_prod, 9);     /* 9 - 0 <= 32, but 9 - 10 wraps */
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), -EPROTO);
    pair_close(&p);
}

static void test_take_copies_once(void)
{
    struct pair p;
    pair_open(&p, 0);
    put_reqs(&p, 3, 7);
    sx_front_ring_push(&p.f);
    blkif_request_t got[3];
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_take(&p.b, got, 3), 3);
    /* The frontend rewrites the slots after the backend took them. */
    blkif_sring_t *s = p.mem;
    for (int i = 0; i < 3; i++) {
        s->ring[i].req.id = 99;
        s->ring[i].req.operation = BLKIF_OP_DISCARD;
    }
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(got[i].id, 7 + (uint64_t)i);
        CU_ASSERT_EQUAL(got[i].operation, BLKIF_OP_WRITE);
    }
    /* And they are not handed out again. */
    blkif_request_t again[3];
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, again, 3), 0);
    CU_ASSERT_EQUAL(p.b.stats.reqs, 3);
    pair_close(&p);
}

static void test_take_respects_max(void)
{
    struct pair p;
    pair_open(&p, 0);
    put_reqs(&p, 10, 0);
    sx_front_ring_push(&p.f);
    blkif_request_t got[10];
    memset(got, 0xee, sizeof(got));
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 4), 4);
    CU_ASSERT_EQUAL(got[4].id, 0xeeeeeeeeeeeeeeeeull);   /* nothing written past max */
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 10), 6);
    CU_ASSERT_EQUAL(got[0].id, 4);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 10), 0);
    pair_close(&p);
}

static void test_put_rsp_beyond_requests_refused(void)
{
    struct pair p;
    pair_open(&p, 0);
    blkif_response_t r = { .id = 1 };
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&p.b, &r), -ENOSPC);
    put_reqs(&p, 1, 0);
    sx_front_ring_push(&p.f);
    blkif_request_t q;
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, &q, 1), 1);
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&p.b, &r), 0);
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&p.b, &r), -ENOSPC);
    pair_close(&p);
}

static void test_rsp_prod_past_requests_halts_front(void)
{
    struct pair p;
    pair_open(&p, 0);
    blkif_response_t rsp[8];
    put_reqs(&p, 2, 0);
    sx_front_ring_push(&p.f);
    put_reqs(&p, 1, 2);                    /* written but not pushed: the backend cannot know */
    SX_WRITE_ONCE(p.f.sring->rsp_prod, 3);
    CU_ASSERT_EQUAL(sx_front_ring_take_rsp(&p.f, rsp, 8), -EPROTO);
    CU_ASSERT_TRUE(p.f.halted);
    CU_ASSERT_EQUAL(p.f.stats.overflows, 1);
    CU_ASSERT_EQUAL(sx_front_ring_final_check(&p.f), -EPROTO);
    CU_ASSERT_EQUAL(sx_front_ring_put_req(&p.f, &(blkif_request_t){0}), -EPROTO);
    pair_close(&p);

    /* The legal limit: exactly as many responses as published requests. */
    pair_open(&p, 0);
    put_reqs(&p, 2, 0);
    sx_front_ring_push(&p.f);
    SX_WRITE_ONCE(p.f.sring->rsp_prod, 2);
    CU_ASSERT_EQUAL(sx_front_ring_take_rsp(&p.f, rsp, 8), 2);
    /* rsp_prod moving backwards. */
    SX_WRITE_ONCE(p.f.sring->rsp_prod, 1);
    CU_ASSERT_EQUAL(sx_front_ring_take_rsp(&p.f, rsp, 8), -EPROTO);
    pair_close(&p);
}

/* ---- notification */

static void test_final_check_then_request_notifies(void)
{
    struct pair p;
    pair_open(&p, 0);
    blkif_request_t got[64];
    put_reqs(&p, 3, 0);
    CU_ASSERT_EQUAL(sx_front_ring_push(&p.f), 1);          /* req_event = 1 initially */
    /* Work pending: final check says so without arming. */
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&p.b), 1);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), 3);
    /* Drained: it arms req_event = req_cons + 1 and says sleep. */
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&p.b), 0);
    CU_ASSERT_EQUAL(p.b.sring->req_event, 4);
    /* A request produced now must be notified: the sleeper is woken. */
    put_reqs(&p, 1, 3);
    CU_ASSERT_EQUAL(sx_front_ring_push(&p.f), 1);
    /* Another one before the backend ran: no second notification. */
    put_reqs(&p, 1, 4);
    CU_ASSERT_EQUAL(sx_front_ring_push(&p.f), 0);
    CU_ASSERT_EQUAL(p.f.stats.notifies, 2);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), 2);
    CU_ASSERT_EQUAL(got[0].id, 3);
    CU_ASSERT_EQUAL(got[1].id, 4);
    /* Without a final check the backend asked for nothing: no notify. */
    put_reqs(&p, 1, 5);
    CU_ASSERT_EQUAL(sx_front_ring_push(&p.f), 0);
    /* Final check finds the un-notified request (no lost work). */
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&p.b), 1);
    pair_close(&p);
}

static void test_final_check_sees_request_racing_with_arm(void)
{
    /* The frontend pushed (and read the old req_event, so did not notify) just before the
     * backend armed: the re-check after the barrier must find it. Simulated by publishing
     * req_prod without running the frontend's notify check. */
    struct pair p;
    pair_open(&p, 0);
    blkif_request_t got[64];
    put_reqs(&p, 2, 0);
    sx_front_ring_push(&p.f);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), 2);
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&p.b), 0);
    put_reqs(&p, 1, 2);
    SX_WRITE_ONCE(p.f.sring->req_prod, p.f.req_prod_pvt);   /* published, not yet notified */
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&p.b), 1);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 64), 1);
    pair_close(&p);
}

static void test_response_batch_notifies_once(void)
{
    struct pair p;
    pair_open(&p, 1);   /* 64 entries */
    blkif_request_t got[64];
    blkif_response_t rsp[64];

    for (int batch = 0; batch < 3; batch++) {
        put_reqs(&p, 32, (uint64_t)batch * 32);
        sx_front_ring_push(&p.f);
        CU_ASSERT_EQUAL_FATAL(sx_back_ring_take(&p.b, got, 64), 32);
        uint64_t before = p.b.stats.notifies;
        for (int i = 0; i < 32; i++) {
            blkif_response_t r = { .id = got[i].id, .status = BLKIF_RSP_OKAY };
            CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&p.b, &r), 0);
        }
        CU_ASSERT_EQUAL(p.b.sring->rsp_prod, (RING_IDX)batch * 32);   /* nothing visible yet */
        int notify = sx_back_ring_push(&p.b);
        CU_ASSERT_EQUAL(p.b.sring->rsp_prod, (RING_IDX)(batch + 1) * 32);
        CU_ASSERT_EQUAL(sx_back_ring_push(&p.b), 0);       /* nothing new: no notify */
        if (batch == 1) {
            /* The frontend did not run its final check after batch 0 (rsp_event still 1):
             * it is not waiting, so no notification. */
            CU_ASSERT_EQUAL(notify, 0);
        } else {
            /* batch 0: rsp_event = 1 in (0, 32]; batch 2: the frontend armed rsp_event =
             * rsp_cons + 1 = 65 in (64, 96]. One notification for the batch of 32. */
            CU_ASSERT_EQUAL(notify, 1);
            CU_ASSERT_EQUAL(p.b.stats.notifies, before + 1);
        }
        CU_ASSERT_EQUAL(sx_front_ring_take_rsp(&p.f, rsp, 64), 32);
        CU_ASSERT_EQUAL(rsp[0].id, (uint64_t)batch * 32);
        CU_ASSERT_EQUAL(rsp[31].id, (uint64_t)batch * 32 + 31);
        if (batch == 1) {
            CU_ASSERT_EQUAL(sx_front_ring_final_check(&p.f), 0);
            CU_ASSERT_EQUAL(p.f.sring->rsp_event, 65);
        }
    }
    CU_ASSERT_EQUAL(p.b.stats.notifies, 2);
    CU_ASSERT_EQUAL(p.b.stats.pushes, 3);
    pair_close(&p);
}

static void test_request_batch_notifies_once(void)
{
    struct pair p;
    pair_open(&p, 0);
    blkif_request_t got[32];
    put_reqs(&p, 16, 0);
    CU_ASSERT_EQUAL(sx_front_ring_push(&p.f), 1);
    CU_ASSERT_EQUAL(p.f.stats.notifies, 1);
    CU_ASSERT_EQUAL(p.f.stats.pushes, 1);
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, got, 32), 16);
    /* The backend armed req_event in the middle of a future batch (ring.h allows any value):
     * the push whose range covers it notifies, the others do not. */
    SX_WRITE_ONCE(p.b.sring->req_event, 16 + 12);
    put_reqs(&p, 8, 16);
    CU_ASSERT_EQUAL(sx_front_ring_push(&p.f), 0);       /* 17..24 */
    put_reqs(&p, 8, 24);
    CU_ASSERT_EQUAL(sx_front_ring_push(&p.f), 1);       /* 25..32 covers 28 */
    pair_close(&p);
}

/* ---- indexes near 2^32 */

static void test_indexes_wrap_2_32(void)
{
    struct pair p;
    pair_open(&p, 0);
    RING_IDX start = 0xfffffff0u;
    SX_WRITE_ONCE(p.f.sring->req_prod, start);
    SX_WRITE_ONCE(p.f.sring->rsp_prod, start);
    p.f.req_prod_pvt = p.f.rsp_cons = p.f.req_pushed = start;
    p.b.req_cons = p.b.rsp_prod_pvt = p.b.rsp_pushed = start;
    uint64_t id = 0;
    blkif_request_t got[32];
    blkif_response_t rsp[32];
    for (int round = 0; round < 4; round++) {
        put_reqs(&p, 20, id);
        sx_front_ring_push(&p.f);
        int n = sx_back_ring_take(&p.b, got, 32);
        CU_ASSERT_EQUAL_FATAL(n, 20);
        for (int i = 0; i < n; i++) {
            CU_ASSERT_EQUAL(got[i].id, id + (uint64_t)i);
            CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&p.b, &(blkif_response_t){ .id = got[i].id }), 0);
        }
        sx_back_ring_push(&p.b);
        CU_ASSERT_EQUAL_FATAL(sx_front_ring_take_rsp(&p.f, rsp, 32), 20);
        for (int i = 0; i < 20; i++)
            CU_ASSERT_EQUAL(rsp[i].id, id + (uint64_t)i);
        id += 20;
    }
    CU_ASSERT_TRUE(p.b.req_cons < start);   /* really wrapped */
    CU_ASSERT_FALSE(p.b.halted);
    CU_ASSERT_FALSE(p.f.halted);
    pair_close(&p);
}

/* ---- size validation */

static void test_attach_rejects_bad_sizes(void)
{
    void *mem = aligned_alloc(4096, 4096u << 5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
    struct sx_back_ring b;
    struct sx_front_ring f;
    size_t q = sizeof(blkif_request_t), s = sizeof(blkif_response_t);
    for (unsigned order = 0; order <= 4; order++) {
        CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 4096u << order, q, s), 0);
        CU_ASSERT_EQUAL(b.nr_ents, 32u << order);
        CU_ASSERT_EQUAL(sx_front_ring_init(&f, mem, 4096u << order, q, s), 0);
        CU_ASSERT_EQUAL(f.nr_ents, 32u << order);
    }
    CU_ASSERT_EQUAL(sx_ring_bytes(5), 0);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 4096u << 5, q, s), -EINVAL);     /* order 5 */
    CU_ASSERT_EQUAL(sx_front_ring_init(&f, mem, 4096u << 5, q, s), -EINVAL);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 3 * 4096, q, s), -EINVAL);       /* not 2^n */
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 2048, q, s), -EINVAL);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 0, q, s), -EINVAL);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, NULL, 4096, q, s), -EINVAL);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, (uint8_t *)mem + 1, 4096, q, s), -EINVAL);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 4096, 0, s), -EINVAL);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 4096, q, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 4096, 4096, s), -EINVAL);        /* no entry fits */
    CU_ASSERT_EQUAL(sx_back_ring_attach(&b, mem, 4096, 4096 - 64, s), 0);         /* one fits */
    CU_ASSERT_EQUAL(b.nr_ents, 1);
    CU_ASSERT_EQUAL(sx_back_ring_attach(NULL, mem, 4096, q, s), -EINVAL);
    sx_back_ring_detach(NULL);
    sx_front_ring_detach(NULL);
    sx_back_ring_detach(&b);
    sx_back_ring_detach(&b);
    CU_ASSERT_EQUAL(sx_back_ring_take(&b, NULL, 0), -EPROTO);   /* detached: no shared access */
    free(mem);
}

/* ---- adaptive polling */

static bool never(void *arg)
{
    (*(unsigned *)arg)++;
    return false;
}

static bool after_100_calls(void *arg)
{
    return ++*(unsigned *)arg >= 100;
}

static void test_spin_budget(void)
{
    unsigned calls = 0;
    CU_ASSERT_FALSE(sx_idle_spin_budget(never, &calls, 0));
    CU_ASSERT_EQUAL(calls, 1);                        /* budget 0: one look, no spin */
    calls = 0;
    uint64_t t0 = sx_now_ns();
    CU_ASSERT_FALSE(sx_idle_spin_budget(never, &calls, 200000));
    uint64_t dt = sx_now_ns() - t0;
    CU_ASSERT_TRUE(dt >= 200000);                     /* spun the whole budget */
    CU_ASSERT_TRUE(dt < 1000000000ull);               /* and stopped */
    CU_ASSERT_TRUE(calls > 1);
    calls = 0;
    CU_ASSERT_TRUE(sx_idle_spin_budget(after_100_calls, &calls, 1000000000ull));
    CU_ASSERT_EQUAL(calls, 100);                      /* stopped as soon as it held */

    /* Ring predicates. */
    struct pair p;
    pair_open(&p, 0);
    CU_ASSERT_FALSE(sx_idle_spin_budget(sx_back_ring_pred, &p.b, 1000));
    put_reqs(&p, 1, 0);
    CU_ASSERT_FALSE(sx_back_ring_pred(&p.b));         /* written, not pushed */
    sx_front_ring_push(&p.f);
    CU_ASSERT_TRUE(sx_idle_spin_budget(sx_back_ring_pred, &p.b, 1000));
    blkif_request_t q;
    CU_ASSERT_EQUAL(sx_back_ring_take(&p.b, &q, 1), 1);
    CU_ASSERT_FALSE(sx_front_ring_pred(&p.f));
    sx_back_ring_put_rsp(&p.b, &(blkif_response_t){ .id = 0 });
    sx_back_ring_push(&p.b);
    CU_ASSERT_TRUE(sx_front_ring_pred(&p.f));
    pair_close(&p);
}

static void test_spin_ns_from_env(void)
{
    /* First call in this process reads the variable. */
    setenv("SPLITXEN_SPIN_NS", "12345", 1);
    CU_ASSERT_EQUAL(sx_ring_spin_ns(), 12345);
    setenv("SPLITXEN_SPIN_NS", "999", 1);
    CU_ASSERT_EQUAL(sx_ring_spin_ns(), 12345);        /* read once */
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_spin_ns_from_env),
    SX_TEST(test_ring_h_barriers_are_c11_fences),
    SX_TEST(test_header_layout_matches_ring_h),
    SX_TEST(test_ring_size_equals_ring_h_orders_0_to_4),
    SX_TEST(test_front_init_is_shared_ring_init),
    SX_TEST(test_sx_front_talks_to_ring_h_back),
    SX_TEST(test_ring_h_front_talks_to_sx_back),
    SX_TEST(test_req_prod_past_ring_halts_with_eproto),
    SX_TEST(test_full_ring_is_not_overflow),
    SX_TEST(test_req_prod_moving_backwards_halts),
    SX_TEST(test_req_prod_behind_cons_with_responses_pending_halts),
    SX_TEST(test_take_copies_once),
    SX_TEST(test_take_respects_max),
    SX_TEST(test_put_rsp_beyond_requests_refused),
    SX_TEST(test_rsp_prod_past_requests_halts_front),
    SX_TEST(test_final_check_then_request_notifies),
    SX_TEST(test_final_check_sees_request_racing_with_arm),
    SX_TEST(test_response_batch_notifies_once),
    SX_TEST(test_request_batch_notifies_once),
    SX_TEST(test_indexes_wrap_2_32),
    SX_TEST(test_attach_rejects_bad_sizes),
    SX_TEST(test_spin_budget),
};

SX_TEST_MAIN("ring", cases, NULL, NULL)
