//! `leasefs mount` (issue 3).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MountArgs {
    /// Directory whose contents are served.
    #[arg(long)]
    pub backing: PathBuf,
    /// Empty directory to mount on.
    #[arg(long)]
    pub mount: PathBuf,
}

pub fn run(_args: MountArgs) -> anyhow::Result<()> {
    anyhow::bail!("`leasefs mount` is not built yet (issue 3)")
}
