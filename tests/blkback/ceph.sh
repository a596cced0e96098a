# A one-monitor, one-manager, one-OSD Ceph cluster on 127.0.0.1 for the RBD tests and bench
# (sourced). Everything lives under one private folder: configuration, monitor and OSD data,
# sockets, logs. Ports come from the caller's PID; cephx is off (loopback only); the OSD keeps
# its objects in memory (memstore; CEPH_STORE=bluestore puts them in a sparse file under DIR,
# which survives an OSD restart), pools have one replica.
#
#   ceph_need                  skip (77) without the Debian packages
#   ceph_start DIR             bring it up (~5-10 s), export CEPH_CONF; pool "rbd" is ready
#   ceph_stop                  kill the daemons, remove DIR (idempotent; call it from a trap)
#   ceph_kill_osd / ceph_start_osd   stop the OSD (SIGKILL) and start it again
#
# ceph_start records the daemons' PIDs in CEPH_PIDS; ceph_stop is safe to call more than once.

ceph_need() {
  local b
  for b in ceph-mon ceph-mgr ceph-osd ceph monmaptool ceph-authtool rbd uuidgen; do
    command -v "$b" >/dev/null || { echo "SKIP: $b not installed (make deps)"; exit 77; }
  done
}

CEPH_PIDS=()
CEPH_DIR=
ceph_stop() {
  local p
  for p in "${CEPH_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${CEPH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  CEPH_PIDS=()
  [ -n "$CEPH_DIR" ] && rm -rf "$CEPH_DIR"
  CEPH_DIR=
}

ceph_fail() {
  echo "FAIL: ceph: $*"
  tail -n 15 "$CEPH_DIR"/log/*.log 2>/dev/null || true
  exit 1
}

ceph_start_osd() {
  ceph-osd -f -i 0 -c "$CEPH_CONF" >>"$CEPH_DIR/log/osd.out" 2>&1 &
  CEPH_OSD_PID=$!
  CEPH_PIDS+=("$CEPH_OSD_PID")
  local i
  for ((i = 0; i < 300; i++)); do
    ceph -c "$CEPH_CONF" osd dump 2>/dev/null | grep -q '^osd.0 up' && return 0
    kill -0 "$CEPH_OSD_PID" 2>/dev/null || break
    sleep 0.1
  done
  ceph_fail "osd.0 did not come up"
}

ceph_kill_osd() {
  kill -KILL "$CEPH_OSD_PID" 2>/dev/null || true
  wait "$CEPH_OSD_PID" 2>/dev/null || true
}

ceph_start() {
  CEPH_DIR=$1
  mkdir -p "$CEPH_DIR"/{mon,mgr,osd,run,log}
  local port=$((40000 + $$ % 10000 * 2)) fsid
  fsid=$(uuidgen)
  CEPH_CONF=$CEPH_DIR/ceph.conf
  export CEPH_CONF
  cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$port
public_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
ms_bind_port_min = $((port + 1))
ms_bind_port_max = $((port + 199))
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $CEPH_DIR/run
admin_socket = $CEPH_DIR/run/\$name.asok
log_file = $CEPH_DIR/log/\$name.log
pid_file = $CEPH_DIR/run/\$name.pid
crash_dir = $CEPH_DIR/crash
keyring = $CEPH_DIR/keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
paxos_propose_interval = 0.1
paxos_min_wait = 0.01
mgr_initial_modules =
osd_objectstore = ${CEPH_STORE:-memstore}
memstore_device_bytes = 1073741824
bluestore_block_path = $CEPH_DIR/osd.block
bluestore_block_create = true
bluestore_block_size = 2147483648
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
osd_memory_target = 1073741824
osd_crush_chooseleaf_type = 0
osd_heartbeat_grace = 3
mon_osd_report_timeout = 10
debug_ms = 0
[mon.a]
mon_data = $CEPH_DIR/mon
[mgr.x]
mgr_data = $CEPH_DIR/mgr
[osd.0]
osd_data = $CEPH_DIR/osd
EOF
  ceph-authtool --create-keyring "$CEPH_DIR/keyring" --gen-key -n mon. --cap mon 'allow *' \
    >/dev/null || ceph_fail "keyring"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$CEPH_DIR/monmap" \
    >/dev/null || ceph_fail "monmap"
  ceph-mon --mkfs -i a -c "$CEPH_CONF" --monmap "$CEPH_DIR/monmap" \
    >"$CEPH_DIR/log/mkfs.out" 2>&1 || ceph_fail "ceph-mon --mkfs"
  ceph-mon -f -i a -c "$CEPH_CONF" >"$CEPH_DIR/log/mon.out" 2>&1 &
  CEPH_PIDS+=($!)
  local i
  for ((i = 0; i < 100; i++)); do
    timeout 5 ceph -c "$CEPH_CONF" --connect-timeout 2 mon stat >/dev/null 2>&1 && break
    sleep 0.1
  done
  ceph -c "$CEPH_CONF" mon stat >/dev/null 2>&1 || ceph_fail "the monitor does not answer"
  ceph-mgr -f -i x -c "$CEPH_CONF" >"$CEPH_DIR/log/mgr.out" 2>&1 &
  CEPH_PIDS+=($!)
  local uuid
  uuid=$(uuidgen)
  ceph -c "$CEPH_CONF" osd new "$uuid" 0 >/dev/null 2>&1 || ceph_fail "osd new"
  ceph-osd -i 0 -c "$CEPH_CONF" --mkfs --osd-uuid "$uuid" >"$CEPH_DIR/log/osd-mkfs.out" 2>&1 ||
    ceph_fail "ceph-osd --mkfs"
  ceph_start_osd
  ceph -c "$CEPH_CONF" osd pool create rbd 8 8 >/dev/null 2>&1 || ceph_fail "pool create"
  ceph -c "$CEPH_CONF" osd pool set rbd size 1 --yes-i-really-mean-it >/dev/null 2>&1 || true
  rbd -c "$CEPH_CONF" pool init rbd >/dev/null 2>&1 || ceph_fail "rbd pool init"
}
