#!/usr/bin/env bash
# A throwaway single-node Ceph cluster (1 mon, 1 memstore OSD) with a RADOS Gateway on 127.0.0.1: the real S3
# server the S3 blob store is tested and benchmarked against (Debian's ceph-mon ceph-osd radosgw ceph-common, 16.2).
#
#   scripts/ceph-rgw.sh start DIR [PORT]   # RGW on 127.0.0.1:PORT (default 7480), mon on PORT+1; prints
#                                         # `export WHARF_TEST_S3_*=...` lines on stdout (logs go to stderr)
#   scripts/ceph-rgw.sh stop DIR [--keep]  # stops the daemons by their recorded PIDs; removes DIR unless --keep
#
# Run as root. Settings that are not obvious: without cephx, radosgw needs `ms mon client mode = crc` (it loops
# on "get_initial_auth_request returned -13" otherwise); `paxos propose interval = 0.1` cuts the first start (RGW
# creates ~7 pools, one osdmap epoch each) by seconds; the region is us-east-1. Knobs: CEPH_OSD_BACKEND
# (memstore|bluestore), CEPH_OSD_SIZE_MB (default 4096), CEPH_START_TIMEOUT (s, default 120), S3_ACCESS_KEY/S3_SECRET_KEY.
set -uo pipefail

