//! Delete-on-close against other holders' handle caching (issue 5).
//!
//! A file becomes delete-pending when a handle opened with FILE_DELETE_ON_CLOSE is
//! closed (MS-FSA 2.1.5.4) or through FileDispositionInformation (2.1.5.14.3); it goes
//! away when its last handle closes. Other keys' handle caching (H) keeps handles open
//! that the holder could close, so it is broken first (MS-SMB2 3.3.1.4, MS-FSA
//! 2.1.4.12), and a break from RH needs the holder's ack.
//!
//! Waiting for that ack must never hold the connection: the holder may ack on this very
//! connection (smbtorture `smb2.lease.unlink`). So the wait, and the unlink after it,
//! run on their own task; the CLOSE that started them is answered when that task is
//! done (STATUS_PENDING first, MS-SMB2 3.3.4.2), or inside a compound at once with the
//! rest of the compound waiting for that task (`suspend`).
//! The handle itself is closed before any of this, so a CANCEL or a disconnect only
//! drops the reply: the unlink still happens, as delete-on-close must (3.3.7.1).

use crate::notify::{self, Change};
use crate::server::Server;
use crate::session::{Handle, Open};
use crate::vfs::{self, streams, SmbPath};
use leasefs_leases::{BreakOutcome, BreakWait, FileId, Requester};
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// A close that finishes on its own task: the break wait, then the unlink if any.
pub type Finishing = tokio::task::JoinHandle<()>;

/// What is left of a closed handle to delete its name.
struct Doomed {
    path: SmbPath,
    is_dir: bool,
    handle: Handle,
}

impl Doomed {
    fn run(self, srv: &Server) {
        let res = match &self.handle {
            Handle::Stream { base, name } => streams::remove(base.as_raw_fd(), name),
            _ => srv.root.unlink(&self.path, self.is_dir),
        };
        match res {
            Ok(()) => notify::publish(srv, Change::removed(&self.path)),
            Err(e) => tracing::debug!(path = %self.path.rel(), "delete on close failed: {e}"),
        }
    }
}

fn parent_id(srv: &Server, p: &SmbPath) -> Option<FileId> {
    let d = srv.root.parent_dir(p).ok()?;
    let s = vfs::fstat(d.as_raw_fd()).ok()?;
    Some(FileId::new(s.st_dev, s.st_ino))
}

/// The closing handle made the file delete-pending while other handles stay open:
/// their holders lose H now (the file cannot go away while they cache handles). The
/// name is still there, so parent directory leases are not broken yet.
pub fn became_pending(srv: &Arc<Server>, file: FileId, by: &Requester) -> Option<Finishing> {
    match srv.hub.manager().before_unlink(file, None, by) {
        BreakOutcome::Proceed => None,
        BreakOutcome::Wait(w) => finish_later(srv, w, None),
    }
}

/// The last handle of a delete-pending file closed: break others' H (and the parent
/// directory's leases), then remove the name, now or once the breaks are done.
pub fn last_close(srv: &Arc<Server>, o: Open, by: &Requester) -> Option<Finishing> {
    let outcome = if o.path.stream.is_none() {
        // The parent's directory leases go now, except the one this handle named as its
        // ParentLeaseKey (its own lease, which would carry that key, is gone already).
        if let Some(p) = parent_id(srv, &o.path) {
            srv.hub
                .manager()
                .break_parent(p, by, o.dir_child.parent_lease);
        }
        srv.hub.manager().before_unlink(o.file, None, by)
    } else {
        // A named stream has no name in any directory and no lease of its own key
        // beyond the stream's, which `hub.close` already left.
        BreakOutcome::Proceed
    };
    let doomed = Doomed {
        path: o.path,
        is_dir: o.is_dir,
        handle: o.handle,
    };
    match outcome {
        BreakOutcome::Proceed => {
            doomed.run(srv);
            None
        }
        BreakOutcome::Wait(w) => finish_later(srv, w, Some(doomed)),
    }
}

fn finish_later(srv: &Arc<Server>, w: BreakWait, doomed: Option<Doomed>) -> Option<Finishing> {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        // Outside the server's runtime (unit tests): nothing else shares this thread.
        let why = w.wait();
        tracing::debug!(?why, "delete on close waited for a break");
        if let Some(d) = doomed {
            d.run(srv);
        }
        return None;
    };
    let srv = Arc::clone(srv);
    Some(rt.spawn(async move {
        let why = w.await;
        tracing::debug!(?why, "delete on close may proceed");
        if let Some(d) = doomed {
            let _ = tokio::task::spawn_blocking(move || d.run(&srv)).await;
        }
    }))
}
