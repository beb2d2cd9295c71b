//! File and file-system information classes (MS-FSCC 2.4, 2.5) and directory entries.

use super::{string_to_utf16, Put};

pub const INFO_FILE: u8 = 1;
pub const INFO_FILESYSTEM: u8 = 2;
pub const INFO_SECURITY: u8 = 3;
pub const INFO_QUOTA: u8 = 4;

/// File information classes (MS-FSCC 2.4).
pub mod class {
    pub const DIRECTORY: u8 = 1;
    pub const FULL_DIRECTORY: u8 = 2;
    pub const BOTH_DIRECTORY: u8 = 3;
    pub const BASIC: u8 = 4;
    pub const STANDARD: u8 = 5;
    pub const INTERNAL: u8 = 6;
    pub const EA: u8 = 7;
    pub const ACCESS: u8 = 8;
    pub const NAME: u8 = 9;
    pub const RENAME: u8 = 10;
    pub const NAMES: u8 = 12;
    pub const DISPOSITION: u8 = 13;
    pub const POSITION: u8 = 14;
    pub const FULL_EA: u8 = 15;
    pub const MODE: u8 = 16;
    pub const ALIGNMENT: u8 = 17;
    pub const ALL: u8 = 18;
    pub const ALLOCATION: u8 = 19;
    pub const END_OF_FILE: u8 = 20;
    pub const ALTERNATE_NAME: u8 = 21;
    pub const STREAM: u8 = 22;
    pub const COMPRESSION: u8 = 28;
    pub const NETWORK_OPEN: u8 = 34;
    pub const ATTRIBUTE_TAG: u8 = 35;
    pub const ID_BOTH_DIRECTORY: u8 = 37;
    pub const ID_FULL_DIRECTORY: u8 = 38;
    pub const NORMALIZED_NAME: u8 = 48;
    pub const DISPOSITION_EX: u8 = 64;
    pub const RENAME_EX: u8 = 65;
}

/// File-system information classes (MS-FSCC 2.5).
pub mod fsclass {
    pub const VOLUME: u8 = 1;
    pub const SIZE: u8 = 3;
    pub const DEVICE: u8 = 4;
    pub const ATTRIBUTE: u8 = 5;
    pub const CONTROL: u8 = 6;
    pub const FULL_SIZE: u8 = 7;
    pub const OBJECT_ID: u8 = 8;
    pub const SECTOR_SIZE: u8 = 11;
}

pub const ATTR_READONLY: u32 = 0x01;
pub const ATTR_HIDDEN: u32 = 0x02;
pub const ATTR_SYSTEM: u32 = 0x04;
pub const ATTR_DIRECTORY: u32 = 0x10;
pub const ATTR_ARCHIVE: u32 = 0x20;
pub const ATTR_NORMAL: u32 = 0x80;

/// What we report about a file, converted once from `stat` (MS-FSCC 2.4.7 etc.).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileMeta {
    pub creation: u64,
    pub access: u64,
    pub write: u64,
    pub change: u64,
    pub size: u64,
    pub allocation: u64,
    pub attributes: u32,
    pub nlink: u32,
    pub index: u64,
    pub is_dir: bool,
}

impl FileMeta {
    pub fn times(&self) -> [u64; 4] {
        [self.creation, self.access, self.write, self.change]
    }
}

pub fn basic(m: &FileMeta) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    for t in m.times() {
        v.put_u64(t);
    }
    v.put_u32(m.attributes);
    v.put_u32(0);
    v
}

pub fn standard(m: &FileMeta, delete_pending: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.put_u64(m.allocation);
    v.put_u64(m.size);
    v.put_u32(m.nlink);
    v.put_u8(delete_pending as u8);
    v.put_u8(m.is_dir as u8);
    v.put_u16(0);
    v
}

pub fn network_open(m: &FileMeta) -> Vec<u8> {
    let mut v = Vec::with_capacity(56);
    for t in m.times() {
        v.put_u64(t);
    }
    v.put_u64(m.allocation);
    v.put_u64(m.size);
    v.put_u32(m.attributes);
    v.put_u32(0);
    v
}

/// FileAllInformation (MS-FSCC 2.4.2): the fixed classes followed by the name.
pub fn all(
    m: &FileMeta,
    delete_pending: bool,
    access_mask: u32,
    position: u64,
    mode: u32,
    name: &str,
) -> Vec<u8> {
    let mut v = basic(m);
    v.extend_from_slice(&standard(m, delete_pending));
    v.put_u64(m.index);
    v.put_u32(0); // EaSize
    v.put_u32(access_mask);
    v.put_u64(position);
    v.put_u32(mode);
    v.put_u32(0); // AlignmentRequirement: byte
    let n = string_to_utf16(name);
    v.put_u32(n.len() as u32);
    v.extend_from_slice(&n);
    v
}

