//! Kernel FUSE passthrough (FUSE_PASSTHROUGH, Linux ≥ 6.9): after a mediated open, reads and
//! writes go from the kernel straight to a backing file and never reach the daemon.
//!
//! The kernel requires one backing file per inode for all of that inode's passthrough opens
//! (a second, different backing id for an inode that has one is refused), so backings are
//! shared per inode and live as long as one of its opens does. The backing is opened with
//! the access of the open that creates it; a write open of an inode whose backing is
//! read-only is served by the daemon with FOPEN_DIRECT_IO, which the kernel allows next to
//! passthrough opens (a cached open would not be). Any failure to register a backing turns passthrough off for the whole mount and
//! opens fall back to daemon-served I/O.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use fuser::BackingId;
use parking_lot::Mutex;

use crate::inode::{BackingKey, Inode};

pub struct Backing {
    pub id: BackingId,
    /// Keeps the backing file open while the kernel uses it.
    _file: File,
    writable: bool,
}

pub struct Passthrough {
    enabled: AtomicBool,
    by_inode: Mutex<HashMap<BackingKey, Weak<Backing>>>,
}

impl Passthrough {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            by_inode: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn disable(&self, why: &str) {
        if self.enabled.swap(false, Ordering::Relaxed) {
            tracing::warn!("FUSE passthrough disabled, the daemon serves all I/O: {why}");
        }
    }

    /// The backing to pass an open of `inode` through to, registering one with `register`
    /// (the reply's `open_backing`) if the inode has none. `None`: serve this open from the
    /// daemon (with FOPEN_DIRECT_IO while the inode has a backing).
    pub fn backing_for(
        &self,
        inode: &Inode,
        write: bool,
        reopen: impl Fn(i32) -> io::Result<File>,
        register: impl FnOnce(&File) -> io::Result<BackingId>,
    ) -> Option<Arc<Backing>> {
        if !self.enabled() || !inode.is_reg() {
            return None;
        }
        let mut map = self.by_inode.lock();
        if let Some(b) = map.get(&inode.key).and_then(Weak::upgrade) {
            return (b.writable || !write).then_some(b);
        }
        // The backing takes the first opener's access: a read-write backing would count as
        // a writer of the backing inode and make native exec of that file fail (ETXTBSY).
        let (file, writable) = match reopen(if write { libc::O_RDWR } else { libc::O_RDONLY }) {
            Ok(f) => (f, write),
            Err(_) => return None,
        };
        match register(&file) {
            Ok(id) => {
                let b = Arc::new(Backing {
                    id,
                    _file: file,
                    writable,
                });
                map.insert(inode.key, Arc::downgrade(&b));
                if map.len() > 4096 {
                    map.retain(|_, w| w.strong_count() > 0);
                }
                Some(b)
            }
            Err(e) => {
                drop(map);
                self.disable(&format!("registering a backing file failed: {e}"));
                None
            }
        }
    }
}
