//! A built image as other tools read it: the OCI manifest and config of a new image
//! ([`image_documents`]), gzip layer blobs ([`GzipBlob`], [`write_gzip_layer`]), and an OCI
//! image layout directory ([`write_layout`]) or `oci-archive` tarball ([`write_archive`]).
//!
//! Followed: image-spec `image-layout.md` (`oci-layout`, `index.json`, `blobs/sha256/HEX`),
//! `manifest.md`, `config.md` (diff_ids, history with `empty_layer`), and the naming
//! conventions readers look for in `index.json`: `org.opencontainers.image.ref.name` holds
//! the tag (what skopeo's `oci:DIR:TAG` and umoci's `DIR:TAG` match), and
//! `io.containerd.image.name` the full `NAME:TAG` (what containerd and `docker load` match).
//!
//! Everything written is deterministic: JSON with sorted keys and no whitespace, gzip with
//! no name and mtime 0 in its header, archive entries in a fixed order with mtime 0 and
//! owner 0:0. The same image therefore has the same digests whoever writes it when.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde_json::{json, Value};
use tar::{EntryType, Header};

use super::diff::{write_layer, DiffOptions, DigestWriter, LayerDiff};
use crate::image::{Digest, ImageConfig, ImageConfiguration};
use crate::{Error, ImageErrorKind, Result};

pub use oci_spec::image::Descriptor;

/// `application/vnd.oci.image.manifest.v1+json`.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.config.v1+json`.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.image.layer.v1.tar`: an uncompressed layer.
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// `application/vnd.oci.image.layer.v1.tar+gzip`.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// `application/vnd.oci.image.layer.v1.tar+zstd`.
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The annotation holding the tag (image-spec `annotations.md`; skopeo's and umoci's).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation holding `NAME:TAG` (containerd's, and `docker save`'s since v25).
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A layer of a new image, as its manifest and config name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// sha256 of the blob as stored (the compressed bytes for a gzip layer).
    pub digest: Digest,
    /// Length of the blob in bytes.
    pub size: u64,
    /// Its media type: [`MEDIA_TYPE_LAYER_GZIP`], [`MEDIA_TYPE_LAYER_TAR`], ...
    pub media_type: String,
}

/// One `history` entry of a new image's config, for each build step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The instruction, e.g. `RUN /bin/sh -c make` (see
    /// [`Step::created_by`](super::containerfile::Step::created_by)).
    pub created_by: String,
    /// True for a step that made no layer (ENV, CMD, ...).
    pub empty_layer: bool,
    /// Free text (e.g. `"cached"`), left out when `None`.
    pub comment: Option<String>,
}

/// The manifest and config of a new image, serialized, with their digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    /// The OCI image manifest JSON.
    pub manifest: Vec<u8>,
    /// sha256 of `manifest`.
    pub manifest_digest: Digest,
    /// The OCI image config JSON.
    pub config: Vec<u8>,
    /// sha256 of `config` (the image id).
    pub config_digest: Digest,
}

/// The sha256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    crate::image::compress::sha256_of(bytes)
}

/// `secs` since the epoch as RFC 3339 in UTC (`2026-11-30T17:00:00Z`), the form of the
/// config's `created` fields.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// JSON with object keys sorted and no whitespace: one serialization for one value.
pub(crate) fn canonical_json(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(&Value::String((*k).clone()), out);
                    out.push(b':');
                    if let Some(x) = m.get(*k) {
                        write(x, out);
                    }
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(x, out);
                }
                out.push(b']');
            }
            // Scalars: serde_json's own encoding (cannot fail for a Value).
            leaf => {
                if serde_json::to_writer(&mut *out, leaf).is_err() {
                    out.extend_from_slice(b"null");
                }
            }
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

fn to_value<T: serde::Serialize>(what: &str, t: &T) -> Result<Value> {
    serde_json::to_value(t)
        .map_err(|e| Error::image(ImageErrorKind::Malformed, what, format!("to JSON: {e}")))
}

/// The OCI architecture name of this host (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Layer media types of docker's schema 2 mapped to their OCI equivalents (image-spec
/// `media-types.md`, compatibility matrix), others kept.
fn oci_layer_type(t: &str) -> &str {
    match t {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MEDIA_TYPE_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => MEDIA_TYPE_LAYER_TAR,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        t => t,
    }
}

