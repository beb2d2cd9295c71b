//! Translating between paths users type (under the mount or the backing directory) and
//! the file identities the lock manager keys on.

use leasefs_leases::FileId;
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// Maps a user path to the backing file it names. Paths under the mount are rewritten
/// to the backing directory, so the daemon never stats through its own mount. Anything
/// outside both is refused: the control socket only speaks about the served tree.
pub fn to_backing(path: &Path, backing: &Path, mount: Option<&Path>) -> Result<PathBuf, String> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        return Err(format!("{}: path must be absolute", path.display()));
    };
    if abs.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{}: `..` is not allowed", path.display()));
    }
    if let Some(m) = mount {
        if let Ok(rest) = abs.strip_prefix(m) {
            return Ok(backing.join(rest));
        }
    }
    if abs.starts_with(backing) {
        return Ok(abs);
    }
    Err(format!(
        "{} is neither under the backing directory {} nor under the mount",
        path.display(),
        backing.display()
    ))
}

/// Identity of a backing path, as front ends register it (device + inode, no symlink
/// following for the last component so a symlink is itself).
pub fn file_id(path: &Path) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path)?;
    Ok(FileId::new(md.dev(), md.ino()))
}

/// Finds paths for the given identities by walking the backing tree (without following
/// symlinks), stopping as soon as all are found or after `limit` entries. The manager
/// keys on identities only, so this is how a listing shows names.
pub fn names_for(
    backing: &Path,
    wanted: &HashSet<FileId>,
    limit: usize,
) -> HashMap<FileId, PathBuf> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    if let Ok(id) = file_id(backing) {
        if wanted.contains(&id) {
            found.insert(id, backing.to_path_buf());
        }
    }
    let mut stack = vec![backing.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for ent in rd.flatten() {
            seen += 1;
            if seen > limit || found.len() == wanted.len() {
                return found;
            }
            let p = ent.path();
            if let Ok(id) = file_id(&p) {
                if wanted.contains(&id) {
                    found.insert(id, p.clone());
                }
            }
            if ent.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_map_to_backing_and_escapes_are_refused() {
        let b = Path::new("/srv/data");
        let m = Path::new("/mnt/l");
        assert_eq!(
            to_backing(Path::new("/mnt/l/a/b"), b, Some(m)).unwrap(),
            PathBuf::from("/srv/data/a/b")
        );
        assert_eq!(
            to_backing(Path::new("/srv/data/x"), b, Some(m)).unwrap(),
            PathBuf::from("/srv/data/x")
        );
        assert!(to_backing(Path::new("/etc/passwd"), b, Some(m)).is_err());
        assert!(to_backing(Path::new("/mnt/l/../../etc"), b, Some(m)).is_err());
        assert!(to_backing(Path::new("rel"), b, None).is_err());
    }
}
