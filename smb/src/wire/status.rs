//! NTSTATUS values we return (MS-ERREF 2.3.1).
#![allow(dead_code)]

pub const SUCCESS: u32 = 0x0000_0000;
pub const PENDING: u32 = 0x0000_0103;
pub const NOTIFY_CLEANUP: u32 = 0x0000_010B;
pub const NOTIFY_ENUM_DIR: u32 = 0x0000_010C;
pub const BUFFER_OVERFLOW: u32 = 0x8000_0005;
pub const NO_MORE_FILES: u32 = 0x8000_0006;
pub const UNSUCCESSFUL: u32 = 0xC000_0001;
pub const NOT_IMPLEMENTED: u32 = 0xC000_0002;
pub const INVALID_INFO_CLASS: u32 = 0xC000_0003;
pub const INFO_LENGTH_MISMATCH: u32 = 0xC000_0004;
pub const INVALID_HANDLE: u32 = 0xC000_0008;
pub const INVALID_PARAMETER: u32 = 0xC000_000D;
pub const NO_SUCH_FILE: u32 = 0xC000_000F;
pub const INVALID_DEVICE_REQUEST: u32 = 0xC000_0010;
pub const END_OF_FILE: u32 = 0xC000_0011;
pub const MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
pub const ACCESS_DENIED: u32 = 0xC000_0022;
pub const BUFFER_TOO_SMALL: u32 = 0xC000_0023;
pub const OBJECT_NAME_INVALID: u32 = 0xC000_0033;
pub const OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
pub const OBJECT_NAME_COLLISION: u32 = 0xC000_0035;
pub const OBJECT_PATH_INVALID: u32 = 0xC000_0039;
pub const OBJECT_PATH_NOT_FOUND: u32 = 0xC000_003A;
pub const OBJECT_PATH_SYNTAX_BAD: u32 = 0xC000_003B;
pub const SHARING_VIOLATION: u32 = 0xC000_0043;
pub const EAS_NOT_SUPPORTED: u32 = 0xC000_004F;
pub const FILE_LOCK_CONFLICT: u32 = 0xC000_0054;
pub const LOCK_NOT_GRANTED: u32 = 0xC000_0055;
pub const DELETE_PENDING: u32 = 0xC000_0056;
pub const LOGON_FAILURE: u32 = 0xC000_006D;
pub const RANGE_NOT_LOCKED: u32 = 0xC000_007E;
pub const DISK_FULL: u32 = 0xC000_007F;
pub const INSUFFICIENT_RESOURCES: u32 = 0xC000_009A;
pub const MEDIA_WRITE_PROTECTED: u32 = 0xC000_00A2;
pub const FILE_IS_A_DIRECTORY: u32 = 0xC000_00BA;
pub const NOT_SUPPORTED: u32 = 0xC000_00BB;
pub const NETWORK_NAME_DELETED: u32 = 0xC000_00C9;
pub const BAD_NETWORK_NAME: u32 = 0xC000_00CC;
pub const REQUEST_NOT_ACCEPTED: u32 = 0xC000_00D0;
pub const NOT_SAME_DEVICE: u32 = 0xC000_00D4;
pub const DIRECTORY_NOT_EMPTY: u32 = 0xC000_0101;
pub const NOT_A_DIRECTORY: u32 = 0xC000_0103;
pub const CANCELLED: u32 = 0xC000_0120;
pub const INTERNAL_ERROR: u32 = 0xC000_00E5;
pub const CANNOT_DELETE: u32 = 0xC000_0121;
pub const FILE_CLOSED: u32 = 0xC000_0128;
pub const FS_DRIVER_REQUIRED: u32 = 0xC000_019C;
pub const USER_SESSION_DELETED: u32 = 0xC000_0203;
pub const NOT_FOUND: u32 = 0xC000_0225;
pub const NETWORK_SESSION_EXPIRED: u32 = 0xC000_035C;
pub const STOPPED_ON_SYMLINK: u32 = 0x8000_002D;
pub const INVALID_LOCK_RANGE: u32 = 0xC000_01A1;
pub const FILE_NOT_AVAILABLE: u32 = 0xC000_0467;
pub const INVALID_OPLOCK_PROTOCOL: u32 = 0xC000_00E3;
pub const ACCESS_DENIED_GUEST: u32 = ACCESS_DENIED;

/// errno from the backing filesystem to the NTSTATUS a Windows server would send for
/// the same condition (MS-FSA 2.1.5 failure cases).
pub fn from_errno(e: i32) -> u32 {
    match e {
        libc::ENOENT => OBJECT_NAME_NOT_FOUND,
        libc::ENOTDIR => OBJECT_PATH_NOT_FOUND,
        libc::EEXIST => OBJECT_NAME_COLLISION,
        libc::EACCES | libc::EPERM => ACCESS_DENIED,
        libc::EXDEV => ACCESS_DENIED, // RESOLVE_BENEATH escape attempt
        libc::ELOOP => ACCESS_DENIED, // symlink loop or escape
        libc::ENOTEMPTY => DIRECTORY_NOT_EMPTY,
        libc::EISDIR => FILE_IS_A_DIRECTORY,
        libc::ENOSPC | libc::EDQUOT => DISK_FULL,
        libc::EROFS => MEDIA_WRITE_PROTECTED,
        libc::ENAMETOOLONG => OBJECT_NAME_INVALID,
        libc::EINVAL => INVALID_PARAMETER,
        libc::EBADF => INVALID_HANDLE,
        libc::ENODATA => OBJECT_NAME_NOT_FOUND,
        libc::E2BIG | libc::ERANGE => DISK_FULL,
        libc::EMFILE | libc::ENFILE | libc::ENOMEM => INSUFFICIENT_RESOURCES,
        _ => UNSUCCESSFUL,
    }
}

pub fn from_io(e: &std::io::Error) -> u32 {
    e.raw_os_error().map(from_errno).unwrap_or(UNSUCCESSFUL)
}
