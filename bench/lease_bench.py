#!/usr/bin/env python3
"""Cross-protocol lease break latency on loopback (issue 5).

1. ack: an SMB client (tests/python/lease_client.py) holds an RWH lease and acks every
   break at once; we time a local open(O_RDONLY)+close on the FUSE mount, which must
   wait for that ack. Baseline: the same open with no lease held.
2. revoke: the client holds RWH and never acks; with --break-timeout T the local open
   waits for the deadline. Lateness = open time - T (includes the FUSE round trip).

Usage (as root, FUSE available):
  python3 bench/lease_bench.py [--reps 200] [--revoke-reps 30] [--deadline 0.2]
Uses $LEASEFS_BIN, else target/release/leasefs. Needs smbprotocol (tests/python/requirements.txt).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/python"))
from lease_client import RWH, LeaseClient  # noqa: E402

USER, PASSWORD = "bench", "bench-Pass1"


def binary():
    b = os.environ.get("LEASEFS_BIN")
    if b:
        return b
    for p in (ROOT / "target/release/leasefs", ROOT / "target/debug/leasefs"):
        if p.exists():
            return str(p)
    sys.exit("build leasefs first or set LEASEFS_BIN")


class Served:
    def __init__(self, break_timeout):
        self.tmp = tempfile.TemporaryDirectory()
        base = Path(self.tmp.name)
        self.backing = base / "share"
        self.mount = base / "mnt"
        self.backing.mkdir()
        self.mount.mkdir()
        self.proc = subprocess.Popen(
            [binary(), "serve", "--backing", str(self.backing), "--smb-listen", "127.0.0.1:0",
             "--user", f"{USER}:{PASSWORD}", "--state-dir", str(base / "state"),
             "--mount", str(self.mount), "--break-timeout", str(break_timeout)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = int(self.proc.stdout.readline().strip().rsplit(":", 1)[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        if os.path.ismount(self.mount):
            subprocess.run(["umount", "-l", str(self.mount)], check=False)
        self.tmp.cleanup()


def timed_open(path):
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    os.close(fd)
    return time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(name, xs):
    ms = [x * 1000 for x in xs]
    print(f"{name:<34} n={len(ms):<4} median {statistics.median(ms):8.3f} ms   "
          f"p99 {pct(ms, 99):8.3f} ms   max {max(ms):8.3f} ms")


def bench_ack(reps):
    srv = Served(break_timeout=35)
    c = LeaseClient(srv.port, USER, PASSWORD)
    stop = threading.Event()

    def acker():
        while not stop.is_set():
            try:
                brk = c.next_break(0.2)
            except Exception:  # queue.Empty
                continue
            if brk.ack_required:
                c.ack(brk)

    t = threading.Thread(target=acker, daemon=True)
    t.start()
    try:
        path = srv.mount / "bench.dat"
        (srv.backing / "bench.dat").write_bytes(b"x" * 4096)
        base = [timed_open(path) for _ in range(reps)]
        held = []
        for _ in range(reps):
            f, granted, _ = c.open("bench.dat", RWH)
            assert granted == RWH, granted
            held.append(timed_open(path))
            f.close()
        report("local open, no lease", base)
        report("local open, RWH holder acks", held)
        return held
    finally:
        stop.set()
        t.join()
        c.close()
        srv.stop()


def bench_revoke(reps, deadline):
    srv = Served(break_timeout=deadline)
    c = LeaseClient(srv.port, USER, PASSWORD)
    try:
        path = srv.mount / "stuck.dat"
        (srv.backing / "stuck.dat").write_bytes(b"x")
        late = []
        for _ in range(reps):
            f, granted, _ = c.open("stuck.dat", RWH)
            assert granted == RWH, granted
            late.append(timed_open(path) - deadline)
            f.close()
            while not c.breaks.empty():
                c.breaks.get()
        report(f"revocation lateness (T={deadline}s)", late)
        return late
    finally:
        c.close()
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--revoke-reps", type=int, default=30)
    ap.add_argument("--deadline", type=float, default=0.2)
    a = ap.parse_args()
    held = bench_ack(a.reps)
    late = bench_revoke(a.revoke_reps, a.deadline)
    print(f"goals: ack p99 < 5 ms: {'met' if pct(held, 99) < 0.005 else 'NOT met'}; "
          f"revocation p99 lateness < 10 ms: {'met' if pct(late, 99) < 0.010 else 'NOT met'}")


if __name__ == "__main__":
    main()
