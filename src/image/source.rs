//! Where images come from: an OCI image layout directory, an `oci-archive` tarball, a
//! `docker save` tarball, or a name in the store.
//!
//! [`Resolved::open`] reads and verifies what names the image (index, manifest, config:
//! each read with a size cap, its sha256 and size checked against the descriptor that
//! pointed to it) and leaves the layers for [`Resolved::open_layer`], which the importer
//! streams through a [`LayerStream`](super::compress::LayerStream) that verifies them.
//!
//! # Layouts (image-spec `image-layout.md`)
//! `oci-layout` must hold `imageLayoutVersion` 1.x; `index.json` is the entry point. Every
//! digest is checked to be `sha256:` and 64 lowercase hex digits before it becomes a file
//! name (`blobs/sha256/HEX`; `sha256:../../x` never reaches the file system), and every blob
//! is opened with `openat2(RESOLVE_IN_ROOT)` inside the layout directory (a symbolic link in
//! the layout cannot lead out of it), as a regular file only.
//!
//! A tag is looked up among index.json's own entries: `io.containerd.image.name` first
//! (`docker.io/library/busybox:latest`, also as `busybox:latest` or `busybox`), then
//! `org.opencontainers.image.ref.name` (skopeo and umoci write the bare tag there, containerd
//! the tag of a full name, so `NAME:TAG` also matches an entry whose ref.name is `TAG`).
//! Without a tag the index must name one image (entries with the same digest count once);
//! several are [`Ambiguous`](crate::ImageErrorKind::Ambiguous), listing their names. Entries
//! of unknown media types are skipped, as the spec says.
//!
//! Nested indexes are followed (4 levels at most). In a multi-platform index the manifest
//! for `linux/<host architecture>` is picked (for amd64, the highest `v2`..`v4` variant the
//! CPU runs, else the plain one), the first one on ties (`image-index.md`); attestation
//! manifests (`unknown/unknown`) are skipped; [`Resolved::platform_note`] says what was
//! picked. An index or manifest whose own `mediaType` contradicts its descriptor, or which
//! carries both `manifests` and `layers`, is refused (CVE-2021-41190), as is a config
//! descriptor whose media type is not an image config (an artifact) or a config blob that is
//! really a manifest or an index. Docker media types (schema 2 manifest and list, container
//! config, `rootfs.diff.tar.gzip` layers) are taken as their OCI equivalents.
//!
//! # Archives
//! The tar is indexed once (each member's name, offset and size, read with `pread`); the
//! layers are then read in place, several at once. Member paths named by `manifest.json` or
//! by digests are confined to the archive: absolute paths and `..` are refused
//! (CVE-2014-9358); a symbolic-link member (skopeo writes `<id>/layer.tar -> ../<hex>.tar`)
//! or a hard-link member is followed one level, inside the archive. A tarball compressed as
//! a whole with gzip or zstd (`docker save | gzip`, as `docker load` and skopeo take) is
//! first decompressed into an unnamed temporary file in `$TMPDIR` (disk space for the plain
//! tar, freed when the [`Resolved`] is dropped); xz and bzip2 are refused as unsupported.
//!
//! An archive with `manifest.json` is a `docker save` archive (all three shapes: Docker ≤ 24
//! `<id>/layer.tar`, Docker 25+ with an OCI layout of uncompressed blobs inside, the
//! containerd image store with the blobs as pulled), and a tag is looked up in `RepoTags`;
//! when no entry has it and the archive also holds a layout, the layout's index is asked.
//! Otherwise the archive must be an `oci-archive` (a tarred layout).
//!
//! For a `docker save` image `Layers[i]` pairs with the config's `rootfs.diff_ids[i]`. The
//! blob digest is known only where the member is `blobs/sha256/HEX`; otherwise
//! [`Expected::digest`] is `None`, the importer learns it from
//! [`LayerStream::finish`](super::compress::LayerStream::finish), and builds the OCI
//! manifest that the archive lacks with [`Resolved::synthesize_manifest`] (one read of each
//! layer, not two).

// Used by the store (being written on another branch).

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::compress::{sha256_of, Compression, Expected};
use super::{Digest, ImageConfiguration};
use crate::error::io_errno;
use crate::{Error, ImageErrorKind, Result};

/// Cap on an index, a manifest, a config or `manifest.json`, in bytes: read no further,
/// allocate no more (a descriptor claiming 1 GB is refused before reading).
pub(crate) const MAX_JSON: u64 = 4 << 20;
/// Cap on the `oci-layout` file.
const MAX_LAYOUT_FILE: u64 = 64 << 10;
/// Indexes inside indexes, at most.
const MAX_NESTING: usize = 4;
/// Cap on a GNU long name (`L`, `K`) in an archive: PATH_MAX.
const MAX_TAR_LONG_NAME: u64 = 4096;
/// Cap on a PAX extended header in an archive.
const MAX_TAR_PAX: u64 = 64 << 10;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Layer media types read (compression is told by magic bytes whatever they say).
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];
const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";
const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image reference as the examples and [`Store::import`](super::Store::import) take it.
///
/// # Syntax
/// - `oci:DIR[:TAG]`: an OCI image layout directory; `oci-archive:FILE[:TAG]` and
///   `docker-archive:FILE[:NAME:TAG]`: a tarball (either prefix takes either kind of
///   archive, told apart by content). As skopeo's transports: the path ends at the first
///   `:`, everything after it is the tag, which may contain `:` itself; a path containing
///   `:` cannot be named.
/// - A layout's tag may be `@N` instead: index.json's entry N (0-based), as skopeo takes
///   it, for images without a name.
/// - Without a prefix: a directory holding an `oci-layout` file is a layout, and a regular
///   file that starts as a tar (or a gzip, zstd, xz or bzip2 stream) an archive;
///   `DIR:TAG` or `FILE:TAG` where the part before the first `:` is one names a tag in it;
///   anything else is [`ImageRef::Stored`], so that a directory of the same name as an
///   image (the build context `./app` of the image `app:1`) does not hide the image.
///
/// [`Display`](fmt::Display) writes the prefixed form (`oci:`, `oci-archive:`), which
/// parses back to the same value wherever it is run.
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

impl ImageRef {
    /// Parses `s`; see the [syntax](ImageRef#syntax). Looks at the file system for a
    /// reference without a prefix.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty reference, an empty path after a prefix, or an empty
    /// tag after a `:`.
    pub fn parse(s: &str) -> Result<ImageRef> {
        s.parse()
    }
}

