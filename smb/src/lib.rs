//! leasefs-smb: the SMB2/3 server front end (issue 4).
//!
//! Layout: `wire` is the codec (MS-SMB2 2.2 structures, one module per command's
//! structures), `conn` the per-connection transport and dispatch loop, `handlers` one
//! module per command, `vfs` name resolution beneath the share root, `locking` the
//! single boundary to the lock manager, `auth`/`crypto` the authentication and
//! cryptography contract (owned separately).
//!
//! We do not use the `smb-msg` crate: see README.md for why.

pub mod auth;
pub mod conn;
pub mod crypto;
pub mod handlers;
pub mod leasing;
pub mod liveness;
pub mod locking;
pub mod notify;
pub mod server;
pub mod session;
pub mod stream_write;
pub mod suspend;
pub mod vfs;
pub mod wire;

pub use server::{Server, ServerConfig};

/// Largest READ/WRITE/transact size we negotiate (MS-SMB2 2.2.4 MaxReadSize etc.).
pub const MAX_IO: u32 = 8 * 1024 * 1024;
