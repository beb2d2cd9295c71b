"""Fixtures for the SMB end-to-end tests: a `leasefs serve` child on a free loopback
port, always stopped, over a fresh backing directory."""

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

USER = "alice"
PASSWORD = "s3cret-Pass"


def leasefs_bin() -> str:
    b = os.environ.get("LEASEFS_BIN")
    if b:
        return b
    root = Path(__file__).resolve().parents[2]
    for p in (root / "target/release/leasefs", root / "target/debug/leasefs"):
        if p.exists():
            return str(p)
    raise RuntimeError("set LEASEFS_BIN to the leasefs binary")


class Server:
    def __init__(self, extra=()):
        self.tmp = tempfile.TemporaryDirectory()
        self.backing = Path(self.tmp.name) / "share"
        self.backing.mkdir()
        self.proc = subprocess.Popen(
            [leasefs_bin(), "serve", "--backing", str(self.backing),
             "--smb-listen", "127.0.0.1:0", "--user", f"{USER}:{PASSWORD}",
             "--state-dir", str(Path(self.tmp.name) / "state"), *extra],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        try:
            self.port = int(line.strip().rsplit(":", 1)[1])
        except (IndexError, ValueError):
            self.stop()
            raise RuntimeError(f"leasefs serve did not report a port: {line!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def mounted_server():
    """A server that also mounts the directory through FUSE (needs root)."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.fail("FUSE tests need root and /dev/fuse (CI runs as root)")
    mnt_parent = tempfile.TemporaryDirectory()
    mnt = Path(mnt_parent.name) / "mnt"
    mnt.mkdir()
    s = Server(extra=("--mount", str(mnt)))
    s.mount = mnt
    yield s
    s.stop()
    if os.path.ismount(mnt):
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    mnt_parent.cleanup()


@pytest.fixture
def unique():
    return uuid.uuid4().hex[:8]
