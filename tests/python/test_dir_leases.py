"""Directory leases (issue 5) against one `leasefs serve --mount`: an SMB 3.x client
holding RH on a directory is told when the directory changes, whether the change
comes from the FUSE mount (touch, rm, mv) or from another SMB client, but not when it
creates a child itself naming the directory's lease as ParentLeaseKey
(MS-SMB2 2.2.13.2.10, 3.3.5.9.11; MS-FSA 2.1.5.1.2.1)."""

import contextlib

from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, Open, ShareAccess,
)

from conftest import PASSWORD, USER
from lease_client import RH, RWH, LeaseClient, R
from test_leases import WAIT, mounted, shell

DIR_READ = FilePipePrinterAccessMask.GENERIC_READ
# A break the holder never acknowledges is revoked only after this long: a local
# change that waited for the ack would not finish within WAIT.
NO_DEADLINE = WAIT * 3


@contextlib.contextmanager
def dir_client(server, dir_leasing=True):
    c = LeaseClient(server.port, USER, PASSWORD, dir_leasing=dir_leasing)
    try:
        yield c
    finally:
        c.close()


def hold_dir(client, name, key=None):
    """Opens directory `name` asking for RWH; the grant must be RH (never W)."""
    d, granted, key = client.open(name, RWH, key=key, directory=True, access=DIR_READ,
                                  disposition=CreateDisposition.FILE_OPEN)
    assert granted == RH
    return d, key


def expect_dir_break(client, key):
    brk = client.next_break(WAIT)
    assert brk.key == key
    assert brk.current == RH
    assert brk.new == 0
    assert brk.ack_required
    return brk


def test_local_touch_mv_append_chmod_and_rm_break_an_smb_directory_lease():
    with mounted(break_timeout=NO_DEADLINE) as srv, dir_client(srv) as a:
        (srv.backing / "d").mkdir()
        d, key = hold_dir(a, "d")
        for cmd in (f"touch {srv.mount}/d/x",
                    f"mv {srv.mount}/d/x {srv.mount}/d/y",
                    # A child's size, times and mode show in the listing too.
                    f"echo more >> {srv.mount}/d/y",
                    f"chmod 600 {srv.mount}/d/y",
                    f"rm {srv.mount}/d/y"):
            local = shell(cmd)
            brk = expect_dir_break(a, key)
            # The local change does not wait for the holder: it completes before the
            # ack (and long before the break deadline).
            assert local.wait(WAIT) == 0, cmd
            assert a.ack(brk) == 0
            # Re-arm: the same key on a new open of the directory gets RH back.
            d2, _ = hold_dir(a, "d", key=key)
            d2.close()
        assert not (srv.backing / "d" / "x").exists()
        assert not (srv.backing / "d" / "y").exists()
        d.close()


def test_smb_create_by_another_client_breaks_but_own_parent_key_does_not():
    with mounted(break_timeout=NO_DEADLINE) as srv, dir_client(srv) as a, dir_client(srv) as b:
        (srv.backing / "d").mkdir()
        d, key = hold_dir(a, "d")
        own, granted, _ = a.open("d\\own.txt", RWH, parent_key=key,
                                 disposition=CreateDisposition.FILE_CREATE)
        assert granted == RWH
        assert a.breaks.empty(), "a create naming the holder's lease as parent broke it"
        # Nor does deleting a child through a handle naming it (delete on close).
        tmp, granted, _ = a.open("d\\tmp.txt", RWH, parent_key=key,
                                 access=FilePipePrinterAccessMask.DELETE
                                 | FilePipePrinterAccessMask.GENERIC_READ,
                                 disposition=CreateDisposition.FILE_CREATE,
                                 extra_options=CreateOptions.FILE_DELETE_ON_CLOSE)
        assert granted == RWH
        tmp.close()
        assert not (srv.backing / "d" / "tmp.txt").exists()
        assert a.breaks.empty(), "a delete naming the holder's lease as parent broke it"
        other, granted, _ = b.open("d\\other.txt", RWH,
                                   disposition=CreateDisposition.FILE_CREATE)
        assert granted == RWH
        # Still RH when B created: A's own create had not broken it.
        brk = expect_dir_break(a, key)
        assert a.ack(brk) == 0
        # A create by A without naming the parent breaks its lease too.
        d2, _ = hold_dir(a, "d", key=key)
        d2.close()
        plain, _, _ = a.open("d\\plain.txt", RWH, disposition=CreateDisposition.FILE_CREATE)
        brk = expect_dir_break(a, key)
        assert a.ack(brk) == 0
        # B deleting a child (delete on close) breaks it as well.
        other.close()
        d2, _ = hold_dir(a, "d", key=key)
        d2.close()
        gone = Open(b.tree, "d\\other.txt")
        gone.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.DELETE,
                    FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_DELETE,
                    CreateDisposition.FILE_OPEN,
                    CreateOptions.FILE_NON_DIRECTORY_FILE | CreateOptions.FILE_DELETE_ON_CLOSE)
        gone.close()
        expect_dir_break(a, key)
        assert not (srv.backing / "d" / "other.txt").exists()
        for f in (own, plain, d):
            f.close()


def test_no_directory_lease_without_the_capability_or_with_v1():
    with mounted(break_timeout=NO_DEADLINE) as srv:
        (srv.backing / "d").mkdir()
        with dir_client(srv, dir_leasing=False) as c:
            d, granted, _ = c.open("d", RH, directory=True, access=DIR_READ,
                                   disposition=CreateDisposition.FILE_OPEN)
            assert granted == 0
            d.close()
        with dir_client(srv) as c:
            d, granted, _ = c.open("d", RH, v2=False, directory=True, access=DIR_READ,
                                   disposition=CreateDisposition.FILE_OPEN)
            assert granted == 0
            d.close()
            d, granted, _ = c.open("d", R, directory=True, access=DIR_READ,
                                   disposition=CreateDisposition.FILE_OPEN)
            assert granted == R
            d.close()


def test_local_rename_of_a_directory_breaks_handle_caching_below_it_first():
    """A holds RH on d/sub/f.txt; a local `mv mnt/d mnt/e` waits until A gave up H (the
    path of its cached handle changes), then completes."""
    with mounted(break_timeout=NO_DEADLINE) as srv, dir_client(srv) as a:
        (srv.backing / "d" / "sub").mkdir(parents=True)
        (srv.backing / "d" / "sub" / "f.txt").write_bytes(b"x")
        f, granted, key = a.open("d\\sub\\f.txt", RH, access=DIR_READ,
                                 disposition=CreateDisposition.FILE_OPEN)
        assert granted == RH
        local = shell(f"mv {srv.mount}/d {srv.mount}/e")
        brk = a.next_break(WAIT)
        assert brk.key == key
        assert brk.current == RH
        assert brk.new & 0x02 == 0
        assert brk.ack_required
        assert local.poll() is None, "the rename must wait for the ack"
        assert (srv.backing / "d").exists()
        a.ack(brk)
        assert local.wait(WAIT) == 0
        assert (srv.backing / "e" / "sub" / "f.txt").exists()
        f.close()
