//! Keeps the FUSE mount's kernel caches right when SMB clients change the tree.
//!
//! The mount lets the kernel cache names and attributes for long (DESIGN.md, "Where the
//! speed comes from"); the SMB server publishes every change it makes (the same events
//! CHANGE_NOTIFY uses, MS-SMB2 3.3.5.19), and this forwards each one to the mount as a
//! FUSE_NOTIFY_INVAL_INODE / _ENTRY.

use leasefs_fuse::Invalidator;
use leasefs_leases::FileId;
use leasefs_smb::notify::{Change, ACTION_MODIFIED};
use std::path::{Path, PathBuf};
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Runs until the server's change channel closes.
pub fn spawn(
    mut changes: Receiver<Change>,
    inval: Invalidator,
    backing: PathBuf,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("leasefs-invalidate".into()).spawn(move || loop {
        match changes.blocking_recv() {
            Ok(c) => apply(&inval, &backing, &c),
            Err(RecvError::Lagged(n)) => {
                // Missed changes show through the mount once its attribute timeout passes.
                tracing::warn!(missed = n, "SMB change events lagged; the mount may show stale names or sizes until --attr-timeout");
            }
            Err(RecvError::Closed) => return,
        }
    })
}

fn id(p: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .ok()
        .map(|m| FileId::new(m.dev(), m.ino()))
}

fn apply(inval: &Invalidator, backing: &Path, c: &Change) {
    let dir = if c.dir.is_empty() || c.dir == "/" {
        backing.to_path_buf()
    } else {
        backing.join(c.dir.trim_start_matches('/'))
    };
    let path = dir.join(&c.name);
    if let Some(f) = id(&path) {
        inval.file_changed(f);
    }
    if c.action != ACTION_MODIFIED {
        if let Some(parent) = id(&dir) {
            inval.name_changed(parent, std::ffi::OsStr::new(&c.name));
            inval.file_changed(parent);
        }
    }
}
