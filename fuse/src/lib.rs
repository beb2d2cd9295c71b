//! leasefs-fuse: the local front end of leasefs. A passthrough filesystem over the backing
//! directory (fuser 0.18) that asks the lock manager before an open, a truncate, an
//! unlink, a rename or a POSIX lock proceeds, so that lease holders on other front ends
//! are broken (and waited for, up to the break deadline) before local I/O touches the data.
//!
//! Map: `inode` (node ids ↔ `O_PATH` handles), `handles` (open files and directory
//! streams), `ops/` (the operations by group), `mediation` (every lock-manager call),
//! `passthrough` (kernel FUSE passthrough backings), `creds` (acting as the caller),
//! `mount` (mounting and unmounting), `invalidate` (dropping kernel caches after changes
//! by other front ends), `signals` (foreground daemon), `fs` (shared state and dispatch).

mod attr;
mod creds;
mod fs;
mod handles;
mod inode;
mod invalidate;
mod mediation;
mod mount;
mod ops;
mod passthrough;
mod signals;
mod sys;

pub use invalidate::Invalidator;
pub use mount::{MountConfig, MountError, MountHandle};
pub use signals::ShutdownSignals;

/// Mounts `cfg.backing` on `cfg.mountpoint`, mediating local access through `mgr`, and
/// serves it on background threads until the handle is unmounted or dropped.
pub fn mount(
    cfg: MountConfig,
    mgr: std::sync::Arc<leasefs_leases::LockManager>,
) -> Result<MountHandle, MountError> {
    mount::mount_with(cfg, mediation::Mediator::new(mgr))
}
