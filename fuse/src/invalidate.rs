//! Telling the kernel that a file changed through another front end.
//!
//! The mount gives the kernel long entry and attribute timeouts because leasefs sees every
//! change made through its own front ends (DESIGN.md, "Where the speed comes from"). When
//! the SMB server (or anything else in the daemon) creates, writes, renames or deletes, it
//! calls these so the kernel drops what it cached (FUSE_NOTIFY_INVAL_INODE / _ENTRY).
//! Files the kernel does not know need nothing.

use std::ffi::OsStr;
use std::sync::Arc;

use fuser::{INodeNo, Notifier};
use leasefs_leases::FileId;

use crate::fs::Fs;
use crate::inode::BackingKey;

/// Cheap to clone; usable from any thread except a FUSE request handler of this mount.
#[derive(Clone)]
pub struct Invalidator {
    pub(crate) fs: Arc<Fs>,
    pub(crate) notifier: Notifier,
}

fn key(f: FileId) -> BackingKey {
    BackingKey {
        dev: f.dev,
        ino: f.ino,
    }
}

impl Invalidator {
    /// The file's data or attributes changed: drop its cached attributes and pages.
    pub fn file_changed(&self, file: FileId) {
        if let Some(node) = self.fs.inodes.by_key(key(file)) {
            if let Err(e) = self.notifier.inval_inode(INodeNo(node.nodeid), 0, 0) {
                tracing::debug!("inval_inode {file}: {e}");
            }
        }
    }

    /// `name` in directory `parent` appeared, disappeared or now names another file.
    pub fn name_changed(&self, parent: FileId, name: &OsStr) {
        if let Some(node) = self.fs.inodes.by_key(key(parent)) {
            if let Err(e) = self.notifier.inval_entry(INodeNo(node.nodeid), name) {
                tracing::debug!("inval_entry {parent}/{name:?}: {e}");
            }
        }
    }
}
