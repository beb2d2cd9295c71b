//! 8.3 short names (MS-FSCC 2.1.5.2.1) derived from the long name alone.
//!
//! The backing filesystem keeps no short names, yet FileAlternateNameInformation
//! (MS-FSCC 2.4.5) and the ShortName field of FileBothDirectoryInformation /
//! FileIdBothDirectoryInformation (2.4.8, 2.4.17) must agree for the same file
//! (smbtorture smb2.dir.one compares them). Deriving the short name from a hash of
//! the long name keeps both answers identical without any stored state; a name that
//! is already a valid 8.3 name is its own short name (uppercased), as on NTFS.
//! Short names are reported only: opening a file by its short name is not supported.

/// Characters MS-FSCC 2.1.5.2.1 allows in an 8.3 name besides letters and digits.
fn legal_83(c: char) -> bool {
    c.is_ascii_alphanumeric() || "$%'-_@~`!(){}^#&".contains(c)
}

/// Whether `name` already is a valid 8.3 name: base 1-8 legal characters, an optional
/// single dot and 1-3 legal extension characters.
fn is_83(name: &str) -> bool {
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, Some(e)),
        None => (name, None),
    };
    let ok = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.chars().all(legal_83);
    ok(base, 8) && ext.is_none_or(|e| ok(e, 3))
}

/// FNV-1a over the UTF-8 bytes: stable across runs and builds, so a client sees the
/// same short name every time it asks.
fn hash(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// The short name of `name`, or `None` for `.` and `..` (which have none).
pub fn short_name(name: &str) -> Option<String> {
    if name == "." || name == ".." || name.is_empty() {
        return None;
    }
    if is_83(name) {
        return Some(name.to_ascii_uppercase());
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .filter(|c| legal_83(*c) && *c != '~')
            .map(|c| c.to_ascii_uppercase())
            .take(max)
            .collect()
    };
    // Base: up to 5 characters of the stem, `~`, two base-36 digits of the hash
    // (like Samba's hash mangling), so different long names rarely collide.
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let h = hash(name);
    let mut base = clean(stem, 5);
    if base.is_empty() {
        base.push('_');
    }
    base.push('~');
    base.push(DIGITS[(h % 36) as usize] as char);
    base.push(DIGITS[((h / 36) % 36) as usize] as char);
    let ext = clean(ext, 3);
    if ext.is_empty() {
        Some(base)
    } else {
        Some(format!("{base}.{ext}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_83_names_are_their_own_short_name() {
        assert_eq!(short_name("readme.txt").as_deref(), Some("README.TXT"));
        assert_eq!(short_name("A").as_deref(), Some("A"));
        assert_eq!(short_name(".").as_deref(), None);
        assert_eq!(short_name("..").as_deref(), None);
    }

    #[test]
    fn long_names_are_mangled_to_83() {
        let s = short_name("torture_search.txt").expect("short name");
        assert!(is_83(&s), "{s}");
        assert!(s.starts_with("TORTU~") && s.ends_with(".TXT"), "{s}");
        // Stable, and different long names with the same prefix differ.
        assert_eq!(
            short_name("torture_search.txt").as_deref(),
            Some(s.as_str())
        );
        assert_ne!(
            short_name("torture_search2.txt").as_deref(),
            Some(s.as_str())
        );
        let s = short_name("a b c.d.tar.gz").expect("short name");
        assert!(is_83(&s), "{s}");
        assert!(s.ends_with(".GZ"), "{s}");
        let s = short_name(".bashrc").expect("short name");
        assert!(is_83(&s), "{s}");
    }
}
