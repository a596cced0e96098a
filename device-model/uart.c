/*
 * A 16550A UART (National Semiconductor PC16550D data sheet): THR/RBR, IER, IIR/FCR with the
 * 16-byte FIFOs and the interrupt identification priorities, LCR with the divisor latch
 * (DLAB), MCR with loopback, LSR, MSR, SCR. Transmission is instantaneous: a byte written to
 * THR goes to the output fd (the console log) at once and THR/TSR are empty again. The
 * interrupt output follows the PC wiring: it reaches the ISA line only while MCR.OUT2 is set
 * and not in loopback (where the OUT2 pin is inactive).
 */
#define SX_LOG_MODULE "uart"
#include "device-model/dm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define FIFO_SIZE 16

#define IER_ERBFI 0x01   /* received data available */
#define IER_ETBEI 0x02   /* THR empty */
#define IER_ELSI  0x04   /* receiver line status */
#define IER_EDSSI 0x08   /* modem status */

#define IIR_NONE 0x01
#define IIR_RLS  0x06
#define IIR_RDA  0x04
#define IIR_CTI  0x0c
#define IIR_THRE 0x02
#define IIR_MSI  0x00
#define IIR_FIFO 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLR_RX 0x02
#define FCR_CLR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_PE   0x04
#define LSR_FE   0x08
#define LSR_BI   0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80

struct sx_uart {
    struct sx_dm_dev *dev;
    uint8_t irq;
    int out_fd;
    uint8_t rx[FIFO_SIZE];
    unsigned rx_head, rx_count;
    uint8_t ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
    bool thr_ipending;      /* THRE interrupt latched, cleared by reading IIR or writing THR */
    struct sx_uart_stats st;
};

static unsigned rx_trigger(const struct sx_uart *u)
{
    static const unsigned lv[4] = { 1, 4, 8, 14 };
    return lv[u->fcr >> 6];
}

/* The highest-priority pending interrupt, as IIR bits 0..3. */
static uint8_t pending_iir(const struct sx_uart *u)
{
    if ((u->ier & IER_ELSI) && (u->lsr & LSR_ERRS))
        return IIR_RLS;
    if ((u->ier & IER_ERBFI) && (u->lsr & LSR_DR)) {
        if (!(u->fcr & FCR_ENABLE) || u->rx_count >= rx_trigger(u))
            return IIR_RDA;
        /* Below the trigger level: the character timeout indication (data waits). */
        return IIR_CTI;
    }
    if ((u->ier & IER_ETBEI) && u->thr_ipending)
        return IIR_THRE;
    if ((u->ier & IER_EDSSI) && (u->msr & 0x0f))
        return IIR_MSI;
    return IIR_NONE;
}

static void update_irq(struct sx_uart *u)
{
    /* OUT2 gates the PC's IRQ driver; in loopback the OUT2 pin is inactive. */
    bool level = pending_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP);
    sx_dm_dev_set_isa_irq(u->dev, u->irq, level);
}