/// The manifest and config of an image made of `base` (its config and its manifest's layer
/// descriptors; `None` for `FROM scratch`) and the `layers` a build added, with `config` as
/// the runtime config (Env, Cmd, ...) after the build's steps.
///
/// The config keeps the base's fields (architecture, os, variant, the base's history), gets
/// `config`, the new diff_ids appended to `rootfs.diff_ids`, one history entry per step
/// (`history`) and `created` on the new config and on each new history entry (RFC 3339,
/// see [`rfc3339`]; `None` leaves them out, for reproducible images). Layer descriptors of
/// the base keep their digests; docker media types become their OCI equivalents.
/// `FROM scratch` takes this host's architecture and `linux`.
///
/// # Errors
/// [`Error::Config`] when the number of `history` entries that are not `empty_layer` is not
/// the number of `layers`, or the base's diff_ids and layer descriptors differ in number;
/// [`Error::Image`] (`Malformed`) when the base config cannot be serialized.
pub fn image_documents(
    base: Option<(&ImageConfiguration, &[Descriptor])>,
    config: &ImageConfig,
    layers: &[NewLayer],
    history: &[HistoryEntry],
    created: Option<&str>,
) -> Result<NewImage> {
    let made = history.iter().filter(|h| !h.empty_layer).count();
    if made != layers.len() {
        return Err(Error::config(
            "image history",
            format!(
                "{made} history entries make a layer but {} layers were added",
                layers.len()
            ),
        ));
    }
    let mut cfg = match base {
        Some((c, _)) => to_value("base config", c)?,
        None => json!({
            "architecture": host_architecture(),
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }),
    };
    let base_layers: Vec<Value> = match base {
        Some((c, descs)) => {
            if c.rootfs().diff_ids().len() != descs.len() {
                return Err(Error::config(
                    "base image",
                    format!(
                        "{} diff_ids in the config but {} layers in the manifest",
                        c.rootfs().diff_ids().len(),
                        descs.len()
                    ),
                ));
            }
            descs
                .iter()
                .map(|d| {
                    let mut v = to_value("base layer descriptor", d)?;
                    if let Some(t) = v.get("mediaType").and_then(Value::as_str) {
                        let t = oci_layer_type(t).to_string();
                        v["mediaType"] = Value::String(t);
                    }
                    Ok(v)
                })
                .collect::<Result<_>>()?
        }
        None => Vec::new(),
    };
    let Some(obj) = cfg.as_object_mut() else {
        return Err(Error::image(
            ImageErrorKind::Malformed,
            "base config",
            "not a JSON object",
        ));
    };
    obj.insert("config".into(), to_value("config", config)?);
    match created {
        Some(c) => obj.insert("created".into(), Value::String(c.into())),
        None => obj.remove("created"),
    };
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    rootfs["type"] = Value::String("layers".into());
    let mut ids: Vec<Value> = rootfs
        .get("diff_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ids.extend(layers.iter().map(|l| Value::String(l.diff_id.to_string())));
    rootfs["diff_ids"] = Value::Array(ids);
    let mut hist: Vec<Value> = obj
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for h in history {
        let mut e = serde_json::Map::new();
        if let Some(c) = created {
            e.insert("created".into(), Value::String(c.into()));
        }
        e.insert("created_by".into(), Value::String(h.created_by.clone()));
        if let Some(c) = &h.comment {
            e.insert("comment".into(), Value::String(c.clone()));
        }
        if h.empty_layer {
            e.insert("empty_layer".into(), Value::Bool(true));
        }
        hist.push(Value::Object(e));
    }
    if !hist.is_empty() {
        obj.insert("history".into(), Value::Array(hist));
    }
    let config_bytes = canonical_json(&cfg);
    let config_digest = sha256(&config_bytes);
    let mut layer_descs = base_layers;
    layer_descs.extend(layers.iter().map(
        |l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}),
    ));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layer_descs,
    });
    let manifest_bytes = canonical_json(&manifest);
    Ok(NewImage {
        manifest_digest: sha256(&manifest_bytes),
        manifest: manifest_bytes,
        config: config_bytes,
        config_digest,
    })
}

