//! The daemon side of the control socket: one thread per client connection.

use super::paths;
use super::protocol::{Request, Response, VERSION};
use leasefs_leases::{
    Access, BreakNotice, BreakOutcome, BreakSink, ClientId, FileId, LeaseKey, LeaseRequest,
    LeaseState, LeaseVersion, LockManager, OpenOutcome, OpenRequest, OwnerId, Protocol,
};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Clone, Debug)]
pub struct ControlConfig {
    pub socket: PathBuf,
    pub backing: PathBuf,
    pub mount: Option<PathBuf>,
}

/// A running control socket; stops and removes the socket file when dropped.
pub struct ControlServer {
    socket: PathBuf,
    /// A second handle on the listening socket, shut down to wake the blocked accept.
    listener: UnixListener,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Open client connections, shut down when the server stops so their sessions end
    /// (and held leases are released) as they would if the daemon exited.
    clients: Clients,
}

type Clients = Arc<Mutex<Vec<(u64, UnixStream)>>>;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another leasefs daemon is already serving the control socket {0}")]
    InUse(PathBuf),
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ControlServer {
    pub fn start(cfg: ControlConfig, mgr: Arc<LockManager>) -> Result<Self, ControlError> {
        let sock_path = cfg.socket.clone();
        let io = |source| ControlError::Io {
            path: sock_path.clone(),
            source,
        };
        if let Some(dir) = cfg.socket.parent() {
            // A directory we create is private; an existing one (the user may point
            // --state-dir anywhere) keeps its mode: the socket's own 0600 mode and the
            // peer-credential check guard access.
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io)?;
            }
        }
        if cfg.socket.exists() {
            if UnixStream::connect(&cfg.socket).is_ok() {
                return Err(ControlError::InUse(cfg.socket.clone()));
            }
            std::fs::remove_file(&cfg.socket).map_err(io)?;
        }
        let listener = UnixListener::bind(&cfg.socket).map_err(io)?;
        std::fs::set_permissions(&cfg.socket, std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let cfg = Arc::new(cfg);
        let socket = cfg.socket.clone();
        let listener2 = listener.try_clone().map_err(io)?;
        let clients: Clients = Arc::default();
        let thread = std::thread::Builder::new()
            .name("leasefs-control".into())
            .spawn({
                let clients = clients.clone();
                move || accept_loop(listener, cfg, mgr, stop2, clients)
            })
            .map_err(io)?;
        Ok(Self {
            socket,
            listener: listener2,
            stop,
            thread: Some(thread),
            clients,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Linux wakes a blocked accept() when its listening socket is shut down.
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.listener),
            nix::sys::socket::Shutdown::Both,
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Ok(mut clients) = self.clients.lock() {
            for (_, c) in clients.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn accept_loop(
    listener: UnixListener,
    cfg: Arc<ControlConfig>,
    mgr: Arc<LockManager>,
    stop: Arc<AtomicBool>,
    clients: Clients,
) {
    static CONN: AtomicU64 = AtomicU64::new(1);
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(_) => continue,
        };
        let (cfg, mgr, clients) = (cfg.clone(), mgr.clone(), clients.clone());
        let n = CONN.fetch_add(1, Ordering::Relaxed);
        if let (Ok(mut list), Ok(c)) = (clients.lock(), stream.try_clone()) {
            list.push((n, c));
        }
        let _ = std::thread::Builder::new()
            .name(format!("leasefs-control-{n}"))
            .spawn(move || {
                if let Err(e) = serve_client(stream, &cfg, &mgr, n) {
                    tracing::debug!(error = %e, "control client ended");
                }
                if let Ok(mut list) = clients.lock() {
                    list.retain(|(i, _)| *i != n);
                }
            });
    }
}

/// Writes one response line; shared by the reader and the break-forwarding thread.
#[derive(Clone)]
struct Writer(Arc<Mutex<UnixStream>>);

impl Writer {
    fn send(&self, r: &Response) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut s = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("writer poisoned"))?;
        s.write_all(&line)
    }
}

fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(cred.uid())
}

