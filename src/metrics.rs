//! `--metrics-listen ADDR:PORT`: Prometheus text exposition of the lock manager (and of
//! any front end that adds a [`MetricsSource`]).

use leasefs_leases::{BreakReason, Event, EventKind, EventSink, LockManager};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Front ends add their own lines (SMB connections and sessions, ...).
pub trait MetricsSource: Send + Sync {
    fn render(&self, out: &mut String);
}

/// Upper bounds (seconds) of the ack-latency histogram buckets; the last reaches the
/// default break deadline.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 35.0];

#[derive(Default)]
struct Counters {
    breaks_sent: BTreeMap<String, u64>,
    acks: u64,
    revokes: u64,
    releases: u64,
    lock_waits: u64,
    ack_latency_buckets: [u64; LATENCY_BUCKETS.len()],
    ack_latency_sum: f64,
}

/// Counts events as they happen.
struct Counting(Mutex<Counters>);

impl EventSink for Counting {
    fn event(&self, e: &Event) {
        let Ok(mut c) = self.0.lock() else { return };
        match &e.kind {
            EventKind::BreakSent { reason, .. } => {
                *c.breaks_sent.entry(reason_label(*reason)).or_default() += 1
            }
            EventKind::Ack { latency, .. } => {
                c.acks += 1;
                let s = latency.as_secs_f64();
                c.ack_latency_sum += s;
                for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                    if s <= *b {
                        c.ack_latency_buckets[i] += 1;
                    }
                }
            }
            EventKind::Revoke { .. } => c.revokes += 1,
            EventKind::Release { .. } => c.releases += 1,
            EventKind::LockWait { .. } => c.lock_waits += 1,
            _ => {}
        }
    }
}

fn reason_label(r: BreakReason) -> String {
    r.to_string()
}

pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    mgr: Arc<LockManager>,
    subscription: u64,
}

