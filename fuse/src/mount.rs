//! Mounting: checks that give clear errors, the background session, and unmounting.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};

use crate::fs::{Fs, LeaseFs};
use crate::mediation::Mediator;

/// What to mount where, and how.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Directory whose contents are served.
    pub backing: PathBuf,
    /// Empty directory to mount on.
    pub mountpoint: PathBuf,
    /// Let users other than the mounting one use the mount (`allow_other`).
    pub allow_other: bool,
    /// Use kernel FUSE passthrough for reads and writes when the kernel offers it.
    pub passthrough: bool,
    /// How long the kernel may cache names and attributes. leasefs sees every change made
    /// through its front ends; changes made directly in the backing directory show up
    /// through the mount only after this long.
    pub attr_timeout: Duration,
    /// Session threads reading requests (waits never hold one of them).
    pub threads: usize,
    /// Detach a dead mount left at the mount point by a crashed daemon before mounting.
    pub clean_stale: bool,
}

impl MountConfig {
    pub fn new(backing: impl Into<PathBuf>, mountpoint: impl Into<PathBuf>) -> Self {
        Self {
            backing: backing.into(),
            mountpoint: mountpoint.into(),
            allow_other: false,
            passthrough: true,
            attr_timeout: Duration::from_secs(30),
            threads: 4,
            clean_stale: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(
        "/dev/fuse is missing: load the fuse module (modprobe fuse) or run where FUSE is available"
    )]
    NoFuseDevice,
    #[error("backing directory {0} does not exist")]
    BackingMissing(PathBuf),
    #[error("backing path {0} is not a directory")]
    BackingNotDir(PathBuf),
    #[error("mount point {0} does not exist")]
    MountPointMissing(PathBuf),
    #[error("mount point {0} is not a directory")]
    MountPointNotDir(PathBuf),
    #[error("mount point {0} is not empty")]
    MountPointNotEmpty(PathBuf),
    #[error("mount point {0} is a dead FUSE mount (its daemon is gone); clean it with `fusermount3 -u {0}` or `umount -l {0}`")]
    StaleMount(PathBuf),
    #[error("not permitted to mount on {path} (mounting FUSE needs root or a setuid fusermount3)")]
    NotPermitted {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> MountError {
    let what = what.into();
    move |source| MountError::Io { what, source }
}

/// A live mount. Dropping it unmounts.
pub struct MountHandle {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    /// Minor device number of the mount = the FUSE connection id under
    /// /sys/fs/fuse/connections, used to abort a connection that a busy lazy unmount
    /// would otherwise keep alive.
    conn: Option<u32>,
    fs: Arc<Fs>,
}

impl std::fmt::Debug for MountHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountHandle")
            .field("mountpoint", &self.mountpoint)
            .field("conn", &self.conn)
            .finish()
    }
}

fn is_stale(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTCONN)
}

fn check(cfg: &MountConfig) -> Result<(), MountError> {
    if !Path::new("/dev/fuse").exists() {
        return Err(MountError::NoFuseDevice);
    }
    match std::fs::metadata(&cfg.backing) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(MountError::BackingNotDir(cfg.backing.clone())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(MountError::BackingMissing(cfg.backing.clone()))
        }
        Err(e) => return Err(io_err(format!("backing {}", cfg.backing.display()))(e)),
    }
    let mp = &cfg.mountpoint;
    // Listing needs the filesystem's server: a dead FUSE mount answers ENOTCONN here even
    // when the kernel still has the root's attributes cached.
    let listed = match std::fs::metadata(mp) {
        Ok(m) if m.is_dir() => std::fs::read_dir(mp).map(|mut d| d.next().is_some()),
        Ok(_) => return Err(MountError::MountPointNotDir(mp.clone())),
        Err(e) => Err(e),
    };
    match listed {
        Ok(false) => {}
        Ok(true) => return Err(MountError::MountPointNotEmpty(mp.clone())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(MountError::MountPointMissing(mp.clone()))
        }
        Err(e) if is_stale(&e) => {
            if !cfg.clean_stale {
                return Err(MountError::StaleMount(mp.clone()));
            }
            tracing::warn!("detaching the dead FUSE mount at {}", mp.display());
            if let Err(e) = nix::mount::umount2(mp, nix::mount::MntFlags::MNT_DETACH) {
                tracing::debug!("umount2({}): {e}", mp.display());
                return Err(MountError::StaleMount(mp.clone()));
            }
            return check(cfg);
        }
        Err(e) => return Err(io_err(format!("mount point {}", mp.display()))(e)),
    }
    Ok(())
}