/// One directory entry in the class the client asked for (MS-FSCC 2.4.8, 2.4.14,
/// 2.4.17, 2.4.18, 2.4.26, 2.4.10). `None` for a class we do not produce.
pub fn dir_entry(class: u8, m: &FileMeta, name: &str) -> Option<Vec<u8>> {
    let n = string_to_utf16(name);
    let mut v = Vec::with_capacity(104 + n.len());
    v.put_u32(0); // NextEntryOffset, patched by the caller
    v.put_u32(0); // FileIndex
    if class == class::NAMES {
        v.put_u32(n.len() as u32);
        v.extend_from_slice(&n);
        return Some(v);
    }
    for t in m.times() {
        v.put_u64(t);
    }
    v.put_u64(m.size);
    v.put_u64(m.allocation);
    v.put_u32(m.attributes);
    v.put_u32(n.len() as u32);
    match class {
        class::DIRECTORY => {}
        class::FULL_DIRECTORY => v.put_u32(0),
        class::ID_FULL_DIRECTORY => {
            v.put_u32(0);
            v.put_u32(0);
            v.put_u64(m.index);
        }
        class::BOTH_DIRECTORY => {
            v.put_u32(0);
            put_short_name(&mut v, name);
        }
        class::ID_BOTH_DIRECTORY => {
            v.put_u32(0);
            put_short_name(&mut v, name);
            v.put_u16(0);
            v.put_u64(m.index);
        }
        _ => return None,
    }
    v.extend_from_slice(&n);
    Some(v)
}

/// ShortNameLength, Reserved and the 24-byte ShortName of the BOTH directory classes
/// (MS-FSCC 2.4.8): the same 8.3 name FileAlternateNameInformation reports.
fn put_short_name(v: &mut Vec<u8>, name: &str) {
    let short = crate::vfs::short_name::short_name(name)
        .map(|s| string_to_utf16(&s))
        .unwrap_or_default();
    let len = short.len().min(24);
    v.put_u8(len as u8);
    v.put_u8(0);
    v.extend_from_slice(&short[..len]);
    v.put_zeros(24 - len);
}

/// Fixed size of each file information class, for STATUS_INFO_LENGTH_MISMATCH checks
/// (MS-SMB2 3.3.5.20.1: a buffer smaller than the fixed part fails).
pub fn fixed_size(class: u8) -> usize {
    match class {
        class::BASIC => 40,
        class::STANDARD => 24,
        class::INTERNAL => 8,
        class::EA | class::ACCESS | class::MODE | class::ALIGNMENT => 4,
        class::POSITION => 8,
        class::NETWORK_OPEN => 56,
        class::ATTRIBUTE_TAG => 8,
        // The classes ending in a name count one (padded) character of it as fixed,
        // as Windows does (sizeof the structure with FileName[1]; smbtorture
        // smb2.getinfo.qfile_buffercheck): smaller buffers get INFO_LENGTH_MISMATCH,
        // larger but short ones BUFFER_OVERFLOW with the truncated data.
        class::ALL => 104,
        class::STREAM => 32,
        class::COMPRESSION => 16,
        class::ALTERNATE_NAME => 8,
        class::NAME | class::NORMALIZED_NAME => 4,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_fscc() {
        let m = FileMeta::default();
        assert_eq!(basic(&m).len(), 40);
        assert_eq!(standard(&m, false).len(), 24);
        assert_eq!(network_open(&m).len(), 56);
        assert_eq!(all(&m, false, 0, 0, 0, "").len(), 100);
        assert_eq!(dir_entry(class::DIRECTORY, &m, "").unwrap().len(), 64);
        assert_eq!(dir_entry(class::FULL_DIRECTORY, &m, "").unwrap().len(), 68);
        assert_eq!(dir_entry(class::BOTH_DIRECTORY, &m, "").unwrap().len(), 94);
        assert_eq!(
            dir_entry(class::ID_BOTH_DIRECTORY, &m, "").unwrap().len(),
            104
        );
        assert_eq!(
            dir_entry(class::ID_FULL_DIRECTORY, &m, "").unwrap().len(),
            80
        );
        assert_eq!(dir_entry(class::NAMES, &m, "").unwrap().len(), 12);
        assert!(dir_entry(99, &m, "").is_none());
    }
}