/// `(path, tag)` split at the first `:`; an empty tag is refused.
fn split_tag(s: &str) -> Result<(&str, Option<String>)> {
    match s.split_once(':') {
        None => Ok((s, None)),
        Some((_, "")) => Err(Error::config(
            "image reference",
            format!("{s:?}: empty tag after ':'"),
        )),
        Some((p, t)) => Ok((p, Some(t.to_owned()))),
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImageRef> {
        if s.is_empty() {
            return Err(Error::config("image reference", "empty"));
        }
        for (prefix, layout) in [
            ("oci:", true),
            ("oci-archive:", false),
            ("docker-archive:", false),
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                let (path, tag) = split_tag(rest)?;
                if path.is_empty() {
                    return Err(Error::config(
                        "image reference",
                        format!("{s:?}: no path after {prefix:?}"),
                    ));
                }
                let path = PathBuf::from(path);
                return Ok(if layout {
                    ImageRef::Layout { dir: path, tag }
                } else {
                    ImageRef::Archive { path, tag }
                });
            }
        }
        let kind = source_kind;
        if let Some(is_dir) = kind(Path::new(s)) {
            let path = PathBuf::from(s);
            return Ok(if is_dir {
                ImageRef::Layout {
                    dir: path,
                    tag: None,
                }
            } else {
                ImageRef::Archive { path, tag: None }
            });
        }
        if let Some((head, _)) = s.split_once(':') {
            if !head.is_empty() {
                if let Some(is_dir) = kind(Path::new(head)) {
                    let (path, tag) = split_tag(s)?;
                    let path = PathBuf::from(path);
                    return Ok(if is_dir {
                        ImageRef::Layout { dir: path, tag }
                    } else {
                        ImageRef::Archive { path, tag }
                    });
                }
            }
        }
        Ok(ImageRef::Stored(s.to_owned()))
    }
}

/// What an existing path given without a prefix is: `Some(true)` for an OCI image layout (a
/// directory with an `oci-layout` file), `Some(false)` for what may be an archive (a regular
/// file that starts with a tar header or a compressed stream's magic), `None` for anything
/// else (missing, or a directory or file that is no image).
fn source_kind(p: &Path) -> Option<bool> {
    let meta = std::fs::metadata(p).ok()?;
    if meta.is_dir() {
        return std::fs::metadata(p.join("oci-layout"))
            .is_ok_and(|m| m.is_file())
            .then_some(true);
    }
    if !meta.is_file() {
        return None;
    }
    let mut head = [0u8; 512];
    let mut n = 0;
    let mut f = File::open(p).ok()?;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let head = &head[..n];
    let compressed = [
        &[0x1f, 0x8b][..],
        &[0x28, 0xb5, 0x2f, 0xfd],
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        b"BZh",
    ]
    .iter()
    .any(|m| head.starts_with(m));
    let tar = head.get(257..262) == Some(&b"ustar"[..]);
    (compressed || tar).then_some(false)
}

/// Why `reference`, not found in a store, may not be what was meant: it (or the part before
/// its first `:`) is a path that exists but is neither an OCI image layout nor an archive.
pub(crate) fn path_hint(reference: &str) -> Option<String> {
    let path = [Some(reference), reference.split_once(':').map(|(h, _)| h)]
        .into_iter()
        .flatten()
        .find(|p| !p.is_empty() && std::fs::symlink_metadata(p).is_ok())?;
    Some(if Path::new(path).is_dir() {
        format!("{path} is a directory but not an OCI image layout: it has no oci-layout file")
    } else {
        format!("{path} is a file but not an image archive: it does not start as a tar")
    })
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, path, tag) = match self {
            ImageRef::Stored(s) => return f.write_str(s),
            ImageRef::Layout { dir, tag } => ("oci", dir, tag),
            ImageRef::Archive { path, tag } => ("oci-archive", path, tag),
        };
        write!(f, "{prefix}:{}", path.display())?;
        match tag {
            Some(t) => write!(f, ":{t}"),
            None => Ok(()),
        }
    }
}

/// Where a blob is: named by its digest (in a layout, or a layout inside an archive), or a
/// member of an archive named by `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlobAt {
    /// `blobs/sha256/HEX`.
    Sha256(String),
    /// A member path, confined and normalized.
    Member(String),
}

/// One layer of a resolved image.
#[derive(Debug, Clone)]
pub(crate) struct SourceLayer {
    /// What it must be.
    pub expected: Expected,
    /// The descriptor's media type (informational: compression is detected by magic).
    pub media_type: String,
    /// Where its blob is.
    pub at: BlobAt,
}

/// An image found in a layout or archive: its manifest and config read and verified, its
/// layers not read yet.
pub(crate) struct Resolved {
    /// A name from the source (`RepoTags[0]`, `io.containerd.image.name`, ref.name), if any.
    pub name: Option<String>,
    /// Which manifest of a multi-platform index was picked, and why, for messages.
    pub platform_note: Option<String>,
    /// The manifest as stored. Empty for a `docker save` archive, which has none: build it
    /// with [`Resolved::synthesize_manifest`] once the layers' digests are known
    /// ([`Resolved::needs_manifest`]).
    pub manifest: Vec<u8>,
    /// The config as stored; its sha256 is the image id.
    pub config: Vec<u8>,
    /// The config, parsed.
    pub config_parsed: ImageConfiguration,
    /// Bottom layer first, as in the manifest.
    pub layers: Vec<SourceLayer>,
    /// sha256 of `config`.
    config_digest: Digest,
    /// Where the blobs are.
    source: Source,
    /// Whether `manifest` is still to be synthesized (docker save).
    synthesized: bool,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("name", &self.name)
            .field("platform_note", &self.platform_note)
            .field("config_digest", &self.config_digest)
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl Resolved {
    /// Resolves `r` (not [`ImageRef::Stored`]).
    ///
    /// # Errors
    /// [`Error::Image`]: `NotFound` (no such file, tag or blob; the message lists the tags
    /// there are), `Ambiguous` (several images and no tag), `Malformed` (JSON, digests,
    /// tar headers, paths), `DigestMismatch`/`SizeMismatch` (index, manifest or config not
    /// what its descriptor says), `UnsafeEntry` (a member path out of the archive),
    /// `Unsupported` (an archive compressed with xz or bzip2, another digest algorithm, a
    /// platform the host cannot run, an artifact, a layout version other than 1.x).
    /// [`Error::Sys`] for a failed read. [`Error::Config`] for an [`ImageRef::Stored`] or a
    /// bad `@N`.
    pub(crate) fn open(r: &ImageRef) -> Result<Resolved> {
        let object = r.to_string();
        match r {
            ImageRef::Stored(_) => Err(Error::config(
                "image reference",
                format!("{object} names an image in the store, not a layout or an archive"),
            )),
            ImageRef::Layout { dir, tag } => {
                let source = Source::open_dir(dir)?;
                resolve_layout(source, tag.as_deref(), &object)
            }
            ImageRef::Archive { path, tag } => {
                let source = Source::open_archive(path)?;
                let docker = source.has_member("manifest.json");
                let layout = source.has_member("index.json");
                if docker {
                    if let Some(parts) = resolve_docker(&source, tag.as_deref(), &object, layout)? {
                        return Ok(parts.into_resolved(source));
                    }
                } else if !layout {
                    return Err(Error::image(
                        ImageErrorKind::Malformed,
                        object,
                        "neither a docker save archive (manifest.json) nor an oci-archive \
                         (index.json)",
                    ));
                }
                resolve_layout(source, tag.as_deref(), &object)
            }
        }
    }

    /// The raw bytes of layer `i` as stored (compressed or not), bounded to the blob.
    /// Callable from several threads at once.
    ///
    /// # Errors
    /// [`ImageErrorKind::NotFound`] for a missing blob (or `i` out of range);
    /// [`Error::Sys`] when it cannot be opened.
    pub(crate) fn open_layer(&self, i: usize) -> Result<Box<dyn Read + Send + '_>> {
        let Some(l) = self.layers.get(i) else {
            return Err(Error::image(
                ImageErrorKind::NotFound,
                format!("layer {i}"),
                format!("the image has {} layers", self.layers.len()),
            ));
        };
        self.source.open_blob(&l.at, &l.expected.object)
    }

