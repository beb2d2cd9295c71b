//! QUERY_INFO (MS-SMB2 3.3.5.20): file classes (MS-FSCC 2.4), file-system classes
//! (2.5) and a minimal security descriptor (MS-DTYP 2.4.6).

use super::{reader, Outcome, Req};
use crate::server::Server;
use crate::session::{ConnState, Handle, Open};
use crate::vfs::{self, streams};
use crate::wire::info::*;
use crate::wire::{now_filetime, status, string_to_utf16, Put, HEADER_LEN};
use std::sync::Arc;

/// Fixed part of each file-system information class (MS-FSCC 2.5).
fn fs_fixed_size(cls: u8) -> usize {
    match cls {
        // VOLUME and ATTRIBUTE end in a label: like Windows, one padded character of
        // it counts as fixed (smbtorture smb2.getinfo.qfs_buffercheck).
        fsclass::VOLUME => 24,
        fsclass::SIZE => 24,
        fsclass::DEVICE => 8,
        fsclass::ATTRIBUTE => 16,
        fsclass::CONTROL => 48,
        fsclass::FULL_SIZE => 32,
        fsclass::OBJECT_ID => 64,
        fsclass::SECTOR_SIZE => 28,
        _ => 0,
    }
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 41)?;
    let info_type = r.u8(2).map_err(super::wire_err)?;
    let cls = r.u8(3).map_err(super::wire_err)?;
    let max = r.u32(4).map_err(super::wire_err)? as usize;
    let additional = r.u32(16).map_err(super::wire_err)?;
    tracing::trace!(info_type, cls, max, additional, "QUERY_INFO");
    let dialect = st.dialect;
    let o = super::open_mut(st, req, 24)?;
    // MS-SMB2 3.3.5.20.1: reading attributes, EAs or the security descriptor needs the
    // matching right on the handle.
    use crate::wire::create::access;
    let need = match (info_type, cls) {
        (INFO_FILE, class::BASIC | class::ALL | class::NETWORK_OPEN | class::ATTRIBUTE_TAG) => {
            access::READ_ATTRIBUTES
        }
        (INFO_SECURITY, _) if additional & 0x7 != 0 => access::READ_CONTROL,
        _ => 0,
    };
    if need != 0 && o.granted & need == 0 {
        return Err(status::ACCESS_DENIED);
    }
    let (data, variable) = match info_type {
        INFO_FILE => {
            if cls == class::NORMALIZED_NAME && dialect != Some(crate::crypto::Dialect::Smb311) {
                // MS-SMB2 3.3.5.20.1: only 3.1.1 clients may ask for the normalized name;
                // older dialects get STATUS_NOT_SUPPORTED (smbtorture
                // smb2.getinfo.normalized checks this over SMB 3.0).
                return Err(status::NOT_SUPPORTED);
            }
            let r = file_info(srv, o, cls)?;
            // 3.3.5.20.1: a buffer smaller than the class's fixed part is a length mismatch.
            if max < fixed_size(cls) {
                return Err(status::INFO_LENGTH_MISMATCH);
            }
            r
        }
        INFO_FILESYSTEM => {
            let r = fs_info(srv, o, cls)?;
            if max < fs_fixed_size(cls) {
                return Err(status::INFO_LENGTH_MISMATCH);
            }
            r
        }
        INFO_SECURITY => {
            let sd = security_descriptor(o, additional)?;
            if sd.len() > max {
                // 3.3.5.20.3: tell the client how big a buffer to send.
                let mut b = Vec::new();
                b.put_u16(9);
                b.put_u8(0);
                b.put_u8(0);
                b.put_u32(4);
                b.put_u32(sd.len() as u32);
                return Ok(Outcome::Done(status::BUFFER_TOO_SMALL, b));
            }
            (sd, false)
        }
        INFO_QUOTA => return Err(status::NOT_SUPPORTED),
        _ => return Err(status::INVALID_PARAMETER),
    };
    let (st_code, data) = if data.len() > max {
        if !variable {
            return Err(status::INFO_LENGTH_MISMATCH);
        }
        (status::BUFFER_OVERFLOW, data[..max].to_vec())
    } else {
        (status::SUCCESS, data)
    };
    let mut b = Vec::with_capacity(8 + data.len());
    b.put_u16(9);
    b.put_u16((HEADER_LEN + 8) as u16);
    b.put_u32(data.len() as u32);
    if data.is_empty() {
        b.put_u8(0);
    } else {
        b.extend_from_slice(&data);
    }
    Ok(Outcome::Done(st_code, b))
}

/// Metadata of an open: the file's, or for a named stream its own size.
pub fn open_meta(o: &Open) -> Result<FileMeta, u32> {
    let fd = o.handle.fd().ok_or(status::INVALID_HANDLE)?;
    let mut m = vfs::meta_fd(fd).map_err(|e| status::from_io(&e))?;
    if let Handle::Stream { name, .. } = &o.handle {
        let len = streams::read(fd, name).map(|d| d.len() as u64).unwrap_or(0);
        m.size = len;
        m.allocation = len.div_ceil(4096) * 4096;
        m.is_dir = false;
    }
    Ok(m)
}

