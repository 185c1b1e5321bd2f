//! The store: content-addressed blobs, committed layer directories keyed by chain id, image
//! records and names; see the [module documentation](super#the-store).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::compress::{sha256_of, Compression, Expected, LayerStream};
use super::source::Resolved;
use super::unpack::{unpack, Apply, UnpackOptions, UnpackStats};
use super::{Digest, ImageConfiguration, ImageRef, OverlayFlavour};
use crate::error::io_errno;
use crate::{Errno, Error, ImageErrorKind, Result};

/// The most bytes of an image record, `names.json`, a manifest or a config read from the
/// store (they are small; a bigger one is damage).
const MAX_RECORD: u64 = 16 << 20;

/// A store of images and layers in one directory; see the [module documentation](super).
///
/// ```no_run
/// use contain::image::{ImageRef, Store};
/// let store = Store::open_default()?;
/// let image = store.import(&"/srv/oci/busybox:latest".parse::<ImageRef>()?, None)?;
/// println!("{} has {} layers", image.id(), image.layers().len());
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    flavour: OverlayFlavour,
    /// Owners from the layers' headers (root in the initial user namespace).
    chown: bool,
    sync: bool,
    jobs: usize,
}

/// An image in the store: its config and its layers, bottom first.
#[derive(Debug, Clone)]
pub struct Image {
    id: Digest,
    names: Vec<String>,
    manifest: Digest,
    config: ImageConfiguration,
    layers: Vec<Layer>,
    store: Store,
}

/// One layer of an [`Image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids[i]`).
    pub diff_id: Digest,
    /// The chain id: this layer and every layer below it (image-spec config.md "Layer
    /// ChainID"); the key of its directory.
    pub chain_id: Digest,
    /// sha256 of the blob as imported (compressed or not).
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The blob's media type (`application/vnd.oci.image.layer.v1.tar+gzip`, ...).
    pub media_type: String,
    /// The committed layer directory.
    pub dir: PathBuf,
}

/// One line of [`Store::images`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The image id (the config's digest).
    pub id: Digest,
    /// Its names (`NAME:TAG`), sorted; empty for a dangling image.
    pub names: Vec<String>,
    /// Sum of its layer blobs' sizes, in bytes (as imported; shared layers count in each
    /// image, as `docker images` shows them).
    pub size: u64,
    /// Number of layers.
    pub layers: usize,
    /// When it was imported or built, in seconds since the Unix epoch.
    pub created: u64,
    /// When the image says it was made (its config's `created`, RFC 3339), in seconds since
    /// the Unix epoch: what `docker images` shows as CREATED. `None` when the config has no
    /// (parsable) time.
    pub image_created: Option<i64>,
}

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Layer directories removed.
    pub layers: usize,
    /// Flattened stacks removed.
    pub flattened: usize,
    /// Blobs removed.
    pub blobs: usize,
    /// Leftovers of killed imports removed from `tmp/`.
    pub temporaries: usize,
    /// Bytes of blobs removed.
    pub blob_bytes: u64,
}

/// Progress of an import, as the callback of [`Store::import_with`] sees it. Layers are
/// numbered from 0, bottom first; several are read at once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Progress {
    /// The source was read: its manifest and config are verified.
    Resolved {
        /// Number of layers.
        layers: usize,
        /// Sum of the layer blobs' sizes, when the source says (docker-save does not).
        bytes: Option<u64>,
        /// Which platform of a multi-platform index was picked, and why.
        platform: Option<String>,
    },
    /// A layer is being read: `read` of its `size` raw bytes so far.
    Layer {
        /// Which layer.
        index: usize,
        /// Raw (as stored) bytes read so far.
        read: u64,
        /// The blob's size, when known.
        size: Option<u64>,
    },
    /// A layer is committed.
    LayerDone {
        /// Which layer.
        index: usize,
        /// Already in the store: nothing was unpacked.
        cached: bool,
        /// What unpacking did (all zero when cached).
        stats: LayerStats,
    },
}

/// What unpacking one layer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Entries applied.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Device nodes not created (rootless).
    pub devices_skipped: u64,
    /// `trusted.overlay.*` / `user.overlay.*` xattrs found in the layer and dropped.
    pub overlay_xattrs_stripped: u64,
}

impl From<UnpackStats> for LayerStats {
    fn from(s: UnpackStats) -> LayerStats {
        LayerStats {
            entries: s.entries,
            bytes: s.bytes,
            devices_skipped: s.devices_skipped,
            overlay_xattrs_stripped: s.overlay_xattrs_stripped,
        }
    }
}

/// An image record (`images/IDHEX.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    manifest: String,
    layers: Vec<LayerRecord>,
    created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerRecord {
    diff_id: String,
    chain_id: String,
    digest: String,
    size: u64,
    media_type: String,
}

/// The first part of the names of this process's temporaries that no layer lock covers
/// (the gc lock does: see `Store::open`).
fn pid_lock() -> String {
    format!("pid-{}", std::process::id())
}

/// Takes the lock `dir/NAME` (a blocking `arg` waits; a non-blocking one gives `None` when
/// it is held).
fn lock_file(dir: &Path, name: &str, arg: FlockArg) -> Result<Option<Lock>> {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::sys_path("open", &path, io_errno(&e)))?;
    match Flock::lock(file, arg) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::sys_path("flock", &path, e)),
    }
}

/// A layer blob as read: its digest, size and compression.
type LayerRead = (Digest, u64, Compression);

