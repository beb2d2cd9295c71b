//! Per-thread caller identity for operations that create files.
//!
//! The daemon runs as root; a file created through the mount must still belong to the
//! calling user and group (and inherit a set-group-ID directory's group, as the backing
//! filesystem decides). `setfsuid`/`setfsgid` are per thread on Linux, so a worker switches
//! to the caller around the creating call and back after it. The kernel applied the caller's
//! umask already (FUSE_DONT_MASK is not negotiated), so each worker runs with umask 0 in a
//! private fs context (`unshare(CLONE_FS)`) to not mask the mode twice nor touch the
//! process-wide umask the embedding program may rely on.

use std::cell::Cell;

thread_local! {
    static PRIVATE_FS: Cell<bool> = const { Cell::new(false) };
}

/// Gives this thread its own umask of 0 (once).
pub fn private_umask() {
    PRIVATE_FS.with(|done| {
        if !done.get() {
            // SAFETY: plain syscalls on the calling thread.
            unsafe {
                if libc::unshare(libc::CLONE_FS) == 0 {
                    libc::umask(0);
                }
            }
            done.set(true);
        }
    });
}

/// Switches the calling thread's filesystem uid/gid; restores root's on drop.
pub struct AsCaller {
    pub switched: bool,
}

impl AsCaller {
    pub fn new(uid: u32, gid: u32) -> Self {
        private_umask();
        // Only root can act as someone else; an unprivileged daemon creates as itself.
        // SAFETY: geteuid has no preconditions.
        if (uid == 0 && gid == 0) || unsafe { libc::geteuid() } != 0 {
            return Self { switched: false };
        }
        // SAFETY: per-thread credential syscalls; the order (gid first) keeps the
        // capability to change the gid.
        unsafe {
            libc::setfsgid(gid);
            libc::setfsuid(uid);
        }
        Self { switched: true }
    }
}

impl Drop for AsCaller {
    fn drop(&mut self) {
        if self.switched {
            // SAFETY: as above.
            unsafe {
                libc::setfsuid(0);
                libc::setfsgid(0);
            }
        }
    }
}

/// Runs the creating call `make` as the caller. The kernel has already checked the
/// caller's permission with all its groups (`default_permissions`), but `setfsgid` carries
/// only the primary group: when the backing filesystem refuses the switched credentials
/// (EACCES), the call is made again as the daemon and `Ok(true)` tells the caller to hand
/// the new object over with [`owner_after_retry`].
pub fn create_as<T>(
    uid: u32,
    gid: u32,
    make: impl Fn() -> std::io::Result<T>,
) -> std::io::Result<(T, bool)> {
    let first = {
        let guard = AsCaller::new(uid, gid);
        let r = make();
        (r, guard.switched)
    };
    match first {
        (Err(e), true) if e.raw_os_error() == Some(libc::EACCES) => {
            private_umask();
            make().map(|v| (v, true))
        }
        (r, _) => r.map(|v| (v, false)),
    }
}

/// Owner to give an object the daemon created for the caller: the caller's uid, and its
/// gid unless the directory's set-group-ID bit already gave the directory's group.
pub fn owner_after_retry(uid: u32, gid: u32, parent_mode: u32) -> (u32, u32) {
    if parent_mode & libc::S_ISGID != 0 {
        (uid, u32::MAX)
    } else {
        (uid, gid)
    }
}
