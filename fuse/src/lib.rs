//! Passthrough FUSE filesystem over a backing directory (see issue 3).
