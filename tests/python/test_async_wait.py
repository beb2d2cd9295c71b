"""SMB operations that must wait for another holder's lease break go async (issue 5).

Deleting a file whose handles another key caches (H) breaks that key first and waits
for its ack. The wait must not hold the deleting client's connection: it answers
STATUS_PENDING, keeps serving requests (an ECHO, a READ of another file, the holder's
own ack when both handles share the connection), and sends the final response once
the holder acked. A rename or delete disposition waits the same way but without an
interim response, and so does a compound whose CREATE waits (only that CREATE is
answered STATUS_PENDING), as on Windows. Clients come from
lease_client, which receives break notifications.
"""

import contextlib
import struct
import subprocess
from pathlib import Path

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileInformationClass
from smbprotocol.header import NtStatus
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    InfoType,
    Open,
    ShareAccess,
    SMB2CloseRequest,
    SMB2SetInfoRequest,
)

from conftest import PASSWORD, USER, leasefs_bin
from lease_client import RH, RWH, LeaseClient, R, ack_status

# Generous: a test that waits this long has failed anyway (no timing assertions). The
# server's break deadline is longer still, so only an ack can end a wait here.
WAIT = 60
SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE


@contextlib.contextmanager
def client(server):
    c = LeaseClient(server.port, USER, PASSWORD)
    try:
        yield c
    finally:
        c.close()


def open_for_delete(c, name, delete_on_close):
    f = Open(c.tree, name)
    options = CreateOptions.FILE_NON_DIRECTORY_FILE
    if delete_on_close:
        options |= CreateOptions.FILE_DELETE_ON_CLOSE
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.DELETE | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, SHARE_ALL, CreateDisposition.FILE_OPEN, options)
    return f


def open_plain(c, name):
    f = Open(c.tree, name)
    f.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.GENERIC_READ,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, SHARE_ALL, CreateDisposition.FILE_OPEN,
             CreateOptions.FILE_NON_DIRECTORY_FILE)
    return f


def send_close(c, f):
    msg, _ = f.close(send=False)
    return c.conn.send(msg, sid=c.session.session_id, tid=c.tree.tree_connect_id)


def send_delete_disposition(c, f):
    """SET_INFO FileDispositionInformation with DeletePending (MS-FSCC 2.4.11)."""
    req = SMB2SetInfoRequest()
    req["info_type"] = InfoType.SMB2_0_INFO_FILE
    req["file_info_class"] = FileInformationClass.FILE_DISPOSITION_INFORMATION
    req["file_id"] = f.file_id
    req["buffer"] = b"\x01"
    return c.conn.send(req, sid=c.session.session_id, tid=c.tree.tree_connect_id)


def first_answer(request):
    """The status of the first response to arrive: the interim one of an async
    request. (smbprotocol's receive(wait=False) would forget the request, and its
    worker would then choke on the final response.)"""
    assert request.response_event.wait(WAIT), "no response"
    return request.response["status"].get_value()


def final_status(c, request):
    try:
        return c.conn.receive(request, timeout=WAIT)["status"].get_value()
    except SMBResponseException as e:
        return e.status


def pending(request):
    return request.response is not None and request.response["status"].get_value() == NtStatus.STATUS_PENDING


def still_serves(c, other):
    """The connection answers an ECHO and a READ of another file."""
    c.conn.echo(sid=c.session.session_id, timeout=WAIT)
    assert other.read(0, 5) == b"other"


def test_delete_on_close_goes_async_until_the_holder_acks(server):
    """A holds RH on f; B opens f delete-on-close and closes it: the file becomes
    delete-pending beside A's handle, A is asked to give up H, and B's CLOSE is
    STATUS_PENDING until A acks while B's connection keeps serving. The file goes when
    A closes its handle."""
    (server.backing / "doc.txt").write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with client(server) as a, client(server) as b:
        fa, granted, _ = a.open("doc.txt", RH)
        assert granted == RH
        fb = open_for_delete(b, "doc.txt", delete_on_close=True)
        other = open_plain(b, "other.txt")
        close = send_close(b, fb)
        assert first_answer(close) == NtStatus.STATUS_PENDING
        brk = a.next_break(WAIT)
        assert (brk.current, brk.new, brk.ack_required) == (RH, R, True)
        still_serves(b, other)
        assert pending(close), "the CLOSE must wait for the holder's ack"
        assert a.ack(brk) == R
        assert final_status(b, close) == NtStatus.STATUS_SUCCESS
        assert (server.backing / "doc.txt").exists(), "A's handle keeps the file"
        fa.close()
        assert not (server.backing / "doc.txt").exists()
        other.close()


