//! Per-connection state: negotiated parameters, sessions (MS-SMB2 3.3.1.8), tree
//! connects (3.3.1.9) and opens (3.3.1.10), plus the security snapshot used to sign or
//! encrypt a response.

use crate::auth::NtlmAuthenticator;
use crate::conn::PendingMap;
use crate::crypto::{Cipher, Dialect, PreauthHash, SessionKeys};
use crate::server::Server;
use crate::vfs::SmbPath;
use crate::wire::info::FileMeta;
use crate::wire::{cmd, status, Header};
use leasefs_leases::{ClientId, FileId, OpenId, OwnerId, Protocol};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

pub enum AuthState {
    InProgress {
        auth: Box<NtlmAuthenticator>,
        preauth: PreauthHash,
    },
    Valid,
}

pub struct Session {
    pub id: u64,
    pub state: AuthState,
    pub keys: Option<SessionKeys>,
    pub signing_required: bool,
    pub encrypt_data: bool,
    pub user: String,
    pub guest: bool,
    pub anonymous: bool,
    pub trees: HashMap<u32, Tree>,
    pub next_tree: u32,
    /// Counts this session as live once established (metrics).
    pub counted: Option<crate::server::SessionCount>,
}

impl Session {
    pub fn is_valid(&self) -> bool {
        matches!(self.state, AuthState::Valid)
    }
}

#[derive(Debug, Clone)]
pub struct Tree {
    pub id: u32,
    pub ipc: bool,
    pub read_only: bool,
}

pub enum Handle {
    File(std::fs::File),
    /// A directory, opened O_RDONLY|O_DIRECTORY.
    Dir(std::fs::File),
    /// A named stream of `base` (kept in xattrs, see vfs::streams).
    Stream {
        base: std::fs::File,
        name: String,
    },
    /// A named pipe on IPC$ (we serve none; opens fail before this exists).
    Pipe,
}

impl Handle {
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Handle::File(f) | Handle::Dir(f) | Handle::Stream { base: f, .. } => {
                Some(f.as_raw_fd())
            }
            Handle::Pipe => None,
        }
    }
}

pub struct DirListing {
    pub entries: Vec<(String, FileMeta)>,
    pub pos: usize,
    pub pattern: String,
}

pub struct Open {
    pub persistent: u64,
    pub volatile: u64,
    pub session_id: u64,
    pub tree_id: u32,
    pub path: SmbPath,
    pub handle: Handle,
    pub file: FileId,
    pub lock_open: OpenId,
    /// The lock-manager owner (this connection), for break triggers.
    pub owner: OwnerId,
    pub granted: u32,
    pub is_dir: bool,
    pub delete_on_close: bool,
    pub position: u64,
    pub mode: u32,
    pub listing: Option<DirListing>,
    /// Set to true when the handle closes, ending its pending CHANGE_NOTIFY.
    pub closed: tokio::sync::watch::Sender<bool>,
    /// Change events for this directory handle, subscribed at its first
    /// CHANGE_NOTIFY so changes between two requests are kept (MS-SMB2 3.3.5.19).
    pub notify: Option<crate::handlers::notify::Watch>,
    /// This handle's share of its lease's or oplock's break route (issue 5).
    pub leasing: Option<crate::leasing::Held>,
    /// What its close does to the parent directory's leases (issue 5).
    pub dir_child: crate::leasing::directory::ChildOfDir,
}

/// Keys and flags needed to sign/encrypt one response, copied so async completions
/// need no access to the connection state.
#[derive(Clone, Default)]
pub struct SecSnapshot {
    pub session_id: u64,
    pub dialect: Option<Dialect>,
    pub signing_key: Option<[u8; 16]>,
    pub signing_required: bool,
    pub encrypt: Option<(Cipher, [u8; 16])>,
}

impl SecSnapshot {
    /// MS-SMB2 3.3.4.1.1: sign when the request was signed or the session requires it;
    /// the final SESSION_SETUP response is signed so the client can verify the keys
    /// (3.3.5.5.3); encrypted responses carry no signature.
    pub fn should_sign(&self, req_signed: bool, command: u16, st: u32) -> bool {
        if self.encrypt.is_some() || self.signing_key.is_none() {
            return false;
        }
        if command == cmd::SESSION_SETUP {
            return st == status::SUCCESS;
        }
        req_signed || self.signing_required
    }
}