static void rx_push(struct sx_uart *u, uint8_t b)
{
    unsigned cap = (u->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
    if (u->rx_count >= cap) {
        u->lsr |= LSR_OE;   /* the new byte is lost (FIFO) / overwrites the holding register */
        u->st.rx_overruns++;
        if (cap == 1)
            u->rx[u->rx_head] = b;
        return;
    }
    u->rx[(u->rx_head + u->rx_count) % FIFO_SIZE] = b;
    u->rx_count++;
    u->lsr |= LSR_DR;
    u->st.rx_bytes++;
}

static void rx_clear(struct sx_uart *u)
{
    u->rx_head = u->rx_count = 0;
    u->lsr &= (uint8_t)~LSR_DR;
}

/* MSR inputs in loopback follow MCR (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2); otherwise the line
 * is up (CTS, DSR, DCD). Deltas are latched. */
static void update_msr(struct sx_uart *u)
{
    uint8_t in;
    if (u->mcr & MCR_LOOP)
        in = (uint8_t)(((u->mcr & MCR_RTS) ? MSR_CTS : 0) | ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
                       ((u->mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->mcr & MCR_OUT2) ? MSR_DCD : 0));
    else
        in = MSR_CTS | MSR_DSR | MSR_DCD;
    uint8_t old = u->msr & 0xf0, delta = 0;
    if ((old ^ in) & MSR_CTS)
        delta |= MSR_DCTS;
    if ((old ^ in) & MSR_DSR)
        delta |= MSR_DDSR;
    if ((old & MSR_RI) && !(in & MSR_RI))   /* trailing edge of RI */
        delta |= MSR_TERI;
    if ((old ^ in) & MSR_DCD)
        delta |= MSR_DDCD;
    u->msr = (uint8_t)(in | (u->msr & 0x0f) | delta);
}

static void transmit(struct sx_uart *u, uint8_t b)
{
    if (u->mcr & MCR_LOOP) {
        rx_push(u, b);
    } else {
        u->st.tx_bytes++;
        if (u->out_fd >= 0 && write(u->out_fd, &b, 1) != 1)
            u->st.out_errors++;
    }
    /* Sent at once: holding and shift registers are empty again. */
    u->lsr |= LSR_THRE | LSR_TEMT;
    u->thr_ipending = true;
}

static uint64_t uart_read(void *opaque, uint64_t off, unsigned size)
{
    struct sx_uart *u = opaque;
    if (size != 1)
        return UINT64_MAX;   /* byte registers: wider accesses float */
    uint8_t v = 0xff;
    switch (off) {
    case 0:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else {
            v = 0;
            if (u->rx_count) {
                v = u->rx[u->rx_head];
                u->rx_head = (u->rx_head + 1) % FIFO_SIZE;
                if (--u->rx_count == 0)
                    u->lsr &= (uint8_t)~LSR_DR;
            }
        }
        break;
    case 1:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case 2:
        v = pending_iir(u);
        if (v == IIR_THRE)
            u->thr_ipending = false;   /* reading IIR clears a THRE interrupt it reports */
        if (u->fcr & FCR_ENABLE)
            v |= IIR_FIFO;
        break;
    case 3:
        v = u->lcr;
        break;
    case 4:
        v = u->mcr;
        break;
    case 5:
        v = u->lsr;
        u->lsr &= (uint8_t)~LSR_ERRS;   /* error bits clear on read */
        break;
    case 6:
        update_msr(u);
        v = u->msr;
        u->msr &= 0xf0;                 /* deltas clear on read */
        break;
    case 7:
        v = u->scr;
        break;
    }
    update_irq(u);
    return v;
}

static void uart_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct sx_uart *u = opaque;
    if (size != 1)
        return;
    uint8_t b = (uint8_t)val;
    switch (off) {
    case 0:
        if (u->lcr & LCR_DLAB) {
            u->dll = b;
        } else {
            u->thr_ipending = false;
            transmit(u, b);
        }
        break;
    case 1:
        if (u->lcr & LCR_DLAB) {
            u->dlm = b;
        } else {
            uint8_t old = u->ier;
            u->ier = b & 0x0f;
            /* Enabling ETBEI while THR is empty raises THRE at once (as the 16550 does). */
            if (!(old & IER_ETBEI) && (u->ier & IER_ETBEI) && (u->lsr & LSR_THRE))
                u->thr_ipending = true;
        }
        break;
    case 2:
        if ((b ^ u->fcr) & FCR_ENABLE) {
            rx_clear(u);   /* changing the FIFO mode clears both FIFOs */
        }
        if (b & FCR_CLR_RX)
            rx_clear(u);
        /* TX FIFO: always empty (instant transmission). */
        u->fcr = (b & FCR_ENABLE) ? (uint8_t)(b & 0xc1) : 0;
        break;
    case 3:
        u->lcr = b;
        break;
    case 4:
        u->mcr = b & 0x1f;
        update_msr(u);
        break;
    case 5:
        break;   /* LSR is read-only (factory test) */
    case 6:
        break;
    case 7:
        u->scr = b;
        break;
    }
    update_irq(u);
}

static const struct sx_dm_io_ops uart_io = { .read = uart_read, .write = uart_write };

static void uart_destroy(void *opaque) { free(opaque); }
static const struct sx_dm_dev_ops uart_dev_ops = { .name = "uart", .destroy = uart_destroy };

int sx_uart_add(struct sx_dm *dm, uint16_t base, uint8_t irq, int out_fd, struct sx_uart **out)
{
    struct sx_uart *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->irq = irq;
    u->out_fd = out_fd;
    u->lsr = LSR_THRE | LSR_TEMT;
    u->dll = 0x0c;   /* 9600 baud, as after a BIOS */
    u->lcr = 0x03;   /* 8N1 */
    update_msr(u);
    u->msr &= 0xf0;
    int rc = sx_dm_dev_add(dm, &uart_dev_ops, u, &u->dev);
    if (rc < 0) {
        free(u);
        return rc;
    }
    rc = sx_dm_dev_region(u->dev, SX_IOREQ_PORT, base, 8, &uart_io, u);
    if (rc < 0) {
        sx_dm_dev_remove(u->dev);   /* frees u */
        return rc;
    }
    if (out)
        *out = u;
    return 0;
}

size_t sx_uart_receive(struct sx_uart *u, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t n = 0;
    unsigned cap = (u->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
    while (n < len && u->rx_count < cap)
        rx_push(u, p[n++]);
    update_irq(u);
    return n;
}

const struct sx_uart_stats *sx_uart_stats(const struct sx_uart *u) { return &u->st; }
