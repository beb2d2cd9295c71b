//! One module per subcommand.

pub mod control;
pub mod mount;
pub mod serve;
