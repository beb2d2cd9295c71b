//! The connections of each client (ClientGuid), in the order they were made, so a
//! lease break goes where the client expects it.
//!
//! MS-SMB2 3.3.4.7 lets the server send a lease break on any connection of the lease's
//! client. Windows sends it on the client's first connection that is still up, even
//! when every open of the lease is on a later one (smbtorture smb2.lease.v2_complex1
//! opens a lease over a second connection of the same client and expects its break on
//! the first); Samba's multichannel code picks the lowest channel the same way.
//! Oplock breaks name a handle, so they stay on the handle's connection.

use super::sink::{ConnLeasing, Route};
use leasefs_leases::LeaseKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Orders connections by when they were made (see `ConnLeasing::seq`).
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.fetch_add(1, Ordering::Relaxed)
}

#[derive(Default)]
pub struct ClientConns {
    by_client: Mutex<HashMap<[u8; 16], Vec<Weak<ConnLeasing>>>>,
}

impl ClientConns {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], Vec<Weak<ConnLeasing>>>> {
        self.by_client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a connection of `client`, forgetting the client's connections that are gone.
    pub fn join(&self, client: [u8; 16], conn: &Arc<ConnLeasing>) {
        let mut m = self.map();
        // Other clients' gone connections are dropped when those clients next join.
        let list = m.entry(client).or_default();
        list.retain(|w| w.upgrade().is_some_and(|c| c.is_live()));
        list.push(Arc::downgrade(conn));
        list.sort_by_key(|w| w.upgrade().map_or(u64::MAX, |c| c.seq()));
    }

    /// The route some live connection of `client` holds for lease `key`: a lease is the
    /// client's, not a connection's, so its epoch and version carry over to an open of
    /// it on another connection (smbtorture smb2.lease.v2_complex1).
    pub fn route(&self, client: &[u8; 16], key: &LeaseKey) -> Option<Route> {
        let conns: Vec<Arc<ConnLeasing>> = {
            let m = self.map();
            m.get(client)?.iter().filter_map(Weak::upgrade).collect()
        };
        conns
            .iter()
            .filter(|c| c.is_live())
            .find_map(|c| c.route(key))
    }

    /// The client's earliest connection that is still up.
    pub fn first_live(&self, client: &[u8; 16]) -> Option<Arc<ConnLeasing>> {
        let m = self.map();
        m.get(client)?
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| c.is_live())
            .min_by_key(|c| c.seq())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn the_first_live_connection_of_a_client_wins() {
        let reg = ClientConns::default();
        let (tx1, rx1) = mpsc::channel(1);
        let (tx2, _rx2) = mpsc::channel(1);
        let (tx3, _rx3) = mpsc::channel(1);
        let c1 = Arc::new(ConnLeasing::new(tx1));
        let c2 = Arc::new(ConnLeasing::new(tx2));
        let other = Arc::new(ConnLeasing::new(tx3));
        // Joining order does not matter, connection order does.
        reg.join([2; 16], &c2);
        reg.join([2; 16], &c1);
        reg.join([3; 16], &other);
        assert!(Arc::ptr_eq(&reg.first_live(&[2; 16]).unwrap(), &c1));
        assert!(Arc::ptr_eq(&reg.first_live(&[3; 16]).unwrap(), &other));
        assert!(reg.first_live(&[4; 16]).is_none());
        // The first connection goes away: the next one takes over.
        drop(rx1);
        assert!(Arc::ptr_eq(&reg.first_live(&[2; 16]).unwrap(), &c2));
    }
}
