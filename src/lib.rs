//! `contain`: Linux container primitives.
//!
//! Namespaces, id maps, mounts, `pivot_root` and cgroup v2 as safe builders, and a process layer
//! that composes them: `clone3` straight into new namespaces with a pidfd handle.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc, clippy::missing_panics_doc)]

pub mod cgroup;
mod errno;
pub mod error;
pub mod idmap;
pub mod mount;
pub mod mountinfo;
pub mod namespace;
pub mod net;
mod pid;
pub mod process;
pub mod rootfs;
pub mod security;
mod signal;
pub(crate) mod sys;

pub use errno::Errno;
pub use error::{Error, ExecFailure, ExecTarget, Result, SetupStage};
pub use pid::Pid;
pub use signal::Signal;
