#!/usr/bin/env python3
"""Raw xs_wire client for the xenstored integration tests: things libxenstore will not do
(garbage, pipelining, never reading, dying mid-transaction).

  xsraw.py protocol SOCK0 SOCK1     protocol checks; exit 0 if all hold
  xsraw.py flood SOCK PATH N        N pipelined writes of PATH, replies checked
  xsraw.py killtx SOCK PATH         start a transaction, write PATH in it, SIGKILL ourselves
  xsraw.py fuzz SOCK0 SOCK1 N SEED  N random requests from dom0 and guest 1; daemon must live
"""
import os
import signal
import socket
import struct
import sys

T = dict(CONTROL=0, DIRECTORY=1, READ=2, GET_PERMS=3, WATCH=4, UNWATCH=5,
         TRANSACTION_START=6, TRANSACTION_END=7, INTRODUCE=8, RELEASE=9,
         GET_DOMAIN_PATH=10, WRITE=11, MKDIR=12, RM=13, SET_PERMS=14, WATCH_EVENT=15,
         ERROR=16, IS_DOMAIN_INTRODUCED=17, RESUME=18, SET_TARGET=19, RESET_WATCHES=21,
         DIRECTORY_PART=22)
HDR = struct.Struct("<IIII")
PAYLOAD_MAX = 4096

failures = 0


def check(cond, what):
    global failures
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        failures += 1


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.s.settimeout(10)
        self.next_id = 1
        self.events = []

    def send(self, typ, payload, req_id=None, tx_id=0, length=None):
        if req_id is None:
            req_id = self.next_id
            self.next_id += 1
        ln = len(payload) if length is None else length
        self.s.sendall(HDR.pack(typ, req_id, tx_id, ln) + payload)
        return req_id

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def recv(self):
        typ, req_id, tx_id, ln = HDR.unpack(self._recv_exact(HDR.size))
        return typ, req_id, tx_id, self._recv_exact(ln)

    def recv_reply(self):
        while True:
            m = self.recv()
            if m[0] == T["WATCH_EVENT"]:
                self.events.append(m[3])
                continue
            return m

    def req(self, typ, payload, tx_id=0):
        rid = self.send(typ, payload, tx_id=tx_id)
        m = self.recv_reply()
        if m[1] != rid:
            raise RuntimeError("reply req_id %d for request %d" % (m[1], rid))
        return m


def err(m):
    return m[3].rstrip(b"\0").decode() if m[0] == T["ERROR"] else None


