//! SMB leases and oplocks on the shared lock manager (issue 5).
//!
//! `context` is the RqLs codec, `sink` delivers break notifications on the owning
//! connection, `handlers::oplock_break` takes the acknowledgments. This module is the
//! glue CREATE calls: what the request asks for ([`ask`]), registering the open with
//! its lease ([`open`]), and the response's oplock level and lease context
//! ([`finish_create`]).
//!
//! Oplocks run on the same engine as leases (DESIGN.md): Level II = R, Exclusive = RW,
//! Batch = RWH, each with a private key per open chosen by the manager.

pub mod clients;
pub mod context;
pub mod directory;
pub mod pending;
pub mod sink;

use crate::locking::OpenParams;
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::create::{CreateContext, CreateRequest};
use crate::wire::status;
use context::{level, LeaseContext, V2Fields};
use leasefs_leases::{
    oplock_key, ClientId, LeaseGrant, LeaseKey, LeaseRequest, LeaseState, LeaseVersion, OpenId,
    OpenOutcome, OpenRequest, OplockLevel,
};
use sink::{ConnLeasing, Route};
use std::sync::{Arc, Mutex};

pub use sink::ConnLeasing as Sink;

/// What a CREATE asks for in caching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    None,
    Oplock(OplockLevel),
    Lease(LeaseContext),
}

/// The decision of the last `open` on this connection, consumed by `finish_create`
/// (requests of a connection are handled one at a time, 3.3.5.2).
#[derive(Default)]
pub struct Stash {
    last: Mutex<Option<(Ask, OpenId, Option<LeaseGrant>)>>,
}

impl Stash {
    fn put(&self, v: (Ask, OpenId, Option<LeaseGrant>)) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }
    fn take(&self) -> Option<(Ask, OpenId, Option<LeaseGrant>)> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Per-connection leasing state: the break sink, the CREATE stash and the queue of
/// CREATEs whose break wait ended (see `pending`).
pub struct ConnLeases {
    pub sink: Arc<ConnLeasing>,
    pub stash: Stash,
    pub pending: pending::Pending,
}

impl ConnLeases {
    pub fn new(tx: tokio::sync::mpsc::Sender<Vec<u8>>) -> Self {
        ConnLeases {
            sink: Arc::new(ConnLeasing::new(tx)),
            stash: Stash::default(),
            pending: pending::Pending::new(),
        }
    }

    /// Start of a CREATE: forget what an earlier, failed one left behind, and note
    /// whether this one may go async if it has to wait for a break (only the last
    /// request of a compound may, 3.3.4.2).
    pub fn reset(&self, req: &crate::handlers::Req) {
        self.stash.take();
        self.pending
            .begin(!req.related && req.hdr.next_command == 0);
    }
}

/// A handle's share of a route: dropping the handle (close, logoff, disconnect) drops
/// the route of an oplock and of a lease no other handle of the connection uses.
pub struct Held {
    sink: Arc<ConnLeasing>,
    key: LeaseKey,
}

/// Who asks for a break-triggering operation through a handle: leases with the
/// handle's own key (or its own oplock) are never broken by it (MS-SMB2 3.3.1.4).
pub fn requester(st: &ConnState, o: &crate::session::Open) -> leasefs_leases::Requester {
    leasefs_leases::Requester {
        owner: o.owner,
        lease: o
            .leasing
            .as_ref()
            .map(|h| (ClientId(st.client_guid), h.key)),
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.sink.release_route(&self.key);
    }
}

/// What the CREATE asks for (MS-SMB2 3.3.5.9: RequestedOplockLevel, and the lease
/// context when it is SMB2_OPLOCK_LEVEL_LEASE on a dialect that has leases).
pub fn ask(st: &ConnState, creq: &CreateRequest) -> Result<Ask, u32> {
    let leasing = st.server_caps & crate::wire::negotiate::CAP_LEASING != 0;
    Ok(match creq.oplock_level {
        level::II => Ask::Oplock(OplockLevel::LevelII),
        level::EXCLUSIVE => Ask::Oplock(OplockLevel::Exclusive),
        level::BATCH => Ask::Oplock(OplockLevel::Batch),
        level::LEASE if leasing => match creq.context(context::NAME) {
            // 3.3.5.9.8: a malformed lease context fails the CREATE.
            Some(c) => {
                Ask::Lease(LeaseContext::parse(&c.data).map_err(|_| status::INVALID_PARAMETER)?)
            }
            None => Ask::None,
        },
        _ => Ask::None,
    })
}

fn lease_request(st: &ConnState, ask: &Ask, is_dir: bool) -> Option<LeaseRequest> {
    let client = ClientId(st.client_guid);
    match ask {
        Ask::None => None,
        // Oplocks are for files only (MS-FSA 2.1.5.17: directories get none).
        Ask::Oplock(_) if is_dir => None,
        Ask::Oplock(l) => Some(LeaseRequest {
            client,
            key: LeaseKey([0; 16]),
            state: l.as_lease_state(),
            version: LeaseVersion::V1,
            oplock: true,
        }),
        Ask::Lease(c) => {
            let mut state = LeaseState((c.state & 0x7) as u8);
            // Directory leases (3.3.5.9.11): R or RH for a V2 context on a connection
            // with SMB2_GLOBAL_CAP_DIRECTORY_LEASING. Otherwise the key is still checked
            // (the same key on another file is STATUS_INVALID_PARAMETER) but nothing is
            // granted, and the response carries no lease, as Windows and Samba answer.
            if is_dir {
                state = directory::requested_state(st, c).unwrap_or(LeaseState::NONE);
            }
            Some(LeaseRequest {
                client,
                key: LeaseKey(c.key),
                state,
                version: match c.v2 {
                    Some(_) => LeaseVersion::V2 {
                        parent: c.parent_key().map(LeaseKey),
                    },
                    None => LeaseVersion::V1,
                },
                oplock: false,
            })
        }
    }
}