def test_holder_acks_on_the_connection_whose_close_waits(server):
    """The lease holder and the deleting handle share one connection: the ack arrives
    on the connection whose CLOSE is waiting for it, and is accepted."""
    (server.backing / "same.txt").write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with client(server) as a:
        fa, granted, _ = a.open("same.txt", RH)
        assert granted == RH
        fdel = open_for_delete(a, "same.txt", delete_on_close=True)
        other = open_plain(a, "other.txt")
        close = send_close(a, fdel)
        assert first_answer(close) == NtStatus.STATUS_PENDING
        brk = a.next_break(WAIT)
        assert (brk.current, brk.new) == (RH, R)
        still_serves(a, other)
        assert pending(close)
        # Before the deadline, so a connection blocked in the CLOSE would have made
        # this ack late (STATUS_UNSUCCESSFUL) or never answered.
        assert ack_status(a, brk) == 0
        assert final_status(a, close) == NtStatus.STATUS_SUCCESS
        fa.close()
        assert not (server.backing / "same.txt").exists()
        other.close()


def test_delete_disposition_waits_for_the_holders_ack(server):
    """SET_INFO FileDispositionInformation breaks other keys' H first (MS-FSA
    2.1.5.14.3) and is answered once A acked, while B's connection keeps serving; the
    file goes at the last close."""
    (server.backing / "disp.txt").write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with client(server) as a, client(server) as b:
        fa, granted, _ = a.open("disp.txt", RH)
        assert granted == RH
        fb = open_for_delete(b, "disp.txt", delete_on_close=False)
        other = open_plain(b, "other.txt")
        setinfo = send_delete_disposition(b, fb)
        brk = a.next_break(WAIT)
        assert (brk.current, brk.new, brk.ack_required) == (RH, R, True)
        still_serves(b, other)
        # Like a rename, and as on Windows, without an interim response.
        assert unanswered([setinfo]), "the SET_INFO must wait for the holder's ack"
        assert a.ack(brk) == R
        assert final_status(b, setinfo) == NtStatus.STATUS_SUCCESS
        fb.close()
        assert (server.backing / "disp.txt").exists()
        fa.close()
        assert not (server.backing / "disp.txt").exists()
        other.close()


def test_holder_that_closes_instead_of_acking_ends_the_wait(server):
    """A answers the break by closing its handle (MS-SMB2 3.3.4.7 allows it): B's
    CLOSE completes and, A's handle being the last, the file is gone."""
    (server.backing / "gone.txt").write_bytes(b"data")
    with client(server) as a, client(server) as b:
        fa, granted, _ = a.open("gone.txt", RH)
        assert granted == RH
        fb = open_for_delete(b, "gone.txt", delete_on_close=True)
        close = send_close(b, fb)
        assert first_answer(close) == NtStatus.STATUS_PENDING
        brk = a.next_break(WAIT)
        assert brk.current == RH
        fa.close()
        assert final_status(b, close) == NtStatus.STATUS_SUCCESS
        assert not (server.backing / "gone.txt").exists()



DELETE_AND_ATTRS = (FilePipePrinterAccessMask.DELETE
                    | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES)


def unsent_create(c, name, access, options=CreateOptions.FILE_NON_DIRECTORY_FILE):
    """A CREATE (FILE_OPEN, share all, no lease) built but not sent, for a compound."""
    create, _ = Open(c.tree, name).create(
        ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL,
        SHARE_ALL, CreateDisposition.FILE_OPEN, options, send=False)
    return create


def related_close():
    close = SMB2CloseRequest()
    close["file_id"] = b"\xff" * 16  # the FileId of the CREATE before it (3.2.4.1.4)
    return close


def send_related(c, requests):
    return c.conn.send_compound(requests, c.session.session_id, c.tree.tree_connect_id,
                                related=True)


def send_create_close_compound(c, name):
    """CREATE (read/write, no lease) and a related CLOSE in one compound: the CREATE
    is not the last request, so it may not go async."""
    access = FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE
    return send_related(c, [unsent_create(c, name, access), related_close()])


def unanswered(requests):
    return all(r.response is None for r in requests)