fn serve_client(
    stream: UnixStream,
    cfg: &ControlConfig,
    mgr: &Arc<LockManager>,
    conn: u64,
) -> std::io::Result<()> {
    let out = Writer(Arc::new(Mutex::new(stream.try_clone()?)));
    // Root only: the socket grants control over every client's leases.
    if peer_uid(&stream)? != 0 {
        out.send(&Response::Error {
            message: "the leasefs control socket is root-only".into(),
        })?;
        return Ok(());
    }
    let mut lines = BufReader::new(stream).lines();
    let first = match lines.next() {
        Some(l) => l?,
        None => return Ok(()),
    };
    match serde_json::from_str::<Request>(&first) {
        Ok(Request::Hello { version }) if version == VERSION => {
            out.send(&Response::Hello {
                version: VERSION,
                server_epoch: mgr.start_info().epoch,
            })?;
        }
        Ok(Request::Hello { version }) => {
            out.send(&Response::Error {
                message: format!(
                    "protocol version {version} not supported (server speaks {VERSION})"
                ),
            })?;
            return Ok(());
        }
        _ => {
            out.send(&Response::Error {
                message: "expected a hello request first".into(),
            })?;
            return Ok(());
        }
    }
    while let Some(line) = lines.next() {
        let line = line?;
        let req = match serde_json::from_str::<Request>(&line) {
            Ok(r) => r,
            Err(e) => {
                out.send(&Response::Error {
                    message: format!("bad request: {e}"),
                })?;
                continue;
            }
        };
        match req {
            Request::Hello { .. } => out.send(&Response::Error {
                message: "already said hello".into(),
            })?,
            Request::Locks { file } => out.send(&locks_response(cfg, mgr, file.as_deref()))?,
            Request::Break { path, to } => {
                out.send(&break_response(cfg, mgr, &path, to.as_deref()))?
            }
            Request::Ack { .. } => out.send(&Response::Error {
                message: "no lease is held on this connection".into(),
            })?,
            Request::Hold { path, state } => {
                return hold_session(cfg, mgr, conn, &path, &state, out, &mut lines)
            }
            Request::Watch => return watch_session(cfg, mgr, out, &mut lines),
        }
    }
    Ok(())
}

fn resolve(cfg: &ControlConfig, path: &Path) -> Result<(PathBuf, FileId, bool), String> {
    let backing = paths::to_backing(path, &cfg.backing, cfg.mount.as_deref())?;
    let md = std::fs::symlink_metadata(&backing).map_err(|e| format!("{}: {e}", path.display()))?;
    let id = paths::file_id(&backing).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((backing, id, md.is_dir()))
}

fn locks_response(cfg: &ControlConfig, mgr: &LockManager, file: Option<&Path>) -> Response {
    let only = match file.map(|f| resolve(cfg, f)) {
        Some(Err(message)) => return Response::Error { message },
        Some(Ok((_, id, _))) => Some(id),
        None => None,
    };
    let view = mgr.view();
    let keep = |f: &FileId| only.is_none_or(|o| o == *f);
    let ids: HashSet<FileId> = view
        .opens
        .iter()
        .map(|o| o.file)
        .chain(view.leases.iter().map(|l| l.file))
        .chain(view.locks.iter().map(|l| l.file))
        .filter(|f| keep(f))
        .collect();
    let names = paths::names_for(&cfg.backing, &ids, 2_000_000);
    let shown = |f: &FileId| -> String {
        display_path(cfg, names.get(f)).unwrap_or_else(|| format!("<inode {f}>"))
    };
    let opens: Vec<_> = view
        .opens
        .iter()
        .filter(|o| keep(&o.file))
        .map(|o| {
            serde_json::json!({
                "path": shown(&o.file), "file": o.file.to_string(), "open": o.id.0,
                "protocol": o.owner.protocol.to_string(), "client": o.owner.client.to_string(), "session": o.owner.session,
                "read": o.read, "write": o.write, "delete": o.delete, "share": share_text(o.share),
                "stat_only": o.stat_only, "lease_key": o.lease_key,
            })
        })
        .collect();
    let leases: Vec<_> = view
        .leases
        .iter()
        .filter(|l| keep(&l.file))
        .map(|l| {
            serde_json::json!({
                "path": shown(&l.file), "file": l.file.to_string(),
                "protocol": l.owner.protocol.to_string(), "client": l.client, "session": l.owner.session, "key": l.key,
                "state": state_text(l.state), "epoch": l.epoch, "oplock": l.oplock, "directory": l.is_dir,
                "breaking": l.breaking, "break_to": l.break_to.map(state_text),
                "revoke_in_ms": l.deadline_in.map(|d| d.as_millis() as u64), "opens": l.opens,
            })
        })
        .collect();
    let locks: Vec<_> = view
        .locks
        .iter()
        .filter(|l| keep(&l.file))
        .map(|l| {
            let (protocol, owner) = match l.owner {
                leasefs_leases::LockOwner::Posix { owner, lock_owner } => (owner.protocol.to_string(), format!("{owner}#{lock_owner:x}")),
                leasefs_leases::LockOwner::Open(o) => ("smb".to_string(), o.to_string()),
            };
            serde_json::json!({
                "path": shown(&l.file), "file": l.file.to_string(), "protocol": protocol, "owner": owner,
                "start": l.range.start, "end": if l.range.empty { None } else { Some(l.range.last) }, "empty": l.range.empty,
                "type": match l.kind { leasefs_leases::LockKind::Shared => "shared", leasefs_leases::LockKind::Exclusive => "exclusive" },
                "waiting": l.waiting,
            })
        })
        .collect();
    Response::Locks {
        snapshot: serde_json::json!({ "opens": opens, "leases": leases, "locks": locks, "in_grace": view.in_grace }),
    }
}

