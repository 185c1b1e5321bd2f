//! Building images from a Containerfile subset: each RUN runs in a container of this crate
//! whose overlay upper directory becomes the new layer.
//!
//! The pieces that do not need the store:
//! - [`containerfile`]: parse the Containerfile and resolve its steps (variables, WORKDIR,
//!   the environment of each RUN, cache keys);
//! - [`diff`]: an overlay upper directory as a deterministic layer tar (whiteouts, opaque
//!   directories, hard links, xattrs), with its diff_id;
//! - [`layout`]: the manifest and config of a new image, gzip layer blobs, and writing an
//!   OCI image layout directory or an `oci-archive` that skopeo and umoci read.

mod builder;
pub mod containerfile;
mod copy;
pub mod diff;
pub mod layout;

pub(crate) use builder::TempDir;
pub use builder::{BuildEvent, BuildOptions};
