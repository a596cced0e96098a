/*
 * netdev kind "dpdk": loads its implementation (dpdk.c, built as splitxen-netdev-dpdk.so and
 * linked against DPDK) when the first DPDK vif opens, so that no program links DPDK and no
 * host loads it until a vif asks for it. The object is $SPLITXEN_NETDEV_DPDK when set, else
 * the installed one (SX_NETDEV_DPDK_PLUGIN), else splitxen-netdev-dpdk.so in ../lib beside the
 * running program (the build tree). Once loaded, the device's ops are the object's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netdev/netdev_impl.h"

#ifndef SX_NETDEV_DPDK_PLUGIN
#define SX_NETDEV_DPDK_PLUGIN "/usr/local/lib/splitxen/splitxen-netdev-dpdk.so"
#endif
#define PLUGIN_NAME "splitxen-netdev-dpdk.so"

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct sx_netdev_ops *impl;
static char load_err[300];

static void *try_load(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_err, sizeof(load_err), "%.280s", e ? e : path);
    }
    return h;
}

static int load(void)
{
    if (impl)
        return 0;
    void *h = NULL;
    const char *env = getenv("SPLITXEN_NETDEV_DPDK");
    if (env && *env) {
        h = try_load(env);
    } else if (!(h = try_load(SX_NETDEV_DPDK_PLUGIN))) {
        char exe[PATH_MAX], path[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/../lib/%s", exe, PLUGIN_NAME);
            char first[sizeof(load_err)];
            snprintf(first, sizeof(first), "%.280s", load_err);
            if (!(h = try_load(path)))
                snprintf(load_err, sizeof(load_err), "%.280s", first);
        }
    }
    if (!h)
        return -ENOENT;
    impl = dlsym(h, "sx_netdev_dpdk_impl");
    if (!impl) {
        snprintf(load_err, sizeof(load_err), "no sx_netdev_dpdk_impl in it");
        dlclose(h);
        return -ENOENT;
    }
    return 0;
}

static int kind_open(struct sx_netdev *nd, const struct sx_netdev_config *cfg)
{
    pthread_mutex_lock(&load_lock);
    int rc = load();
    pthread_mutex_unlock(&load_lock);
    if (rc < 0) {
        if (cfg->err && cfg->errlen)
            snprintf(cfg->err, cfg->errlen, "script: vif-dpdk: DPDK support not loaded: %s",
                     load_err);
        return rc;
    }
    nd->ops = impl;
    return impl->open(nd, cfg);
}

const struct sx_netdev_ops sx_netdev_dpdk_ops = {
    .kind = "dpdk",
    .open = kind_open,
};
