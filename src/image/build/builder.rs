//! The build driver: each RUN runs in a container of this crate on the image's layers with a
//! persistent upper directory, which becomes the new layer; COPY and WORKDIR write into an
//! upper directory directly; an unchanged step reuses its cached layer without running.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageManifest;
use serde::{Deserialize, Serialize};

use super::containerfile::{Base, Containerfile, Step, StepKind};
use super::copy::{self, Target};
use super::diff::DiffOptions;
use super::layout::{self, HistoryEntry, NewLayer};
use crate::image::compress::sha256_of;
use crate::image::store::{parse_digest, remove_tree, Layer};
use crate::image::{Digest, Image, ImageConfig, OverlayFlavour, Store};
use crate::namespace::Namespaces;
use crate::process::Container;
use crate::rootfs::Rootfs;
use crate::{Error, ImageErrorKind, Result};

/// The most bytes of a Containerfile read.
const MAX_CONTAINERFILE: u64 = 1 << 20;

/// What to build, as `docker build` / `buildah bud` take it.
///
/// ```no_run
/// use contain::image::build::BuildOptions;
/// use contain::image::Store;
/// let store = Store::open_default()?;
/// let image = store.build(&BuildOptions::new("./app").tag("app:1"), &|_| {})?;
/// println!("built {}", image.id());
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BuildOptions {
    /// The build context: the directory COPY reads from.
    pub context: PathBuf,
    /// The Containerfile (`-f`); default `CONTEXT/Containerfile`, else `CONTEXT/Dockerfile`
    /// (as buildah and podman look for them).
    pub file: Option<PathBuf>,
    /// Names for the result (`-t NAME[:TAG]`, repeatable).
    pub tags: Vec<String>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// Run every step, reusing no cached layer (`--no-cache`).
    pub no_cache: bool,
    /// `SOURCE_DATE_EPOCH`: the config's `created` times, and every file time in new layers
    /// clamped to it, so that the same input gives the same digests (seconds since the epoch).
    pub source_date_epoch: Option<i64>,
}

impl BuildOptions {
    /// Builds `context` with its `Containerfile` (or `Dockerfile`).
    pub fn new(context: impl Into<PathBuf>) -> BuildOptions {
        BuildOptions {
            context: context.into(),
            ..BuildOptions::default()
        }
    }

    /// Names the result `name` (`NAME[:TAG]`); repeatable.
    #[must_use]
    pub fn tag(mut self, name: impl Into<String>) -> BuildOptions {
        self.tags.push(name.into());
        self
    }

    /// The Containerfile to read instead of the context's.
    #[must_use]
    pub fn file(mut self, file: impl Into<PathBuf>) -> BuildOptions {
        self.file = Some(file.into());
        self
    }

    /// A build argument (`--build-arg K=V`).
    #[must_use]
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> BuildOptions {
        self.build_args.insert(key.into(), value.into());
        self
    }

    /// Runs every step again (`--no-cache`).
    #[must_use]
    pub fn no_cache(mut self, no_cache: bool) -> BuildOptions {
        self.no_cache = no_cache;
        self
    }

    /// Times fixed for reproducible images (see [`BuildOptions::source_date_epoch`]).
    #[must_use]
    pub fn source_date_epoch(mut self, secs: i64) -> BuildOptions {
        self.source_date_epoch = Some(secs);
        self
    }
}

/// What a build reports as it goes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BuildEvent {
    /// A step starts: `number` of `total` (from 1), as written (`RUN make`).
    Step {
        /// Which step, from 1.
        number: usize,
        /// How many steps (FROM included).
        total: usize,
        /// The instruction as docker's history shows it.
        instruction: String,
    },
    /// The step's layer came from the cache: it did not run.
    Cached {
        /// Which step.
        number: usize,
    },
    /// The build is done.
    Done {
        /// The new image's id.
        id: Digest,
    },
}

/// A cache record: `build-cache/KEYHEX.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheRecord {
    /// `None`: the step wrote nothing.
    layer: Option<CachedLayer>,
    /// When the step ran (seconds since the epoch); absent in records of older versions.
    #[serde(default)]
    made: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedLayer {
    diff_id: String,
    digest: String,
    size: u64,
    media_type: String,
}

