# Shared setup for tests/torture/net_*.itest (sourced): `splitxen up`, netback in namespace
# sxcn<pid> with its bridge (192.0.2.1/24) and the arguments in NB_ARGS, guests made with
# `splitxen create` whose splitxen-tapfront gives namespace sxcg<pid>-N an eth0, and the traffic
# the tests check: ping, iperf3 both ways, and a checksummed byte stream each way.
set -u
B=${SX_BUILD:-build}/bin
for p in splitxen splitxen-core splitxen-tapfront splitxen-netback; do
  [ -x "$B/$p" ] || { echo "SKIP: $B/$p not built"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, TAP)"; exit 77; }
for c in iperf3 python3 xenstore-read; do
  command -v $c >/dev/null || { echo "SKIP: $c missing"; exit 77; }
done
B=$(cd "$B" && pwd)
# The checker's missing-notification timer (default 250 ms, reported after twice that) at 1 s:
# these runs share two cores with sanitizers and other tests, where a frontend's push and its
# notification can be that far apart; tests/netback/check_test.c covers the default timer.
export SPLITXEN_CHECK_NOTIFY_MS=${SPLITXEN_CHECK_NOTIFY_MS:-1000}
export SPLITXEN_RUN=$(mktemp -d /tmp/sx-ttnet-$$.XXXXXX)
export XENSTORED_PATH=$SPLITXEN_RUN/xenstored/socket
nsN=sxcn$$ br=sxcb$$
pids=() guest_ns=()
NB_PID=
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  "$B/splitxen" down >/dev/null 2>&1
  for n in "${guest_ns[@]}" $nsN; do
    ip netns pids $n 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$n" 2>/dev/null
  done
  rm -rf "$SPLITXEN_RUN"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$SPLITXEN_RUN"/*.log "$SPLITXEN_RUN"/check/*.txt; do [ -e "$f" ] && { echo "--- $f"; tail -25 "$f"; }; done
  exit 1
}

# nl_up: the core and netback (with NB_ARGS) in its namespace, the bridge with 192.0.2.1/24.
nl_up() {
  "$B/splitxen" up >/dev/null || fail "splitxen up"
  ip netns add $nsN || fail "ip netns add $nsN"
  ip -n $nsN link set lo up
  # shellcheck disable=SC2086
  ip netns exec $nsN "$B/splitxen-netback" --domid 0 ${NB_ARGS:-} >"$SPLITXEN_RUN/netback.log" 2>&1 &
  NB_PID=$!
  pids+=($NB_PID)
}

# nl_guest N QUEUES: guest N (192.0.2.1N/24) with a vif of QUEUES queues and its tapfront; sets
# DOMN[N]. Waits for eth0 and the ping of the bridge.
declare -A DOMN
nl_guest() {
  local n=$1 q=$2 d i
  cat >"$SPLITXEN_RUN/g$n.cfg" <<EOF
name = "ttn$n-$$"
type = "pv"
memory = 64
vcpus = 1
vif = [ 'mac=00:16:3e:00:2c:0$n, bridge=$br, queues=$q' ]
EOF
  d=$("$B/splitxen" create "$SPLITXEN_RUN/g$n.cfg" 2>&1 | sed -n "s/.*(domid \([0-9]*\)).*/\1/p")
  [ -n "$d" ] || fail "domain $n not created"
  DOMN[$n]=$d
  for i in $(seq 100); do ip -n $nsN link show "vif$d.0" >/dev/null 2>&1 && break; sleep 0.1; done
  guest_ns+=(sxcg$$-$n)
  "$B/splitxen-tapfront" --domid "$d" --netns sxcg$$-$n --ip 192.0.2.1$n/24 --queues "$q" \
    >"$SPLITXEN_RUN/tap$n.log" 2>&1 &
  pids+=($!)
  for i in $(seq 150); do grep -q "eth0 in" "$SPLITXEN_RUN/tap$n.log" && break; sleep 0.2; done
  grep -q "eth0 in" "$SPLITXEN_RUN/tap$n.log" || fail "tapfront $n gave no eth0"
  if ! ip -n $nsN addr show dev $br | grep -q 192.0.2.1/24; then
    ip -n $nsN addr add 192.0.2.1/24 dev $br || fail "address on $br"
    ip -n $nsN link set $br up
  fi
  for i in $(seq 20); do ip netns exec sxcg$$-$n ping -c 1 -W 1 192.0.2.1 >/dev/null 2>&1 && return 0; done
  fail "guest $n: no reply from 192.0.2.1"
}

