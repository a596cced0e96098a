/* 16550A register behaviour through the device model's port dispatch (no ioreq server: the
 * accesses go straight to sx_dm_read/sx_dm_write as the ioreq handler would pass them). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "device-model/dm.h"
#include "tests/sxtest.h"

#define COM1 0x3f8
#define RBR 0
#define THR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static struct sx_dm *dm;
static struct sx_uart *uart;
static int pipefd[2];

static uint8_t rd(unsigned reg) { return (uint8_t)sx_dm_read(dm, IOREQ_TYPE_PIO, COM1 + reg, 1); }
static void wr(unsigned reg, uint8_t v) { sx_dm_write(dm, IOREQ_TYPE_PIO, COM1 + reg, v, 1); }

static void setup(void)
{
    CU_ASSERT_FATAL(pipe2(pipefd, O_NONBLOCK) == 0);
    CU_ASSERT_FATAL(sx_dm_open(&dm, 7) == 0);
    CU_ASSERT_FATAL(sx_uart_add(dm, COM1, 4, pipefd[1], &uart) == 0);
}

static void teardown(void)
{
    sx_dm_close(dm);
    dm = NULL;
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_reset_state(void)
{
    setup();
    CU_ASSERT_EQUAL(rd(LSR), 0x60);           /* THRE | TEMT, no data */
    CU_ASSERT_EQUAL(rd(IIR), 0x01);           /* no interrupt, FIFOs off */
    CU_ASSERT_EQUAL(rd(IER), 0x00);
    CU_ASSERT_EQUAL(rd(LCR), 0x03);
    teardown();
}

static void test_thr_write_goes_out_and_lsr_empty(void)
{
    setup();
    const char *s = "hello";
    for (const char *p = s; *p; p++) {
        CU_ASSERT(rd(LSR) & 0x20);
        wr(THR, (uint8_t)*p);
        CU_ASSERT_EQUAL(rd(LSR) & 0x60, 0x60);   /* sent at once: THRE and TEMT again */
    }
    char buf[16] = { 0 };
    CU_ASSERT_EQUAL(read(pipefd[0], buf, sizeof(buf)), 5);
    CU_ASSERT_STRING_EQUAL(buf, "hello");
    CU_ASSERT_EQUAL(sx_uart_stats(uart)->tx_bytes, 5);
    /* Nothing received: RBR reads 0 and DR stays clear. */
    CU_ASSERT_EQUAL(rd(RBR), 0);
    CU_ASSERT_FALSE(rd(LSR) & 0x01);
    teardown();
}

static void test_divisor_latch(void)
{
    setup();
    wr(IER, 0x05);
    wr(LCR, 0x83);                 /* DLAB */
    wr(0, 0x01);                   /* DLL: 115200 */
    wr(1, 0x02);                   /* DLM */
    CU_ASSERT_EQUAL(rd(0), 0x01);
    CU_ASSERT_EQUAL(rd(1), 0x02);
    char c;
    CU_ASSERT_EQUAL(read(pipefd[0], &c, 1), -1);   /* the DLL write was not transmitted */
    wr(LCR, 0x03);
    CU_ASSERT_EQUAL(rd(IER), 0x05);                 /* IER untouched by the DLM write */
    wr(LCR, 0x83);
    CU_ASSERT_EQUAL(rd(1), 0x02);                   /* and DLM by the IER view */
    wr(LCR, 0x03);
    wr(SCR, 0x5a);
    CU_ASSERT_EQUAL(rd(SCR), 0x5a);
    teardown();
}

static void test_loopback_receives_own_bytes(void)
{
    setup();
    wr(MCR, 0x10 | 0x03);          /* LOOP, RTS, DTR */
    wr(THR, 'x');
    CU_ASSERT_EQUAL(rd(LSR) & 0x61, 0x61);
    CU_ASSERT_EQUAL(rd(RBR), 'x');
    CU_ASSERT_FALSE(rd(LSR) & 0x01);
    char c;
    CU_ASSERT_EQUAL(read(pipefd[0], &c, 1), -1);   /* nothing left the chip */
    /* MSR inputs follow MCR: CTS = RTS, DSR = DTR, RI = OUT1, DCD = OUT2. */
    wr(MCR, 0x10 | 0x02);
    uint8_t msr = rd(MSR);
    CU_ASSERT_EQUAL(msr & 0xf0, 0x10);
    CU_ASSERT(msr & 0x02);                           /* DSR changed */
    CU_ASSERT_EQUAL(rd(MSR) & 0x0f, 0);              /* deltas cleared by the read */
    wr(MCR, 0x10 | 0x0c);
    CU_ASSERT_EQUAL(rd(MSR) & 0xf0, 0xc0);
    teardown();
}

