//! Dead-peer detection for break notifications (issue 5, smbtorture
//! `smb2.oplock.batch22b`).
//!
//! A client whose host vanished (cable pulled, firewall dropping its packets) neither
//! acknowledges a break (MS-SMB2 3.3.5.22) nor even TCP-acknowledges the bytes of the
//! notification. Waiting for the break deadline (`--break-timeout`, MS-SMB2 3.3.6.1)
//! would keep every other opener of the file waiting that long, and the holder's opens
//! would outlive the revocation. So, as Samba's smbd does, the server watches the
//! socket after it queues a break notification: when the notification's bytes are
//! still not TCP-acknowledged after `ack_timeout` *and* the peer acknowledged nothing
//! at all during that time, the connection is treated as lost and closed. Its
//! teardown is the connection-loss path of MS-SMB2 3.3.7.1: opens close, leases and
//! oplocks are released, and whoever waited for the break proceeds.
//!
//! A client that TCP-acknowledges but never sends the SMB acknowledgement is alive and
//! keeps today's behaviour: revoked at the break deadline, its handle still usable.
//!
//! How "acknowledged" is measured: the writer counts the bytes it handed to the socket
//! (`wrote`), so the end of a break notification is a byte position; the kernel reports
//! the peer's cumulative acknowledged bytes (`TCP_INFO` `tcpi_bytes_acked`, Linux 4.1+),
//! else the written count minus the unacknowledged output queue (`SIOCOUTQ`). A client
//! that keeps acknowledging other data (a slow link draining a large READ queued ahead of
//! the break) gets another period each time, so only a peer that acknowledges nothing
//! for a whole period is dropped. A live client whose receive window stays closed for a
//! whole period (it stopped reading) is dropped too, as smbd does.
//!
//! Timeout rule: a third of the break deadline, at least 5 s (several TCP
//! retransmissions at the minimum 200 ms RTO with exponential backoff, so a lost segment
//! is never mistaken for a dead peer) and at most 15 s. Samba uses 6 retransmission
//! timeouts (1.2 s to 6 s); ours is longer because dropping a live client costs it its
//! opens. With the default 35 s deadline the period is about 11.7 s.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Shortest period, whatever the break deadline.
pub const MIN_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest period: a dead peer should not hold others up for much of a long deadline.
pub const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(15);

/// The period after which an unacknowledged break notification means a dead peer,
/// for a given break deadline (see the module comment).
pub fn ack_timeout(break_timeout: Duration) -> Duration {
    (break_timeout / 3).clamp(MIN_ACK_TIMEOUT, MAX_ACK_TIMEOUT)
}

/// A break notification queued on the connection, until its deadline check.
struct Watch {
    id: u64,
    /// The frame as queued, to recognise it when the writer writes it.
    frame: Vec<u8>,
    /// Byte position of its end in the connection's output, once written.
    end: Option<u64>,
}

/// One connection's watch over its break notifications.
pub struct Liveness {
    /// A duplicate of the connection's socket, so checks never touch a descriptor number
    /// that was closed and reused; dropped by `close`.
    fd: Mutex<Option<OwnedFd>>,
    conn_id: u64,
    timeout: Duration,
    rt: tokio::runtime::Handle,
    /// Bytes the writer handed to the socket.
    written: AtomicU64,
    watches: Mutex<Vec<Watch>>,
    /// Watches whose frame was not written yet: the writer's fast path.
    unwritten: AtomicUsize,
    next_id: AtomicU64,
}

