//! Change events inside the share, published by the handlers that make changes and
//! consumed by CHANGE_NOTIFY (MS-SMB2 3.3.5.19). Changes made behind the server's back
//! (directly in the backing directory) are not seen.

use crate::server::Server;
use crate::vfs::SmbPath;

/// FILE_ACTION_* (MS-FSCC 2.7.1).
pub const ACTION_ADDED: u32 = 1;
pub const ACTION_REMOVED: u32 = 2;
pub const ACTION_MODIFIED: u32 = 3;
pub const ACTION_RENAMED_OLD: u32 = 4;
pub const ACTION_RENAMED_NEW: u32 = 5;

#[derive(Debug, Clone)]
pub struct Change {
    /// Directory containing the changed entry, `/`-separated relative path.
    pub dir: String,
    pub name: String,
    pub action: u32,
}

impl Change {
    fn of(p: &SmbPath, action: u32) -> Change {
        Change {
            dir: p.parent_rel(),
            name: p.last().unwrap_or("").to_string(),
            action,
        }
    }
    pub fn added(p: &SmbPath) -> Change {
        Self::of(p, ACTION_ADDED)
    }
    pub fn removed(p: &SmbPath) -> Change {
        Self::of(p, ACTION_REMOVED)
    }
    pub fn modified(p: &SmbPath) -> Change {
        Self::of(p, ACTION_MODIFIED)
    }
    pub fn renamed_old(p: &SmbPath) -> Change {
        Self::of(p, ACTION_RENAMED_OLD)
    }
    pub fn renamed_new(p: &SmbPath) -> Change {
        Self::of(p, ACTION_RENAMED_NEW)
    }
}

pub fn publish(srv: &Server, c: Change) {
    // No receivers is the common case and not an error.
    let _ = srv.events.send(c);
}
