//! What every daemon (`leasefs serve`, `leasefs mount`) runs beside its front ends: the
//! lock manager over the state directory, the control socket, and optional metrics.

use crate::control::{socket_path, ControlConfig, ControlServer};
use crate::metrics::{MetricsServer, MetricsSource};
use anyhow::Context;
use leasefs_leases::{LockManager, ManagerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Flags shared by the daemons.
#[derive(clap::Args, Clone, Debug)]
pub struct DaemonArgs {
    /// Directory for the lock store (sled) and the root-only control socket.
    #[arg(long, default_value = crate::control::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Keep lock state in memory only: nothing is reclaimable after a crash.
    #[arg(long)]
    pub memory_store: bool,
    /// Seconds a lease holder has to acknowledge a break before it is revoked.
    #[arg(long, default_value_t = 35.0)]
    pub break_timeout: f64,
    /// Serve Prometheus metrics on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
}

impl DaemonArgs {
    pub fn break_timeout(&self) -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(self.break_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| {
                format!(
                    "--break-timeout {}: not a positive number of seconds",
                    self.break_timeout
                )
            })
    }

    /// Opens the lock manager on the state directory (or in memory).
    pub fn open_manager(&self) -> anyhow::Result<Arc<LockManager>> {
        let state_dir = (!self.memory_store).then(|| self.state_dir.join("store"));
        LockManager::open_store(ManagerConfig {
            state_dir,
            break_timeout: self.break_timeout()?,
            ..Default::default()
        })
        .with_context(|| format!("opening the lock store in {}", self.state_dir.display()))
    }
}

/// The control socket and metrics server of a running daemon; stopped on drop.
pub struct DaemonServices {
    _control: ControlServer,
    metrics: Option<MetricsServer>,
}

impl DaemonServices {
    pub fn start(
        args: &DaemonArgs,
        mgr: &Arc<LockManager>,
        backing: &Path,
        mount: Option<&Path>,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> anyhow::Result<Self> {
        let backing = backing
            .canonicalize()
            .with_context(|| format!("backing directory {}", backing.display()))?;
        let mount = match mount {
            Some(m) => Some(
                m.canonicalize()
                    .with_context(|| format!("mount point {}", m.display()))?,
            ),
            None => None,
        };
        let control = ControlServer::start(
            ControlConfig {
                socket: socket_path(&args.state_dir),
                backing,
                mount,
            },
            mgr.clone(),
        )?;
        let metrics = match args.metrics_listen {
            Some(addr) => Some(
                MetricsServer::start(addr, mgr.clone(), sources)
                    .with_context(|| format!("--metrics-listen {addr}"))?,
            ),
            None => None,
        };
        if let Some(m) = &metrics {
            tracing::info!("metrics on http://{}/metrics", m.addr());
        }
        Ok(Self {
            _control: control,
            metrics,
        })
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr())
    }
}