/// A gzip stream whose compressed bytes are hashed and counted on their way to `W`: a
/// layer blob's digest and size. Deterministic: no file name, mtime 0, OS "unknown" (255).
pub struct GzipBlob<W: Write> {
    enc: GzEncoder<DigestWriter<W>>,
}

impl<W: Write> GzipBlob<W> {
    /// Compresses into `out` at zlib's default level (6).
    pub fn new(out: W) -> GzipBlob<W> {
        GzipBlob::with_level(out, 6)
    }

    /// Compresses at `level` (0-9).
    pub fn with_level(out: W, level: u32) -> GzipBlob<W> {
        let enc = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(
                DigestWriter::new(out),
                flate2::Compression::new(level.min(9)),
            );
        GzipBlob { enc }
    }

    /// Ends the gzip stream: the digest and length of the compressed bytes, and `out`
    /// (flushed).
    ///
    /// # Errors
    /// [`Error::Sys`] (`write`) when writing the end of the stream fails.
    pub fn finish(self) -> Result<(Digest, u64, W)> {
        let mut w = self
            .enc
            .finish()
            .map_err(|e| Error::sys("write", io_errno(&e)))?;
        w.flush().map_err(|e| Error::sys("write", io_errno(&e)))?;
        Ok(w.finish())
    }
}

impl<W: Write> Write for GzipBlob<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.enc.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.enc.flush()
    }
}

fn io_errno(e: &std::io::Error) -> crate::Errno {
    crate::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// [`write_layer`] of `upper` through [`GzipBlob`] into `out`: the new layer (diff_id of
/// the tar, digest and size of the gzip blob, [`MEDIA_TYPE_LAYER_GZIP`]), what the diff
/// wrote, and `out`.
///
/// # Errors
/// Those of [`write_layer`] and [`GzipBlob::finish`].
pub fn write_gzip_layer<W: Write>(
    upper: BorrowedFd<'_>,
    opts: &DiffOptions,
    out: W,
) -> Result<(NewLayer, LayerDiff, W)> {
    let (diff, gz) = write_layer(upper, opts, GzipBlob::new(out))?;
    let (digest, size, out) = gz.finish()?;
    Ok((
        NewLayer {
            diff_id: diff.diff_id.clone(),
            digest,
            size,
            media_type: MEDIA_TYPE_LAYER_GZIP.into(),
        },
        diff,
        out,
    ))
}

/// [`write_layer`] of `upper` into `out` uncompressed: the new layer (its digest is its
/// diff_id, [`MEDIA_TYPE_LAYER_TAR`]), what the diff wrote, and `out`.
///
/// # Errors
/// Those of [`write_layer`].
pub fn write_tar_layer<W: Write>(
    upper: BorrowedFd<'_>,
    opts: &DiffOptions,
    out: W,
) -> Result<(NewLayer, LayerDiff, W)> {
    let (diff, out) = write_layer(upper, opts, out)?;
    Ok((
        NewLayer {
            diff_id: diff.diff_id.clone(),
            digest: diff.diff_id.clone(),
            size: diff.size,
            media_type: MEDIA_TYPE_LAYER_TAR.into(),
        },
        diff,
        out,
    ))
}

/// Where a blob's bytes are.
#[derive(Debug, Clone, Copy)]
pub enum BlobSource<'a> {
    /// A file (e.g. the store's `blobs/sha256/HEX`).
    Path(&'a Path),
    /// In memory.
    Bytes(&'a [u8]),
}

/// A layer blob to put into a layout: its digest and size as the manifest names them, and
/// its bytes (checked against both while copied).
#[derive(Debug, Clone, Copy)]
pub struct Blob<'a> {
    /// The blob's digest (`sha256:HEX`).
    pub digest: &'a Digest,
    /// Its length in bytes.
    pub size: u64,
    /// Its bytes.
    pub source: BlobSource<'a>,
}

/// An image to write: its manifest and config (as [`image_documents`] made them, or from
/// the store) and every layer blob the manifest names.
#[derive(Debug, Clone, Copy)]
pub struct LayoutImage<'a> {
    /// The manifest JSON.
    pub manifest: &'a [u8],
    /// The config JSON.
    pub config: &'a [u8],
    /// The layer blobs.
    pub layers: &'a [Blob<'a>],
}

