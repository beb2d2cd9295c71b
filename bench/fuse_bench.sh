#!/usr/bin/env bash
# FUSE mount vs the native backing directory, side by side in one run (DESIGN.md,
# "Measuring speed"): sequential write and read of SIZE_MB (default 1 GiB) with kernel
# passthrough on and off, and create+write+close / stat / unlink of FILES (default 10,000)
# 1 KiB files. Prints medians over RUNS (default 3) runs and mount/native ratios
# (throughput: 1.00 = as fast as native). Needs root and /dev/fuse.
#
# The metadata rows depend on the backing filesystem's state as much as on the mount, so
# read them with these in mind (ext4 without a journal, mounted with `discard`, as on the
# development machine): a create right after many unlinks scans past the freed inodes
# (the script runs all creates before any unlink, in one directory, to treat every
# configuration alike); and an unlink of a file whose data was already written back frees
# blocks with a synchronous discard (~40 us), which native pays in unlink(2) and the mount
# in its asynchronous FORGET, so under heavy write load from other processes (which
# starts writeback early) native unlink can drop from ~160k to ~20k ops/s and look slower
# than the mount. Check `uptime` and compare runs made back to back.
#
#   bash bench/fuse_bench.sh            # RUNS=5 SIZE_MB=1024 FILES=10000 to change
#   LEASEFS_BIN=/path/to/leasefs bash bench/fuse_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-1024}
FILES=${FILES:-10000}
TARGET=${CARGO_TARGET_DIR:-target}

if [[ -z ${LEASEFS_BIN:-} ]]; then
  cargo build --release -q --bin leasefs
  LEASEFS_BIN=$TARGET/release/leasefs
fi
cargo build --release -q -p leasefs-fuse --example fuse_meta_bench
META=$TARGET/release/examples/fuse_meta_bench

WORK=$(mktemp -d "${BENCH_DIR:-$PWD/target}/fuse-bench.XXXXXX")
BACK=$WORK/backing
mkdir -p "$BACK/meta" "$WORK/mnt-pt" "$WORK/mnt-nopt"
# Both mounts (kernel passthrough on, and off) serve the same backing directory at once,
# each daemon with its own state directory. The metadata test of every configuration runs
# in the same directory, backing/meta, with its own file names (see the example's notes).
declare -A PID=()
cleanup() {
  for m in pt nopt; do
    [[ -n ${PID[$m]:-} ]] && kill -TERM "${PID[$m]}" 2>/dev/null && wait "${PID[$m]}" 2>/dev/null
    mountpoint -q "$WORK/mnt-$m" && umount -l "$WORK/mnt-$m"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

start_mount() { # mode extra args...
  local m=$1; shift
  "$LEASEFS_BIN" mount --backing "$BACK" --mount "$WORK/mnt-$m" --state-dir "$WORK/state-$m" "$@" 2>"$WORK/daemon-$m.log" &
  PID[$m]=$!
  for _ in $(seq 200); do
    mountpoint -q "$WORK/mnt-$m" && ls "$WORK/mnt-$m" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "mount did not come up:"; cat "$WORK/daemon-$m.log"; exit 1
}
stop_mount() { # mode
  kill -TERM "${PID[$1]}"; wait "${PID[$1]}" || true; PID[$1]=
  if grep -q "passthrough disabled" "$WORK/daemon-$1.log"; then echo "WARNING: passthrough fell back:" >&2; grep "passthrough disabled" "$WORK/daemon-$1.log" >&2; fi
}
# The backing directory as each configuration sees it.
root_of() { case $1 in native) echo "$BACK";; *) echo "$WORK/mnt-$1";; esac; }

now() { date +%s.%N; }
# MB/s for writing SIZE_MB to $1 into the page cache (the FUSE path's own cost), the
# same flushed to disk with fdatasync (dominated by this machine's shared disk: noisy),
# and reading it back with a warm cache. Dirty data is synced outside the timings.
mbps() { awk -v a="$1" -v b="$2" -v s="$SIZE_MB" 'BEGIN{printf "%.1f", s/(b-a)}'; }
seq_write() { local t0; sync; t0=$(now); dd if=/dev/zero of="$1" bs=1M count="$SIZE_MB" status=none; mbps "$t0" "$(now)"; sync; }
seq_write_sync() { local t0; sync; t0=$(now); dd if=/dev/zero of="$1" bs=1M count="$SIZE_MB" conv=fdatasync status=none; mbps "$t0" "$(now)"; }
seq_read()  { local t0; t0=$(now); dd if="$1" of=/dev/null bs=1M status=none; mbps "$t0" "$(now)"; }
# ops/s of each phase fuse_meta_bench reports ("create S stat S restat S" or "unlink S").
meta() { "$META" "$(root_of "$1")/meta" "$FILES" "$2" "$1-" | awk -v n="$FILES" '{for (i = 1; i < NF; i += 2) printf "%.0f ", n/$(i+1)}'; }

declare -A R
record() { R[$1]+="$2 "; }
median() { tr ' ' '\n' <<<"${R[$1]}" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

MODES="native pt nopt"
for run in $(seq "$RUNS"); do
  echo "== run $run/$RUNS" >&2
  start_mount pt; start_mount nopt --no-passthrough
  for mode in $MODES; do
    big=$(root_of $mode)/big-$mode
    record $mode.write "$(seq_write "$big")"
    record $mode.read "$(seq_read "$big")"
    record $mode.wsync "$(seq_write_sync "$big")"
    rm -f "$big"
  done
  # Every configuration's creates before any configuration's unlinks; the unlinks then
  # run through the same mounts, whose kernel caches still hold the names.
  for mode in $MODES; do
    read -r c s s2 <<<"$(meta $mode create)"
    record $mode.create "$c"; record $mode.stat "$s"; record $mode.restat "$s2"
  done
  for mode in $MODES; do
    record $mode.unlink "$(meta $mode unlink)"
  done
  stop_mount pt; stop_mount nopt
done

printf '\n%-38s %12s %12s %7s %12s %7s\n' "median of $RUNS runs" native "passthrough" ratio "no-passthr." ratio
row() { # label key unit
  local n p q
  n=$(median native.$2); p=$(median pt.$2); q=$(median nopt.$2)
  printf '%-38s %12s %12s %7.2f %12s %7.2f\n' "$1 ($3)" "$n" "$p" "$(awk -v a="$p" -v b="$n" 'BEGIN{print a/b}')" "$q" "$(awk -v a="$q" -v b="$n" 'BEGIN{print a/b}')"
}
row "seq write ${SIZE_MB} MiB" write MB/s
row "seq read ${SIZE_MB} MiB, warm cache" read MB/s
row "seq write ${SIZE_MB} MiB + fdatasync" wsync MB/s
row "create+write+close $FILES x 1 KiB" create ops/s
row "stat $FILES files (after write)" stat ops/s
row "stat $FILES files again" restat ops/s
row "unlink $FILES files" unlink ops/s
echo "(ratio = mount / native throughput; kernel $(uname -r), $(nproc) cores)"