def protocol(sock0, sock1):
    c = Conn(sock0)
    m = c.req(999, b"x\0")
    check(err(m) == "ENOSYS", "unknown type -> ENOSYS")
    m = c.req(T["WATCH_EVENT"], b"x\0y\0")
    check(err(m) == "ENOSYS", "client-sent WATCH_EVENT -> ENOSYS")
    m = c.req(T["ERROR"], b"EINVAL\0")
    check(err(m) == "ENOSYS", "client-sent ERROR -> ENOSYS")
    m = c.req(T["READ"], b"/local/domain/0/name\0", tx_id=12345)
    check(err(m) == "ENOENT", "unknown tx_id -> ENOENT")
    m = c.req(T["READ"], b"/local/domain/0/name")
    check(err(m) == "EINVAL", "payload without NUL -> EINVAL")
    m = c.req(T["READ"], b"/local/domain/0/name\0extra\0")
    check(err(m) == "EINVAL", "two strings where one is expected -> EINVAL")
    m = c.req(T["READ"], b"/local/domain/0/name\0")
    check(m[0] == T["READ"] and m[3] == b"Domain-0", "READ returns the value without NUL")
    m = c.req(T["WRITE"], b"/raw/bin\0a\0b\xff")
    check(m[0] == T["WRITE"] and m[3] == b"OK\0", "WRITE of binary data -> OK")
    m = c.req(T["READ"], b"/raw/bin\0")
    check(m[3] == b"a\0b\xff", "binary value round-trips")
    m = c.req(T["GET_DOMAIN_PATH"], b"7\0")
    check(m[3] == b"/local/domain/7\0", "GET_DOMAIN_PATH")
    m = c.req(T["GET_DOMAIN_PATH"], b"7x\0")
    check(err(m) == "EINVAL", "GET_DOMAIN_PATH garbage -> EINVAL")

    # Transactions: reply echoes tx_id; isolation; nested start is EBUSY.
    m = c.req(T["TRANSACTION_START"], b"\0")
    tx = int(m[3].rstrip(b"\0"))
    check(m[0] == T["TRANSACTION_START"] and tx != 0, "TRANSACTION_START gives an id")
    m = c.req(T["WRITE"], b"/raw/tx\0v", tx_id=tx)
    check(m[2] == tx and m[3] == b"OK\0", "reply echoes tx_id")
    m = c.req(T["READ"], b"/raw/tx\0")
    check(err(m) == "ENOENT", "uncommitted write invisible outside")
    m = c.req(T["TRANSACTION_START"], b"\0", tx_id=tx)
    check(err(m) == "EBUSY", "nested TRANSACTION_START -> EBUSY")
    m = c.req(T["TRANSACTION_END"], b"X\0", tx_id=tx)
    check(err(m) == "EINVAL", "TRANSACTION_END with bad argument -> EINVAL")
    m = c.req(T["TRANSACTION_END"], b"T\0", tx_id=tx)
    check(m[3] == b"OK\0", "commit")
    m = c.req(T["READ"], b"/raw/tx\0")
    check(m[3] == b"v", "committed write visible")

    # DIRECTORY_PART framing: generation, children, final empty string.
    m = c.req(T["DIRECTORY_PART"], b"/raw\0" + b"0\0")
    parts = m[3].split(b"\0")
    check(m[0] == T["DIRECTORY_PART"] and parts[0].isdigit() and parts[1:] == [b"bin", b"tx", b"", b""],
          "DIRECTORY_PART: gen, children, terminating empty string (%r)" % m[3])
    m = c.req(T["DIRECTORY_PART"], b"/raw\0" + b"100\0")
    check(m[3].split(b"\0")[1:] == [b"", b""], "DIRECTORY_PART past the end")

    # Watch: OK then the initial event; event format path\0token\0.
    rid = c.send(T["WATCH"], b"/raw\0tok\0")
    m = c.recv()
    check(m[0] == T["WATCH"] and m[1] == rid and m[3] == b"OK\0", "WATCH -> OK")
    m = c.recv()
    check(m[0] == T["WATCH_EVENT"] and m[3] == b"/raw\0tok\0" and m[1] == 0,
          "initial watch event /raw\\0tok\\0")
    c.req(T["WRITE"], b"/raw/bin\0z")
    check(c.events == [b"/raw/bin\0tok\0"], "event for the write (%r)" % c.events)
    c.events = []
    m = c.req(T["RESET_WATCHES"], b"\0")
    check(m[3] == b"OK\0", "RESET_WATCHES")
    c.req(T["WRITE"], b"/raw/bin\0y")
    check(c.events == [], "no events after RESET_WATCHES")

    # Guests: privileged operations refused, relative paths resolved.
    g = Conn(sock1)
    m = g.req(T["INTRODUCE"], b"5\0" + b"0\0" + b"0\0")
    check(err(m) == "EACCES", "guest INTRODUCE -> EACCES")
    m = g.req(T["IS_DOMAIN_INTRODUCED"], b"1\0")
    check(err(m) == "EACCES", "guest IS_DOMAIN_INTRODUCED -> EACCES")
    m = g.req(T["READ"], b"/raw/tx\0")
    check(err(m) == "EACCES", "guest reading dom0's node -> EACCES")
    m = c.req(T["SET_PERMS"], b"/raw/tx\0n0\0r1\0")
    check(m[3] == b"OK\0", "SET_PERMS n0 r1")
    m = g.req(T["READ"], b"/raw/tx\0")
    check(m[3] == b"v", "guest reads after r1")
    m = c.req(T["GET_PERMS"], b"/raw/tx\0")
    check(m[3] == b"n0\0r1\0", "GET_PERMS strings")
    m = c.req(T["SET_PERMS"], b"/raw/tx\0q0\0")
    check(err(m) == "EINVAL", "SET_PERMS with a bad perm string -> EINVAL")

    # Quotas for guests: 128 watches, 10 transactions, 32 connections.
    q = Conn(sock1)
    res = [q.req(T["WATCH"], b"/w%d\0t\0" % i) for i in range(129)]
    check(all(m[3] == b"OK\0" for m in res[:128]) and err(res[128]) == "E2BIG",
          "guest: 128 watches, the 129th is E2BIG")
    res = [q.req(T["TRANSACTION_START"], b"\0") for i in range(11)]
    check(all(m[0] == T["TRANSACTION_START"] for m in res[:10]) and err(res[10]) == "ENOSPC",
          "guest: 10 transactions, the 11th is ENOSPC")
    q2 = Conn(sock1)
    check(err(q2.req(T["WATCH"], b"/other\0t\0")) == "E2BIG",
          "guest: the watch quota is per domain, not per connection")
    check(err(q2.req(T["TRANSACTION_START"], b"\0")) == "ENOSPC",
          "guest: the transaction quota is per domain, not per connection")
    q2.s.close()
    extra = []
    try:
        for i in range(70):
            e = Conn(sock1)
            extra.append(e)
            e.req(T["GET_DOMAIN_PATH"], b"1\0")
        refused = False
    except (EOFError, ConnectionResetError, BrokenPipeError):
        refused = True
    check(refused and len(extra) <= 32, "guest: connections beyond 32 refused (%d)" % len(extra))
    for e in extra:
        e.s.close()
    q.s.close()

    # Pipelining: 200 requests in one send, replies in order.
    buf = b""
    for i in range(200):
        buf += HDR.pack(T["READ"], 1000 + i, 0, len(b"/raw/tx\0")) + b"/raw/tx\0"
    c.s.sendall(buf)
    ids = [c.recv_reply()[1] for _ in range(200)]
    check(ids == list(range(1000, 1200)), "200 pipelined requests answered in order")

    # Garbage: an oversized header closes that connection only.
    bad = Conn(sock0)
    bad.send(T["READ"], b"", length=PAYLOAD_MAX + 1)
    closed = False
    try:
        bad.recv()
    except (EOFError, ConnectionResetError):
        closed = True
    check(closed, "len > XENSTORE_PAYLOAD_MAX closes the connection")
    m = c.req(T["READ"], b"/raw/tx\0")
    check(m[3] == b"v", "other connections unaffected")
    # A half-sent message then a hang-up is harmless.
    half = Conn(sock0)
    half.s.sendall(HDR.pack(T["WRITE"], 1, 0, 100) + b"/raw/half\0")
    half.s.close()
    m = c.req(T["READ"], b"/raw/half\0")
    check(err(m) == "ENOENT", "half-sent write discarded")
    c.req(T["RM"], b"/raw\0")
    return failures == 0


