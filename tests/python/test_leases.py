"""SMB leases against local access through the FUSE mount of one `leasefs serve
--mount`, and between two SMB clients (issue 5). The SMB side is lease_client, which
receives break notifications and acknowledges them when the test says so."""

import contextlib
import errno
import fcntl
import os
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import LockFlags, SMB2LockElement

from conftest import PASSWORD, USER, Server
from lease_client import (
    RH, RWH, STATUS_UNSUCCESSFUL, H, LeaseClient, R, W, ack_status,
)

# Generous: a test that waits this long has failed anyway (no timing assertions).
WAIT = 60


@contextlib.contextmanager
def mounted(break_timeout):
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.fail("FUSE tests need root and /dev/fuse (CI runs as root)")
    parent = tempfile.TemporaryDirectory()
    mnt = Path(parent.name) / "mnt"
    mnt.mkdir()
    s = Server(extra=("--mount", str(mnt), "--break-timeout", str(break_timeout)))
    s.mount = mnt
    try:
        yield s
    finally:
        s.stop()
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        parent.cleanup()


@contextlib.contextmanager
def client(server, **kw):
    c = LeaseClient(server.port, USER, PASSWORD, **kw)
    try:
        yield c
    finally:
        c.close()


def shell(cmd):
    return subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_local_append_waits_for_the_holders_flush_and_ack():
    """A holds RWH and has written; `echo >> mnt/file` breaks A, and the local write
    lands only after A flushed and acknowledged, after A's data."""
    with mounted(break_timeout=WAIT) as srv, client(srv) as a:
        f, granted, _ = a.open("append.txt", RWH)
        assert granted == RWH
        f.write(b"from A\n", 0)
        local = shell(f"echo local >> {srv.mount}/append.txt")
        brk = a.next_break(WAIT)
        assert brk.current == RWH
        assert brk.ack_required
        # A local writer leaves nothing cacheable (DESIGN.md local-access table).
        assert brk.new & W == 0
        assert local.poll() is None, "the local write must wait for the ack"
        f.flush()
        assert a.ack(brk) == brk.new
        assert local.wait(WAIT) == 0
        assert (srv.backing / "append.txt").read_bytes() == b"from A\nlocal\n"
        f.close()


def test_stuck_holder_is_revoked_at_the_deadline_and_its_late_ack_refused():
    """A never acknowledges: the local write proceeds after --break-timeout, A's late
    ack gets STATUS_UNSUCCESSFUL, and A's handle still works."""
    with mounted(break_timeout=2) as srv, client(srv) as a:
        f, granted, _ = a.open("stuck.txt", RWH)
        assert granted == RWH
        f.write(b"from A\n", 0)
        local = shell(f"echo local >> {srv.mount}/stuck.txt")
        brk = a.next_break(WAIT)
        assert brk.ack_required
        assert local.wait(WAIT) == 0
        assert ack_status(a, brk) == STATUS_UNSUCCESSFUL
        assert f.read(0, 100) == b"from A\nlocal\n"
        f.write(b"A again\n", 13)
        f.close()
        assert (srv.backing / "stuck.txt").read_bytes() == b"from A\nlocal\nA again\n"


@pytest.mark.parametrize("op", ["rm", "mv"])
def test_unlink_and_rename_break_handle_caching_first(op):
    """A holds RH; a local rm / mv makes A lose H before the name changes."""
    with mounted(break_timeout=WAIT) as srv, client(srv) as a:
        (srv.backing / "victim.txt").write_bytes(b"x")
        f, granted, _ = a.open("victim.txt", RH)
        assert granted == RH
        cmd = (f"rm {srv.mount}/victim.txt" if op == "rm"
               else f"mv {srv.mount}/victim.txt {srv.mount}/moved.txt")
        local = shell(cmd)
        brk = a.next_break(WAIT)
        assert brk.current == RH
        assert brk.new & H == 0
        assert brk.ack_required
        assert local.poll() is None, f"{op} must wait for the ack"
        assert (srv.backing / "victim.txt").exists()
        a.ack(brk)
        assert local.wait(WAIT) == 0
        assert not (srv.backing / "victim.txt").exists()
        assert (srv.backing / "moved.txt").exists() == (op == "mv")
        f.close()


def test_holder_disconnect_lets_the_waiting_local_open_proceed():
    """A local open waits on A's break; A drops its connection instead of acking and
    the local open proceeds without waiting for the (long) deadline."""
    with mounted(break_timeout=3600) as srv:
        a = LeaseClient(srv.port, USER, PASSWORD)
        try:
            f, granted, _ = a.open("gone.txt", RWH)
            assert granted == RWH
            f.write(b"data\n", 0)
            local = shell(f"cat {srv.mount}/gone.txt")
            brk = a.next_break(WAIT)
            assert brk.ack_required
            assert local.poll() is None
        finally:
            a.close()
        out, _ = local.communicate(timeout=WAIT)
        assert local.returncode == 0
        assert out == b"data\n"