pub struct ConnState {
    pub id: u64,
    pub tx: mpsc::Sender<Vec<u8>>,
    pub pending: PendingMap,
    pub dialect: Option<Dialect>,
    pub negotiated: bool,
    pub client_guid: [u8; 16],
    pub client_caps: u32,
    pub client_security_mode: u16,
    pub server_security_mode: u16,
    pub server_caps: u32,
    pub server_guid: [u8; 16],
    pub client_dialects: Vec<u16>,
    pub cipher: Option<Cipher>,
    pub preauth: PreauthHash,
    pub sessions: HashMap<u64, Session>,
    pub opens: HashMap<u64, Open>,
    /// FileId created by the previous request of a related compound (3.3.5.2.7.2).
    pub compound_fid: Option<(u64, u64)>,
    /// SessionId to put in the response being built (a new SESSION_SETUP).
    pub reply_session_id: Option<u64>,
    /// TreeId to put in the response being built (a new TREE_CONNECT).
    pub reply_tree_id: Option<u32>,
    /// Break delivery and lease bookkeeping of this connection (issue 5).
    pub leases: crate::leasing::ConnLeases,
    next_async: u64,
}

impl ConnState {
    pub fn new(id: u64, tx: mpsc::Sender<Vec<u8>>, pending: PendingMap) -> Self {
        ConnState {
            id,
            leases: crate::leasing::ConnLeases::new(tx.clone()),
            tx,
            pending,
            dialect: None,
            negotiated: false,
            client_guid: [0; 16],
            client_caps: 0,
            client_security_mode: 0,
            server_security_mode: 0,
            server_caps: 0,
            server_guid: [0; 16],
            client_dialects: Vec::new(),
            cipher: None,
            preauth: PreauthHash::new(),
            sessions: HashMap::new(),
            opens: HashMap::new(),
            compound_fid: None,
            reply_session_id: None,
            reply_tree_id: None,
            next_async: 1,
        }
    }

    pub fn owner(&self) -> OwnerId {
        OwnerId::new(Protocol::Smb, ClientId(self.client_guid), self.id)
    }

    pub fn next_async_id(&mut self) -> u64 {
        self.next_async += 1;
        self.next_async
    }

    /// Credits granted in a response (3.3.1.2): what the client asks for, at least one
    /// so it can always send again, capped so a client cannot make us promise an
    /// unbounded window.
    pub fn grant_credits(&mut self, hdr: &Header) -> u16 {
        hdr.credits.clamp(1, 512)
    }

    pub fn decryption_key(&self, sid: u64) -> Option<(Cipher, [u8; 16])> {
        let s = self.sessions.get(&sid)?;
        let k = s.keys.as_ref()?;
        Some((self.cipher?, k.decryption))
    }

    pub fn signing_key(&self, sid: u64) -> Option<(Dialect, [u8; 16])> {
        let s = self.sessions.get(&sid)?;
        Some((self.dialect?, s.keys.as_ref()?.signing))
    }

    /// Whether session `sid` has its keys and its client required signing (MS-SMB2
    /// 3.3.5.5.3 sets Session.SigningRequired from the client's SecurityMode).
    pub fn requires_signed_requests(&self, sid: u64) -> bool {
        self.sessions
            .get(&sid)
            .is_some_and(|s| s.signing_required && s.keys.is_some())
    }

    pub fn snapshot(&self, sid: u64, encrypted_request: bool) -> SecSnapshot {
        let mut snap = SecSnapshot {
            session_id: sid,
            dialect: self.dialect,
            ..Default::default()
        };
        if let Some(s) = self.sessions.get(&sid) {
            if let Some(k) = &s.keys {
                snap.signing_key = Some(k.signing);
                snap.signing_required = s.signing_required;
                if encrypted_request || s.encrypt_data {
                    if let Some(c) = self.cipher {
                        snap.encrypt = Some((c, k.encryption));
                    }
                }
            }
        }
        snap
    }

    pub fn session(&mut self, sid: u64) -> Result<&mut Session, u32> {
        match self.sessions.get_mut(&sid) {
            Some(s) if s.is_valid() => Ok(s),
            _ => Err(status::USER_SESSION_DELETED),
        }
    }

    pub fn tree(&mut self, sid: u64, tid: u32) -> Result<Tree, u32> {
        let s = self.session(sid)?;
        s.trees
            .get(&tid)
            .cloned()
            .ok_or(status::NETWORK_NAME_DELETED)
    }

    /// Close every open matching `pred` (logoff, tree disconnect, teardown). An unlink
    /// that must wait for other holders' breaks finishes on its own task.
    pub fn close_where(&mut self, srv: &Arc<Server>, pred: impl Fn(&Open) -> bool) {
        let ids: Vec<u64> = self
            .opens
            .iter()
            .filter(|(_, o)| pred(o))
            .map(|(k, _)| *k)
            .collect();
        for id in ids {
            if let Some(o) = self.opens.remove(&id) {
                let by = crate::leasing::requester(self, &o);
                let _ = crate::handlers::close::release(srv, o, &by);
            }
        }
    }

    pub fn teardown(&mut self, srv: &Arc<Server>) {
        self.close_where(srv, |_| true);
        srv.hub.owner_gone(self.owner());
    }
}
