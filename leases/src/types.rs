//! Identities and access vocabulary shared by every front end.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A file's identity independent of its path: device and inode of the backing file,
/// so renames behind any front end keep the same lock state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub const fn new(dev: u64, ino: u64) -> Self {
        Self { dev, ino }
    }

    /// Identity of an existing path (follows symlinks like `stat`).
    pub fn of_path(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path)?;
        Ok(Self::new(md.dev(), md.ino()))
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// Which front end an owner came through. The manager's rules never depend on it; it is
/// carried for routing, display and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// A program using the FUSE mount.
    Local,
    Smb,
    Nlm,
    /// A holder created through the control socket (`leasefs lease hold`).
    Control,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Local => "local",
            Protocol::Smb => "smb",
            Protocol::Nlm => "nlm",
            Protocol::Control => "control",
        })
    }
}

/// A client as its protocol names it: the SMB ClientGuid, an NLM caller name hashed to
/// 16 bytes, a local process group. Leases are keyed by (client, lease key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientId(pub [u8; 16]);

impl ClientId {
    pub fn from_u128(v: u128) -> Self {
        Self(v.to_be_bytes())
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Who holds state: protocol, client and the session (connection) within the client.
/// Break notifications are routed by owner; a disconnect releases an owner's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OwnerId {
    pub protocol: Protocol,
    pub client: ClientId,
    pub session: u64,
}

impl OwnerId {
    pub fn new(protocol: Protocol, client: ClientId, session: u64) -> Self {
        Self {
            protocol,
            client,
            session,
        }
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.protocol, self.client, self.session)
    }
}

/// One open handle registered with the manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpenId(pub u64);

impl fmt::Display for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "open#{}", self.0)
    }
}

/// The 16-byte lease key chosen by the client (MS-SMB2 2.2.13.2.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseKey(pub [u8; 16]);

impl LeaseKey {
    pub fn from_u128(v: u128) -> Self {
        Self(v.to_be_bytes())
    }
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Share access granted to other opens, with the NT wire values (MS-SMB2 2.2.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ShareAccess(pub u8);

impl ShareAccess {
    pub const NONE: Self = Self(0);
    pub const READ: Self = Self(0x1);
    pub const WRITE: Self = Self(0x2);
    pub const DELETE: Self = Self(0x4);
    pub const ALL: Self = Self(0x7);

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for ShareAccess {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// What an open may do with the data, reduced from a protocol's access mask to the
/// three classes share modes speak about (MS-FSA 2.1.5.1.2: FILE_READ_DATA/EXECUTE,
/// FILE_WRITE_DATA/APPEND_DATA, DELETE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub delete: bool,
}

impl Access {
    pub const NONE: Self = Self {
        read: false,
        write: false,
        delete: false,
    };
    pub const READ: Self = Self {
        read: true,
        write: false,
        delete: false,
    };
    pub const WRITE: Self = Self {
        read: false,
        write: true,
        delete: false,
    };
    pub const READ_WRITE: Self = Self {
        read: true,
        write: true,
        delete: false,
    };
    pub const DELETE: Self = Self {
        read: false,
        write: false,
        delete: true,
    };

    pub fn is_none(self) -> bool {
        !self.read && !self.write && !self.delete
    }

    pub fn union(self, o: Self) -> Self {
        Self {
            read: self.read || o.read,
            write: self.write || o.write,
            delete: self.delete || o.delete,
        }
    }
}
