//! Metadata micro-benchmark used by `bench/fuse_bench.sh`: in DIR, create+write+close N
//! small files, stat each (twice), unlink each; prints the seconds each phase took.
//!
//!     cargo run --release -p leasefs-fuse --example fuse_meta_bench -- DIR N [PHASE [PREFIX]]
//!
//! PHASE `create` runs create, stat and stat again and leaves the files; `unlink` removes
//! the files a `create` run left; `all` (the default) runs the four in one go. Files are
//! named PREFIX (default `f`) and a number. The split and the prefix let the benchmark
//! compare configurations fairly on ext4 without a journal, which skips inodes freed in
//! the last minute when it allocates new ones, scanning past each of them, and allocates
//! a file's inode near its directory's: every configuration creates in the same backing
//! directory (native, and through each mount), and all creates run before any unlink.

use std::io::Write;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: fuse_meta_bench DIR N"));
    let n: usize = args.next().map_or(10_000, |s| s.parse().expect("N"));
    let phase = args.next().unwrap_or_default();
    let prefix = args.next().unwrap_or_else(|| "f".into());
    let names: Vec<_> = (0..n)
        .map(|i| dir.join(format!("{prefix}{i:06}")))
        .collect();
    let mut out = Vec::new();
    if phase != "unlink" {
        let data = [0x5au8; 1024];
        let t = Instant::now();
        for p in &names {
            let mut f = std::fs::File::create(p)?;
            f.write_all(&data)?;
        }
        out.push(("create", t.elapsed().as_secs_f64()));

        let t = Instant::now();
        for p in &names {
            std::hint::black_box(std::fs::metadata(p)?.len());
        }
        out.push(("stat", t.elapsed().as_secs_f64()));

        // again: now from the kernel's attribute cache on a mount
        let t = Instant::now();
        for p in &names {
            std::hint::black_box(std::fs::metadata(p)?.len());
        }
        out.push(("restat", t.elapsed().as_secs_f64()));
    }
    if phase != "create" {
        let t = Instant::now();
        for p in &names {
            std::fs::remove_file(p)?;
        }
        out.push(("unlink", t.elapsed().as_secs_f64()));
    }
    let line: Vec<String> = out.iter().map(|(k, v)| format!("{k} {v:.6}")).collect();
    println!("{}", line.join(" "));
    Ok(())
}