    /// The image id: the config's digest.
    pub(crate) fn config_digest(&self) -> Digest {
        self.config_digest.clone()
    }

    /// Whether [`Resolved::manifest`] is empty because the source has no manifest (a
    /// `docker save` archive): the importer builds one with
    /// [`Resolved::synthesize_manifest`].
    pub(crate) fn needs_manifest(&self) -> bool {
        self.synthesized
    }

    /// An OCI image manifest (JSON bytes) for this image, from each layer's digest, size and
    /// compression as [`LayerStream`](super::compress::LayerStream) found them (bottom layer
    /// first); the config descriptor is the config as stored.
    ///
    /// # Errors
    /// [`ImageErrorKind::Malformed`] when `layers` does not have one entry per layer.
    pub(crate) fn synthesize_manifest(
        &self,
        layers: &[(Digest, u64, Compression)],
    ) -> Result<Vec<u8>> {
        if layers.len() != self.layers.len() {
            return Err(Error::image(
                ImageErrorKind::Malformed,
                self.config_digest.to_string(),
                format!(
                    "{} layer digests for {} layers",
                    layers.len(),
                    self.layers.len()
                ),
            ));
        }
        let layer_descs: Vec<serde_json::Value> = layers
            .iter()
            .map(|(d, size, c)| {
                serde_json::json!({
                    "mediaType": c.layer_media_type(),
                    "digest": d.to_string(),
                    "size": size,
                })
            })
            .collect();
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": self.config_digest.to_string(),
                "size": self.config.len(),
            },
            "layers": layer_descs,
        });
        serde_json::to_vec(&m).map_err(|e| {
            Error::image(
                ImageErrorKind::Malformed,
                self.config_digest.to_string(),
                e.to_string(),
            )
        })
    }
}

// ---------------------------------------------------------------------------------------
// Digests and descriptors

/// `s` as a sha256 digest: `sha256:` and 64 lowercase hex digits, checked before it names
/// a file. Returns the digest and its hex part.
pub(crate) fn parse_sha256(s: &str, object: &str) -> Result<(Digest, String)> {
    let bad = |kind, why: &str| Error::image(kind, object, format!("digest {s:?}: {why}"));
    let Some((alg, hex)) = s.split_once(':') else {
        return Err(bad(ImageErrorKind::Malformed, "not ALGORITHM:ENCODED"));
    };
    if alg == "sha256" {
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad(
                ImageErrorKind::Malformed,
                "a sha256 digest is 64 lowercase hex digits",
            ));
        }
        let d = Digest::try_from(s).map_err(|e| bad(ImageErrorKind::Malformed, &e.to_string()))?;
        return Ok((d, hex.to_owned()));
    }
    // The grammar of descriptor.md: a well-formed digest of another algorithm.
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let enc_ok = !hex.is_empty()
        && hex
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    if alg_ok && enc_ok {
        Err(bad(
            ImageErrorKind::Unsupported,
            "only sha256 digests are verified here",
        ))
    } else {
        Err(bad(ImageErrorKind::Malformed, "not a digest"))
    }
}

/// A platform as descriptors carry it.
#[derive(Debug, Clone, Deserialize)]
struct PlatformDoc {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

impl fmt::Display for PlatformDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match self.variant.as_deref() {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

/// A descriptor as written.
#[derive(Debug, Deserialize)]
struct DescDoc {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    platform: Option<PlatformDoc>,
}

/// A descriptor whose digest and size were checked.
#[derive(Debug, Clone)]
struct Desc {
    media_type: String,
    digest: Digest,
    hex: String,
    size: u64,
    annotations: BTreeMap<String, String>,
    platform: Option<PlatformDoc>,
}

impl Desc {
    fn check(d: DescDoc, object: &str) -> Result<Desc> {
        let (digest, hex) = parse_sha256(&d.digest, object)?;
        let size = u64::try_from(d.size).map_err(|_| {
            Error::image(
                ImageErrorKind::Malformed,
                object,
                format!("descriptor of {digest}: negative size {}", d.size),
            )
        })?;
        Ok(Desc {
            media_type: d.media_type,
            digest,
            hex,
            size,
            annotations: d.annotations.unwrap_or_default(),
            platform: d.platform,
        })
    }

    fn name(&self) -> Option<&str> {
        self.annotations
            .get(ANN_CONTAINERD_NAME)
            .or_else(|| self.annotations.get(ANN_REF_NAME))
            .map(String::as_str)
    }

    fn object(&self) -> String {
        format!("blob {}", self.digest)
    }
}

/// What a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Index,
    Manifest,
    Other,
}

fn kind_of(media_type: &str) -> Kind {
    match media_type {
        OCI_INDEX | DOCKER_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        _ => Kind::Other,
    }
}

/// An image index (or index.json).
#[derive(Debug, Deserialize)]
struct IndexDoc {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    manifests: Vec<DescDoc>,
    #[serde(default)]
    layers: Option<IgnoredAny>,
    #[serde(default)]
    config: Option<IgnoredAny>,
}

/// An image manifest.
#[derive(Debug, Deserialize)]
struct ManifestDoc {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: DescDoc,
    layers: Vec<DescDoc>,
    #[serde(default)]
    manifests: Option<IgnoredAny>,
}

/// The keys of a config blob that tell it is something else.
#[derive(Debug, Deserialize)]
struct ConfigProbe {
    #[serde(rename = "mediaType", default)]
    media_type: Option<serde_json::Value>,
    #[serde(default)]
    manifests: Option<IgnoredAny>,
    #[serde(default)]
    layers: Option<IgnoredAny>,
}

fn malformed(object: &str, why: impl fmt::Display) -> Error {
    Error::image(ImageErrorKind::Malformed, object, why.to_string())
}

/// Parses an index; `expected` is the media type of the descriptor that named it (none for
/// index.json).
fn parse_index(bytes: &[u8], expected: Option<&str>, object: &str) -> Result<Vec<Desc>> {
    let doc: IndexDoc =
        serde_json::from_slice(bytes).map_err(|e| malformed(object, format!("index: {e}")))?;
    if doc.layers.is_some() || doc.config.is_some() {
        return Err(malformed(
            object,
            "an index with `layers` or `config` is ambiguous (CVE-2021-41190)",
        ));
    }
    if let Some(mt) = doc.media_type.as_deref() {
        if kind_of(mt) != Kind::Index || expected.is_some_and(|e| kind_of(e) != Kind::Index) {
            return Err(malformed(
                object,
                format!(
                    "its mediaType {mt:?} contradicts the descriptor's {:?}",
                    expected.unwrap_or(OCI_INDEX)
                ),
            ));
        }
    }
    doc.manifests
        .into_iter()
        .map(|d| Desc::check(d, object))
        .collect()
}

fn parse_manifest(bytes: &[u8], expected: &str, object: &str) -> Result<(Desc, Vec<Desc>)> {
    let doc: ManifestDoc =
        serde_json::from_slice(bytes).map_err(|e| malformed(object, format!("manifest: {e}")))?;
    if doc.manifests.is_some() {
        return Err(malformed(
            object,
            "a manifest with `manifests` is ambiguous (CVE-2021-41190)",
        ));
    }
    if let Some(mt) = doc.media_type.as_deref() {
        if kind_of(mt) != Kind::Manifest {
            return Err(malformed(
                object,
                format!("its mediaType {mt:?} contradicts the descriptor's {expected:?}"),
            ));
        }
    }
    let config = Desc::check(doc.config, object)?;
    let layers = doc
        .layers
        .into_iter()
        .map(|d| Desc::check(d, object))
        .collect::<Result<Vec<_>>>()?;
    Ok((config, layers))
}

// ---------------------------------------------------------------------------------------
// Platforms

/// The platform this process runs on, as indexes name it.
#[derive(Debug, Clone)]
struct HostPlatform {
    arch: &'static str,
    /// x86-64 micro-architecture level (1 to 4) the CPU runs; 1 elsewhere.
    amd64_level: u32,
}

impl HostPlatform {
    fn detect() -> HostPlatform {
        HostPlatform {
            arch: super::build::layout::host_architecture(),
            amd64_level: amd64_level(),
        }
    }
}

/// The x86-64 psABI level the CPU supports (v2: SSE4.2, POPCNT, CX16; v3: AVX2, BMI, FMA;
/// v4: AVX-512 F/BW/CD/DQ/VL).
#[cfg(target_arch = "x86_64")]
fn amd64_level() -> u32 {
    use std::arch::is_x86_feature_detected as has;
    let v2 = has!("sse3")
        && has!("ssse3")
        && has!("sse4.1")
        && has!("sse4.2")
        && has!("popcnt")
        && has!("cmpxchg16b");
    let v3 = v2
        && has!("avx")
        && has!("avx2")
        && has!("bmi1")
        && has!("bmi2")
        && has!("f16c")
        && has!("fma")
        && has!("lzcnt")
        && has!("movbe")
        && has!("xsave");
    let v4 = v3
        && has!("avx512f")
        && has!("avx512bw")
        && has!("avx512cd")
        && has!("avx512dq")
        && has!("avx512vl");
    1 + u32::from(v2) + u32::from(v3) + u32::from(v4)
}

#[cfg(not(target_arch = "x86_64"))]
fn amd64_level() -> u32 {
    1
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        a => a,
    }
}

