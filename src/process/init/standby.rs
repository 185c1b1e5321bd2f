//! The request a pool slot's standby process takes, in words both the library and
//! `contain-init` (a `no_std` program that includes this file as its own module) use. `core`
//! only, no allocation.
//!
//! One `SOCK_SEQPACKET` message on the standby's socket (`contain-init ERRFD standby SOCKFD`):
//!
//! - a head of four native-endian `u32`: how many candidate paths, argv strings and
//!   environment strings follow, and which of stdin, stdout and stderr (bits 0, 1, 2) come
//!   as descriptors;
//! - the strings, each ending in a NUL: the paths (tried in order, as `execvp` does), argv,
//!   then the environment;
//! - `SCM_RIGHTS` with the flagged descriptors, stdin's first. A stream not flagged is closed
//!   (the caller's own was closed too).
//!
//! The standby answers on the same socket: nothing (the socket is close-on-exec, so the
//! library reads end-of-file) once the program runs, or the setup report of a failed exec
//! (the library's `child::Report`), after which it exits 127.

/// Bytes in the head.
pub const HEAD: usize = 16;
/// The largest message the standby takes (head and strings); a request that needs more is
/// started without the standby.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The most strings (paths, argv and environment together) in one message.
pub const MAX_STRINGS: usize = 2048;
