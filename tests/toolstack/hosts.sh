# Two sim "hosts" for the save/restore/migration tests (sourced). Each host is a run directory
# with its own splitxen-core and xenstored, a network namespace, splitxen-blkback and
# splitxen-netback; the hosts are joined by a management link (198.51.100.1 <-> .2, where the
# migration stream goes) and by a guest LAN: a bridge on each host with a veth between them,
# host A's bridge holding 192.0.2.1. A guest's eth0 (splitxen-tapfront, namespace $NSG) is
# 192.0.2.2 on that LAN wherever the guest runs. Names carry the test's PID.
#   mh_need                 skip (77) unless everything needed is there
#   mh_start                the hosts, backends running; sets RUNA RUNB NSA NSB NSG BR
#   on_host A|B CMD...      run CMD as a process of that host (its run dir, its namespace)
#   mh_bg LOG A|B|G CMD...  the same in the background (G: a process of the guest, started
#                           on host A), output to LOG; BGPID is CMD's own pid
#   mh_guest NAME MEM       create a guest on host A with a disk ($IMG) and a vif; sets DOM
#   mh_cleanup              everything this test started, also on failure (trap EXIT)
B=${SX_BUILD:-build}/bin
mh_pids=()
BBA= BBB= NBA= NBB=

mh_need() {
  for p in splitxen splitxen-core splitxen-blkback splitxen-netback splitxen-tapfront; do
    [ -x "$B/$p" ] || { echo "SKIP: $B/$p not built"; exit 77; }
  done
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, TAP)"; exit 77; }
  for c in fio iperf3 xenstore-read ip; do
    command -v $c >/dev/null || { echo "SKIP: $c missing (make deps)"; exit 77; }
  done
  ENGINE=$(realpath "${SX_BUILD:-build}/lib/splitxen-fio.so" 2>/dev/null || true)
  [ -f "$ENGINE" ] || { echo "SKIP: splitxen-fio.so not built"; exit 77; }
  B=$(cd "$B" && pwd)
}

mh_bg() {
  local log=$1 h=$2; shift 2
  if [ "$h" = G ]; then
    (exec env SPLITXEN_RUN="$RUNA" SPLITXEN_CORE="$RUNA/core.sock" "$@") >"$log" 2>&1 &
  else
    local run ns
    if [ "$h" = A ]; then run=$RUNA ns=$NSA; else run=$RUNB ns=$NSB; fi
    (exec ip netns exec "$ns" env SPLITXEN_RUN="$run" XENSTORED_PATH="$run/xenstored/socket" \
      SPLITXEN_CORE="$run/core.sock" "$@") >"$log" 2>&1 &
  fi
  BGPID=$!
  mh_pids+=("$BGPID")
}

as_guest() {   # as_guest CMD...: a process acting as the guest, started on host A
  env SPLITXEN_RUN="$RUNA" SPLITXEN_CORE="$RUNA/core.sock" "$@"
}

on_host() {   # on_host A|B CMD...
  local h=$1; shift
  local run ns
  if [ "$h" = A ]; then run=$RUNA ns=$NSA; else run=$RUNB ns=$NSB; fi
  ip netns exec "$ns" env SPLITXEN_RUN="$run" XENSTORED_PATH="$run/xenstored/socket" \
    SPLITXEN_CORE="$run/core.sock" "$@"
}

mh_cleanup() {
  local p
  for p in "${mh_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  # A guest process parked by a save waits for its restore and does not end on SIGTERM (nor
  # does fio waiting for it): what is still there after 5 s is killed.
  local i alive
  for ((i = 0; i < 100; i++)); do
    alive=0
    for p in "${mh_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.05
  done
  for p in "${mh_pids[@]}"; do pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  for p in "${mh_pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "${RUNA:-}" ] && SPLITXEN_RUN=$RUNA "$B/splitxen" down >/dev/null 2>&1
  [ -n "${RUNB:-}" ] && SPLITXEN_RUN=$RUNB "$B/splitxen" down >/dev/null 2>&1
  for n in ${NSG:-} ${NSA:-} ${NSB:-}; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  [ -n "${MHTMP:-}" ] && rm -rf "$MHTMP"
}

