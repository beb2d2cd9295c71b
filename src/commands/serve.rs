//! `leasefs serve` (issue 4).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Directory whose contents are served.
    #[arg(long)]
    pub backing: PathBuf,
}

pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`leasefs serve` is not built yet (issue 4)")
}