fn display_name(o: &Open) -> String {
    let mut s = String::from("\\");
    s.push_str(&o.path.parts.join("\\"));
    if let Some(st) = &o.path.stream {
        s.push(':');
        s.push_str(st);
    }
    s
}

fn file_info(srv: &Server, o: &Open, cls: u8) -> Result<(Vec<u8>, bool), u32> {
    let m = open_meta(o)?;
    let delete_pending = srv
        .files()
        .get(&o.file)
        .map(|f| f.delete_pending)
        .unwrap_or(false)
        || o.delete_on_close;
    let mut m = m;
    if delete_pending && !m.is_dir {
        // MS-FSA 2.1.5.11.27: a delete-pending file reports no remaining links.
        m.nlink = m.nlink.saturating_sub(1);
    }
    let mut v = Vec::new();
    let variable = match cls {
        class::BASIC => {
            v = basic(&m);
            false
        }
        class::STANDARD => {
            v = standard(&m, delete_pending);
            false
        }
        class::INTERNAL => {
            v.put_u64(m.index);
            false
        }
        class::EA => {
            v.put_u32(0);
            false
        }
        class::ACCESS => {
            v.put_u32(o.granted);
            false
        }
        class::POSITION => {
            v.put_u64(o.position);
            false
        }
        class::MODE => {
            v.put_u32(o.mode);
            false
        }
        class::ALIGNMENT => {
            v.put_u32(0);
            false
        }
        class::NETWORK_OPEN => {
            v = network_open(&m);
            false
        }
        class::ATTRIBUTE_TAG => {
            v.put_u32(m.attributes);
            v.put_u32(0);
            false
        }
        class::COMPRESSION => {
            v.put_u64(m.size);
            v.put_zeros(8);
            false
        }
        class::ALL => {
            v = all(
                &m,
                delete_pending,
                o.granted,
                o.position,
                o.mode,
                &display_name(o),
            );
            true
        }
        class::NORMALIZED_NAME => {
            // MS-FSCC 2.4.28: the path relative to the share root, empty for the root.
            let name = display_name(o);
            let n = string_to_utf16(name.trim_start_matches('\\'));
            v.put_u32(n.len() as u32);
            v.extend_from_slice(&n);
            true
        }
        class::ALTERNATE_NAME => {
            // The 8.3 name derived from the long name (vfs/short_name.rs), the same
            // one directory listings report.
            let short = o
                .path
                .last()
                .and_then(vfs::short_name::short_name)
                .unwrap_or_default();
            let n = string_to_utf16(&short);
            v.put_u32(n.len() as u32);
            v.extend_from_slice(&n);
            true
        }
        class::NAME => {
            let n = string_to_utf16(&display_name(o));
            v.put_u32(n.len() as u32);
            v.extend_from_slice(&n);
            true
        }
        class::STREAM => {
            v = stream_info(o, &m)?;
            true
        }
        _ => return Err(status::INVALID_INFO_CLASS),
    };
    Ok((v, variable))
}

/// FileStreamInformation (MS-FSCC 2.4.43): "::$DATA" for files, then named streams.
fn stream_info(o: &Open, m: &FileMeta) -> Result<Vec<u8>, u32> {
    let fd = o.handle.fd().ok_or(status::INVALID_HANDLE)?;
    let base = vfs::meta_fd(fd).map_err(|e| status::from_io(&e))?;
    let mut list: Vec<(String, u64, u64)> = Vec::new();
    if !base.is_dir {
        list.push(("::$DATA".into(), base.size, base.allocation));
    }
    for (name, len) in streams::list(fd).map_err(|e| status::from_io(&e))? {
        list.push((format!(":{name}:$DATA"), len, len.div_ceil(4096) * 4096));
    }
    let _ = m;
    let mut v = Vec::new();
    let mut prev: Option<usize> = None;
    for (name, size, alloc) in list {
        let start = v.len().div_ceil(8) * 8;
        v.resize(start, 0);
        if let Some(p) = prev {
            crate::wire::set_u32(&mut v, p, (start - p) as u32);
        }
        let n = string_to_utf16(&name);
        v.put_u32(0);
        v.put_u32(n.len() as u32);
        v.put_u64(size);
        v.put_u64(alloc);
        v.extend_from_slice(&n);
        prev = Some(start);
    }
    Ok(v)
}

