//! The inode store: FUSE node ids ↔ `O_PATH` handles of backing files.
//!
//! Each node the kernel knows holds an `O_PATH` descriptor of its backing object, so it keeps
//! naming the same file after renames (through the mount or behind it). Nodes are keyed by the
//! backing (device, inode) pair, so two names of one file (hard links) are one node, as the
//! kernel expects. The kernel counts its references (FUSE "lookup count"): every reply that
//! hands out a node (lookup, create, mkdir, mknod, symlink, link, readdirplus) adds one, and
//! FORGET / BATCH_FORGET take them back; a node whose count reaches zero is dropped.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

/// Identity of a backing object: its device and inode numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackingKey {
    pub dev: u64,
    pub ino: u64,
}

impl BackingKey {
    pub fn of(st: &libc::stat64) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

#[derive(Debug)]
pub struct Inode {
    pub nodeid: u64,
    pub key: BackingKey,
    /// `S_IFMT` bits of the backing object; the type of an inode never changes.
    pub fmt: u32,
    fd: OwnedFd,
    lookups: AtomicU64,
    /// The directory it was last looked up, created or renamed in: whose directory
    /// leases a change of this node breaks (`Mediator::child_changed`). With hard links
    /// only the last name seen counts.
    parent: Mutex<Option<BackingKey>>,
}

impl Inode {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn fd_raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    pub fn parent(&self) -> Option<BackingKey> {
        *self.parent.lock()
    }

    pub fn set_parent(&self, parent: BackingKey) {
        *self.parent.lock() = Some(parent);
    }

    pub fn is_dir(&self) -> bool {
        self.fmt == libc::S_IFDIR
    }

    pub fn is_reg(&self) -> bool {
        self.fmt == libc::S_IFREG
    }

    pub fn is_symlink(&self) -> bool {
        self.fmt == libc::S_IFLNK
    }
}

#[derive(Default)]
struct Maps {
    by_node: HashMap<u64, Arc<Inode>>,
    by_key: HashMap<BackingKey, u64>,
}

pub struct InodeStore {
    maps: RwLock<Maps>,
    next: AtomicU64,
}

pub const ROOT: u64 = 1;

impl InodeStore {
    /// A store holding the root node, whose lookup count is never decremented to zero.
    pub fn new(root_fd: OwnedFd, st: &libc::stat64) -> Self {
        let root = Arc::new(Inode {
            nodeid: ROOT,
            key: BackingKey::of(st),
            fmt: st.st_mode & libc::S_IFMT,
            fd: root_fd,
            lookups: AtomicU64::new(1),
            parent: Mutex::new(None),
        });
        let mut maps = Maps::default();
        maps.by_key.insert(root.key, ROOT);
        maps.by_node.insert(ROOT, root);
        Self {
            maps: RwLock::new(maps),
            next: AtomicU64::new(ROOT + 1),
        }
    }

    pub fn get(&self, nodeid: u64) -> Option<Arc<Inode>> {
        self.maps.read().by_node.get(&nodeid).cloned()
    }

    /// Node for the backing object `fd`/`st` refers to, creating it if the kernel does not
    /// know it yet, and counts one more kernel reference. `fd` is dropped if the node exists.
    pub fn intern(&self, fd: OwnedFd, st: &libc::stat64) -> Arc<Inode> {
        let key = BackingKey::of(st);
        if let Some(node) = self.find_and_ref(key) {
            return node;
        }
        let mut maps = self.maps.write();
        if let Some(node) = maps.by_key.get(&key).and_then(|n| maps.by_node.get(n)) {
            node.lookups.fetch_add(1, Ordering::Relaxed);
            return node.clone();
        }
        let nodeid = self.next.fetch_add(1, Ordering::Relaxed);
        let node = Arc::new(Inode {
            nodeid,
            key,
            fmt: st.st_mode & libc::S_IFMT,
            fd,
            lookups: AtomicU64::new(1),
            parent: Mutex::new(None),
        });
        maps.by_key.insert(key, nodeid);
        maps.by_node.insert(nodeid, node.clone());
        node
    }

    fn find_and_ref(&self, key: BackingKey) -> Option<Arc<Inode>> {
        let maps = self.maps.read();
        let node = maps.by_node.get(maps.by_key.get(&key)?)?;
        node.lookups.fetch_add(1, Ordering::Relaxed);
        Some(node.clone())
    }

    /// Node already known for a backing object, without taking a reference.
    pub fn by_key(&self, key: BackingKey) -> Option<Arc<Inode>> {
        let maps = self.maps.read();
        maps.by_node.get(maps.by_key.get(&key)?).cloned()
    }

    /// FORGET: the kernel dropped `n` references. Handles still open keep their own `Arc`.
    pub fn forget(&self, nodeid: u64, n: u64) {
        if nodeid == ROOT {
            return;
        }
        let gone = {
            let mut maps = self.maps.write();
            let Some(node) = maps.by_node.get(&nodeid) else {
                return;
            };
            let prev = node.lookups.load(Ordering::Relaxed);
            let left = prev.saturating_sub(n);
            node.lookups.store(left, Ordering::Relaxed);
            if left != 0 {
                return;
            }
            let key = node.key;
            if maps.by_key.get(&key) == Some(&nodeid) {
                maps.by_key.remove(&key);
            }
            maps.by_node.remove(&nodeid)
        };
        // Dropped after the lock: closing the last handle of an unlinked file is when the
        // backing filesystem frees it (truncate, bitmaps), which must not stall every
        // other request's node lookup behind the write lock.
        drop(gone);
    }
}
