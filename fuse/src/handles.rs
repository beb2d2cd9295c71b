//! Open file and directory handles (the FUSE `fh` values).

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::inode::Inode;
use crate::mediation::LocalOpen;
use crate::passthrough::Backing;

/// One open of a regular file (or of anything the kernel sends OPEN for).
pub struct FileHandle {
    pub inode: Arc<Inode>,
    pub file: File,
    /// Registration of this open in the lock manager; closed on release.
    pub open: LocalOpen,
    /// Kernel passthrough backing shared by every passthrough open of the inode; kept alive
    /// as long as this open exists.
    pub _backing: Option<Arc<Backing>>,
}

/// One open directory stream.
pub struct DirHandle {
    pub inode: Arc<Inode>,
    /// The stream itself: the descriptor and its position move together.
    pub stream: Mutex<File>,
}

pub enum Handle {
    File(FileHandle),
    Dir(DirHandle),
}

pub struct HandleTable {
    map: RwLock<HashMap<u64, Arc<Handle>>>,
    next: AtomicU64,
}

impl Default for HandleTable {
    fn default() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }
}

impl HandleTable {
    pub fn insert(&self, h: Handle) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.map.write().insert(fh, Arc::new(h));
        fh
    }

    pub fn get(&self, fh: u64) -> Option<Arc<Handle>> {
        self.map.read().get(&fh).cloned()
    }

    pub fn file(&self, fh: u64) -> Option<Arc<Handle>> {
        self.get(fh).filter(|h| matches!(**h, Handle::File(_)))
    }

    pub fn remove(&self, fh: u64) -> Option<Arc<Handle>> {
        self.map.write().remove(&fh)
    }
}

impl Handle {
    pub fn as_file(&self) -> Option<&FileHandle> {
        match self {
            Handle::File(f) => Some(f),
            Handle::Dir(_) => None,
        }
    }

    pub fn as_dir(&self) -> Option<&DirHandle> {
        match self {
            Handle::Dir(d) => Some(d),
            Handle::File(_) => None,
        }
    }
}
