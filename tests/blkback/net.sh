# Helpers for the network-target tests (sourced after tests/blkback/lib.sh): an nbdkit server
# on a UNIX socket or 127.0.0.1, reading a vbd's counters, a per-PID TCP port.

# nbd_need: skip without nbdkit.
nbd_need() {
  command -v nbdkit >/dev/null || { echo "SKIP: nbdkit not installed (make deps)"; exit 77; }
}

# nbd_port: a free TCP port on 127.0.0.1 derived from the test's PID.
nbd_port() {
  local p=$((20000 + $$ % 20000)) i
  for ((i = 0; i < 50; i++)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    p=$((p + 1))
  done
  return 1
}

# nbd_start NAME FILE unix SOCKET | tcp PORT: start nbdkit serving FILE (file plugin) in the
# foreground, wait until it accepts connections (its pidfile), set NBDPID_<NAME>.
nbd_start() {
  local name=$1 file=$2 how=$3 where=$4 pidf=$RUN/nbdkit-$1.pid i
  rm -f "$pidf"
  local listen=(--unix "$where")
  [ "$how" = tcp ] && listen=(-i 127.0.0.1 -p "$where")
  [ "$how" = unix ] && rm -f "$where"
  nbdkit -f --pidfile "$pidf" "${listen[@]}" file "file=$file" >>"$RUN/nbdkit-$name.log" 2>&1 &
  local pid=$!
  bf_pids+=("$pid")
  printf -v "NBDPID_$name" '%s' "$pid"
  for ((i = 0; i < 200; i++)); do
    [ -s "$pidf" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  cat "$RUN/nbdkit-$name.log"
  echo "FAIL: nbdkit $name did not start"
  exit 1
}

# vbd_stat FILE NAME: a counter of a stats file (common/stats.h layout), or -1.
vbd_stat() {
  python3 - "$1" "$2" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
nr = struct.unpack_from("<I", d, 4)[0]
names = [d[32 + 24 * i:32 + 24 * (i + 1)].split(b"\0")[0].decode() for i in range(nr)]
base = 32 + 48 * 24
print(struct.unpack_from("<Q", d, base + 8 * names.index(sys.argv[2]))[0]
      if sys.argv[2] in names else -1)
EOF
}

# wait_for DESCRIPTION TRIES CMD...: run CMD every 0.05 s until it succeeds.
wait_for() {
  local what=$1 n=$2 i
  shift 2
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  echo "FAIL: timed out waiting for $what"
  return 1
}
