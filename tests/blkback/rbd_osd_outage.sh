#!/usr/bin/env bash
# By hand (not part of make check: it takes about a minute and a half of a loaded machine): the
# OSD of a one-OSD Ceph cluster (BlueStore in a sparse file, so its data survives a restart)
# is killed (SIGKILL) while a guest writes through an rbd: vbd with rados_osd_op_timeout=5, and
# started again. Prints when requests start failing, when writes are acknowledged again, the
# vbd's counters, and the guest's verdict: every acknowledged write reads back as written.
#   SX_BUILD=build tests/blkback/rbd_osd_outage.sh
set -euo pipefail
export SX_BUILD=${SX_BUILD:-build} SX_TOP=${SX_TOP:-$PWD}
cd "$SX_TOP"
. tests/blkback/lib.sh
. tests/blkback/net.sh
. tests/blkback/ceph.sh
bb_need_all
ceph_need
ACK=$SX_BUILD/bin/splitxen-test-ackcheck
bf_need "$ACK"
bf_start
trap 'bf_cleanup; ceph_stop' EXIT
CEPH_STORE=bluestore ceph_start "$RUN/ceph"
rbd -c "$CEPH_CONF" create --size 128M --image-feature layering rbd/outage
bf_vbd "$DOM" 51712 xvda "rbd:rbd/outage:conf=$CEPH_CONF:rados_osd_op_timeout=5"
B=/local/domain/0/backend/vbd/$DOM/51712
STATS=$RUN/stats/vbd-$DOM-51712
bb_start
bb_wait_state "$B" 2
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
"$ACK" --domid "$DOM" --vdev xvda --bs 4096 --qd 8 --blocks 30000 --interval-us 1000 \
  --resume 300 --progress "$RUN/progress" --deadline 120 --hold "$RUN/done" \
  >"$RUN/ack.out" 2>"$RUN/ack.err" &
ACKPID=$!
bf_pids+=("$ACKPID")
acked() { read -r _ a _ f _ r _ 2>/dev/null <"$RUN/progress" && [ "${a:-0}" -ge "$1" ]; }
failed() { read -r _ a _ f _ r _ 2>/dev/null <"$RUN/progress" && [ "${f:-0}" -ge 1 ]; }
result() { [ -s "$RUN/ack.out" ]; }
wait_for "500 acknowledged writes" 1200 acked 500
echo "killing the OSD: $(cat "$RUN/progress")"
tk=$(now)
ceph_kill_osd
wait_for "a failed write" 1200 failed
echo "first failed request $(since "$tk") s after the kill: $(cat "$RUN/progress")"
ts=$(now)
ceph_start_osd
echo "OSD up $(since "$ts") s after its restart: $(cat "$RUN/progress")"
wait_for "the guest's result" 2400 result
echo "300 writes acknowledged after the outage $(since "$ts") s after the restart"
echo "counters: disconnects $(vbd_stat "$STATS" target_disconnects)" \
  "reconnects $(vbd_stat "$STATS" target_reconnects) failed $(vbd_stat "$STATS" target_failed)"
touch "$RUN/done"
rc=0
wait "$ACKPID" || rc=$?
cat "$RUN/ack.out" "$RUN/ack.err"
[ "$rc" = 0 ] && echo PASS || { echo "FAIL: ackcheck exited $rc"; exit 1; }
