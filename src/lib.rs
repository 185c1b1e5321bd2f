// The crate's front page is the README: what the crate is, the library example (a doctest
// that CI runs, so the README's example cannot break), the module map and how `spawn` works.
#![doc = include_str!("../README.md")]
//!
//! # Conventions
//!
//! **Builders take and return values.** Every builder of the crate ([`process::Container`],
//! [`rootfs::Rootfs`], [`mount::Mount`], [`cgroup::Resources`], [`cgroup::CgroupBuilder`],
//! [`net::VethConfig`], ...) is plain data whose setters take `self` and return `Self`, marked
//! `#[must_use]`: a forgotten `c.arg(x);` is a compiler warning, not a setting silently lost.
//! One style, so that
//! - values nest in one expression: a `Mount` into a `Rootfs` into a `Container`;
//! - a setting that depends on something reads `c = c.hostname(h)`, and a helper that adds
//!   settings takes a `Container` and returns it;
//! - the terminal call borrows: [`Container::spawn`](process::Container::spawn) takes `&self`,
//!   so one configured container is spawned as often as wanted, as std's `thread::Builder`
//!   and clap's `Command` are used.
//!
//! ```no_run
//! use contain::mount::Mount;
//! use contain::namespace::Namespaces;
//! use contain::process::Container;
//! use contain::rootfs::Rootfs;
//! use contain::Bytes;
//!
//! let mut c = Container::new("/bin/ls")
//!     .namespaces(Namespaces::all())
//!     .rootfs(Rootfs::new("/srv/images/alpine").mount(Mount::tmpfs("/tmp").size(Bytes::mib(8))));
//! if std::env::var_os("DEBUG").is_some() {
//!     c = c.arg("-la");
//! }
//! let first = c.spawn()?.wait()?;
//! let second = c.spawn()?.wait()?; // the same settings, a new process
//! # Ok::<(), contain::Error>(())
//! ```
//!
//! **Sizes are [`Bytes`].** Every size the crate takes or reports (memory limits, a tmpfs's
//! size, `/dev/shm`, peak memory) is a [`Bytes`] (`Bytes::mib(64)`), and a limit that may be
//! "no limit" is a [`Max`] (`Max::Unlimited`, or any `Bytes`, which converts). Sizes given as
//! text parse with `"1.5g".parse::<Bytes>()`, which takes docker's and the kernel's forms
//! (see [`Bytes`]).
#![deny(unsafe_op_in_unsafe_fn)]
// A doctest that drops a builder's result (`c.arg(x);`) fails, as `-D warnings` makes it fail
// in code.
#![doc(test(attr(deny(unused_must_use))))]
#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc, clippy::missing_panics_doc)]

pub mod cgroup;
mod errno;
pub mod error;
pub mod idmap;
#[cfg(feature = "image")]
pub mod image;
pub mod mount;
pub mod mountinfo;
pub mod namespace;
pub mod net;
mod pid;
pub mod pool;
pub mod process;
pub mod rootfs;
pub mod security;
mod signal;
pub(crate) mod sys;

pub use cgroup::{Bytes, Max};
pub use errno::Errno;
pub use error::{Error, ExecFailure, ExecTarget, ImageErrorKind, Result, SetupStage};
pub use pid::Pid;
pub use signal::Signal;