mh_fail() {
  echo "FAIL: $*"
  local f
  for f in "$MHTMP"/*.log "$RUNA"/*.log "$RUNB"/*.log; do
    [ -f "$f" ] && { echo "--- $f"; tail -25 "$f"; }
  done
  exit 1
}

# mh_backends H: blkback and netback of host H (logs in $MHTMP/{blk,net}back-H.N.log), once
# both serve (what they hold then is the baseline a test compares with after a guest).
mh_nback=0
mh_backends() {
  local h=$1
  mh_nback=$((mh_nback + 1))
  SPLITXEN_LOG=info mh_bg "$MHTMP/blkback-$h.$mh_nback.log" "$h" "$B/splitxen-blkback" --domid 0
  local bb=$BGPID
  SPLITXEN_LOG=info mh_bg "$MHTMP/netback-$h.$mh_nback.log" "$h" "$B/splitxen-netback" --domid 0
  local nb=$BGPID
  if [ "$h" = A ]; then BBA=$bb NBA=$nb; else BBB=$bb NBB=$nb; fi
  mh_wait_log "$MHTMP/blkback-$h.$mh_nback.log" "serving " 200 || mh_fail "blkback on $h did not start"
  mh_wait_log "$MHTMP/netback-$h.$mh_nback.log" "serving " 200 || mh_fail "netback on $h did not start"
}

mh_start() {
  MHTMP=$(mktemp -d /tmp/sx-hosts-$$.XXXXXX)
  RUNA=$MHTMP/hostA RUNB=$MHTMP/hostB
  NSA=sxhA$$ NSB=sxhB$$ NSG=sxhG$$ BR=sxhbr$$
  mkdir -p "$RUNA" "$RUNB"
  trap mh_cleanup EXIT
  ip netns add "$NSA" && ip netns add "$NSB" || mh_fail "ip netns add"
  local n
  for n in $NSA $NSB; do
    ip -n "$n" link set lo up
    ip -n "$n" link add "$BR" type bridge && ip -n "$n" link set "$BR" up || mh_fail "bridge in $n"
  done
  # The management link: the migration stream goes over TCP here.
  ip link add sxmA$$ netns "$NSA" type veth peer name sxmB$$ netns "$NSB" || mh_fail "veth"
  ip -n "$NSA" addr add 198.51.100.1/24 dev sxmA$$ && ip -n "$NSA" link set sxmA$$ up
  ip -n "$NSB" addr add 198.51.100.2/24 dev sxmB$$ && ip -n "$NSB" link set sxmB$$ up
  # The guest LAN: both bridges joined.
  ip link add sxlA$$ netns "$NSA" type veth peer name sxlB$$ netns "$NSB" || mh_fail "veth"
  ip -n "$NSA" link set sxlA$$ master "$BR" up && ip -n "$NSB" link set sxlB$$ master "$BR" up
  ip -n "$NSA" addr add 192.0.2.1/24 dev "$BR"
  SPLITXEN_RUN=$RUNA "$B/splitxen" up >/dev/null || mh_fail "core on host A"
  SPLITXEN_RUN=$RUNB "$B/splitxen" up >/dev/null || mh_fail "core on host B"
  mh_backends A
  mh_backends B
  IMG=$MHTMP/disk.img
  truncate -s 64M "$IMG"
}

# mh_wait_file FILE REGEX [TRIES]: poll (0.05 s steps) until a line matches.
mh_wait_log() {
  local f=$1 re=$2 n=${3:-200} i
  for ((i = 0; i < n; i++)); do
    grep -qE "$re" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# mh_xs_wait H PATH REGEX [TRIES]: poll a xenstore node of host H.
mh_xs_wait() {
  local h=$1 p=$2 re=$3 n=${4:-200} i
  for ((i = 0; i < n; i++)); do
    [[ "$(on_host "$h" xenstore-read "$p" 2>/dev/null || true)" =~ ^($re)$ ]] && return 0
    sleep 0.05
  done
  return 1
}

mh_guest() {   # mh_guest NAME MEM_MB [extra cfg lines]
  local name=$1 mem=$2
  cat >"$MHTMP/$name.cfg" <<CFG
name = "$name"
type = "pv"
memory = $mem
vcpus = 1
disk = [ 'format=raw, vdev=xvda, access=rw, target=$IMG' ]
vif = [ 'mac=00:16:3e:00:42:01, bridge=$BR' ]
CFG
  DOM=$(on_host A "$B/splitxen" create "$MHTMP/$name.cfg" 2>&1 | sed -n "s/.*(domid \([0-9]*\)).*/\1/p")
  [ -n "$DOM" ] || mh_fail "guest $name not created"
  mh_xs_wait A "/local/domain/0/backend/vbd/$DOM/51712/state" 2 || mh_fail "no blkback on A"
}

# mh_tapfront: the guest's eth0 (192.0.2.2 in $NSG) through host A's netback; sets TFPID.
mh_tapfront() {
  SPLITXEN_LOG=info mh_bg "$MHTMP/tapfront.log" G "$B/splitxen-tapfront" --domid "$DOM" \
    --netns "$NSG" --ip 192.0.2.2/24
  TFPID=$BGPID
  mh_wait_log "$MHTMP/tapfront.log" "eth0 in" 300 || mh_fail "tapfront did not come up"
  local i
  for ((i = 0; i < 20; i++)); do
    ip netns exec "$NSG" ping -c 1 -W 1 192.0.2.1 >/dev/null 2>&1 && return 0
  done
  mh_fail "the guest cannot reach 192.0.2.1"
}

# Domain of host H named N: its domid, or nothing.
mh_domid() { on_host "$1" "$B/splitxen" list | awk -v n="$2" '$1 == n { print $2 }'; }

# What a backend holds of guests: fds naming domain memfds, mappings of them, threads.
mh_memfds() {
  local n=0 f
  for f in /proc/"$1"/fd/*; do
    case "$(readlink "$f" 2>/dev/null)" in /memfd:sx-dom*) n=$((n + 1)) ;; esac
  done
  echo "$n"
}
mh_counts() {
  echo "fds $(ls /proc/"$1"/fd | wc -l) memfds $(mh_memfds "$1")" \
       "maps $(grep -c 'memfd:sx-dom' /proc/"$1"/maps) threads $(mh_threads "$1")"
}
mh_threads() {   # not counting io_uring's own workers, which come and go
  local n=0 t
  for t in /proc/"$1"/task/*; do
    case "$(cat "$t/comm" 2>/dev/null)" in iou-*) ;; *) n=$((n + 1)) ;; esac
  done
  echo "$n"
}
# mh_settle PID WANT: wait (10 s) for a backend's counts to be WANT.
mh_settle() {
  local i
  for ((i = 0; i < 200; i++)); do
    [ "$(mh_counts "$1")" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
