//! leasefs-leases: the protocol-neutral lock manager.
pub mod types;
pub use types::*;