def lock_element(offset, length, flags):
    e = SMB2LockElement()
    e["offset"] = offset
    e["length"] = length
    e["flags"] = flags
    return e


def posix_lock(fd, kind, start, length):
    return fcntl.fcntl(fd, fcntl.F_SETLK,
                       struct.pack("hhqqi", kind, os.SEEK_SET, start, length, 0) + b"\0" * 4)


def test_byte_range_locks_conflict_both_ways_and_break_read_caching():
    """A leased handle's SMB lock keeps a local fcntl lock off its bytes and the other
    way round, on a file where a local writer broke A's lease first."""
    excl = LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    with mounted(break_timeout=WAIT) as srv, client(srv) as a:
        (srv.backing / "locks.dat").write_bytes(b"z" * 4096)
        f, granted, _ = a.open("locks.dat", RH)
        assert granted == RH
        f.lock([lock_element(0, 100, excl)])
        # The local open for write breaks RH (to None: a local writer) and waits for
        # the ack, so it runs beside the test.
        opened = {}
        t = threading.Thread(
            target=lambda: opened.setdefault("fd", os.open(srv.mount / "locks.dat", os.O_RDWR)))
        t.start()
        brk = a.next_break(WAIT)
        assert brk.current == RH and brk.ack_required
        a.ack(brk)
        t.join(WAIT)
        fd = opened["fd"]
        try:
            with pytest.raises(OSError) as e:
                posix_lock(fd, fcntl.F_WRLCK, 50, 10)
            assert e.value.errno in (errno.EAGAIN, errno.EACCES)
            posix_lock(fd, fcntl.F_WRLCK, 1000, 10)
            with pytest.raises(SMBResponseException):
                f.lock([lock_element(1005, 1, excl)])
            posix_lock(fd, fcntl.F_UNLCK, 1000, 10)
            f.lock([lock_element(1005, 1, excl)])
        finally:
            os.close(fd)
        f.close()


def test_second_smb_writer_breaks_rwh_to_rh_with_ack_required():
    """Two SMB clients: B's open for write breaks A's RWH to RH (ACK_REQUIRED) as
    Windows does; B's CREATE completes after A's ack. A's session is encrypted, so the
    break arrives encrypted."""
    srv = Server()
    try:
        with client(srv, require_encryption=True) as a, client(srv) as b:
            f, granted, _ = a.open("two.txt", RWH)
            assert granted == RWH
            result = {}

            def b_open():
                try:
                    result["open"] = b.open("two.txt", RWH)
                except Exception as e:  # noqa: BLE001 - reported below
                    result["error"] = e

            t = threading.Thread(target=b_open)
            t.start()
            brk = a.next_break(WAIT)
            assert (brk.current, brk.new) == (RWH, RH)
            assert brk.ack_required
            assert brk.epoch > 0
            assert t.is_alive(), "B's CREATE must wait for A's ack"
            assert a.ack(brk) == RH
            t.join(WAIT)
            assert "error" not in result, result.get("error")
            g, b_granted, _ = result["open"]
            assert b_granted == RH
            g.close()
            f.close()
    finally:
        srv.stop()


def test_late_or_wrong_acks_get_the_spec_status():
    """MS-SMB2 3.3.5.22.2: acking a lease that is not breaking is STATUS_UNSUCCESSFUL,
    an unknown key STATUS_OBJECT_NAME_NOT_FOUND, a state above the break-to state
    STATUS_REQUEST_NOT_ACCEPTED."""
    from lease_client import (
        STATUS_OBJECT_NAME_NOT_FOUND, STATUS_REQUEST_NOT_ACCEPTED, LeaseBreak,
    )
    srv = Server()
    try:
        with client(srv) as a, client(srv) as b:
            f, _, key = a.open("acks.txt", RWH)
            fake = LeaseBreak(key=key, epoch=0, flags=0, current=RWH, new=RH)
            assert ack_status(a, fake) == STATUS_UNSUCCESSFUL
            unknown = LeaseBreak(key=b"\x01" * 16, epoch=0, flags=0, current=RWH, new=RH)
            assert ack_status(a, unknown) == STATUS_OBJECT_NAME_NOT_FOUND
            t = threading.Thread(target=lambda: b.open("acks.txt", R)[0].close())
            t.start()
            brk = a.next_break(WAIT)
            assert brk.new == RH
            assert ack_status(a, brk, RWH) == STATUS_REQUEST_NOT_ACCEPTED
            assert a.ack(brk) == RH
            t.join(WAIT)
            f.close()
    finally:
        srv.stop()
