/*
 * sx-hvm-probe: a tiny sim HVM "guest kernel" for the device model's integration test. Acting
 * as domain N's vCPUs it does what firmware and a kernel do first: enumerate PCI bus 0 through
 * 0xCF8/0xCFC, size and place the Xen platform device's BARs, check the platform magic on port
 * 0x10, program the UART on 0x3F8 and write a message through THR, polling LSR.THRE.
 *
 *   sx-hvm-probe -d N [-m TEXT] [-u MASK] [-n ROUNDS]
 * -n times ROUNDS 16-bit reads of port 0x10 (one ioreq round trip each) and prints the mean.
 *
 * Prints one line per PCI function ("00:02.0 5853:0001 class ff8000") and "magic 49d2".
 * Exit 0 if the host bridge and platform device were found and the message was sent.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ioreq/ioreq.h"
#include "platform/platform.h"

static int cfg32(struct sx_ioreq_guest *g, unsigned dev, unsigned reg, uint32_t *v)
{
    return sx_ioreq_pci_cfg_read(g, 0, (uint8_t)dev, 0, (uint8_t)reg, 4, v);
}

int main(int argc, char **argv)
{
    long domid = -1, unplug = -1, rounds = 0;
    const char *msg = "hello\n";
    int c;
    while ((c = getopt(argc, argv, "d:m:u:n:")) != -1) {
        if (c == 'd')
            domid = strtol(optarg, NULL, 10);
        else if (c == 'm')
            msg = optarg;
        else if (c == 'u')
            unplug = strtol(optarg, NULL, 0);
        else if (c == 'n')
            rounds = strtol(optarg, NULL, 10);
        else
            return 2;
    }
    if (domid < 1)
        return 2;
    struct sx_plat *p = NULL;
    struct sx_ioreq_guest *g = NULL;
    int rc = sx_plat_open(&p, SX_PLAT_SIM, (domid_t)domid, NULL);
    if (rc < 0) {
        fprintf(stderr, "sx-hvm-probe: attach dom%ld: %s\n", domid, strerror(-rc));
        return 1;
    }
    rc = sx_ioreq_guest_open(&g, p, 0);
    if (rc < 0) {
        fprintf(stderr, "sx-hvm-probe: ioreq: %s\n", strerror(-rc));
        sx_plat_close(p);
        return 1;
    }
    sx_ioreq_guest_set_timeout(g, 10000);
    int ret = 1;
    bool host = false, platform = false;
    for (unsigned dev = 0; dev < 32; dev++) {
        uint32_t id, cls;
        if (cfg32(g, dev, 0, &id) < 0) {
            fprintf(stderr, "sx-hvm-probe: config read timed out\n");
            goto out;
        }
        if ((id & 0xffff) == 0xffff)
            continue;
        cfg32(g, dev, 8, &cls);
        printf("00:%02x.0 %04x:%04x class %06x\n", dev, id & 0xffff, id >> 16, cls >> 8);
        if (dev == 0 && id == 0x12378086 && (cls >> 8) == 0x060000)
            host = true;
        if (id == 0x00015853 && (cls >> 8) == 0xff8000) {
            platform = true;
            /* Size BAR0 (I/O) and place it at 0xc000, then enable I/O decoding. */
            uint32_t bar;
            sx_ioreq_pci_cfg_write(g, 0, (uint8_t)dev, 0, 0x10, 4, 0xffffffff);
            cfg32(g, dev, 0x10, &bar);
            printf("00:%02x.0 BAR0 size %u\n", dev, (~(bar & ~3u)) + 1);
            sx_ioreq_pci_cfg_write(g, 0, (uint8_t)dev, 0, 0x10, 4, 0xc000);
            sx_ioreq_pci_cfg_write(g, 0, (uint8_t)dev, 0, 0x04, 2, 0x1);
            printf("00:%02x.0 BAR0 flags %02x\n", dev, sx_ioreq_inb(g, 0xc000));
        }
    }
    printf("magic %04x\n", sx_ioreq_inw(g, 0x10));
    if (rounds > 0) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < rounds; i++)
            if (sx_ioreq_inw(g, 0x10) != 0x49d2)
                goto out;
        clock_gettime(CLOCK_MONOTONIC, &b);
        double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3);
        printf("%ld round trips, %.2f us each\n", rounds, us / (double)rounds);
    }
    if (unplug >= 0)
        sx_ioreq_outw(g, 0x10, (uint16_t)unplug);
    /* UART: 115200 8N1, FIFOs on, then send with the LSR.THRE handshake. */
    const uint16_t com1 = 0x3f8;
    sx_ioreq_outb(g, com1 + 1, 0x00);
    sx_ioreq_outb(g, com1 + 3, 0x80);
    sx_ioreq_outb(g, com1 + 0, 0x01);
    sx_ioreq_outb(g, com1 + 1, 0x00);
    sx_ioreq_outb(g, com1 + 3, 0x03);
    sx_ioreq_outb(g, com1 + 2, 0xc7);
    sx_ioreq_outb(g, com1 + 4, 0x0b);
    for (const char *s = msg; *s; s++) {
        int spins = 0;
        while (!(sx_ioreq_inb(g, com1 + 5) & 0x20))
            if (++spins > 1000)
                goto out;
        if (sx_ioreq_outb(g, com1, (uint8_t)*s) < 0)
            goto out;
    }
    ret = host && platform ? 0 : 1;
    if (!host || !platform)
        fprintf(stderr, "sx-hvm-probe: host bridge %s, platform device %s\n",
                host ? "found" : "MISSING", platform ? "found" : "MISSING");
out:
    sx_ioreq_guest_close(g);
    sx_plat_close(p);
    return ret;
}