/// The one field of a config that `images` reads.
#[derive(Deserialize)]
struct CreatedOnly {
    created: Option<String>,
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.123Z`,
/// `...+02:00`), as image configs write `created`; `None` when it is not one.
pub(crate) fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Fraction, then the zone.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match (b.get(i), t.get(i + 1..)) {
        (Some(b'Z' | b'z'), Some("")) => 0,
        (Some(sign @ (b'+' | b'-')), Some(z)) if z.len() == 5 && z.as_bytes()[2] == b':' => {
            let (zh, zm) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = zh * 3600 + zm * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// A held `flock`, released on drop.
type Lock = Flock<File>;

/// Whether this process is root in the initial user namespace (may chown freely and set
/// `trusted.*` xattrs).
fn initial_root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return false;
    }
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| {
            let f: Vec<&str> = m.split_whitespace().collect();
            f == ["0", "0", "4294967295"]
        })
        .unwrap_or(false)
}

impl Store {
    /// The default store directory: `/var/lib/contain` for root, else
    /// `$XDG_DATA_HOME/contain` (`~/.local/share/contain` when unset), as podman's
    /// `/var/lib/containers` and `~/.local/share/containers`.
    ///
    /// # Errors
    /// [`Error::Config`] when not root and neither `XDG_DATA_HOME` nor `HOME` is set.
    pub fn default_root() -> Result<PathBuf> {
        if nix::unistd::geteuid().is_root() {
            return Ok(PathBuf::from("/var/lib/contain"));
        }
        match (std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME")) {
            (Some(d), _) if Path::new(&d).is_absolute() => Ok(Path::new(&d).join("contain")),
            (_, Some(h)) => Ok(Path::new(&h).join(".local/share/contain")),
            _ => Err(Error::config(
                "image store",
                "neither XDG_DATA_HOME nor HOME is set: give the store directory",
            )),
        }
    }

    /// Opens the store at [`Store::default_root`].
    ///
    /// # Errors
    /// As [`Store::default_root`] and [`Store::open`].
    pub fn open_default() -> Result<Store> {
        Store::open(Store::default_root()?)
    }

    /// Opens (creating it, mode 0700) the store in `root`, and removes what killed imports
    /// and builds left in `tmp/` (when none is running: see [`Store::gc`]).
    ///
    /// Its flavour is [`OverlayFlavour::Trusted`] for root in the initial user namespace
    /// (owners from the layers, device nodes created), [`OverlayFlavour::User`] otherwise
    /// (files owned by the caller, device nodes skipped); layers of the two flavours live
    /// apart.
    ///
    /// # Errors
    /// [`Error::Sys`] when a directory cannot be created or opened.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map_err(|e| Error::sys_path("getcwd", &root, io_errno(&e)))?
                .join(root)
        };
        let chown = initial_root();
        let store = Store {
            root,
            flavour: if chown {
                OverlayFlavour::Trusted
            } else {
                OverlayFlavour::User
            },
            chown,
            sync: false,
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
        };
        store.create_dirs()?;
        // Imports and builds hold the gc lock shared while their temporaries exist, and so do
        // `tag` and `remove` while they write names.json: with it free, what `tmp/` holds was
        // left by killed processes (or is a flattening's, under its own lock).
        if let Some(_gc) = store.lock("gc", FlockArg::LockExclusiveNonblock)? {
            store.clean_tmp()?;
        }
        Ok(store)
    }

    /// Uses layers of `flavour` (default: by privilege, see [`Store::open`]). Root may
    /// choose [`OverlayFlavour::User`]; without privilege `Trusted` fails at import (its
    /// xattrs cannot be set).
    #[must_use]
    pub fn flavour(mut self, flavour: OverlayFlavour) -> Store {
        self.flavour = flavour;
        self
    }

    /// `syncfs` each layer's filesystem once before committing it (default off, as
    /// containerd's `--sync-fs`): a crash soon after an import then cannot leave a committed
    /// layer with lost content. No file is fsync'ed on its own.
    #[must_use]
    pub fn sync(mut self, sync: bool) -> Store {
        self.sync = sync;
        self
    }

    /// Unpacks at most `jobs` layers at once (default: the CPUs, at most 8; at least 1).
    #[must_use]
    pub fn jobs(mut self, jobs: usize) -> Store {
        self.jobs = jobs.max(1);
        self
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The flavour of the layers this store uses.
    pub fn overlay_flavour(&self) -> OverlayFlavour {
        self.flavour
    }

    fn create_dirs(&self) -> Result<()> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        // Both flavours' directories: [`Store::flavour`] may choose the other one after
        // `open` (root choosing `User`), and a layer is renamed into them.
        let flavoured = [OverlayFlavour::Trusted, OverlayFlavour::User]
            .into_iter()
            .flat_map(|f| [Path::new("layers"), Path::new("flat")].map(|t| t.join(f.dir_name())));
        let plain = [
            PathBuf::new(),
            "blobs/sha256".into(),
            "locks".into(),
            "images".into(),
            "tmp".into(),
        ];
        for sub in plain.into_iter().chain(flavoured) {
            let dir = self.root.join(sub);
            b.create(&dir)
                .map_err(|e| Error::sys_path("mkdir", &dir, io_errno(&e)))?;
        }
        Ok(())
    }

    /// Takes the lock `locks/NAME` (a blocking `arg` waits; a non-blocking one gives `None`
    /// when it is held).
    fn lock(&self, name: &str, arg: FlockArg) -> Result<Option<Lock>> {
        lock_file(&self.root.join("locks"), name, arg)
    }

    fn lock_wait(&self, name: &str, shared: bool) -> Result<Lock> {
        let arg = if shared {
            FlockArg::LockShared
        } else {
            FlockArg::LockExclusive
        };
        self.lock(name, arg)?
            .ok_or_else(|| Error::sys("flock", Errno::EWOULDBLOCK))
    }

    /// Removes what killed imports, builds and flattenings left in `tmp/`. The caller holds
    /// the gc lock exclusively, so no import or build is running; a flattening (which does
    /// not take the gc lock) keeps its `flat-CHAIN.*` entries under the lock `flat-CHAIN`
    /// (the part of the name before the first `.`), and layer commits theirs under the
    /// chain's: such entries go only when that lock is free.
    fn clean_tmp(&self) -> Result<usize> {
        let tmp = self.root.join("tmp");
        let mut removed = 0;
        let entries =
            std::fs::read_dir(&tmp).map_err(|e| Error::sys_path("opendir", &tmp, io_errno(&e)))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let key = name.split('.').next().unwrap_or(name);
            let chain = key.strip_prefix("flat-").unwrap_or(key);
            let keyed = chain.len() == 64 && chain.bytes().all(|b| b.is_ascii_hexdigit());
            // Other names (`build-*`, `write.*`) have no lock of their own: the gc lock
            // covers them.
            let held = if keyed {
                self.lock(key, FlockArg::LockExclusiveNonblock)?
                    .map(drop)
                    .is_some()
            } else {
                true
            };
            if held {
                remove_tree(&entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.root
            .join("layers")
            .join(self.flavour.dir_name())
            .join(chain.digest())
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.digest())
    }

    /// Imports an image (see [`ImageRef`]) and names it `name` (`NAME[:TAG]`, default tag
    /// `latest`), else by the name the source gives (`RepoTags`, the index's ref name), if
    /// any. Layers already in the store are not unpacked again.
    ///
    /// # Errors
    /// [`Error::Image`] for a missing, malformed or hostile image or layer (the layer's
    /// digest and the refused entry named; nothing of it is committed), [`Error::Sys`] for
    /// the store's own files.
    pub fn import(&self, source: &ImageRef, name: Option<&str>) -> Result<Image> {
        self.import_with(source, name, &|_| {})
    }

    /// As [`Store::import`], calling `progress` as it goes (from several threads: layers are
    /// read in parallel).
    ///
    /// # Errors
    /// As [`Store::import`].
    pub fn import_with(
        &self,
        source: &ImageRef,
        name: Option<&str>,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<Image> {
        if let ImageRef::Stored(reference) = source {
            let image = self.image(reference)?;
            if let Some(name) = name {
                self.tag(&image, name)?;
                return self.image(image.id.as_ref());
            }
            return Ok(image);
        }
        let name = name.map(normalize_name).transpose()?;
        let resolved = Resolved::open(source)?;
        // An import holds the gc lock shared: gc never removes a layer that an import has
        // committed but not yet recorded.
        let _gc = self.lock_wait("gc", true)?;
        let diff_ids = resolved
            .config_parsed
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| parse_digest(d, "config rootfs.diff_ids"))
            .collect::<Result<Vec<_>>>()?;
        if diff_ids.len() != resolved.layers.len() {
            return Err(Error::image(
                ImageErrorKind::Malformed,
                "image config",
                format!(
                    "{} layers in the manifest, {} diff_ids in the config",
                    resolved.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let chains = chain_ids(&diff_ids);
        let bytes = resolved
            .layers
            .iter()
            .map(|l| l.expected.size)
            .sum::<Option<u64>>();
        progress(&Progress::Resolved {
            layers: resolved.layers.len(),
            bytes,
            platform: resolved.platform_note.clone(),
        });
        let done = self.unpack_all(&resolved, &chains, progress)?;

        let id = resolved.config_digest();
        self.write_blob(&id, &resolved.config)?;
        let manifest = if resolved.needs_manifest() {
            resolved.synthesize_manifest(&done)?
        } else {
            resolved.manifest.clone()
        };
        let manifest_digest = sha256_of(&manifest);
        self.write_blob(&manifest_digest, &manifest)?;
        let record = Record {
            id: id.to_string(),
            manifest: manifest_digest.to_string(),
            layers: resolved
                .layers
                .iter()
                .zip(&done)
                .zip(diff_ids.iter().zip(&chains))
                .map(
                    |((l, (digest, size, compression)), (diff, chain))| LayerRecord {
                        diff_id: diff.to_string(),
                        chain_id: chain.to_string(),
                        digest: digest.to_string(),
                        size: *size,
                        media_type: if l.media_type.is_empty() {
                            compression.layer_media_type().to_owned()
                        } else {
                            l.media_type.clone()
                        },
                    },
                )
                .collect(),
            created: now(),
        };
        let _meta = self.lock_wait("store", false)?;
        self.write_record(&record)?;
        if let Some(n) = name.or_else(|| {
            resolved
                .name
                .as_deref()
                .and_then(|n| normalize_name(n).ok())
        }) {
            let mut names = self.read_names()?;
            names.insert(n, id.to_string());
            self.write_names(&names)?;
        }
        drop(_meta);
        self.image(id.as_ref())
    }

    /// Unpacks (or finds) every layer; returns each blob's digest, size and compression,
    /// bottom first.
    fn unpack_all(
        &self,
        resolved: &Resolved,
        chains: &[Digest],
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<Vec<(Digest, u64, Compression)>> {
        let n = resolved.layers.len();
        let state = Committed {
            done: Mutex::new(vec![None; n]),
            cond: Condvar::new(),
        };
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<LayerRead>>>> = Mutex::new(vec![None; n]);
        std::thread::scope(|s| {
            for _ in 0..self.jobs.min(n) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = self.layer(resolved, chains, i, &state, progress);
                    state.set(i, r.is_ok());
                    lock_ignoring_poison(&results)[i] = Some(r);
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        // The first failure, bottom first (a layer that waited for a failed one says less).
        let mut out = Vec::with_capacity(n);
        let mut waited = None;
        for r in results {
            match r {
                Some(Ok(v)) => out.push(v),
                Some(Err(Error::Image {
                    kind: ImageErrorKind::NotFound,
                    object,
                    ..
                })) if object == LOWER_FAILED => {
                    waited.get_or_insert_with(|| Error::sys("import", Errno::ECANCELED));
                }
                Some(Err(e)) => return Err(e),
                None => return Err(Error::sys("import (a layer thread ended)", Errno::EIO)),
            }
        }
        match waited {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Layer `i`: committed already (its blob kept, or copied now), or unpacked and committed.
    fn layer(
        &self,
        resolved: &Resolved,
        chains: &[Digest],
        i: usize,
        state: &Committed,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<(Digest, u64, Compression)> {
        let source = &resolved.layers[i];
        let chain = &chains[i];
        let object = format!("layer {}", source.expected.diff_id);
        let _lock = self.lock_wait(chain.digest(), false)?;
        let dir = self.layer_dir(chain);
        // A blob of unknown digest (a docker-save layer file) kept uncompressed before has
        // the diff_id as its digest.
        let digest = source
            .expected
            .digest
            .clone()
            .unwrap_or_else(|| source.expected.diff_id.clone());
        let blob = self.blob_path(&digest);
        if dir.is_dir() && blob.is_file() {
            let size = std::fs::metadata(&blob).map_or(0, |m| m.len());
            let compression = blob_compression(&blob)?;
            progress(&Progress::LayerDone {
                index: i,
                cached: true,
                stats: LayerStats::default(),
            });
            return Ok((digest, size, compression));
        }
        drop(blob);
        let tmp_name = format!(
            "{}.{}.{}",
            chain.digest(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = self.root.join("tmp").join(&tmp_name);
        let blob_tmp = self.root.join("tmp").join(format!("{tmp_name}.blob"));
        let cleanup = Cleanup(vec![tmp.clone(), blob_tmp.clone()]);
        let mut blob_file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&blob_tmp)
            .map_err(|e| Error::sys_path("open", &blob_tmp, io_errno(&e)))?;
        let raw = resolved.open_layer(i)?;
        let size = source.expected.size;
        let report = |read| {
            progress(&Progress::Layer {
                index: i,
                read,
                size,
            })
        };
        let counted = Counted {
            inner: raw,
            read: 0,
            step: 0,
            report: &report,
        };
        let mut stream = LayerStream::new(
            Box::new(counted),
            source.expected.clone(),
            Some(&mut blob_file),
        )?;
        let cached = dir.is_dir();
        let stats = if cached {
            // The layer is here but its blob is not (another image brought the same
            // layer compressed otherwise): keep this blob; nothing to unpack.
            std::io::copy(&mut stream, &mut std::io::sink())
                .map_err(|e| Error::image(ImageErrorKind::Malformed, &object, e.to_string()))?;
            UnpackStats::default()
        } else {
            let mut lowers = || -> Result<Vec<OwnedFd>> {
                state.wait_below(i)?;
                (0..i)
                    .rev()
                    .map(|j| open_dir(&self.layer_dir(&chains[j])))
                    .collect()
            };
            let fd = new_dir(&tmp)?;
            // Reading, hashing and inflating on one thread, the file system calls on this
            // one: each layer costs the slower of the two instead of their sum.
            let (unpacked, back) = std::thread::scope(|s| {
                let (mut tar, pump) = Pipe::start(s, stream);
                let r = self.unpack_into(
                    &mut tar,
                    &fd,
                    Apply::Layer(self.flavour),
                    &mut lowers,
                    &object,
                );
                drop(tar);
                (r, pump.join())
            });
            stream =
                back.map_err(|_| Error::sys("import (a layer reader thread ended)", Errno::EIO))?;
            unpacked?
        };
        let compression = stream.compression();
        let (digest, size) = stream.finish()?;
        drop(blob_file);
        let blob = self.blob_path(&digest);
        if !blob.exists() {
            rename(&blob_tmp, &blob)?;
        }
        if !cached {
            // The commit point: before it no directory of this chain id exists.
            rename(&tmp, &dir)?;
        }
        drop(cleanup);
        progress(&Progress::LayerDone {
            index: i,
            cached,
            stats: stats.into(),
        });
        Ok((digest, size, compression))
    }

    /// Whether layers get the owners their tars give (root in the initial user namespace).
    pub(crate) fn owns_files(&self) -> bool {
        self.chown
    }

    /// The gc lock, shared: what is committed meanwhile is not collected.
    pub(crate) fn gc_lock_shared(&self) -> Result<Lock> {
        self.lock_wait("gc", true)
    }

    pub(crate) fn layer_dir_of(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain)
    }

    pub(crate) fn blob_path_of(&self, digest: &Digest) -> PathBuf {
        self.blob_path(digest)
    }

    /// Writes a store file through `tmp/` and a rename.
    pub(crate) fn write_file_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.root.join("tmp"), path, bytes)
    }

    /// A new directory in `tmp/`, removed on drop (`pid-PID.TAG.N`). The caller holds the gc
    /// lock shared ([`Store::gc_lock_shared`]) for as long as it exists: that is what keeps
    /// [`Store::open`] and [`Store::gc`] from removing it meanwhile.
    pub(crate) fn temp_dir(&self, tag: &str) -> Result<crate::image::build::TempDir> {
        let path = self.root.join("tmp").join(format!(
            "{}.{tag}.{}",
            pid_lock(),
            SEQ.fetch_add(1, Ordering::Relaxed),
        ));
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o700);
        b.create(&path)
            .map_err(|e| Error::sys_path("mkdir", &path, io_errno(&e)))?;
        Ok(crate::image::build::TempDir { path })
    }

    /// The directories of `layers` (bottom first) to mount, the bottom ones flattened when
    /// there are more than `max`.
    pub(crate) fn lower_dirs_of(&self, layers: &[Layer], max: usize) -> Result<Vec<PathBuf>> {
        let max = max.max(2);
        if layers.len() <= max {
            return Ok(layers.iter().map(|l| l.dir.clone()).collect());
        }
        let cut = layers.len() - max + 1;
        let flat = self.flatten(&layers[..cut])?;
        Ok(std::iter::once(flat)
            .chain(layers[cut..].iter().map(|l| l.dir.clone()))
            .collect())
    }

    /// Stores a new image: its config and manifest blobs, its record (its layers already
    /// committed), and its names.
    pub(crate) fn record_image(
        &self,
        config: &[u8],
        manifest: &[u8],
        layers: &[Layer],
        names: &[String],
    ) -> Result<Image> {
        let id = sha256_of(config);
        self.write_blob(&id, config)?;
        let manifest_digest = sha256_of(manifest);
        self.write_blob(&manifest_digest, manifest)?;
        let record = Record {
            id: id.to_string(),
            manifest: manifest_digest.to_string(),
            layers: layers
                .iter()
                .map(|l| LayerRecord {
                    diff_id: l.diff_id.to_string(),
                    chain_id: l.chain_id.to_string(),
                    digest: l.digest.to_string(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                })
                .collect(),
            created: now(),
        };
        let _meta = self.lock_wait("store", false)?;
        self.write_record(&record)?;
        if !names.is_empty() {
            let mut all = self.read_names()?;
            for n in names {
                all.insert(normalize_name(n)?, id.to_string());
            }
            self.write_names(&all)?;
        }
        drop(_meta);
        self.image(id.as_ref())
    }

    /// Applies the layer tar `tar` to the directory `dir` (in `tmp/`) and, when asked,
    /// `syncfs`es its filesystem once.
    fn unpack_into(
        &self,
        tar: &mut dyn Read,
        dir: &OwnedFd,
        apply: Apply,
        lowers: &mut dyn FnMut() -> Result<Vec<OwnedFd>>,
        object: &str,
    ) -> Result<UnpackStats> {
        let opts = UnpackOptions {
            apply,
            chown: self.chown,
        };
        let stats = unpack(tar, dir.as_fd(), lowers, opts).map_err(|e| in_object(e, object))?;
        if self.sync {
            nix::unistd::syncfs(dir.as_fd()).map_err(|e| Error::sys("syncfs", e))?;
        }
        Ok(stats)
    }

    /// Commits a layer a build made: `blob` (a file in `tmp/`, which is moved or removed)
    /// unpacked onto `below` (the image's layers so far, bottom first), unless the store
    /// has that chain already.
    pub(crate) fn commit_layer_blob(
        &self,
        blob: &Path,
        diff_id: &Digest,
        digest: &Digest,
        size: u64,
        media_type: &str,
        below: &[Layer],
    ) -> Result<Layer> {
        let chain = match below.last() {
            None => diff_id.clone(),
            Some(parent) => sha256_of(format!("{} {diff_id}", parent.chain_id).as_bytes()),
        };
        let object = format!("layer {diff_id}");
        let _lock = self.lock_wait(chain.digest(), false)?;
        let dir = self.layer_dir(&chain);
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.{}",
            chain.digest(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _cleanup = Cleanup(vec![tmp.clone(), blob.to_path_buf()]);
        if !dir.is_dir() {
            let file = File::open(blob).map_err(|e| Error::sys_path("open", blob, io_errno(&e)))?;
            let expected = Expected {
                digest: Some(digest.clone()),
                size: Some(size),
                diff_id: diff_id.clone(),
                object: object.clone(),
            };
            let mut stream = LayerStream::new(
                Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                expected,
                None,
            )?;
            let fd = new_dir(&tmp)?;
            let mut lowers = || below.iter().rev().map(|l| open_dir(&l.dir)).collect();
            self.unpack_into(
                &mut stream,
                &fd,
                Apply::Layer(self.flavour),
                &mut lowers,
                &object,
            )?;
            stream.finish()?;
        }
        let kept = self.blob_path(digest);
        if !kept.exists() {
            rename(blob, &kept)?;
        }
        if !dir.is_dir() {
            rename(&tmp, &dir)?;
        }
        Ok(Layer {
            diff_id: diff_id.clone(),
            chain_id: chain,
            digest: digest.clone(),
            size,
            media_type: media_type.to_owned(),
            dir,
        })
    }

    fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest);
        if path.is_file() {
            return Ok(());
        }
        write_atomic(&self.root.join("tmp"), &path, bytes)
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root
            .join("images")
            .join(format!("{}.json", id.digest()))
    }

    fn write_record(&self, r: &Record) -> Result<()> {
        let id = parse_digest(&r.id, "image record")?;
        let bytes = serde_json::to_vec_pretty(r)
            .map_err(|e| Error::image(ImageErrorKind::Malformed, "image record", e.to_string()))?;
        write_atomic(&self.root.join("tmp"), &self.record_path(&id), &bytes)
    }

    fn read_record(&self, id: &Digest) -> Result<Record> {
        let path = self.record_path(id);
        let bytes = read_capped(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::image(
                ImageErrorKind::Malformed,
                path.display().to_string(),
                e.to_string(),
            )
        })
    }

    fn read_names(&self) -> Result<BTreeMap<String, String>> {
        let path = self.root.join("names.json");
        match read_capped(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::image(
                    ImageErrorKind::Malformed,
                    path.display().to_string(),
                    e.to_string(),
                )
            }),
            Err(Error::Sys {
                errno: Errno::ENOENT,
                ..
            }) => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    fn write_names(&self, names: &BTreeMap<String, String>) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(names)
            .map_err(|e| Error::image(ImageErrorKind::Malformed, "names.json", e.to_string()))?;
        write_atomic(
            &self.root.join("tmp"),
            &self.root.join("names.json"),
            &bytes,
        )
    }

    fn record_ids(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("images");
        let entries =
            std::fs::read_dir(&dir).map_err(|e| Error::sys_path("opendir", &dir, io_errno(&e)))?;
        let mut ids = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name();
            if let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) {
                if let Ok(d) = parse_digest(&format!("sha256:{hex}"), "image record") {
                    ids.push(d);
                }
            }
        }
        Ok(ids)
    }

    /// The image id that `reference` names: `NAME[:TAG]` (tag `latest` by default), a full
    /// id `sha256:HEX`, or a prefix of HEX of at least 12 digits (unique).
    fn resolve_id(&self, reference: &str, names: &BTreeMap<String, String>) -> Result<Digest> {
        if let Some(id) = find_name(reference, names).and_then(|n| names.get(&n)) {
            return parse_digest(id, "names.json");
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() >= 12
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let found: Vec<Digest> = self
                .record_ids()?
                .into_iter()
                .filter(|d| d.digest().starts_with(hex))
                .collect();
            match found.len() {
                1 => return Ok(found.into_iter().next().expect("one")),
                0 => {}
                _ => {
                    return Err(Error::image(
                        ImageErrorKind::Ambiguous,
                        reference,
                        format!("{} images have ids starting with {hex}", found.len()),
                    ))
                }
            }
        }
        Err(Error::image(
            ImageErrorKind::NotFound,
            reference,
            format!("no such image in the store {}", self.root.display()),
        ))
    }

    /// The image `reference` names: `NAME[:TAG]` (tag `latest` by default), `sha256:HEX`, or
    /// a unique prefix of HEX of at least 12 digits. Names are compared as docker shows them
    /// (`docker.io/library/busybox:1` is `busybox:1`), and a name without a registry also
    /// finds `localhost/NAME` (podman's local images) when the store has no `NAME` itself.
    ///
    /// # Errors
    /// [`Error::Image`] with [`ImageErrorKind::NotFound`] (or `Ambiguous` for a prefix of
    /// several ids), or `Malformed` for a damaged record.
    pub fn image(&self, reference: &str) -> Result<Image> {
        let names = self.read_names()?;
        let id = self.resolve_id(reference, &names).map_err(|e| match e {
            Error::Image {
                kind: ImageErrorKind::NotFound,
                object,
                entry,
                reason,
            } => {
                let reason = match super::source::path_hint(reference) {
                    Some(hint) => format!("{reason}; {hint}"),
                    None => reason,
                };
                Error::Image {
                    kind: ImageErrorKind::NotFound,
                    object,
                    entry,
                    reason,
                }
            }
            e => e,
        })?;
        self.load(&id, &names)
    }

    fn load(&self, id: &Digest, names: &BTreeMap<String, String>) -> Result<Image> {
        let record = self.read_record(id)?;
        let config_bytes = read_capped(&self.blob_path(id))?;
        let config = ImageConfiguration::from_reader(&config_bytes[..]).map_err(|e| {
            Error::image(
                ImageErrorKind::Malformed,
                format!("config {id}"),
                e.to_string(),
            )
        })?;
        let layers = record
            .layers
            .iter()
            .map(|l| {
                let chain_id = parse_digest(&l.chain_id, "image record")?;
                Ok(Layer {
                    diff_id: parse_digest(&l.diff_id, "image record")?,
                    digest: parse_digest(&l.digest, "image record")?,
                    size: l.size,
                    media_type: l.media_type.clone(),
                    dir: self.layer_dir(&chain_id),
                    chain_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let id_text = id.to_string();
        Ok(Image {
            id: id.clone(),
            names: names
                .iter()
                .filter(|(_, v)| **v == id_text)
                .map(|(k, _)| k.clone())
                .collect(),
            manifest: parse_digest(&record.manifest, "image record")?,
            config,
            layers,
            store: self.clone(),
        })
    }

    /// Every image, by name then id.
    ///
    /// # Errors
    /// [`Error::Sys`] or [`Error::Image`] (`Malformed`) for the store's own files.
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let names = self.read_names()?;
        let mut out = Vec::new();
        for id in self.record_ids()? {
            let record = self.read_record(&id)?;
            let id_text = id.to_string();
            out.push(ImageSummary {
                names: names
                    .iter()
                    .filter(|(_, v)| **v == id_text)
                    .map(|(k, _)| k.clone())
                    .collect(),
                size: record.layers.iter().map(|l| l.size).sum(),
                layers: record.layers.len(),
                created: record.created,
                image_created: read_capped(&self.blob_path(&id))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<CreatedOnly>(&b).ok())
                    .and_then(|c| c.created)
                    .and_then(|t| parse_rfc3339(&t)),
                id,
            });
        }
        out.sort_by(|a, b| (a.names.first(), a.id.digest()).cmp(&(b.names.first(), b.id.digest())));
        Ok(out)
    }

    /// Names `image` `name` (`NAME[:TAG]`); the name leaves the image that had it, as
    /// `docker tag` moves a tag.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed name; [`Error::Sys`] for the store's files.
    pub fn tag(&self, image: &Image, name: &str) -> Result<()> {
        let name = normalize_name(name)?;
        // names.json is written through `tmp/`: the gc lock keeps `Store::open` off it.
        let _gc = self.lock_wait("gc", true)?;
        let _meta = self.lock_wait("store", false)?;
        let mut names = self.read_names()?;
        names.insert(name, image.id.to_string());
        self.write_names(&names)
    }

    /// Removes `reference`, as `docker rmi`: a name is untagged, and the image goes when it
    /// has no name left; an id removes the image and all its names. Layers stay until
    /// [`Store::gc`]. Returns the ids of the images removed.
    ///
    /// # Errors
    /// As [`Store::image`].
    pub fn remove(&self, reference: &str) -> Result<Vec<Digest>> {
        // As in `tag`: names.json is written through `tmp/`.
        let _gc = self.lock_wait("gc", true)?;
        let _meta = self.lock_wait("store", false)?;
        let mut names = self.read_names()?;
        let id = self.resolve_id(reference, &names)?;
        let id_text = id.to_string();
        let by_name = find_name(reference, &names).filter(|n| names.get(n) == Some(&id_text));
        match by_name {
            Some(n) => {
                names.remove(&n);
            }
            None => names.retain(|_, v| *v != id_text),
        }
        self.write_names(&names)?;
        if names.values().any(|v| *v == id_text) {
            return Ok(Vec::new());
        }
        let path = self.record_path(&id);
        std::fs::remove_file(&path).map_err(|e| Error::sys_path("unlink", &path, io_errno(&e)))?;
        Ok(vec![id])
    }

    /// Removes the layers, flattened stacks and blobs that no image references, and what
    /// killed imports left; waits for running imports to finish first.
    ///
    /// # Errors
    /// [`Error::Sys`] for the store's files.
    pub fn gc(&self) -> Result<GcReport> {
        let _gc = self.lock_wait("gc", false)?;
        let mut report = GcReport {
            temporaries: self.clean_tmp()?,
            ..GcReport::default()
        };
        let mut chains = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        for id in self.record_ids()? {
            let r = self.read_record(&id)?;
            blobs.insert(id.digest().to_owned());
            if let Ok(m) = parse_digest(&r.manifest, "image record") {
                blobs.insert(m.digest().to_owned());
            }
            for l in r.layers {
                chains.insert(l.chain_id.trim_start_matches("sha256:").to_owned());
                blobs.insert(l.digest.trim_start_matches("sha256:").to_owned());
            }
        }
        for flavour in [OverlayFlavour::Trusted, OverlayFlavour::User] {
            for (top, count) in [
                ("layers", &mut report.layers),
                ("flat", &mut report.flattened),
            ] {
                let dir = self.root.join(top).join(flavour.dir_name());
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if chains.contains(&name) {
                        continue;
                    }
                    let key = if top == "flat" {
                        format!("flat-{name}")
                    } else {
                        name
                    };
                    if let Some(_l) = self.lock(&key, FlockArg::LockExclusiveNonblock)? {
                        remove_tree(&e.path())?;
                        *count += 1;
                    }
                }
            }
        }
        let dir = self.root.join("blobs/sha256");
        let entries =
            std::fs::read_dir(&dir).map_err(|e| Error::sys_path("opendir", &dir, io_errno(&e)))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                let size = e.metadata().map_or(0, |m| m.len());
                std::fs::remove_file(e.path())
                    .map_err(|err| Error::sys_path("unlink", e.path(), io_errno(&err)))?;
                report.blobs += 1;
                report.blob_bytes += size;
            }
        }
        // Lock files of layers that are gone.
        if let Ok(entries) = std::fs::read_dir(self.root.join("locks")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let chain = name.strip_prefix("flat-").unwrap_or(&name);
                if chain.len() == 64 && !chains.contains(chain) {
                    if let Some(_l) = self.lock(&name, FlockArg::LockExclusiveNonblock)? {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(report)
    }
}

/// The object name that a layer thread uses to say that a layer below it failed.
const LOWER_FAILED: &str = "(a lower layer failed)";

/// Which layers of an import are committed (`Some(true)`), failed (`Some(false)`), pending.
struct Committed {
    done: Mutex<Vec<Option<bool>>>,
    cond: Condvar,
}

impl Committed {
    fn set(&self, i: usize, ok: bool) {
        lock_ignoring_poison(&self.done)[i] = Some(ok);
        self.cond.notify_all();
    }

    /// Waits until every layer below `i` is committed.
    fn wait_below(&self, i: usize) -> Result<()> {
        let mut done = lock_ignoring_poison(&self.done);
        loop {
            if done[..i].contains(&Some(false)) {
                return Err(Error::image(
                    ImageErrorKind::NotFound,
                    LOWER_FAILED,
                    "a layer below this one could not be imported",
                ));
            }
            if done[..i].iter().all(|d| *d == Some(true)) {
                return Ok(());
            }
            done = self.cond.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A unique suffix for temporary names of this process.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Removes these paths (files or trees) on drop, if they still exist.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.symlink_metadata().is_ok() {
                let _ = remove_tree(p);
            }
        }
    }
}

/// Chunks the reader thread of a [`Pipe`] reads at once.
const PIPE_CHUNK: usize = 256 << 10;
/// Chunks in flight between the two threads of a [`Pipe`] (4 MiB at most).
const PIPE_DEPTH: usize = 16;

/// A layer's stream read on a thread of its own: the reading end of a bounded queue of
/// chunks (the buffers go back to the reader for reuse). Reading it gives the stream's bytes
/// in order, then its error or its end. Dropping it stops the reader at its next chunk.
struct Pipe {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Pipe {
    /// Starts reading `stream` on a thread of `scope`; the thread gives it back at its end
    /// (end of stream, read error, or the [`Pipe`] dropped).
    fn start<'scope, 'env, R: Read + Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        mut stream: R,
    ) -> (Pipe, std::thread::ScopedJoinHandle<'scope, R>) {
        let (tx, chunks) = std::sync::mpsc::sync_channel(PIPE_DEPTH);
        let (empty, recycled) = std::sync::mpsc::channel::<Vec<u8>>();
        let pump = scope.spawn(move || {
            loop {
                let mut buf = recycled
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(PIPE_CHUNK));
                buf.resize(PIPE_CHUNK, 0);
                let sent = match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        tx.send(Ok(buf))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                };
                if sent.is_err() {
                    break; // the reading end is gone
                }
            }
            stream
        });
        let pipe = Pipe {
            chunks,
            empty,
            cur: Vec::new(),
            pos: 0,
        };
        (pipe, pump)
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.cur, chunk);
                    self.pos = 0;
                    if used.capacity() != 0 {
                        let _ = self.empty.send(used);
                    }
                }
                Ok(Err(e)) => return Err(e),
                // The reader ended: the stream's end (errors come as chunks).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that reports how much it has read, every 1 MiB.
struct Counted<'a> {
    inner: Box<dyn Read + Send + 'a>,
    read: u64,
    step: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read >= self.step || n == 0 {
            self.step = self.read + (1 << 20);
            (self.report)(self.read);
        }
        Ok(n)
    }
}

/// Gives an error from unpacking the object it is about.
fn in_object(e: Error, object: &str) -> Error {
    match e {
        Error::Image {
            kind,
            object: o,
            entry,
            reason,
        } if o.is_empty() => Error::Image {
            kind,
            object: object.to_owned(),
            entry,
            reason,
        },
        e => e,
    }
}

/// The compression of a kept blob, from its first bytes.
fn blob_compression(path: &Path) -> Result<Compression> {
    let mut head = [0u8; 8];
    let mut f = File::open(path).map_err(|e| Error::sys_path("open", path, io_errno(&e)))?;
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(Error::sys_path("read", path, io_errno(&e))),
        }
    }
    Ok(Compression::detect(&head[..got]))
}

/// Creates the directory `path` (mode 0755, as a layer's root) and opens it.
fn new_dir(path: &Path) -> Result<OwnedFd> {
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o755);
    b.create(path)
        .map_err(|e| Error::sys_path("mkdir", path, io_errno(&e)))?;
    open_dir(path)
}

/// `path` as a directory fd (no symlink followed at the last component).
fn open_dir(path: &Path) -> Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::sys_path("open", path, io_errno(&e)))?;
    Ok(file.into())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::sys_path("rename", to, io_errno(&e)))
}

/// Writes `bytes` to `path` through a temporary file in `tmp` (same filesystem) and a rename.
fn write_atomic(tmp: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let t = tmp.join(format!(
        "{}.write.{}",
        pid_lock(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let guard = Cleanup(vec![t.clone()]);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&t)
        .map_err(|e| Error::sys_path("open", &t, io_errno(&e)))?;
    f.write_all(bytes)
        .map_err(|e| Error::sys_path("write", &t, io_errno(&e)))?;
    drop(f);
    rename(&t, path)?;
    drop(guard);
    Ok(())
}

/// Reads a store file of at most [`MAX_RECORD`] bytes.
fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::sys_path("open", path, io_errno(&e)))?;
    let mut buf = Vec::new();
    f.take(MAX_RECORD + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::sys_path("read", path, io_errno(&e)))?;
    if buf.len() as u64 > MAX_RECORD {
        return Err(Error::image(
            ImageErrorKind::Malformed,
            path.display().to_string(),
            format!("larger than {MAX_RECORD} bytes"),
        ));
    }
    Ok(buf)
}

/// Removes a file or a tree without following symlinks, making directories writable first
/// where that is what stops it (a layer may hold read-only directories).
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::sys_path("lstat", path, io_errno(&e))),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path)
            .map_err(|e| Error::sys_path("unlink", path, io_errno(&e)));
    }
    if std::fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    make_writable(path)?;
    std::fs::remove_dir_all(path).map_err(|e| Error::sys_path("rmdir", path, io_errno(&e)))
}

/// Gives every directory under `dir` (itself included) owner rwx, symlinks not followed.
fn make_writable(dir: &Path) -> Result<()> {
    let meta = dir
        .symlink_metadata()
        .map_err(|e| Error::sys_path("lstat", dir, io_errno(&e)))?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))
            .map_err(|e| Error::sys_path("chmod", dir, io_errno(&e)))?;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&e.path())?;
            }
        }
    }
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A `sha256:HEX` digest (64 lower-case hex digits), else [`ImageErrorKind::Malformed`] (or
/// `Unsupported` for another algorithm) naming `what`.
pub(crate) fn parse_digest(s: &str, what: &str) -> Result<Digest> {
    let Some(hex) = s.strip_prefix("sha256:") else {
        return Err(Error::image(
            if s.contains(':') {
                ImageErrorKind::Unsupported
            } else {
                ImageErrorKind::Malformed
            },
            what,
            format!("{s:?} is not a sha256 digest"),
        ));
    };
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::image(
            ImageErrorKind::Malformed,
            what,
            format!("{s:?} is not a sha256 digest (64 lower-case hex digits)"),
        ));
    }
    Digest::from_str(s).map_err(|e| Error::image(ImageErrorKind::Malformed, what, e.to_string()))
}

/// The chain ids of a stack of diff_ids, bottom first (image-spec config.md "Layer ChainID":
/// `ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))`).
pub(crate) fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => sha256_of(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// `NAME[:TAG]` with the tag made explicit (`latest`); the tag is what follows the last `:`
/// after the last `/` (a registry's `host:port/` is not a tag), and `docker.io/library/` or
/// `docker.io/` dropped as docker shows names. A digest reference (`NAME@sha256:...`) keeps
/// its digest.
pub(crate) fn normalize_name(name: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(Error::config(
            "image name",
            format!("{name:?}: {why} (expected NAME[:TAG], e.g. busybox:1.36)"),
        ))
    };
    if name.is_empty() || name.len() > 255 {
        return bad("empty or longer than 255 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:@/+".contains(&b))
    {
        return bad("only letters, digits and -._:@/+ may appear");
    }
    if name.starts_with("sha256:") {
        return bad("an image id is not a name");
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if !name.contains('@') {
        if last.is_empty() || last.starts_with(':') {
            return bad("no name");
        }
        if last.ends_with(':') {
            return bad("empty tag");
        }
    }
    // As docker names it: `docker.io/library/` (what skopeo and buildah write into a
    // docker-archive's RepoTags) is dropped, so that `busybox:1` finds it.
    let familiar = super::source::familiar(name);
    if familiar.is_empty() || familiar.starts_with(['/', ':', '@']) {
        return bad("no name");
    }
    Ok(familiar)
}

/// The key of `names` that `reference` (a name) means: the name itself in its familiar form,
/// else, for a name without a registry, `localhost/NAME` (podman's and buildah's local
/// images) when the store has it.
fn find_name(reference: &str, names: &BTreeMap<String, String>) -> Option<String> {
    let n = normalize_name(reference).ok()?;
    if names.contains_key(&n) {
        return Some(n);
    }
    // A name recorded before names were kept in the familiar form.
    if let Some(k) = names.keys().find(|k| super::source::familiar(k) == n) {
        return Some(k.clone());
    }
    let first = n.split('/').next().unwrap_or(&n);
    let registry = n.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    let local = format!("localhost/{n}");
    (!registry && names.contains_key(&local)).then_some(local)
}

impl Image {
    /// The image id: the digest of its config.
    pub fn id(&self) -> &Digest {
        &self.id
    }

    /// Its names (`NAME:TAG`) in the store, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The digest of its manifest in the store.
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest
    }

    /// Its config (image-spec config.md).
    pub fn configuration(&self) -> &ImageConfiguration {
        &self.config
    }

    /// Its layers, bottom first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The store it is in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Path of a blob of this image's store (config, manifest or layer).
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.store.blob_path(digest)
    }

    /// Writes this image into the OCI image layout directory `dir` (created if missing; other
    /// images there stay), named `name` (`NAME[:TAG]`: `org.opencontainers.image.ref.name` is
    /// the tag, as skopeo's `oci:DIR:TAG` reads it). Blobs are copied from the store and
    /// checked against their digests. Returns the manifest's digest.
    ///
    /// # Errors
    /// [`Error::Image`] when a kept blob no longer matches its digest or is missing;
    /// [`Error::Sys`] for the files written.
    pub fn write_layout(&self, dir: &Path, name: Option<&str>) -> Result<Digest> {
        self.with_documents(|image| super::build::layout::write_layout(dir, image, name))
    }

    /// Writes this image as an `oci-archive` tarball (a tar of an OCI image layout, as skopeo's
    /// `oci-archive:FILE:TAG` reads it) to `path` (written through a temporary file in the
    /// same directory and renamed). Returns the manifest's digest.
    ///
    /// # Errors
    /// As [`Image::write_layout`].
    pub fn write_archive(&self, path: &Path, name: Option<&str>) -> Result<Digest> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map_or("archive".into(), |n| n.to_string_lossy()),
            std::process::id()
        ));
        let guard = Cleanup(vec![tmp.clone()]);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| Error::sys_path("open", &tmp, io_errno(&e)))?;
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        let digest = self.with_documents(|image| {
            let (d, out) = super::build::layout::write_archive(out, image, name)?;
            out.into_inner()
                .map_err(|e| Error::sys_path("write", &tmp, io_errno(e.error())))?;
            Ok(d)
        })?;
        rename(&tmp, path)?;
        drop(guard);
        Ok(digest)
    }

    /// Calls `f` with this image's manifest, config and layer blobs as the layout writers
    /// take them.
    fn with_documents<T>(
        &self,
        f: impl FnOnce(&super::build::layout::LayoutImage<'_>) -> Result<T>,
    ) -> Result<T> {
        use super::build::layout::{Blob, BlobSource, LayoutImage};
        let manifest = read_capped(&self.blob_path(&self.manifest))?;
        let config = read_capped(&self.blob_path(&self.id))?;
        let paths: Vec<PathBuf> = self
            .layers
            .iter()
            .map(|l| self.blob_path(&l.digest))
            .collect();
        let blobs: Vec<Blob<'_>> = self
            .layers
            .iter()
            .zip(&paths)
            .map(|(l, p)| Blob {
                digest: &l.digest,
                size: l.size,
                source: BlobSource::Path(p),
            })
            .collect();
        f(&LayoutImage {
            manifest: &manifest,
            config: &config,
            layers: &blobs,
        })
    }

    /// The layer directories to mount, bottom first: the image's layers, with the bottom
    /// ones flattened into one cached directory when there are more than `max` of them.
    pub(crate) fn lower_dirs(&self, max: usize) -> Result<Vec<PathBuf>> {
        self.store.lower_dirs_of(&self.layers, max)
    }
}

impl Store {
    /// One directory holding `layers` (bottom first) applied in turn, cached under
    /// `flat/FLAVOUR/CHAINHEX` (the chain id of the top one): for stacks deeper than the
    /// kernel mounts.
    fn flatten(&self, layers: &[Layer]) -> Result<PathBuf> {
        let top = &layers[layers.len() - 1].chain_id;
        let dir = self
            .root
            .join("flat")
            .join(self.flavour.dir_name())
            .join(top.digest());
        let key = format!("flat-{}", top.digest());
        let _lock = self.lock_wait(&key, false)?;
        if dir.is_dir() {
            return Ok(dir);
        }
        let tmp = self.root.join("tmp").join(format!(
            "{key}.{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let cleanup = Cleanup(vec![tmp.clone()]);
        let fd = new_dir(&tmp)?;
        for l in layers {
            let object = format!("layer {}", l.diff_id);
            let path = self.blob_path(&l.digest);
            let file =
                File::open(&path).map_err(|e| Error::sys_path("open", &path, io_errno(&e)))?;
            let expected = Expected {
                digest: Some(l.digest.clone()),
                size: Some(l.size),
                diff_id: l.diff_id.clone(),
                object: object.clone(),
            };
            let mut stream = LayerStream::new(
                Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                expected,
                None,
            )?;
            self.unpack_into(
                &mut stream,
                &fd,
                Apply::Flatten,
                &mut || Ok(Vec::new()),
                &object,
            )?;
            stream.finish()?;
        }
        rename(&tmp, &dir)?;
        drop(cleanup);
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_removes_only_temporaries_no_import_or_build_holds() {
        let root = std::env::temp_dir().join(format!("contain-store-tmp-{}", std::process::id()));
        let _ = remove_tree(&root);
        let store = Store::open(&root).unwrap();
        let tmp = root.join("tmp");
        // A killed process's write, a killed import's layer (its chain lock is free), and this
        // process's own build directory.
        let dead = tmp.join("pid-4000000000.write.1");
        let dead_layer = tmp.join(format!("{}.77.1", "a".repeat(64)));
        // A build holds the gc lock shared while its directory exists.
        let gc = store.gc_lock_shared().unwrap();
        let ours = store.temp_dir("build").unwrap();
        std::fs::write(&dead, b"x").unwrap();
        std::fs::create_dir(&dead_layer).unwrap();
        // Another open (as another process would do it) while the build runs: nothing goes.
        let again = Store::open(&root).unwrap();
        assert!(
            ours.path.is_dir(),
            "a running build's directory was removed"
        );
        assert!(dead.exists() && dead_layer.exists());
        drop((ours, again, gc));
        // With no import or build running, a dead process's leftovers go at the next open.
        let dead = tmp.join("pid-4000000000.build.1");
        std::fs::create_dir(&dead).unwrap();
        let third = Store::open(&root).unwrap();
        assert!(!dead.exists());
        drop((third, store));
        remove_tree(&root).unwrap();
    }

    #[test]
    fn rfc3339_times_as_configs_write_them() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("2000-02-29T12:00:00Z"), Some(951_825_600));
        // What the build writes reads back.
        assert_eq!(
            parse_rfc3339(&crate::image::build::layout::rfc3339(1_234_567_890)),
            Some(1_234_567_890)
        );
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "x023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn chain_ids_and_names() {
        let d =
            |c: char| parse_digest(&format!("sha256:{}", c.to_string().repeat(64)), "t").unwrap();
        let chains = chain_ids(&[d('a'), d('b')]);
        assert_eq!(chains[0], d('a'));
        assert_eq!(
            chains[1],
            sha256_of(format!("{} {}", d('a'), d('b')).as_bytes())
        );
        assert_eq!(normalize_name("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            normalize_name("host:5000/a/b").unwrap(),
            "host:5000/a/b:latest"
        );
        assert_eq!(normalize_name("a/b:1.2").unwrap(), "a/b:1.2");
        for bad in ["", "a:", "sha256:abc", "a b", "../x\0"] {
            assert!(normalize_name(bad).is_err(), "{bad:?}");
        }
        assert!(parse_digest("sha256:../../etc", "t").is_err());
        assert!(parse_digest(&format!("sha256:{}", "A".repeat(64)), "t").is_err());
    }
}

#[cfg(test)]
mod pipe_tests {
    use super::*;

    /// A reader of `len` counting bytes in reads of odd sizes, failing at `fail` if given.
    struct Source {
        pos: usize,
        len: usize,
        fail: Option<usize>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if Some(self.pos) == self.fail {
                return Err(std::io::Error::other("bad blob"));
            }
            let end = self.len.min(self.fail.unwrap_or(usize::MAX));
            let n = buf.len().min(end - self.pos).min(100_003);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((self.pos + i) % 251) as u8;
            }
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn a_pipe_gives_the_bytes_in_order_then_the_error_then_the_stream_back() {
        let len = 3 * PIPE_CHUNK + 12_345;
        std::thread::scope(|s| {
            let src = Source {
                pos: 0,
                len,
                fail: None,
            };
            let (mut pipe, pump) = Pipe::start(s, src);
            let mut got = Vec::new();
            let mut small = [0u8; 777];
            loop {
                let n = pipe.read(&mut small).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&small[..n]);
            }
            assert_eq!(got.len(), len);
            assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
            assert_eq!(pump.join().unwrap().pos, len);
        });
        std::thread::scope(|s| {
            let fail = PIPE_CHUNK + 10;
            let src = Source {
                pos: 0,
                len,
                fail: Some(fail),
            };
            let (mut pipe, _pump) = Pipe::start(s, src);
            let mut got = Vec::new();
            let err = std::io::copy(&mut pipe, &mut got).unwrap_err();
            assert_eq!(err.to_string(), "bad blob");
            assert_eq!(got.len(), fail);
        });
        // The reading end dropped early: the reader stops (the scope ends).
        std::thread::scope(|s| {
            let src = Source {
                pos: 0,
                len: 1 << 30,
                fail: None,
            };
            let (mut pipe, pump) = Pipe::start(s, src);
            let mut b = [0u8; 10];
            pipe.read_exact(&mut b).unwrap();
            drop(pipe);
            assert!(pump.join().unwrap().pos < 1 << 30);
        });
    }
}
