"""A smbprotocol client that holds SMB2 leases and receives their breaks.

smbprotocol's receive thread treats any message it did not ask for as fatal, and a
break notification (MS-SMB2 2.2.23: MessageId 0xFFFFFFFFFFFFFFFF) is exactly that. This
client wraps the transport's `recv` so such frames are taken out (decrypted first when
the session encrypts) before the library's worker sees them, and queued for the test.
The test decides when to acknowledge: `ack()` sends the 36-byte LEASE_BREAK
acknowledgment (2.2.24.2) itself and returns the server's answer.
"""

import queue
import struct
import uuid
from dataclasses import dataclass

from smbprotocol.connection import Capabilities, Connection, SMB2TransformHeader
from smbprotocol.create_contexts import (
    CreateContextName,
    SMB2CreateContextRequest,
    SMB2CreateRequestLease,
    SMB2CreateRequestLeaseV2,
)
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.header import Commands
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    RequestedOplockLevel,
    ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

UNSOLICITED = 0xFFFFFFFFFFFFFFFF
ACK_REQUIRED = 0x01
# MS-SMB2 2.2.13.2.10: the V2 request carries a ParentLeaseKey.
PARENT_LEASE_KEY_SET = 0x04

R, H, W = 0x01, 0x02, 0x04
RH, RW, RWH = R | H, R | W, R | W | H

STATUS_UNSUCCESSFUL = 0xC0000001
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
STATUS_REQUEST_NOT_ACCEPTED = 0xC00000D0


@dataclass
class LeaseBreak:
    """A LEASE_BREAK_NOTIFICATION (2.2.23.2)."""
    key: bytes
    epoch: int
    flags: int
    current: int
    new: int

    @property
    def ack_required(self):
        return bool(self.flags & ACK_REQUIRED)


class LeaseBreakAck:
    """The 36-byte lease break acknowledgment (2.2.24.2), in the shape smbprotocol's
    Connection.send expects of a message."""
    COMMAND = Commands.SMB2_OPLOCK_BREAK

    def __init__(self, key, state):
        self.key = key
        self.state = state

    def pack(self):
        return struct.pack("<HHI16sIQ", 36, 0, 0, self.key, self.state, 0)

    def __len__(self):
        return 36


def parse_break(plain):
    """A LeaseBreak for a lease break notification, None for anything else."""
    if plain[:4] != b"\xfeSMB" or len(plain) < 64 + 44:
        return None
    mid = struct.unpack_from("<Q", plain, 24)[0]
    cmd = struct.unpack_from("<H", plain, 12)[0]
    if mid != UNSOLICITED or cmd != Commands.SMB2_OPLOCK_BREAK:
        return None
    size, epoch, flags, key, cur, new = struct.unpack_from("<HHI16sII", plain, 64)
    if size != 44:
        return None
    return LeaseBreak(key=key, epoch=epoch, flags=flags, current=cur, new=new)


class LeaseClient:
    def __init__(self, port, user, password, require_encryption=False, dir_leasing=False):
        self.breaks = queue.Queue()
        self.conn = Connection(uuid.uuid4(), "127.0.0.1", port)
        if dir_leasing:
            # smbprotocol does not ask for directory leases by itself (MS-SMB2 2.2.3).
            self.conn.client_capabilities |= Capabilities.SMB2_GLOBAL_CAP_DIRECTORY_LEASING
        self.conn.connect()
        self._intercept()
        self.session = Session(self.conn, user, password, require_encryption=require_encryption)
        self.session.connect()
        self.tree = TreeConnect(self.session, r"\\127.0.0.1\share")
        self.tree.connect()

    def _intercept(self):
        transport = self.conn.transport
        original = transport.recv
        conn = self.conn

        def recv(timeout):
            while True:
                b = original(timeout)
                if not b:
                    return b
                plain = bytes(b)
                if plain[:4] == b"\xfdSMB":
                    th = SMB2TransformHeader()
                    th.unpack(plain)
                    plain = bytes(conn._decrypt(th))
                brk = parse_break(plain)
                if brk is None:
                    return b
                self.breaks.put(brk)

        # The worker looks the method up on every loop, so this applies from the next
        # message on; nothing can break before we hold a lease.
        transport.recv = recv

    def open(self, name, state=RWH, key=None, v2=True,
             disposition=CreateDisposition.FILE_OPEN_IF,
             access=FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             share=ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
             directory=False, parent_key=None, extra_options=0):
        """Opens `name` asking for a lease; returns (Open, granted state, key).
        `directory` opens a directory; `parent_key` names the parent directory's lease
        key in the V2 context; `extra_options` are more CreateOptions (delete on close)."""
        key = key or uuid.uuid4().bytes
        lease = SMB2CreateRequestLeaseV2() if v2 else SMB2CreateRequestLease()
        lease["lease_key"] = key
        lease["lease_state"] = state
        if v2:
            lease["parent_lease_key"] = parent_key or b"\0" * 16
            if parent_key:
                lease["lease_flags"] = PARENT_LEASE_KEY_SET
            lease["epoch"] = b"\0\0"
            lease["reserved"] = 0
        ctx = SMB2CreateContextRequest()
        ctx["buffer_name"] = CreateContextName.SMB2_CREATE_REQUEST_LEASE
        ctx["buffer_data"] = lease
        f = Open(self.tree, name)
        if directory:
            attrs, options = FileAttributes.FILE_ATTRIBUTE_DIRECTORY, CreateOptions.FILE_DIRECTORY_FILE
        else:
            attrs, options = FileAttributes.FILE_ATTRIBUTE_NORMAL, CreateOptions.FILE_NON_DIRECTORY_FILE
        resp = f.create(ImpersonationLevel.Impersonation, access, attrs,
                        share, disposition, options | extra_options,
                        create_contexts=[ctx], oplock_level=RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE)
        granted = 0
        for c in resp or []:
            if hasattr(c, "fields") and "lease_state" in c.fields:
                granted = c["lease_state"].get_value()
        return f, granted, key

    def next_break(self, timeout=30):
        return self.breaks.get(timeout=timeout)

    def ack(self, brk, state=None):
        """Acknowledges a break; returns the state the server reports, or raises
        SMBResponseException with the server's status."""
        msg = LeaseBreakAck(brk.key, brk.new if state is None else state)
        req = self.conn.send(msg, sid=self.session.session_id, tid=self.tree.tree_connect_id)
        resp = self.conn.receive(req)
        data = resp["data"].get_value()
        return struct.unpack_from("<I", data, 24)[0]

    def close(self):
        try:
            self.conn.disconnect()
        except Exception:  # noqa: BLE001 - best effort teardown of a test client
            pass


def ack_status(client, brk, state=None):
    """The NTSTATUS of an acknowledgment (0 on success)."""
    try:
        client.ack(brk, state)
        return 0
    except SMBResponseException as e:
        return e.status
