# Shared setup for tests/blkfront/*.itest (sourced, not run): a private splitxen-core with its
# xenstored, one guest domain, the libxl vbd layout written with xenstore-utils, cleanup on
# exit. Needs SX_BUILD.

bf_pids=()
bf_cleanup() {
  local i
  for ((i = ${#bf_pids[@]} - 1; i >= 0; i--)); do
    kill "${bf_pids[i]}" 2>/dev/null || true
    wait "${bf_pids[i]}" 2>/dev/null || true
  done
  [ -n "${RUN:-}" ] && rm -rf "$RUN"
}

bf_need() {   # binaries that must exist
  local b
  for b in "$@"; do
    [ -x "$b" ] || { echo "SKIP: $b not built (make B=$SX_BUILD)"; exit 77; }
  done
}

# Start the core, create the guest: sets RUN, DOM, exports SPLITXEN_RUN/CORE, XENSTORED_PATH.
bf_start() {
  command -v xenstore-write >/dev/null || { echo "SKIP: xenstore-utils not installed"; exit 77; }
  RUN=$(mktemp -d "/tmp/sx-blkfront.$$.XXXXXX")
  trap bf_cleanup EXIT
  "$SX_BUILD/bin/splitxen-core" --run-dir "$RUN" >"$RUN/core.log" 2>&1 &
  bf_pids+=($!)
  local i
  for ((i = 0; i < 100; i++)); do
    [ -S "$RUN/core.sock" ] && [ -S "$RUN/xenstored/socket" ] && break
    sleep 0.05
  done
  [ -S "$RUN/xenstored/socket" ] || { cat "$RUN/core.log"; echo "FAIL: splitxen-core did not start"; exit 1; }
  export SPLITXEN_RUN=$RUN SPLITXEN_CORE=$RUN/core.sock XENSTORED_PATH=$RUN/xenstored/socket
  DOM=$("$SX_BUILD/bin/splitxen-test-mkdom" "blkfront-$$" 128) ||
    { echo "FAIL: could not create the guest domain"; exit 1; }
}

# The libxl layout of one vbd (xenstore-paused.txt): bf_vbd FE DEVID VDEV PARAMS [MODE]
bf_vbd() {
  local fe=$1 devid=$2 vdev=$3 params=$4 mode=${5:-w}
  local F=/local/domain/$fe/device/vbd/$devid B=/local/domain/0/backend/vbd/$fe/$devid
  xenstore-write "$F/backend" "$B" "$F/backend-id" 0 "$F/state" 1 \
    "$F/virtual-device" "$devid" "$F/device-type" disk "$F/trusted" 1 "$F/protocol" x86_64-abi
  xenstore-chmod "/local/domain/$fe/device" n0 "r$fe"
  xenstore-chmod "/local/domain/$fe/device/vbd" n0 "r$fe"
  xenstore-chmod -r "$F" "n$fe" r0
  xenstore-write "$B/frontend" "$F" "$B/params" "$params" "$B/frontend-id" "$fe" \
    "$B/online" 1 "$B/removable" 0 "$B/bootable" 1 "$B/dev" "$vdev" "$B/type" phy \
    "$B/mode" "$mode" "$B/device-type" disk "$B/discard-enable" 1 "$B/specification" xen
  xenstore-write "$B/state" 1
  xenstore-chmod -r "$B" n0 "r$fe"
}

# Run fio, keep terse v3 output in $RUN/$name.out; fail with the logs on error.
# bf_fio NAME ARGS...  -> sets F (terse fields, 0-based array)
bf_fio() {
  local name=$1
  shift
  if ! timeout 120 fio --ioengine="external:$ENGINE" --domid="$DOM" "$@" \
      --output-format=terse --terse-version=3 >"$RUN/$name.out" 2>"$RUN/$name.err"; then
    cat "$RUN/$name.err" "$RUN/$name.out"
    echo "FAIL: fio $name exited non-zero"
    exit 1
  fi
  IFS=';' read -r -a F <"$RUN/$name.out"
  # terse v3 (1-based): 5 error, 6 read KiB, 8 read IOPS, 47 write KiB, 49 write IOPS
  [ "${F[4]}" = 0 ] || { cat "$RUN/$name.err" "$RUN/$name.out"; echo "FAIL: fio $name: job error ${F[4]}"; exit 1; }
}

# The fio runs both backends must pass (needs ENGINE, DOM, RUN; vbd xvda of >= 64 MiB).
bf_fio_suite() {
  local wjob=(--name=w1 --rw=write --bs=64k --size=16M --iodepth=16 --verify=crc32c --vdev=xvda)
  # 1. Sequential 64 KiB writes (16 segments: indirect) verified in the same run.
  bf_fio w1 "${wjob[@]}" --do_verify=1
  [ "${F[46]}" = 16384 ] || { cat "$RUN/w1.out"; echo "FAIL: wrote ${F[46]} KiB, expected 16384"; exit 1; }
  # 2. Reconnect and verify the same data again through each negotiation combination:
  #    persistent, indirect segments, ring order, queues.
  local combo
  for combo in "1 256 4 1" "0 256 4 1" "1 0 0 1" "0 0 0 2" "1 32 2 2"; do
    set -- $combo
    bf_fio "v-$1-$2-$3-$4" "${wjob[@]}" --verify_only --iodepth=8 \
      --persistent="$1" --indirect="$2" --ring_order="$3" --queues="$4"
    [ "${F[5]}" = 16384 ] || { cat "$RUN/v-$1-$2-$3-$4.out"; echo "FAIL: combo $combo verified ${F[5]} KiB"; exit 1; }
  done
  # 3. Two jobs on two queues (thread mode shares one blkfront), random 4 KiB mixed I/O.
  bf_fio mq --name=mq --thread --numjobs=2 --queues=2 --rw=randrw --bs=4k --size=8M \
    --offset_increment=8M --offset=32M --iodepth=32 --verify=crc32c --do_verify=1 --group_reporting
  # 4. Three jobs on two queues: two share queue 0 and hand each other's completions over.
  bf_fio mq3 --name=mq3 --thread --numjobs=3 --queues=2 --rw=randread --bs=4k --size=4M \
    --offset_increment=4M --offset=48M --iodepth=8 --group_reporting
  [ "${F[5]}" = 12288 ] || { cat "$RUN/mq3.out"; echo "FAIL: mq3 read ${F[5]} KiB, expected 12288"; exit 1; }
  # 5. Flushes (fsync=) and trims complete without errors, where the backend offers them
  #    (it published its features when it connected; they stay in its directory).
  local B=/local/domain/0/backend/vbd/$DOM/51712
  if [ "$(xenstore-read "$B/feature-flush-cache" 2>/dev/null || echo 0)" = 1 ] ||
     [ "$(xenstore-read "$B/feature-barrier" 2>/dev/null || echo 0)" = 1 ]; then
    bf_fio sync --name=sync --rw=randwrite --bs=4k --size=4M --offset=32M --iodepth=4 --fsync=8
  else
    echo "note: backend offers no flush; fsync jobs not run"
  fi
  if [ "$(xenstore-read "$B/feature-discard" 2>/dev/null || echo 0)" = 1 ]; then
    bf_fio trim --name=trim --rw=randtrim --bs=64k --size=4M --offset=32M --iodepth=4
  else
    echo "note: backend offers no discard; trim jobs not run"
  fi
  # 6. A figure: 4 KiB random reads, QD32, 2 s.
  bf_fio perf --name=perf --rw=randread --bs=4k --size=64M --iodepth=32 --time_based --runtime=2
  PERF_IOPS=${F[7]}
}
