//! A mount over fresh temp dirs that always unmounts (Drop), so tests can run in parallel.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use leasefs_leases::LockManager;

use leasefs_fuse::{MountConfig, MountHandle};

pub struct TestMount {
    // Dropped first: unmount before the directories go away.
    pub handle: Option<MountHandle>,
    pub backing: tempfile::TempDir,
    pub mnt: tempfile::TempDir,
}

impl TestMount {
    pub fn new(tweak: impl FnOnce(&mut MountConfig)) -> Self {
        Self::with_manager(LockManager::in_memory(), tweak)
    }

    pub fn with_manager(mgr: Arc<LockManager>, tweak: impl FnOnce(&mut MountConfig)) -> Self {
        let backing = tempfile::tempdir().expect("backing dir");
        let mnt = tempfile::tempdir().expect("mount dir");
        let mut cfg = MountConfig::new(backing.path(), mnt.path());
        tweak(&mut cfg);
        let handle = leasefs_fuse::mount(cfg, mgr).expect("mount");
        Self {
            handle: Some(handle),
            backing,
            mnt,
        }
    }

    pub fn m(&self, rel: &str) -> PathBuf {
        self.mnt.path().join(rel)
    }

    pub fn b(&self, rel: &str) -> PathBuf {
        self.backing.path().join(rel)
    }

    pub fn mnt_path(&self) -> &Path {
        self.mnt.path()
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.unmount().expect("unmount");
        }
    }
}

pub fn is_mounted(p: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let p = p.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*p))
}