/// `NAME[:TAG]` as (full `NAME:TAG`, TAG); the tag defaults to `latest`. A `:` before the
/// last `/` is a registry's port, not a tag.
pub fn split_name(name: &str) -> (String, String) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) if !name[slash + i + 1..].is_empty() => {
            (name.to_string(), name[slash + i + 1..].to_string())
        }
        _ => {
            let bare = name.strip_suffix(':').unwrap_or(name);
            (format!("{bare}:latest"), "latest".to_string())
        }
    }
}

/// Checks the manifest names exactly the config and the layer blobs given, and returns the
/// manifest's descriptor (annotations for `name`).
fn check_image(image: &LayoutImage<'_>) -> Result<(Digest, Digest)> {
    let m: Value = serde_json::from_slice(image.manifest).map_err(|e| {
        Error::image(
            ImageErrorKind::Malformed,
            "manifest",
            format!("not JSON: {e}"),
        )
    })?;
    let config_digest = sha256(image.config);
    let named = m
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if named != config_digest.as_ref() {
        return Err(Error::image(
            ImageErrorKind::DigestMismatch,
            "manifest",
            format!("names config {named:?}, but the config given is {config_digest}"),
        ));
    }
    let layers = m
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for l in &layers {
        let d = l.get("digest").and_then(Value::as_str).unwrap_or_default();
        if !image.layers.iter().any(|b| b.digest.as_ref() == d) {
            return Err(Error::image(
                ImageErrorKind::NotFound,
                format!("blob {d}"),
                "the manifest names a layer that was not given",
            ));
        }
    }
    Ok((sha256(image.manifest), config_digest))
}

/// The hex of a sha256 digest, checked (so that it is safe as a file name).
fn hex_of(d: &Digest) -> Result<&str> {
    let s: &str = d.as_ref();
    match s.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(h)
        }
        _ => Err(Error::image(
            ImageErrorKind::Unsupported,
            format!("blob {s}"),
            "only sha256 digests (64 lowercase hex digits) are written",
        )),
    }
}

fn manifest_descriptor(digest: &Digest, size: usize, name: Option<&str>) -> Value {
    let mut d =
        json!({"mediaType": MEDIA_TYPE_MANIFEST, "digest": digest.to_string(), "size": size});
    if let Some(n) = name {
        let (full, tag) = split_name(n);
        d["annotations"] = json!({ANNOTATION_CONTAINERD_NAME: full, ANNOTATION_REF_NAME: tag});
    }
    d
}

fn layout_file() -> Vec<u8> {
    canonical_json(&json!({"imageLayoutVersion": "1.0.0"}))
}

fn fs_err(syscall: &'static str, p: &Path, e: &std::io::Error) -> Error {
    Error::sys_path(syscall, p, io_errno(e))
}

