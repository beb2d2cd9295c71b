//! The control socket: a root-only Unix socket in the state directory through which
//! `leasefs locks`, `leasefs lease hold` and `leasefs break` talk to a running daemon.
//!
//! Protocol: JSON lines, one request or response object per line, version
//! [`protocol::VERSION`]. A `hold` request turns the connection into a lease session:
//! break notices stream to the client, which answers with `ack` lines.

pub mod client;
pub mod paths;
pub mod protocol;
pub mod server;

pub use server::{ControlConfig, ControlServer};

use std::path::{Path, PathBuf};

/// Where daemons keep their state (the sled store and the control socket) by default.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/leasefs";

/// The control socket's path inside a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}
