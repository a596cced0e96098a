/*
 * The emulated e1000's descriptor rings (device-model/e1000/): guest memory holding tx and rx
 * rings and buffers comes from the input, then a program of register writes (ring bases,
 * lengths, heads and tails, controls, context and offload settings) and frames from the world
 * side, whose socket the device writes its transmitted frames to. The NIC is reset (CTRL.RST)
 * at the start of each input. Beside memory safety: every frame handed to the world is at most
 * SX_E1000_MAX_FRAME bytes and carries a virtio-net header the device could have written
 * (checksum offsets inside the frame).
 */
#include "tests/fuzz/dmenv.h"

#include <sys/socket.h>
#include <unistd.h>

#include "device-model/e1000/e1000.h"
#include "netdev/tap.h"

#define BAR0 0xf0000000ull
#define DEVFN (3 << 3)

static struct sx_e1000 *NIC;
static int world[2] = { -1, -1 };    /* [0] the device's, [1] ours */

static void wr(uint32_t reg, uint32_t v) { sx_dm_write(DM, IOREQ_TYPE_COPY, BAR0 + reg, v, 4); }
static uint32_t rd(uint32_t reg) { return (uint32_t)sx_dm_read(DM, IOREQ_TYPE_COPY, BAR0 + reg, 4); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dmenv_open();
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, world))
        abort();
    struct sx_e1000_cfg cfg = { .devfn = DEVFN, .has_mac = true, .use_world_fd = true,
                                .world_fd = world[0], .no_watch = true,
                                .mac = { 0x00, 0x16, 0x3e, 0x12, 0x34, 0x56 } };
    if (sx_e1000_add(DM, &cfg, &NIC))
        abort();
    dmenv_connect();
    cfg_wr(DEVFN, 0x10, (uint32_t)BAR0, 4);
    cfg_wr(DEVFN, 0x04, 0x7, 2);
    return 0;
}

/* What the device sent: each frame checked, then dropped. */
static void drain_world(void)
{
    static uint8_t buf[SX_TAP_VNET_HDR_LEN + SX_E1000_MAX_FRAME + 16];
    ssize_t n;
    while ((n = recv(world[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        FUZZ_CHECK(n >= SX_TAP_VNET_HDR_LEN);
        size_t len = (size_t)n - SX_TAP_VNET_HDR_LEN;
        FUZZ_CHECK(len <= SX_E1000_MAX_FRAME);
        const struct virtio_net_hdr_v1 *vh = (const void *)buf;
        if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            FUZZ_CHECK((size_t)vh->csum_start + vh->csum_offset + 2 <= len);
    }
}

/* Registers a program may write (the ring and control ones; others are plain storage). */
static const uint16_t regs[] = { 0x0000, 0x00c8, 0x00d0, 0x00d8, 0x0100, 0x0400, 0x2800,
                                 0x2804, 0x2808, 0x2810, 0x2818, 0x3800, 0x3804, 0x3808,
                                 0x3810, 0x3818, 0x5400, 0x5404, 0x5200 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    wr(0x0000, rd(0x0000) | (1u << 26));          /* CTRL.RST */
    /* Rings and the first buffers from the input; the buffers above them zero (an input
     * stays small: libFuzzer mutates a 32 KiB input several times slower). */
    fuzz_take(&in, GMEM, 0x2000);
    memset(GMEM + 0x2000, 0, 0x8000 - 0x2000);
    /* A sane start the program can break: rings at G_BASE, 8 descriptors each. */
    wr(0x3800, (uint32_t)G_BASE);
    wr(0x3808, 128);
    wr(0x2800, (uint32_t)G_BASE + 0x1000);
    wr(0x2808, 128);
    wr(0x0400, 1u << 1);                           /* TCTL.EN */
    for (unsigned step = 0; step < 48 && in.n; step++) {
        uint8_t op = fuzz_u8(&in);
        if (op < 0xd0) {
            uint32_t v = fuzz_u32(&in);
            wr(regs[op % (sizeof(regs) / sizeof(regs[0]))], v);
        } else if (op < 0xf0) {
            /* A frame from the world: a vnet header and 14 to 2054 bytes. */
            static uint8_t f[SX_TAP_VNET_HDR_LEN + 14 + 255 * 8];
            size_t len = SX_TAP_VNET_HDR_LEN + 14 + fuzz_u8(&in) * 8u;
            fuzz_take(&in, f, len);
            if (send(world[1], f, len, MSG_DONTWAIT) > 0)
                sx_e1000_poll(NIC);
        } else {
            (void)rd(0x00c0);                      /* ICR: read to clear */
        }
        drain_world();
    }
    sx_e1000_poll(NIC);
    drain_world();
    /* Whatever the world sent and the device holds goes before the next input. */
    static uint8_t junk[4096];
    while (recv(world[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
        ;
    return 0;
}
