//! Control-socket clients: `leasefs locks`, `leasefs lease hold`, `leasefs break`.

use anyhow::{bail, Context};
use leasefs::control::client::ControlClient;
use leasefs::control::protocol::{Request, Response};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Same option and default as the daemons, so the client finds their socket.
#[derive(clap::Args, Clone)]
pub struct StateDirArg {
    /// State directory of the daemon to talk to.
    #[arg(long, default_value = leasefs::control::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

#[derive(clap::Args)]
pub struct LocksArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stream events live (reconnects when the daemon restarts).
    #[arg(long)]
    pub watch: bool,
    /// Only this file (a path under the mount or the backing directory).
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(clap::Args)]
pub struct LeaseArgs {
    #[command(subcommand)]
    pub action: LeaseAction,
}

#[derive(clap::Subcommand)]
pub enum LeaseAction {
    /// Hold a lease on PATH as a local client until Ctrl-C, printing each break.
    Hold {
        path: PathBuf,
        /// Lease state to request: R, RH, RW or RWH.
        #[arg(long, default_value = "RWH")]
        state: String,
        /// How to answer breaks: auto (at once), never, after=SECS, prompt.
        #[arg(long, default_value = "auto")]
        ack: String,
        #[command(flatten)]
        state_dir: StateDirArg,
    },
}

#[derive(clap::Args)]
pub struct BreakArgs {
    /// A path under the mount or the backing directory.
    pub path: PathBuf,
    /// Target state (default: none).
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub state: StateDirArg,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("current directory")?
        .join(p))
}

