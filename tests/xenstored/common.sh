# Sourced by tests/xenstored/*.itest: start splitxen-xenstored on a private directory, clean up
# on exit, small assertion helpers. Needs SX_BUILD and SX_TOP (tests/run-tests sets them).

: "${SX_BUILD:?}" "${SX_TOP:?}"
XS_BIN=$SX_BUILD/bin/splitxen-xenstored
XS_RAW=$SX_TOP/tests/xenstored/xsraw.py
XS_TMP=$(mktemp -d "/tmp/sx-xenstored-itest.$$.XXXXXX")
XS_DIR=$XS_TMP/run
XS_PID=
XS_FAILS=0
XS_CHILDREN=()

xs_cleanup() {
    local p
    for p in "${XS_CHILDREN[@]+"${XS_CHILDREN[@]}"}"; do
        kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
    done
    if [ -n "$XS_PID" ]; then kill -KILL "$XS_PID" 2>/dev/null; wait "$XS_PID" 2>/dev/null; fi
    rm -rf "$XS_TMP"
}
trap xs_cleanup EXIT

for t in xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-rm xenstore-chmod \
         xenstore-exists xenstore-watch python3; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed (xenstore-utils, python3)"; exit 77; }
done
[ -x "$XS_BIN" ] || { echo "FAIL: $XS_BIN not built"; exit 1; }

# xs_start [--domain N]... : start the daemon, wait for its socket.
xs_start() {
    "$XS_BIN" --dir "$XS_DIR" "$@" 2>"$XS_TMP/daemon.log" &
    XS_PID=$!
    local i
    for i in $(seq 100); do
        [ -S "$XS_DIR/socket" ] && return 0
        kill -0 "$XS_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "FAIL: splitxen-xenstored did not start"; cat "$XS_TMP/daemon.log"; exit 1
}

# xs_stop: SIGTERM, expect a clean exit (under the sanitizers: no leaks).
xs_stop() {
    kill -TERM "$XS_PID"
    local rc=0
    wait "$XS_PID" || rc=$?
    XS_PID=
    cat "$XS_TMP/daemon.log"
    [ $rc -eq 0 ] || { echo "FAIL: splitxen-xenstored exited with $rc"; XS_FAILS=$((XS_FAILS + 1)); }
}

# Run a xenstore tool as domain N: xs_as N xenstore-read /path
xs_as() {
    local dom=$1; shift
    if [ "$dom" = 0 ]; then XENSTORED_PATH=$XS_DIR/socket "$@"
    else XENSTORED_PATH=$XS_DIR/domain/$dom.sock "$@"; fi
}

ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; XS_FAILS=$((XS_FAILS + 1)); }
# expect DESC CMD...: CMD must succeed
expect() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
# expect_fail DESC CMD...: CMD must fail
expect_fail() { local d=$1; shift; if "$@" 2>/dev/null; then bad "$d"; else ok "$d"; fi; }
# expect_eq DESC WANT GOT
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want [$2] got [$3]"; fi; }

# wait_for_lines FILE N [timeout_s]: until FILE has at least N lines.
wait_for_lines() {
    local i
    for i in $(seq $((${3:-5} * 20))); do
        [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

xs_finish() {
    if [ "$XS_FAILS" -eq 0 ]; then echo "PASS"; exit 0; fi
    echo "$XS_FAILS check(s) failed"; exit 1
}
