//! Server-wide state: configuration, the share root, the lock hub, per-file state that
//! outlives a single open (delete-pending), and the accept loop.

use crate::auth::Credentials;
use crate::locking::LockHub;
use crate::vfs::Root;
use leasefs_leases::FileId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct ServerConfig {
    pub backing: PathBuf,
    pub share_name: String,
    pub read_only: bool,
    /// Match names exactly as the backing filesystem does, instead of resolving a name
    /// that exists only in another case to its on-disk spelling (vfs/case_fold.rs).
    pub case_sensitive: bool,
    pub credentials: Arc<Credentials>,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Largest NetBIOS frame accepted; larger ones close the connection.
    pub max_frame: usize,
    /// Async operations (blocking locks, change notifications) pending per connection.
    pub max_pending: usize,
}

impl ServerConfig {
    pub fn new(backing: PathBuf, credentials: Credentials) -> Self {
        ServerConfig {
            backing,
            share_name: "share".into(),
            read_only: false,
            case_sensitive: false,
            credentials: Arc::new(credentials),
            idle_timeout: Duration::from_secs(15 * 60),
            max_frame: crate::MAX_IO as usize + 64 * 1024,
            max_pending: 256,
        }
    }
}

#[derive(Default)]
pub struct FileState {
    pub delete_pending: bool,
    pub opens: usize,
    /// SMB handles of this file: (handle id, ShareAccess, path parts when opened,
    /// granted access). Used where MS-FSA checks other opens directly (rename,
    /// 2.1.5.14.11).
    pub handles: Vec<(u64, u8, Vec<String>, u32)>,
}

/// Live counts for metrics (`leasefs serve --metrics-listen`).
#[derive(Debug, Default)]
pub struct ServerStats {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub sessions: AtomicU64,
    pub sessions_total: AtomicU64,
}

/// Held by an established session; the live session count drops with it, however the
/// session ends (logoff, expiry, connection loss).
#[derive(Debug)]
pub struct SessionCount(Arc<ServerStats>);

impl SessionCount {
    pub fn new(stats: &Arc<ServerStats>) -> Self {
        stats.sessions.fetch_add(1, Ordering::Relaxed);
        stats.sessions_total.fetch_add(1, Ordering::Relaxed);
        SessionCount(Arc::clone(stats))
    }
}

impl Drop for SessionCount {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Server {
    pub stats: Arc<ServerStats>,
    pub cfg: ServerConfig,
    pub root: Root,
    pub hub: Arc<LockHub>,
    pub guid: [u8; 16],
    pub files: Mutex<HashMap<FileId, FileState>>,
    next_session: AtomicU64,
    next_conn: AtomicU64,
    pub next_handle: AtomicU64,
    pub events: tokio::sync::broadcast::Sender<crate::notify::Change>,
    /// Each client's connections, for routing lease breaks (`leasing::clients`).
    pub clients: Arc<crate::leasing::clients::ClientConns>,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b[..]);
    b
}

impl Server {
    /// A server over `cfg.backing` whose opens and locks live in `mgr` (shared with the
    /// FUSE mount when both run in one process).
    pub fn new(
        cfg: ServerConfig,
        mgr: Arc<leasefs_leases::LockManager>,
    ) -> std::io::Result<Arc<Server>> {
        let root = Root::open(&cfg.backing)?;
        let (events, _) = tokio::sync::broadcast::channel(1024);
        Ok(Arc::new(Server {
            stats: Arc::default(),
            cfg,
            root,
            hub: LockHub::new(mgr),
            guid: random_bytes(),
            files: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(
                u64::from_le_bytes(random_bytes::<8>()) & 0x0000_FFFF_FFFF_0000 | 1,
            ),
            next_conn: AtomicU64::new(1),
            next_handle: AtomicU64::new(1),
            events,
            clients: Arc::default(),
        }))
    }

    pub fn new_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub fn salt() -> [u8; 32] {
        random_bytes()
    }

    pub fn files(&self) -> std::sync::MutexGuard<'_, HashMap<FileId, FileState>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accept connections until the listener fails; each connection is its own task and
    /// a failure in one never affects the others.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
            let srv = Arc::clone(&self);
            let stats = Arc::clone(&self.stats);
            stats.connections.fetch_add(1, Ordering::Relaxed);
            stats.connections_total.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                tracing::debug!(conn = id, %peer, "connection opened");
                if let Err(e) = crate::conn::run(srv, stream, id).await {
                    tracing::debug!(conn = id, %peer, "connection closed: {e}");
                }
                stats.connections.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }

    pub async fn bind(self: Arc<Self>, addr: SocketAddr) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener).await
    }
}

/// A server running on its own multi-threaded runtime, for callers that are not async
/// (the `leasefs serve` binary, tests).
pub struct RunningServer {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting and drop every connection.
    pub fn stop(self) {
        self.task.abort();
        self.rt.shutdown_timeout(Duration::from_secs(2));
    }
}

impl Server {
    /// Bind `addr` and serve on a new runtime until `stop`.
    pub fn start(self: Arc<Self>, addr: SocketAddr) -> std::io::Result<RunningServer> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("leasefs-smb")
            .build()?;
        let listener = rt.block_on(TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let task = rt.spawn(self.serve(listener));
        Ok(RunningServer { rt, addr, task })
    }
}
