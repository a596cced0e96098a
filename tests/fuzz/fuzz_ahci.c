/*
 * The emulated AHCI controller's command lists, command tables and PRDs (device-model/ahci/):
 * the guest memory holding them comes from the input, then a program of register writes (the
 * port's CI and SACT among them) and engine completions; the disk is a 1 MiB file on the
 * synchronous engine. The controller is reset (GHC.HR) and brought up at the start of each
 * input. Beside memory safety: nothing is written past the disk's end (the image keeps its
 * size).
 */
#include "tests/fuzz/dmenv.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device-model/ahci/ahci.h"

#define ABAR 0xf0100000ull
#define P(x) (0x100 + (x))
#define DISK_BYTES (1u << 20)

static struct sx_ahci *A;
static unsigned devfn;
static char img[64];

static uint32_t rd(unsigned off) { return (uint32_t)sx_dm_read(DM, IOREQ_TYPE_COPY, ABAR + off, 4); }
static void wr(unsigned off, uint32_t v) { sx_dm_write(DM, IOREQ_TYPE_COPY, ABAR + off, v, 4); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dmenv_open();
    snprintf(img, sizeof(img), "/tmp/sx-fuzz-ahci.%d", (int)getpid());
    int fd = open(img, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, DISK_BYTES) < 0)
        abort();
    close(fd);
    struct sx_ahci_cfg c = { .path = img, .devfn = -1, .engine = SX_BIO_SYNC, .no_direct = true,
                             .serial = "FUZZ" };
    if (sx_ahci_add(DM, &c, &A))
        abort();
    devfn = sx_pci_devfn(sx_ahci_pci(A));
    dmenv_connect();
    cfg_wr(devfn, 0x24, (uint32_t)ABAR, 4);
    cfg_wr(devfn, 0x04, 0x6, 2);
    return 0;
}

/* Registers a program may write: host control and port 0's. */
static const uint16_t regs[] = { 0x04, 0x08, P(0x00), P(0x04), P(0x08), P(0x0c), P(0x10), P(0x14),
                                 P(0x18), P(0x2c), P(0x30), P(0x34), P(0x38) };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    /* Reset, then what a driver does: lists in guest memory, FIS receive, start. */
    wr(0x04, 1u << 31 | 1);
    while (sx_ahci_inflight(A))
        sx_ahci_poll(A, 10);
    /* List, FIS area, command tables and PRDs from the input; the buffers above them zero
     * (an input stays small: libFuzzer mutates a 64 KiB input a tenth as fast). */
    fuzz_take(&in, GMEM, 0x2000);
    memset(GMEM + 0x2000, 0, 0x10000 - 0x2000);
    wr(P(0x00), (uint32_t)G_BASE);
    wr(P(0x04), 0);
    wr(P(0x08), (uint32_t)G_BASE + 0x400);
    wr(P(0x0c), 0);
    wr(P(0x18), rd(P(0x18)) | (1u << 4));
    wr(P(0x10), UINT32_MAX);
    wr(0x04, 1u << 31 | 2);
    wr(P(0x18), rd(P(0x18)) | 1);
    for (unsigned step = 0; step < 32 && in.n; step++) {
        uint8_t op = fuzz_u8(&in);
        uint32_t v = fuzz_u32(&in);
        if (op < 0xc0) {
            wr(regs[op % (sizeof(regs) / sizeof(regs[0]))], v);
        } else if (op < 0xe0) {
            wr(P(0x38), v);                         /* issue commands */
        } else {
            sx_ahci_poll(A, 0);
        }
    }
    for (int i = 0; i < 8 && sx_ahci_inflight(A); i++)
        sx_ahci_poll(A, 10);
    struct stat sb;
    FUZZ_CHECK(stat(img, &sb) == 0 && sb.st_size == DISK_BYTES);
    return 0;
}
