#!/usr/bin/env python3
"""Write the seed corpora of the libFuzzer harnesses (tests/fuzz/corpus/<fuzzer>/).

    tests/fuzz/seeds.py [DIR]

Each seed is a well-formed input of its harness (the layouts the harnesses document), so the
fuzzers start from requests the code accepts and mutate from there. The files are committed;
this script is how they were made (run it again after changing a harness's input layout).
"""
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def put(fuzzer, name, data):
    d = os.path.join(OUT, fuzzer)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- blkif: flags, sector-size shift, max indirect, granularity, blocks, slot, pages
def blk_dev(flags, ss_shift=0, max_ind=256, gran=0, blocks=8192):
    return struct.pack("<BBIBQ", flags, ss_shift, max_ind, gran, blocks)


def blk_rw(op, nseg, id_, sector, segs):
    s = struct.pack("<BBHIQQ", op, nseg, 0, 0, id_, sector)
    for g, f, l in segs:
        s += struct.pack("<IBBH", g, f, l, 0)
    return s.ljust(112, b"\0")


def blk_rw32(op, nseg, id_, sector, segs):
    s = struct.pack("<BBHQQ", op, nseg, 0, id_, sector)
    for g, f, l in segs:
        s += struct.pack("<IBBH", g, f, l, 0)
    return s.ljust(108, b"\0")


FEAT = (1 | 2 | 4) << 2            # flush, barrier, discard
put("fuzz_blkif", "read", blk_dev(FEAT) + blk_rw(0, 1, 1, 8, [(5, 0, 7)]))
put("fuzz_blkif", "write-11-segs", blk_dev(FEAT) + blk_rw(1, 11, 2, 64, [(i, 0, 7) for i in range(11)]))
put("fuzz_blkif", "x86_32-read", blk_dev(FEAT | 1) + blk_rw32(0, 2, 3, 16, [(7, 0, 7), (8, 0, 3)]))
put("fuzz_blkif", "flush", blk_dev(FEAT) + blk_rw(3, 0, 4, 0, []))
put("fuzz_blkif", "barrier", blk_dev(FEAT) + blk_rw(2, 1, 5, 8, [(9, 0, 7)]))
put("fuzz_blkif", "discard", blk_dev(FEAT, gran=1) + struct.pack("<BBHIQQQ", 5, 0, 0, 0, 6, 16, 64).ljust(112, b"\0"))
put("fuzz_blkif", "4k-read", blk_dev(FEAT, ss_shift=3, blocks=1000) + blk_rw(0, 1, 7, 8, [(5, 0, 7)]))
ind = struct.pack("<BBHQQH", 6, 0, 2, 8, 32, 0) + struct.pack("<8I", 11, 12, 0, 0, 0, 0, 0, 0)
ind = ind.ljust(112, b"\0")
page = b"".join(struct.pack("<IBBH", 20 + i, 0, 7, 0) for i in range(2)).ljust(4096, b"\0")
put("fuzz_blkif", "indirect", blk_dev(FEAT, max_ind=512) + ind + page)
put("fuzz_blkif", "ro-write", blk_dev(FEAT | 2) + blk_rw(1, 1, 9, 8, [(5, 0, 7)]))

# ---- netif: flags (slot count - 1, complete 64, views 128), slots, meta, frame
def tx(gref, off, flags, id_, size):
    return struct.pack("<IHHHH", gref, off, flags, id_, size)


def extra_gso(more, size=1448, typ=1):
    return struct.pack("<BBHBBH", 1, 1 if more else 0, size, typ, 0, 0).ljust(12, b"\0")


def extra_hash(more):
    return struct.pack("<BB", 4, 1 if more else 0) + bytes([2, 1]) + b"\x11\x22\x33\x44"


def tcp_frame(n=80):
    eth = b"\xff" * 6 + b"\x00\x16\x3e\x00\x00\x01" + b"\x08\x00"
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, n - 14, 0, 0, 64, 6, 0, bytes([192, 0, 2, 1]),
                     bytes([192, 0, 2, 2]))
    tcp = struct.pack(">HHIIBBHHH", 1234, 80, 0, 0, 0x50, 0x18, 0xffff, 0, 0)
    return (eth + ip + tcp).ljust(n, b"\xab")


def net(slots, complete=True, meta=b"\x01\x01\x00\x00\x00\x00", frame=tcp_frame()):
    flags = (len(slots) - 1) | (64 if complete else 0) | 128
    return bytes([flags]) + b"".join(slots) + meta + frame


