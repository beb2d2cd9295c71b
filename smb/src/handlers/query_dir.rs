//! QUERY_DIRECTORY (MS-SMB2 3.3.5.18): the listing is read once per scan (at the first
//! request, RESTART_SCANS or REOPEN) and handed out in buffer-sized pieces.

use super::{reader, Outcome, Req};
use crate::server::Server;
use crate::session::{ConnState, DirListing};
use crate::vfs;
use crate::wire::info::{class, dir_entry, FileMeta};
use crate::wire::{status, utf16_to_string, Put, HEADER_LEN};
use std::sync::Arc;

const RESTART_SCANS: u8 = 0x01;
const RETURN_SINGLE_ENTRY: u8 = 0x02;
const INDEX_SPECIFIED: u8 = 0x04;
const REOPEN: u8 = 0x10;

/// Windows name matching (MS-FSA 2.1.4.4): `*` and `?`, plus the DOS wildcards `<`,
/// `>` and `"` that clients send for `*.`, `?` and `.`; case-insensitive.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') | Some('<') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') | Some('>') => {
                // `>` also matches nothing at the end or before a dot.
                (!n.is_empty() && go(&p[1..], &n[1..])) || (p[0] == '>' && go(&p[1..], n))
            }
            Some('"') => {
                (n.first() == Some(&'.') && go(&p[1..], &n[1..]))
                    || (n.is_empty() && go(&p[1..], n))
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    // Bound the recursion on hostile patterns: names are <= 255 chars, patterns too.
    if p.len() > 512 || n.len() > 512 {
        return false;
    }
    go(&p, &n)
}

fn build_listing(srv: &Server, o: &crate::session::Open, pattern: &str) -> Result<DirListing, u32> {
    let fd = o.handle.fd().ok_or(status::INVALID_PARAMETER)?;
    let mut entries = Vec::new();
    let me = vfs::meta_fd(fd).map_err(|e| status::from_io(&e))?;
    if wildcard_match(pattern, ".") {
        entries.push((".".to_string(), me));
    }
    if wildcard_match(pattern, "..") {
        let parent = if o.path.is_root() {
            me
        } else {
            srv.root
                .open_beneath(&o.path.parent_rel(), libc::O_PATH, 0)
                .ok()
                .and_then(|f| vfs::meta_fd(std::os::fd::AsRawFd::as_raw_fd(&f)).ok())
                .unwrap_or(me)
        };
        entries.push(("..".to_string(), parent));
    }
    // Only the names are taken now; each entry's metadata is read when it is handed
    // out (entry_meta), so an enumeration that spans several requests reports entries
    // deleted meanwhile as gone and attribute changes as made (MS-FSA 2.1.5.6.3 reads
    // the directory as it is at each request; smbtorture smb2.dir.fixed / modify).
    for name in vfs::list_dir(fd).map_err(|e| status::from_io(&e))? {
        if wildcard_match(pattern, &name) {
            entries.push((name, FileMeta::default()));
        }
    }
    Ok(DirListing {
        entries,
        pos: 0,
        pattern: pattern.to_string(),
    })
}

