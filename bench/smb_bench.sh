#!/usr/bin/env bash
# leasefs SMB vs Samba smbd serving the same directory on this machine, side by side
# (DESIGN.md, "Measuring speed"): smbclient put and get of a SIZE_MB file (default
# 1 GiB) and of a FILES-file tree (default 1,000 files of 4 KiB in 10 directories).
# ROUNDS rounds (default 3); each round runs both servers, and which one goes first
# alternates so neither always inherits the other's page-cache writeback. Every timed
# operation starts after `sync`, so dirty pages of the previous one (or of preparing
# the input) do not throttle it. Prints the median and range of seconds per server and
# the ratio of medians samba/leasefs (>= 1.00 means leasefs is at least as fast).
#
#   SIZE_MB=256 FILES=200 ROUNDS=1 bash bench/smb_bench.sh     # quick run
#   LEASEFS_BIN=/path/to/leasefs PROTO=SMB3_11 bash bench/smb_bench.sh
#
# Needs smbclient and smbd (Debian packages smbclient, samba) and bc; run as root so
# smbd can map the benchmark user to a Unix account.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
FILES=${FILES:-1000}
ROUNDS=${ROUNDS:-3}
PROTO=${PROTO:-SMB3_11}
TARGET=${CARGO_TARGET_DIR:-target}
command -v smbclient >/dev/null || { echo "smbclient missing (apt-get install smbclient)"; exit 1; }
command -v smbd >/dev/null || { echo "smbd missing (apt-get install samba)"; exit 1; }

if [[ -z ${LEASEFS_BIN:-} ]]; then
  cargo build --release -q --bin leasefs
  LEASEFS_BIN=$TARGET/release/leasefs
fi

T=$(mktemp -d /tmp/smb_bench.XXXXXX)
LEASEFS_PID=""
SMBD_PID=""
cleanup() {
  [[ -n $LEASEFS_PID ]] && kill "$LEASEFS_PID" 2>/dev/null && wait "$LEASEFS_PID" 2>/dev/null || true
  [[ -n $SMBD_PID ]] && kill "$SMBD_PID" 2>/dev/null && wait "$SMBD_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

USER_NAME=${BENCH_USER:-root}
PASS=bench-Pass-1
mkdir -p "$T/data" "$T/in/tree" "$T/out"
echo "== preparing ${SIZE_MB} MiB file and ${FILES}-file tree under $T"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$T/in/big.bin"
for ((i = 0; i < FILES; i++)); do
  d=$T/in/tree/d$((i % 10))
  mkdir -p "$d"
  head -c 4096 /dev/urandom > "$d/f$i"
done

# --- leasefs -------------------------------------------------------------------
"$LEASEFS_BIN" serve --backing "$T/data" --smb-listen 127.0.0.1:0 --user "$USER_NAME:$PASS" --state-dir "$T/state" \
  > "$T/leasefs.out" 2> "$T/leasefs.err" &
LEASEFS_PID=$!
for _ in $(seq 50); do grep -q listening "$T/leasefs.out" 2>/dev/null && break; sleep 0.1; done
LPORT=$(grep -o '[0-9]*$' "$T/leasefs.out")

# --- Samba smbd with a private configuration ----------------------------------------
SPORT=$(free_port)
S=$T/samba
mkdir -p "$S"/{private,lock,state,cache,pid,ncalrpc,log}
cat > "$S/smb.conf" <<CONF
[global]
  smb ports = $SPORT
  interfaces = 127.0.0.1
  bind interfaces only = yes
  server role = standalone server
  private dir = $S/private
  lock directory = $S/lock
  state directory = $S/state
  cache directory = $S/cache
  pid directory = $S/pid
  ncalrpc dir = $S/ncalrpc
  log file = $S/log/%m.log
  passdb backend = tdbsam:$S/private/passdb.tdb
  load printers = no
  disable spoolss = yes
  map to guest = never
  server min protocol = SMB2_10
[share]
  path = $T/data
  read only = no
CONF
printf '%s\n%s\n' "$PASS" "$PASS" | smbpasswd -c "$S/smb.conf" -s -a "$USER_NAME" >/dev/null
# Its own session: on shutdown smbd signals its whole process group, which would
# otherwise end this script before its cleanup (and whatever started it).
setsid smbd -s "$S/smb.conf" --foreground --no-process-group > "$S/log/smbd.out" 2>&1 &
SMBD_PID=$!
for _ in $(seq 100); do smbclient -s "$S/smb.conf" -p "$SPORT" -U "$USER_NAME%$PASS" //127.0.0.1/share -c ls >/dev/null 2>&1 && break; sleep 0.1; done

client() { # port, cwd, commands
  (cd "$2" && smbclient //127.0.0.1/share -p "$1" -m "$PROTO" -U "$USER_NAME%$PASS" -c "$3" >/dev/null 2>"$T/client.err") \
    || { echo "smbclient failed on port $1: $(cat "$T/client.err")"; exit 1; }
}
timed() { local t0; sync; t0=$(now); client "$@"; echo "$(now) - $t0" | bc; }

declare -A R # "$server.$op" -> space-separated seconds, one per round
for ((round = 0; round < ROUNDS; round++)); do
  order="leasefs samba"; ((round % 2)) && order="samba leasefs"
  for server in $order; do
    port=$LPORT; [[ $server == samba ]] && port=$SPORT
    rm -rf "$T/data"/* "$T/out"/*; mkdir -p "$T/out/tree"
    R[$server.put_big]+="$(timed "$port" "$T/in" "put big.bin big.bin") "
    R[$server.get_big]+="$(timed "$port" "$T/out" "get big.bin big.bin") "
    cmp -s "$T/in/big.bin" "$T/out/big.bin" || { echo "$server: big file differs after round trip"; exit 1; }
    R[$server.put_tree]+="$(timed "$port" "$T/in" "prompt off; recurse on; mkdir tree; cd tree; lcd tree; mput *") "
    R[$server.get_tree]+="$(timed "$port" "$T/out/tree" "prompt off; recurse on; cd tree; mget *") "
    n=$(find "$T/out/tree" -type f | wc -l)
    [[ $n -eq $FILES ]] || { echo "$server: got $n of $FILES files back"; exit 1; }
  done
done

# median, min and max of a list of numbers
stats() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.3f %.3f %.3f", m, v[1], v[NR]}'; }

echo
echo "smbclient -m $PROTO on loopback, $ROUNDS round(s): median seconds [min-max]; ratio = samba/leasefs medians, >= 1.00 is at least as fast"
printf '%-24s %22s %22s %7s\n' operation leasefs samba ratio
for op in put_big get_big put_tree get_tree; do
  case $op in
    put_big) label="put ${SIZE_MB} MiB file" ;; get_big) label="get ${SIZE_MB} MiB file" ;;
    put_tree) label="put ${FILES}-file tree" ;; get_tree) label="get ${FILES}-file tree" ;;
  esac
  read -r lm lmin lmax <<<"$(stats "${R[leasefs.$op]}")"
  read -r sm smin smax <<<"$(stats "${R[samba.$op]}")"
  printf '%-24s %7.3f [%5.3f-%5.3f] %7.3f [%5.3f-%5.3f] %7.2f\n' "$label" "$lm" "$lmin" "$lmax" "$sm" "$smin" "$smax" "$(echo "$sm / $lm" | bc -l)"
done