pub(crate) fn mount_with(cfg: MountConfig, mediator: Mediator) -> Result<MountHandle, MountError> {
    check(&cfg)?;
    let backing = cfg
        .backing
        .canonicalize()
        .map_err(io_err(format!("backing {}", cfg.backing.display())))?;
    let fs = Arc::new(
        Fs::new(&backing, mediator, cfg.passthrough, cfg.attr_timeout)
            .map_err(io_err(format!("opening {}", backing.display())))?,
    );
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(format!("leasefs:{}", backing.display())),
        MountOption::Subtype("leasefs".into()),
        // Permission checks by the kernel against the attributes we report, as for a
        // local filesystem; the daemon then acts with its own rights.
        MountOption::DefaultPermissions,
    ];
    config.acl = if cfg.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(cfg.threads.max(1));
    config.clone_fd = true;
    let session =
        Session::new(LeaseFs { fs: fs.clone() }, &cfg.mountpoint, &config).map_err(|e| match e
            .raw_os_error()
        {
            Some(libc::EPERM) | Some(libc::EACCES) => MountError::NotPermitted {
                path: cfg.mountpoint.clone(),
                source: e,
            },
            Some(libc::ENOENT) if !Path::new("/dev/fuse").exists() => MountError::NoFuseDevice,
            _ => MountError::Io {
                what: format!("mounting on {}", cfg.mountpoint.display()),
                source: e,
            },
        })?;
    let session = session
        .spawn()
        .map_err(io_err("starting the session threads"))?;
    let mountpoint = cfg
        .mountpoint
        .canonicalize()
        .unwrap_or(cfg.mountpoint.clone());
    let conn = std::fs::metadata(&mountpoint).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        libc::minor(m.dev())
    });
    tracing::info!(
        "mounted {} on {} (passthrough {})",
        backing.display(),
        mountpoint.display(),
        if fs.passthrough.enabled() {
            "on"
        } else {
            "off"
        }
    );
    Ok(MountHandle {
        session: Some(session),
        mountpoint,
        conn,
        fs,
    })
}

impl MountHandle {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Whether reads and writes currently go through kernel passthrough.
    pub fn passthrough_active(&self) -> bool {
        self.fs.passthrough.enabled()
    }

    /// For invalidating the kernel's caches when another front end changes a file.
    pub fn invalidator(&self) -> Option<crate::Invalidator> {
        self.session.as_ref().map(|s| crate::Invalidator {
            fs: self.fs.clone(),
            notifier: s.notifier(),
        })
    }

    /// Unmounts and waits for the session threads to end. A mount still in use is
    /// detached lazily and its connection aborted, so this never hangs.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let r = self.unmount_session(session);
        self.fs.mediator.shutdown();
        r
    }

    fn unmount_session(&self, session: BackgroundSession) -> Result<(), MountError> {
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(
                    "unmounting {}: {e}; detaching it lazily",
                    self.mountpoint.display()
                );
                let detached =
                    nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
                if let Some(conn) = self.conn {
                    let _ = std::fs::write(format!("/sys/fs/fuse/connections/{conn}/abort"), "1");
                }
                match detached {
                    Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
                    Err(d) => Err(MountError::Io {
                        what: format!("unmounting {}", self.mountpoint.display()),
                        source: io::Error::from_raw_os_error(d as i32),
                    }),
                }
            }
        }
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!("{e}");
        }
    }
}
