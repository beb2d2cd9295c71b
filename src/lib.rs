//! The `leasefs` binary's library half: pieces the daemons share and the integration
//! tests drive directly (the control socket).

pub mod control;
pub mod daemon;
pub mod invalidation;
pub mod metrics;
