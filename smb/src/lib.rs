//! SMB2/3 server front end (see issue 4).
pub mod auth;
pub mod crypto;