# nl_ping N: 20 pings, none lost
nl_ping() {
  ip netns exec sxcg$$-$1 ping -c 20 -i 0.05 -W 2 192.0.2.1 >"$SPLITXEN_RUN/ping$1.out" 2>&1 ||
    fail "guest $1: ping: $(tail -2 "$SPLITXEN_RUN/ping$1.out")"
  echo "guest $1 ping: $(grep -o '[0-9]* received' "$SPLITXEN_RUN/ping$1.out") of 20"
}

# nl_iperf N ARGS...: iperf3 TCP guest N -> bridge (or -R) for 3 s; prints the rate
nl_iperf() {
  local n=$1; shift
  ip netns exec $nsN iperf3 -s -1 -B 192.0.2.1 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.3
  ip netns exec sxcg$$-$n timeout 30 iperf3 -c 192.0.2.1 -t 3 --json "$@" >"$SPLITXEN_RUN/iperf.json" 2>&1 ||
    { kill $srv 2>/dev/null; fail "guest $n: iperf3 $*: $(tail -5 "$SPLITXEN_RUN/iperf.json")"; }
  wait $srv 2>/dev/null
  python3 - "$SPLITXEN_RUN/iperf.json" "guest $n iperf3 $*" <<'PY' || fail "guest $n: iperf3 $*: no data"
import json, sys
j = json.load(open(sys.argv[1]))
r = j['end']['sum_received']; s = j['end']['sum_sent']
print("%s: %.2f Gbit/s, %d retransmits" % (sys.argv[2], r['bits_per_second'] / 1e9,
                                          s.get('retransmits', 0)))
sys.exit(0 if r['bytes'] > 1 << 20 else 1)
PY
}

# nl_stream N DIR MIB: MIB random bytes guest N -> bridge (DIR tx) or bridge -> guest N (rx),
# sha256 compared on both ends.
nl_stream() {
  local n=$1 dir=$2 mib=$3 src rcv snd port
  port=$((5100 + n))
  head -c $((mib << 20)) /dev/urandom >"$SPLITXEN_RUN/stream.bin"
  if [ "$dir" = tx ]; then rcv="ip netns exec $nsN" snd="ip netns exec sxcg$$-$n" src=192.0.2.1
  else rcv="ip netns exec sxcg$$-$n" snd="ip netns exec $nsN" src=192.0.2.1$n; fi
  $rcv timeout 60 python3 -c '
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())' "$src" $port >"$SPLITXEN_RUN/stream.rcv" 2>&1 &
  local r=$!
  sleep 0.3
  $snd timeout 60 python3 -c '
import socket, sys, time
for i in range(50):
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); break
    except OSError: time.sleep(0.1)
s.sendall(open(sys.argv[3], "rb").read()); s.shutdown(socket.SHUT_WR); s.recv(1)' \
    "$src" $port "$SPLITXEN_RUN/stream.bin" || fail "guest $n: stream $dir: sender failed"
  wait $r || fail "guest $n: stream $dir: receiver failed: $(cat "$SPLITXEN_RUN/stream.rcv")"
  local want; want="$((mib << 20)) $(sha256sum <"$SPLITXEN_RUN/stream.bin" | cut -d' ' -f1)"
  [ "$(cat "$SPLITXEN_RUN/stream.rcv")" = "$want" ] ||
    fail "guest $n: stream $dir: got '$(cat "$SPLITXEN_RUN/stream.rcv")', sent '$want'"
  echo "guest $n stream $dir: $mib MiB, sha256 verified"
}

# nl_down: SIGTERM netback (its reports are written as the vifs go), check a clean exit
nl_down() {
  kill -TERM $NB_PID
  wait $NB_PID; local rc=$?
  pids=("${pids[@]/$NB_PID}")
  [ $rc = 0 ] || fail "netback exited with status $rc"
}
