//! Layer streams: compression detected by magic bytes, sha256 and size checked while
//! streaming (digest over the bytes as stored, diff_id over the uncompressed tar).
//!
//! One pass over the blob: the raw bytes are counted, hashed and copied to the caller's `tee`
//! (the store keeps the blob) as the decompressor pulls them through a 1 MiB buffer; what the
//! decompressor yields is hashed again (the diff_id) on its way to the caller (a plain tar
//! is hashed once: its digest is its diff_id, the tar stream being the raw stream). The
//! compression is told by the first bytes, not by the media type (docker-save archives label
//! layers inconsistently): gzip `1f 8b`, zstd `28 b5 2f fd` or a skippable frame
//! `5X 2a 4d 18` first (RFC 8878 §3.1.2), anything else a plain tar.
//!
//! Trailing data counts: [`LayerStream::finish`] reads the tar stream to its end after the
//! end-of-archive blocks (GNU tar pads to 10 KiB records) and the raw blob to its end after
//! the last gzip member (some generators append zero bytes there; umoci 0.4.7 reads them
//! too), so both digests cover every byte. A blob is never read past its descriptor's size
//! plus one byte: a longer one is a [`SizeMismatch`](crate::ImageErrorKind::SizeMismatch)
//! found without reading it all.

// Used by the store (being written on another branch).

use std::io::{self, BufRead, Read, Write};

use sha2::{Digest as _, Sha256};

use super::Digest;
use crate::error::io_errno;
use crate::{Error, ImageErrorKind, Result};

/// The raw read buffer: large reads keep the per-call overhead of the inflater and of sha256
/// negligible.
const RAW_BUF: usize = 1 << 20;

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

impl Compression {
    /// The compression of a blob that starts with `head` (at least 4 bytes unless the blob is
    /// shorter).
    pub(crate) fn detect(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            // A skippable frame: magic 0x184D2A50..=0x184D2A5F, little endian.
            [b, 0x2a, 0x4d, 0x18, ..] if b & 0xf0 == 0x50 => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// `gzip`, `zstd` or `tar`, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "tar",
        }
    }

    /// The OCI layer media type for a blob of this compression.
    pub(crate) fn layer_media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
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

/// `sha256:HEX` of a finished hash.
pub(crate) fn sha256_digest(h: Sha256) -> Digest {
    digest_from_bytes(&h.finalize())
}

/// `sha256:HEX` of 32 bytes.
pub(crate) fn digest_from_bytes(bytes: &[u8]) -> Digest {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(7 + 2 * bytes.len());
    s.push_str("sha256:");
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    // 64 lowercase hex digits after `sha256:` always parse.
    Digest::try_from(s).unwrap_or_else(|_| unreachable!("a sha256 digest in lowercase hex"))
}

/// `sha256:HEX` of `bytes`.
pub(crate) fn sha256_of(bytes: &[u8]) -> Digest {
    digest_from_bytes(&Sha256::digest(bytes))
}

/// The raw blob: counted, hashed and copied to the tee as it is read, never read past
/// `limit` bytes.
struct RawHasher<'a> {
    inner: Box<dyn Read + Send + 'a>,
    /// The descriptor's size plus one: reading that many bytes proves the blob too long.
    limit: Option<u64>,
    sha: Sha256,
    count: u64,
    tee: Option<&'a mut (dyn Write + Send)>,
    /// The first fault (a blob longer than its size, a failed tee write): returned by every
    /// later read and by `finish`.
    fault: Option<Error>,
    object: String,
    size: Option<u64>,
}

impl RawHasher<'_> {
    fn faulted(&self) -> Option<io::Error> {
        self.fault
            .as_ref()
            .map(|e| io::Error::new(io::ErrorKind::InvalidData, e.clone()))
    }
}

impl Read for RawHasher<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.faulted() {
            return Err(e);
        }
        let want = match self.limit {
            Some(limit) => (limit.saturating_sub(self.count)).min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        if want == 0 && !buf.is_empty() {
            // `limit` bytes read: one more than the descriptor's size.
            self.fault = Some(Error::image(
                ImageErrorKind::SizeMismatch,
                self.object.clone(),
                format!(
                    "the blob is longer than its descriptor's size of {} bytes",
                    self.size.unwrap_or(0)
                ),
            ));
            return Err(self.faulted().unwrap_or_else(|| io::Error::other("size")));
        }
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let got = &buf[..n];
        self.sha.update(got);
        self.count += n as u64;
        if let Some(tee) = self.tee.as_mut() {
            if let Err(e) = tee.write_all(got) {
                self.fault = Some(Error::sys("write", io_errno(&e)));
                return Err(e);
            }
        }
        Ok(n)
    }
}

