//! `leasefs`: the binary edge. Parses the command line, sets up logging and hands off to
//! one module per subcommand.

mod commands;
mod config_file;

use clap::{Parser, Subcommand};

/// Serve one directory to local programs (FUSE) and SMB clients at once, coherent through
/// one lease and lock store.
#[derive(Parser)]
#[command(name = "leasefs", version, about, long_about = None, args_override_self = true)]
struct Cli {
    /// TOML file with flags of the subcommand (`break-timeout = 5`); flags given on the
    /// command line override it, and an unknown key is an error.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Log filter, e.g. `info`, `leasefs=debug` (overrides RUST_LOG).
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a directory over SMB and, with --mount, through a local FUSE mount too.
    Serve(commands::serve::ServeArgs),
    /// Mount a directory locally through FUSE, mediated by the lock manager.
    Mount(commands::mount::MountArgs),
    /// Show opens, leases and byte-range locks held in a running daemon.
    Locks(commands::control::LocksArgs),
    /// Hold a lease as a local client and answer its breaks.
    Lease(commands::control::LeaseArgs),
    /// Break the leases on a file (operator-initiated).
    Break(commands::control::BreakArgs),
}

fn main() -> std::process::ExitCode {
    let args = match config_file::expand(std::env::args_os().collect(), subcommand_flags) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("leasefs: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    init_logging(cli.log.as_deref());
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Mount(args) => commands::mount::run(args),
        Command::Locks(args) => commands::control::locks(args),
        Command::Lease(args) => commands::control::lease(args),
        Command::Break(args) => commands::control::break_file(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leasefs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The long flags of a (nested) subcommand and whether each takes a value.
fn subcommand_flags(path: &[String]) -> Option<Vec<(String, bool)>> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    for name in path {
        cmd = cmd.find_subcommand(name)?.clone();
    }
    let flags: Vec<(String, bool)> = cmd
        .get_arguments()
        .filter_map(|a| {
            a.get_long()
                .map(|l| (l.to_string(), a.get_action().takes_values()))
        })
        .filter(|(l, _)| l != "config")
        .chain([("log".to_string(), true)])
        .collect();
    (!flags.is_empty()).then_some(flags)
}
