/* systemd readiness notification (common/notify.h): the daemons' one use of libsystemd, in a
 * library of its own so that only the programs that call it link libsystemd. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

/* sd_notify returns > 0 when sent, 0 without $NOTIFY_SOCKET, -errno on failure. */
static int notify_status(int rc) { return rc < 0 ? rc : 0; }

int sx_notify_ready(const char *fmt, ...)
{
    char status[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof(status), fmt, ap);   /* a cut status line is still a status */
    va_end(ap);
    return notify_status(sd_notifyf(0, "READY=1\nSTATUS=%s", status));
}

int sx_notify_stopping(void)
{
    return notify_status(sd_notify(0, "STOPPING=1\nSTATUS=stopping"));
}
