"""Python smbprotocol against leasefs: its defaults (encryption required) and without
encryption; create/read/write/close, listing, rename, delete."""

import uuid

import pytest
import smbclient
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBOSError, SMBResponseException
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from conftest import PASSWORD, USER


def low_level(server, require_encryption):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port)
    conn.connect()
    sess = Session(conn, USER, PASSWORD, require_encryption=require_encryption)
    sess.connect()
    tree = TreeConnect(sess, rf"\\127.0.0.1\share")
    tree.connect()
    return conn, sess, tree


def open_file(tree, name, disposition, options=CreateOptions.FILE_NON_DIRECTORY_FILE,
              access=FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE
              | FilePipePrinterAccessMask.DELETE, share=ShareAccess.FILE_SHARE_READ):
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL,
             share, disposition, options)
    return f


def test_defaults_require_encryption(server):
    # Session() defaults to require_encryption=True: every message after
    # SESSION_SETUP is encrypted and the server must answer in kind.
    conn, sess, tree = low_level(server, require_encryption=None or True)
    try:
        assert sess.encrypt_data
        f = open_file(tree, "enc.txt", CreateDisposition.FILE_CREATE)
        f.write(b"encrypted hello", 0)
        assert f.read(0, 100) == b"encrypted hello"
        f.close()
        assert (server.backing / "enc.txt").read_bytes() == b"encrypted hello"

        d = open_file(tree, "", CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE,
                      FilePipePrinterAccessMask.GENERIC_READ)
        names = {e["file_name"].get_value().decode("utf-16-le") for e in d.query_directory("*", 37)}
        d.close()
        assert {".", "..", "enc.txt"} <= names

        # delete through delete-on-close
        g = open_file(tree, "enc.txt", CreateDisposition.FILE_OPEN,
                      CreateOptions.FILE_NON_DIRECTORY_FILE | CreateOptions.FILE_DELETE_ON_CLOSE)
        g.close()
        assert not (server.backing / "enc.txt").exists()
    finally:
        conn.disconnect()


def test_wrong_password_fails(server):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port)
    conn.connect()
    try:
        with pytest.raises(SMBResponseException) as e:
            Session(conn, USER, "wrong", require_encryption=False).connect()
        assert e.value.status == 0xC000006D  # STATUS_LOGON_FAILURE
    finally:
        conn.disconnect()


@pytest.mark.parametrize("encrypt", [True, False])
def test_high_level_file_operations(server, encrypt):
    cache = {}
    base = rf"\\127.0.0.1\share"
    kw = dict(port=server.port, connection_cache=cache)
    smbclient.register_session("127.0.0.1", username=USER, password=PASSWORD, encrypt=encrypt, **kw)
    try:
        data = bytes(range(256)) * 4096 + b"tail"
        with smbclient.open_file(base + r"\data.bin", mode="wb", **kw) as f:
            f.write(data)
        assert (server.backing / "data.bin").read_bytes() == data
        with smbclient.open_file(base + r"\data.bin", mode="rb", **kw) as f:
            assert f.read() == data

        smbclient.mkdir(base + r"\dir", **kw)
        smbclient.rename(base + r"\data.bin", base + r"\dir\renamed.bin", **kw)
        assert (server.backing / "dir" / "renamed.bin").read_bytes() == data
        assert sorted(smbclient.listdir(base, **kw)) == ["dir"]
        assert smbclient.listdir(base + r"\dir", **kw) == ["renamed.bin"]
        st = smbclient.stat(base + r"\dir\renamed.bin", **kw)
        assert st.st_size == len(data)

        smbclient.remove(base + r"\dir\renamed.bin", **kw)
        assert not (server.backing / "dir" / "renamed.bin").exists()
        smbclient.rmdir(base + r"\dir", **kw)
        assert not (server.backing / "dir").exists()
        with pytest.raises(SMBOSError):
            smbclient.stat(base + r"\dir", **kw)
    finally:
        smbclient.reset_connection_cache(connection_cache=cache)


def test_unsigned_request_on_signing_required_session_is_refused(server):
    """MS-SMB2 3.3.5.2.4: smbprotocol requires signing, so its session is
    signing-required; a plaintext request on it without a signature is refused with
    STATUS_ACCESS_DENIED (nothing happens), and signed requests still work after."""
    (server.backing / "signed.txt").write_bytes(b"data")
    conn, sess, tree = low_level(server, require_encryption=False)
    try:
        assert sess.signing_required
        sess.signing_required = False  # the client library now sends unsigned requests
        with pytest.raises(SMBResponseException) as e:
            open_file(tree, "signed.txt", CreateDisposition.FILE_OPEN)
        assert e.value.status == 0xC0000022  # STATUS_ACCESS_DENIED
        sess.signing_required = True
        f = open_file(tree, "signed.txt", CreateDisposition.FILE_OPEN)
        assert f.read(0, 4) == b"data"
        f.close()
    finally:
        conn.disconnect()
