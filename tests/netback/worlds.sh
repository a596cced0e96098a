# Shared by the world-side itests (worlds_routed.itest, worlds_switched.itest); sourced, not run.
# One splitxen core, one splitxen-netback in namespace $nsN ("dom0"), guests as
# splitxen-tapfront in namespaces of their own. The caller sets tag (a short per-test prefix)
# before sourcing and calls world_start once its own checks for tools are done.
B=${SX_BUILD:-build}/bin
for p in splitxen splitxen-core splitxen-tapfront splitxen-netback; do
  [ -x "$B/$p" ] || { echo "SKIP: $B/$p not built"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, TAP)"; exit 77; }
for c in iperf3 python3 xenstore-read xenstore-write; do
  command -v $c >/dev/null || { echo "SKIP: $c missing"; exit 77; }
done
B=$(cd "$B" && pwd)
# The interpreter itself: a python3 found first on PATH may be a version manager's shell script
# (pyenv's costs 0.3 s a call, seconds on a loaded machine), and these files call it often.
PY=$(python3 -c 'import sys; print(sys.executable)') && [ -x "$PY" ] || PY=python3

export SPLITXEN_RUN=$(mktemp -d /tmp/sx-$tag-$$.XXXXXX)
export XENSTORED_PATH=$SPLITXEN_RUN/xenstored/socket
nsN=sx${tag}n$$
pids=() gpids=() namespaces=($nsN) cleanups=()
nb=
world_cleanup() {
  for c in "${cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
  # the guests first, while their backends still answer their close handshake (a frontend
  # whose backend is gone waits out its close timeout)
  for p in "${gpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${gpids[@]}"; do wait "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  "$B/splitxen" down >/dev/null 2>&1
  for n in "${namespaces[@]}"; do
    ip netns pids $n 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$n" 2>/dev/null
  done
  rm -rf "$SPLITXEN_RUN"
}
trap world_cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$SPLITXEN_RUN"/*.log; do echo "--- $f"; tail -25 "$f"; done
  exit 1
}
# stat FILE NAME: a counter of a splitxen stats file (common/stats.h layout)
stat() {
  "$PY" - "$1" "$2" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
nr = struct.unpack_from('<I', d, 4)[0]
hdr = 4 * 6 + 8 + 48 * 24
for i in range(nr):
    n = d[32 + 24 * i: 32 + 24 * (i + 1)].split(b'\0')[0].decode()
    if n == sys.argv[2]:
        print(struct.unpack_from('<Q', d, hdr + 8 * i)[0]); break
else:
    print(-1)
PY
}
DST=$SPLITXEN_RUN/stats/netback-0-0
newns() { ip netns add $1 || fail "ip netns add $1"; namespaces+=($1); ip -n $1 link set lo up; }

# world_start: the core, and netback in $nsN (which must exist)
world_start() {
  "$B/splitxen" up >/dev/null || fail "splitxen up"
  netback_start
}
netback_start() {
  rm -f "$DST"
  ip netns exec $nsN "$B/splitxen-netback" --domid 0 >>"$SPLITXEN_RUN/netback.log" 2>&1 &
  nb=$!; pids+=($nb)
  for i in $(seq 50); do [ -f "$DST" ] && break; sleep 0.1; done
  [ -f "$DST" ] || fail "netback wrote no daemon stats file"
}

# guest NAME VIFSPEC QUEUES IP: a domain with that vif, its tapfront in namespace sx<NAME>$$
# with eth0 at IP; prints nothing, sets dom_<NAME> and ns_<NAME>. BE: the backend domain (0).
guest() {
  local name=$1 spec=$2 q=$3 addr=$4
  cat >"$SPLITXEN_RUN/$name.cfg" <<EOF
name = "$name$$"
type = "pv"
memory = 64
vcpus = 1
vif = [ '$spec, queues=$q' ]
EOF
  local d
  d=$("$B/splitxen" create "$SPLITXEN_RUN/$name.cfg" 2>&1 | sed -n "s/.*(domid \([0-9]*\)).*/\1/p")
  [ -n "$d" ] || fail "domain $name not created"
  eval "dom_$name=$d ns_$name=sx$name$$"
  namespaces+=(sx$name$$)
  "$B/splitxen-tapfront" --domid "$d" --netns sx$name$$ --ip "$addr" --queues $q \
    >"$SPLITXEN_RUN/tap-$name.log" 2>&1 &
  local t=$!; gpids+=($t)
  for i in $(seq 150); do
    grep -q "eth0 in" "$SPLITXEN_RUN/tap-$name.log" && break
    kill -0 $t 2>/dev/null || fail "tapfront of $name exited"
    sleep 0.2
  done
  grep -q "eth0 in" "$SPLITXEN_RUN/tap-$name.log" || fail "tapfront of $name never brought eth0 up"
  [ "$(xenstore-read /local/domain/${BE:-0}/backend/vif/$d/0/state)" = 4 ] || fail "vif$d.0 not Connected"
  [ "$(stat $SPLITXEN_RUN/stats/vif-$d-0 queues)" = $q ] || fail "$name: netback runs $(stat $SPLITXEN_RUN/stats/vif-$d-0 queues) queues, want $q"
}

