//! `contain-oci` as a library: the config.json mapping ([`spec`]), shared by the binary and
//! the integration tests (which cannot reach into a binary crate).

pub mod spec;