/// Writes `image` into the OCI image layout directory `dir` (created if missing; an existing
/// layout keeps its other images) and names it `name` (`NAME[:TAG]`) in `index.json`, as
/// `skopeo copy ... oci:DIR:TAG` would: an older entry of the same tag loses its name, and
/// is dropped when it is the same manifest. Returns the manifest's digest.
///
/// Blobs already present (same name, same size) are kept; new ones are copied to a
/// temporary file, checked against their digest and size, and renamed into place, as are
/// `index.json` and `oci-layout`. Nothing is fsynced.
///
/// # Errors
/// [`Error::Image`] when the manifest does not name the config and layers given
/// (`DigestMismatch`, `NotFound`), a blob's bytes do not match its digest or size, or the
/// existing `index.json` does not parse; [`Error::Sys`] for a failed file operation (with
/// its path).
pub fn write_layout(dir: &Path, image: &LayoutImage<'_>, name: Option<&str>) -> Result<Digest> {
    let (manifest_digest, config_digest) = check_image(image)?;
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| fs_err("mkdir", &blobs, &e))?;
    put_blob(
        &blobs,
        &config_digest,
        image.config.len() as u64,
        BlobSource::Bytes(image.config),
    )?;
    for l in image.layers {
        put_blob(&blobs, l.digest, l.size, l.source)?;
    }
    put_blob(
        &blobs,
        &manifest_digest,
        image.manifest.len() as u64,
        BlobSource::Bytes(image.manifest),
    )?;
    let index_path = dir.join("index.json");
    let mut index = match fs::read(&index_path) {
        Ok(b) => serde_json::from_slice::<Value>(&b).map_err(|e| {
            Error::image(
                ImageErrorKind::Malformed,
                index_path.display().to_string(),
                format!("not JSON: {e}"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []})
        }
        Err(e) => return Err(fs_err("open", &index_path, &e)),
    };
    let mut manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ours = manifest_descriptor(&manifest_digest, image.manifest.len(), name);
    if let Some(n) = name {
        let (full, tag) = split_name(n);
        for m in manifests.iter_mut() {
            if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
                if a.get(ANNOTATION_REF_NAME).and_then(Value::as_str) == Some(tag.as_str()) {
                    a.remove(ANNOTATION_REF_NAME);
                }
                if a.get(ANNOTATION_CONTAINERD_NAME).and_then(Value::as_str) == Some(full.as_str())
                {
                    a.remove(ANNOTATION_CONTAINERD_NAME);
                }
                if a.is_empty() {
                    if let Some(o) = m.as_object_mut() {
                        o.remove("annotations");
                    }
                }
            }
        }
    }
    // An unnamed entry of the same manifest is replaced by ours.
    manifests.retain(|m| {
        !(m.get("digest").and_then(Value::as_str) == Some(manifest_digest.as_ref())
            && m.pointer(&format!(
                "/annotations/{}",
                ANNOTATION_REF_NAME.replace('/', "~1")
            ))
            .is_none())
    });
    manifests.push(ours);
    index["manifests"] = Value::Array(manifests);
    if index.get("schemaVersion").is_none() {
        index["schemaVersion"] = json!(2);
    }
    write_atomic(dir, "index.json", &canonical_json(&index))?;
    write_atomic(dir, "oci-layout", &layout_file())?;
    Ok(manifest_digest)
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| fs_err("write", &tmp, &e))?;
    let dst = dir.join(name);
    fs::rename(&tmp, &dst).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        fs_err("rename", &dst, &e)
    })
}

