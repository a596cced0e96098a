/* Telling the service manager how a daemon is doing: systemd's Type=notify protocol
 * (sd_notify(3)). Without $NOTIFY_SOCKET (not started by systemd) every call does nothing. */
#ifndef SPLITXEN_NOTIFY_H
#define SPLITXEN_NOTIFY_H

/* READY=1 with STATUS= the formatted text: the daemon serves what it was started for. Call it
 * once the state that makes it ready exists (a watch registered, a server enabled). Returns 0
 * (told, or nobody to tell) or -errno. */
int sx_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1: the daemon has begun to end. Returns 0 or -errno. */
int sx_notify_stopping(void);

#endif
