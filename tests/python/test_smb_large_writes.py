"""Large WRITEs through Python smbprotocol: several in flight on one connection, data
checked byte for byte in the backing directory. Unsigned plaintext WRITEs of 1 MiB or
more are written while their payload arrives (smb/src/stream_write.rs); signed and
encrypted ones are read whole first. Refused WRITEs (no write access, a byte-range
lock held by another open) must leave the file alone and the connection usable."""

import os
import uuid

import pytest
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, LockFlags, Open, ShareAccess, SMB2LockElement,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from conftest import PASSWORD, USER

MIB = 1 << 20
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_FILE_LOCK_CONFLICT = 0xC0000054


def connect(server, mode):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port,
                      require_signing=(mode == "signed"))
    conn.connect()
    sess = Session(conn, USER, PASSWORD, require_encryption=(mode == "encrypted"))
    sess.connect()
    tree = TreeConnect(sess, r"\\127.0.0.1\share")
    tree.connect()
    # Enough credits for several 8 MiB WRITEs (128 credits each) in flight.
    for _ in range(4):
        conn.echo(sess.session_id, credit_request=512)
    return conn, sess, tree


def open_file(tree, name, access=FilePipePrinterAccessMask.GENERIC_READ
              | FilePipePrinterAccessMask.GENERIC_WRITE,
              share=ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
              disposition=CreateDisposition.FILE_OPEN_IF):
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL,
             share, disposition, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return f


def send_write(conn, sess, tree, f, data, offset):
    msg, unpack = f.write(data, offset, send=False)
    return conn.send(msg, sid=sess.session_id, tid=tree.tree_connect_id,
                     credit_request=256), unpack


@pytest.mark.parametrize("mode", ["plain", "signed", "encrypted"])
def test_many_large_writes_in_flight(server, mode):
    conn, sess, tree = connect(server, mode)
    try:
        f = open_file(tree, "big.bin", disposition=CreateDisposition.FILE_OVERWRITE_IF)
        expected = bytearray()
        # Sizes around the streaming threshold and piece size, the largest WRITE
        # we negotiate, and overlapping ranges sent before any answer comes back.
        plan = [(0, 8 * MIB), (8 * MIB, MIB + 1), (3 * MIB - 5, 2 * MIB + 7),
                (20 * MIB, MIB - 1), (9 * MIB + 1, 4 * MIB), (0, 5)]
        sent = []
        for i, (offset, size) in enumerate(plan):
            data = os.urandom(size)
            sent.append((send_write(conn, sess, tree, f, data, offset), size))
            end = offset + size
            if len(expected) < end:
                expected.extend(bytes(end - len(expected)))
            expected[offset:end] = data
        for (req, unpack), size in sent:
            assert unpack(req) == size
        got = f.read(0, 8 * MIB)
        assert got == bytes(expected[:8 * MIB])
        f.close()
        assert (server.backing / "big.bin").read_bytes() == bytes(expected)
    finally:
        conn.disconnect()


def test_refused_large_write_leaves_file_and_connection(server):
    conn, sess, tree = connect(server, "plain")
    try:
        before = os.urandom(3 * MIB)
        (server.backing / "f.bin").write_bytes(before)
        ro = open_file(tree, "f.bin", access=FilePipePrinterAccessMask.GENERIC_READ)
        with pytest.raises(SMBResponseException) as e:
            ro.write(os.urandom(2 * MIB), 0)
        assert e.value.status == STATUS_ACCESS_DENIED
        # The refused payload was consumed: the next request on the connection works.
        assert ro.read(0, MIB) == before[:MIB]

        holder = open_file(tree, "f.bin")
        lock = SMB2LockElement()
        lock["offset"] = MIB
        lock["length"] = 16
        lock["flags"].set_flag(LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)
        lock["flags"].set_flag(LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)
        holder.lock([lock])
        writer = open_file(tree, "f.bin")
        with pytest.raises(SMBResponseException) as e:
            writer.write(os.urandom(2 * MIB), 0)
        assert e.value.status == STATUS_FILE_LOCK_CONFLICT
        assert (server.backing / "f.bin").read_bytes() == before
        # Outside the locked range the same large WRITE goes through.
        tail = os.urandom(2 * MIB)
        assert writer.write(tail, MIB + 16) == len(tail)
        assert (server.backing / "f.bin").read_bytes() == before[:MIB + 16] + tail
        for o in (ro, holder, writer):
            o.close()
    finally:
        conn.disconnect()
