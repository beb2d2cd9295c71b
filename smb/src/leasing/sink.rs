//! Break delivery: one sink per connection (the lock manager's owner), registered
//! before the first lease or oplock of the connection is granted (DESIGN.md: a break
//! that fires at once must have somewhere to go).
//!
//! The manager calls `deliver` with none of its locks held, from whatever thread
//! caused the break (another connection's task, the FUSE thread, the deadline thread),
//! so delivery only encodes the notification and queues it on the connection's writer.

use crate::session::SecSnapshot;
use crate::wire::{self, cmd, Header, Put};
use leasefs_leases::{BreakNotice, BreakSink, LeaseKey, OplockLevel};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Where the notification for one lease key (or oplock's private key) goes.
#[derive(Clone)]
pub struct Route {
    pub session_id: u64,
    pub tree_id: u32,
    /// The handle of an oplock (2.2.23.1 carries the FileId); unused for leases.
    pub file_id: (u64, u64),
    /// Keys to encrypt with when the session requires it (3.3.4.1.4).
    pub sec: SecSnapshot,
    /// V2 leases: what the client's first epoch adds to the manager's count, so the
    /// epochs we send follow on from the one the client chose (3.3.5.9.11).
    pub epoch_base: u16,
    pub v2: bool,
}

#[derive(Default)]
struct Routes {
    /// Route and the number of this connection's handles that use it.
    by_key: HashMap<LeaseKey, (Route, usize)>,
    /// Notices that fired between the grant and the CREATE response that tells us the
    /// handle; sent once the route is known.
    unrouted: Vec<BreakNotice>,
}

pub struct ConnLeasing {
    tx: mpsc::Sender<Vec<u8>>,
    routes: Mutex<Routes>,
    registered: std::sync::atomic::AtomicBool,
    /// When the connection was made, relative to the others (`clients`).
    seq: u64,
    /// The client's connections, once this one has joined them (`join_client`).
    client: std::sync::OnceLock<(std::sync::Arc<super::clients::ClientConns>, [u8; 16])>,
    /// Dead-peer watch of the connection's socket (`crate::liveness`).
    liveness: std::sync::OnceLock<std::sync::Arc<crate::liveness::Liveness>>,
}

const MAX_UNROUTED: usize = 1024;

/// MS-SMB2 2.2.23.2 Flags: the client must acknowledge this lease break.
const NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED: u32 = 0x01;

impl ConnLeasing {
    pub fn new(tx: mpsc::Sender<Vec<u8>>) -> Self {
        ConnLeasing {
            tx,
            routes: Mutex::new(Routes::default()),
            registered: std::sync::atomic::AtomicBool::new(false),
            seq: super::clients::next_seq(),
            client: std::sync::OnceLock::new(),
            liveness: std::sync::OnceLock::new(),
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The connection can still carry a notification.
    pub fn is_live(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Makes this connection one of `client`'s (once; the ClientGuid of a connection
    /// does not change after NEGOTIATE).
    pub fn join_client(
        self: &std::sync::Arc<Self>,
        conns: &std::sync::Arc<super::clients::ClientConns>,
        client: [u8; 16],
    ) {
        if self.client.get().is_some() {
            return;
        }
        if self.client.set((conns.clone(), client)).is_ok() {
            conns.join(client, self);
        }
    }

    /// This connection's route for `key`, else one another connection of the same
    /// client holds (`clients::ClientConns::route`).
    pub fn client_route(&self, key: &LeaseKey) -> Option<Route> {
        self.route(key).or_else(|| {
            let (conns, client) = self.client.get()?;
            conns.route(client, key)
        })
    }

    /// Where a lease break for this connection's client goes: the client's first live
    /// connection when that is another one (see `clients`).
    fn lease_break_conn(&self) -> Option<std::sync::Arc<ConnLeasing>> {
        let (conns, client) = self.client.get()?;
        conns
            .first_live(client)
            .filter(|c| !std::ptr::eq(c.as_ref(), self))
    }

    /// Breaks sent on this connection are watched for a dead peer by `l`.
    pub fn watch_liveness(&self, l: std::sync::Arc<crate::liveness::Liveness>) {
        let _ = self.liveness.set(l);
    }

    /// True the first time: the caller then registers this sink with the manager.
    pub fn needs_registration(&self) -> bool {
        !self
            .registered
            .swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn route(&self, key: &LeaseKey) -> Option<Route> {
        self.routes().by_key.get(key).map(|(r, _)| r.clone())
    }

    /// Records where breaks of `key` go and sends any that were waiting for it.
    pub fn set_route(&self, key: LeaseKey, route: Route) {
        let ready: Vec<BreakNotice> = {
            let mut r = self.routes();
            let e = r.by_key.entry(key).or_insert((route.clone(), 0));
            e.0 = route;
            e.1 += 1;
            let (ready, keep) = std::mem::take(&mut r.unrouted)
                .into_iter()
                .partition(|n| n.key == key);
            r.unrouted = keep;
            ready
        };
        for n in ready {
            self.deliver(n);
        }
    }

    /// A handle using `key` closed; the route goes with the last one.
    pub fn release_route(&self, key: &LeaseKey) {
        let mut r = self.routes();
        if let Some(e) = r.by_key.get_mut(key) {
            e.1 = e.1.saturating_sub(1);
            if e.1 == 0 {
                r.by_key.remove(key);
            }
        }
    }

    fn send(&self, msg: Vec<u8>) {
        let mut framed = Vec::with_capacity(msg.len() + 4);
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        // Before queueing, so the writer cannot write it unnoticed.
        if let Some(l) = self.liveness.get() {
            l.break_queued(&framed);
        }
        match self.tx.try_send(framed) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(f)) => {
                // A busy writer must not make the manager's caller block (it may be a
                // runtime thread): hand the frame to a thread that may.
                let tx = self.tx.clone();
                std::thread::spawn(move || {
                    let _ = tx.blocking_send(f);
                });
            }
            // The connection is gone; its teardown releases the lease (owner_gone).
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// An unsolicited message (3.3.4.6/3.3.4.7): MessageId all ones, no credits.
fn break_header(session_id: u64, tree_id: u32) -> Header {
    Header {
        credit_charge: 0,
        status: 0,
        command: cmd::OPLOCK_BREAK,
        credits: 0,
        flags: wire::FLAGS_SERVER_TO_REDIR,
        next_command: 0,
        message_id: u64::MAX,
        tree_id,
        async_id: 0,
        session_id,
        signature: [0; 16],
    }
}

/// Break notifications are never signed (they are not responses to a signed request
/// and a lease break names no session, 3.3.4.7); they are encrypted when the session
/// that owns the handle requires encryption (3.3.4.1.4).
fn seal(sec: &SecSnapshot, msg: Vec<u8>) -> Vec<u8> {
    let mut s = sec.clone();
    s.signing_required = false;
    crate::conn::finish(&s, msg)
}

pub fn lease_break_message(n: &BreakNotice, route: &Route) -> Vec<u8> {
    let encrypt = route.sec.encrypt.is_some();
    // 3.3.4.7: SessionId 0 on a lease break; an encrypted one names the session whose
    // keys sealed it.
    let sid = if encrypt { route.session_id } else { 0 };
    let mut msg = Vec::with_capacity(64 + 44);
    break_header(sid, 0).write(&mut msg);
    msg.put_u16(44);
    // NewEpoch: V2 leases only (2.2.23.2).
    msg.put_u16(if route.v2 {
        n.epoch.wrapping_add(route.epoch_base)
    } else {
        0
    });
    msg.put_u32(if n.ack_required {
        NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED
    } else {
        0
    });
    msg.extend_from_slice(&n.key.0);
    msg.put_u32(n.from.0 as u32);
    msg.put_u32(n.to.0 as u32);
    msg.put_u32(0); // BreakReason
    msg.put_u32(0); // AccessMaskHint
    msg.put_u32(0); // ShareMaskHint
    msg
}

pub fn oplock_wire_level(l: OplockLevel) -> u8 {
    use super::context::level;
    match l {
        OplockLevel::None => level::NONE,
        OplockLevel::LevelII => level::II,
        OplockLevel::Exclusive => level::EXCLUSIVE,
        OplockLevel::Batch => level::BATCH,
    }
}

pub fn oplock_break_message(n: &BreakNotice, route: &Route) -> Vec<u8> {
    let mut msg = Vec::with_capacity(64 + 24);
    break_header(route.session_id, route.tree_id).write(&mut msg);
    msg.put_u16(24);
    // 2.2.23.1: an oplock breaks to Level II or to none. The engine strips only the
    // bits the conflict needs (H for a sharing violation), which for Batch leaves RW;
    // Windows breaks Batch and Exclusive to Level II there (smbtorture
    // smb2.oplock.batch*), and Level II (R) is within any such target.
    let level = if n.to.has(leasefs_leases::LeaseState::R) {
        OplockLevel::LevelII
    } else {
        OplockLevel::None
    };
    msg.put_u8(oplock_wire_level(level));
    msg.put_u8(0);
    msg.put_u32(0);
    msg.put_u64(route.file_id.0);
    msg.put_u64(route.file_id.1);
    msg
}

impl BreakSink for ConnLeasing {
    fn deliver(&self, notice: BreakNotice) {
        let route = {
            let mut r = self.routes();
            match r.by_key.get(&notice.key) {
                Some((route, _)) => route.clone(),
                None => {
                    // Bounded: a notice for a lease whose handles all closed meanwhile
                    // has nobody left to tell.
                    if r.unrouted.len() < MAX_UNROUTED {
                        r.unrouted.push(notice);
                    }
                    return;
                }
            }
        };
        tracing::debug!(
            key = %notice.key,
            from = %notice.from,
            to = %notice.to,
            reason = %notice.reason,
            oplock = notice.oplock,
            "sending break"
        );
        let msg = if notice.oplock {
            oplock_break_message(&notice, &route)
        } else {
            lease_break_message(&notice, &route)
        };
        // A lease break names no session (3.3.4.7), so another connection of the client
        // can carry it, unless it must be sealed with this connection's session keys.
        if !notice.oplock && route.sec.encrypt.is_none() {
            if let Some(first) = self.lease_break_conn() {
                first.send(seal(&route.sec, msg));
                return;
            }
        }
        self.send(seal(&route.sec, msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasefs_leases::{
        BreakReason, ClientId, FileId, LeaseState, LeaseVersion, OwnerId, Protocol,
    };

    fn notice(oplock: bool, from: LeaseState, to: LeaseState) -> BreakNotice {
        BreakNotice {
            owner: OwnerId::new(Protocol::Smb, ClientId([1; 16]), 7),
            client: ClientId([1; 16]),
            key: LeaseKey([9; 16]),
            file: FileId::new(1, 2),
            from,
            to,
            epoch: 2,
            ack_required: from.has(LeaseState::W) || from.has(LeaseState::H),
            oplock,
            version: LeaseVersion::V2 { parent: None },
            reason: BreakReason::Open,
        }
    }

    fn route(v2: bool) -> Route {
        Route {
            session_id: 0x55,
            tree_id: 3,
            file_id: (11, 12),
            sec: SecSnapshot::default(),
            epoch_base: 0x10,
            v2,
        }
    }

    #[test]
    fn lease_break_layout() {
        let m = lease_break_message(
            &notice(false, LeaseState::RWH, LeaseState::RH),
            &route(true),
        );
        let h = Header::parse(&m).unwrap();
        assert_eq!(h.message_id, u64::MAX);
        assert_eq!(h.command, cmd::OPLOCK_BREAK);
        // 3.3.4.7: unencrypted lease breaks name no session.
        assert_eq!(h.session_id, 0);
        let b = &m[64..];
        assert_eq!(b.len(), 44);
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), 44);
        // NewEpoch continues from the client's first epoch.
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 0x12);
        assert_eq!(b[4], 1, "ACK_REQUIRED");
        assert_eq!(&b[8..24], &[9; 16]);
        assert_eq!(b[24], 7);
        assert_eq!(b[28], 3);
        let v1 = lease_break_message(
            &notice(false, LeaseState::R, LeaseState::NONE),
            &route(false),
        );
        assert_eq!(
            &v1[64 + 2..64 + 8],
            &[0, 0, 0, 0, 0, 0],
            "V1: no epoch, no ack"
        );
    }

    #[test]
    fn oplock_break_goes_to_level_ii_or_none() {
        let m = oplock_break_message(
            &notice(true, LeaseState::RWH, LeaseState::RW),
            &route(false),
        );
        let h = Header::parse(&m).unwrap();
        assert_eq!((h.session_id, h.tree_id), (0x55, 3));
        let b = &m[64..];
        assert_eq!(b.len(), 24);
        assert_eq!(b[2], super::super::context::level::II);
        assert_eq!(&b[8..16], &11u64.to_le_bytes());
        assert_eq!(&b[16..24], &12u64.to_le_bytes());
        let none = oplock_break_message(
            &notice(true, LeaseState::R, LeaseState::NONE),
            &route(false),
        );
        assert_eq!(none[64 + 2], super::super::context::level::NONE);
    }

    #[tokio::test]
    async fn a_break_before_the_route_waits_for_it() {
        let (tx, mut rx) = mpsc::channel(4);
        let s = ConnLeasing::new(tx);
        s.deliver(notice(false, LeaseState::RWH, LeaseState::RH));
        assert!(rx.try_recv().is_err());
        s.set_route(LeaseKey([9; 16]), route(true));
        let f = rx.try_recv().expect("sent once routed");
        assert_eq!(
            u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize,
            f.len() - 4
        );
    }
}