/// The state of the image being built.
struct State {
    layers: Vec<Layer>,
    new_layers: Vec<NewLayer>,
    history: Vec<HistoryEntry>,
    config: ImageConfig,
}

impl Store {
    /// Builds an image from a Containerfile (see [`super::containerfile`] for the subset):
    /// each RUN in a container of this crate (all namespaces, no network, as root inside), whose
    /// writable layer becomes a new layer; COPY from the context. A step whose parent
    /// layers, instruction (and, for COPY, source contents) are unchanged reuses its cached
    /// layer without running. The base image must be in the store (`FROM scratch` needs
    /// none). The result is named [`BuildOptions::tags`]. Its config's `created` is when its
    /// last layer-making step ran (first ran, for one from the cache), so that a rebuild
    /// entirely from the cache is the same image; [`BuildOptions::source_date_epoch`] fixes
    /// it instead.
    ///
    /// # Errors
    /// [`Error::Parse`] for the Containerfile (with the line); [`Error::Image`] with
    /// [`ImageErrorKind::StepFailed`] when a RUN exits non-zero, [`ImageErrorKind::NotFound`]
    /// for a missing base; [`Error::Config`] for a COPY source missing from the context, or
    /// a context without a `Containerfile` or `Dockerfile` when no file is named;
    /// [`Error::Unsupported`] for a rootless `COPY --chown` to another user than root (only the
    /// caller's own ids exist there); and the errors of [`Container::spawn`] for a RUN.
    ///
    /// Rootless (not root in the initial user namespace), each RUN gets a user namespace with
    /// the caller as root, and what the caller owns in the new layer is recorded as 0:0, as
    /// the unpacked layers show it to the container.
    pub fn build(
        &self,
        opts: &BuildOptions,
        events: &(dyn Fn(&BuildEvent) + Sync),
    ) -> Result<Image> {
        let tags = opts
            .tags
            .iter()
            .map(|t| crate::image::store::normalize_name(t))
            .collect::<Result<Vec<_>>>()?;
        let text = read_containerfile(opts)?;
        let file = Containerfile::parse(&text)?;
        let (base_image, mut state) = match file.base(&opts.build_args)? {
            Base::Scratch => (
                None,
                State {
                    layers: Vec::new(),
                    new_layers: Vec::new(),
                    history: Vec::new(),
                    config: ImageConfig::default(),
                },
            ),
            Base::Image(name) => {
                let image = self.image(&name).map_err(|e| match e {
                    Error::Image {
                        kind: ImageErrorKind::NotFound,
                        object,
                        ..
                    } => Error::image(
                        ImageErrorKind::NotFound,
                        object,
                        "the FROM image is not in the store: import it first (images import)",
                    ),
                    e => e,
                })?;
                let config = image.configuration().config().clone().unwrap_or_default();
                let state = State {
                    layers: image.layers().to_vec(),
                    new_layers: Vec::new(),
                    history: Vec::new(),
                    config,
                };
                (Some(image), state)
            }
        };
        let steps = file.evaluate(&state.config, &opts.build_args)?;
        let total = steps.len() + 1;
        events(&BuildEvent::Step {
            number: 1,
            total,
            instruction: match &base_image {
                Some(_) => format!("FROM {}", file.from.image.raw()),
                None => "FROM scratch".to_owned(),
            },
        });
        let _gc = self.gc_lock_shared()?;
        // When the last layer-making step ran (or, from the cache, first ran): the image's
        // `created`, so that a rebuild from the cache is the same image (same id).
        let mut made: Option<i64> = None;
        for (i, step) in steps.iter().enumerate() {
            let number = i + 2;
            events(&BuildEvent::Step {
                number,
                total,
                instruction: step.created_by(),
            });
            step.apply_to(&mut state.config);
            let makes_layer = step.makes_layer() || matches!(step.kind, StepKind::Workdir(_));
            if !makes_layer {
                state.history.push(HistoryEntry {
                    created_by: step.created_by(),
                    empty_layer: true,
                    comment: None,
                });
                continue;
            }
            let key = self.cache_key(&state, step, opts)?;
            let cached = if opts.no_cache {
                None
            } else {
                self.cache_hit(&key, &state)?
            };
            let layer = match cached {
                Some((hit, at)) => {
                    events(&BuildEvent::Cached { number });
                    made = at;
                    hit
                }
                None => {
                    let new = self.run_step(&state, step, opts)?;
                    made = Some(self.write_cache(&key, new.as_ref().map(|(n, _)| n))?);
                    new.map(|(_, l)| l)
                }
            };
            match layer {
                Some(layer) => {
                    state.new_layers.push(NewLayer {
                        diff_id: layer.diff_id.clone(),
                        digest: layer.digest.clone(),
                        size: layer.size,
                        media_type: layer.media_type.clone(),
                    });
                    state.layers.push(layer);
                    state.history.push(HistoryEntry {
                        created_by: step.created_by(),
                        empty_layer: false,
                        comment: None,
                    });
                }
                None => state.history.push(HistoryEntry {
                    created_by: step.created_by(),
                    empty_layer: true,
                    comment: None,
                }),
            }
        }
        let image = self.record_built(base_image.as_ref(), &state, &tags, opts, made)?;
        events(&BuildEvent::Done {
            id: image.id().clone(),
        });
        Ok(image)
    }

