//! The FUSE operations, one group per file: names, attributes, file I/O, directories,
//! extended attributes and POSIX locks.

pub mod attr;
pub mod dir;
pub mod entry;
pub mod file;
pub mod lock;
pub mod xattr;
