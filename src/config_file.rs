//! `--config FILE`: a TOML file mirroring the command-line flags of a subcommand.
//!
//! Each key is a long flag name (`break-timeout` or `break_timeout`); the file's values
//! become flags placed before the ones typed on the command line, and clap lets a later
//! occurrence override an earlier one, so flags override the file. A key that names no
//! flag of the subcommand is an error naming the key.

use anyhow::{bail, Context};
use std::ffi::OsString;
use std::path::Path;

/// Finds `--config FILE` (or `--config=FILE`) after the subcommand, and returns argv with
/// the file's settings spliced in right after the subcommand. `known_flags(sub)` lists
/// the long flags the subcommand accepts.
pub fn expand(
    args: Vec<OsString>,
    known_flags: impl Fn(&[String]) -> Option<Vec<(String, bool)>>,
) -> anyhow::Result<Vec<OsString>> {
    let mut config: Option<OsString> = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            config = Some(it.next().context("--config needs a file")?);
        } else if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            config = Some(v.into());
        } else {
            rest.push(a);
        }
    }
    let Some(file) = config else { return Ok(rest) };
    // The subcommand is the first argument after the program name that is not an option
    // (global options take values only as `--log=...` or `--log X`).
    let mut sub_at = None;
    let mut i = 1;
    while i < rest.len() {
        let a = rest[i].to_string_lossy();
        if a == "--log" {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            sub_at = Some(i);
            break;
        }
        i += 1;
    }
    let Some(mut sub_at) = sub_at else {
        bail!("--config needs a subcommand (serve, mount, ...)")
    };
    let mut path = vec![rest[sub_at].to_string_lossy().to_string()];
    let mut flags = known_flags(&path);
    // A nested subcommand (`lease hold`): splice after it when its parent takes no flags.
    if let Some(next) = rest
        .get(sub_at + 1)
        .map(|a| a.to_string_lossy().to_string())
    {
        let mut deeper = path.clone();
        deeper.push(next);
        if let Some(f) = known_flags(&deeper) {
            flags = Some(f);
            path = deeper;
            sub_at += 1;
        }
    }
    let flags = flags.with_context(|| format!("unknown subcommand `{}`", path.join(" ")))?;
    let injected = flags_from_file(Path::new(&file), &flags)?;
    let mut out: Vec<OsString> = rest[..=sub_at].to_vec();
    out.extend(injected);
    out.extend_from_slice(&rest[sub_at + 1..]);
    Ok(out)
}

/// Turns the file's table into flags. `flags` pairs each long name with whether it takes
/// a value.
fn flags_from_file(path: &Path, flags: &[(String, bool)]) -> anyhow::Result<Vec<OsString>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("config file {}", path.display()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some((_, takes_value)) = flags.iter().find(|(f, _)| *f == name) else {
            let known: Vec<&str> = flags.iter().map(|(f, _)| f.as_str()).collect();
            bail!(
                "config file {}: unknown key `{key}` (known: {})",
                path.display(),
                known.join(", ")
            );
        };
        let flag = format!("--{name}");
        let scalar = |v: &toml::Value| -> anyhow::Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => bail!(
                    "config file {}: key `{key}` has an unsupported value {other}",
                    path.display()
                ),
            })
        };
        match (&value, takes_value) {
            (toml::Value::Boolean(b), false) => {
                if *b {
                    out.push(flag.into());
                }
            }
            (toml::Value::Array(items), true) => {
                for v in items {
                    out.push(flag.clone().into());
                    out.push(scalar(v)?.into());
                }
            }
            (v, true) => {
                out.push(flag.into());
                out.push(scalar(v)?.into());
            }
            (v, false) => bail!(
                "config file {}: key `{key}` is a switch; use true or false, not {v}",
                path.display()
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(sub: &[String]) -> Option<Vec<(String, bool)>> {
        (sub == ["serve"]).then(|| {
            vec![
                ("break-timeout".into(), true),
                ("guest".into(), false),
                ("user".into(), true),
            ]
        })
    }

    fn run(toml: &str, argv: &[&str]) -> anyhow::Result<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, toml).unwrap();
        let mut args: Vec<OsString> = argv.iter().map(OsString::from).collect();
        args.push("--config".into());
        args.push(f.into_os_string());
        Ok(expand(args, flags)?
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    #[test]
    fn file_values_come_before_command_line_flags() {
        let out = run(
            "break_timeout = 5\nguest = true\nuser = [\"a:b\", \"c:d\"]\n",
            &["leasefs", "serve", "--break-timeout", "9"],
        )
        .unwrap();
        assert_eq!(out[..2], ["leasefs", "serve"]);
        assert_eq!(out.last().unwrap(), "9");
        assert!(out.contains(&"--guest".to_string()));
        assert_eq!(out.iter().filter(|a| *a == "--user").count(), 2);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = run("brek_timeout = 5\n", &["leasefs", "serve"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `brek_timeout`"), "{e}");
        let e = run("guest = 3\n", &["leasefs", "serve"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("switch"), "{e}");
    }
}
