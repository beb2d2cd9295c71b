//! PLACEHOLDER until the lock manager API lands: every gate proceeds at once.

use fuser::Errno;

use crate::inode::BackingKey;

pub struct Mediator;

#[derive(Clone, Copy, Debug)]
pub struct LocalOpen {
    pub file: BackingKey,
}

pub enum Gate<T> {
    Ready(T),
    Wait(Waiter),
}

pub struct Waiter;

impl Waiter {
    pub fn wait(self) {}
}

pub enum LockGate {
    Ready(Result<(), Errno>),
    Wait(LockWaiter),
}

pub struct LockWaiter;

impl LockWaiter {
    pub fn wait(self) -> Result<(), Errno> {
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
pub struct OpenMode {
    pub read: bool,
    pub write: bool,
    pub overwrite: bool,
    pub is_dir: bool,
    pub writes_unseen: bool,
}

/// A conflicting lock as F_GETLK reports it.
pub struct Conflict {
    pub start: u64,
    pub end: u64,
    pub typ: i32,
    pub pid: u32,
}

impl Mediator {
    pub fn open(&self, file: BackingKey, _mode: OpenMode) -> Gate<Result<LocalOpen, Errno>> {
        Gate::Ready(Ok(LocalOpen { file }))
    }
    pub fn close(&self, _open: LocalOpen) {}
    pub fn before_write(&self, _open: &LocalOpen) -> Gate<()> {
        Gate::Ready(())
    }
    pub fn before_truncate(&self, _file: BackingKey) -> Gate<()> {
        Gate::Ready(())
    }
    pub fn before_unlink(&self, _file: BackingKey, _parent: BackingKey) -> Gate<()> {
        Gate::Ready(())
    }
    pub fn before_rename(&self, _file: BackingKey, _from: BackingKey, _to: BackingKey) -> Gate<()> {
        Gate::Ready(())
    }
    #[allow(clippy::too_many_arguments)]
    pub fn getlk(
        &self,
        _file: BackingKey,
        _lock_owner: u64,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
    ) -> Result<Option<Conflict>, Errno> {
        Ok(None)
    }
    #[allow(clippy::too_many_arguments)]
    pub fn setlk(
        &self,
        _file: BackingKey,
        _lock_owner: u64,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        _sleep: bool,
    ) -> LockGate {
        LockGate::Ready(Ok(()))
    }
    pub fn release_posix(&self, _file: BackingKey, _lock_owner: u64) {}
}
