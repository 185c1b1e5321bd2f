//! Where images come from: an OCI image layout directory, an `oci-archive` tarball, a
//! `docker save` tarball, or a name in the store. (Interface stub.)

use std::io::Read;
use std::path::PathBuf;

use super::compress::Expected;
use super::{Digest, ImageConfiguration};
use crate::Result;

/// An image reference as the examples and [`Store::import`](super::Store::import) take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// An OCI image layout directory, with an optional tag (`DIR:TAG`, as skopeo's `oci:`
    /// transport names it: the path ends at the first `:`).
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// `org.opencontainers.image.ref.name` (or `io.containerd.image.name`) to pick.
        tag: Option<String>,
    },
    /// A tarball: an `oci-archive` (a tarred layout) or a `docker save` archive
    /// (with `manifest.json`), told apart by content. `FILE:TAG` picks one of several.
    Archive {
        /// The tarball.
        path: PathBuf,
        /// The tag (or `RepoTags` entry) to pick.
        tag: Option<String>,
    },
    /// `NAME[:TAG]` (default tag `latest`) or an image id (`sha256:HEX`, or a unique
    /// prefix of HEX of at least 12 digits) in the store.
    Stored(String),
}

/// One layer of a resolved image.
#[derive(Debug, Clone)]
pub(crate) struct SourceLayer {
    /// What it must be.
    pub expected: Expected,
    /// The descriptor's media type (informational: compression is detected by magic).
    pub media_type: String,
}

/// An image found in a layout or archive: its manifest and config read and verified, its
/// layers not read yet.
pub(crate) struct Resolved {
    /// A name from the source (`RepoTags[0]`, `io.containerd.image.name`, ref.name), if any.
    pub name: Option<String>,
    /// Which manifest of a multi-platform index was picked, and why, for messages.
    pub platform_note: Option<String>,
    /// The manifest as stored (for docker-save: an OCI manifest we wrote for it).
    pub manifest: Vec<u8>,
    /// The config as stored; its sha256 is the image id.
    pub config: Vec<u8>,
    /// The config, parsed.
    pub config_parsed: ImageConfiguration,
    /// Bottom layer first, as in the manifest.
    pub layers: Vec<SourceLayer>,
    /// Where the blobs are.
    _source: (),
}

impl Resolved {
    /// Resolves `r` (not [`ImageRef::Stored`]).
    pub(crate) fn open(r: &ImageRef) -> Result<Resolved> {
        let _ = r;
        unimplemented!()
    }

    /// The raw bytes of layer `i` as stored (compressed or not), bounded to the blob.
    /// Callable from several threads at once.
    pub(crate) fn open_layer(&self, i: usize) -> Result<Box<dyn Read + Send + '_>> {
        let _ = i;
        unimplemented!()
    }

    /// The manifest to keep in the store, given the digests of the layer blobs as read
    /// (bottom first): the source's own bytes when it has a manifest, else (docker-save) an
    /// OCI manifest written for it.
    pub(crate) fn manifest_for(&self, digests: &[Digest]) -> Result<Vec<u8>> {
        let _ = digests;
        unimplemented!()
    }

    /// The image id: the config's digest.
    pub(crate) fn config_digest(&self) -> Digest {
        unimplemented!()
    }
}
