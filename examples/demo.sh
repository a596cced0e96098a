#!/usr/bin/env bash
# splitxen demo, on the sim platform, with `splitxen` and the backends only:
#   a driver domain runs splitxen-blkback and splitxen-netback; a PV guest from
#   examples/pv-guest.cfg gets a disk image and a vif on xenbr0; fio (random read/write with
#   verify) and iperf3 run through the guest's frontends; the same jobs run on the raw path
#   (fio's own engines on the same image, iperf3 over a plain veth pair); a compact report
#   follows; everything is torn down, also when a step fails or on Ctrl-C.
#
#   examples/demo.sh            (make demo runs this after make deps and make)
#   SX_BUILD=build/san examples/demo.sh
#
# Sourcing this file (DEMO_SOURCE_ONLY=1) defines demo_setup / demo_run / demo_teardown /
# demo_leftovers without running them; tests/demo/teardown.itest uses that.
set -uo pipefail

DEMO_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${SX_BUILD:-$DEMO_TOP/build}
case "$B" in /*) ;; *) B=$DEMO_TOP/$B ;; esac
export SPLITXEN_RUN=${SPLITXEN_RUN:-/run/splitxen-demo}
DEMO_TAG=${DEMO_TAG:-sxdemo}
NS_DRV=$DEMO_TAG-drv          # the driver domain's network namespace: xenbr0 and the vif TAPs
NS_GUEST=$DEMO_TAG-guest      # the guest's: eth0 from splitxen-tapfront
NS_HVM=$DEMO_TAG-hvm          # the HVM guest's: eth0 from splitxen-hvmnet over the e1000
NS_RAW_A=$DEMO_TAG-rawa       # the raw baseline: a plain veth pair between two namespaces
NS_RAW_B=$DEMO_TAG-rawb
IMG=/var/tmp/splitxen/pv-guest.img
HVM_IMG=/var/tmp/splitxen/hvm-guest.img
DEMO_HVM=${DEMO_HVM:-1}       # 0: PV guest only
LOGDIR=${DEMO_LOGDIR:-$B/demo}
FIO_SECONDS=${DEMO_FIO_SECONDS:-8}
NET_SECONDS=${DEMO_NET_SECONDS:-4}
STEP_TIMEOUT=${DEMO_TIMEOUT:-30}
DEMO_T0=$SECONDS
PIDS_FILE=$SPLITXEN_RUN.pids

SX=$B/bin/splitxen
BLKBACK=$B/bin/splitxen-blkback
NETBACK=$B/bin/splitxen-netback
TAPFRONT=$B/bin/splitxen-tapfront
HVMNET=$B/bin/splitxen-hvmnet
FIOENGINE=$B/lib/splitxen-fio.so

step() { printf '[%5ds] %s\n' $((SECONDS - DEMO_T0)) "$*"; }
die() { printf '[%5ds] FAILED: %s\n' $((SECONDS - DEMO_T0)) "$*" >&2; return 1; }

# wait_for DESCRIPTION TIMEOUT COMMAND...: poll until COMMAND succeeds; say what we wait for.
wait_for() {
  local what=$1 t=$2; shift 2
  local end=$((SECONDS + t)) said=0
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      die "timed out after ${t}s waiting for $what"
      return 1
    fi
    if [ $said -eq 0 ]; then step "  waiting for $what"; said=1; fi
    sleep 0.2
  done
}

# start NAME COMMAND...: run in the background, log to $LOGDIR/NAME.log, remember the pid.
start() {
  local name=$1; shift
  ( "$@" >"$LOGDIR/$name.log" 2>&1 </dev/null & echo "$! $name" >>"$PIDS_FILE" )
}

xs_read() { XENSTORED_PATH=$SPLITXEN_RUN/xenstored/socket xenstore-read "$1" 2>/dev/null; }
xs_is() { [ "$(xs_read "$1")" = "$2" ]; }    # xs_is PATH VALUE, for wait_for
domid_of() { "$SX" list 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }

demo_setup() {
  [ "$(id -u)" -eq 0 ] || { die "the demo needs root (network namespaces, TAP devices)"; return 1; }
  local b
  for b in "$SX" "$BLKBACK" "$NETBACK" "$TAPFRONT" "$FIOENGINE"; do
    [ -e "$b" ] || { die "$b is missing: run make first"; return 1; }
  done
  command -v fio >/dev/null && command -v iperf3 >/dev/null || { die "fio and iperf3 are needed: make deps"; return 1; }
  mkdir -p "$LOGDIR" /var/tmp/splitxen
  : >"$PIDS_FILE"
  step "creating the guest's disk image $IMG (256 MiB)"
  rm -f "$IMG" && truncate -s 256M "$IMG" || return 1

  step "starting the sim hypervisor (splitxen-core + xenstored) in $SPLITXEN_RUN"
  "$SX" up >"$LOGDIR/up.log" 2>&1 || { cat "$LOGDIR/up.log"; die "splitxen up"; return 1; }

  step "creating the driver domain (examples/driver.cfg)"
  "$SX" create "$DEMO_TOP/examples/driver.cfg" >"$LOGDIR/create-driver.log" 2>&1 ||
    { cat "$LOGDIR/create-driver.log"; die "splitxen create driver"; return 1; }
  DRV=$(domid_of driver)
  [ -n "$DRV" ] || { die "driver domain has no id"; return 1; }

  step "starting splitxen-blkback and splitxen-netback in the driver domain (domid $DRV)"
  ip netns add "$NS_DRV" || return 1
  start blkback "$BLKBACK" --platform sim --domid "$DRV"
  start netback ip netns exec "$NS_DRV" "$NETBACK" --platform sim --domid "$DRV"

  step "creating the PV guest (examples/pv-guest.cfg: xvda on $IMG, vif on xenbr0)"
  "$SX" create "$DEMO_TOP/examples/pv-guest.cfg" -w >"$LOGDIR/create-guest.log" 2>&1 ||
    { cat "$LOGDIR/create-guest.log"; die "splitxen create pv-guest"; return 1; }
  GID=$(domid_of pv-guest)
  [ -n "$GID" ] || { die "guest has no id"; return 1; }
  step "  guest is domain $GID; backends answered (hotplug-status connected)"

  wait_for "xenbr0 in the driver domain's namespace" "$STEP_TIMEOUT" ip -n "$NS_DRV" link show xenbr0 || return 1
  ip -n "$NS_DRV" addr add 192.0.2.1/24 dev xenbr0 2>/dev/null
  ip -n "$NS_DRV" link set xenbr0 up
  ip -n "$NS_DRV" link set lo up

  step "starting the guest's netfront: eth0 192.0.2.2/24 in namespace $NS_GUEST"
  start tapfront "$TAPFRONT" --platform sim --domid "$GID" --devid 0 --netns "$NS_GUEST" --ip 192.0.2.2/24
  wait_for "vif $GID/0 to reach Connected (4)" "$STEP_TIMEOUT" \
    xs_is "/local/domain/$DRV/backend/vif/$GID/0/state" 4 || return 1
  wait_for "the guest to ping the driver domain's bridge (192.0.2.1)" "$STEP_TIMEOUT" \
    ip netns exec "$NS_GUEST" ping -c1 -W1 192.0.2.1 || return 1
  step "guest is up: disk and network connected"
}

# The HVM guest: splitxen create starts its device model (splitxen-dm: AHCI disk, e1000) in the
# driver's namespace so the e1000's TAP joins xenbr0 there. On sim the guest's "kernel" is the
# program acting as its vCPU: fio (--transport=ahci) for the disk job, then splitxen-hvmnet for
# the network; each attaches in turn (attaching resets the vCPU's ioreq slot, like a reboot).
demo_setup_hvm() {
  [ -x "$HVMNET" ] && [ -x "$B/bin/splitxen-dm" ] || { die "splitxen-dm / splitxen-hvmnet missing: run make first"; return 1; }
  step "creating the HVM guest (examples/hvm-guest.cfg: AHCI disk and e1000 from splitxen-dm)"
  rm -f "$HVM_IMG" && truncate -s 128M "$HVM_IMG" || return 1
  ip netns exec "$NS_DRV" "$SX" create "$DEMO_TOP/examples/hvm-guest.cfg" >"$LOGDIR/create-hvm.log" 2>&1 ||
    { cat "$LOGDIR/create-hvm.log"; die "splitxen create hvm-guest"; return 1; }
  HID=$(domid_of hvm-guest)
  [ -n "$HID" ] || { die "HVM guest has no id"; return 1; }
  wait_for "the HVM guest's device model (AHCI disk ready)" "$STEP_TIMEOUT" \
    grep -q '^ready ' "$SPLITXEN_RUN/dm-$HID.log" || return 1
  step "  HVM guest is domain $HID; its device model logs to $SPLITXEN_RUN/dm-$HID.log"
}

# The HVM guest's network driver over the e1000 (after the disk job).
demo_start_hvmnet() {
  start hvmnet "$HVMNET" --domid "$HID" --netns "$NS_HVM" --ip 192.0.2.3/24
  wait_for "the HVM guest to ping the driver domain's bridge over the e1000" "$STEP_TIMEOUT" \
    ip netns exec "$NS_HVM" ping -c1 -W1 192.0.2.1 || return 1
}

# fio_json FILE -> "iops bw_MBps p99_us" summed over read and write.
fio_summary() {
  python3 - "$1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
iops = bw = 0.0; p99 = 0.0
for job in j["jobs"]:
    for d in ("read", "write"):
        x = job[d]
        iops += x["iops"]; bw += x["bw_bytes"] / 1e6
        pct = x.get("clat_ns", {}).get("percentile", {})
        if pct:
            p99 = max(p99, pct.get("99.000000", 0) / 1000.0)
print(f"{iops:.0f} {bw:.1f} {p99:.0f}")
EOF
}

iperf_gbps() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.2f" % (j["end"]["sum_received"]["bits_per_second"]/1e9))' "$1"
}

ratio() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print("%.2f" % (a/b) if b else "n/a")' "$1" "$2"; }

demo_run() {
  local fio_common=(--name=demo --rw=randrw --rwmixread=70 --bs=4k --iodepth=16 --size=64M
                    --time_based=1 --runtime="$FIO_SECONDS" --verify=crc32c --verify_backlog=1024
                    --verify_state_save=0
                    --output-format=json)
  step "fio through splitxen: 4 KiB random read/write 70/30, QD16, verify=crc32c, ${FIO_SECONDS}s"
  fio --ioengine=external:"$FIOENGINE" --domid="$GID" --vdev=xvda --filename=xvda \
      "${fio_common[@]}" --output="$LOGDIR/fio-splitxen.json" >"$LOGDIR/fio-splitxen.log" 2>&1 ||
    { tail -20 "$LOGDIR/fio-splitxen.log"; die "fio through splitxen"; return 1; }
  read -r SX_IOPS SX_BW SX_P99 < <(fio_summary "$LOGDIR/fio-splitxen.json")

  step "fio on the raw image with fio's own engines (the fastest is the baseline)"
  local e best=0 best_e="" line
  for e in io_uring libaio psync; do
    fio --ioengine="$e" --filename="$IMG" --direct=1 "${fio_common[@]}" \
        --output="$LOGDIR/fio-raw-$e.json" >"$LOGDIR/fio-raw-$e.log" 2>&1 || continue
    line=$(fio_summary "$LOGDIR/fio-raw-$e.json")
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "${line%% *}" "$best"; then
      best=${line%% *}; best_e=$e; RAW_LINE=$line
    fi
  done
  [ -n "$best_e" ] || { die "no raw fio engine ran"; return 1; }
  read -r RAW_IOPS RAW_BW RAW_P99 <<<"$RAW_LINE"
  RAW_ENGINE=$best_e

  step "iperf3 through splitxen: guest -> driver domain and back, ${NET_SECONDS}s each"
  start iperf3-drv ip netns exec "$NS_DRV" iperf3 -s -B 192.0.2.1
  wait_for "iperf3 server in the driver domain" 10 ip netns exec "$NS_GUEST" bash -c 'exec 3<>/dev/tcp/192.0.2.1/5201' || return 1
  ip netns exec "$NS_GUEST" iperf3 -c 192.0.2.1 -t "$NET_SECONDS" --json >"$LOGDIR/iperf-g2h.json" 2>&1 ||
    { die "iperf3 guest->host"; return 1; }
  ip netns exec "$NS_GUEST" iperf3 -c 192.0.2.1 -t "$NET_SECONDS" -R --json >"$LOGDIR/iperf-h2g.json" 2>&1 ||
    { die "iperf3 host->guest"; return 1; }
  SX_G2H=$(iperf_gbps "$LOGDIR/iperf-g2h.json")
  SX_H2G=$(iperf_gbps "$LOGDIR/iperf-h2g.json")

  if [ "$DEMO_HVM" = 1 ]; then
    step "fio through the HVM guest's emulated AHCI disk (same job)"
    fio --ioengine=external:"$FIOENGINE" --transport=ahci --domid="$HID" --filename=hda \
        "${fio_common[@]}" --output="$LOGDIR/fio-hvm.json" >"$LOGDIR/fio-hvm.log" 2>&1 ||
      { tail -20 "$LOGDIR/fio-hvm.log"; die "fio through the emulated AHCI disk"; return 1; }
    read -r HVM_IOPS HVM_BW HVM_P99 < <(fio_summary "$LOGDIR/fio-hvm.json")
    step "iperf3 through the HVM guest's e1000 (splitxen-hvmnet): guest -> driver domain and back"
    demo_start_hvmnet || return 1
    ip netns exec "$NS_HVM" iperf3 -c 192.0.2.1 -t "$NET_SECONDS" --json >"$LOGDIR/iperf-hvm-g2h.json" 2>&1 ||
      { die "iperf3 over the e1000 (guest->host)"; return 1; }
    ip netns exec "$NS_HVM" iperf3 -c 192.0.2.1 -t "$NET_SECONDS" -R --json >"$LOGDIR/iperf-hvm-h2g.json" 2>&1 ||
      { die "iperf3 over the e1000 (host->guest)"; return 1; }
    HVM_G2H=$(iperf_gbps "$LOGDIR/iperf-hvm-g2h.json")
    HVM_H2G=$(iperf_gbps "$LOGDIR/iperf-hvm-h2g.json")
  fi

  step "iperf3 over a plain veth pair (the raw baseline)"
  ip netns add "$NS_RAW_A" && ip netns add "$NS_RAW_B" || return 1
  ip link add "$DEMO_TAG-va" netns "$NS_RAW_A" type veth peer name "$DEMO_TAG-vb" netns "$NS_RAW_B" || return 1
  ip -n "$NS_RAW_A" addr add 198.51.100.1/24 dev "$DEMO_TAG-va"
  ip -n "$NS_RAW_B" addr add 198.51.100.2/24 dev "$DEMO_TAG-vb"
  ip -n "$NS_RAW_A" link set "$DEMO_TAG-va" up
  ip -n "$NS_RAW_B" link set "$DEMO_TAG-vb" up
  start iperf3-raw ip netns exec "$NS_RAW_A" iperf3 -s -B 198.51.100.1
  wait_for "iperf3 server on the veth" 10 ip netns exec "$NS_RAW_B" bash -c 'exec 3<>/dev/tcp/198.51.100.1/5201' || return 1
  ip netns exec "$NS_RAW_B" iperf3 -c 198.51.100.1 -t "$NET_SECONDS" --json >"$LOGDIR/iperf-raw.json" 2>&1 ||
    { die "iperf3 over veth"; return 1; }
  RAW_GBPS=$(iperf_gbps "$LOGDIR/iperf-raw.json")

  echo
  echo "splitxen demo report (sim platform; guest domain $GID served by driver domain $DRV)"
  printf '  %-34s %12s %12s %8s\n' "" "splitxen" "raw" "ratio"
  printf '  %-34s %12s %12s %8s\n' "fio 4k randrw IOPS (verify)" "$SX_IOPS" "$RAW_IOPS" "$(ratio "$SX_IOPS" "$RAW_IOPS")"
  printf '  %-34s %12s %12s %8s\n' "fio MB/s" "$SX_BW" "$RAW_BW" "$(ratio "$SX_BW" "$RAW_BW")"
  printf '  %-34s %12s %12s %8s\n' "fio p99 completion latency (us)" "$SX_P99" "$RAW_P99" "$(ratio "$SX_P99" "$RAW_P99")"
  printf '  %-34s %12s %12s %8s\n' "iperf3 TCP guest->host Gbit/s" "$SX_G2H" "$RAW_GBPS" "$(ratio "$SX_G2H" "$RAW_GBPS")"
  printf '  %-34s %12s %12s %8s\n' "iperf3 TCP host->guest Gbit/s" "$SX_H2G" "$RAW_GBPS" "$(ratio "$SX_H2G" "$RAW_GBPS")"
  if [ "$DEMO_HVM" = 1 ]; then
    echo "  HVM guest $HID, emulated devices (splitxen-dm)   emulated      PV guest  emul/PV"
    printf '  %-34s %12s %12s %8s\n' "fio IOPS over AHCI" "$HVM_IOPS" "$SX_IOPS" "$(ratio "$HVM_IOPS" "$SX_IOPS")"
    printf '  %-34s %12s %12s %8s\n' "fio p99 latency (us) over AHCI" "$HVM_P99" "$SX_P99" "$(ratio "$HVM_P99" "$SX_P99")"
    printf '  %-34s %12s %12s %8s\n' "iperf3 e1000 guest->host Gbit/s" "$HVM_G2H" "$SX_G2H" "$(ratio "$HVM_G2H" "$SX_G2H")"
    printf '  %-34s %12s %12s %8s\n' "iperf3 e1000 host->guest Gbit/s" "$HVM_H2G" "$SX_H2G" "$(ratio "$HVM_H2G" "$SX_H2G")"
  fi
  echo "  raw fio engine: $RAW_ENGINE on the same image (O_DIRECT); raw network: a veth pair"
  echo "  logs: $LOGDIR"
  echo
}

# Kill the processes matching pattern $1 that this demo started (their environment names this
# run directory): another run on the same machine (a test, a second demo) keeps its own.
kill_ours() {
  local p
  for p in $(pgrep -f -- "$1" 2>/dev/null); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SPLITXEN_RUN=$SPLITXEN_RUN" &&
      kill "$p" 2>/dev/null
  done
}

# Tear down everything the demo made; safe to call at any point and more than once.
demo_teardown() {
  trap - INT TERM
  local pid name
  if [ -f "$PIDS_FILE" ]; then
    # Frontends and load generators first, then the guest, then the backends.
    while read -r pid name; do
      case "$name" in tapfront|hvmnet|iperf3-*) kill "$pid" 2>/dev/null ;; esac
    done <"$PIDS_FILE"
  fi
  kill_ours "--domid=.* --vdev=xvda"
  if [ -x "$SX" ] && [ -S "$SPLITXEN_RUN/core.sock" ]; then
    SPLITXEN_DEVICE_TIMEOUT=5 "$SX" destroy pv-guest >/dev/null 2>&1
    SPLITXEN_DEVICE_TIMEOUT=5 "$SX" destroy hvm-guest >/dev/null 2>&1
    SPLITXEN_DEVICE_TIMEOUT=5 "$SX" destroy driver >/dev/null 2>&1
  fi
  if [ -f "$PIDS_FILE" ]; then
    while read -r pid name; do kill "$pid" 2>/dev/null; done <"$PIDS_FILE"
    sleep 0.3
    while read -r pid name; do kill -9 "$pid" 2>/dev/null; done <"$PIDS_FILE"
    rm -f "$PIDS_FILE"
  fi
  [ -x "$SX" ] && "$SX" down >/dev/null 2>&1
  local ns
  kill_ours "splitxen-dm --domid .*$HVM_IMG"
  for ns in "$NS_GUEST" "$NS_HVM" "$NS_DRV" "$NS_RAW_A" "$NS_RAW_B"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$SPLITXEN_RUN"
  rm -f "$IMG" "$HVM_IMG"
}

# Print what the demo left behind (nothing, when teardown worked); return 1 if anything.
demo_leftovers() {
  local left=0 p
  for p in $(pgrep -f 'splitxen-(core|blkback|netback|tapfront|xenstored|dm|hvmnet)' 2>/dev/null); do
    if tr '\0' ' ' <"/proc/$p/environ" 2>/dev/null | grep -q "SPLITXEN_RUN=$SPLITXEN_RUN"; then
      echo "process left: $p $(tr '\0' ' ' <"/proc/$p/cmdline")"; left=1
    fi
  done
  ip netns list 2>/dev/null | grep -q "^$DEMO_TAG-" && { echo "namespace left: $(ip netns list | grep "^$DEMO_TAG-")"; left=1; }
  ip -o link show 2>/dev/null | grep -Eq ': (vif[0-9]+\.[0-9]+|xenbr0)[@:]' &&
    { echo "device left in the host namespace: $(ip -o link show | grep -Eo ': (vif[0-9]+\.[0-9]+|xenbr0)[@:]')"; left=1; }
  if ls -l /proc/[0-9]*/fd 2>/dev/null | grep -q 'memfd:sx-dom'; then
    echo "memfd left: $(ls -l /proc/[0-9]*/fd 2>/dev/null | grep 'memfd:sx-dom' | head -3)"; left=1
  fi
  [ -e "$SPLITXEN_RUN" ] && { echo "run dir left: $SPLITXEN_RUN"; left=1; }
  return $left
}

demo_main() {
  trap 'echo; step "interrupted: tearing down"; demo_teardown; exit 130' INT TERM
  local rc=0
  demo_teardown            # a previous run that was killed hard may have left things behind
  step "splitxen demo: build $B, run dir $SPLITXEN_RUN"
  if demo_setup && { [ "$DEMO_HVM" != 1 ] || demo_setup_hvm; } && demo_run; then
    step "tearing down"
  else
    rc=1
    step "a step failed: tearing down (logs in $LOGDIR)"
    for f in blkback netback tapfront hvmnet; do
      [ -s "$LOGDIR/$f.log" ] && { echo "--- $f.log (tail)"; tail -5 "$LOGDIR/$f.log"; }
    done
  fi
  demo_teardown
  if ! demo_leftovers; then
    die "teardown left the above behind"
    rc=1
  fi
  step "done (exit $rc)"
  return $rc
}

if [ "${DEMO_SOURCE_ONLY:-0}" != 1 ]; then
  demo_main
  exit $?
fi