put("fuzz_netif", "one", net([tx(1, 0, 0, 1, 60)]))
put("fuzz_netif", "three-slots", net([tx(1, 0, 4, 1, 160), tx(2, 0, 4, 2, 50), tx(3, 100, 0, 3, 50)]))
put("fuzz_netif", "gso", net([tx(1, 0, 8 | 4 | 1, 1, 3000), extra_gso(False), tx(2, 0, 0, 2, 1500)]))
put("fuzz_netif", "gso-hash", net([tx(1, 0, 8 | 1, 1, 200), extra_gso(True), extra_hash(False)]))
put("fuzz_netif", "mcast", net([tx(1, 0, 8, 1, 0),
                                struct.pack("<BB", 2, 0) + b"\x01\x00\x5e\x01\x02\x03".ljust(10, b"\0")]))
put("fuzz_netif", "need-more", net([tx(1, 0, 4, 1, 160), tx(2, 0, 4, 2, 50)], complete=False))
put("fuzz_netif", "max-slots", net([tx(1, 0, 4, 1, 14 + 18 * 5)] +
                                   [tx(2, 100 * i, 4 if i < 18 else 0, 2 + i, 5) for i in range(1, 19)]))

# ---- ctrl: queues, message count, requests (id, type, data[3]), grant bytes, frame
def ctrl(id_, typ, d0=0, d1=0, d2=0):
    return struct.pack("<HHIII", id_, typ, d0, d1, d2)


key = bytes(range(40))
put("fuzz_ctrl", "setup", bytes([1, 6]) +
    ctrl(1, 2, 1) + ctrl(2, 4, 3) + ctrl(3, 5, 7, 40) + key +
    ctrl(4, 7, 8) + ctrl(5, 8, 7, 8, 0) + struct.pack("<8I", *[i % 2 for i in range(8)]) +
    ctrl(6, 3) + tcp_frame())
put("fuzz_ctrl", "bad", bytes([0, 5]) + ctrl(1, 8, 7, 2, 0xffffffff) + ctrl(2, 7, 129) +
    ctrl(3, 5, 0xdead, 41) + ctrl(4, 9, 1, 2, 3) + ctrl(5, 1))

# ---- xenstored: first byte odd = dom0, then xs_wire messages
def xs(typ, payload, tx_=0, rid=1):
    return struct.pack("<IIII", typ, rid, tx_, len(payload)) + payload


def z(*strs):
    return b"".join(s.encode() + b"\0" for s in strs)


XS_READ, XS_WRITE, XS_MKDIR, XS_RM, XS_DIR, XS_GETP, XS_SETP = 2, 11, 12, 13, 1, 3, 14
XS_WATCH, XS_UNWATCH, XS_TS, XS_TE, XS_RESET, XS_DIRPART = 4, 5, 6, 7, 21, 22
put("fuzz_xenstored", "guest-rw", b"\0" + xs(XS_WRITE, b"a/b\0v") + xs(XS_READ, z("a/b")) +
    xs(XS_DIR, z("a")) + xs(XS_GETP, z("a/b")) + xs(XS_SETP, z("a/b", "n1", "r0")) +
    xs(XS_RM, z("a")))
put("fuzz_xenstored", "guest-watch-tx", b"\0" + xs(XS_WATCH, z("w", "tok")) + xs(XS_TS, z("")) +
    xs(XS_WRITE, b"w/x\0y", tx_=1) + xs(XS_TE, z("T"), tx_=1) + xs(XS_UNWATCH, z("w", "tok")) +
    xs(XS_RESET, z("")))
put("fuzz_xenstored", "dom0", b"\x01" + xs(XS_MKDIR, z("/d/e")) +
    xs(XS_SETP, z("/d/e", "n0", "b1")) + xs(XS_DIRPART, z("/local", "0")) +
    xs(23, b"") + xs(25, z("1", "nodes")) + xs(26, z("1", "watches", "4")) +
    xs(8, z("3", "0", "0")) + xs(17, z("3")) + xs(9, z("3")) + xs(0, z("check")))

# ---- ioreq: mem size, ranges, pci devs, 4 ioreq slots, buffered pointers and slots, memory
def ioreq(addr, data, count, size, state, dir_, df, ptr, typ):
    flags = dir_ | (df << 1) | (ptr << 2)
    return struct.pack("<QQIIIBBBB", addr, data, count, size, 0, state, 0, flags, typ)


