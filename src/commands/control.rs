//! Control-socket clients: `leasefs locks`, `leasefs lease hold`, `leasefs break` (issue 6).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LocksArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stream events live.
    #[arg(long)]
    pub watch: bool,
    /// Only this file.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct LeaseArgs {
    #[command(subcommand)]
    pub action: LeaseAction,
}

#[derive(clap::Subcommand)]
pub enum LeaseAction {
    /// Hold a lease on PATH until Ctrl-C.
    Hold {
        path: PathBuf,
        /// Lease state to request: R, RH, RW or RWH.
        #[arg(long, default_value = "RWH")]
        state: String,
        /// How to answer breaks: auto, never, after=SECS, prompt.
        #[arg(long, default_value = "auto")]
        ack: String,
    },
}

#[derive(clap::Args)]
pub struct BreakArgs {
    pub path: PathBuf,
    /// Target state (default: none).
    #[arg(long)]
    pub to: Option<String>,
}

const NOT_YET: &str = "needs the control socket, which is not built yet (issue 6)";

pub fn locks(_args: LocksArgs) -> anyhow::Result<()> {
    anyhow::bail!("`leasefs locks` {NOT_YET}")
}

pub fn lease(_args: LeaseArgs) -> anyhow::Result<()> {
    anyhow::bail!("`leasefs lease hold` {NOT_YET}")
}

pub fn break_file(_args: BreakArgs) -> anyhow::Result<()> {
    anyhow::bail!("`leasefs break` {NOT_YET}")
}