/// Registers the open with its lease or oplock request. A break it must wait for is
/// parked in `pending` and the CREATE runs again once it ends.
pub fn open(srv: &Arc<Server>, st: &ConnState, p: &OpenParams, ask: &Ask) -> Result<OpenId, u32> {
    let lease = lease_request(st, ask, p.is_dir);
    // Any open, leased or not: a later connection's lease breaks may come this way. A
    // zero ClientGuid (SMB 2.0.2 has no leases) names no client.
    if st.client_guid != [0; 16] {
        st.leases.sink.join_client(&srv.clients, st.client_guid);
    }
    if lease.is_some() && st.leases.sink.needs_registration() {
        // Before the first grant of this connection, so a break that fires at once
        // has somewhere to go (DESIGN.md break engine rules).
        let sink: Arc<dyn leasefs_leases::BreakSink> = st.leases.sink.clone();
        srv.hub.manager().register_sink(st.owner(), sink);
    }
    let req = OpenRequest {
        file: p.file,
        owner: p.owner,
        access: p.access,
        share: p.share,
        stat_only: p.stat_only,
        metadata_only: p.metadata_only,
        overwrite: p.overwrite,
        // The SMB server performs every write itself and calls before_write, so the
        // manager sees them all (DESIGN.md "Local access").
        writes_unseen: false,
        is_dir: p.is_dir,
        lease,
    };
    match srv
        .hub
        .manager()
        .open(&req)
        .map_err(crate::locking::lock_status)?
    {
        OpenOutcome::Opened(g) => {
            let ask = match ask {
                Ask::Lease(_) if p.is_dir && !directory::grants(st, ask) => Ask::None,
                a => *a,
            };
            st.leases.stash.put((ask, g.open, g.lease));
            Ok(g.open)
        }
        OpenOutcome::Wait(w) => {
            // Answered STATUS_PENDING (or, inside a compound, the compound waits); the
            // CREATE runs again once the wait ends (`pending`).
            st.leases.pending.park(w);
            Err(status::PENDING)
        }
    }
}

/// The response's OplockLevel and lease context for the open just registered, and the
/// route that sends its breaks to this connection.
pub fn finish_create(
    st: &ConnState,
    session_id: u64,
    tree_id: u32,
    encrypted: bool,
    file_id: (u64, u64),
) -> (u8, Option<CreateContext>, Option<Held>) {
    let Some((ask, open, grant)) = st.leases.stash.take() else {
        return (level::NONE, None, None);
    };
    let sec = st.snapshot(session_id, encrypted);
    let sink = &st.leases.sink;
    match ask {
        Ask::None => (level::NONE, None, None),
        Ask::Oplock(_) => {
            let granted = grant.map(|g| g.state).unwrap_or(LeaseState::NONE);
            let lvl = OplockLevel::from_lease_state(granted);
            if lvl == OplockLevel::None {
                return (level::NONE, None, None);
            }
            let key = oplock_key(open);
            let held = sink.add_route(
                key,
                Route {
                    session_id,
                    tree_id,
                    file_id,
                    sec,
                    epoch_base: 0,
                    v2: false,
                },
            );
            (sink::oplock_wire_level(lvl), None, Some(held))
        }
        Ask::Lease(c) => {
            let key = LeaseKey(c.key);
            let g = grant.unwrap_or(LeaseGrant {
                state: LeaseState::NONE,
                epoch: 0,
                breaking: false,
            });
            // 3.3.5.9.11: a new V2 lease continues from the epoch the client sent. An
            // existing lease keeps its version: a V1 request on a V2 lease gets a V2
            // response and the other way round (smbtorture smb2.lease.v2_epoch2/3).
            let existing = sink.client_route(&key);
            let base = existing
                .as_ref()
                .map(|r| r.epoch_base)
                .unwrap_or_else(|| c.v2.map(|v| v.epoch).unwrap_or(0));
            let is_v2 = existing.as_ref().map(|r| r.v2).unwrap_or(c.v2.is_some());
            let held = sink.add_route(
                key,
                Route {
                    session_id,
                    tree_id,
                    file_id,
                    sec,
                    epoch_base: base,
                    v2: is_v2,
                },
            );
            let mut flags = 0;
            if g.breaking {
                flags |= context::FLAG_BREAK_IN_PROGRESS;
            }
            let v2 = is_v2.then(|| {
                flags |= c.flags & context::FLAG_PARENT_LEASE_KEY_SET;
                V2Fields {
                    parent: c.v2.map(|v| v.parent).unwrap_or([0; 16]),
                    epoch: g.epoch.wrapping_add(base),
                }
            });
            let resp = LeaseContext {
                key: c.key,
                state: g.state.0 as u32,
                flags,
                v2,
            };
            (
                level::LEASE,
                Some(CreateContext {
                    name: context::NAME.to_vec(),
                    data: resp.encode(),
                }),
                Some(held),
            )
        }
    }
}

impl ConnLeasing {
    /// Adds a handle to the route of `key` (replacing its addressing with this
    /// handle's session) and returns the handle's share of it.
    pub fn add_route(self: &Arc<Self>, key: LeaseKey, route: Route) -> Held {
        self.set_route(key, route);
        Held {
            sink: Arc::clone(self),
            key,
        }
    }
}