# reach NS ADDR: ping until a reply (a new port or route may need a moment), bounded
reach() {
  for i in $(seq 10); do ip netns exec $1 ping -c 1 -W 1 $2 >/dev/null 2>&1 && return 0; done
  return 1
}
# unreachable NS ADDR [ping args]: three pings, no reply
unreachable() {
  local ns=$1 a=$2; shift 2
  ! ip netns exec $ns ping -c 3 -i 0.3 -W 1 "$@" $a >/dev/null 2>&1
}
# apart MSG "NS ADDR [ping args]" [MSG "..."]...: each pair unreachable, all checked at once
# (each costs its pings' timeout); fails with the message of every pair that got a reply
apart() {
  local msgs=() ps=() i bad=
  while [ $# -ge 2 ]; do msgs+=("$1"); unreachable $2 & ps+=($!); shift 2; done
  for i in "${!ps[@]}"; do wait ${ps[$i]} || bad+="${bad:+; }${msgs[$i]}"; done
  [ -z "$bad" ] || fail "$bad"
}

# perf CLIENT_NS SERVER_NS SERVER_ADDR LABEL: iperf3 TCP for PERF_SECS (default 1) s each way;
# fails on no data or a retransmission storm (over PERF_RETRANS_PCT, default 2, % of the
# segments); prints Gbit/s. PERF_REMOTE gets the address the server saw the client connect from.
perf() {
  local cns=$1 sns=$2 addr=$3 label=$4 dir
  for dir in "" -R; do
    ip netns exec $sns iperf3 -s -1 -B $addr --json >"$SPLITXEN_RUN/iperf-srv.json" 2>&1 &
    local srv=$!
    for i in $(seq 30); do ip netns exec $sns ss -ltn 2>/dev/null | grep -q ":5201 " && break; sleep 0.1; done
    ip netns exec $cns timeout 20 iperf3 -c $addr -t ${PERF_SECS:-1} $dir ${PERF_ARGS:-} --json \
      >"$SPLITXEN_RUN/iperf.json" 2>&1 || fail "$label $dir: iperf3: $(tail -5 "$SPLITXEN_RUN/iperf.json")"
    wait $srv
    "$PY" - "$SPLITXEN_RUN/iperf.json" "$label ${dir:-(client sends)}" "${PERF_RETRANS_PCT:-2}" \
      "$SPLITXEN_RUN/iperf-srv.json" "$SPLITXEN_RUN/iperf-remote" <<'PY' || fail "$label $dir: retransmission storm or no data"
import json, sys
j = json.load(open(sys.argv[1]))
s = j['end']['sum_sent']; r = j['end']['sum_received']
segs = max(1, s['bytes'] // 1448)
rt = s.get('retransmits', 0)
print("%s: %.2f Gbit/s, %d retransmits (%.1f%% of ~%d segments)" %
      (sys.argv[2], r['bits_per_second'] / 1e9, rt, 100.0 * rt / segs, segs))
try:
    remote = json.load(open(sys.argv[4]))['start']['connected'][0]['remote_host']
except (OSError, ValueError, LookupError):
    remote = ''
open(sys.argv[5], 'w').write(remote)
sys.exit(0 if r['bytes'] > 4 << 20 and rt * 100 <= segs * float(sys.argv[3]) else 1)
PY
    PERF_REMOTE=$(cat "$SPLITXEN_RUN/iperf-remote")
  done
}

# detach DOMID DEVID: network-detach and wait for the TAP to go
detach() {
  "$B/splitxen" network-detach "$1" "$2" >"$SPLITXEN_RUN/detach.log" 2>&1 ||
    fail "network-detach $1 $2: $(cat "$SPLITXEN_RUN/detach.log")"
  for i in $(seq 50); do ip -n $nsN link show "vif$1.$2" >/dev/null 2>&1 || return 0; sleep 0.1; done
  fail "vif$1.$2 left behind after detach"
}

# bad_vif DOMID DEVID KEY=VALUE...: a vif directory written by hand (as a toolstack that
# checks nothing would), state last; waits for netback to fail it, checks what it wrote and
# that no TAP is left (in BADNS, default $nsN), then removes the directory. BAD_WANT: text
# hotplug-error must contain; BE: the backend domain (0).
bad_vif() {
  local d=$1 n=$2; shift 2
  local be=/local/domain/${BE:-0}/backend/vif/$d/$n fe=/local/domain/$d/device/vif/$n kv
  xenstore-write $fe/backend $be $fe/backend-id ${BE:-0} $fe/state 1 $fe/handle $n \
    $fe/mac 00:16:3e:00:ee:0$n || fail "write the bad vif's frontend"
  xenstore-write $be/frontend $fe $be/frontend-id $d $be/online 1 $be/handle $n \
    $be/mac 00:16:3e:00:ee:0$n || fail "write the bad vif's backend"
  for kv in "$@"; do xenstore-write "$be/${kv%%=*}" "${kv#*=}" || fail "write $kv"; done
  xenstore-chmod -r $be n${BE:-0} r$d && xenstore-write $be/state 1 || fail "backend dir perms"
  for i in $(seq 100); do [ "$(xenstore-read $be/state 2>/dev/null)" = 5 ] && break; sleep 0.1; done
  [ "$(xenstore-read $be/state)" = 5 ] || fail "bad vif ($*): backend state $(xenstore-read $be/state), want 5"
  [ "$(xenstore-read $be/hotplug-status)" = error ] || fail "bad vif ($*): hotplug-status $(xenstore-read $be/hotplug-status)"
  local msg; msg=$(xenstore-read $be/hotplug-error)
  [[ "$msg" == *"$BAD_WANT"* ]] || fail "bad vif ($*): hotplug-error '$msg' lacks '$BAD_WANT'"
  echo "bad vif ($*): $msg"
  ip -n ${BADNS:-$nsN} link show vif$d.$n >/dev/null 2>&1 && fail "bad vif ($*): TAP vif$d.$n left behind"
  xenstore-rm $be; xenstore-rm $fe
}