pub fn locks(args: LocksArgs) -> anyhow::Result<()> {
    if args.watch {
        return watch(&args.state.state_dir);
    }
    let mut c = ControlClient::connect(&args.state.state_dir)?;
    let file = args.file.as_deref().map(absolute).transpose()?;
    let snapshot = match c.call(&Request::Locks { file })? {
        Response::Locks { snapshot } => snapshot,
        other => bail!("unexpected reply: {other:?}"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
        return Ok(());
    }
    print!("{}", render_table(&snapshot));
    Ok(())
}

/// An `lslocks`-like table: one row per open, lease and byte-range lock.
pub fn render_table(snapshot: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(t) => t.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let empty = Vec::new();
    let list = |k: &str| {
        snapshot
            .get(k)
            .and_then(|v| v.as_array())
            .unwrap_or(&empty)
            .clone()
    };
    let mut rows: Vec<[String; 6]> =
        vec![["PATH", "KIND", "PROTO", "OWNER", "STATE", "DETAIL"].map(String::from)];
    for l in list("leases") {
        let detail = if l["breaking"].as_bool() == Some(true) {
            format!(
                "breaking -> {}, revoke in {:.1}s",
                s(&l["break_to"]),
                l["revoke_in_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
            )
        } else {
            String::new()
        };
        let kind = if l["oplock"].as_bool() == Some(true) {
            "oplock"
        } else {
            "lease"
        };
        rows.push([
            s(&l["path"]),
            kind.into(),
            s(&l["protocol"]),
            format!("{} key {}", short(&s(&l["client"])), short(&s(&l["key"]))),
            format!("{} e{}", s(&l["state"]), s(&l["epoch"])),
            detail,
        ]);
    }
    for o in list("opens") {
        let mut access = String::new();
        for (k, c) in [("read", 'r'), ("write", 'w'), ("delete", 'd')] {
            access.push(if o[k].as_bool() == Some(true) { c } else { '-' });
        }
        let stat = if o["stat_only"].as_bool() == Some(true) {
            " stat-only"
        } else {
            ""
        };
        rows.push([
            s(&o["path"]),
            "open".into(),
            s(&o["protocol"]),
            format!("{}/{}", short(&s(&o["client"])), s(&o["session"])),
            access,
            format!("share {}{stat}", s(&o["share"])),
        ]);
    }
    for l in list("locks") {
        let range = match l["end"].as_u64() {
            Some(u64::MAX) => format!("{}-EOF", s(&l["start"])),
            Some(e) => format!("{}-{}", s(&l["start"]), e),
            None => format!("{}+0", s(&l["start"])),
        };
        let waiting = if l["waiting"].as_bool() == Some(true) {
            "WAITING"
        } else {
            ""
        };
        rows.push([
            s(&l["path"]),
            "lock".into(),
            s(&l["protocol"]),
            s(&l["owner"]),
            s(&l["type"]),
            format!("{range} {waiting}").trim().into(),
        ]);
    }
    if rows.len() == 1 {
        return "no locks: nothing is open, leased or locked\n".into();
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn short(hex: &str) -> String {
    if hex.len() > 12 {
        format!("{}…", &hex[..12])
    } else {
        hex.to_string()
    }
}

enum AckMode {
    Auto,
    Never,
    After(std::time::Duration),
    Prompt,
}

fn parse_ack(text: &str) -> anyhow::Result<AckMode> {
    Ok(match text {
        "auto" => AckMode::Auto,
        "never" => AckMode::Never,
        "prompt" => AckMode::Prompt,
        t => match t.strip_prefix("after=") {
            Some(secs) => AckMode::After(std::time::Duration::from_secs_f64(
                secs.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .with_context(|| format!("`{secs}` is not a number of seconds"))?,
            )),
            None => bail!("--ack must be auto, never, after=SECS or prompt (got `{t}`)"),
        },
    })
}

fn stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis()
    )
}

pub fn lease(args: LeaseArgs) -> anyhow::Result<()> {
    let LeaseAction::Hold {
        path,
        state,
        ack,
        state_dir,
    } = args.action;
    let mode = parse_ack(&ack)?;
    let path = absolute(&path)?;
    let mut c = ControlClient::connect(&state_dir.state_dir)?;
    match c.call(&Request::Hold {
        path: path.clone(),
        state: state.clone(),
    })? {
        Response::Held {
            state, epoch, key, ..
        } => {
            println!(
                "{} holding {state} on {} (epoch {epoch}, key {key}); Ctrl-C releases",
                stamp(),
                path.display()
            );
        }
        other => bail!("unexpected reply: {other:?}"),
    }
    std::io::stdout().flush()?;
    let mut writer = c.writer()?;
    let mut send_ack = move |to: &str| -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&Request::Ack {
            state: to.to_string(),
        })?;
        line.push(b'\n');
        writer.write_all(&line)?;
        Ok(())
    };
    while let Some(resp) = c.recv()? {
        match resp {
            Response::Break {
                from,
                to,
                epoch,
                ack_required,
                reason,
            } => {
                let need = if ack_required {
                    "ack required"
                } else {
                    "no ack needed"
                };
                println!(
                    "{} break {from} -> {to} (reason {reason}, epoch {epoch}, {need})",
                    stamp()
                );
                std::io::stdout().flush()?;
                if !ack_required {
                    continue;
                }
                match mode {
                    AckMode::Auto => send_ack(&to)?,
                    AckMode::Never => println!("{} not acknowledging (--ack never)", stamp()),
                    AckMode::After(d) => {
                        std::thread::sleep(d);
                        send_ack(&to)?;
                    }
                    AckMode::Prompt => {
                        print!("acknowledge down to {to}? [Y/n] ");
                        std::io::stdout().flush()?;
                        let mut answer = String::new();
                        std::io::stdin().lock().read_line(&mut answer)?;
                        if !answer.trim().eq_ignore_ascii_case("n") {
                            send_ack(&to)?;
                        }
                    }
                }
            }
            Response::Acked { state } => println!("{} acknowledged; lease now {state}", stamp()),
            Response::Error { message } => println!("{} daemon: {message}", stamp()),
            other => println!("{} {other:?}", stamp()),
        }
        std::io::stdout().flush()?;
    }
    println!(
        "{} the daemon closed the connection; lease released",
        stamp()
    );
    Ok(())
}

pub fn break_file(args: BreakArgs) -> anyhow::Result<()> {
    let path = absolute(&args.path)?;
    let mut c = ControlClient::connect(&args.state.state_dir)?;
    match c.call(&Request::Break {
        path: path.clone(),
        to: args.to.clone(),
    })? {
        Response::BreakDone { outcome } => {
            println!("{}: {outcome}", path.display());
            Ok(())
        }
        other => bail!("unexpected reply: {other:?}"),
    }
}