pub(crate) fn state_text(s: LeaseState) -> String {
    if s.is_none() {
        "none".into()
    } else {
        s.to_string()
    }
}

fn share_text(share: u8) -> String {
    let mut t = String::new();
    for (bit, c) in [(1u8, 'r'), (2, 'w'), (4, 'd')] {
        t.push(if share & bit != 0 { c } else { '-' });
    }
    t
}

fn parse_state(text: Option<&str>) -> Result<LeaseState, String> {
    match text {
        None => Ok(LeaseState::NONE),
        Some(t) => LeaseState::parse(t)
            .ok_or_else(|| format!("`{t}` is not a lease state (use R, RH, RW, RWH or none)")),
    }
}

fn break_response(
    cfg: &ControlConfig,
    mgr: &LockManager,
    path: &Path,
    to: Option<&str>,
) -> Response {
    let to = match parse_state(to) {
        Ok(t) => t,
        Err(message) => return Response::Error { message },
    };
    let (_, id, _) = match resolve(cfg, path) {
        Ok(r) => r,
        Err(message) => return Response::Error { message },
    };
    let outcome = match mgr.break_file(id, to) {
        BreakOutcome::Proceed => {
            "nothing to wait for: every lease was already within the target or needed no ack"
                .to_string()
        }
        BreakOutcome::Wait(w) => format!("{:?}", w.wait()).to_lowercase(),
    };
    Response::BreakDone { outcome }
}

/// Forwards break notices for the held lease to the connection.
struct ChannelSink(Mutex<mpsc::Sender<BreakNotice>>);

impl BreakSink for ChannelSink {
    fn deliver(&self, notice: BreakNotice) {
        if let Ok(tx) = self.0.lock() {
            let _ = tx.send(notice);
        }
    }
}

fn unique_16(conn: u64, salt: u8) -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(nanos as u64).to_be_bytes());
    b[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    b[12..15].copy_from_slice(&conn.to_be_bytes()[5..]);
    b[15] = salt;
    b
}

