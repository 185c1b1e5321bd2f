//! Layer streams: compression detected by magic bytes, sha256 and size checked while
//! streaming (digest over the bytes as stored, diff_id over the uncompressed tar).
//! (Interface stub: implemented by the source/verify work.)

use std::io::{Read, Write};

use super::Digest;
use crate::Result;

/// What a layer blob is compressed with, from its first bytes (not its media type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// `1f 8b`.
    Gzip,
    /// `28 b5 2f fd`, or a skippable frame first.
    Zstd,
    /// Anything else: a plain tar.
    None,
}

/// What a layer blob must be.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    /// Digest of the blob as stored (`None`: not known, e.g. a docker-save legacy layer,
    /// whose file name is no digest).
    pub digest: Option<Digest>,
    /// The descriptor's size in bytes, when there is one.
    pub size: Option<u64>,
    /// The config's `rootfs.diff_ids[i]`.
    pub diff_id: Digest,
    /// For messages: `layer sha256:...`.
    pub object: String,
}

/// A layer blob read once: raw bytes hashed (and copied to `tee`, if any), decompressed,
/// the tar hashed. `Read` yields the uncompressed tar.
pub(crate) struct LayerStream<'a> {
    _p: std::marker::PhantomData<&'a ()>,
}

impl<'a> LayerStream<'a> {
    /// Starts reading `raw` (the blob as stored).
    pub(crate) fn new(
        raw: Box<dyn Read + Send + 'a>,
        expected: Expected,
        tee: Option<&'a mut (dyn Write + Send)>,
    ) -> Result<LayerStream<'a>> {
        let _ = (raw, expected, tee);
        unimplemented!()
    }

    /// The compression found.
    pub(crate) fn compression(&self) -> Compression {
        unimplemented!()
    }

    /// Raw bytes read so far (for progress).
    pub(crate) fn raw_bytes(&self) -> u64 {
        unimplemented!()
    }

    /// Drains both streams to EOF, then checks size, digest and diff_id. Returns the
    /// blob's digest (computed) and size.
    pub(crate) fn finish(self) -> Result<(Digest, u64)> {
        unimplemented!()
    }
}

impl Read for LayerStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let _ = buf;
        unimplemented!()
    }
}
