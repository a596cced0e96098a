# bench/lib/sim.sh: what the block benchmarks share, sourced by bench/<name>/run.
# A sim host in a private run dir: splitxen-core (with xenstored), guest domains, vbds written
# the way libxl writes them, splitxen-blkback; per-process CPU and memory sampling; a snapshot
# of what else the machine runs (the figures are only as good as the quiet they ran in).
# Expects BIN (the build's bin directory); sets SPLITXEN_RUN, SPLITXEN_CORE, XENSTORED_PATH.

SIM_PIDS=()

# sim_start: a fresh run dir and splitxen-core in it.
sim_start() {
  RUN=$(mktemp -d "/tmp/sx-bench-$1-$$.XXXXXX")
  export SPLITXEN_RUN=$RUN SPLITXEN_CORE=$RUN/core.sock XENSTORED_PATH=$RUN/xenstored/socket
  "$BIN/splitxen-core" --run-dir "$RUN" >"$RUN/core.log" 2>&1 &
  SIM_PIDS+=($!)
  local i
  for ((i = 0; i < 100; i++)); do [ -S "$RUN/xenstored/socket" ] && return 0; sleep 0.05; done
  echo "bench: splitxen-core did not start" >&2
  return 1
}

# sim_stop: stop everything sim_start and sim_blkback started (idempotent).
sim_stop() {
  local p
  for p in "${SIM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${SIM_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  SIM_PIDS=()
}

# sim_mkdom NAME MEM_MB: create a guest domain, print its domid.
sim_mkdom() {
  "$BIN/splitxen-test-mkdom" "$1" "$2"
}

# sim_add_vbd DOMID DEVID VDEV FILE: a vbd on FILE for the guest, with libxl's keys and
# permissions (the guest owns its frontend dir and may read its backend's).
sim_add_vbd() {
  local dom=$1 devid=$2 vdev=$3 file=$4
  local fe=/local/domain/$dom/device/vbd/$devid be=/local/domain/0/backend/vbd/$dom/$devid
  xenstore-write "$fe/backend" "$be" "$fe/backend-id" 0 "$fe/state" 1 \
    "$fe/virtual-device" "$devid" "$fe/device-type" disk "$fe/protocol" x86_64-abi
  xenstore-write "$be/frontend" "$fe" "$be/params" "$file" "$be/frontend-id" "$dom" "$be/online" 1 \
    "$be/dev" "$vdev" "$be/type" phy "$be/mode" w "$be/device-type" disk "$be/state" 1
  xenstore-chmod "/local/domain/$dom/device" n0 "r$dom"
  xenstore-chmod "/local/domain/$dom/device/vbd" n0 "r$dom"
  xenstore-chmod -r "$fe" "n$dom" r0
  xenstore-chmod -r "$be" n0 "r$dom"
}

# sim_blkback ARGS...: start splitxen-blkback (log in $RUN/blkback.log), set BBPID.
sim_blkback() {
  SPLITXEN_LOG=info "$BIN/splitxen-blkback" --domid 0 "$@" >"$RUN/blkback.log" 2>&1 &
  BBPID=$!
  SIM_PIDS+=($BBPID)
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q "serving" "$RUN/blkback.log" 2>/dev/null && return 0
    kill -0 "$BBPID" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench: splitxen-blkback did not start" >&2
  return 1
}

# cpu_ticks PID: user + system clock ticks of the whole process so far.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# mem_kb PID: "rss anon shmem file pss" in KiB (smaps_rollup).
mem_kb() {
  awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Anonymous:/ { a = $2 }
       /^Pss_Shmem:/ { s = $2 } /^Pss_File:/ { f = $2 }
       END { printf "%d %d %d %d %d\n", r, a, s, f, p }' "/proc/$1/smaps_rollup" 2>/dev/null ||
    echo "0 0 0 0 0"
}

# machine_snapshot: one JSON object: load averages and the busiest other processes now.
machine_snapshot() {
  python3 - "$$" <<'PY'
import json, os, sys
me = int(sys.argv[1])
load = open("/proc/loadavg").read().split()[:3]
procs = []
hz = os.sysconf("SC_CLK_TCK")
up = float(open("/proc/uptime").read().split()[0])
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        st = open(f"/proc/{pid}/stat").read()
        comm = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        state, ppid = f[0], int(f[1])
        cpu = (int(f[11]) + int(f[12])) / hz
        age = up - int(f[19]) / hz
    except (OSError, ValueError, IndexError):
        continue
    if state == "R" and int(pid) != me:
        procs.append(dict(pid=int(pid), comm=comm, cpu_pct=round(100 * cpu / age, 1) if age > 0 else 0))
procs.sort(key=lambda p: -p["cpu_pct"])
print(json.dumps(dict(loadavg=[float(x) for x in load], running=procs[:8])))
PY
}

# wait_quiet MAX_LOAD TRIES SECONDS: wait until the 1-minute load average is below MAX_LOAD
# (up to TRIES checks SECONDS apart); returns 1 when it never was.
wait_quiet() {
  local i l
  for ((i = 0; i < $2; i++)); do
    l=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$l" -v m="$1" 'BEGIN { exit !(l < m) }' && return 0
    echo "bench: load average $l >= $1, waiting ${3}s ($((i + 1))/$2)" >&2
    sleep "$3"
  done
  return 1
}


# wait_busy N SECONDS: until N vbds are connected and have served requests (splitxen top's
# counters; a vbd's counters start again at each connection, so a frontend that connected
# only to learn the disk size, as fio's setup does in process mode, does not count).
wait_busy() {
  local i c
  for ((i = 0; i < $2 * 20; i++)); do
    c=$("$BIN/splitxen" top --json -n 1 2>/dev/null |
        grep -o '"kind":"vbd","devid":[0-9]*,"backend_pid":[0-9]*,"backend_alive":[a-z]*,"counters":{"requests":[0-9]*' |
        awk -F: '$NF > 0' | wc -l)
    [ "$c" -ge "$1" ] && return 0
    sleep 0.05
  done
  return 1
}

# bench_session NICE "$0" "$@": with autogroup scheduling (one CPU share per session), nice
# only orders processes within a session. Re-run the benchmark in a session of its own whose
# share is weighted by NICE (both sides alike); returns when already in it.
bench_session() {
  local n=$1
  shift
  if [ -n "$n" ] && [ -z "${SX_BENCH_SESSION:-}" ] && [ -w /proc/self/autogroup ]; then
    SX_BENCH_SESSION=1 exec setsid -w "$@"
  fi
  if [ -n "$n" ] && [ -w /proc/self/autogroup ]; then
    echo "$n" >/proc/self/autogroup 2>/dev/null ||
      echo "bench: cannot weight this session (nice $n): only the processes are" >&2
  fi
}
