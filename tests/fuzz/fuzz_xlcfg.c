/*
 * xl.cfg disk and vif specs (toolstack/xlcfg.c), as block-attach and network-attach take them,
 * and the vdev names and MAC addresses inside them. What the parsers promise: 0 with a filled
 * result or -EINVAL/-ENOMEM with a message naming the problem, never a crash; a parsed vif's
 * MAC a unicast, non-zero address.
 */
#include "tests/fuzz/fuzz.h"

#include <errno.h>

#include "toolstack/xlcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    char err[256] = "";
    switch (data[0] % 4) {
    case 0: {
        struct sx_cfg_disk d;
        memset(&d, 0, sizeof(d));
        int rc = sx_cfg_parse_disk(s, "fuzz", 1, &d, err, sizeof(err));
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
        FUZZ_CHECK(rc == 0 || err[0]);
        sx_cfg_disk_clear(&d);
        break;
    }
    case 1: {
        struct sx_cfg_vif v;
        memset(&v, 0, sizeof(v));
        int rc = sx_cfg_parse_vif(s, "fuzz", 1, 0, &v, err, sizeof(err));
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
        FUZZ_CHECK(rc == 0 || err[0]);
        if (rc == 0)
            FUZZ_CHECK(!(v.mac[0] & 1));
        sx_cfg_vif_clear(&v);
        break;
    }
    case 2: {
        long dev = sx_cfg_vdev_to_devid(s);
        FUZZ_CHECK(dev >= 0 || dev == -EINVAL);
        break;
    }
    default: {
        uint8_t mac[6];
        if (sx_cfg_parse_mac(s, mac) == 0)
            FUZZ_CHECK(!(mac[0] & 1) && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]));
        break;
    }
    }
    free(s);
    return 0;
}
