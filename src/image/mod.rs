//! Images: a read-only stack of content-addressed layers, imported from an OCI image layout,
//! an `oci-archive` or a `docker save` tarball into a [`Store`], run with a throw-away layer
//! on top ([`Image::rootfs`], [`Image::container`]), and built step by step ([`build`]).
//!
//! (Feature `image`, on by default.)
//!
//! # The store
//! One directory (see [`Store::open`]):
//!
//! ```text
//! ROOT/lock                       flock: image records and names change under it
//!      blobs/sha256/HEX           manifests, configs and layer blobs as imported (kept for
//!                                 export and for flattening)
//!      layers/FLAVOUR/CHAINHEX/   one committed layer: its tree, whiteouts as overlayfs
//!                                 takes them; keyed by chain id (the layer and all below it)
//!      locks/CHAINHEX             flock: one import unpacks a layer at a time
//!      images/IDHEX.json          one image: its manifest, config and layer chain
//!      names.json                 NAME:TAG -> image id
//!      tmp/                       unpacks in progress, renamed into layers/ when complete
//!                                 (CHAINHEX.* under that layer's lock; pid-PID.* under the
//!                                 gc lock, which imports and builds hold shared)
//! ```
//!
//! A layer is unpacked into `tmp/` and renamed into `layers/` when it is complete, so a
//! killed import leaves no layer that could be used; the next [`Store::open`] that finds no
//! import or build running (they hold the store's gc lock shared) removes what is left in
//! `tmp/`.

pub mod build;
mod compress;
mod config;
mod source;
mod store;
pub mod unpack;

#[doc(hidden)]
pub use compress::bench_layer_stream;
pub use config::ImageCommand;
pub use oci_spec::image::{Config as ImageConfig, Digest, ImageConfiguration};
/// The image archive parsers, for the `image_json` fuzz target (`--cfg fuzzing` only).
#[cfg(fuzzing)]
#[doc(hidden)]
pub use source::fuzzing as source_fuzzing;
pub use source::ImageRef;
pub use store::{GcReport, Image, ImageSummary, Layer, Progress, Store};

/// Which xattr namespace the store's opaque-directory markers are in: overlayfs honours
/// `trusted.overlay.*` or, mounted with `userxattr` (kernel 5.11), `user.overlay.*`, never
/// both in one mount. Whiteouts themselves are 0/0 character devices in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverlayFlavour {
    /// Made by root: `trusted.overlay.opaque` and `user.overlay.opaque` both set, so the
    /// layers serve overlay mounts with and without `userxattr` (a container with a user
    /// namespace mounts with `userxattr`). On a filesystem without `user.*` xattrs (tmpfs
    /// before Linux 6.6) only the first is set, and an image with opaque directories then
    /// refuses a user namespace at spawn ([`crate::Error::Unsupported`]) rather than show
    /// what they hide.
    Trusted,
    /// Made without privilege: `user.overlay.opaque` only; mounted with `userxattr`.
    User,
}

impl OverlayFlavour {
    /// The directory name under `layers/`.
    pub(crate) fn dir_name(self) -> &'static str {
        match self {
            OverlayFlavour::Trusted => "overlay",
            OverlayFlavour::User => "overlay-user",
        }
    }
}