usage() { echo "usage: $0 start DIR [PORT] | stop DIR [--keep]" >&2; exit 2; }
[ $# -ge 2 ] || usage
[ "$(id -u)" = 0 ] || { echo "ceph-rgw.sh: must run as root" >&2; exit 2; }
cmd=$1
shift

start() {
set -euo pipefail

D=$(realpath -m "$1")
PORT=${2:-7480}
MON_PORT=${CEPH_MON_PORT:-$((PORT + 1))}
BACKEND=${CEPH_OSD_BACKEND:-memstore}
OSD_MB=${CEPH_OSD_SIZE_MB:-4096}
WITH_MGR=${CEPH_WITH_MGR:-0}
ACCESS_KEY=${S3_ACCESS_KEY:-CEPHTESTACCESSKEY001}
SECRET_KEY=${S3_SECRET_KEY:-cephtestsecretkey0000000000000000000000001}
TIMEOUT=${CEPH_START_TIMEOUT:-120}
CONF=$D/ceph.conf
ENDPOINT=http://127.0.0.1:$PORT

log() { echo "[ceph-rgw $(date +%T)] $*" >&2; }
STARTED=()
die() {
  log "ERROR: $*"
  for f in "$D"/log/*.out "$D"/log/*.log; do
    [ -s "$f" ] && { echo "--- tail $f" >&2; tail -n 8 "$f" >&2; }
  done
  # Do not leave half a cluster running: stop what this run started (by PID), keep logs.
  for n in "${STARTED[@]}"; do kill -KILL "$(cat "$D/pids/$n")" 2>/dev/null; rm -f "$D/pids/$n"; done
  exit 1
}
alive() { [ -f "$D/pids/$1" ] && kill -0 "$(cat "$D/pids/$1")" 2>/dev/null; }
# Run a daemon in the foreground (-f), detached into its own session so that a
# Ctrl-C / process-group kill of the caller does not take it down; record its PID.
# setsid execs in place (the background child is never a group leader), so $! is the daemon.
spawn() {
  local name=$1; shift
  alive "$name" && die "$name already running (pid $(cat "$D/pids/$name")); run ceph-rgw.sh stop first"
  setsid "$@" -f -c "$CONF" </dev/null >>"$D/log/$name.out" 2>&1 &
  echo $! >"$D/pids/$name"
  disown   # not a job of this shell: no "Killed" notices, survives the script's exit
  STARTED+=("$name")
}
# Every CLI call gets an explicit conf and a bounded timeout (default would retry forever).
ceph_cli() { timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl; do
  command -v "$b" >/dev/null || { echo "ceph-rgw.sh: missing $b (apt-get install ceph-mon ceph-osd radosgw ceph-common curl)" >&2; exit 2; }
done
port_open "$PORT" && { echo "ceph-rgw.sh: 127.0.0.1:$PORT already in use" >&2; exit 2; }

T0=$(date +%s.%N)
mkdir -p "$D"/{mon,osd,mgr,rgw,run,log,pids,crash}
FRESH=0
[ -f "$D/fsid" ] || { FRESH=1; cat /proc/sys/kernel/random/uuid >"$D/fsid"; cat /proc/sys/kernel/random/uuid >"$D/osd-uuid"; }
FSID=$(cat "$D/fsid")
if [ "$FRESH" = 0 ] && [ "$BACKEND" = memstore ] && [ ! -f "$D/osd/saved" ]; then
  # memstore only has data on disk if the last stop was graceful (stop --keep).
  die "$D holds a memstore cluster that was not stopped with --keep; use a fresh dir"
fi

# The conf is regenerated on every start (ports may change); identity lives in fsid/osd-uuid.
# Every path points into $D so nothing under /etc/ceph, /var/lib/ceph, /var/log/ceph, /run is used.
cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
# Loopback only: bind IPv4, pick addresses from 127/8, speak msgr v2 only (one mon port).
public network = 127.0.0.0/8
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
# No cephx between daemons: the cluster is private to this host/loopback, and it saves
# generating/distributing keyrings. S3 request auth (SigV4 keys) is independent of this.
auth cluster required = none
auth service required = none
auth client required = none
# radosgw defaults to ms_mon_client_mode=secure, which needs cephx; without this it
# loops on "send_auth_request get_initial_auth_request returned -13".
ms mon client mode = crc
mon warn on insecure global id reclaim allowed = false
keyring = $D/keyring
run dir = $D/run
crash dir = $D/crash
log file = $D/log/\$name.log
mon cluster log file = $D/log/cluster.log
# Single OSD: replicas 1, few PGs, no autoscaler, do not warn about lack of redundancy.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
# Place replicas across OSDs, not hosts (there is one host).
osd crush chooseleaf type = 0
# Do not warn/stop because the CI disk is nearly full.
mon data avail warn = 1
mon data avail crit = 0
# Commit mon map changes every 0.1s instead of 1s: RGW's first start creates ~7 pools,
# each one an osdmap epoch, so this cuts startup by several seconds.
paxos propose interval = 0.1

[mon]
mon data = $D/mon
admin socket = $D/run/\$name.asok

[mgr]
mgr data = $D/mgr
admin socket = $D/run/\$name.asok

[osd]
osd data = $D/osd
admin socket = $D/run/\$name.asok
osd objectstore = $BACKEND
# memstore keeps objects in RAM; device bytes is only the advertised capacity (and CRUSH weight).
memstore device bytes = $((OSD_MB * 1024 * 1024))
# Full (not fast) shutdown on SIGTERM: memstore then dumps itself to osd data, bluestore umounts cleanly.
osd fast shutdown = false
# bluestore on a sparse file in osd data (only used when CEPH_OSD_BACKEND=bluestore).
bluestore block create = true
bluestore block size = $((OSD_MB * 1024 * 1024))
bluestore fsck on mount = false
# Smallest memory target allowed (default 4 GiB of cache would dominate CI RAM).
osd memory target = 939524096

[client.rgw.a]
admin socket = $D/run/\$name.asok
rgw data = $D/rgw
rgw frontends = beast endpoint=127.0.0.1:$PORT
# 512 threads by default; plenty less is enough for tests.
rgw thread pool size = 64
# Allow SSE-C/SSE-KMS-style headers over plain http (tests run without TLS).
rgw crypt require ssl = false
# Reclaim space of deleted/overwritten objects within ~a minute instead of 2h (memstore holds
# everything in RAM, so garbage would otherwise accumulate for the whole CI job).
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF

if [ "$FRESH" = 1 ]; then
  log "creating cluster $FSID in $D (osd backend: $BACKEND)"
  # mkfs still wants a mon. key even with auth none.
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --enable-all-features --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$D/monmap" --keyring "$D/keyring" >>"$D/log/mkfs.out" 2>&1 ||
    die "ceph-mon --mkfs failed"
fi

log "starting mon on 127.0.0.1:$MON_PORT"
spawn mon ceph-mon -i a
for _ in $(seq 1 100); do port_open "$MON_PORT" && break; alive mon || die "mon exited"; sleep 0.1; done

if [ "$FRESH" = 1 ]; then
  OSD_ID=$(ceph_cli osd new "$(cat "$D/osd-uuid")") || die "ceph osd new failed"
  [ "$OSD_ID" = 0 ] || die "unexpected osd id '$OSD_ID'"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$(cat "$D/osd-uuid")" >>"$D/log/mkfs.out" 2>&1 ||
    die "ceph-osd --mkfs failed"
fi
rm -f "$D/osd/saved"   # from now on the on-disk memstore copy is stale until a graceful stop

log "starting osd.0 ($BACKEND)"
spawn osd ceph-osd -i 0
if [ "$WITH_MGR" = 1 ]; then
  log "starting mgr"
  spawn mgr ceph-mgr -i x
fi
# RGW creates its pools itself (.rgw.root, default.rgw.*) and blocks until the OSD is up and
# PGs are active, so there is no separate wait for the OSD here.
log "starting radosgw on $ENDPOINT"
spawn rgw radosgw -n client.rgw.a

deadline=$(($(date +%s) + TIMEOUT))
until curl -fs -o /dev/null --max-time 2 "$ENDPOINT/"; do
  for n in mon osd rgw; do alive "$n" || die "$n exited during startup"; done
  [ "$(date +%s)" -lt "$deadline" ] || die "RGW did not answer within ${TIMEOUT}s"
  sleep 0.2
done

# Fixed keys so tests can hard-code them; idempotent for restarts of a kept dir.
if ! timeout 60 radosgw-admin -c "$CONF" user info --uid=s3test >/dev/null 2>&1; then
  timeout 60 radosgw-admin -c "$CONF" user create --uid=s3test --display-name="S3 test user" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$D/log/user-create.out" 2>&1 ||
    die "radosgw-admin user create failed"
fi
# Wait until the key is honoured by the running gateway (signed ListBuckets via curl's SigV4;
# curl 7.88 does not add x-amz-content-sha256 itself and RGW rejects the signature without it).
until curl -fs -o /dev/null --max-time 2 --aws-sigv4 "aws:amz:us-east-1:s3" \
  --user "$ACCESS_KEY:$SECRET_KEY" \
  -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
  "$ENDPOINT/"; do
  [ "$(date +%s)" -lt "$deadline" ] || die "RGW did not accept the S3 user within ${TIMEOUT}s"
  sleep 0.2
done

log "ready in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s; pids: $(cat "$D"/pids/* | tr '\n' ' ')"
cat <<EOF
export WHARF_TEST_S3_ENDPOINT=$ENDPOINT
export WHARF_TEST_S3_ACCESS_KEY=$ACCESS_KEY
export WHARF_TEST_S3_SECRET_KEY=$SECRET_KEY
export WHARF_TEST_S3_REGION=us-east-1
EOF
}

stop() {

D=$(realpath -m "$1")
KEEP=0
[ "${2:-}" = --keep ] && KEEP=1
GRACE=${CEPH_STOP_GRACE:-60}
[ -d "$D/pids" ] || { echo "ceph-rgw.sh: $D/pids not found; nothing to stop" >&2; [ "$KEEP" = 1 ] || rm -rf "$D"; exit 0; }

# Only signal a PID if it is still the daemon we started (its cmdline names our conf),
# so a recycled PID is never hit.
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$D/ceph.conf"; }

stop_one() {
  local name=$1 sig=$2 pid
  [ -f "$D/pids/$name" ] || return 0
  pid=$(cat "$D/pids/$name")
  if ours "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null
    for _ in $(seq 1 $((GRACE * 10))); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then
      echo "ceph-rgw.sh: $name ($pid) ignored SIGTERM for ${GRACE}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
      for _ in $(seq 1 50); do ours "$pid" || break; sleep 0.1; done
      [ "$name" = osd ] && KILLED_OSD=1
    fi
  fi
  rm -f "$D/pids/$name"
}

KILLED_OSD=0
stop_one rgw TERM
stop_one mgr TERM
if [ "$KEEP" = 1 ]; then
  stop_one osd TERM
  # Tell ceph-rgw.sh start the memstore image on disk is complete (graceful umount wrote it).
  [ "$KILLED_OSD" = 0 ] && touch "$D/osd/saved"
else
  stop_one osd KILL
fi
stop_one mon TERM

if [ "$KEEP" = 1 ]; then
  echo "ceph-rgw.sh: stopped; data kept in $D" >&2
else
  rm -rf "$D"
  echo "ceph-rgw.sh: stopped; removed $D" >&2
fi
}

case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  *) usage ;;
esac