/// How well `p` suits `host`: `None` if it cannot run; higher is better.
fn platform_score(p: Option<&PlatformDoc>, host: &HostPlatform) -> Option<u32> {
    let Some(p) = p else {
        // No platform: usable, but any match is better.
        return Some(0);
    };
    if p.os != "linux" || normalize_arch(&p.architecture) != host.arch {
        return None;
    }
    if host.arch != "amd64" {
        return Some(1);
    }
    let level = match p.variant.as_deref() {
        None | Some("") | Some("v1") => 1,
        Some("v2") => 2,
        Some("v3") => 3,
        Some("v4") => 4,
        Some(_) => return None,
    };
    (level <= host.amd64_level).then_some(level)
}

fn is_attestation(d: &Desc) -> bool {
    d.annotations
        .get("vnd.docker.reference.type")
        .is_some_and(|t| t == "attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown")
}

/// Picks the manifest (or index) for `host` among an index's entries; returns it and a
/// note when there was a choice.
fn choose_platform(
    entries: Vec<Desc>,
    host: &HostPlatform,
    object: &str,
) -> Result<(Desc, Option<String>)> {
    let candidates: Vec<Desc> = entries
        .into_iter()
        .filter(|d| kind_of(&d.media_type) != Kind::Other && !is_attestation(d))
        .collect();
    let n = candidates.len();
    let mut best: Option<(u32, usize)> = None;
    for (i, d) in candidates.iter().enumerate() {
        if let Some(s) = platform_score(d.platform.as_ref(), host) {
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, i));
            }
        }
    }
    let Some((_, i)) = best else {
        let offered: Vec<String> = candidates
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
            .collect();
        return Err(Error::image(
            ImageErrorKind::Unsupported,
            object,
            if offered.is_empty() {
                "the index lists no image manifest".to_owned()
            } else {
                format!(
                    "no manifest for linux/{} (the index has {})",
                    host.arch,
                    offered.join(", ")
                )
            },
        ));
    };
    let picked = candidates
        .into_iter()
        .nth(i)
        .ok_or_else(|| malformed(object, "platform choice out of range"))?;
    let note = (n > 1).then(|| {
        let what = picked.platform.as_ref().map_or_else(
            || "the manifest without a platform".to_owned(),
            |p| p.to_string(),
        );
        format!("picked {what} of {n} platforms")
    });
    Ok((picked, note))
}

// ---------------------------------------------------------------------------------------
// Names

/// A docker-style name in one form: `docker.io/library/` dropped, `:latest` added when
/// there is no tag or digest. (`busybox`, `busybox:latest` and
/// `docker.io/library/busybox:latest` are one name.)
pub(crate) fn familiar(name: &str) -> String {
    let n = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("index.docker.io/library/"))
        .or_else(|| name.strip_prefix("docker.io/"))
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .or_else(|| name.strip_prefix("library/"))
        .unwrap_or(name);
    let last = n.rsplit('/').next().unwrap_or(n);
    if last.contains(':') || last.contains('@') {
        n.to_owned()
    } else {
        format!("{n}:latest")
    }
}

/// The tag part of `NAME:TAG` (after the last `:` of the last path component).
fn tag_part(name: &str) -> Option<&str> {
    let last = name.rsplit('/').next()?;
    last.rsplit_once(':').map(|(_, t)| t)
}

