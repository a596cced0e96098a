/*
 * Test helpers for the backends' --check (torture/): read a device's check counters from its
 * stats file ($SPLITXEN_RUN/stats/<vbd|vif>chk-<domid>-<devid>) and wait for its text report
 * ($SPLITXEN_RUN/check/<vbd|vif>-<domid>-<devid>.txt) to say what a case expects. The report is
 * rewritten at most once a second: the helpers poll with a deadline.
 */
#ifndef SPLITXEN_TEST_CHECK_REPORT_H
#define SPLITXEN_TEST_CHECK_REPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "common/stats.h"
#include "rundir.h"

/* Counter `name` of device kind ("vbd"/"vif") domid/devid's check stats file; UINT64_MAX when
 * there is none. */
static inline uint64_t chk_stat(const char *kind, unsigned domid, unsigned devid, const char *name)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/stats/%schk-%u-%u", sx_run_dir(), kind, domid, devid);
    struct sx_stats s;
    if (sx_stats_open_ro(&s, path) < 0)
        return UINT64_MAX;
    uint64_t v = sx_stats_get(&s, name);
    sx_stats_close_ro(&s);
    return v;
}

/* Wait up to ms for the counter to reach want; returns what it read last. */
static inline uint64_t chk_stat_wait(const char *kind, unsigned domid, unsigned devid,
                                     const char *name, uint64_t want, int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms, v;
    while (((v = chk_stat(kind, domid, devid, name)) < want || v == UINT64_MAX) &&
           sx_now_ms() < end)
        usleep(5000);
    return v;
}

/* Wait up to 3 s for the device's text report to hold every string of the NULL-terminated
 * list; says which report lacked one when it times out. */
static inline bool chk_report_has(const char *kind, unsigned domid, unsigned devid, ...)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/check/%s-%u-%u.txt", sx_run_dir(), kind, domid, devid);
    uint64_t end = sx_now_ms() + 3000;
    bool all = false;
    do {
        char buf[16384] = "";
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            buf[n] = '\0';
            fclose(f);
        }
        va_list ap;
        va_start(ap, devid);
        all = true;
        for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
            all &= strstr(buf, s) != NULL;
        va_end(ap);
        if (!all)
            usleep(20000);
    } while (!all && sx_now_ms() < end);
    if (!all)
        fprintf(stderr, "report %s lacks an expected line\n", path);
    return all;
}

#endif
