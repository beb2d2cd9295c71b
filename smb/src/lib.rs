//! SMB2/3 server front end (see issue 4).