/// Current metadata of `name` in the listed directory, `None` when it is gone or cannot
/// be opened beneath the share root (symlinks leaving it are hidden).
fn entry_meta(srv: &Server, dir_rel: &str, name: &str) -> Option<FileMeta> {
    let rel_name = if dir_rel.is_empty() {
        name.to_string()
    } else {
        format!("{dir_rel}/{name}")
    };
    // A readable descriptor (not O_PATH) so the kept DOS attributes and times in
    // xattrs are reported too; O_PATH when the entry cannot be read.
    let f = srv
        .root
        .open_beneath(
            &rel_name,
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        )
        .or_else(|_| srv.root.open_beneath(&rel_name, libc::O_PATH, 0))
        .ok()?;
    vfs::meta_fd(std::os::fd::AsRawFd::as_raw_fd(&f)).ok()
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 33)?;
    let info_class = r.u8(2).map_err(super::wire_err)?;
    let flags = r.u8(3).map_err(super::wire_err)?;
    let name_off = r.u16(24).map_err(super::wire_err)? as usize;
    let name_len = r.u16(26).map_err(super::wire_err)? as usize;
    let out_len = (r.u32(28).map_err(super::wire_err)? as usize).min(crate::MAX_IO as usize);
    let pattern = utf16_to_string(
        r.header_relative(name_off, name_len)
            .map_err(super::wire_err)?,
    )
    .map_err(super::wire_err)?;
    let pattern = if pattern.is_empty() {
        "*".to_string()
    } else {
        pattern
    };
    if !matches!(
        info_class,
        class::DIRECTORY
            | class::FULL_DIRECTORY
            | class::BOTH_DIRECTORY
            | class::NAMES
            | class::ID_BOTH_DIRECTORY
            | class::ID_FULL_DIRECTORY
    ) {
        return Err(status::INVALID_INFO_CLASS);
    }
    let o = super::open_mut(st, req, 8)?;
    if !o.is_dir {
        return Err(status::INVALID_PARAMETER);
    }
    let file_index = r.u32(4).map_err(super::wire_err)? as usize;
    let restart = flags & (RESTART_SCANS | REOPEN) != 0;
    let first = o.listing.is_none() || restart;
    if first {
        let l = build_listing(srv, o, &pattern)?;
        o.listing = Some(l);
    }
    let dir_rel = o.path.rel();
    let Some(listing) = o.listing.as_mut() else {
        return Err(status::INVALID_PARAMETER);
    };
    if flags & INDEX_SPECIFIED != 0 && !restart {
        // Resume after the entry whose FileIndex the client names (entries are numbered
        // from 1 in listing order); like Samba, since NTFS gives no stable index.
        listing.pos = file_index.min(listing.entries.len());
    }
    let mut out: Vec<u8> = Vec::new();
    let mut last_start: Option<usize> = None;
    while listing.pos < listing.entries.len() {
        let (name, meta) = &listing.entries[listing.pos];
        let meta = if name == "." || name == ".." {
            *meta
        } else {
            match entry_meta(srv, &dir_rel, name) {
                Some(m) => m,
                None => {
                    listing.pos += 1;
                    continue;
                }
            }
        };
        let Some(mut entry) = dir_entry(info_class, &meta, name) else {
            return Err(status::INVALID_INFO_CLASS);
        };
        crate::wire::set_u32(&mut entry, 4, (listing.pos + 1) as u32);
        let start = out.len().div_ceil(8) * 8;
        if start + entry.len() > out_len {
            break;
        }
        out.resize(start, 0);
        if let Some(prev) = last_start {
            crate::wire::set_u32(&mut out, prev, (start - prev) as u32);
        }
        out.extend_from_slice(&entry);
        last_start = Some(start);
        listing.pos += 1;
        if flags & RETURN_SINGLE_ENTRY != 0 {
            break;
        }
    }
    if out.is_empty() {
        if listing.pos < listing.entries.len() {
            return Err(status::INFO_LENGTH_MISMATCH);
        }
        // Nothing matched at the start of a scan (entries that vanished or are hidden
        // count as not matching).
        return Err(if first {
            status::NO_SUCH_FILE
        } else {
            status::NO_MORE_FILES
        });
    }
    let mut b = Vec::with_capacity(8 + out.len());
    b.put_u16(9);
    b.put_u16((HEADER_LEN + 8) as u16);
    b.put_u32(out.len() as u32);
    b.extend_from_slice(&out);
    Ok(Outcome::Done(status::SUCCESS, b))
}

#[cfg(test)]
mod tests {
    use super::wildcard_match as m;

    #[test]
    fn wildcards() {
        assert!(m("*", "anything"));
        assert!(m("*.TXT", "a.txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("<.dat", "lease.dat"));
        assert!(m("file", "FILE"));
        assert!(!m("file", "file2"));
    }
}
