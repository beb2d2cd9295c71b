//! POSIX record locks (FUSE_POSIX_LOCKS): GETLK / SETLK / SETLKW go to the lock manager's
//! byte-range table, so a local `fcntl` lock and an SMB or NLM lock on the same bytes
//! conflict. A blocking SETLKW waits on a thread of its own.

use std::sync::Arc;

use fuser::{INodeNo, LockOwner, ReplyEmpty, ReplyLock};

use crate::fs::Fs;
use crate::mediation::LockGate;

impl Fs {
    #[allow(clippy::too_many_arguments)]
    pub fn getlk(
        &self,
        ino: INodeNo,
        owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let node = match self.inode(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        match self.mediator.getlk(node.key, owner.0, start, end, typ, pid) {
            Ok(Some(c)) => reply.locked(c.start, c.end, c.typ, c.pid),
            Ok(None) => reply.locked(start, end, libc::F_UNLCK, 0),
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn setlk(
        self: &Arc<Self>,
        ino: INodeNo,
        owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let node = match self.inode(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        match self
            .mediator
            .setlk(node.key, owner.0, start, end, typ, pid, sleep)
        {
            LockGate::Ready(Ok(())) => reply.ok(),
            LockGate::Ready(Err(e)) => reply.error(e),
            LockGate::Wait(w) => {
                std::thread::Builder::new()
                    .name("leasefs-setlkw".into())
                    .spawn(move || match w.wait() {
                        Ok(()) => reply.ok(),
                        Err(e) => reply.error(e),
                    })
                    .expect("spawning a lock waiter");
            }
        }
    }
}