    /// The host ids that files of the container's `ids` get in an upper layer: themselves
    /// as root; rootless, the caller's for root, and nothing else can be had.
    fn host_ids(&self, ids: (u32, u32)) -> Result<(u32, u32)> {
        match (self.owns_files(), ids) {
            (true, ids) => Ok(ids),
            (false, (0, 0)) => Ok(caller_ids()),
            (false, (u, g)) => Err(Error::unsupported(
                "COPY --chown in a rootless build",
                format!(
                    "{u}:{g}: without root only the caller's own ids (root inside) can own \
                     files; build as root, or chown in a RUN step"
                ),
            )),
        }
    }

    /// The cache key of a layer-making step: the parent chain, the resolved instruction, and
    /// for COPY the digest of the sources' contents.
    fn cache_key(&self, state: &State, step: &Step, opts: &BuildOptions) -> Result<Digest> {
        let parent = state
            .layers
            .last()
            .map_or_else(|| "scratch".to_owned(), |l| l.chain_id.to_string());
        let mut text = format!("{parent}\n{}\n", step.cache_key());
        if let StepKind::Copy { sources, .. } = &step.kind {
            text.push_str(&copy::sources_digest(&opts.context, sources)?);
        }
        if let Some(epoch) = opts.source_date_epoch {
            text.push_str(&format!("\nSOURCE_DATE_EPOCH={epoch}"));
        }
        Ok(sha256_of(text.as_bytes()))
    }

    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.root()
            .join("build-cache")
            .join(format!("{}.json", key.digest()))
    }

    /// The cached result of a step, if its layer is still in the store (`None` for a step
    /// that wrote nothing), and when the step ran.
    fn cache_hit(
        &self,
        key: &Digest,
        state: &State,
    ) -> Result<Option<(Option<Layer>, Option<i64>)>> {
        let Ok(bytes) = std::fs::read(self.cache_path(key)) else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<CacheRecord>(&bytes) else {
            return Ok(None);
        };
        let made = record.made;
        let Some(l) = record.layer else {
            return Ok(Some((None, made)));
        };
        let diff_id = parse_digest(&l.diff_id, "build cache")?;
        let digest = parse_digest(&l.digest, "build cache")?;
        let chain = match state.layers.last() {
            None => diff_id.clone(),
            Some(p) => sha256_of(format!("{} {diff_id}", p.chain_id).as_bytes()),
        };
        let dir = self.layer_dir_of(&chain);
        if !dir.is_dir() || !self.blob_path_of(&digest).is_file() {
            return Ok(None);
        }
        Ok(Some((
            Some(Layer {
                diff_id,
                chain_id: chain,
                digest,
                size: l.size,
                media_type: l.media_type,
                dir,
            }),
            made,
        )))
    }

    /// Records the result of a step that ran now; returns now (seconds since the epoch).
    fn write_cache(&self, key: &Digest, layer: Option<&NewLayer>) -> Result<i64> {
        let now = unix_now();
        let record = CacheRecord {
            made: Some(now),
            layer: layer.map(|l| CachedLayer {
                diff_id: l.diff_id.to_string(),
                digest: l.digest.to_string(),
                size: l.size,
                media_type: l.media_type.clone(),
            }),
        };
        let dir = self.root().join("build-cache");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::sys_path("mkdir", &dir, crate::error::io_errno(&e)))?;
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| Error::image(ImageErrorKind::Malformed, "build cache", e.to_string()))?;
        self.write_file_atomic(&self.cache_path(key), &bytes)?;
        Ok(now)
    }

    /// Runs a RUN, COPY or WORKDIR step into a fresh upper directory and commits what it
    /// wrote as a layer (`None` when it wrote nothing).
    fn run_step(
        &self,
        state: &State,
        step: &Step,
        opts: &BuildOptions,
    ) -> Result<Option<(NewLayer, Layer)>> {
        let work = self.temp_dir("build")?;
        let upper = work.path.join("upper");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&upper)
            .map_err(|e| Error::sys_path("mkdir", &upper, crate::error::io_errno(&e)))?;
        let lowers = self.step_lowers(state, &work.path)?;
        let top_first: Vec<&Path> = lowers.iter().rev().map(PathBuf::as_path).collect();
        let opaque = opaque_xattr(self.overlay_flavour());
        match &step.kind {
            StepKind::Run {
                command,
                env,
                proxy_env,
                user,
                workdir,
            } => {
                let stubs = mount_point_stubs(&top_first, opaque);
                let argv = command.argv();
                let Some((program, args)) = argv.split_first() else {
                    return Err(Error::image(
                        ImageErrorKind::Malformed,
                        format!("RUN at line {}", step.line),
                        "an empty command",
                    ));
                };
                // As root no user namespace: the layers' owners and trusted.* xattrs are
                // the host's. Rootless one, with the caller as root.
                let namespaces = if self.owns_files() {
                    Namespaces::all() - Namespaces::USER
                } else {
                    Namespaces::all()
                };
                let mut c = Container::new(program)
                    .args(args)
                    .namespaces(namespaces)
                    .current_dir(workdir)
                    .rootfs(
                        Rootfs::from_layers(lowers.clone())
                            .persistent_upper(&upper)
                            .userxattr(self.overlay_flavour() == OverlayFlavour::User),
                    );
                for kv in env.iter().chain(proxy_env) {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    c = c.env(k, v);
                }
                if !user.is_empty() {
                    c = c.user(user.parse()?);
                }
                let status = c.spawn()?.wait()?;
                if !status.success() {
                    return Err(Error::image(
                        ImageErrorKind::StepFailed,
                        format!("RUN at line {}", step.line),
                        format!("{} returned {status}", step.created_by()),
                    ));
                }
                remove_stubs(&upper, &stubs);
            }
            StepKind::Copy {
                chown,
                sources,
                dest,
            } => {
                let owner = match chown {
                    None => (0, 0),
                    Some(c) => chown_ids(&lowers, c)?,
                };
                let owner = self.host_ids(owner)?;
                let t = Target {
                    upper: &upper,
                    lowers: &top_first,
                    opaque,
                    owner,
                };
                copy::copy(&t, &opts.context, sources, dest)?;
            }
            StepKind::Workdir(dir) => {
                let t = Target {
                    upper: &upper,
                    lowers: &top_first,
                    opaque,
                    owner: self.host_ids((0, 0))?,
                };
                copy::make_dir(&t, dir)?;
            }
            _ => return Ok(None),
        }
        self.commit_upper(state, &upper, &work.path, opts)
    }

    /// The layer directories a step runs on, bottom first (flattened past the kernel's
    /// limit); for an image without layers, one empty directory in `work`.
    fn step_lowers(&self, state: &State, work: &Path) -> Result<Vec<PathBuf>> {
        if state.layers.is_empty() {
            let empty = work.join("empty");
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&empty)
                .map_err(|e| Error::sys_path("mkdir", &empty, crate::error::io_errno(&e)))?;
            return Ok(vec![empty]);
        }
        let max = crate::rootfs::max_lowers()?;
        self.lower_dirs_of(&state.layers, max)
    }

    /// The upper directory as a gzip layer blob, committed; `None` when it is empty.
    fn commit_upper(
        &self,
        state: &State,
        upper: &Path,
        work: &Path,
        opts: &BuildOptions,
    ) -> Result<Option<(NewLayer, Layer)>> {
        let fd = File::open(upper)
            .map_err(|e| Error::sys_path("open", upper, crate::error::io_errno(&e)))?;
        let blob_path = work.join("layer.tar.gz");
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&blob_path)
            .map_err(|e| Error::sys_path("open", &blob_path, crate::error::io_errno(&e)))?;
        let mut diff_opts = DiffOptions::new(self.overlay_flavour());
        diff_opts.source_date_epoch = opts.source_date_epoch;
        if !self.owns_files() {
            diff_opts.root_ids = Some(caller_ids());
        }
        let (new, diff, out) = layout::write_gzip_layer(
            std::os::fd::AsFd::as_fd(&fd),
            &diff_opts,
            std::io::BufWriter::with_capacity(1 << 20, out),
        )?;
        out.into_inner()
            .map_err(|e| Error::sys_path("write", &blob_path, crate::error::io_errno(e.error())))?;
        if diff.entries == 0 {
            return Ok(None);
        }
        let layer = self.commit_layer_blob(
            &blob_path,
            &new.diff_id,
            &new.digest,
            new.size,
            &new.media_type,
            &state.layers,
        )?;
        Ok(Some((new, layer)))
    }

    /// Writes the built image's config, manifest and record, and names it. Its `created`:
    /// `SOURCE_DATE_EPOCH`, else `made` (when its last layer-making step ran), else now.
    fn record_built(
        &self,
        base: Option<&Image>,
        state: &State,
        tags: &[String],
        opts: &BuildOptions,
        made: Option<i64>,
    ) -> Result<Image> {
        let created_secs = opts.source_date_epoch.or(made).unwrap_or_else(unix_now);
        let created = layout::rfc3339(created_secs);
        let base_manifest = match base {
            Some(b) => {
                let bytes = std::fs::read(self.blob_path_of(b.manifest_digest())).map_err(|e| {
                    Error::sys_path(
                        "read",
                        self.blob_path_of(b.manifest_digest()),
                        crate::error::io_errno(&e),
                    )
                })?;
                Some(ImageManifest::from_reader(&bytes[..]).map_err(|e| {
                    Error::image(
                        ImageErrorKind::Malformed,
                        format!("manifest {}", b.manifest_digest()),
                        e.to_string(),
                    )
                })?)
            }
            None => None,
        };
        let base_docs = match (base, &base_manifest) {
            (Some(b), Some(m)) => Some((b.configuration(), m.layers().as_slice())),
            _ => None,
        };
        let docs = layout::image_documents(
            base_docs,
            &state.config,
            &state.new_layers,
            &state.history,
            Some(&created),
        )?;
        self.record_image(&docs.config, &docs.manifest, &state.layers, tags)
    }
}