def flood(sock, path, n):
    c = Conn(sock)
    p = path.encode() + b"\0"
    batch = 256
    sent = 0
    while sent < n:
        k = min(batch, n - sent)
        buf = b"".join(HDR.pack(T["WRITE"], sent + i + 1, 0, len(p) + len(str(sent + i)))
                       + p + str(sent + i).encode() for i in range(k))
        c.s.sendall(buf)
        for i in range(k):
            m = c.recv_reply()
            if m[0] != T["WRITE"] or m[1] != sent + i + 1:
                print("bad reply %r" % (m,))
                return False
        sent += k
    print("flood: %d writes acknowledged" % n)
    return True


def killtx(sock, path):
    c = Conn(sock)
    m = c.req(T["TRANSACTION_START"], b"\0")
    tx = int(m[3].rstrip(b"\0"))
    m = c.req(T["WRITE"], path.encode() + b"\0inside", tx_id=tx)
    assert m[3] == b"OK\0"
    c.send(T["WATCH"], b"/\0w\0")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def fuzz(sock0, sock1, n, seed):
    import random
    rnd = random.Random(seed)
    junk = [b"/", b"//", b"/fz/", b"@releaseDomain", b"@introduceDomain", b"x9", b"65536",
            b"", b"\xff\xfe", b"a" * 3000, b"/" + b"b" * 2100, b"T", b"F", b"0", b"7"]

    def path():
        depth = rnd.randrange(1, 5)
        comp = b"/".join(rnd.choice([b"a", b"b", b"c"]) for _ in range(depth))
        return rnd.choice([b"/fz/", b"/local/domain/1/fz/", b"fz/", b"/fz/",
                           b"/local/domain/2/"]) + comp

    def perms():
        return b"\0".join(rnd.choice([b"n", b"r", b"w", b"b"]) + str(rnd.randrange(4)).encode()
                          for _ in range(rnd.randrange(1, 4))) + b"\0"

    conns = [Conn(sock0), Conn(sock1)]
    txs = [[], []]
    sent = replies = ok_replies = 0
    for i in range(n):
        ci = rnd.randrange(2)
        c = conns[ci]
        tx = 0
        if rnd.random() < 0.85:
            typ = rnd.choice([T["READ"], T["WRITE"], T["WRITE"], T["MKDIR"], T["RM"],
                              T["DIRECTORY"], T["DIRECTORY_PART"], T["GET_PERMS"],
                              T["SET_PERMS"], T["WATCH"], T["UNWATCH"], T["TRANSACTION_START"],
                              T["TRANSACTION_END"], T["INTRODUCE"], T["RELEASE"],
                              T["IS_DOMAIN_INTRODUCED"], T["GET_DOMAIN_PATH"],
                              T["RESET_WATCHES"], T["SET_TARGET"]])
            pth = path()
            if typ == T["WRITE"]:
                payload = pth + b"\0" + rnd.choice([b"v", b"", b"x" * rnd.randrange(3000)])
            elif typ == T["SET_PERMS"]:
                payload = pth + b"\0" + perms()
            elif typ in (T["WATCH"], T["UNWATCH"]):
                payload = rnd.choice([pth, b"@releaseDomain", b"/fz"]) + b"\0" + \
                    rnd.choice([b"t1", b"t2"]) + b"\0"
            elif typ == T["DIRECTORY_PART"]:
                payload = pth + b"\0" + str(rnd.randrange(20)).encode() + b"\0"
            elif typ == T["TRANSACTION_START"]:
                payload = b"\0"
            elif typ == T["TRANSACTION_END"]:
                payload = rnd.choice([b"T\0", b"F\0"])
                tx = txs[ci].pop(rnd.randrange(len(txs[ci]))) if txs[ci] else 0
            elif typ == T["INTRODUCE"]:
                payload = str(rnd.randrange(2, 8)).encode() + b"\0" + b"0\0" + b"0\0"
            elif typ in (T["RELEASE"], T["IS_DOMAIN_INTRODUCED"], T["GET_DOMAIN_PATH"]):
                payload = str(rnd.randrange(2, 8)).encode() + b"\0"
            elif typ == T["SET_TARGET"]:
                payload = str(rnd.randrange(2, 8)).encode() + b"\0" + \
                    str(rnd.randrange(0, 8)).encode() + b"\0"
            elif typ == T["RESET_WATCHES"]:
                payload = b"\0"
            else:
                payload = pth + b"\0"
            if typ not in (T["TRANSACTION_END"], T["TRANSACTION_START"]) and txs[ci] and \
                    rnd.random() < 0.5:
                tx = rnd.choice(txs[ci])
        else:
            typ = rnd.choice(list(T.values()) + [rnd.randrange(40), 0xffff])
            parts = [rnd.choice(junk) for _ in range(rnd.randrange(4))]
            payload = b"\0".join(parts) + (b"\0" if rnd.random() < 0.8 else b"")
            tx = rnd.choice([0, 0, 1, 2, rnd.randrange(1 << 32)])
            if typ == T["RELEASE"]:
                payload = b"7\0"  # never release domain 1: our guest connection lives on
        payload = payload[:PAYLOAD_MAX]
        try:
            rid = c.send(typ, payload, tx_id=tx)
            sent += 1
            while True:
                m = c.recv()
                if m[0] != T["WATCH_EVENT"]:
                    break
            if m[1] != rid:
                print("reply for %d to request %d" % (m[1], rid))
                return False
            replies += 1
            ok_replies += m[0] != T["ERROR"]
            if typ == T["TRANSACTION_START"] and m[0] == typ:
                txs[ci].append(int(m[3].rstrip(b"\0")))
            if typ == T["RESET_WATCHES"] and m[0] == typ:
                txs[ci] = []
        except (EOFError, ConnectionResetError, BrokenPipeError, socket.timeout):
            print("connection %d lost after %d requests" % (ci, sent))
            return False
    for d in range(2, 10):
        conns[0].req(T["RELEASE"], str(d).encode() + b"\0")
    m = conns[0].req(T["CONTROL"], b"check\0")
    if m[3] != b"OK\0":
        print("store check after fuzzing: %r" % (m[3],))
        return False
    print("fuzz: %d requests, %d replies, %d not errors" % (sent, replies, ok_replies))
    return True


def main():
    cmd = sys.argv[1]
    if cmd == "protocol":
        ok = protocol(sys.argv[2], sys.argv[3])
    elif cmd == "flood":
        ok = flood(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "fuzz":
        ok = fuzz(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "killtx":
        killtx(sys.argv[2], sys.argv[3])
        ok = False
    else:
        print(__doc__)
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