/// Streams events until interrupted, reconnecting whenever the daemon goes away.
fn watch(state_dir: &Path) -> anyhow::Result<()> {
    let mut waiting_said = false;
    loop {
        let mut c = match ControlClient::connect(state_dir) {
            Ok(c) => c,
            Err(leasefs::control::client::ClientError::NotRunning { .. }) => {
                if !waiting_said {
                    println!(
                        "{} waiting for a leasefs daemon with state directory {}",
                        stamp(),
                        state_dir.display()
                    );
                    std::io::stdout().flush()?;
                    waiting_said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        waiting_said = false;
        match c.call(&Request::Watch)? {
            Response::Watching { server_epoch } => {
                println!("{} watching (server epoch {server_epoch})", stamp())
            }
            other => bail!("unexpected reply: {other:?}"),
        }
        std::io::stdout().flush()?;
        while let Some(resp) = c.recv()? {
            if let Response::Event { event } = resp {
                println!("{}", render_event(&event));
                std::io::stdout().flush()?;
            }
        }
        println!("{} the daemon went away; reconnecting", stamp());
    }
}

/// One line per event: time, what happened, where, and the details that matter.
pub fn render_event(e: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(t) => t.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let st = |v: &serde_json::Value| {
        v.as_u64()
            .map(|b| state_name(b as u8))
            .unwrap_or_else(|| s(v))
    };
    let at = e["at"]["secs_since_epoch"].as_u64().unwrap_or(0);
    let ms = e["at"]["nanos_since_epoch"].as_u64().unwrap_or(0) / 1_000_000;
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}",
        at % 86_400 / 3600,
        at % 3600 / 60,
        at % 60,
        ms
    );
    let who = |k: &str| match &e[k] {
        serde_json::Value::Object(o) => format!(
            "{}:{}/{}",
            o.get("protocol").map(s).unwrap_or_default().to_lowercase(),
            short(&hex(&o["client"])),
            o.get("session").map(s).unwrap_or_default()
        ),
        _ => "-".into(),
    };
    let dur = |v: &serde_json::Value| {
        let secs =
            v["secs"].as_u64().unwrap_or(0) as f64 + v["nanos"].as_u64().unwrap_or(0) as f64 / 1e9;
        format!("{:.3}ms", secs * 1000.0)
    };
    let path = s(&e["path"]);
    let kind = s(&e["event"]);
    let detail = match kind.as_str() {
        "break_sent" => format!(
            "{} -> {} reason={} {} epoch={} caused by {} ({})",
            st(&e["from"]),
            st(&e["to"]),
            s(&e["reason"]),
            if e["ack_required"].as_bool() == Some(true) {
                "ack-required"
            } else {
                "no-ack"
            },
            s(&e["epoch"]),
            who("cause"),
            s(&e["op"])
        ),
        "ack" => format!("now {} after {}", st(&e["state"]), dur(&e["latency"])),
        "revoke" => format!(
            "deadline passed; lease set to none ({} late)",
            dur(&e["late"])
        ),
        "grant" => format!(
            "{}{}",
            st(&e["state"]),
            if e["upgrade"].as_bool() == Some(true) {
                " (upgrade)"
            } else {
                ""
            }
        ),
        "lock" | "lock_wait" => format!(
            "{} {}",
            s(&e["kind"]).to_lowercase(),
            range_text(&e["range"])
        ),
        "unlock" => range_text(&e["range"]),
        "open" => {
            let mut a = String::new();
            for (k, c) in [("read", 'r'), ("write", 'w'), ("delete", 'd')] {
                a.push(if e[k].as_bool() == Some(true) { c } else { '-' });
            }
            format!("{a} {}", s(&e["open"]))
        }
        _ => String::new(),
    };
    format!("{time}  {kind:<10}  {path}  by {}  {detail}", who("owner"))
        .trim_end()
        .to_string()
}

fn hex(v: &serde_json::Value) -> String {
    match v.as_array() {
        Some(bytes) => bytes
            .iter()
            .map(|b| format!("{:02x}", b.as_u64().unwrap_or(0)))
            .collect(),
        None => "-".into(),
    }
}

fn state_name(b: u8) -> String {
    let mut t = String::new();
    for (bit, c) in [(1u8, 'R'), (4, 'W'), (2, 'H')] {
        if b & bit != 0 {
            t.push(c);
        }
    }
    if t.is_empty() {
        "none".into()
    } else {
        t
    }
}

fn range_text(r: &serde_json::Value) -> String {
    let start = r["start"].as_u64().unwrap_or(0);
    if r["empty"].as_bool() == Some(true) {
        return format!("{start}+0");
    }
    match r["last"].as_u64() {
        Some(u64::MAX) => format!("{start}-EOF"),
        Some(l) => format!("{start}-{l}"),
        None => format!("{start}-?"),
    }
}
