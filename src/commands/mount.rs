//! `leasefs mount` (issue 3): serve the backing directory through a local FUSE mount in the
//! foreground until SIGINT/SIGTERM, then unmount cleanly.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub struct MountArgs {
    /// Directory whose contents are served.
    #[arg(long)]
    pub backing: PathBuf,
    /// Empty directory to mount on.
    #[arg(long)]
    pub mount: PathBuf,
    #[command(flatten)]
    pub daemon: leasefs::daemon::DaemonArgs,
    /// Let users other than the mounting one use the mount.
    #[arg(long)]
    pub allow_other: bool,
    /// Serve reads and writes from the daemon instead of kernel FUSE passthrough.
    #[arg(long)]
    pub no_passthrough: bool,
    /// Seconds the kernel may cache names and attributes. Changes made directly in the
    /// backing directory (not through leasefs) are seen through the mount after this long.
    #[arg(long, default_value_t = 30.0)]
    pub attr_timeout: f64,
    /// Threads reading FUSE requests (a request waiting for a lease break or a lock never
    /// occupies one).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
}

fn secs(what: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("--{what} {v}: not a duration"))
}

pub fn run(args: MountArgs) -> anyhow::Result<()> {
    // Before any thread exists (the manager's deadline thread, the session threads), so
    // every thread inherits the blocked mask and none is killed by the default action.
    let signals = leasefs_fuse::ShutdownSignals::block().context("blocking SIGINT/SIGTERM")?;
    let mgr = args.daemon.open_manager()?;
    let mut cfg = leasefs_fuse::MountConfig::new(&args.backing, &args.mount);
    cfg.allow_other = args.allow_other;
    cfg.passthrough = !args.no_passthrough;
    cfg.attr_timeout = secs("attr-timeout", args.attr_timeout)?;
    cfg.threads = args.threads;
    let handle = leasefs_fuse::mount(cfg, mgr.clone())?;
    let services = leasefs::daemon::DaemonServices::start(
        &args.daemon,
        &mgr,
        &args.backing,
        Some(handle.mountpoint()),
        vec![],
    )?;
    tracing::info!(
        "serving {} on {}; SIGINT or SIGTERM unmounts",
        args.backing.display(),
        handle.mountpoint().display()
    );
    let sig = signals.wait().context("waiting for a signal")?;
    tracing::info!("signal {sig}: unmounting");
    drop(services);
    let unmounted = handle.unmount();
    mgr.shutdown_clean()
        .context("writing the lock store's clean-shutdown marker")?;
    Ok(unmounted?)
}