fn hold_session(
    cfg: &ControlConfig,
    mgr: &Arc<LockManager>,
    conn: u64,
    path: &Path,
    state: &str,
    out: Writer,
    lines: &mut std::io::Lines<BufReader<UnixStream>>,
) -> std::io::Result<()> {
    let wanted = match parse_state(Some(state)) {
        Ok(s) if !s.is_none() => s,
        Ok(_) => {
            return out.send(&Response::Error {
                message: "hold needs a state other than none".into(),
            })
        }
        Err(message) => return out.send(&Response::Error { message }),
    };
    let (_, file, is_dir) = match resolve(cfg, path) {
        Ok(r) => r,
        Err(message) => return out.send(&Response::Error { message }),
    };
    let client = ClientId(unique_16(conn, 0xc1));
    let key = LeaseKey(unique_16(conn, 0x4b));
    let owner = OwnerId::new(Protocol::Control, client, conn);
    let (tx, rx) = mpsc::channel();
    mgr.register_sink(owner, Arc::new(ChannelSink(Mutex::new(tx))));
    let req = OpenRequest {
        is_dir,
        lease: Some(LeaseRequest {
            client,
            key,
            state: wanted,
            version: LeaseVersion::V2 { parent: None },
            oplock: false,
        }),
        ..OpenRequest::new(file, owner, Access::READ)
    };
    let grant = loop {
        match mgr.open(&req) {
            Ok(OpenOutcome::Opened(g)) => break g,
            Ok(OpenOutcome::Wait(w)) => {
                w.wait();
            }
            Err(e) => {
                mgr.owner_gone(owner);
                return out.send(&Response::Error {
                    message: format!("{}: {e}", path.display()),
                });
            }
        }
    };
    let lease = grant.lease.unwrap_or(leasefs_leases::LeaseGrant {
        state: LeaseState::NONE,
        epoch: 0,
        breaking: false,
    });
    out.send(&Response::Held {
        path: path.to_path_buf(),
        state: state_text(lease.state),
        epoch: lease.epoch,
        key: key.to_string(),
    })?;
    let forward = {
        let out = out.clone();
        std::thread::spawn(move || {
            for n in rx {
                let r = Response::Break {
                    from: state_text(n.from),
                    to: state_text(n.to),
                    epoch: n.epoch,
                    ack_required: n.ack_required,
                    reason: n.reason.to_string(),
                };
                if out.send(&r).is_err() {
                    return;
                }
            }
        })
    };
    let result = (|| {
        for line in lines {
            let line = line?;
            match serde_json::from_str::<Request>(&line) {
                Ok(Request::Ack { state }) => {
                    let r = match parse_state(Some(&state)) {
                        Ok(s) => match mgr.ack_break(client, key, s) {
                            Ok(now) => Response::Acked {
                                state: state_text(now),
                            },
                            Err(e) => Response::Error {
                                message: format!("ack refused: {e}"),
                            },
                        },
                        Err(message) => Response::Error { message },
                    };
                    out.send(&r)?;
                }
                Ok(_) => out.send(&Response::Error {
                    message: "only ack is accepted while holding a lease".into(),
                })?,
                Err(e) => out.send(&Response::Error {
                    message: format!("bad request: {e}"),
                })?,
            }
        }
        Ok(())
    })();
    // The client hung up (or Ctrl-C): release at once, as for any disconnect.
    mgr.owner_gone(owner);
    drop(forward);
    result
}

/// Forwards manager events to a watching connection.
struct EventChannel(Mutex<mpsc::Sender<leasefs_leases::Event>>);

impl leasefs_leases::EventSink for EventChannel {
    fn event(&self, e: &leasefs_leases::Event) {
        if let Ok(tx) = self.0.lock() {
            let _ = tx.send(e.clone());
        }
    }
}

fn watch_session(
    cfg: &ControlConfig,
    mgr: &Arc<LockManager>,
    out: Writer,
    lines: &mut std::io::Lines<BufReader<UnixStream>>,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let sub = mgr.subscribe(Arc::new(EventChannel(Mutex::new(tx))));
    out.send(&Response::Watching {
        server_epoch: mgr.start_info().epoch,
    })?;
    let gone = Arc::new(AtomicBool::new(false));
    let forward = {
        let (out, cfg, gone) = (out.clone(), cfg.clone(), gone.clone());
        std::thread::spawn(move || {
            let mut names: std::collections::HashMap<FileId, String> =
                std::collections::HashMap::new();
            while !gone.load(Ordering::SeqCst) {
                let Ok(e) = rx.recv_timeout(std::time::Duration::from_millis(200)) else {
                    continue;
                };
                let mut v = serde_json::to_value(&e).unwrap_or_default();
                if let Some(f) = e.file {
                    let name = names.entry(f).or_insert_with(|| {
                        let found = paths::names_for(&cfg.backing, &HashSet::from([f]), 2_000_000);
                        display_path(&cfg, found.get(&f)).unwrap_or_else(|| format!("<inode {f}>"))
                    });
                    v["path"] = serde_json::Value::String(name.clone());
                }
                if out.send(&Response::Event { event: v }).is_err() {
                    return;
                }
            }
        })
    };
    // The client only listens; its hang-up ends the watch.
    for line in lines.by_ref() {
        if line.is_err() {
            break;
        }
    }
    mgr.unsubscribe(sub);
    gone.store(true, Ordering::SeqCst);
    let _ = forward.join();
    Ok(())
}

/// A backing path as the user knows it: under the mount when there is one.
fn display_path(cfg: &ControlConfig, p: Option<&PathBuf>) -> Option<String> {
    let p = p?;
    Some(match (&cfg.mount, p.strip_prefix(&cfg.backing)) {
        (Some(m), Ok(rest)) => m.join(rest).display().to_string(),
        _ => p.display().to_string(),
    })
}