/// Picks an entry of index.json by `tag`, or the only image.
fn select_in_index(entries: Vec<Desc>, tag: Option<&str>, object: &str) -> Result<Desc> {
    // `@N`: index.json's entry N, as skopeo's `oci:DIR@N` (a ref name cannot start with `@`).
    if let Some(n) = tag.and_then(|t| t.strip_prefix('@')) {
        let len = entries.len();
        let i: usize = n
            .parse()
            .map_err(|_| Error::config("image reference", format!("@{n}: not an entry number")))?;
        return entries.into_iter().nth(i).ok_or_else(|| {
            not_found(
                object,
                format!("index.json has {len} entries, no entry @{i}"),
            )
        });
    }
    let images: Vec<Desc> = entries
        .into_iter()
        .filter(|d| kind_of(&d.media_type) != Kind::Other)
        .collect();
    let names = |images: &[Desc]| -> String {
        let mut v: Vec<String> = images
            .iter()
            .filter_map(|d| d.name().map(str::to_owned))
            .collect();
        v.dedup();
        if v.is_empty() {
            "no names".to_owned()
        } else {
            v.join(", ")
        }
    };
    let Some(tag) = tag else {
        let mut distinct: Vec<&Desc> = Vec::new();
        for d in &images {
            if !distinct.iter().any(|x| x.digest == d.digest) {
                distinct.push(d);
            }
        }
        return match distinct.len() {
            0 => Err(Error::image(
                ImageErrorKind::NotFound,
                object,
                "index.json lists no image",
            )),
            1 => Ok(distinct[0].clone()),
            n => Err(Error::image(
                ImageErrorKind::Ambiguous,
                object,
                format!(
                    "index.json lists {n} images; name one with :TAG ({})",
                    distinct
                        .iter()
                        .map(|d| d.name().map_or_else(|| d.digest.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        };
    };
    let want = familiar(tag);
    let by = |f: &dyn Fn(&Desc) -> bool| images.iter().find(|d| f(d)).cloned();
    let found = by(&|d| {
        d.annotations
            .get(ANN_CONTAINERD_NAME)
            .is_some_and(|n| n == tag || familiar(n) == want)
    })
    .or_else(|| by(&|d| d.annotations.get(ANN_REF_NAME).is_some_and(|n| n == tag)))
    .or_else(|| {
        let t = tag_part(tag)?;
        by(&|d| {
            !d.annotations.contains_key(ANN_CONTAINERD_NAME)
                && d.annotations.get(ANN_REF_NAME).is_some_and(|n| n == t)
        })
    });
    found.ok_or_else(|| {
        Error::image(
            ImageErrorKind::NotFound,
            object,
            format!("no image tagged {tag:?}; the index has {}", names(&images)),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Sources

/// An archive member.
#[derive(Debug, Clone)]
enum MemberKind {
    File,
    /// A symbolic link, its target as written.
    Symlink(String),
    /// A hard link, to the member named so.
    Hardlink(String),
    Other,
}

#[derive(Debug, Clone)]
struct Member {
    offset: u64,
    size: u64,
    kind: MemberKind,
}

/// Where blobs are read from.
#[derive(Debug)]
enum Source {
    Dir {
        dir: PathBuf,
        fd: OwnedFd,
    },
    Archive {
        path: PathBuf,
        file: File,
        members: HashMap<String, Member>,
    },
}

/// A member of an archive, read with `pread` (so that several can be read at once).
struct MemberReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn not_found(object: &str, why: impl Into<String>) -> Error {
    Error::image(ImageErrorKind::NotFound, object, why)
}

/// A relative member path as `manifest.json` names it: no absolute path, no `..`, `.` and
/// empty components dropped (CVE-2014-9358).
fn confine(p: &str, object: &str) -> Result<String> {
    let unsafe_path = |why: &str| {
        Error::image(
            ImageErrorKind::UnsafeEntry,
            object,
            format!("path {p:?} {why}"),
        )
    };
    if p.starts_with('/') {
        return Err(unsafe_path("is absolute"));
    }
    if p.contains('\0') {
        return Err(unsafe_path("contains NUL"));
    }
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(unsafe_path("leads out of the archive")),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(malformed(object, format!("empty path {p:?}")));
    }
    Ok(parts.join("/"))
}

/// A member name as the archive holds it, normalized (leading `/`, `.` components
/// dropped); `None` for a name with `..`, which nothing can reference.
fn member_key(name: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(name).ok()?;
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

impl Source {
    fn open_dir(dir: &Path) -> Result<Source> {
        let object = dir.display().to_string();
        let f = match File::open(dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_found(&object, "no such layout directory"))
            }
            Err(e) => return Err(Error::sys_path("open", dir, io_errno(&e))),
        };
        let is_dir = f
            .metadata()
            .map_err(|e| Error::sys_path("fstat", dir, io_errno(&e)))?
            .is_dir();
        if !is_dir {
            return Err(malformed(&object, "not a directory"));
        }
        Ok(Source::Dir {
            dir: dir.to_owned(),
            fd: f.into(),
        })
    }

    fn open_archive(path: &Path) -> Result<Source> {
        let object = path.display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_found(&object, "no such archive"))
            }
            Err(e) => return Err(Error::sys_path("open", path, io_errno(&e))),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::sys_path("fstat", path, io_errno(&e)))?;
        if !meta.is_file() {
            return Err(malformed(&object, "not a regular file"));
        }
        let mut head = [0u8; 6];
        let n = read_full_at(&file, &mut head, 0)
            .map_err(|e| Error::sys_path("read", path, io_errno(&e)))?;
        if head[..n] == [0xfd, b'7', b'z', b'X', b'Z', 0] || head[..n.min(3)] == *b"BZh" {
            return Err(Error::image(
                ImageErrorKind::Unsupported,
                object,
                "the archive is compressed with xz or bzip2; decompress it first (unxz, \
                 bunzip2), or use gzip or zstd",
            ));
        }
        let (file, len) = match Compression::detect(&head[..n]) {
            Compression::None => (file, meta.len()),
            c => decompress_to_temp(file, c, path)?,
        };
        let members = index_archive(&file, len, &object)?;
        Ok(Source::Archive {
            path: path.to_owned(),
            file,
            members,
        })
    }

    /// Whether an archive has a member of that (normalized) name.
    fn has_member(&self, key: &str) -> bool {
        matches!(self, Source::Archive { members, .. } if members.contains_key(key))
    }

    /// The member at `key` with one level of link followed: `(offset, size)`.
    fn member(&self, key: &str, object: &str) -> Result<(u64, u64)> {
        let Source::Archive { members, .. } = self else {
            return Err(not_found(object, format!("{key}: not an archive")));
        };
        let missing = || not_found(object, format!("the archive has no member {key:?}"));
        let m = members.get(key).ok_or_else(missing)?;
        let target = match &m.kind {
            MemberKind::File => return Ok((m.offset, m.size)),
            MemberKind::Other => {
                return Err(malformed(object, format!("member {key:?} is not a file")))
            }
            MemberKind::Symlink(t) => {
                if t.starts_with('/') {
                    return Err(Error::image(
                        ImageErrorKind::UnsafeEntry,
                        object,
                        format!("member {key:?} links to the absolute path {t:?}"),
                    ));
                }
                // Relative to the link's directory, never above the archive's root.
                let mut parts: Vec<&str> = key.split('/').collect();
                parts.pop();
                for c in t.split('/') {
                    match c {
                        "" | "." => {}
                        ".." => {
                            if parts.pop().is_none() {
                                return Err(Error::image(
                                    ImageErrorKind::UnsafeEntry,
                                    object,
                                    format!("member {key:?} links out of the archive ({t:?})"),
                                ));
                            }
                        }
                        c => parts.push(c),
                    }
                }
                parts.join("/")
            }
            MemberKind::Hardlink(t) => confine(t, object)?,
        };
        match members.get(&target) {
            Some(Member {
                kind: MemberKind::File,
                offset,
                size,
            }) => Ok((*offset, *size)),
            Some(_) => Err(malformed(
                object,
                format!(
                    "member {key:?} links to {target:?}, which is no file (one level of links \
                     is followed)"
                ),
            )),
            None => Err(not_found(
                object,
                format!("member {key:?} links to {target:?}, which the archive lacks"),
            )),
        }
    }

    /// Opens a regular file inside the layout directory, never following a link out of it.
    fn open_in_dir(&self, rel: &str, object: &str) -> Result<File> {
        let Source::Dir { dir, fd } = self else {
            return Err(not_found(object, format!("{rel}: not a directory")));
        };
        let path = dir.join(rel);
        let c = CString::new(rel).map_err(|_| malformed(object, "NUL in a path"))?;
        let how = crate::sys::mount::OpenHow {
            flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: crate::sys::mount::RESOLVE_IN_ROOT | crate::sys::mount::RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: `c` is a NUL-terminated string alive for the call; `how` is a live struct.
        let raw = match unsafe { crate::sys::mount::openat2(fd.as_raw_fd(), c.as_ptr(), &how) } {
            Ok(raw) => raw,
            Err(crate::Errno::ENOENT | crate::Errno::ENOTDIR) => {
                return Err(not_found(object, format!("{} is missing", path.display())))
            }
            Err(e) => return Err(Error::sys_path("openat2", path, e)),
        };
        // SAFETY: a descriptor the kernel just returned, owned by nothing else.
        let opath = unsafe { OwnedFd::from_raw_fd(raw) };
        let stx = crate::sys::mount::fstatx(opath.as_raw_fd(), libc::STATX_TYPE)
            .map_err(|e| Error::sys_path("statx", &path, e))?;
        if u32::from(stx.stx_mode) & libc::S_IFMT != libc::S_IFREG {
            return Err(malformed(
                object,
                format!("{} is not a regular file", path.display()),
            ));
        }
        // Reopened for reading through /proc: only a regular file is ever opened.
        File::open(format!("/proc/self/fd/{}", opath.as_raw_fd()))
            .map_err(|e| Error::sys_path("open", path, io_errno(&e)))
    }

    /// A blob's bytes and its size on disk.
    fn open_blob(&self, at: &BlobAt, object: &str) -> Result<Box<dyn Read + Send + '_>> {
        Ok(self.open_sized(at, object)?.0)
    }

    fn open_sized(&self, at: &BlobAt, object: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let rel = match at {
            BlobAt::Sha256(hex) => format!("blobs/sha256/{hex}"),
            BlobAt::Member(m) => m.clone(),
        };
        self.open_rel(&rel, object)
    }

    fn open_rel(&self, rel: &str, object: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        match self {
            Source::Dir { dir, .. } => {
                let f = self.open_in_dir(rel, object)?;
                let len = f
                    .metadata()
                    .map_err(|e| Error::sys_path("fstat", dir.join(rel), io_errno(&e)))?
                    .len();
                Ok((Box::new(f), len))
            }
            Source::Archive { file, .. } => {
                let (offset, size) = self.member(rel, object)?;
                Ok((
                    Box::new(MemberReader {
                        file,
                        pos: offset,
                        end: offset + size,
                    }),
                    size,
                ))
            }
        }
    }

    fn where_(&self) -> &Path {
        match self {
            Source::Dir { dir, .. } => dir,
            Source::Archive { path, .. } => path,
        }
    }

    /// A file of at most `cap` bytes, whole (a larger one is refused unread).
    fn read_capped(&self, rel: &str, cap: u64, object: &str) -> Result<Vec<u8>> {
        let (r, size) = self.open_rel(rel, object)?;
        if size > cap {
            return Err(malformed(
                object,
                format!("{rel} is {size} bytes, more than the limit of {cap}"),
            ));
        }
        let mut v = Vec::with_capacity(size as usize);
        r.take(cap + 1)
            .read_to_end(&mut v)
            .map_err(|e| Error::sys_path("read", self.where_().join(rel), io_errno(&e)))?;
        if v.len() as u64 > cap {
            return Err(malformed(
                object,
                format!("{rel} grew past the limit of {cap} bytes"),
            ));
        }
        Ok(v)
    }

    /// The blob `d` names, of at most [`MAX_JSON`] bytes, its size and sha256 verified.
    fn read_verified(&self, d: &Desc) -> Result<Vec<u8>> {
        let object = d.object();
        if d.size > MAX_JSON {
            return Err(malformed(
                &object,
                format!(
                    "its descriptor says {} bytes, more than the limit of {MAX_JSON} for a \
                     manifest, index or config",
                    d.size
                ),
            ));
        }
        let rel = format!("blobs/sha256/{}", d.hex);
        let (r, _) = self.open_rel(&rel, &object)?;
        let mut v = Vec::with_capacity(d.size as usize);
        r.take(d.size + 1)
            .read_to_end(&mut v)
            .map_err(|e| Error::sys_path("read", self.where_().join(&rel), io_errno(&e)))?;
        if v.len() as u64 != d.size {
            return Err(Error::image(
                ImageErrorKind::SizeMismatch,
                object,
                format!(
                    "expected {} bytes, the blob has {}{}",
                    d.size,
                    v.len(),
                    if v.len() as u64 > d.size {
                        " or more"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let got = sha256_of(&v);
        if got != d.digest {
            return Err(Error::image(
                ImageErrorKind::DigestMismatch,
                object,
                format!("expected digest {}, the blob hashes to {got}", d.digest),
            ));
        }
        Ok(v)
    }
}

/// An archive compressed as a whole (`docker save | gzip`), decompressed into an unnamed
/// temporary file (`O_TMPFILE` in `$TMPDIR`, gone when closed) so that its members can be
/// read in place like those of a plain tar. Its length is limited by the file system only.
fn decompress_to_temp(file: File, c: Compression, path: &Path) -> Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp_dir = std::env::temp_dir();
    let tmp = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(&tmp_dir)
        .map_err(|e| Error::sys_path("open(O_TMPFILE)", &tmp_dir, io_errno(&e)))?;
    let input = io::BufReader::with_capacity(1 << 20, file);
    let mut decoder: Box<dyn Read> = match c {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        _ => Box::new(
            zstd::stream::read::Decoder::with_buffer(input).map_err(|e| {
                malformed(&path.display().to_string(), format!("zstd decoder: {e}"))
            })?,
        ),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error().is_some() => {
                return Err(Error::sys_path("read", path, io_errno(&e)))
            }
            Err(e) => {
                return Err(malformed(
                    &path.display().to_string(),
                    format!("{} stream of the archive: {e}", c.name()),
                ))
            }
        };
        tmp.write_all_at(&buf[..n], len)
            .map_err(|e| Error::sys_path("write", &tmp_dir, io_errno(&e)))?;
        len += n as u64;
    }
    Ok((tmp, len))
}

/// `pread` until `buf` is full or EOF; the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Indexes an archive's members: name → offset and size of the data. Headers are parsed
/// with the tar crate's `Header` (checksum checked; PAX `path`, `linkpath` and `size` and GNU
/// long names honoured, each bounded); data is never read except extension headers.
fn index_archive(file: &File, len: u64, object: &str) -> Result<HashMap<String, Member>> {
    let bad = |off: u64, why: &str| malformed(object, format!("tar header at offset {off}: {why}"));
    let read_at = |buf: &mut [u8], off: u64| {
        read_full_at(file, buf, off).map_err(|e| Error::sys_path("read", object, io_errno(&e)))
    };
    let mut members = HashMap::new();
    let mut pos = 0u64;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Option<Vec<u8>> = None;
    let mut block = [0u8; 512];
    loop {
        let n = read_at(&mut block, pos)?;
        if n == 0 {
            break;
        }
        if n < 512 {
            return Err(bad(pos, "truncated header block"));
        }
        if block.iter().all(|b| *b == 0) {
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        let sum: u32 = block[..148]
            .iter()
            .chain(&block[156..])
            .map(|b| u32::from(*b))
            .sum::<u32>()
            + 8 * 32;
        if header.cksum().ok() != Some(sum) {
            return Err(bad(pos, "checksum mismatch"));
        }
        let ty = header.entry_type();
        let is_ext = ty.is_gnu_longname()
            || ty.is_gnu_longlink()
            || ty.is_pax_local_extensions()
            || ty.is_pax_global_extensions();
        let mut size = header.entry_size().map_err(|e| bad(pos, &e.to_string()))?;
        let mut pax_path = None;
        let mut pax_link = None;
        if !is_ext {
            if let Some(p) = pax.take() {
                for ext in tar::PaxExtensions::new(&p) {
                    let ext = ext.map_err(|e| bad(pos, &format!("PAX header: {e}")))?;
                    match ext.key_bytes() {
                        b"path" => pax_path = Some(ext.value_bytes().to_vec()),
                        b"linkpath" => pax_link = Some(ext.value_bytes().to_vec()),
                        b"size" => {
                            size = ext
                                .value()
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .ok_or_else(|| bad(pos, "PAX size is not a number"))?;
                        }
                        _ => {}
                    }
                }
            }
        }
        let data = pos + 512;
        let end = data
            .checked_add(size)
            .filter(|e| *e <= len)
            .ok_or_else(|| bad(pos, &format!("an entry of {size} bytes runs past the end")))?;
        let read_ext = |cap: u64, what: &str| -> Result<Vec<u8>> {
            if size > cap {
                return Err(bad(
                    pos,
                    &format!("{what} of {size} bytes, more than {cap}"),
                ));
            }
            let mut v = vec![0u8; size as usize];
            read_at(&mut v, data)?;
            Ok(v)
        };
        let trim = |mut v: Vec<u8>| {
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        };
        if ty.is_gnu_longname() {
            if long_name.is_some() {
                return Err(bad(pos, "two long names for one member"));
            }
            long_name = Some(trim(read_ext(MAX_TAR_LONG_NAME, "long name")?));
        } else if ty.is_gnu_longlink() {
            if long_link.is_some() {
                return Err(bad(pos, "two long link names for one member"));
            }
            long_link = Some(trim(read_ext(MAX_TAR_LONG_NAME, "long link name")?));
        } else if ty.is_pax_local_extensions() {
            if pax.is_some() {
                return Err(bad(pos, "two PAX headers for one member"));
            }
            pax = Some(read_ext(MAX_TAR_PAX, "PAX header")?);
        } else if ty.is_pax_global_extensions() {
            // Global records (a comment with the commit, from git archive) name nothing.
        } else {
            let name = pax_path
                .or(long_name.take())
                .unwrap_or_else(|| header.path_bytes().into_owned());
            let link = pax_link
                .or(long_link.take())
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
            long_name = None;
            long_link = None;
            let link = || {
                link.as_deref()
                    .and_then(|l| std::str::from_utf8(l).ok())
                    .map(str::to_owned)
                    .unwrap_or_default()
            };
            let kind = if ty.is_file() || ty.is_contiguous() {
                MemberKind::File
            } else if ty.is_symlink() {
                MemberKind::Symlink(link())
            } else if ty.is_hard_link() {
                MemberKind::Hardlink(link())
            } else {
                MemberKind::Other
            };
            if let Some(key) = member_key(&name) {
                // A later member of the same name replaces an earlier one, as on extraction.
                members.insert(
                    key,
                    Member {
                        offset: data,
                        size,
                        kind,
                    },
                );
            }
        }
        pos = end
            .checked_add(511)
            .map(|e| e & !511)
            .ok_or_else(|| bad(pos, "size overflow"))?;
    }
    if long_name.is_some() || long_link.is_some() || pax.is_some() {
        return Err(malformed(
            object,
            "the archive ends after an extension header",
        ));
    }
    Ok(members)
}

// ---------------------------------------------------------------------------------------
// Resolution

/// What resolution found, before it becomes a [`Resolved`] with its source.
struct Parts {
    name: Option<String>,
    platform_note: Option<String>,
    manifest: Vec<u8>,
    config: Vec<u8>,
    config_parsed: ImageConfiguration,
    config_digest: Digest,
    layers: Vec<SourceLayer>,
    synthesized: bool,
}

impl Parts {
    fn into_resolved(self, source: Source) -> Resolved {
        Resolved {
            name: self.name,
            platform_note: self.platform_note,
            manifest: self.manifest,
            config: self.config,
            config_parsed: self.config_parsed,
            layers: self.layers,
            config_digest: self.config_digest,
            source,
            synthesized: self.synthesized,
        }
    }
}

/// Parses a config and its diff_ids; refuses a blob that is a manifest or an index.
fn parse_config(bytes: &[u8], object: &str) -> Result<(ImageConfiguration, Vec<Digest>)> {
    let probe: ConfigProbe =
        serde_json::from_slice(bytes).map_err(|e| malformed(object, format!("config: {e}")))?;
    if probe.manifests.is_some() || probe.layers.is_some() || probe.media_type.is_some() {
        return Err(malformed(
            object,
            format!(
                "the config blob is a manifest or an index (mediaType {}), not an image config",
                probe
                    .media_type
                    .map_or_else(|| "absent".to_owned(), |m| m.to_string())
            ),
        ));
    }
    let config: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|e| malformed(object, format!("config: {e}")))?;
    let os = config.os().to_string();
    if os != "linux" {
        return Err(Error::image(
            ImageErrorKind::Unsupported,
            object,
            format!("an image for {os:?}, not linux"),
        ));
    }
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| parse_sha256(d, object).map(|(d, _)| d))
        .collect::<Result<Vec<_>>>()?;
    Ok((config, diff_ids))
}

/// Resolves an image in a layout (a directory, or an archive of one).
fn resolve_layout(source: Source, tag: Option<&str>, object: &str) -> Result<Resolved> {
    let layout = match source.read_capped("oci-layout", MAX_LAYOUT_FILE, object) {
        Ok(v) => v,
        Err(Error::Image {
            kind: ImageErrorKind::NotFound,
            ..
        }) => {
            return Err(malformed(
                object,
                "not an OCI image layout: it has no oci-layout file",
            ))
        }
        Err(e) => return Err(e),
    };
    #[derive(Deserialize)]
    struct LayoutDoc {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let doc: LayoutDoc = serde_json::from_slice(&layout)
        .map_err(|e| malformed(object, format!("oci-layout: {e}")))?;
    if doc.version.split('.').next() != Some("1") {
        return Err(Error::image(
            ImageErrorKind::Unsupported,
            object,
            format!("image layout version {:?} (1.x is read)", doc.version),
        ));
    }
    let index = source.read_capped("index.json", MAX_JSON, object)?;
    let entries = parse_index(&index, None, &format!("{object} index.json"))?;
    let top = select_in_index(entries, tag, object)?;
    let name = top.name().map(str::to_owned);
    let host = HostPlatform::detect();
    let mut desc = top;
    let mut note = None;
    let mut depth = 0;
    let (manifest, config_desc, layer_descs) = loop {
        match kind_of(&desc.media_type) {
            Kind::Index => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(malformed(
                        object,
                        format!("indexes nested deeper than {MAX_NESTING}"),
                    ));
                }
                let bytes = source.read_verified(&desc)?;
                let entries = parse_index(&bytes, Some(&desc.media_type), &desc.object())?;
                let (next, n) = choose_platform(entries, &host, &desc.object())?;
                note = n.or(note);
                desc = next;
            }
            Kind::Manifest => {
                let bytes = source.read_verified(&desc)?;
                let (c, l) = parse_manifest(&bytes, &desc.media_type, &desc.object())?;
                break (bytes, c, l);
            }
            Kind::Other => {
                return Err(Error::image(
                    ImageErrorKind::Unsupported,
                    desc.object(),
                    format!(
                        "media type {:?} is no image manifest or index",
                        desc.media_type
                    ),
                ))
            }
        }
    };
    if !matches!(config_desc.media_type.as_str(), OCI_CONFIG | DOCKER_CONFIG) {
        return Err(Error::image(
            ImageErrorKind::Unsupported,
            config_desc.object(),
            format!(
                "config media type {:?} is no image config (an artifact?)",
                config_desc.media_type
            ),
        ));
    }
    let config = source.read_verified(&config_desc)?;
    let (config_parsed, diff_ids) = parse_config(&config, &config_desc.object())?;
    if diff_ids.len() != layer_descs.len() {
        return Err(malformed(
            object,
            format!(
                "the manifest has {} layers, the config {} diff_ids",
                layer_descs.len(),
                diff_ids.len()
            ),
        ));
    }
    let layers = layer_descs
        .into_iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            if !LAYER_TYPES.contains(&d.media_type.as_str()) {
                return Err(Error::image(
                    ImageErrorKind::Unsupported,
                    d.object(),
                    format!("layer media type {:?}", d.media_type),
                ));
            }
            Ok(SourceLayer {
                expected: Expected {
                    object: format!("layer {}", d.digest),
                    digest: Some(d.digest),
                    size: Some(d.size),
                    diff_id,
                },
                media_type: d.media_type,
                at: BlobAt::Sha256(d.hex),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Parts {
        name,
        platform_note: note,
        manifest,
        config_digest: config_desc.digest,
        config,
        config_parsed,
        layers,
        synthesized: false,
    }
    .into_resolved(source))
}

/// One image of a `docker save` manifest.json.
#[derive(Debug, Deserialize)]
struct DockerItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The digest a member path states: `blobs/sha256/HEX` or `HEX.json` / `HEX.tar`.
fn digest_in_path(p: &str) -> Option<(Digest, String)> {
    let hex = p
        .strip_prefix("blobs/sha256/")
        .or_else(|| p.strip_suffix(".json").filter(|h| !h.contains('/')))?;
    parse_sha256(&format!("sha256:{hex}"), "").ok()
}

/// Resolves an image of a `docker save` archive; `None` when `tag` is in no `RepoTags` and
/// `layout_fallback` says the archive's layout is to be asked.
fn resolve_docker(
    source: &Source,
    tag: Option<&str>,
    object: &str,
    layout_fallback: bool,
) -> Result<Option<Parts>> {
    let bytes = source.read_capped("manifest.json", MAX_JSON, "manifest.json")?;
    let items: Vec<DockerItem> =
        serde_json::from_slice(&bytes).map_err(|e| malformed("manifest.json", e.to_string()))?;
    let all_tags = || {
        let v: Vec<&str> = items
            .iter()
            .flat_map(|i| i.repo_tags.iter().flatten())
            .map(String::as_str)
            .collect();
        if v.is_empty() {
            "no RepoTags".to_owned()
        } else {
            v.join(", ")
        }
    };
    let (item, name) = match tag {
        Some(t) => {
            let want = familiar(t);
            let hit = items.iter().find_map(|i| {
                i.repo_tags
                    .iter()
                    .flatten()
                    .find(|rt| *rt == t || familiar(rt) == want)
                    .map(|rt| (i, Some(rt.clone())))
            });
            match hit {
                Some(hit) => hit,
                // The layout in the same archive may know it (an OCI ref name).
                None if layout_fallback => return Ok(None),
                None => {
                    return Err(not_found(
                        object,
                        format!("no image tagged {t:?}; the archive has {}", all_tags()),
                    ))
                }
            }
        }
        None => match items.as_slice() {
            [] => return Err(not_found(object, "manifest.json lists no image")),
            [i] => (i, i.repo_tags.as_ref().and_then(|t| t.first().cloned())),
            _ => {
                return Err(Error::image(
                    ImageErrorKind::Ambiguous,
                    object,
                    format!(
                        "manifest.json lists {} images; name one with :NAME:TAG ({})",
                        items.len(),
                        all_tags()
                    ),
                ))
            }
        },
    };
    let config_path = confine(&item.config, "manifest.json")?;
    let config = source.read_capped(&config_path, MAX_JSON, "manifest.json")?;
    let config_digest = sha256_of(&config);
    if let Some((named, _)) = digest_in_path(&config_path) {
        if named != config_digest {
            return Err(Error::image(
                ImageErrorKind::DigestMismatch,
                format!("config {config_path}"),
                format!("its name says {named}, it hashes to {config_digest}"),
            ));
        }
    }
    let (config_parsed, diff_ids) = parse_config(&config, &format!("config {config_digest}"))?;
    if diff_ids.len() != item.layers.len() {
        return Err(malformed(
            "manifest.json",
            format!(
                "invalid manifest, layers length mismatch: {} Layers, {} diff_ids in the config",
                item.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (p, diff_id) in item.layers.iter().zip(diff_ids) {
        let key = confine(p, "manifest.json")?;
        let object = format!("layer {diff_id}");
        let (_, size) = source.member(&key, &object)?;
        let digest = key
            .strip_prefix("blobs/sha256/")
            .and_then(|_| digest_in_path(&key))
            .map(|(d, _)| d);
        layers.push(SourceLayer {
            expected: Expected {
                digest,
                size: Some(size),
                diff_id,
                object,
            },
            media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
            at: BlobAt::Member(key),
        });
    }
    Ok(Some(Parts {
        name,
        platform_note: None,
        manifest: Vec::new(),
        config,
        config_parsed,
        config_digest,
        layers,
        synthesized: true,
    }))
}

#[cfg(test)]
mod tests;

/// The parsers of what an image archive or layout holds, for the `image_json` fuzz target;
/// only in builds with `--cfg fuzzing`. Not part of the API. Each returns what the importer
/// would go on with, in a shape the target can check.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// A descriptor as checked: its digest's hex and its size.
    pub type Checked = (String, u64);

    /// `index.json` (or a nested index): its descriptors, then the one `tag` selects.
    pub fn index(bytes: &[u8], tag: Option<&str>) -> Result<(Vec<Checked>, Checked)> {
        let entries = parse_index(bytes, None, "index.json")?;
        let all = entries.iter().map(|d| (d.hex.clone(), d.size)).collect();
        let chosen = select_in_index(entries, tag, "index.json")?;
        Ok((all, (chosen.hex, chosen.size)))
    }

    /// A manifest: its config's and its layers' descriptors.
    pub fn manifest(bytes: &[u8]) -> Result<(Checked, Vec<Checked>)> {
        let (config, layers) = parse_manifest(bytes, OCI_MANIFEST, "manifest")?;
        Ok((
            (config.hex, config.size),
            layers.into_iter().map(|d| (d.hex, d.size)).collect(),
        ))
    }

    /// An image config: how many diff_ids it lists.
    pub fn config(bytes: &[u8]) -> Result<usize> {
        parse_config(bytes, "config").map(|(_, diff_ids)| diff_ids.len())
    }

    /// A `sha256:HEX` digest: its hex.
    pub fn sha256(s: &str) -> Result<String> {
        parse_sha256(s, "digest").map(|(_, hex)| hex)
    }

    /// A member path of `manifest.json` (docker save), confined to the archive.
    pub fn confined(p: &str) -> Result<String> {
        confine(p, "manifest.json")
    }

    /// A tar member's name as the archive index keys it.
    pub fn member(name: &[u8]) -> Option<String> {
        member_key(name)
    }
}