fn fs_info(srv: &Server, o: &Open, cls: u8) -> Result<(Vec<u8>, bool), u32> {
    let fd = o.handle.fd().ok_or(status::INVALID_HANDLE)?;
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    if unsafe { libc::fstatvfs(fd, &mut sv) } < 0 {
        return Err(status::from_io(&std::io::Error::last_os_error()));
    }
    let bsize = sv.f_frsize.max(512);
    // Report 4 KiB allocation units of 512-byte sectors scaled from the fs block size.
    let sectors_per_unit = (bsize / 512) as u32;
    let mut v = Vec::new();
    let variable = match cls {
        fsclass::VOLUME => {
            let label = string_to_utf16(&srv.cfg.share_name);
            v.put_u64(now_filetime());
            v.put_u32(sv.f_fsid as u32);
            v.put_u32(label.len() as u32);
            v.put_u8(0);
            v.put_u8(0);
            v.extend_from_slice(&label);
            true
        }
        fsclass::SIZE => {
            v.put_u64(sv.f_blocks);
            v.put_u64(sv.f_bavail);
            v.put_u32(sectors_per_unit);
            v.put_u32(512);
            false
        }
        fsclass::FULL_SIZE => {
            v.put_u64(sv.f_blocks);
            v.put_u64(sv.f_bavail);
            v.put_u64(sv.f_bfree);
            v.put_u32(sectors_per_unit);
            v.put_u32(512);
            false
        }
        fsclass::DEVICE => {
            v.put_u32(0x07); // FILE_DEVICE_DISK
            v.put_u32(0x20); // FILE_DEVICE_IS_MOUNTED
            false
        }
        fsclass::ATTRIBUTE => {
            // CASE_PRESERVED_NAMES | CASE_SENSITIVE_SEARCH | UNICODE_ON_DISK |
            // NAMED_STREAMS (MS-FSCC 2.5.1); read-only volumes say so.
            let mut attrs = 0x0000_0001 | 0x0000_0002 | 0x0000_0004 | 0x0004_0000;
            if srv.cfg.read_only {
                attrs |= 0x0008_0000;
            }
            let name = string_to_utf16("NTFS");
            v.put_u32(attrs);
            v.put_u32(255);
            v.put_u32(name.len() as u32);
            v.extend_from_slice(&name);
            true
        }
        fsclass::SECTOR_SIZE => {
            for _ in 0..4 {
                v.put_u32(512);
            }
            v.put_u32(0); // flags
            v.put_u32(0);
            v.put_u32(0);
            false
        }
        fsclass::CONTROL => {
            // FileFsControlInformation (MS-FSCC 2.5.2): no quotas.
            v.put_zeros(40);
            v.put_u32(0);
            v.put_u32(0);
            false
        }
        fsclass::OBJECT_ID => {
            v.put_zeros(64);
            false
        }
        _ => return Err(status::INVALID_INFO_CLASS),
    };
    Ok((v, variable))
}

fn sid(authority: u8, subs: &[u32]) -> Vec<u8> {
    let mut v = vec![1, subs.len() as u8, 0, 0, 0, 0, 0, authority];
    for s in subs {
        v.put_u32(*s);
    }
    v
}

/// A self-relative security descriptor: owner and group as Samba's Unix SIDs
/// (S-1-22-1-uid, S-1-22-2-gid) and a DACL granting Everyone full access. We do not
/// enforce Windows ACLs; access is the share's and the backing filesystem's.
fn security_descriptor(o: &Open, additional: u32) -> Result<Vec<u8>, u32> {
    const OWNER: u32 = 1;
    const GROUP: u32 = 2;
    const DACL: u32 = 4;
    let fd = o.handle.fd().ok_or(status::INVALID_HANDLE)?;
    let stt = vfs::fstat(fd).map_err(|e| status::from_io(&e))?;
    let mut owner = Vec::new();
    let mut group = Vec::new();
    let mut dacl = Vec::new();
    if additional & OWNER != 0 {
        owner = sid(22, &[1, stt.st_uid]);
    }
    if additional & GROUP != 0 {
        group = sid(22, &[2, stt.st_gid]);
    }
    if additional & DACL != 0 {
        let everyone = sid(1, &[0]);
        let ace_size = 8 + everyone.len();
        dacl.put_u8(2);
        dacl.put_u8(0);
        dacl.put_u16((8 + ace_size) as u16);
        dacl.put_u16(1);
        dacl.put_u16(0);
        dacl.put_u8(0); // ACCESS_ALLOWED_ACE_TYPE
        dacl.put_u8(0);
        dacl.put_u16(ace_size as u16);
        dacl.put_u32(0x001F_01FF);
        dacl.extend_from_slice(&everyone);
    }
    let mut control: u16 = 0x8000; // SE_SELF_RELATIVE
    if !dacl.is_empty() {
        control |= 0x0004; // SE_DACL_PRESENT
    }
    let mut v = Vec::new();
    v.put_u8(1);
    v.put_u8(0);
    v.put_u16(control);
    let mut at = 20u32;
    let mut off = |part: &Vec<u8>| {
        if part.is_empty() {
            0
        } else {
            let o = at;
            at += part.len() as u32;
            o
        }
    };
    let (oo, og, od) = (off(&owner), off(&group), off(&dacl));
    v.put_u32(oo);
    v.put_u32(og);
    v.put_u32(0);
    v.put_u32(od);
    v.extend_from_slice(&owner);
    v.extend_from_slice(&group);
    v.extend_from_slice(&dacl);
    Ok(v)
}
