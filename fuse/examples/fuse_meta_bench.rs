//! Metadata micro-benchmark used by `bench/fuse_bench.sh`: in DIR, create+write+close N
//! small files, stat each (twice), unlink each; prints the seconds each phase took.
//!
//!     cargo run --release -p leasefs-fuse --example fuse_meta_bench -- DIR N

use std::io::Write;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: fuse_meta_bench DIR N"));
    let n: usize = args.next().map_or(10_000, |s| s.parse().expect("N"));
    let data = [0x5au8; 1024];
    let names: Vec<_> = (0..n).map(|i| dir.join(format!("f{i:06}"))).collect();

    let t = Instant::now();
    for p in &names {
        let mut f = std::fs::File::create(p)?;
        f.write_all(&data)?;
    }
    let create = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for p in &names {
        std::hint::black_box(std::fs::metadata(p)?.len());
    }
    let stat = t.elapsed().as_secs_f64();

    // again: now from the kernel's attribute cache on a mount
    let t = Instant::now();
    for p in &names {
        std::hint::black_box(std::fs::metadata(p)?.len());
    }
    let restat = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for p in &names {
        std::fs::remove_file(p)?;
    }
    let unlink = t.elapsed().as_secs_f64();
    println!("create {create:.6} stat {stat:.6} restat {restat:.6} unlink {unlink:.6}");
    Ok(())
}
