//! Applying a layer's tar to an empty layer directory: every write with `*at` calls under
//! `openat2(RESOLVE_IN_ROOT)`, whiteouts turned into overlayfs whiteouts. (Interface stub.)

use std::io::Read;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::OverlayFlavour;
use crate::Result;

/// How a layer is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Apply {
    /// Into its own empty directory, one overlay lower: `.wh.X` becomes a 0/0 character
    /// device, `.wh..wh..opq` the opaque xattr(s) of the flavour.
    Layer(OverlayFlavour),
    /// Onto a directory that already holds the layers below (flattening): `.wh.X` removes X,
    /// `.wh..wh..opq` removes what the directory held before this layer.
    Flatten,
}

/// Options of [`unpack`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnpackOptions {
    /// How whiteouts are applied.
    pub apply: Apply,
    /// Set owners from the headers (`lchown`, needs root); otherwise files keep the
    /// caller's ids (rootless), and device nodes are skipped and counted.
    pub chown: bool,
}

/// What an unpack did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UnpackStats {
    /// Entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Device nodes not created (rootless).
    pub devices_skipped: u64,
    /// `*.overlay.*` xattrs dropped.
    pub overlay_xattrs_stripped: u64,
    /// Hard links whose target was in a lower layer (copied up).
    pub hardlinks_copied: u64,
}

/// The layers below, top first, opened on first need (only a hard link into a lower layer
/// needs them; the caller may have to wait for them to be committed).
pub(crate) type Lowers<'a> = &'a mut dyn FnMut() -> Result<Vec<OwnedFd>>;

/// Applies the tar read from `tar` (uncompressed) to `dir`; reads `tar` to EOF. Errors name
/// the entry ([`crate::Error::Image`] with `entry`; `object` is left empty for the caller).
pub(crate) fn unpack(
    tar: &mut dyn Read,
    dir: BorrowedFd<'_>,
    lowers: Lowers<'_>,
    opts: UnpackOptions,
) -> Result<UnpackStats> {
    let _ = (tar, dir, lowers, opts);
    unimplemented!()
}
