//! Case-insensitive name resolution (MS-FSA 2.1.5.1.2.1: opens on a share that is not
//! case-sensitive match names ignoring case) on a case-sensitive backing filesystem.
//!
//! Each component of a client path that does not exist with the exact spelling is
//! replaced by the directory entry that equals it ignoring case, so every later
//! operation (openat2, rename, the names reported back such as
//! FileNormalizedNameInformation) works on the on-disk spelling. An exact match
//! always wins, so two names differing only in case (created through the FUSE mount)
//! stay reachable. A component with no match keeps the client's spelling: that is
//! the name a create makes. Stream names are folded the same way against the base
//! file's streams.

use super::{list_dir, streams, Root, SmbPath};
use std::os::fd::AsRawFd;

/// Windows compares names after upper-casing each character (MS-FSA 2.1.5.1.2.1
/// with the volume's upcase table); Unicode simple upper case is the closest match.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_uppercase)
            .eq(b.chars().flat_map(char::to_uppercase))
}

impl Root {
    /// Rewrites `p`'s components (and stream name) to their on-disk spelling where
    /// only a case-insensitive match exists. Lookup failures leave the rest as given:
    /// the open that follows reports them.
    pub fn fold_case(&self, p: &mut SmbPath) {
        let mut prefix = String::new();
        for i in 0..p.parts.len() {
            let exact = if prefix.is_empty() {
                p.parts[i].clone()
            } else {
                format!("{prefix}/{}", p.parts[i])
            };
            if self.open_beneath(&exact, libc::O_PATH, 0).is_err() {
                let Some(found) = self.find_in(&prefix, &p.parts[i]) else {
                    return;
                };
                p.parts[i] = found;
            }
            prefix = p.rel_upto(i + 1);
        }
        if let Some(sname) = p.stream.clone() {
            if let Ok(base) = self.open_beneath(
                &p.rel(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
                0,
            ) {
                let fd = base.as_raw_fd();
                if !streams::exists(fd, &sname) {
                    if let Ok(list) = streams::list(fd) {
                        if let Some((found, _)) =
                            list.into_iter().find(|(n, _)| eq_ignore_case(n, &sname))
                        {
                            p.stream = Some(found);
                        }
                    }
                }
            }
        }
    }

    /// The entry of directory `dir_rel` equal to `name` ignoring case.
    fn find_in(&self, dir_rel: &str, name: &str) -> Option<String> {
        let dir = self
            .open_beneath(dir_rel, libc::O_PATH | libc::O_DIRECTORY, 0)
            .ok()?;
        list_dir(dir.as_raw_fd())
            .ok()?
            .into_iter()
            .find(|e| eq_ignore_case(e, name))
    }
}

impl SmbPath {
    /// `/`-joined first `n` components.
    fn rel_upto(&self, n: usize) -> String {
        self.parts[..n].join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_ignoring_case() {
        assert!(eq_ignore_case("T015-15.txt", "t015-15.TXT"));
        assert!(eq_ignore_case("Ärger", "äRGER"));
        assert!(!eq_ignore_case("a.txt", "a.txt2"));
    }

    #[test]
    fn folds_components_and_streams_to_disk_spelling() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("torture_dIr1N/dIr2Na")).expect("mkdir");
        std::fs::write(dir.path().join("torture_dIr1N/dIr2Na/fIlE4NaMe"), b"x").expect("write");
        std::fs::write(dir.path().join("exact"), b"1").expect("write");
        std::fs::write(dir.path().join("EXACT"), b"2").expect("write");
        let root = Root::open(dir.path()).expect("root");

        let mut p = super::super::parse_name("TORTURE_DIR1N\\dir2na\\FILE4NAME").expect("parse");
        root.fold_case(&mut p);
        assert_eq!(p.rel(), "torture_dIr1N/dIr2Na/fIlE4NaMe");

        // An exact match wins over a case-insensitive one.
        let mut p = super::super::parse_name("EXACT").expect("parse");
        root.fold_case(&mut p);
        assert_eq!(p.rel(), "EXACT");

        // A missing last component keeps the client's spelling (the name a create makes).
        let mut p = super::super::parse_name("TORTURE_DIR1N\\NewFile").expect("parse");
        root.fold_case(&mut p);
        assert_eq!(p.rel(), "torture_dIr1N/NewFile");

        let f = root.open_beneath("exact", libc::O_RDONLY, 0).expect("open");
        if streams::write_all(f.as_raw_fd(), "sTrEaM3", b"s").is_ok() {
            let mut p = super::super::parse_name("exact:STREAM3").expect("parse");
            root.fold_case(&mut p);
            assert_eq!(p.rel(), "exact");
            assert_eq!(p.stream.as_deref(), Some("sTrEaM3"));
        }
    }
}
