//! Waiting for SIGINT/SIGTERM in a foreground daemon.
//!
//! The signals are blocked in the calling thread before any session thread exists, so every
//! thread inherits the mask and none is killed by the default action; the main thread then
//! takes them synchronously with `sigwait` and unmounts.

use std::io;

pub struct ShutdownSignals {
    set: libc::sigset_t,
}

impl ShutdownSignals {
    /// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and the threads it spawns later).
    pub fn block() -> io::Result<Self> {
        // SAFETY: sigset manipulation on a local set, then the calling thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            Ok(Self { set })
        }
    }

    /// Waits for one of the signals and returns its number.
    pub fn wait(&self) -> io::Result<i32> {
        let mut sig = 0;
        // SAFETY: the set is initialised; `sig` is a valid out pointer.
        let r = unsafe { libc::sigwait(&self.set, &mut sig) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        Ok(sig)
    }
}
