# Shared setup for tests/blkback/*.itest (sourced): tests/blkfront/lib.sh's core, guest and vbd
# layout, plus starting/stopping splitxen-blkback and waiting for backend states.
. "$SX_TOP/tests/blkfront/lib.sh"
BLKBACK=${SX_BLKBACK:-$SX_BUILD/bin/splitxen-blkback}   # SX_BLKBACK: e.g. a sanitizer build

bb_need_all() {
  [ -x "$BLKBACK" ] || { echo "SKIP: $BLKBACK not built"; exit 77; }
  command -v fio >/dev/null || { echo "SKIP: fio not installed (make deps)"; exit 77; }
  ENGINE=$(realpath "$SX_BUILD/lib/splitxen-fio.so" 2>/dev/null || true)
  [ -f "$ENGINE" ] || { echo "SKIP: $SX_BUILD/lib/splitxen-fio.so not built"; exit 77; }
  bf_need "$SX_BUILD/bin/splitxen-core" "$SX_BUILD/bin/splitxen-test-mkdom"
}

# bb_start [ARGS...]: start blkback as dom0 (log in $RUN/blkback.N.log), sets BBPID.
bb_nstart=0
bb_start() {
  bb_nstart=$((bb_nstart + 1))
  SPLITXEN_LOG=${SPLITXEN_LOG:-info} "$BLKBACK" --domid 0 "$@" >"$RUN/blkback.$bb_nstart.log" 2>&1 &
  BBPID=$!
  bf_pids+=("$BBPID")
}

bb_stop() {   # SIGTERM and wait
  kill "$BBPID" 2>/dev/null || true
  wait "$BBPID" 2>/dev/null || true
}

# bb_wait_state PATH WANT [TRIES]: poll a state node (0.05 s steps); WANT is a regex ("2|6").
bb_wait_state() {
  local p=$1 want=$2 n=${3:-200} i
  for ((i = 0; i < n; i++)); do
    [[ "$(xenstore-read "$p/state" 2>/dev/null || true)" =~ ^($want)$ ]] && return 0
    sleep 0.05
  done
  echo "state of $p is $(xenstore-read "$p/state" 2>/dev/null || echo missing), wanted $want"
  cat "$RUN"/blkback.*.log 2>/dev/null | tail -20
  return 1
}

# bb_stop_clean: stop blkback (SIGTERM: a clean shutdown, so LeakSanitizer runs) and fail on a
# sanitizer report in any blkback log of this test. A sanitizer build prints ASan, UBSan and
# LeakSanitizer reports there; a blkback ended by a signal tells nothing by its exit status.
bb_stop_clean() {
  bb_stop
  if grep -qE "Sanitizer|runtime error" "$RUN"/blkback.*.log 2>/dev/null; then
    grep -hE -B2 -A30 "Sanitizer|runtime error" "$RUN"/blkback.*.log | head -100
    echo "FAIL: sanitizer report in a blkback log"
    exit 1
  fi
}