rng = bytes([0]) + struct.pack("<QI", 0x80, 0x1f) + bytes([1]) + struct.pack("<QI", 0xfe000000, 0xfff)
slots = (ioreq(0x80, 0x5a, 1, 1, 1, 0, 0, 0, 0) + ioreq(0x84, 0, 1, 4, 1, 1, 0, 0, 0) +
         ioreq(0xfe000010, 0x100, 4, 4, 1, 0, 0, 1, 1) + ioreq(0, 0, 1, 4, 1, 1, 0, 0, 2))
buf = struct.pack("<II", 0, 2) + struct.pack("<BBHI", 0, 0x02 | (0 << 2), 0x81, 0x77) * 2
put("fuzz_ioreq", "mixed", struct.pack("<I", 65536) + bytes([2]) + rng + bytes([1]) +
    struct.pack("<I", 0x18) + slots + buf)

# ---- e1000: guest memory (0x2000: rings, buffers), then (op, value) register writes and
# world frames
TDBAL, TDLEN, TDH, TDT, TCTL = 11, 13, 14, 15, 5          # indexes into the harness's table
mem = bytearray(0x2000)
struct.pack_into("<QHBBBBH", mem, 0, 0x100000 + 0x1800, 60, 0, 0x0b, 0, 0, 0)   # legacy desc
mem[0x1800:0x1800 + 60] = tcp_frame(60)
prog = bytes([TCTL]) + struct.pack("<I", 2) + bytes([TDT]) + struct.pack("<I", 1)
prog += bytes([0xd0, 8]) + b"\0" * 12 + tcp_frame(78)
put("fuzz_e1000", "tx-one", bytes(mem) + prog)

# ---- ahci: guest memory (0x2000: list, FIS, tables, PRDs), then (op, value) program
mem = bytearray(0x2000)
struct.pack_into("<HHIQ", mem, 0, 5, 1, 0, 0x100000 + 0x1000)        # header: CFL 5, PRDTL 1
fis = bytes([0x27, 0x80, 0x25, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 8, 0, 0, 0])
mem[0x1000:0x1000 + 16] = fis
struct.pack_into("<QII", mem, 0x1080, 0x100000 + 0x8000, 0, 4095)   # PRD 4 KiB
put("fuzz_ahci", "read-dma-ext", bytes(mem) + bytes([0xc0]) + struct.pack("<I", 1) +
    bytes([0xe0, 0, 0, 0, 0]))
struct.pack_into("<HHIQ", mem, 0, 5 | (1 << 6), 1, 0, 0x100000 + 0x1000)   # W
mem[0x1000 + 2] = 0x35                                                  # WRITE DMA EXT
put("fuzz_ahci", "write-dma-ext", bytes(mem) + bytes([0xc0]) + struct.pack("<I", 1) +
    bytes([0xe0, 0, 0, 0, 0]))
mem[0x1000 + 2] = 0xec                                                  # IDENTIFY
put("fuzz_ahci", "identify", bytes(mem) + bytes([0xc0]) + struct.pack("<I", 1))

# ---- xl.cfg: kind byte (0 disk, 1 vif, 2 vdev, 3 mac) then the string
for i, s in enumerate(["format=raw, vdev=xvda, access=rw, target=/dev/null",
                       "/dev/null,raw,xvdb,r", "vdev=hda, devtype=cdrom, target=/dev/null",
                       "backend=dd, vdev=xvdc, target=/dev/null, discard"]):
    put("fuzz_xlcfg", "disk%d" % i, b"\0" + s.encode())
for i, s in enumerate(["mac=00:16:3e:00:00:01, bridge=xenbr0, queues=2",
                       "bridge=xenbr1, rate=100Mb/s@20ms, ip=192.0.2.1, type=vif, mtu=9000",
                       "model=e1000, vifname=v1, backend=dd, script=vif-route"]):
    put("fuzz_xlcfg", "vif%d" % i, b"\1" + s.encode())
for i, s in enumerate(["xvda", "xvdz1", "hdb3", "sdq", "d17p5", "51712"]):
    put("fuzz_xlcfg", "vdev%d" % i, b"\2" + s.encode())
put("fuzz_xlcfg", "mac", b"\3" + b"00:16:3e:12:34:56")
