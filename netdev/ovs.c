/*
 * netdev worlds: Open vSwitch ports (vif-openvswitch, and VLANs where Linux bridges cannot).
 *
 * ovsdb is spoken through ovs-vsctl, run with posix_spawnp and an argv (no shell), exactly as
 * vif-openvswitch runs it: Debian ships Open vSwitch's C IDL only inside openvswitch-source
 * (no libopenvswitch-dev), and ovs-vsctl also waits until ovs-vswitchd has applied the change,
 * so the port carries traffic when attach returns. ovs-vsctl finds the database as usual
 * (OVS_RUNDIR, else /var/run/openvswitch/db.sock).
 *
 * VLANs as vif-openvswitch spells them: NAME.TAG is an access port (tag=TAG), NAME:A:B a trunk
 * (trunks=A,B). NAME.TAG:A:B, which Open vSwitch itself would take as an access port and
 * ignore the trunks of, is made explicit: vlan_mode=native-untagged, tag=TAG, trunks=TAG,A,B,
 * which is what the VLAN-filtering Linux bridge does with it (world.c).
 */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include "netdev/world_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

extern char **environ;

#define OVS_VSCTL "ovs-vsctl"
#define OVS_TIMEOUT_S 10            /* ovs-vsctl --timeout: connect + vswitchd applying */
#define OVS_WAIT_MS ((OVS_TIMEOUT_S + 5) * 1000)

/*
 * Run ovs-vsctl with argv (argv[0] is OVS_VSCTL), its stdout+stderr into out (NUL-terminated,
 * newlines folded to spaces). Returns its exit status (>= 0), or -errno when it could not run
 * (-ENOENT: not installed) or did not end in time (-ETIMEDOUT: killed).
 */
static int vsctl(char *const argv[], char *out, size_t outlen)
{
    int pfd[2], rc;
    out[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);   /* queue threads may block signals */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    rc = posix_spawnp(&pid, OVS_VSCTL, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        return -rc;
    }
    size_t got = 0;
    uint64_t deadline = sx_now_ms() + OVS_WAIT_MS;
    bool timed_out = false;
    for (;;) {
        uint64_t now = sx_now_ms();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        struct pollfd p = { .fd = pfd[0], .events = POLLIN };
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char buf[512];
        ssize_t r = read(pfd[0], buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && got + 1 < outlen; i++)
            out[got++] = buf[i] == '\n' ? ' ' : buf[i];
        out[got] = '\0';
    }
    close(pfd[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    while (got && out[got - 1] == ' ')
        out[--got] = '\0';
    if (timed_out)
        return -ETIMEDOUT;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -ECHILD;
}

int sx_ovs_bridge_exists(const char *bridge, char *err, size_t errlen)
{
    char out[512], to[32];
    snprintf(to, sizeof(to), "--timeout=%d", OVS_TIMEOUT_S);
    char *const argv[] = { OVS_VSCTL, to, "br-exists", (char *)bridge, NULL };
    int rc = vsctl(argv, out, sizeof(out));
    if (rc == 0)
        return 1;
    if (rc == 2)
        return 0;
    if (rc == -ENOENT)
        return sx_world_fail(err, errlen, -ENOENT,
                             "bridge: '%s': Open vSwitch is not installed (no " OVS_VSCTL ")",
                             bridge);
    if (rc < 0)
        return sx_world_fail(err, errlen, rc, "bridge: '%s': " OVS_VSCTL ": %s", bridge,
                             strerror(-rc));
    return sx_world_fail(err, errlen, -EHOSTUNREACH,
                         "bridge: '%s': Open vSwitch is not running: %s", bridge, out);
}

int sx_ovs_attach(struct sx_world_link *l, const struct sx_world *w, char *err, size_t errlen)
{
    const char *spec = l->bridge_spec;
    int rc = sx_ovs_bridge_exists(w->bridge, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return sx_world_fail(err, errlen, -ENODEV,
                             "bridge: '%s': Open vSwitch has no bridge %s", spec, w->bridge);

    /* A port of that name a previous backend left (restart) goes first, in a transaction of
     * its own: deleted and re-added in one (vif-openvswitch's idiom), the port looks
     * unchanged to ovs-vswitchd, which keeps the vanished TAP's socket and passes nothing. */
    l->ovs_port = true;
    sx_ovs_detach(l);
    l->ovs_port = true;

    char to[32], tag[16] = "", trunks[SX_WORLD_MAX_TRUNKS * 5 + 16] = "", mac[64] = "";
    snprintf(to, sizeof(to), "--timeout=%d", OVS_TIMEOUT_S);
    char *argv[24];
    unsigned n = 0;
    argv[n++] = OVS_VSCTL;
    argv[n++] = to;
    argv[n++] = "--";
    argv[n++] = "add-port";
    argv[n++] = (char *)w->bridge;
    argv[n++] = l->ifname;
    if (w->tag) {
        snprintf(tag, sizeof(tag), "tag=%u", w->tag);
        argv[n++] = tag;
    }
    if (w->ntrunks) {
        size_t off = (size_t)snprintf(trunks, sizeof(trunks), "trunks=");
        if (w->tag)
            off += (size_t)snprintf(trunks + off, sizeof(trunks) - off, "%u,", w->tag);
        for (unsigned i = 0; i < w->ntrunks; i++)
            off += (size_t)snprintf(trunks + off, sizeof(trunks) - off, "%s%u", i ? "," : "",
                                    w->trunks[i]);
        argv[n++] = trunks;
        if (w->tag)
            argv[n++] = "vlan_mode=native-untagged";
    }
    if (w->has_guest_mac) {
        const uint8_t *m = w->guest_mac;
        snprintf(mac, sizeof(mac),
                 "external-ids:attached-mac=\"%02x:%02x:%02x:%02x:%02x:%02x\"", m[0], m[1], m[2],
                 m[3], m[4], m[5]);
        argv[n++] = "--";
        argv[n++] = "set";
        argv[n++] = "interface";
        argv[n++] = l->ifname;
        argv[n++] = mac;
    }
    argv[n] = NULL;
    char out[512];
    rc = vsctl(argv, out, sizeof(out));
    if (rc != 0)
        return sx_world_fail(err, errlen, rc < 0 ? rc : -EIO,
                             "bridge: '%s': adding port %s: %s", spec, l->ifname,
                             rc < 0 ? strerror(-rc) : out);
    return 0;
}

void sx_ovs_detach(struct sx_world_link *l)
{
    char out[512], to[32];
    snprintf(to, sizeof(to), "--timeout=%d", OVS_TIMEOUT_S);
    char *const argv[] = { OVS_VSCTL, to, "--", "--if-exists", "del-port", l->ifname, NULL };
    int rc = vsctl(argv, out, sizeof(out));
    if (rc != 0)
        sx_warn("%s: removing its Open vSwitch port: %s", l->ifname,
                rc < 0 ? strerror(-rc) : out);
    l->ovs_port = false;
}