def test_compound_create_waits_without_holding_the_connection(server):
    """A holds RWH; B's compound CREATE+CLOSE must wait for A to flush and ack (W goes).
    The CREATE is answered STATUS_PENDING, the CLOSE not at all, B's connection answers
    an ECHO and a READ meanwhile, and both are answered once A acked."""
    (server.backing / "cmp.txt").write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with client(server) as a, client(server) as b:
        fa, granted, _ = a.open("cmp.txt", RWH)
        assert granted == RWH
        other = open_plain(b, "other.txt")
        reqs = send_create_close_compound(b, "cmp.txt")
        brk = a.next_break(WAIT)
        assert (brk.current, brk.new, brk.ack_required) == (RWH, RH, True)
        # The waiting CREATE alone is answered STATUS_PENDING, as Windows does.
        assert first_answer(reqs[0]) == NtStatus.STATUS_PENDING
        still_serves(b, other)
        assert pending(reqs[0]) and unanswered(reqs[1:]), "the compound must wait for the ack"
        assert a.ack(brk) == RH
        assert [final_status(b, r) for r in reqs] == [NtStatus.STATUS_SUCCESS] * 2
        fa.close()
        other.close()


def test_compound_create_waiting_on_the_holders_own_connection(server):
    """The holder's lease and the waiting compound share one connection: the holder's
    ack comes in while the compound waits and is accepted, then the compound ends."""
    (server.backing / "cmp1.txt").write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with client(server) as a:
        fa, granted, _ = a.open("cmp1.txt", RWH)
        assert granted == RWH
        other = open_plain(a, "other.txt")
        reqs = send_create_close_compound(a, "cmp1.txt")
        brk = a.next_break(WAIT)
        assert (brk.current, brk.new) == (RWH, RH)
        assert first_answer(reqs[0]) == NtStatus.STATUS_PENDING
        still_serves(a, other)
        assert pending(reqs[0]) and unanswered(reqs[1:])
        assert ack_status(a, brk) == 0
        assert [final_status(a, r) for r in reqs] == [NtStatus.STATUS_SUCCESS] * 2
        fa.close()
        other.close()


def rename_request(new_name):
    """SET_INFO FileRenameInformation (MS-FSCC 2.4.37.2) on the related FileId."""
    name = new_name.encode("utf-16-le")
    req = SMB2SetInfoRequest()
    req["info_type"] = InfoType.SMB2_0_INFO_FILE
    req["file_info_class"] = FileInformationClass.FILE_RENAME_INFORMATION
    req["file_id"] = b"\xff" * 16
    req["buffer"] = struct.pack("<B7xQI", 0, 0, len(name)) + name
    return req


def test_compound_rename_in_the_middle_waits_as_a_whole(server):
    """A holds RH; B's compound CREATE + rename + CLOSE must wait for A to give up H.
    Nothing is answered STATUS_PENDING (a rename gets no interim response on Windows),
    B's connection serves other requests meanwhile, and all three are answered once A
    acked; the file then has its new name."""
    (server.backing / "mid.txt").write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with client(server) as a, client(server) as b:
        fa, granted, _ = a.open("mid.txt", RH)
        assert granted == RH
        other = open_plain(b, "other.txt")
        create = unsent_create(b, "mid.txt", DELETE_AND_ATTRS)
        reqs = send_related(b, [create, rename_request("moved.txt"), related_close()])
        brk = a.next_break(WAIT)
        assert (brk.current, brk.new, brk.ack_required) == (RH, R, True)
        still_serves(b, other)
        assert unanswered(reqs), "the compound must wait for the holder's ack"
        assert a.ack(brk) == R
        assert [final_status(b, r) for r in reqs] == [NtStatus.STATUS_SUCCESS] * 3
        assert (server.backing / "moved.txt").exists()
        assert not (server.backing / "mid.txt").exists()
        fa.close()
        other.close()


