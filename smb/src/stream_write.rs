//! Large plain WRITEs are written to the file while their payload still arrives.
//!
//! Clients such as smbclient keep one 8 MiB WRITE in flight at a time, so a server
//! that receives the whole message before writing it spends the network transfer and
//! the page-cache copy one after the other on every request. Here the connection's
//! frame reader hands over the header and the fixed part of such a WRITE
//! (MS-SMB2 2.2.21) as soon as they are in, and then the payload in pieces; the WRITE
//! handler does every check first (open, access, byte-range locks, lease breaks;
//! MS-SMB2 3.3.5.13) and then writes each piece as it comes.
//!
//! Only a message that needs no whole-message work qualifies: plaintext (an encrypted
//! message is authenticated as a whole, 3.3.5.2.1.1), unsigned (a signature covers the
//! whole message and must be checked before anything is written, 3.3.5.2.4), alone in
//! its frame (no compound, 3.3.5.2.7), with the data right after the fixed part and
//! filling the rest of the frame. Everything else is read whole, as before.
//! Requests are still handled one at a time in arrival order: the next frame is not
//! read until the last piece of this one has been.

use crate::wire::{cmd, Reader, FLAGS_RELATED_OPERATIONS, FLAGS_SIGNED, HEADER_LEN, PROTOCOL_ID};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// SMB2 header plus the fixed part of a WRITE request (StructureSize 49, 48 bytes
/// before the buffer).
pub const HEAD: usize = HEADER_LEN + 48;
/// Smaller messages are read whole: there is little transfer to overlap with.
pub const STREAM_MIN: usize = 1 << 20;
/// Bytes per piece handed from the reader to the handler.
pub const PIECE: usize = 1 << 20;
/// Pieces the reader may be ahead of the handler (bounds memory per connection).
pub const PIECES_AHEAD: usize = 4;

/// Whether a frame of `frame_len` bytes starting with `head` (HEAD bytes) is a WRITE
/// whose payload can be written as it arrives.
pub fn streamable(head: &[u8], frame_len: usize) -> bool {
    let r = Reader::new(head);
    let ok = || -> Result<bool, crate::wire::WireError> {
        let flags = r.u32(16)?;
        Ok(r.bytes(0, 4)? == PROTOCOL_ID
            && r.u16(4)? == HEADER_LEN as u16
            && r.u16(12)? == cmd::WRITE
            && flags & (FLAGS_SIGNED | FLAGS_RELATED_OPERATIONS) == 0
            && r.u32(20)? == 0
            && r.u16(HEADER_LEN)? == 49
            && r.u16(HEADER_LEN + 2)? as usize == HEAD
            && r.u32(HEADER_LEN + 4)? as usize == frame_len - HEAD)
    };
    frame_len > HEAD && ok().unwrap_or(false)
}

/// The payload of a streamed WRITE: `len` bytes arriving in pieces, in order.
pub struct Payload {
    len: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    rx: mpsc::Receiver<Vec<u8>>,
    left: usize,
    /// Consumed pieces go back to the reader, which reuses them rather than faulting
    /// in fresh memory for every MiB.
    free: mpsc::Sender<Vec<u8>>,
}

impl Payload {
    pub fn new(rx: mpsc::Receiver<Vec<u8>>, len: usize, free: mpsc::Sender<Vec<u8>>) -> Self {
        Payload {
            len,
            inner: Mutex::new(Inner {
                rx,
                left: len,
                free,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the payload at `offset` piece by piece. On a failed write the rest is
    /// still consumed, so the connection stays in step with its frames.
    pub fn write_at(&self, f: &File, offset: u64) -> io::Result<()> {
        let mut at = offset;
        let mut result = Ok(());
        self.each(|piece| {
            if result.is_ok() {
                result = f.write_all_at(piece, at);
            }
            at += piece.len() as u64;
        })?;
        result
    }

    /// The whole payload in memory (alternate data streams are rewritten whole).
    pub fn collect(&self) -> io::Result<Vec<u8>> {
        let mut all = Vec::with_capacity(self.len);
        self.each(|piece| all.extend_from_slice(piece))?;
        Ok(all)
    }

    /// Consumes whatever the handler did not (a WRITE refused before writing).
    pub fn drain(&self) -> io::Result<()> {
        self.each(|_| {})
    }

    /// Runs on the connection's task under `block_in_place`, where waiting for the
    /// reader task is allowed.
    fn each(&self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let handle = tokio::runtime::Handle::current();
        while inner.left > 0 {
            // None: the reader stopped (connection lost or idle) mid-message.
            let piece = handle
                .block_on(inner.rx.recv())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            let n = piece.len().min(inner.left);
            inner.left -= n;
            f(&piece[..n]);
            let _ = inner.free.try_send(piece);
        }
        Ok(())
    }
}