/// Copies one blob into `blobs/sha256/HEX` unless it is there with the right size.
fn put_blob(blobs: &Path, digest: &Digest, size: u64, src: BlobSource<'_>) -> Result<()> {
    let hex = hex_of(digest)?;
    let dst = blobs.join(hex);
    if let Ok(m) = fs::symlink_metadata(&dst) {
        if m.is_file() && m.len() == size {
            return Ok(());
        }
    }
    let tmp = blobs.join(format!(".{hex}.tmp-{}", std::process::id()));
    let r = (|| {
        let f = fs::File::create(&tmp).map_err(|e| fs_err("open", &tmp, &e))?;
        let mut w = DigestWriter::new(std::io::BufWriter::new(f));
        copy_source(src, &mut w, &tmp)?;
        let (got, n, mut inner) = w.finish();
        inner.flush().map_err(|e| fs_err("write", &tmp, &e))?;
        check_blob(digest, size, &got, n)?;
        fs::rename(&tmp, &dst).map_err(|e| fs_err("rename", &dst, &e))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

fn copy_source<W: Write>(src: BlobSource<'_>, w: &mut W, dst: &Path) -> Result<u64> {
    match src {
        BlobSource::Bytes(b) => {
            w.write_all(b).map_err(|e| fs_err("write", dst, &e))?;
            Ok(b.len() as u64)
        }
        BlobSource::Path(p) => {
            let mut f = fs::File::open(p).map_err(|e| fs_err("open", p, &e))?;
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                let n = match f.read(&mut buf) {
                    Ok(0) => return Ok(total),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(fs_err("read", p, &e)),
                };
                w.write_all(&buf[..n])
                    .map_err(|e| fs_err("write", dst, &e))?;
                total += n as u64;
            }
        }
    }
}

fn check_blob(digest: &Digest, size: u64, got: &Digest, n: u64) -> Result<()> {
    if n != size {
        return Err(Error::image(
            ImageErrorKind::SizeMismatch,
            format!("blob {digest}"),
            format!("{n} bytes, the descriptor says {size}"),
        ));
    }
    if got != digest {
        return Err(Error::image(
            ImageErrorKind::DigestMismatch,
            format!("blob {digest}"),
            format!("the bytes hash to {got}"),
        ));
    }
    Ok(())
}

/// Writes `image` as an `oci-archive` (a tar of an OCI image layout with this one image,
/// named `name`) to `out`: `oci-layout`, `index.json`, `blobs/`, `blobs/sha256/` and the blobs
/// sorted by digest, each with mode 0644 (directories 0755), owner 0:0 and mtime 0. Blob
/// bytes are checked against their digests and sizes as they are copied. Returns the
/// manifest's digest and `out` (flushed).
///
/// # Errors
/// As [`write_layout`]; a blob that does not match fails the archive part-way (the caller
/// removes what it wrote).
pub fn write_archive<W: Write>(
    out: W,
    image: &LayoutImage<'_>,
    name: Option<&str>,
) -> Result<(Digest, W)> {
    let (manifest_digest, config_digest) = check_image(image)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [manifest_descriptor(&manifest_digest, image.manifest.len(), name)],
    });
    let mut blobs: BTreeMap<String, (&Digest, u64, BlobSource<'_>)> = BTreeMap::new();
    blobs.insert(
        hex_of(&config_digest)?.to_string(),
        (
            &config_digest,
            image.config.len() as u64,
            BlobSource::Bytes(image.config),
        ),
    );
    blobs.insert(
        hex_of(&manifest_digest)?.to_string(),
        (
            &manifest_digest,
            image.manifest.len() as u64,
            BlobSource::Bytes(image.manifest),
        ),
    );
    for l in image.layers {
        blobs.insert(hex_of(l.digest)?.to_string(), (l.digest, l.size, l.source));
    }
    let archive = PathBuf::from("oci-archive");
    let mut w = ArchiveWriter {
        out,
        path: &archive,
    };
    w.file("oci-layout", &layout_file())?;
    w.file("index.json", &canonical_json(&index))?;
    w.dir("blobs/")?;
    w.dir("blobs/sha256/")?;
    for (hex, (digest, size, src)) in blobs {
        w.header(
            &format!("blobs/sha256/{hex}"),
            EntryType::Regular,
            0o644,
            size,
        )?;
        let mut dw = DigestWriter::new(&mut w.out);
        let n = copy_source_limited(src, &mut dw, size, &archive)?;
        let (got, _, _) = dw.finish();
        check_blob(digest, size, &got, n)?;
        w.pad(size)?;
    }
    w.write(&[0u8; 1024])?;
    let mut out = w.out;
    out.flush().map_err(|e| fs_err("write", &archive, &e))?;
    Ok((manifest_digest, out))
}

/// Copies at most `size` bytes (the tar entry's size) and reports how many the source had
/// (more than `size` counts as `size + 1`, a mismatch).
fn copy_source_limited<W: Write>(
    src: BlobSource<'_>,
    w: &mut W,
    size: u64,
    dst: &Path,
) -> Result<u64> {
    let mut lim = Limited {
        inner: w,
        left: size,
        over: false,
    };
    let n = copy_source(src, &mut lim, dst);
    let over = lim.over;
    let n = n?;
    Ok(if over { size + 1 } else { n })
}

/// Passes through at most `left` bytes and remembers whether more came.
struct Limited<'w, W: Write> {
    inner: &'w mut W,
    left: u64,
    over: bool,
}

impl<W: Write> Write for Limited<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let take = (buf.len() as u64).min(self.left) as usize;
        if take < buf.len() {
            self.over = true;
        }
        self.inner.write_all(&buf[..take])?;
        self.left -= take as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct ArchiveWriter<'p, W: Write> {
    out: W,
    path: &'p Path,
}

