/*
 * splitxen-test-mkdom: create a PV domain in a running splitxen-core, print its domid.
 * For integration tests, until the toolstack CLI creates domains.
 *   splitxen-test-mkdom [--core SOCKET] NAME [MEM_MB]
 * The socket defaults to $SPLITXEN_CORE, else $SPLITXEN_RUN/core.sock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen-core/core.h"

int main(int argc, char **argv)
{
    const char *core = NULL;
    int a = 1;
    if (a + 1 < argc && !strcmp(argv[a], "--core")) {
        core = argv[a + 1];
        a += 2;
    }
    if (a >= argc || argc - a > 2) {
        fprintf(stderr, "usage: %s [--core SOCKET] NAME [MEM_MB]\n", argv[0]);
        return 2;
    }
    const char *name = argv[a];
    unsigned mem = a + 1 < argc ? (unsigned)strtoul(argv[a + 1], NULL, 10) : 64;
    struct sxc_conn *c;
    int rc = sxc_connect(&c, core, 0);
    if (rc < 0) {
        fprintf(stderr, "mkdom: connect to splitxen-core: %s\n", strerror(-rc));
        return 1;
    }
    rc = sxc_domain_create(c, name, SXD_TYPE_PV, mem, 1, false);
    sxc_disconnect(c);
    if (rc < 0) {
        fprintf(stderr, "mkdom: create %s: %s\n", name, strerror(-rc));
        return 1;
    }
    printf("%d\n", rc);
    return 0;
}