/// The caller's effective uid and gid.
fn caller_ids() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}

/// The opaque-directory xattr of a store flavour's layers (and of the overlay mounted on them).
fn opaque_xattr(f: OverlayFlavour) -> &'static CStr {
    match f {
        OverlayFlavour::Trusted => c"trusted.overlay.opaque",
        OverlayFlavour::User => c"user.overlay.opaque",
    }
}

/// The mount points a container's rootfs creates when the image lacks them: `/proc`, `/sys`,
/// `/dev`, and the generated `/etc` files. Those missing from the layers are removed from a
/// RUN's upper afterwards (when still empty), so that they do not become part of the layer.
const MOUNT_POINTS: &[&str] = &[
    "proc",
    "sys",
    "dev",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc",
];

fn mount_point_stubs(top_first: &[&Path], opaque: &CStr) -> Vec<&'static str> {
    MOUNT_POINTS
        .iter()
        .copied()
        .filter(|p| {
            crate::rootfs::layers::merged_dir(top_first, p.as_bytes(), opaque)
                .map(|d| !d.missing.is_empty())
                // A file (etc/hosts) is no directory: it exists.
                .unwrap_or(false)
        })
        .collect()
}

/// Removes the empty mount-point stubs a RUN left (files of size 0, empty directories).
///
/// The upper directory is the RUN's work: a parent on the way (`etc`) may be a symbolic link
/// it made, even one to a host directory. Each stub's parent is opened beneath the upper
/// without following any link (a stub whose parent is a link is the RUN's and stays), and
/// the stub itself is looked at and removed there, never followed.
fn remove_stubs(upper: &Path, stubs: &[&str]) {
    use std::os::fd::AsFd;
    let Ok(root) = File::open(upper) else {
        return;
    };
    for s in stubs {
        let (parent, name) = match s.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => (".", *s),
        };
        // Through descriptors, no symlink followed: the RUN may have left `etc` as a link
        // to anywhere on the host.
        let (Ok(parent_c), Ok(name_c)) = (CString::new(parent), CString::new(name)) else {
            continue;
        };
        let Ok(dir) = copy::open_beneath(
            root.as_fd(),
            &parent_c,
            libc::O_DIRECTORY | libc::O_RDONLY,
            0,
        ) else {
            continue;
        };
        let Ok(st) = nix::sys::stat::fstatat(
            dir.as_fd(),
            name_c.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            continue;
        };
        let flag = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG if st.st_size == 0 => nix::unistd::UnlinkatFlags::NoRemoveDir,
            // Fails, and keeps it, unless empty.
            libc::S_IFDIR => nix::unistd::UnlinkatFlags::RemoveDir,
            _ => continue,
        };
        let _ = nix::unistd::unlinkat(dir.as_fd(), name_c.as_c_str(), flag);
    }
}