static void test_iir_priorities_and_clearing(void)
{
    setup();
    wr(MCR, 0x10);                 /* loopback */
    wr(IER, 0x0f);                 /* all four sources */
    /* Enabling ETBEI with THR empty raises THRE at once. */
    CU_ASSERT_EQUAL(rd(IIR), 0x02);
    /* Reading IIR that reported THRE cleared it; modem status is next (loopback deltas). */
    CU_ASSERT_EQUAL(rd(IIR), 0x00);
    CU_ASSERT_EQUAL(rd(MSR) & 0x0b, 0x0b);           /* CTS, DSR, DCD dropped entering loop */
    CU_ASSERT_EQUAL(rd(IIR), 0x01);
    /* Received data beats THRE. */
    wr(THR, 'a');
    CU_ASSERT_EQUAL(rd(IIR), 0x04);
    /* A second byte without FIFO overruns the holding register: line status beats data. */
    wr(THR, 'b');
    CU_ASSERT_EQUAL(rd(IIR), 0x06);
    CU_ASSERT(rd(LSR) & 0x02);                       /* OE, cleared by this read */
    CU_ASSERT_FALSE(rd(LSR) & 0x02);
    CU_ASSERT_EQUAL(rd(IIR), 0x04);
    CU_ASSERT_EQUAL(rd(RBR), 'b');
    /* Data gone: THRE (still latched from the writes) is next, cleared by reading IIR. */
    CU_ASSERT_EQUAL(rd(IIR), 0x02);
    CU_ASSERT_EQUAL(rd(IIR), 0x01);
    /* Writing THR also clears a pending THRE until the byte is sent (instantly: set again). */
    wr(IER, 0x00);
    CU_ASSERT_EQUAL(rd(IIR), 0x01);                  /* disabled sources report nothing */
    teardown();
}

static void test_fifo_trigger_and_timeout_id(void)
{
    setup();
    wr(FCR, 0xc7);                 /* FIFO on, clear both, trigger 14 */
    CU_ASSERT_EQUAL(rd(IIR) & 0xc0, 0xc0);
    wr(MCR, 0x10);
    wr(IER, 0x01);
    wr(THR, '0');
    CU_ASSERT_EQUAL(rd(IIR), 0xcc);                  /* below the trigger: timeout id */
    for (int i = 1; i < 14; i++)
        wr(THR, (uint8_t)('0' + i));
    CU_ASSERT_EQUAL(rd(IIR), 0xc4);                  /* at the trigger: data available */
    for (int i = 14; i < 16; i++)
        wr(THR, 'z');
    CU_ASSERT_FALSE(rd(LSR) & 0x02);                 /* 16 fit */
    wr(THR, '!');
    CU_ASSERT(rd(LSR) & 0x02);                       /* the 17th overruns */
    CU_ASSERT_EQUAL(rd(RBR), '0');                   /* order kept, overrun byte dropped */
    for (int i = 1; i < 16; i++)
        rd(RBR);
    CU_ASSERT_FALSE(rd(LSR) & 0x01);
    CU_ASSERT_EQUAL(sx_uart_stats(uart)->rx_overruns, 1);
    /* FCR clear-RX empties the FIFO. */
    wr(THR, 'q');
    wr(FCR, 0xc3);
    CU_ASSERT_FALSE(rd(LSR) & 0x01);
    teardown();
}

static void test_receive_from_line(void)
{
    setup();
    CU_ASSERT_EQUAL(sx_uart_receive(uart, "ab", 2), 1);   /* no FIFO: one byte holds */
    wr(FCR, 0x01);
    CU_ASSERT_EQUAL(rd(LSR) & 0x01, 0);                    /* FIFO mode change cleared it */
    CU_ASSERT_EQUAL(sx_uart_receive(uart, "0123456789abcdefXYZ", 19), 16);
    CU_ASSERT_EQUAL(rd(RBR), '0');
    teardown();
}

static void test_wide_access_floats(void)
{
    setup();
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, COM1 + LSR, 2), 0xffff);
    sx_dm_write(dm, IOREQ_TYPE_PIO, COM1, 0x4141, 2);
    char c;
    CU_ASSERT_EQUAL(read(pipefd[0], &c, 1), -1);
    /* An access straddling the end of the region is nobody's. */
    uint64_t before = sx_dm_stats(dm)->unclaimed;
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, COM1 + 7, 2), 0xffff);
    CU_ASSERT_EQUAL(sx_dm_stats(dm)->unclaimed, before + 1);
    teardown();
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_reset_state),
    SX_TEST(test_thr_write_goes_out_and_lsr_empty),
    SX_TEST(test_divisor_latch),
    SX_TEST(test_loopback_receives_own_bytes),
    SX_TEST(test_iir_priorities_and_clearing),
    SX_TEST(test_fifo_trigger_and_timeout_id),
    SX_TEST(test_receive_from_line),
    SX_TEST(test_wide_access_floats),
};

SX_TEST_MAIN("uart", cases, NULL, NULL)