impl<W: Write> ArchiveWriter<'_, W> {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .map_err(|e| fs_err("write", self.path, &e))
    }

    fn header(&mut self, name: &str, ty: EntryType, mode: u32, size: u64) -> Result<()> {
        let mut h = Header::new_ustar();
        h.set_entry_type(ty);
        // Names here are at most 77 bytes.
        let n = name.as_bytes();
        h.as_old_mut().name[..n.len()].copy_from_slice(n);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h.set_cksum();
        self.write(h.as_bytes())
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.write(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.header(name, EntryType::Regular, 0o644, bytes.len() as u64)?;
        self.write(bytes)?;
        self.pad(bytes.len() as u64)
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        self.header(name, EntryType::Directory, 0o755, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_059_950), "2026-11-30T17:32:30Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(split_name("app"), ("app:latest".into(), "latest".into()));
        assert_eq!(split_name("app:v1"), ("app:v1".into(), "v1".into()));
        assert_eq!(
            split_name("localhost:5000/app"),
            ("localhost:5000/app:latest".into(), "latest".into())
        );
        assert_eq!(
            split_name("localhost:5000/a/app:2"),
            ("localhost:5000/a/app:2".into(), "2".into())
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [{"z": 1, "y": "\u{1}"}], "c": null}});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":null,"d":[{"y":"\u0001","z":1}]},"b":1}"#
        );
    }

    #[test]
    fn documents_of_a_scratch_image_and_a_derived_one() {
        let layer = NewLayer {
            diff_id: sha256(b"tar"),
            digest: sha256(b"gz"),
            size: 2,
            media_type: MEDIA_TYPE_LAYER_GZIP.into(),
        };
        let mut cfg = ImageConfig::default();
        cfg.set_cmd(Some(vec!["/bin/sh".into()]));
        cfg.set_labels(Some(
            [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into(),
        ));
        let hist = [
            HistoryEntry {
                created_by: "COPY x /".into(),
                empty_layer: false,
                comment: None,
            },
            HistoryEntry {
                created_by: "CMD [\"/bin/sh\"]".into(),
                empty_layer: true,
                comment: None,
            },
        ];
        let a = image_documents(None, &cfg, std::slice::from_ref(&layer), &hist, None).unwrap();
        let b = image_documents(None, &cfg, std::slice::from_ref(&layer), &hist, None).unwrap();
        assert_eq!(a, b, "deterministic");
        let c: ImageConfiguration = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(c.rootfs().diff_ids(), &vec![layer.diff_id.to_string()]);
        assert_eq!(c.history().as_ref().unwrap().len(), 2);
        assert_eq!(c.os().to_string(), "linux");
        assert_eq!(a.config_digest, sha256(&a.config));
        let m: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["config"]["digest"], a.config_digest.to_string());
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_TYPE_LAYER_GZIP);
        // Derived: the base's layers first, docker media types made OCI.
        let base_desc: Descriptor = serde_json::from_value(json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "digest": sha256(b"base").to_string(), "size": 4}))
        .unwrap();
        let d = image_documents(
            Some((&c, std::slice::from_ref(&base_desc))),
            &cfg,
            std::slice::from_ref(&layer),
            &hist[..1],
            Some("2026-11-30T00:00:00Z"),
        )
        .unwrap();
        let m: Value = serde_json::from_slice(&d.manifest).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_TYPE_LAYER_GZIP);
        assert_eq!(m["layers"][0]["digest"], sha256(b"base").to_string());
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
        let c2: ImageConfiguration = serde_json::from_slice(&d.config).unwrap();
        assert_eq!(c2.rootfs().diff_ids().len(), 2);
        assert_eq!(c2.history().as_ref().unwrap().len(), 3);
        assert_eq!(c2.created().as_deref(), Some("2026-11-30T00:00:00Z"));
        // A history that does not match the layers is refused.
        assert!(matches!(
            image_documents(None, &cfg, &[], &hist, None),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn gzip_blobs_are_deterministic_and_hashed() {
        let mut a = GzipBlob::new(Vec::new());
        a.write_all(b"hello hello hello").unwrap();
        let (d, n, bytes) = a.finish().unwrap();
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(d, sha256(&bytes));
        assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut b = GzipBlob::new(Vec::new());
        b.write_all(b"hello hello hello").unwrap();
        assert_eq!(b.finish().unwrap().2, bytes);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello hello hello");
    }
}