/// `--chown` as ids: names through the image's `/etc/passwd` and `/etc/group`; a user
/// without a group gets the gid equal to its uid (Dockerfile reference, COPY --chown).
fn chown_ids(lowers: &[PathBuf], c: &super::containerfile::Chown) -> Result<(u32, u32)> {
    let rootfs = Rootfs::from_layers(lowers.to_vec());
    let spec = match &c.group {
        Some(g) => format!("{}:{g}", c.user),
        None => c.user.clone(),
    };
    let user: crate::process::User = spec.parse()?;
    let passwd = rootfs.read_file(c"etc/passwd", false)?;
    let group = match user.group() {
        Some(crate::process::Id::Name(_)) => rootfs.read_file(c"etc/group", false)?,
        _ => None,
    };
    let r = user.resolve(passwd.as_deref(), group.as_deref())?;
    Ok(match &c.group {
        Some(_) => (r.uid, r.gid),
        None => (r.uid, r.uid),
    })
}

/// The Containerfile's text (at most 1 MiB).
fn read_containerfile(opts: &BuildOptions) -> Result<String> {
    let path = match &opts.file {
        Some(f) => f.clone(),
        None => {
            let c = opts.context.join("Containerfile");
            let d = opts.context.join("Dockerfile");
            match (c.exists(), d.exists()) {
                (true, _) => c,
                (false, true) => d,
                (false, false) => {
                    return Err(Error::config(
                        "Containerfile",
                        format!(
                            "the context {} has no Containerfile and no Dockerfile: name the \
                             file (BuildOptions::file, the build example's -f)",
                            opts.context.display()
                        ),
                    ))
                }
            }
        }
    };
    let f = File::open(&path)
        .map_err(|e| Error::sys_path("open", &path, crate::error::io_errno(&e)))?;
    let mut text = String::new();
    f.take(MAX_CONTAINERFILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::sys_path("read", &path, crate::error::io_errno(&e)))?;
    if text.len() as u64 > MAX_CONTAINERFILE {
        return Err(Error::parse(
            path.display().to_string(),
            "larger than 1 MiB",
        ));
    }
    Ok(text)
}

/// A directory in the store's `tmp/`, removed on drop.
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = remove_tree(&self.path);
    }
}

/// Seconds since the epoch (0 for a clock before it).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