@contextlib.contextmanager
def local_holder(server, path, state):
    """`leasefs lease hold` through the daemon's control socket: a local lease holder
    that acknowledges a break when told to (--ack prompt, an answer on stdin)."""
    p = subprocess.Popen(
        [leasefs_bin(), "lease", "hold", str(path), "--state", state, "--ack", "prompt",
         "--state-dir", str(Path(server.tmp.name) / "state")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert "holding " + state in p.stdout.readline()
        yield p
    finally:
        p.kill()
        p.wait()


def test_last_close_waits_for_a_local_holder_without_holding_the_connection(server):
    """Only a local (control socket) holder has the file: the delete-on-close CLOSE of
    the last SMB handle must wait for its H to go before the name is removed. It is
    answered STATUS_PENDING, the connection serves other requests meanwhile, and the
    file is gone once the holder acknowledged."""
    held = server.backing / "held.txt"
    held.write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with local_holder(server, held, "RH") as holder, client(server) as b:
        fb = open_for_delete(b, "held.txt", delete_on_close=True)
        other = open_plain(b, "other.txt")
        close = send_close(b, fb)
        assert first_answer(close) == NtStatus.STATUS_PENDING
        line = holder.stdout.readline()
        assert "break RH -> R" in line and "ack required" in line, line
        still_serves(b, other)
        assert pending(close), "the CLOSE must wait for the holder's ack"
        assert held.exists(), "the name goes only after the holder's ack"
        holder.stdin.write("y\n")
        holder.stdin.flush()
        assert final_status(b, close) == NtStatus.STATUS_SUCCESS
        assert not held.exists()
        other.close()


def test_cancel_ends_a_waiting_compound_create(server):
    """CANCEL by the AsyncId of the waiting CREATE's interim response (MS-SMB2
    3.3.5.16): the CREATE ends STATUS_CANCELLED, the related CLOSE after it fails the
    same way (3.3.5.2.7.2), and the holder's ack is still accepted."""
    (server.backing / "cancel.txt").write_bytes(b"data")
    with client(server) as a, client(server) as b:
        fa, granted, _ = a.open("cancel.txt", RWH)
        assert granted == RWH
        reqs = send_create_close_compound(b, "cancel.txt")
        brk = a.next_break(WAIT)
        assert first_answer(reqs[0]) == NtStatus.STATUS_PENDING
        reqs[0].cancel()
        assert [final_status(b, r) for r in reqs] == [NtStatus.STATUS_CANCELLED] * 2
        b.conn.echo(sid=b.session.session_id, timeout=WAIT)
        assert ack_status(a, brk) == 0
        fa.close()


def test_cancel_ends_a_waiting_rename_in_a_compound(server):
    """A rename waiting inside a compound has no interim response, so CANCEL names it
    by MessageId: the rename ends STATUS_CANCELLED, the file keeps its name, and the
    rest of the compound runs."""
    (server.backing / "stay.txt").write_bytes(b"data")
    with client(server) as a, client(server) as b:
        fa, granted, _ = a.open("stay.txt", RH)
        assert granted == RH
        create = unsent_create(b, "stay.txt", DELETE_AND_ATTRS)
        reqs = send_related(b, [create, rename_request("went.txt"), related_close()])
        brk = a.next_break(WAIT)
        assert brk.current == RH
        assert unanswered(reqs)
        reqs[1].cancel()
        assert [final_status(b, r) for r in reqs] == [
            NtStatus.STATUS_SUCCESS, NtStatus.STATUS_CANCELLED, NtStatus.STATUS_SUCCESS]
        assert (server.backing / "stay.txt").exists()
        assert not (server.backing / "went.txt").exists()
        assert ack_status(a, brk) == 0
        fa.close()


def test_disconnect_while_a_compound_waits(server):
    """B goes away while its compound waits: nothing is left waiting on B's behalf, and
    A can ack and go on using the file."""
    (server.backing / "gone2.txt").write_bytes(b"data")
    with client(server) as a:
        fa, granted, _ = a.open("gone2.txt", RWH)
        assert granted == RWH
        b = LeaseClient(server.port, USER, PASSWORD)
        send_create_close_compound(b, "gone2.txt")
        brk = a.next_break(WAIT)
        b.close()
        assert ack_status(a, brk) == 0
        fa.write(b"after", 0)
        fa.close()
        assert (server.backing / "gone2.txt").read_bytes() == b"after"


def test_requests_after_a_waiting_delete_on_close_in_a_compound_see_the_name_gone(server):
    """CREATE (delete-on-close) + CLOSE + CREATE of the same name in one compound, the
    file held by a local holder: the CLOSE cannot go async in the middle of the
    compound, so the compound waits for the holder's ack and the unlink before its
    last CREATE, which then finds no file; the connection serves other requests
    meanwhile."""
    held = server.backing / "doc2.txt"
    held.write_bytes(b"data")
    (server.backing / "other.txt").write_bytes(b"other")
    with local_holder(server, held, "RH") as holder, client(server) as b:
        other = open_plain(b, "other.txt")
        create = unsent_create(b, "doc2.txt", DELETE_AND_ATTRS,
                               CreateOptions.FILE_NON_DIRECTORY_FILE
                               | CreateOptions.FILE_DELETE_ON_CLOSE)
        again = unsent_create(b, "doc2.txt", FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES)
        reqs = send_related(b, [create, related_close(), again])
        line = holder.stdout.readline()
        assert "break RH -> R" in line, line
        still_serves(b, other)
        assert unanswered(reqs), "the compound must wait for the unlink"
        holder.stdin.write("y\n")
        holder.stdin.flush()
        assert [final_status(b, r) for r in reqs] == [
            NtStatus.STATUS_SUCCESS, NtStatus.STATUS_SUCCESS, NtStatus.STATUS_OBJECT_NAME_NOT_FOUND]
        assert not held.exists()
        other.close()