impl Liveness {
    /// Watches `sock` (a connection's socket) for breaks, with the period derived from
    /// the break deadline. Must be called on the runtime that runs the checks. `None`
    /// when the socket cannot be duplicated: the connection then works as before,
    /// unwatched.
    pub fn attach(sock: &impl AsRawFd, conn_id: u64, break_timeout: Duration) -> Option<Arc<Self>> {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we borrow; a returned
        // descriptor is new and owned by nobody else.
        let fd = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            tracing::warn!(
                conn = conn_id,
                err = %std::io::Error::last_os_error(),
                "cannot watch the connection for dead peers"
            );
            return None;
        }
        // SAFETY: `fd` was just returned by fcntl and is owned here only.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(Arc::new(Liveness {
            fd: Mutex::new(Some(fd)),
            conn_id,
            timeout: ack_timeout(break_timeout),
            rt: tokio::runtime::Handle::current(),
            written: AtomicU64::new(0),
            watches: Mutex::new(Vec::new()),
            unwritten: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        }))
    }

    fn watches(&self) -> MutexGuard<'_, Vec<Watch>> {
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fd(&self) -> MutexGuard<'_, Option<OwnedFd>> {
        self.fd.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A break notification `frame` (as queued on the writer) is about to be queued:
    /// check at the end of the period that the peer received it. Called before the
    /// frame is queued so the writer cannot write it unnoticed. Any thread.
    pub fn break_queued(self: &Arc<Self>, frame: &[u8]) {
        let Some(start) = self.fd().as_ref().and_then(|fd| self.acked(fd.as_raw_fd())) else {
            return;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.watches().push(Watch {
            id,
            frame: frame.to_vec(),
            end: None,
        });
        self.unwritten.fetch_add(1, Ordering::SeqCst);
        let me = Arc::clone(self);
        self.rt.spawn(async move { me.watch(id, start).await });
    }

    /// The writer wrote `frame` to the socket completely.
    pub fn wrote(&self, frame: &[u8]) {
        let pos = self.written.fetch_add(frame.len() as u64, Ordering::SeqCst) + frame.len() as u64;
        if self.unwritten.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut w = self.watches();
        if let Some(watch) = w
            .iter_mut()
            .find(|x| x.end.is_none() && x.frame.as_slice() == frame)
        {
            watch.end = Some(pos);
            self.unwritten.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The connection ended: stop watching and let the socket close.
    pub fn close(&self) {
        self.fd().take();
        let mut w = self.watches();
        w.clear();
        self.unwritten.store(0, Ordering::SeqCst);
    }

    /// Waits one period at a time until the notification `id` is acknowledged, the
    /// peer stops acknowledging anything, or the connection ends.
    async fn watch(self: Arc<Self>, id: u64, mut acked_before: u64) {
        loop {
            tokio::time::sleep(self.timeout).await;
            let fd = self.fd();
            let Some(sock) = fd.as_ref() else { return };
            let Some(acked) = self.acked(sock.as_raw_fd()) else {
                return;
            };
            let end = {
                let w = self.watches();
                match w.iter().find(|x| x.id == id) {
                    Some(x) => x.end,
                    None => return,
                }
            };
            if end.is_some_and(|e| acked >= e) {
                self.forget(id);
                return;
            }
            if acked > acked_before {
                // Alive: still taking data queued ahead of (or with) the break.
                acked_before = acked;
                continue;
            }
            tracing::warn!(
                conn = self.conn_id,
                timeout = ?self.timeout,
                written = end.is_some(),
                "break notification not TCP-acknowledged and nothing else acknowledged: \
                 dropping the connection as lost (MS-SMB2 3.3.7.1)"
            );
            // Both directions: the reader sees end of stream and tears the connection
            // down; a writer blocked on a full send buffer fails.
            // SAFETY: shutdown(2) on the descriptor we own; no memory is involved.
            unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_RDWR) };
            drop(fd);
            self.close();
            return;
        }
    }

    fn forget(&self, id: u64) {
        let mut w = self.watches();
        if let Some(i) = w.iter().position(|x| x.id == id) {
            if w[i].end.is_none() {
                self.unwritten.fetch_sub(1, Ordering::SeqCst);
            }
            w.remove(i);
        }
    }

    /// The peer's cumulative acknowledged byte count, in the writer's byte positions.
    fn acked(&self, fd: RawFd) -> Option<u64> {
        if let Some(a) = tcp_bytes_acked(fd) {
            return Some(a);
        }
        // Without tcpi_bytes_acked: what was written minus what is still queued. The
        // count is read after the queue, so a write in between can only make the peer
        // look further along (never a false drop).
        let queued = outq(fd)?;
        Some(self.written.load(Ordering::SeqCst).saturating_sub(queued))
    }
}

/// `tcpi_bytes_acked` of TCP_INFO: data bytes the peer acknowledged (RFC 4898
/// tcpEStatsAppHCThruOctetsAcked). `None` on kernels whose tcp_info is shorter.
fn tcp_bytes_acked(fd: RawFd) -> Option<u64> {
    /// Offset of tcpi_bytes_acked in struct tcp_info (linux/tcp.h).
    const OFFSET: usize = 120;
    let mut buf = [0u64; 32];
    let mut len = std::mem::size_of_val(&buf) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `buf`, which is that large.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 || (len as usize) < OFFSET + 8 {
        return None;
    }
    Some(buf[OFFSET / 8])
}

/// Bytes in the socket's send queue not yet acknowledged by the peer (SIOCOUTQ).
fn outq(fd: RawFd) -> Option<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ on a socket) writes one int.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    (r == 0 && n >= 0).then_some(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_follows_the_deadline_within_bounds() {
        assert_eq!(ack_timeout(Duration::from_secs(1)), MIN_ACK_TIMEOUT);
        assert_eq!(ack_timeout(Duration::from_secs(15)), Duration::from_secs(5));
        assert_eq!(
            ack_timeout(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        assert_eq!(ack_timeout(Duration::from_secs(3600)), MAX_ACK_TIMEOUT);
    }

    /// On loopback the kernel acknowledges at once: a written frame's end is reached.
    #[tokio::test]
    async fn a_written_frame_is_acknowledged_on_loopback() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::spawn(async move { tokio::net::TcpStream::connect(addr).await });
        let (mut s, _) = l.accept().await.unwrap();
        let _c = client.await.unwrap().unwrap();
        let live = Liveness::attach(&s, 1, Duration::from_secs(15)).unwrap();
        let frame = vec![0u8, 0, 0, 4, 1, 2, 3, 4];
        live.break_queued(&frame);
        s.write_all(&frame).await.unwrap();
        live.wrote(&frame);
        assert_eq!(live.unwritten.load(Ordering::SeqCst), 0);
        let end = live.watches()[0].end.unwrap();
        assert_eq!(end, 8);
        let fd = s.as_raw_fd();
        let mut acked = 0;
        for _ in 0..100 {
            acked = live.acked(fd).unwrap();
            if acked >= end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(acked >= end, "acked {acked} of {end}");
        live.close();
        assert!(live.watches().is_empty());
    }
}