impl MetricsServer {
    pub fn start(
        addr: SocketAddr,
        mgr: Arc<LockManager>,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counting(Mutex::new(Counters::default())));
        let subscription = mgr.subscribe(counters.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (mgr, stop) = (mgr.clone(), stop.clone());
            std::thread::Builder::new()
                .name("leasefs-metrics".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(conn) = conn else { continue };
                        let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                        let _ = answer(conn, &mgr, &counters, &sources);
                    }
                })?
        };
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
            mgr,
            subscription,
        })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.mgr.unsubscribe(self.subscription);
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(
    conn: TcpStream,
    mgr: &LockManager,
    counters: &Counting,
    sources: &[Arc<dyn MetricsSource>],
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Drain the headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut conn = conn;
    let path = request.split_whitespace().nth(1).unwrap_or("");
    if !request.starts_with("GET ") || (path != "/metrics" && path != "/") {
        return conn.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    let body = render(mgr, counters, sources);
    write!(
        conn,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn render(mgr: &LockManager, counters: &Counting, sources: &[Arc<dyn MetricsSource>]) -> String {
    let view = mgr.view();
    let mut o = String::new();
    let mut by_state: BTreeMap<String, u64> = ["none", "R", "RH", "RW", "RWH"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    let mut breaking = 0;
    for l in &view.leases {
        let name = if l.state.is_none() {
            "none".to_string()
        } else {
            l.state.to_string()
        };
        *by_state.entry(name).or_default() += 1;
        breaking += l.breaking as u64;
    }
    let _ = writeln!(
        o,
        "# HELP leasefs_leases Leases held, by state.\n# TYPE leasefs_leases gauge"
    );
    for (s, n) in &by_state {
        let _ = writeln!(o, "leasefs_leases{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(o, "# HELP leasefs_leases_breaking Leases with a break in flight.\n# TYPE leasefs_leases_breaking gauge\nleasefs_leases_breaking {breaking}");
    let mut opens: BTreeMap<String, u64> = BTreeMap::new();
    for op in &view.opens {
        *opens.entry(op.owner.protocol.to_string()).or_default() += 1;
    }
    let _ = writeln!(
        o,
        "# HELP leasefs_opens Open handles, by protocol.\n# TYPE leasefs_opens gauge"
    );
    for (p, n) in &opens {
        let _ = writeln!(o, "leasefs_opens{{protocol=\"{p}\"}} {n}");
    }
    let _ = writeln!(o, "# HELP leasefs_break_waiters Operations (local opens, unlinks, SMB creates) waiting for a break.\n# TYPE leasefs_break_waiters gauge\nleasefs_break_waiters {}", view.break_waiters);
    let held = view.locks.iter().filter(|l| !l.waiting).count();
    let waiting = view.locks.len() - held;
    let _ = writeln!(o, "# HELP leasefs_byte_range_locks Byte-range locks held.\n# TYPE leasefs_byte_range_locks gauge\nleasefs_byte_range_locks {held}");
    let _ = writeln!(o, "# HELP leasefs_byte_range_lock_waiters Lock requests queued.\n# TYPE leasefs_byte_range_lock_waiters gauge\nleasefs_byte_range_lock_waiters {waiting}");
    if let Ok(c) = counters.0.lock() {
        let _ = writeln!(o, "# HELP leasefs_breaks_sent_total Break notifications sent, by reason.\n# TYPE leasefs_breaks_sent_total counter");
        for (r, n) in &c.breaks_sent {
            let _ = writeln!(o, "leasefs_breaks_sent_total{{reason=\"{r}\"}} {n}");
        }
        let _ = writeln!(o, "# HELP leasefs_breaks_acked_total Breaks acknowledged.\n# TYPE leasefs_breaks_acked_total counter\nleasefs_breaks_acked_total {}", c.acks);
        let _ = writeln!(o, "# HELP leasefs_breaks_revoked_total Leases revoked at their break deadline.\n# TYPE leasefs_breaks_revoked_total counter\nleasefs_breaks_revoked_total {}", c.revokes);
        let _ = writeln!(o, "# HELP leasefs_leases_released_total Leases released with their last open or a disconnect.\n# TYPE leasefs_leases_released_total counter\nleasefs_leases_released_total {}", c.releases);
        let _ = writeln!(o, "# HELP leasefs_lock_waits_total Byte-range lock requests that had to queue.\n# TYPE leasefs_lock_waits_total counter\nleasefs_lock_waits_total {}", c.lock_waits);
        let _ = writeln!(o, "# HELP leasefs_ack_latency_seconds Time from break sent to ack.\n# TYPE leasefs_ack_latency_seconds histogram");
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "leasefs_ack_latency_seconds_bucket{{le=\"{b}\"}} {}",
                c.ack_latency_buckets[i]
            );
        }
        let _ = writeln!(
            o,
            "leasefs_ack_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            c.acks
        );
        let _ = writeln!(o, "leasefs_ack_latency_seconds_sum {}", c.ack_latency_sum);
        let _ = writeln!(o, "leasefs_ack_latency_seconds_count {}", c.acks);
    }
    for s in sources {
        s.render(&mut o);
    }
    o
}

/// SMB connection and session counts of a running server.
pub struct SmbMetrics(pub Arc<leasefs_smb::server::ServerStats>);

impl MetricsSource for SmbMetrics {
    fn render(&self, o: &mut String) {
        let g = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let s = &self.0;
        let _ = writeln!(o, "# HELP leasefs_smb_connections SMB connections open now.\n# TYPE leasefs_smb_connections gauge\nleasefs_smb_connections {}", g(&s.connections));
        let _ = writeln!(o, "# HELP leasefs_smb_connections_total SMB connections accepted.\n# TYPE leasefs_smb_connections_total counter\nleasefs_smb_connections_total {}", g(&s.connections_total));
        let _ = writeln!(o, "# HELP leasefs_smb_sessions SMB sessions established and not yet ended.\n# TYPE leasefs_smb_sessions gauge\nleasefs_smb_sessions {}", g(&s.sessions));
        let _ = writeln!(o, "# HELP leasefs_smb_sessions_total SMB sessions established.\n# TYPE leasefs_smb_sessions_total counter\nleasefs_smb_sessions_total {}", g(&s.sessions_total));
    }
}