/// A plain read buffer that can also guarantee a few bytes ahead ([`Buf::peek`]), which
/// `BufReader` cannot when its buffer is nearly used up: telling the next gzip member from
/// trailing bytes needs two.
struct Buf<'a> {
    inner: RawHasher<'a>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl<'a> Buf<'a> {
    fn new(inner: RawHasher<'a>) -> Buf<'a> {
        Buf {
            inner,
            buf: vec![0; RAW_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// Up to `n` (small) bytes ahead, fewer only at EOF; consumes nothing.
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.pos < n {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            while self.end < n {
                let r = self.inner.read(&mut self.buf[self.end..])?;
                if r == 0 {
                    break;
                }
                self.end += r;
            }
        }
        Ok(&self.buf[self.pos..self.end.min(self.pos + n)])
    }
}

impl Read for Buf<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // A large read with nothing buffered bypasses the copy.
        if self.pos == self.end && out.len() >= self.buf.len() {
            return self.inner.read(out);
        }
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Buf<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
    }
}

/// The decompressor in use.
enum Decoder<'a> {
    Plain(Buf<'a>),
    Gzip(Box<flate2::bufread::GzDecoder<Buf<'a>>>),
    /// After the last gzip member: what follows is not gzip, it is only hashed.
    Trailing(Buf<'a>),
    Zstd(zstd::stream::read::Decoder<'static, Buf<'a>>),
    /// Transient, while a gzip member is swapped for the next.
    Swapping,
}

impl<'a> Decoder<'a> {
    fn buf(&mut self) -> Option<&mut Buf<'a>> {
        match self {
            Decoder::Plain(b) | Decoder::Trailing(b) => Some(b),
            Decoder::Gzip(d) => Some(d.get_mut()),
            Decoder::Zstd(d) => Some(d.get_mut()),
            Decoder::Swapping => None,
        }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self {
                Decoder::Plain(b) => return b.read(out),
                Decoder::Trailing(_) | Decoder::Swapping => return Ok(0),
                Decoder::Zstd(d) => return d.read(out),
                Decoder::Gzip(d) => {
                    let n = d.read(out)?;
                    if n > 0 || out.is_empty() {
                        return Ok(n);
                    }
                    // One member done: another one follows (multi-member gzip, RFC 1952
                    // §2.2), or trailing bytes that only count in the digest.
                    let Decoder::Gzip(d) = std::mem::replace(self, Decoder::Swapping) else {
                        return Ok(0);
                    };
                    let mut b = (*d).into_inner();
                    let more = b.peek(2).map(|next| next == [0x1f, 0x8b]);
                    *self = if matches!(more, Ok(true)) {
                        Decoder::Gzip(Box::new(flate2::bufread::GzDecoder::new(b)))
                    } else {
                        Decoder::Trailing(b)
                    };
                    more?;
                }
            }
        }
    }
}

/// A layer blob read once: raw bytes hashed (and copied to `tee`, if any), decompressed,
/// the tar hashed. `Read` yields the uncompressed tar.
///
/// If a read fails (the unpacker then stops), call [`finish`](LayerStream::finish) anyway:
/// it reports the cause behind a decompression error (a blob too long or too short, or not
/// the bytes its digest names) before the decompression error itself.
pub(crate) struct LayerStream<'a> {
    dec: Decoder<'a>,
    compression: Compression,
    diff: Sha256,
    tar_bytes: u64,
    /// The first error the decompressor returned, in words.
    decode_error: Option<String>,
    expected: Expected,
}

