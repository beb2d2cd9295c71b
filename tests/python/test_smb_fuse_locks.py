"""An SMB byte-range lock and a local fcntl lock through the FUSE mount of the same
`leasefs serve --mount` live in one lock table, so they conflict."""

import errno
import fcntl
import os
import struct

import pytest
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import CreateDisposition, LockFlags, ShareAccess, SMB2LockElement

from test_smb_smbprotocol import low_level, open_file


def element(offset, length, flags):
    e = SMB2LockElement()
    e["offset"] = offset
    e["length"] = length
    e["flags"] = flags
    return e


def posix_lock(fd, kind, start, length):
    # struct flock: l_type, l_whence (short), l_start, l_len (off_t), l_pid (int)
    return fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hhqqi", kind, os.SEEK_SET, start, length, 0) + b"\0" * 4)


def test_share_mode_refuses_local_writer(mounted_server):
    """An SMB open that shares only reading keeps a local writer out (EBUSY) but
    lets a local reader in."""
    (mounted_server.backing / "shared.dat").write_bytes(b"data")
    conn, sess, tree = low_level(mounted_server, require_encryption=False)
    try:
        f = open_file(tree, "shared.dat", CreateDisposition.FILE_OPEN, share=ShareAccess.FILE_SHARE_READ)
        with pytest.raises(OSError):
            os.open(mounted_server.mount / "shared.dat", os.O_RDWR)
        fd = os.open(mounted_server.mount / "shared.dat", os.O_RDONLY)
        os.close(fd)
        f.close()
        fd = os.open(mounted_server.mount / "shared.dat", os.O_RDWR)
        os.close(fd)
    finally:
        conn.disconnect()


def test_smb_lock_blocks_local_fcntl_and_back(mounted_server):
    (mounted_server.backing / "locked.dat").write_bytes(b"x" * 4096)
    conn, sess, tree = low_level(mounted_server, require_encryption=False)
    try:
        f = open_file(tree, "locked.dat", CreateDisposition.FILE_OPEN,
                      share=ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE)
        f.lock([element(100, 50, LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)])

        fd = os.open(mounted_server.mount / "locked.dat", os.O_RDWR)
        try:
            with pytest.raises(OSError) as e:
                posix_lock(fd, fcntl.F_WRLCK, 120, 10)
            assert e.value.errno in (errno.EAGAIN, errno.EACCES)
            # Bytes outside the SMB lock are free.
            posix_lock(fd, fcntl.F_WRLCK, 0, 10)

            # And the other way round: the local lock stops an SMB lock.
            with pytest.raises(SMBResponseException) as e:
                f.lock([element(0, 5, LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)])
            assert e.value.status == 0xC0000055  # STATUS_LOCK_NOT_GRANTED

            # After the SMB unlock the local lock on those bytes succeeds.
            f.lock([element(100, 50, LockFlags.SMB2_LOCKFLAG_UNLOCK)])
            posix_lock(fd, fcntl.F_WRLCK, 120, 10)
        finally:
            os.close(fd)
        f.close()
    finally:
        conn.disconnect()
