//! The layer store. (Being written.)

use std::path::PathBuf;

use super::{Digest, OverlayFlavour};

/// A store of images and layers in one directory; see the [module documentation](super).
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    flavour: OverlayFlavour,
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    id: Digest,
}

/// One layer of an [`Image`].
#[derive(Debug, Clone)]
pub struct Layer {
    diff_id: Digest,
}

/// One line of [`Store::images`].
#[derive(Debug, Clone)]
pub struct ImageSummary {
    id: Digest,
}

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Layer directories removed.
    pub layers: usize,
}

/// Progress of an import or a build, as the callback sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Progress {
    /// Nothing yet.
    Started,
}
