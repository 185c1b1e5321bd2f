//! `contain`: Linux container primitives.
//!
//! Namespaces, id maps, mounts, `pivot_root` and cgroup v2 as safe builders, and a process layer
//! that composes them: `clone3` straight into new namespaces with a pidfd handle.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod cgroup;
pub mod error;
pub mod idmap;
pub mod mount;
pub mod mountinfo;
pub mod namespace;
pub mod net;
pub mod process;
pub mod rootfs;
pub mod security;
pub(crate) mod sys;

pub use cgroup::{Bytes, Max};
pub use error::{Errno, Error, Result, SetupStage};
