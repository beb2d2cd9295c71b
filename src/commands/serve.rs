//! `leasefs serve` (issue 4): serve a directory over SMB2/3 and, with `--mount`, through a
//! local FUSE mount too, both on one lock manager; runs until SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Directory whose contents are served.
    #[arg(long)]
    pub backing: PathBuf,
    /// Also mount the directory here through FUSE, sharing the lock manager.
    #[arg(long)]
    pub mount: Option<PathBuf>,
    /// Address to listen on for SMB. The default port is 4445 rather than 445 so no
    /// privileges are needed; clients then need `-p 4445`. Port 0 picks a free port
    /// (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:4445")]
    pub smb_listen: SocketAddr,
    /// Share name clients connect to (\\host\NAME).
    #[arg(long, default_value = "share")]
    pub share: String,
    /// An account, NAME:PASSWORD; repeat for more.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub users: Vec<String>,
    /// Allow anonymous and guest sessions.
    #[arg(long)]
    pub guest: bool,
    /// Refuse every change through SMB.
    #[arg(long)]
    pub read_only: bool,
    /// Match SMB names exactly, as the backing filesystem does. By default a name that
    /// exists only in another case opens the existing file, as on Windows; that costs a
    /// directory scan whenever the exact name does not exist (every create).
    #[arg(long)]
    pub case_sensitive: bool,
    #[command(flatten)]
    pub daemon: leasefs::daemon::DaemonArgs,
    /// Seconds the kernel may cache names and attributes on the --mount. Changes made
    /// through SMB invalidate them right after the SMB reply; changes made directly in the backing
    /// directory show after this long.
    #[arg(long, default_value_t = 30.0)]
    pub attr_timeout: f64,
    /// Seconds of silence after which an SMB connection is closed.
    #[arg(long, default_value_t = 900.0)]
    pub idle_timeout: f64,
}

fn secs(what: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("--{what} {v}: not a duration"))
}

fn credentials(args: &ServeArgs) -> anyhow::Result<leasefs_smb::auth::Credentials> {
    let mut users = HashMap::new();
    for u in &args.users {
        let Some((name, pass)) = u.split_once(':') else {
            bail!("--user {u:?}: expected NAME:PASSWORD");
        };
        if name.is_empty() {
            bail!("--user: empty user name");
        }
        users.insert(name.to_string(), pass.to_string());
    }
    if users.is_empty() && !args.guest {
        bail!("no --user given and --guest not set: nobody could connect");
    }
    Ok(leasefs_smb::auth::Credentials {
        users,
        allow_guest: args.guest,
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let creds = credentials(&args)?;
    let mgr = args.daemon.open_manager()?;
    // Before any thread exists, so every thread inherits the blocked mask and the
    // signal is taken here, synchronously.
    let signals = leasefs_fuse::ShutdownSignals::block().context("blocking SIGINT/SIGTERM")?;
    let mount = match &args.mount {
        Some(m) => {
            let mut cfg = leasefs_fuse::MountConfig::new(&args.backing, m);
            cfg.attr_timeout = secs("attr-timeout", args.attr_timeout)?;
            Some(leasefs_fuse::mount(cfg, mgr.clone())?)
        }
        None => None,
    };
    let mut cfg = leasefs_smb::ServerConfig::new(args.backing.clone(), creds);
    cfg.share_name = args.share.clone();
    cfg.read_only = args.read_only;
    cfg.case_sensitive = args.case_sensitive;
    cfg.idle_timeout = secs("idle-timeout", args.idle_timeout)?;
    let server = leasefs_smb::Server::new(cfg, mgr.clone())
        .with_context(|| format!("opening {}", args.backing.display()))?;
    let _invalidation = match mount.as_ref().and_then(|h| h.invalidator()) {
        Some(inval) => Some(leasefs::invalidation::spawn(
            server.events.subscribe(),
            inval,
            args.backing.clone(),
        )?),
        None => None,
    };
    let smb_stats = server.stats.clone();
    let running = server
        .start(args.smb_listen)
        .with_context(|| format!("listening on {}", args.smb_listen))?;
    let services = leasefs::daemon::DaemonServices::start(
        &args.daemon,
        &mgr,
        &args.backing,
        mount.as_ref().map(|h| h.mountpoint()),
        vec![std::sync::Arc::new(leasefs::metrics::SmbMetrics(smb_stats))],
    )?;
    let local = running.local_addr();
    // Tests and scripts read this line to learn the port.
    println!("leasefs: smb listening on {local}");
    tracing::info!(
        "serving {} as \\\\{}\\{} on {local}",
        args.backing.display(),
        local.ip(),
        args.share
    );
    let sig = signals.wait().context("waiting for a signal")?;
    tracing::info!("signal {sig}: shutting down");
    drop(services);
    running.stop();
    let unmounted = mount.map(|h| h.unmount()).transpose();
    mgr.shutdown_clean()
        .context("writing the lock store's clean-shutdown marker")?;
    unmounted?;
    Ok(())
}