impl<'a> LayerStream<'a> {
    /// Starts reading `raw` (the blob as stored): reads its first bytes to tell the
    /// compression.
    ///
    /// # Errors
    /// A read error on `raw` or on the tee ([`Error::Sys`]); a blob longer than
    /// `expected.size` in its first bytes ([`ImageErrorKind::SizeMismatch`]); a zstd decoder
    /// that cannot be set up.
    pub(crate) fn new(
        raw: Box<dyn Read + Send + 'a>,
        expected: Expected,
        tee: Option<&'a mut (dyn Write + Send)>,
    ) -> Result<LayerStream<'a>> {
        let hasher = RawHasher {
            inner: raw,
            limit: expected.size.map(|s| s.saturating_add(1)),
            sha: Sha256::new(),
            count: 0,
            tee,
            fault: None,
            object: expected.object.clone(),
            size: expected.size,
        };
        let mut buf = Buf::new(hasher);
        let compression = match buf.peek(4) {
            Ok(head) => Compression::detect(head),
            Err(e) => return Err(Self::io_fault(&buf.inner, &expected, &e)),
        };
        let dec = match compression {
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::GzDecoder::new(buf))),
            Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(buf) {
                Ok(d) => Decoder::Zstd(d),
                Err(e) => {
                    return Err(Error::image(
                        ImageErrorKind::Malformed,
                        expected.object,
                        format!("zstd decoder: {e}"),
                    ))
                }
            },
            Compression::None => Decoder::Plain(buf),
        };
        Ok(LayerStream {
            dec,
            compression,
            diff: Sha256::new(),
            tar_bytes: 0,
            decode_error: None,
            expected,
        })
    }

    /// The typed error behind an I/O error of the raw side.
    fn io_fault(raw: &RawHasher<'_>, expected: &Expected, e: &io::Error) -> Error {
        match &raw.fault {
            Some(f) => f.clone(),
            None => Error::image(
                ImageErrorKind::Malformed,
                expected.object.clone(),
                format!("reading the blob: {e}"),
            ),
        }
    }

    /// The compression found.
    pub(crate) fn compression(&self) -> Compression {
        self.compression
    }

    /// Drains both streams to EOF, then checks size, digest and diff_id. Returns the
    /// blob's digest (computed) and size.
    ///
    /// # Errors
    /// In this order: a failed read of the blob or write to the tee ([`Error::Sys`]);
    /// [`ImageErrorKind::SizeMismatch`] (longer or shorter than `expected.size`);
    /// [`ImageErrorKind::DigestMismatch`] for the blob digest; [`ImageErrorKind::Malformed`]
    /// for a compressed stream that does not decompress; `DigestMismatch` for the diff_id.
    /// Each names the expected and the actual value.
    pub(crate) fn finish(mut self) -> Result<(Digest, u64)> {
        let mut scratch = vec![0u8; RAW_BUF];
        if self.decode_error.is_none() {
            loop {
                match self.read(&mut scratch) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        let object = self.expected.object.clone();
        let Some(buf) = self.dec.buf() else {
            return Err(Error::image(
                ImageErrorKind::Malformed,
                object,
                "the gzip stream ended in an inconsistent state",
            ));
        };
        // The raw side to its end (what the decompressor did not need, after an error too).
        let raw = &mut buf.inner;
        let mut read_error = None;
        while raw.fault.is_none() {
            match raw.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if raw.fault.is_none() => {
                    read_error = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        if let Some(f) = raw.fault.take() {
            return Err(f);
        }
        if let Some(e) = read_error {
            return Err(Error::sys("read", io_errno(&e)));
        }
        let size = raw.count;
        let digest = sha256_digest(std::mem::take(&mut raw.sha));
        if let Some(want) = self.expected.size {
            if want != size {
                return Err(Error::image(
                    ImageErrorKind::SizeMismatch,
                    object,
                    format!("expected {want} bytes, the blob has {size}"),
                ));
            }
        }
        if let Some(want) = &self.expected.digest {
            if *want != digest {
                return Err(Error::image(
                    ImageErrorKind::DigestMismatch,
                    object,
                    format!("expected digest {want}, the blob hashes to {digest}"),
                ));
            }
        }
        if let Some(e) = self.decode_error.take() {
            return Err(Error::image(
                ImageErrorKind::Malformed,
                object,
                format!("{} stream: {e}", self.compression.name()),
            ));
        }
        let diff_id = if self.compression == Compression::None {
            digest.clone()
        } else {
            sha256_digest(std::mem::take(&mut self.diff))
        };
        if diff_id != self.expected.diff_id {
            return Err(Error::image(
                ImageErrorKind::DigestMismatch,
                object,
                format!(
                    "expected diff_id {}, the uncompressed tar hashes to {diff_id}",
                    self.expected.diff_id
                ),
            ));
        }
        Ok((digest, size))
    }
}

impl Read for LayerStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.decode_error {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        match self.dec.read(buf) {
            Ok(n) => {
                // A plain blob is its own tar: its digest is its diff_id, hashed once.
                if self.compression != Compression::None {
                    self.diff.update(&buf[..n]);
                }
                self.tar_bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                // A fault of the raw side (size, tee) is returned as it is; anything else is
                // the decompressor's and stays recorded.
                let raw_fault = self.dec.buf().is_some_and(|b| b.inner.fault.is_some());
                if !raw_fault && e.kind() != io::ErrorKind::Interrupted {
                    self.decode_error = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

/// Benchmark hook (`benches/image.rs`): streams `raw` through a [`LayerStream`] to its end,
/// as an import does (the tar side read in 1 MiB chunks), checks the diff_id, and returns
/// the blob digest. Not a stable API.
#[doc(hidden)]
pub fn bench_layer_stream(raw: &[u8], diff_id: &str) -> Result<String> {
    let diff_id = Digest::try_from(diff_id)
        .map_err(|e| Error::image(ImageErrorKind::Malformed, diff_id, e.to_string()))?;
    let expected = Expected {
        digest: None,
        size: Some(raw.len() as u64),
        diff_id,
        object: "bench".into(),
    };
    let mut s = LayerStream::new(Box::new(raw), expected, None)?;
    let mut buf = vec![0u8; RAW_BUF];
    while s
        .read(&mut buf)
        .map_err(|e| Error::sys("read", io_errno(&e)))?
        > 0
    {}
    Ok(s.finish()?.0.to_string())
}

#[cfg(test)]
mod tests;
