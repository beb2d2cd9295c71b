//! Control-socket messages (JSON lines).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Every connection starts with this; the server answers `hello` or `error`.
    Hello { version: u32 },
    /// A snapshot of opens, leases and locks, optionally of one file.
    Locks { file: Option<PathBuf> },
    /// Hold a lease on `path` as a control-socket client until the connection closes.
    Hold { path: PathBuf, state: String },
    /// Acknowledge the break in flight on the held lease, down to `state`.
    Ack { state: String },
    /// Break every lease on `path` down to `to` (default none) and report the outcome.
    Break { path: PathBuf, to: Option<String> },
    /// Stream every manager event on this connection until it closes.
    Watch,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Hello {
        version: u32,
        server_epoch: u64,
    },
    Locks {
        snapshot: serde_json::Value,
    },
    Held {
        path: PathBuf,
        state: String,
        epoch: u16,
        key: String,
    },
    /// The held lease is being broken.
    Break {
        from: String,
        to: String,
        epoch: u16,
        ack_required: bool,
        reason: String,
    },
    Acked {
        state: String,
    },
    BreakDone {
        outcome: String,
    },
    Watching {
        server_epoch: u64,
    },
    /// One manager event (see `leasefs_leases::EventKind`), with `path` added.
    Event {
        event: serde_json::Value,
    },
    Error {
        message: String,
    },
}
