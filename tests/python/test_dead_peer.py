"""A lease holder whose host stops answering at the TCP level is dropped before the
break deadline (smb/src/liveness.rs, issue 5, smbtorture smb2.oplock.batch22b); one
that is alive at the TCP level but never acknowledges the break is not.

The dead host is simulated on loopback with an iptables rule that drops every packet
the client sends (matched on its source port), so the server's break notification
arrives but neither the SMB acknowledgement nor even the TCP ACKs come back. The rule
is removed by a guard whatever happens. Without a usable iptables the test skips and
says why."""

import contextlib
import os
import shutil
import subprocess
import time

import pytest

from lease_client import RWH, STATUS_UNSUCCESSFUL, W, ack_status
from test_leases import WAIT, client, mounted, shell


def iptables_unusable():
    if os.geteuid() != 0:
        return "iptables needs root"
    if shutil.which("iptables") is None:
        return "iptables is not installed (scripts/test.sh installs it)"
    r = subprocess.run(["iptables", "-w", "-S", "OUTPUT"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"iptables -S OUTPUT failed: {r.stderr.strip()}"
    return None


@contextlib.contextmanager
def dropping_packets_from(port):
    """Drops what 127.0.0.1:port sends over loopback, until the block ends."""
    rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "-s", "127.0.0.1", "--sport", str(port),
            "-j", "DROP"]
    subprocess.run(["iptables", "-w", "-I", *rule], check=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-w", "-D", *rule], check=False)


def local_port(c):
    return c.conn.transport._sock.getsockname()[1]


def test_holder_that_stops_tcp_acking_is_dropped_before_the_deadline():
    """A holds RWH and wrote; its packets are then dropped. A local append breaks A:
    the notification reaches A but nothing comes back, so the server treats A's
    connection as lost, closes A's handle and the local write proceeds, long before
    the 120 s break deadline (which is beyond WAIT, so waiting for it would fail)."""
    why = iptables_unusable()
    if why:
        pytest.skip(f"cannot simulate a dead client: {why}")
    with mounted(break_timeout=120) as srv, client(srv) as a:
        f, granted, _ = a.open("dead.txt", RWH)
        assert granted == RWH
        f.write(b"from A\n", 0)
        f.flush()
        with dropping_packets_from(local_port(a)):
            local = shell(f"echo local >> {srv.mount}/dead.txt")
            brk = a.next_break(WAIT)
            assert brk.ack_required and brk.new & W == 0
            assert local.wait(WAIT) == 0, local.stderr.read()
        assert (srv.backing / "dead.txt").read_bytes() == b"from A\nlocal\n"
        # The server closed A's connection: A's next request gets no answer on it.
        with pytest.raises(Exception):
            f.read(0, 100)


def test_holder_alive_at_tcp_level_but_silent_is_revoked_not_dropped():
    """A never acknowledges the break but its TCP stack does. The dead-peer period
    (5 s for a 12 s deadline) passes without the connection being dropped; the local
    write proceeds at the deadline, A's late ack is refused with STATUS_UNSUCCESSFUL on
    the same connection, and A's handle still works."""
    with mounted(break_timeout=12) as srv, client(srv) as a:
        f, granted, _ = a.open("silent.txt", RWH)
        assert granted == RWH
        f.write(b"from A\n", 0)
        local = shell(f"echo local >> {srv.mount}/silent.txt")
        brk = a.next_break(WAIT)
        assert brk.ack_required
        assert local.wait(WAIT) == 0
        # Past the deadline, so past the dead-peer check that ran before it.
        time.sleep(1)
        assert ack_status(a, brk) == STATUS_UNSUCCESSFUL
        assert f.read(0, 100) == b"from A\nlocal\n"
        f.write(b"A again\n", 13)
        f.close()
        assert (srv.backing / "silent.txt").read_bytes() == b"from A\nlocal\nA again\n"
