//! The container's filesystem: a root directory with a throw-away writable layer, a fresh
//! `/proc` with the OCI masked and read-only paths, a read-only `/sys`, a minimal `/dev`,
//! the caller's volumes, and `pivot_root` into it all.
//!
//! A [`Rootfs`] is plain data. Give it to [`Container::rootfs`](crate::process::Container::rootfs);
//! `spawn` prepares every string and table in the parent, and the child assembles the tree in
//! its own mount namespace with raw system calls only, between `clone` and `execve`.
//!
//! # How the tree is built (and why nothing is left on the host)
//! 1. The child makes its copy of the host's mounts recursively private: nothing it mounts
//!    can propagate back.
//! 2. The new root is mounted *on top of the host's `/`* in the child's namespace. The
//!    process's root still points at the host's root directory below it, so every host path
//!    (the image, bind sources, `/proc/self/fd`) stays reachable by its usual name while the
//!    new tree is built through descriptors. No host directory is needed as a mount point and
//!    none is created: the new mounts exist only in the child's namespace and disappear with
//!    it, even if the parent is killed.
//!    - [`RootfsMode::Overlay`] (default): a tmpfs holds the overlay's upper and work
//!      directories; the overlay (lower: the image directory) becomes the root, stacked on
//!      top of that tmpfs, which leaves with the old root in step 4 (the overlay keeps its
//!      own reference). Every write lands in that tmpfs and vanishes with the container. The
//!      layers are passed to overlayfs as `/proc/self/fd/N` of descriptors the child opened,
//!      so no host path appears in the container's `/proc/self/mountinfo` and any directory
//!      name works.
//!    - [`RootfsMode::ReadOnly`] / [`RootfsMode::ReadWrite`]: a recursive bind of the image
//!      directory (read-only, or writable straight to the directory). A read-only stack of
//!      layers ([`Rootfs::from_layers`]) is an overlay without an upper layer.
//!    - [`Rootfs::host`]: a tmpfs with read-only binds of the host's `/usr`, `/bin`, `/lib*`,
//!      ... and a few files of `/etc`.
//! 3. Inside the new root, every mount target is resolved with `openat2(RESOLVE_IN_ROOT)`
//!    (see [`crate::mount`]): a symlink in the image (`/dev -> /host/dir`, `../../..`) can
//!    only ever resolve inside the root. `/proc`, `/dev` (tmpfs; device nodes, devpts,
//!    `/dev/shm`, `/dev/mqueue`, the fd links), `/sys` (the order of runc's default mounts),
//!    the caller's mounts, then the masked and read-only paths.
//! 4. `pivot_root` from the new root, with the old root put on a directory of a small holder
//!    tmpfs stacked on the new root's `/` (named through the host's `/proc/self/fd`), and the
//!    holder is detached (`umount2(MNT_DETACH)`): the host's mounts are gone from the
//!    container's namespace, and with them the scratch tmpfs mounts stacked below the new root
//!    (the overlay's upper layer, the generated `/etc` files'). One detach for all: each
//!    `umount2` that detaches something waits for an RCU grace period
//!    (`synchronize_rcu_expedited`), 0.09-0.4 ms on the 2-core VM, the dearest system call of
//!    the start. (runc's `pivot_root(".", ".")` and `umount2(".")` would detach the topmost
//!    scratch mount instead of the old root.)
//!
//! Every host path is opened before anything is stacked on the host's `/` (but the overlay's
//! scratch tmpfs, which comes after the layers): first the mounts that name host paths are
//! begun (a bind's source opened, the device nodes' bind fallbacks too; an overlay volume,
//! whose directories are host paths, created and detached), then the root's own
//! directories are opened (the image or layers, a persistent upper). A `..` at the process's
//! root walks into whatever is stacked there (the kernel's `follow_dotdot` stays at the root,
//! then steps into the mounts on it), so a host path through a symlink with a `..` from `/`
//! resolved later would lead into the image, and the image's symlinks anywhere on the host:
//! a volume's source is always the host's. Each mount is finished from its descriptor at
//! its turn.
//!
//! # Modes
//! | mode | writes go to | mount points missing in the image |
//! |---|---|---|
//! | `Overlay` | a tmpfs in the container's namespace (lost at exit) | created in that tmpfs |
//! | `Overlay` + [`persistent_upper`](Rootfs::persistent_upper) | the caller's directory | created there |
//! | `ReadOnly` | nowhere (`EROFS`) | an error (`EROFS`, saying the root is read-only) |
//! | `ReadWrite` | the image directory itself | created in the image directory |
//!
//! The image directory is never modified in `Overlay` and `ReadOnly` modes. A bind-mounted
//! root (`ReadOnly`, `ReadWrite`) shows the image's host path in the *root* column of the
//! container's mountinfo, as any bind mount does; the overlay does not.
//!
//! # Layers
//! [`Rootfs::from_layers`] runs a stack of layer directories as an image store keeps them
//! (each layer its own directory, bottom first as in an image manifest): they are the lower
//! layers of one overlay, with the throw-away (or [persistent](Rootfs::persistent_upper))
//! upper layer on top. Inside a layer, a character device 0:0 is a whiteout (the name is
//! deleted from the layers below) and a directory with the xattr `trusted.overlay.opaque` =
//! `y` (or `user.overlay.opaque` on a [`userxattr`](Rootfs::userxattr) mount) hides what the
//! layers below have in it: overlayfs' own format, which the image store writes.
//!
//! - The child opens every layer and names them by descriptor, with `lowerdir+`
//!   (Linux 6.7) or, on older kernels, in one `mount(2)` page of options: at most
//!   [`max_lowers`] layers (500 either way); more fail at `spawn` with [`Error::Unsupported`]
//!   ("too many layers"). Flatten the bottom layers into one directory to fit.
//! - Every overlay (one layer or many) is mounted with `index=off`, `redirect_dir=nofollow`
//!   and `metacopy=off`: a layer's crafted `overlay.redirect` or `overlay.metacopy` xattrs are
//!   never followed. Renaming a directory of a lower layer fails with `EXDEV` (`mv` copies),
//!   as with the kernel's default.
//! - With a user namespace, or [`Rootfs::userxattr`]`(true)`, the mount honours
//!   `user.overlay.*` xattrs only (layers made without privilege carry only those);
//!   otherwise `trusted.overlay.*` only.
//! - [`RootfsMode::ReadOnly`] of two layers or more is an overlay without an upper layer
//!   (read-only by nature); of one layer, a read-only bind as for [`Rootfs::new`].
//!   [`RootfsMode::ReadWrite`] needs a single directory.
//! - The layer directories are never written, whatever the mode.
//!
//! # /proc, /sys, /dev
//! - `/proc` is a new procfs, which shows the container's processes only if it has its own
//!   PID namespace: a rootfs therefore needs one ([`Namespaces::PID`], created or joined).
//!   The OCI default masked paths get `/dev/null` (files; the node is checked to be the
//!   character device 1:3 through its descriptor) or an empty read-only tmpfs (directories);
//!   the read-only paths are bound onto themselves read-only. Paths the kernel does not have
//!   are skipped.
//! - `/sys` is a new read-only sysfs when the container has its own network namespace (sysfs
//!   shows the network devices of the namespace that mounts it), else a read-only recursive
//!   bind of the host's `/sys`.
//! - `/dev` is a small tmpfs (`nosuid,noexec`, mode 755) with `null`, `zero`, `full`, `random`,
//!   `urandom` and `tty`: created with `mknod` as root, bound from the host's `/dev` in a user
//!   namespace (where `mknod` is not allowed; a device the host lacks is left out). Then a
//!   new devpts instance at `/dev/pts` (`ptmxmode=0666`) with `/dev/ptmx -> pts/ptmx`, a tmpfs at
//!   `/dev/shm`, an mqueue at `/dev/mqueue` when the container has its own IPC namespace, and
//!   the links `fd -> /proc/self/fd` and `stdin`, `stdout`, `stderr`.
//!
//! # Descriptors and the working directory (runc CVE-2024-21626)
//! Until `execve`, the child holds a copy of every descriptor of the parent (all
//! close-on-exec, so none reaches the command: only its stdio and the descriptors passed with
//! [`Container::pass_fd`](crate::process::Container::pass_fd) do). After `pivot_root` the container's
//! `/proc/self/fd/N` could still name a host directory through one of them, so a working
//! directory such as `/proc/self/fd/7` would escape the root. The child therefore checks
//! with `getcwd(2)` after the `chdir` that the directory is reachable from the new root
//! and fails with `getcwd: ENOENT` otherwise.
//!
//! # Without `pivot_root`
//! `pivot_root` cannot move an initramfs root (`EINVAL`). When the parent finds that `/` is
//! the initramfs (`rootfs` or `ramfs` in mountinfo), or the caller asks for it with
//! [`Rootfs::chroot_fallback`], the child `chroot`s into the new root instead. That is weaker:
//! the host's mounts (and the scratch tmpfs mounts of step 2) stay in the container's mount
//! namespace (out of its sight, but a process
//! with `CAP_SYS_CHROOT` and `CAP_SYS_ADMIN` can climb out of a chroot); drop those
//! capabilities in such containers.
//!
//! # Rootless
//! In a user namespace everything above works on Linux ≥ 5.11 (overlayfs in user namespaces;
//! the overlay is then mounted with `userxattr`). Device nodes are bound from the host. The
//! kernel allows a new procfs (and sysfs) only when the host's one is fully visible in the
//! caller's namespace; where a step is not allowed, `spawn` fails with
//! [`Error::Unsupported`] saying which and why.
//!
//! # /etc/hosts, /etc/hostname, /etc/resolv.conf
//! As docker and podman do, the container gets generated files bind-mounted over the image's
//! (which stays unchanged); [`Rootfs::etc_files(false)`](Rootfs::etc_files) turns this off
//! for callers that manage `/etc` themselves, and a caller's own mount at one of these paths
//! ([`Rootfs::mount`]) replaces that file. The caller's entries and resolver settings are
//! set on the container: [`Container::add_host`](crate::process::Container::add_host),
//! [`dns`](crate::process::Container::dns), [`dns_search`](crate::process::Container::dns_search),
//! [`dns_option`](crate::process::Container::dns_option) (docker's `--add-host`, `--dns`,
//! `--dns-search`, `--dns-option`).
//! - `/etc/hostname`: the container's hostname (its UTS namespace's, read with `uname` after
//!   it is set, so `hostname`, this file and `/etc/hosts` always agree; the host's name without
//!   a UTS namespace of its own).
//! - `/etc/hosts`: docker's header (`127.0.0.1 localhost`, `::1 localhost ip6-localhost
//!   ip6-loopback`, `fe00::0 ip6-localnet`, `ff00::0 ip6-mcastprefix`, `ff02::1 ip6-allnodes`,
//!   `ff02::2 ip6-allrouters`), the caller's entries, then the container's own line: its
//!   `eth0` address with [`Net::Veth`](crate::net::Net::Veth) (as docker), `127.0.0.1` otherwise
//!   (as podman; docker leaves the hostname unresolvable there, which breaks `sudo`). The names
//!   are docker's: the FQDN (hostname, plus `.domainname` when set) and the part before its
//!   first dot. With the host's network ([`Net::Host`](crate::net::Net::Host), or no network
//!   namespace) the host's `/etc/hosts` replaces the header, and the own line is added only when
//!   the host's file lacks the name.
//! - `/etc/resolv.conf`: with the host's network, the host's file. With a network namespace of
//!   its own (veth, or a joined one), the host's without its loopback and IPv6 nameservers
//!   (they do not answer there; the veth is IPv4 only), read from
//!   [`SYSTEMD_RESOLV_CONF`](crate::net::SYSTEMD_RESOLV_CONF) when the host's only nameserver is
//!   systemd-resolved's stub `127.0.0.53`, and [`FALLBACK_NAMESERVERS`](crate::net::FALLBACK_NAMESERVERS)
//!   (8.8.8.8, 8.8.4.4) when none is left: docker's libnetwork rules. With
//!   [`Net::None`](crate::net::Net::None) there is nothing to resolve with: the image's file is
//!   left alone unless the caller gives resolver settings. The caller's servers, search
//!   domains and options each replace the host's lines of that kind.
//!
//! The files live on a small tmpfs of the container's mount namespace (at least
//! [`ETC_FILES_MIN_SIZE`], twice the files' size plus 64 KiB), mounted `nosuid,nodev,noexec`
//! and writable (as docker's; writes beyond the size fail with `ENOSPC`, and nothing reaches
//! the host). Targets are resolved inside the root. A missing target (or `/etc`) is created in
//! the writable layer (`Overlay`), in the image (`ReadWrite`) or in the host view's tmpfs; in
//! `ReadOnly` mode it cannot be, and that file is skipped; so it is where the container's root
//! may not create it (`EACCES`, `EPERM`: an `/etc` owned by an id its user namespace does not
//! map). See `src/rootfs/etc.rs` for the design.
//!
//! # Kernel
//! The new mount API (`fsopen`, `fsmount`, `move_mount`, `open_tree`: Linux 5.2),
//! `mount_setattr` (5.12) and `openat2` (5.6).

mod apply;
pub(crate) mod etc;
pub(crate) mod layers;
mod lock;

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::cgroup::Bytes;
use crate::error::io_errno;
use crate::mount::apply::Fd;
use crate::mount::{absolute, cstring, Mount, MountError, MountStep, PreparedMount, Propagation};
use crate::namespace::Namespaces;
use crate::{Errno, Error, Result, SetupStage};

pub(crate) use apply::check_cwd;
pub use etc::ETC_FILES_MIN_SIZE;
use layers::LowerMethod;
pub use layers::{max_lowers, OVERLAY_LEGACY_ENV};
use lock::lock_layer_dir;
pub(crate) use lock::LayerLock;

/// Where the container's writes go; see the [module documentation](self#modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RootfsMode {
    /// The image is the lower layer of an overlay whose upper layer is a tmpfs in the
    /// container's mount namespace: writes work and vanish when the container exits.
    #[default]
    Overlay,
    /// The image, read-only. Mount points (`/proc`, `/dev`, `/sys`, volume targets) must
    /// exist in it.
    ReadOnly,
    /// The image directory itself, writable: the container changes it for good, and missing
    /// mount points are created in it.
    ReadWrite,
}

/// The OCI runtime-spec default masked paths.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The OCI runtime-spec default read-only paths.
pub const DEFAULT_READ_ONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What [`Rootfs::host`] shows of the host, read-only: directories (or the symlinks that
/// stand for them on merged-`/usr` systems, recreated as they are).
pub const HOST_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
];

/// What [`Rootfs::host`] shows of the host's `/etc`, read-only, where present: users and
/// groups, the name service switch, the dynamic linker's cache, Debian's command alternatives,
/// the time zone. (`hosts`, `hostname` and `resolv.conf` are generated: see the
/// [module documentation](self#etchosts-etchostname-etcresolvconf).)
pub const HOST_ETC: &[&str] = &[
    "passwd",
    "group",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
];

/// Size of the `/dev` tmpfs (as runc).
const DEV_SIZE: u64 = 64 << 20;
/// Size of `/dev/shm` (as docker).
const SHM_SIZE: u64 = 64 << 20;

/// The device nodes of `/dev`: name, major, minor.
const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The kind of a [`DeviceNode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A character device (`S_IFCHR`).
    Char,
    /// A block device (`S_IFBLK`).
    Block,
    /// A named pipe (`S_IFIFO`; major and minor are ignored).
    Fifo,
}

/// One more node in the container's `/dev` (or elsewhere): the OCI spec's `linux.devices`
/// entry (config-linux.md#devices). See [`Rootfs::device`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceNode {
    /// Its path in the container, absolute; the parent directory must exist.
    pub path: PathBuf,
    /// Character device, block device or fifo.
    pub kind: NodeKind,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Permission bits (`0o666` by default; no file type bits).
    pub mode: u32,
    /// Owner uid and gid (`0`, `0` by default), as the container's user namespace maps them.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

impl DeviceNode {
    /// A node at `path` of `kind` and `major:minor`, mode `0o666`, owned by 0:0.
    ///
    /// ```
    /// use contain::rootfs::{DeviceNode, NodeKind};
    /// let fuse = DeviceNode::new("/dev/fuse", NodeKind::Char, 10, 229);
    /// assert_eq!(fuse.mode, 0o666);
    /// ```
    pub fn new(path: impl Into<PathBuf>, kind: NodeKind, major: u32, minor: u32) -> DeviceNode {
        DeviceNode {
            path: path.into(),
            kind,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        }
    }

    /// The permission bits (only `0o7777` counts).
    #[must_use]
    pub fn mode(mut self, mode: u32) -> DeviceNode {
        self.mode = mode;
        self
    }

    /// The owner.
    #[must_use]
    pub fn owner(mut self, uid: u32, gid: u32) -> DeviceNode {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// The container's root filesystem: plain data until the container is spawned.
///
/// ```no_run
/// use contain::mount::Mount;
/// use contain::namespace::Namespaces;
/// use contain::process::Container;
/// use contain::rootfs::Rootfs;
/// use contain::Bytes;
///
/// let rootfs = Rootfs::new("/srv/images/alpine")        // overlay, writes vanish at exit
///     .size(Bytes::mib(256))                            // at most 256 MiB of writes
///     .mount(Mount::bind("/srv/data", "/data").read_only())
///     .mount(Mount::tmpfs("/run").size(Bytes::mib(16)));
/// let status = Container::new("/bin/sh")
///     .args(["-c", "echo hello > /hello && cat /hello"])
///     .namespaces(Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC)
///     .rootfs(rootfs)
///     .spawn()?
///     .wait()?;
/// assert!(status.success());
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// Bottom first.
    layers: Vec<PathBuf>,
    /// [`Rootfs::host`] (no layers).
    host: bool,
    mode: RootfsMode,
    upper: Option<PathBuf>,
    size: Option<u64>,
    shm_size: Option<u64>,
    mounts: Vec<Mount>,
    masked: Vec<PathBuf>,
    read_only_paths: Vec<PathBuf>,
    devices: Vec<DeviceNode>,
    chroot_fallback: bool,
    /// `(propagation, recursive)` of `/` after `pivot_root`; `None`: private, as attached.
    root_propagation: Option<(Propagation, bool)>,
    cgroup_writable: bool,
    etc_files: bool,
    userxattr: bool,
    /// Why the layers cannot serve an overlay in a user namespace (set by the image store:
    /// opaque markers in `trusted.overlay.*` only); `spawn` with a user namespace fails.
    no_userns: Option<String>,
}

impl Rootfs {
    fn with_layers(layers: Vec<PathBuf>, host: bool) -> Rootfs {
        Rootfs {
            layers,
            host,
            mode: RootfsMode::Overlay,
            upper: None,
            size: None,
            shm_size: None,
            mounts: Vec::new(),
            masked: DEFAULT_MASKED_PATHS.iter().map(PathBuf::from).collect(),
            read_only_paths: DEFAULT_READ_ONLY_PATHS.iter().map(PathBuf::from).collect(),
            devices: Vec::new(),
            chroot_fallback: false,
            root_propagation: None,
            cgroup_writable: false,
            etc_files: true,
            userxattr: false,
            no_userns: None,
        }
    }

    /// An extracted image in `dir`, used in [`RootfsMode::Overlay`] unless told otherwise.
    ///
    /// ```
    /// use contain::rootfs::{Rootfs, RootfsMode};
    /// let throwaway = Rootfs::new("/srv/images/debian");
    /// let frozen = Rootfs::new("/srv/images/debian").mode(RootfsMode::ReadOnly);
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Rootfs {
        Rootfs::with_layers(vec![dir.into()], false)
    }

    /// A stack of layer directories, **bottom layer first** (as an image manifest lists
    /// them), as the lower layers of one overlay; see the [module documentation](self#layers)
    /// for the whiteouts and opaque directories a layer may hold. Every option of
    /// [`Rootfs::new`] works the same: [`RootfsMode::Overlay`] (default) with a throw-away
    /// tmpfs ([`size`](Rootfs::size)) or a [`persistent_upper`](Rootfs::persistent_upper) on
    /// top (what a build step keeps as its new layer), [`RootfsMode::ReadOnly`], mounts,
    /// masks, generated `/etc` files. One layer is the same as [`Rootfs::new`].
    ///
    /// `spawn` fails with [`Error::Config`] for an empty list or with
    /// [`RootfsMode::ReadWrite`] and more than one layer (there is no single directory to
    /// write to), with [`Error::Unsupported`] for more than [`max_lowers`] layers, and with
    /// [`Error::Sys`] (`openat2`, naming the layer) for a layer that cannot be opened.
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::from_layers([
    ///     "/var/lib/store/layers/base",   // bottom
    ///     "/var/lib/store/layers/libs",
    ///     "/var/lib/store/layers/app",    // top
    /// ]);
    /// assert_eq!(rootfs.layers().len(), 3);
    /// ```
    pub fn from_layers<I>(layers: I) -> Rootfs
    where
        I: IntoIterator,
        I::Item: Into<PathBuf>,
    {
        Rootfs::with_layers(layers.into_iter().map(Into::into).collect(), false)
    }

    /// A read-only view of the host's programs and libraries ([`HOST_DIRS`]) and a minimal
    /// `/etc` ([`HOST_ETC`]) on a throw-away tmpfs root: runs the host's tools without an
    /// image, and shows nothing else of the host (no `/home`, `/root`, `/var`, ...).
    ///
    /// Writes outside the host's directories go to the tmpfs and vanish at exit;
    /// [`RootfsMode::ReadOnly`] makes the root read-only too. `ReadWrite` and a persistent
    /// upper layer do not apply (there is no image directory).
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// use contain::Bytes;
    /// let rootfs = Rootfs::host().size(Bytes::mib(64));
    /// ```
    pub fn host() -> Rootfs {
        Rootfs::with_layers(Vec::new(), true)
    }

    /// Where writes go (default [`RootfsMode::Overlay`]).
    ///
    /// ```
    /// use contain::rootfs::{Rootfs, RootfsMode};
    /// let rootfs = Rootfs::new("/srv/images/debian").mode(RootfsMode::ReadWrite);
    /// ```
    #[must_use]
    pub fn mode(mut self, mode: RootfsMode) -> Rootfs {
        self.mode = mode;
        self
    }

    /// Keeps the overlay's writable layer in `dir` (created if missing) instead of a tmpfs:
    /// what the container writes survives it, and the image stays unchanged.
    ///
    /// overlayfs also needs an empty work directory on the same filesystem: it is
    /// `<dir>.work`, beside `dir` (created if missing; it holds only transient state and may
    /// be removed when no container uses it; overlayfs makes `work` in it with mode 000, so a
    /// non-root owner has to `chmod` that before removing it).
    ///
    /// `dir` is used by its canonical path (symlinks resolved, after it is created): a
    /// symlinked alias of a directory in use gets the same `.work` and the same locks, and
    /// neither directory may be inside the image (or contain it) by any path. `spawn` refuses
    /// a `dir` that exists and is not a directory, and a `<dir>.work` or lock file that is a
    /// symbolic link (never followed: overlayfs empties the work directory).
    ///
    /// One container at a time: `spawn` takes an exclusive lock on both directories (a
    /// POSIX record lock on `<dir>.lock` and `<dir>.work.lock` beside them, created if
    /// missing; see `src/rootfs/lock.rs` for why not `flock`) before the overlay is mounted, and the [`Child`](crate::process::Child) holds it until
    /// it is waited for or dropped (the container runs no longer: a rootfs has its own PID
    /// namespace, and is killed with its parent by default). A second container with the same
    /// directory (or with this one's `.work` as its upper) fails with [`Error::InUse`] naming
    /// it. (The kernel itself only logs "upperdir is in-use" and mounts anyway.) The lock is
    /// advisory: other tools that write into the directory are not stopped by it. It lives in
    /// the calling process (the container never gets the descriptor): a caller that turns the
    /// parent-death signal off ([`Container::parent_death_signal`](crate::process::Container::parent_death_signal)`(None)`)
    /// and exits leaves the container running without it.
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// // Writes land in /var/lib/c1/upper; overlayfs works in /var/lib/c1/upper.work.
    /// let rootfs = Rootfs::new("/srv/images/debian").persistent_upper("/var/lib/c1/upper");
    /// ```
    #[must_use]
    pub fn persistent_upper(mut self, dir: impl Into<PathBuf>) -> Rootfs {
        self.upper = Some(dir.into());
        self
    }

    /// Whether what a container writes stays after it (a [`RootfsMode::ReadWrite`] image or
    /// a [`persistent_upper`](Self::persistent_upper)): such a rootfs cannot back a pool.
    pub(crate) fn keeps_writes(&self) -> bool {
        self.mode == RootfsMode::ReadWrite || self.upper.is_some()
    }

    /// Limits the throw-away writable layer (a tmpfs) to `bytes`; writes beyond fail with
    /// `ENOSPC`. Default: the kernel's tmpfs default (half of RAM).
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// use contain::Bytes;
    /// let rootfs = Rootfs::new("/srv/images/debian").size(Bytes::mib(128));
    /// ```
    #[must_use]
    pub fn size(mut self, bytes: Bytes) -> Rootfs {
        self.size = Some(bytes.as_u64());
        self
    }

    /// The size limit of the container's `/dev/shm` (a tmpfs, `nosuid,nodev,noexec`, mode
    /// 1777), in bytes: what POSIX shared memory (`shm_open`) and semaphores can take.
    /// Default: 64 MiB, as docker's `--shm-size`; `0` also means that default, as with
    /// docker, whose daemon replaces a 0 with its default (podman reads 0 as no limit; a
    /// tmpfs would too, so `0` never reaches the kernel here).
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// use contain::Bytes;
    /// let rootfs = Rootfs::new("/srv/images/postgres").shm_size(Bytes::gib(1));
    /// ```
    #[must_use]
    pub fn shm_size(mut self, bytes: Bytes) -> Rootfs {
        self.shm_size = Some(bytes.as_u64());
        self
    }

    /// Adds a mount inside the container, made after `/proc`, `/sys` and `/dev`: a volume
    /// (a bind of a host path), a tmpfs, ... Its target is a path in the container, resolved
    /// inside the root (a symlink in the image cannot send it out); a bind source is a host
    /// path, opened before anything of the container is mounted (so nothing in the image
    /// can change where it leads), as are an overlay's directories: each holds a
    /// descriptor until its mount is made,
    /// under the caller's `RLIMIT_NOFILE`. A missing bind source fails `spawn` with
    /// `open_tree` and the source's path (`ENOENT`); unlike docker's `-v`, it is not
    /// created.
    ///
    /// ```
    /// use contain::mount::Mount;
    /// use contain::rootfs::Rootfs;
    /// use contain::Bytes;
    /// let rootfs = Rootfs::new("/srv/images/debian")
    ///     .mount(Mount::bind("/srv/cache", "/var/cache/apt"))              // SRC:DST
    ///     .mount(Mount::bind("/etc/resolv.conf", "/etc/resolv.conf").read_only()) // SRC:DST:ro
    ///     .mount(Mount::tmpfs("/tmp").size(Bytes::mib(64)).mode(0o1777));
    /// ```
    #[must_use]
    pub fn mount(mut self, mount: Mount) -> Rootfs {
        self.mounts.push(mount);
        self
    }

    /// Masks one more path (besides [`DEFAULT_MASKED_PATHS`]): `/dev/null` over a file, an
    /// empty read-only tmpfs over a directory; skipped if it does not exist.
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::new("/srv/images/debian").mask("/proc/interrupts");
    /// ```
    #[must_use]
    pub fn mask(mut self, path: impl Into<PathBuf>) -> Rootfs {
        self.masked.push(path.into());
        self
    }

    /// Makes one more path read-only (besides [`DEFAULT_READ_ONLY_PATHS`]); skipped if it
    /// does not exist.
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::new("/srv/images/debian").read_only_path("/proc/sys/net");
    /// ```
    #[must_use]
    pub fn read_only_path(mut self, path: impl Into<PathBuf>) -> Rootfs {
        self.read_only_paths.push(path.into());
        self
    }

    /// Uses `chroot` where `pivot_root` fails with `EINVAL` (default: only when `/` is an
    /// initramfs). See the [module documentation](self#without-pivot_root) for what that
    /// gives up.
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::new("/srv/images/debian").chroot_fallback(true);
    /// ```
    #[must_use]
    pub fn chroot_fallback(mut self, allow: bool) -> Rootfs {
        self.chroot_fallback = allow;
        self
    }

    /// Adds a device node (or fifo), made after `/dev` and its standard nodes with `mknod`
    /// with exactly `node.mode` and then `fchownat` to `node.uid`:`node.gid` (the OCI spec's
    /// `linux.devices`). A node at the path of one of the standard nodes (`/dev/null`, ...)
    /// replaces it. In a user namespace, where `mknod` of a device is not allowed, the host's
    /// node at the same path is bound instead when it is the same device (a fifo is made
    /// there too); `spawn` fails with [`Error::Unsupported`] naming the path when the host
    /// has none. `mknod` failing with `EPERM` (no `CAP_MKNOD`) falls back to the same bind.
    /// The parent directory must exist (`/dev` does): `spawn` fails with `openat2: ENOENT`
    /// for it otherwise.
    ///
    /// ```
    /// use contain::rootfs::{DeviceNode, NodeKind, Rootfs};
    /// let rootfs = Rootfs::new("/srv/images/debian")
    ///     .device(DeviceNode::new("/dev/fuse", NodeKind::Char, 10, 229).mode(0o660).owner(0, 5));
    /// ```
    #[must_use]
    pub fn device(mut self, node: DeviceNode) -> Rootfs {
        self.devices.retain(|d| d.path != node.path);
        self.devices.push(node);
        self
    }

    /// The propagation of the container's `/` (with `recursive`, of every mount below it
    /// too), set after `pivot_root` as the OCI spec's `linux.rootfsPropagation` asks (runc
    /// and crun do the same): [`Propagation::Shared`] makes later mounts under `/` shared
    /// within the container's mount namespace (a new peer group: the root was made private
    /// when it was attached, so nothing reaches the host), [`Propagation::Slave`] of a
    /// private mount leaves it private, [`Propagation::Unbindable`] refuses bind mounts of it.
    /// Default: private, as attached. A failure is reported as `mount(MS_SHARED|...)` at
    /// [`SetupStage::PivotRoot`].
    ///
    /// ```
    /// use contain::mount::Propagation;
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::new("/srv/images/debian").root_propagation(Propagation::Shared, true);
    /// ```
    #[must_use]
    pub fn root_propagation(mut self, propagation: Propagation, recursive: bool) -> Rootfs {
        self.root_propagation = Some((propagation, recursive));
        self
    }

    /// Mounts the container's cgroup (`/sys/fs/cgroup`, with a new cgroup namespace) writable,
    /// delegating it to the container on purpose. By default it is read-only: a container
    /// that could write its own cgroup could lift its limits (CVE-2023-25809).
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::new("/srv/images/systemd-in-a-box").cgroup_writable(true);
    /// ```
    #[must_use]
    pub fn cgroup_writable(mut self, writable: bool) -> Rootfs {
        self.cgroup_writable = writable;
        self
    }

    /// Whether the container gets generated `/etc/hosts`, `/etc/hostname` and
    /// `/etc/resolv.conf` (default `true`; see the
    /// [module documentation](self#etchosts-etchostname-etcresolvconf)). `false` leaves the
    /// image's files as they are, for callers that manage them themselves;
    /// [`Container::add_host`](crate::process::Container::add_host) and the `dns` settings are
    /// then refused.
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::new("/srv/images/debian").etc_files(false);
    /// ```
    #[must_use]
    pub fn etc_files(mut self, generate: bool) -> Rootfs {
        self.etc_files = generate;
        self
    }

    /// Mounts the overlay with `userxattr` even without a user namespace: overlayfs then
    /// reads its whiteout and opaque markers from `user.overlay.*` xattrs instead of
    /// `trusted.overlay.*`, as layers made without privilege carry them (Linux 5.11). With
    /// a user namespace (created or joined) the overlay always has `userxattr`, and `false`
    /// (the default) changes nothing there.
    ///
    /// ```
    /// use contain::rootfs::Rootfs;
    /// let rootfs = Rootfs::from_layers(["/store/l1", "/store/l2"]).userxattr(true);
    /// ```
    #[must_use]
    pub fn userxattr(mut self, force: bool) -> Rootfs {
        self.userxattr = force;
        self
    }

    /// Refuses, at `spawn`, a container with a user namespace on these layers, saying `why`:
    /// their opaque markers are in `trusted.overlay.*` only, which an overlay mounted in a
    /// user namespace (always with `userxattr`) does not read, so that it would show what the
    /// opaque directories hide.
    pub(crate) fn refuse_userns(mut self, why: String) -> Rootfs {
        self.no_userns = Some(why);
        self
    }

    /// The image directory: the directory of [`Rootfs::new`], the **top** layer of
    /// [`Rootfs::from_layers`] (see [`layers`](Rootfs::layers) for all of them), `None` for
    /// [`Rootfs::host`] (and for an empty list of layers).
    pub fn image(&self) -> Option<&Path> {
        self.layers.last().map(PathBuf::as_path)
    }

    /// The layer directories, bottom first: one for [`Rootfs::new`], none for
    /// [`Rootfs::host`].
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// The first 16 MiB of the file `rel` (relative, e.g.
    /// `etc/passwd`) as the container will see it, read by the caller before clone; from the
    /// host for [`Rootfs::host`] (whose `/etc` files are the host's). `None` when there is no
    /// such regular file.
    ///
    /// An image is looked up as overlayfs merges it: a persistent upper directory (in
    /// `Overlay` mode) above the layers, top down, one component at a time, each opened in
    /// its layer directory with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`. The topmost
    /// layer with the name wins; a whiteout (character device 0:0) hides it and everything
    /// below; a directory merges with the same directories below it down to an opaque one
    /// (`user.overlay.opaque` when the mount has `userxattr`, i.e. with `userns` or
    /// [`Rootfs::userxattr`], else `trusted.overlay.opaque`). A symbolic link is followed in
    /// the merged view (absolute targets from its root, `..` lexically on the directories
    /// walked, at most 40 links). Not handled: overlayfs' xattr whiteouts and `opaque=x`
    /// (Linux 6.7; the image store writes character devices), redirects (never followed by
    /// the mount either), and the opaque marker of a layer's root directory (ignored, as the
    /// mount's root merges every layer).
    pub(crate) fn read_file(&self, rel: &CStr, userns: bool) -> Result<Option<Vec<u8>>> {
        if self.host {
            return read_in(Path::new("/"), rel).map(Found::into_option);
        }
        let mut stack: Vec<&Path> = Vec::with_capacity(self.layers.len() + 1);
        if let (RootfsMode::Overlay, Some(upper)) = (self.mode, &self.upper) {
            stack.push(upper);
        }
        stack.extend(self.layers.iter().rev().map(PathBuf::as_path));
        let opaque = if self.userxattr || userns {
            c"user.overlay.opaque"
        } else {
            c"trusted.overlay.opaque"
        };
        layers::read_merged(&stack, rel, opaque, crate::process::MAX_ETC_FILE)
    }

    /// Validates the configuration for a container with namespaces `created` and `joined`
    /// and builds everything the child needs. `tty_gid` says whether gid 5 exists in the
    /// container (devpts gives new ptys that group).
    #[cfg(test)]
    pub(crate) fn prepare(
        &self,
        created: Namespaces,
        joined: Namespaces,
        tty_gid: bool,
    ) -> Result<PreparedRootfs> {
        let config = etc::EtcConfig::default();
        let etc = etc::EtcContext {
            config: &config,
            net: etc::NetView::Loopback,
            hostname: None,
            domainname: None,
            uts_joined: false,
        };
        self.prepare_for(created, joined, tty_gid, &etc)
    }

    /// As `prepare`, with what the generated `/etc` files depend on.
    pub(crate) fn prepare_for(
        &self,
        created: Namespaces,
        joined: Namespaces,
        tty_gid: bool,
        etc: &etc::EtcContext<'_>,
    ) -> Result<PreparedRootfs> {
        if !(created | joined).contains(Namespaces::MOUNT) {
            return Err(Error::config(
                "rootfs",
                "a rootfs needs a mount namespace of the container's, new \
                 (Namespaces::MOUNT) or joined (Container::join): it would otherwise be \
                 assembled in the caller's",
            ));
        }
        if !(created | joined).contains(Namespaces::PID) {
            return Err(Error::config(
                "rootfs",
                "a rootfs needs its own PID namespace (Namespaces::PID): its /proc would \
                 otherwise show, and let the container signal, the host's processes",
            ));
        }
        let userns = (created | joined).contains(Namespaces::USER);
        let mut locks = Vec::new();
        let base = self.prepare_base(userns, &mut locks)?;
        let mut steps = Vec::new();
        if self.host {
            host_view(&mut steps)?;
        }
        // Before /proc, /sys and /dev: a link in the image's /etc resolves into the image only.
        if self.etc_files {
            let create = self.host || self.mode != RootfsMode::ReadOnly;
            if let Some(files) = etc::prepare(etc, &self.mounts, create)? {
                steps.push(Step::Etc(Box::new(files)));
            }
        } else if !etc.config.is_empty() {
            return Err(Error::config(
                "add-host / dns",
                "Rootfs::etc_files(false) leaves /etc/hosts and /etc/resolv.conf to the image: \
                 extra hosts and resolver settings have nowhere to go",
            ));
        }

        steps.push(Step::mount(
            Mount::proc("/proc").nosuid().nodev().noexec(),
            Special::Proc,
        )?);
        steps.push(Step::mount(
            Mount::tmpfs("/dev")
                .mode(0o755)
                .size(Bytes(DEV_SIZE))
                .nosuid()
                .noexec(),
            Special::None,
        )?);
        // The mount points of the /dev mounts below, in the new (empty) tmpfs: found at once
        // when mounted on, where a missing target costs a longer walk that creates it.
        steps.push(Step::dir("/dev/pts", 0o755)?);
        steps.push(Step::dir("/dev/shm", 0o755)?);
        if created.contains(Namespaces::IPC) {
            steps.push(Step::dir("/dev/mqueue", 0o755)?);
        }
        for &(name, major, minor) in DEVICES {
            if self
                .devices
                .iter()
                .any(|d| d.path == Path::new("/dev").join(name))
            {
                continue;
            }
            if let Some(step) = Step::device(name, major, minor, userns)? {
                steps.push(step);
            }
        }
        for node in &self.devices {
            steps.push(Step::node(node, userns)?);
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            steps.push(Step::symlink(Path::new("/dev").join(name), target)?);
        }
        let mut devpts = Mount::devpts("/dev/pts")
            .ptmxmode(0o666)
            .mode(0o620)
            .nosuid()
            .noexec();
        if tty_gid {
            devpts = devpts.gid(5);
        }
        steps.push(Step::mount(devpts, Special::None)?);
        steps.push(Step::mount(
            Mount::tmpfs("/dev/shm")
                .source_name("shm")
                .mode(0o1777)
                .size(Bytes(self.shm_size.filter(|&b| b > 0).unwrap_or(SHM_SIZE)))
                .nosuid()
                .nodev()
                .noexec(),
            Special::None,
        )?);
        if created.contains(Namespaces::IPC) {
            steps.push(Step::mount(
                Mount::mqueue("/dev/mqueue").nosuid().nodev().noexec(),
                Special::None,
            )?);
        }
        // /sys after /dev, in the order of runc's (and the OCI tools') default mounts.
        let sys = if (created | joined).contains(Namespaces::NET) {
            Mount::sysfs("/sys")
        } else {
            Mount::bind("/sys", "/sys")
        };
        steps.push(Step::mount(
            sys.read_only().nosuid().nodev().noexec(),
            Special::Sysfs,
        )?);
        // With its own cgroup namespace the container sees its cgroup as the root of a fresh
        // cgroup2 mount: read-only unless delegated (see `cgroup_writable`).
        if created.contains(Namespaces::CGROUP) {
            let cgroup = Mount::cgroup2("/sys/fs/cgroup").nosuid().nodev().noexec();
            let cgroup = if self.cgroup_writable {
                cgroup
            } else {
                cgroup.read_only()
            };
            steps.push(Step::mount(cgroup, Special::None)?);
        }

        for m in &self.mounts {
            let prepared = m.prepare()?;
            if normalize(m.target()) == Path::new("/") {
                return Err(Error::config(
                    "rootfs mount",
                    "a mount onto / would hide the root: use Rootfs::new for the root",
                ));
            }
            steps.push(Step::Mount {
                mount: prepared,
                special: Special::None,
                early: EarlyFd::default(),
            });
        }
        for p in &self.masked {
            steps.push(Step::Mask(InRoot::new(p, "masked path")?));
        }
        for p in &self.read_only_paths {
            steps.push(Step::ReadOnly(InRoot::new(p, "read-only path")?));
        }

        Ok(PreparedRootfs {
            locks,
            base,
            steps,
            read_only_root: self.host && self.mode == RootfsMode::ReadOnly,
            chroot_fallback: self.chroot_fallback || root_is_initramfs(),
            root_propagation: self.root_propagation.map_or(0, |(p, recursive)| {
                let flag = match p {
                    Propagation::Private => libc::MS_PRIVATE,
                    Propagation::Slave => libc::MS_SLAVE,
                    Propagation::Shared => libc::MS_SHARED,
                    Propagation::Unbindable => libc::MS_UNBINDABLE,
                };
                if recursive {
                    flag | libc::MS_REC
                } else {
                    flag
                }
            }),
            userns,
        })
    }

    /// The filesystem under the root, and the locks on a persistent upper layer's directories.
    fn prepare_base(&self, userns: bool, locks: &mut Vec<LayerLock>) -> Result<Base> {
        let size = self
            .size
            .map(|s| {
                if s == 0 {
                    // tmpfs reads size=0 as "no limit".
                    Err(Error::config(
                        "rootfs size",
                        "0 bytes: leave it unset for no limit",
                    ))
                } else {
                    cstring(OsStr::new(&s.to_string()), "rootfs size")
                }
            })
            .transpose()?;
        if self.host {
            return match (self.mode, &self.upper) {
                (RootfsMode::ReadWrite, _) | (_, Some(_)) => Err(Error::config(
                    "rootfs",
                    "Rootfs::host has no image directory to write to: its writable \
                     layer is a tmpfs (or nothing, with RootfsMode::ReadOnly)",
                )),
                _ => Ok(Base::Tmpfs { size }),
            };
        }
        if let (true, Some(why)) = (userns, &self.no_userns) {
            return Err(Error::unsupported(
                "image layers in a user namespace",
                why.clone(),
            ));
        }
        let layers = self
            .layers
            .iter()
            .map(|l| absolute(l, "rootfs directory"))
            .collect::<Result<Vec<_>>>()?;
        let userxattr = self.userxattr || userns;
        match (self.mode, &self.upper, layers.as_slice()) {
            (RootfsMode::Overlay, None, _) => {
                let lowers = Lowers::new(&layers)?;
                Base::overlay(lowers, Some(Upper::Scratch { size }), userxattr)
            }
            (RootfsMode::Overlay, Some(upper), _) => {
                if size.is_some() {
                    return Err(Error::config(
                        "rootfs size",
                        "a persistent upper directory is not a tmpfs: limit it with its own \
                         filesystem's quotas",
                    ));
                }
                let upper = upper_dir(&absolute(upper, "persistent upper directory")?)?;
                let work = work_dir(&upper)?;
                // Compared as the kernel resolves them, so that no symlinked path puts the
                // layer inside an image layer (nothing is created before this check).
                for image in &layers {
                    let real_image = std::fs::canonicalize(image).unwrap_or_else(|_| image.clone());
                    for dir in [&upper, &work] {
                        if dir.starts_with(&real_image) || real_image.starts_with(dir) {
                            return Err(Error::config(
                                "persistent upper directory",
                                format!(
                                    "{} and the image {} must not contain one another",
                                    dir.display(),
                                    real_image.display()
                                ),
                            ));
                        }
                    }
                }
                let lowers = Lowers::new(&layers)?;
                let upper = create_layer_dir(&upper, true, &upper)?;
                // The canonical upper: a symlinked alias gets the same work directory and
                // the same locks.
                let work = create_layer_dir(&work_dir(&upper)?, false, &upper)?;
                for dir in [&upper, &work] {
                    locks.push(lock_layer_dir(dir, &upper)?);
                }
                Base::overlay(
                    lowers,
                    Some(Upper::Dir {
                        upper: cstring(upper.as_os_str(), "persistent upper directory")?,
                        work: cstring(work.as_os_str(), "persistent upper directory")?,
                        upper_path: upper,
                        work_path: work,
                    }),
                    userxattr,
                )
            }
            (RootfsMode::ReadOnly, None, [_, _, ..]) => {
                if size.is_some() {
                    return Err(Error::config(
                        "rootfs size",
                        "only RootfsMode::Overlay has a throw-away layer to limit",
                    ));
                }
                Base::overlay(Lowers::new(&layers)?, None, userxattr)
            }
            (RootfsMode::ReadWrite, None, [_, _, ..]) => Err(Error::config(
                "rootfs",
                "RootfsMode::ReadWrite writes to the image directory itself: a stack of \
                 layers has none (use RootfsMode::Overlay with a persistent upper directory)",
            )),
            (mode, None, [image]) => {
                if size.is_some() {
                    return Err(Error::config(
                        "rootfs size",
                        "only RootfsMode::Overlay has a throw-away layer to limit",
                    ));
                }
                // A file would be bound too, and the pivot would fail with a bare EINVAL.
                match std::fs::metadata(image) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(Error::sys_path("stat", image, Errno::ENOTDIR)),
                    Err(e) => return Err(Error::sys_path("stat", image, io_errno(&e))),
                }
                Ok(Base::Bind {
                    source: cstring(image.as_os_str(), "rootfs directory")?,
                    path: image.clone(),
                    read_only: mode == RootfsMode::ReadOnly,
                })
            }
            (_, None, _) => Err(Error::config("rootfs", "Rootfs::from_layers got no layer")),
            (_, Some(_), _) => Err(Error::config(
                "persistent upper directory",
                "it is the upper layer of an overlay: it needs RootfsMode::Overlay",
            )),
        }
    }
}

/// The lower layers of an overlay, top first (overlayfs' order).
#[derive(Debug)]
struct Lowers {
    paths: Vec<PathBuf>,
    c_paths: Vec<CString>,
}

impl Lowers {
    /// `layers` (bottom first), after checking their number against the kernel's limit. An
    /// empty list is refused.
    fn new(layers: &[PathBuf]) -> Result<Lowers> {
        if layers.is_empty() {
            return Err(Error::config("rootfs", "Rootfs::from_layers got no layer"));
        }
        // Without overlayfs the child's fsopen or mount says so, as for one layer.
        let max = max_lowers().unwrap_or(layers::OVL_MAX_STACK);
        if layers.len() > max {
            return Err(layers::too_many_layers(layers.len(), max));
        }
        let paths: Vec<PathBuf> = layers.iter().rev().cloned().collect();
        let c_paths = paths
            .iter()
            .map(|p| cstring(p.as_os_str(), "rootfs directory"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Lowers { paths, c_paths })
    }
}

impl Base {
    fn overlay(lowers: Lowers, upper: Option<Upper>, userxattr: bool) -> Result<Base> {
        Ok(Base::Overlay(Overlay {
            lowers: lowers.c_paths,
            lower_paths: lowers.paths,
            upper,
            userxattr,
            method: layers::lower_method().unwrap_or(LowerMethod::Legacy),
            // Built for every method: a child refused `lowerdir+` falls back to mount(2).
            legacy_head: layers::legacy_head(userxattr),
        }))
    }
}

/// `path` (absolute) as the kernel will resolve it once its missing directories exist: the
/// existing part canonical (symlinks followed), the rest (`.` and `..` too) lexically.
fn upper_dir(path: &Path) -> Result<PathBuf> {
    let what = "persistent upper directory";
    let mut cur = PathBuf::from("/");
    let mut missing = false;
    for part in path.components() {
        match part {
            std::path::Component::Normal(n) if !missing => {
                let next = cur.join(n);
                match std::fs::canonicalize(&next) {
                    Ok(real) => cur = real,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        if next.symlink_metadata().is_ok() {
                            return Err(Error::config(
                                what,
                                format!(
                                    "{} (in {}) is a symbolic link to nothing: remove it or \
                                     create its target",
                                    next.display(),
                                    path.display()
                                ),
                            ));
                        }
                        missing = true;
                        cur = next;
                    }
                    Err(e) => return Err(Error::sys_path("realpath", next, io_errno(&e))),
                }
            }
            std::path::Component::Normal(n) => cur.push(n),
            std::path::Component::ParentDir => {
                cur.pop();
                // Back in the existing (canonical) part: resolve again from there.
                missing = cur.symlink_metadata().is_err();
            }
            _ => {}
        }
    }
    Ok(cur)
}

/// `<upper>.work`, beside `upper`.
fn work_dir(upper: &Path) -> Result<PathBuf> {
    let name = upper.file_name().ok_or_else(|| {
        Error::config(
            "persistent upper directory",
            format!(
                "{} has no name to put a work directory beside",
                upper.display()
            ),
        )
    })?;
    let mut work_name = name.to_os_string();
    work_name.push(".work");
    Ok(upper.with_file_name(work_name))
}

/// Creates the layer directory `dir` if missing (with its parents when `parents`) and returns
/// its canonical path; refuses a `dir` that is not a directory, and a work directory that is a
/// symbolic link (overlayfs empties it and makes it mode 000: it is never followed).
fn create_layer_dir(dir: &Path, parents: bool, upper: &Path) -> Result<PathBuf> {
    let what = "persistent upper directory";
    let made = if parents {
        std::fs::create_dir_all(dir)
    } else {
        std::fs::create_dir(dir)
    };
    if let Err(e) = made {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(Error::sys_path("mkdir", dir, io_errno(&e)));
        }
    }
    let meta = dir
        .symlink_metadata()
        .map_err(|e| Error::sys_path("lstat", dir, io_errno(&e)))?;
    if meta.file_type().is_symlink() && !parents {
        return Err(Error::config(
            what,
            format!(
                "{} (the work directory of {}) is a symbolic link, which is never followed \
                 (overlayfs empties its work directory): remove it; it holds only transient \
                 state and is created again",
                dir.display(),
                upper.display()
            ),
        ));
    }
    if !dir.is_dir() {
        let role = if parents { "" } else { " (the work directory)" };
        return Err(Error::config(
            what,
            format!(
                "{}{role} exists and is not a directory: remove it or name another directory",
                dir.display()
            ),
        ));
    }
    std::fs::canonicalize(dir).map_err(|e| Error::sys_path("realpath", dir, io_errno(&e)))
}

/// The skeleton of [`Rootfs::host`]: the host's directories (or their symlinks), `/etc`, `/tmp`.
fn host_view(steps: &mut Vec<Step>) -> Result<()> {
    for dir in HOST_DIRS {
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(dir)
                .map_err(|e| Error::sys_path("readlink", *dir, io_errno(&e)))?;
            steps.push(Step::symlink(PathBuf::from(dir), target.as_os_str())?);
        } else if meta.is_dir() {
            steps.push(Step::mount(
                Mount::bind(dir, dir).read_only(),
                Special::None,
            )?);
        }
    }
    steps.push(Step::dir("/etc", 0o755)?);
    for name in HOST_ETC {
        let host = Path::new("/etc").join(name);
        // Follows symlinks (resolv.conf often is one): the bind shows the file they lead to.
        let Ok(meta) = std::fs::metadata(&host) else {
            continue;
        };
        if meta.is_file() || meta.is_dir() {
            steps.push(Step::mount(
                Mount::bind(&host, &host).read_only(),
                Special::None,
            )?);
        }
    }
    steps.push(Step::dir("/tmp", 0o1777)?);
    Ok(())
}

/// Whether `/` is the initramfs, which `pivot_root` cannot move (`rootfs`/`ramfs` in
/// mountinfo). Only looked at when `statfs("/")` says ramfs or tmpfs, which is cheap.
fn root_is_initramfs() -> bool {
    use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    let Ok(st) = statfs("/") else {
        return false;
    };
    if st.filesystem_type() != RAMFS_MAGIC && st.filesystem_type() != TMPFS_MAGIC {
        return false;
    }
    crate::mountinfo::MountInfo::read_self()
        .ok()
        .and_then(|mounts| {
            mounts
                .into_iter()
                .rev()
                .find(|m| m.mount_point == Path::new("/"))
        })
        .is_some_and(|m| m.fs_type == "rootfs" || m.fs_type == "ramfs")
}

/// What [`read_in`] found.
enum Found {
    File(Vec<u8>),
    /// An overlay whiteout (character device 0:0): the file is deleted in this layer.
    Whiteout,
    Missing,
}

impl Found {
    fn into_option(self) -> Option<Vec<u8>> {
        match self {
            Found::File(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// Reads `rel` resolved inside `dir` (never following a symlink out of it): opened `O_PATH`
/// first, so that only a regular file is ever opened for reading (never a device or a FIFO
/// of an image), then reopened through `/proc/self/fd`.
fn read_in(dir: &Path, rel: &CStr) -> Result<Found> {
    use std::io::Read;
    const O_PATH: u64 = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    let in_root = crate::sys::mount::RESOLVE_IN_ROOT | crate::sys::mount::RESOLVE_NO_MAGICLINKS;
    let dir_c = cstring(dir.as_os_str(), "directory")?;
    let path = || dir.join(OsStr::from_bytes(rel.to_bytes()));
    let root = match crate::mount::apply::open(
        libc::AT_FDCWD,
        &dir_c,
        O_PATH | libc::O_DIRECTORY as u64,
        0,
        0,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Found::Missing),
        Err(e) => return Err(Error::sys_path("openat2", dir, e)),
    };
    let file = match crate::mount::apply::open(root.0, rel, O_PATH, 0, in_root) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(Found::Missing),
        Err(e) => return Err(Error::sys_path("openat2", path(), e)),
    };
    let stx = crate::sys::mount::fstatx(file.0, libc::STATX_TYPE)
        .map_err(|e| Error::sys_path("statx", path(), e))?;
    match u32::from(stx.stx_mode) & libc::S_IFMT {
        libc::S_IFREG => {}
        libc::S_IFCHR if stx.stx_rdev_major == 0 && stx.stx_rdev_minor == 0 => {
            return Ok(Found::Whiteout)
        }
        _ => return Ok(Found::Missing),
    }
    let fd_path = format!("/proc/self/fd/{}", file.0);
    let f =
        std::fs::File::open(&fd_path).map_err(|e| Error::sys_path("open", path(), io_errno(&e)))?;
    let mut bytes = Vec::new();
    f.take(crate::process::MAX_ETC_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::sys_path("read", path(), io_errno(&e)))?;
    Ok(Found::File(bytes))
}

/// `path` with `.` and `..` resolved lexically, `..` stopping at `/` (as inside a root).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// A container path as the child uses it: relative to the new root (`.` for `/`).
#[derive(Debug)]
struct InRoot {
    path: PathBuf,
    rel: CString,
}

impl InRoot {
    fn new(path: &Path, what: &'static str) -> Result<InRoot> {
        if !path.is_absolute() {
            return Err(Error::config(
                what,
                format!("{} is not an absolute path", path.display()),
            ));
        }
        let norm = normalize(path);
        let rel = norm.strip_prefix("/").unwrap_or(&norm);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        Ok(InRoot {
            path: path.to_path_buf(),
            rel: cstring(rel.as_os_str(), what)?,
        })
    }

    /// The parent directory (relative) and the last component, for `*at` calls.
    fn split(path: &Path, what: &'static str) -> Result<(InRoot, CString)> {
        let norm = normalize(path);
        let (Some(parent), Some(name)) = (norm.parent(), norm.file_name()) else {
            return Err(Error::config(
                what,
                format!("{} has no name", path.display()),
            ));
        };
        Ok((InRoot::new(parent, what)?, cstring(name, what)?))
    }
}

/// Mounts whose errors get an explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    Proc,
    Sysfs,
}

/// The filesystem under the new root.
#[derive(Debug)]
enum Base {
    Overlay(Overlay),
    Bind {
        source: CString,
        path: PathBuf,
        read_only: bool,
    },
    Tmpfs {
        size: Option<CString>,
    },
}

/// An overlay of layers, ready for the child.
#[derive(Debug)]
struct Overlay {
    /// The lower layers, top first. The child opens them: overlayfs takes only layers on
    /// mounts of the mounting process's own namespace (`clone_private_mount`), and the
    /// parent's descriptors are on the parent's (`EINVAL`, "failed to clone lowerpath").
    lowers: Vec<CString>,
    /// Their paths, top first, for errors.
    lower_paths: Vec<PathBuf>,
    /// `None`: a read-only overlay.
    upper: Option<Upper>,
    userxattr: bool,
    method: LowerMethod,
    /// The start of the legacy method's `mount(2)` data (see `layers::legacy_head`).
    legacy_head: Vec<u8>,
}

#[derive(Debug)]
enum Upper {
    /// On a tmpfs in the child's namespace.
    Scratch { size: Option<CString> },
    /// The caller's directories.
    Dir {
        upper: CString,
        work: CString,
        upper_path: PathBuf,
        work_path: PathBuf,
    },
}

/// One step inside the new root.
#[derive(Debug)]
enum Step {
    Mount {
        mount: PreparedMount,
        special: Special,
        /// The mount's [`open_early`](PreparedMount::open_early) descriptor in the child.
        early: EarlyFd,
    },
    Dir {
        parent: InRoot,
        name: CString,
        mode: u32,
    },
    Symlink {
        parent: InRoot,
        name: CString,
        target: CString,
    },
    Device {
        parent: InRoot,
        name: CString,
        rdev: u64,
        /// `S_IF*` type and permission bits for `mknod`.
        mode: u32,
        /// `fchownat` after `mknod`; `None` to leave it the creator's.
        owner: Option<(u32, u32)>,
        /// Try `mknod` first (not in a user namespace).
        mknod: bool,
        /// A bind of the host's node: in a user namespace, or where `mknod` says `EPERM`.
        bind: Option<PreparedMount>,
        /// The bind's source, opened early in the child.
        early: EarlyFd,
    },
    Mask(InRoot),
    ReadOnly(InRoot),
    /// The generated `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    Etc(Box<etc::EtcFiles>),
}

/// What [`PreparedMount::open_early`] gave for a step (a bind's source, a new filesystem
/// created and detached), or -1: written and taken by the child only, which does that for
/// every mount before it stacks anything on the host's `/`. An atomic because the child
/// shares the parent's memory; the plan is made for one spawn, so no other process ever
/// sees the slot.
#[derive(Debug)]
struct EarlyFd(AtomicI32);

impl Default for EarlyFd {
    fn default() -> EarlyFd {
        EarlyFd(AtomicI32::new(-1))
    }
}

impl EarlyFd {
    /// Keeps `fd` (closed by [`take`](Self::take)'s owner).
    fn put(&self, fd: Fd) {
        self.0.store(fd.0, Ordering::Relaxed);
        std::mem::forget(fd);
    }

    /// The descriptor put here, now owned by the caller; `None` if there is none.
    fn take(&self) -> Option<Fd> {
        match self.0.swap(-1, Ordering::Relaxed) {
            -1 => None,
            fd => Some(Fd(fd)),
        }
    }
}

impl Step {
    /// The mount this step may make, where its [`open_early`](PreparedMount::open_early)
    /// descriptor goes, and whether the step needs it (a device's bind is only a fallback
    /// where `mknod` works).
    fn early_mount(&self) -> Option<(&PreparedMount, &EarlyFd, bool)> {
        match self {
            Step::Mount { mount, early, .. } if mount.resolves_host_paths() => {
                Some((mount, early, true))
            }
            Step::Device {
                bind: Some(bind),
                early,
                mknod,
                ..
            } => Some((bind, early, !mknod)),
            _ => None,
        }
    }

    fn mount(m: Mount, special: Special) -> Result<Step> {
        Ok(Step::Mount {
            mount: m.prepare()?,
            special,
            early: EarlyFd::default(),
        })
    }

    fn dir(path: &str, mode: u32) -> Result<Step> {
        let (parent, name) = InRoot::split(Path::new(path), "directory")?;
        Ok(Step::Dir { parent, name, mode })
    }

    fn symlink(path: PathBuf, target: impl AsRef<OsStr>) -> Result<Step> {
        let (parent, name) = InRoot::split(&path, "symlink")?;
        Ok(Step::Symlink {
            parent,
            name,
            target: cstring(target.as_ref(), "symlink target")?,
        })
    }

    /// `/dev/<name>`, or `None` in a user namespace when the host has no such device to bind.
    fn device(name: &str, major: u32, minor: u32, userns: bool) -> Result<Option<Step>> {
        let path = Path::new("/dev").join(name);
        let rdev = libc::makedev(major, minor);
        let host_has_it = std::fs::metadata(&path)
            .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == rdev);
        let bind = if host_has_it {
            Some(Mount::bind(&path, &path).recursive(false).prepare()?)
        } else if userns {
            return Ok(None);
        } else {
            None
        };
        let (parent, name) = InRoot::split(&path, "device")?;
        Ok(Some(Step::Device {
            parent,
            name,
            rdev,
            mode: libc::S_IFCHR | 0o666,
            owner: None,
            mknod: !userns,
            bind,
            early: EarlyFd::default(),
        }))
    }

    /// A caller's [`DeviceNode`]: `mknod` (a fifo even in a user namespace), else a bind of
    /// the host's same node at the same path.
    fn node(node: &DeviceNode, userns: bool) -> Result<Step> {
        let (file_type, rdev) = match node.kind {
            NodeKind::Char => (libc::S_IFCHR, libc::makedev(node.major, node.minor)),
            NodeKind::Block => (libc::S_IFBLK, libc::makedev(node.major, node.minor)),
            NodeKind::Fifo => (libc::S_IFIFO, 0),
        };
        let path = absolute(&node.path, "device path")?;
        let host_has_it = node.kind != NodeKind::Fifo
            && std::fs::metadata(&path).is_ok_and(|m| {
                let t = m.file_type();
                m.rdev() == rdev
                    && if node.kind == NodeKind::Char {
                        t.is_char_device()
                    } else {
                        t.is_block_device()
                    }
            });
        let bind = if host_has_it {
            Some(Mount::bind(&path, &path).recursive(false).prepare()?)
        } else {
            None
        };
        let mknod = !userns || node.kind == NodeKind::Fifo;
        if !mknod && bind.is_none() {
            return Err(Error::unsupported(
                "device node",
                format!(
                    "{}: a user namespace may not mknod a device, and the host has no such node ({}:{}) at that path to bind",
                    path.display(),
                    node.major,
                    node.minor
                ),
            ));
        }
        let (parent, name) = InRoot::split(&path, "device")?;
        Ok(Step::Device {
            parent,
            name,
            rdev,
            mode: file_type | (node.mode & 0o7777),
            owner: Some((node.uid, node.gid)),
            mknod,
            bind,
            early: EarlyFd::default(),
        })
    }

    /// The container path this step works on.
    fn path(&self) -> PathBuf {
        match self {
            Step::Mount { mount, .. } => mount.target().to_path_buf(),
            Step::Dir { parent, name, .. }
            | Step::Symlink { parent, name, .. }
            | Step::Device { parent, name, .. } => {
                parent.path.join(OsStr::from_bytes(name.as_bytes()))
            }
            Step::Mask(p) | Step::ReadOnly(p) => p.path.clone(),
            Step::Etc(_) => PathBuf::from("/etc"),
        }
    }
}

/// A [`Rootfs`] ready for the child: every string built, every decision taken.
#[derive(Debug)]
pub(crate) struct PreparedRootfs {
    /// Exclusive locks on a persistent upper directory and its work directory, held by
    /// the parent for the container's life (`Child` takes them); close-on-exec, and closed
    /// in the child before `execve` with every other descriptor.
    pub(crate) locks: Vec<LayerLock>,
    base: Base,
    steps: Vec<Step>,
    read_only_root: bool,
    chroot_fallback: bool,
    /// `MS_SHARED` (...) and `MS_REC` for `mount(2)` on `/` after `pivot_root`; 0 for none.
    root_propagation: libc::c_ulong,
    userns: bool,
}

/// What a step of the child did when it failed; crosses the error pipe as `step` (numbers
/// below 100 are [`MountStep`]s of a prepared mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Op {
    MakePrivate = 100,
    ScratchOpen,
    ScratchConfig,
    ScratchCreate,
    ScratchMount,
    ScratchAttach,
    MakeLayerDir,
    StatLower,
    OpenUpper,
    OpenWork,
    OverlayOpen,
    OverlayConfig,
    OverlayCreate,
    OverlayMount,
    SaveCwd,
    ChdirFds,
    LegacyMount,
    RestoreCwd,
    CloneOverlay,
    CloneImage,
    ImageReadOnly,
    AttachRoot,
    RootPrivate,
    OpenParent,
    Mkdir,
    Symlink,
    Mknod,
    OpenNull,
    CheckNull,
    OpenTarget,
    StatTarget,
    MaskOpen,
    MaskCreate,
    MaskMount,
    CloneTarget,
    SetReadOnly,
    MoveMount,
    RootReadOnly,
    Fchdir,
    OldRootDir,
    OldRootAttach,
    PivotRoot,
    DetachOldRoot,
    Chroot,
    ChdirRoot,
    RootPropagation,
    DeviceChown,
}

impl Op {
    const ALL: [Op; 47] = [
        Op::MakePrivate,
        Op::ScratchOpen,
        Op::ScratchConfig,
        Op::ScratchCreate,
        Op::ScratchMount,
        Op::ScratchAttach,
        Op::MakeLayerDir,
        Op::StatLower,
        Op::OpenUpper,
        Op::OpenWork,
        Op::OverlayOpen,
        Op::OverlayConfig,
        Op::OverlayCreate,
        Op::OverlayMount,
        Op::SaveCwd,
        Op::ChdirFds,
        Op::LegacyMount,
        Op::RestoreCwd,
        Op::CloneOverlay,
        Op::CloneImage,
        Op::ImageReadOnly,
        Op::AttachRoot,
        Op::RootPrivate,
        Op::OpenParent,
        Op::Mkdir,
        Op::Symlink,
        Op::Mknod,
        Op::OpenNull,
        Op::CheckNull,
        Op::OpenTarget,
        Op::StatTarget,
        Op::MaskOpen,
        Op::MaskCreate,
        Op::MaskMount,
        Op::CloneTarget,
        Op::SetReadOnly,
        Op::MoveMount,
        Op::RootReadOnly,
        Op::Fchdir,
        Op::OldRootDir,
        Op::OldRootAttach,
        Op::PivotRoot,
        Op::DetachOldRoot,
        Op::Chroot,
        Op::ChdirRoot,
        Op::RootPropagation,
        Op::DeviceChown,
    ];

    fn from_u32(n: u32) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| *op as u32 == n)
    }

    fn syscall(self) -> &'static str {
        use Op::*;
        match self {
            MakePrivate => "mount(MS_REC|MS_PRIVATE)",
            ScratchOpen => "fsopen(tmpfs)",
            ScratchConfig | ScratchCreate => "fsconfig(tmpfs)",
            ScratchMount => "fsmount(tmpfs)",
            ScratchAttach | AttachRoot => "move_mount",
            MakeLayerDir | Mkdir | OldRootDir => "mkdirat",
            StatLower | StatTarget | CheckNull => "statx",
            OpenUpper | OpenWork | SaveCwd | OpenParent | OpenNull | OpenTarget => "openat2",
            OverlayOpen => "fsopen(overlay)",
            OverlayConfig | OverlayCreate => "fsconfig(overlay)",
            OverlayMount => "fsmount(overlay)",
            ChdirFds => "chdir(/proc/self/fd)",
            LegacyMount => "mount(overlay)",
            RestoreCwd => "fchdir",
            CloneOverlay => "open_tree",
            DetachOldRoot => "umount2(MNT_DETACH)",
            CloneImage | CloneTarget => "open_tree",
            ImageReadOnly | SetReadOnly | RootReadOnly | RootPrivate => "mount_setattr",
            Symlink => "symlinkat",
            Mknod => "mknodat",
            MaskOpen => "fsopen(tmpfs)",
            MaskCreate => "fsconfig(tmpfs)",
            MaskMount => "fsmount(tmpfs)",
            MoveMount | OldRootAttach => "move_mount",
            Fchdir => "fchdir",
            PivotRoot => "pivot_root",
            Chroot => "chroot",
            ChdirRoot => "chdir",
            RootPropagation => "mount(MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE)",
            DeviceChown => "fchownat",
        }
    }
}

/// The `step` of a working-directory report: `getcwd` found the directory outside the root.
pub(crate) const CWD_OUTSIDE_ROOT: u32 = 1;

/// The `step` of a failed `fsconfig(lowerdir+)`: this plus the layer's index, top first.
pub(crate) const LOWER_STEP: u32 = 1_000;
/// The `step` of a layer the child could not open: this plus its index, top first.
pub(crate) const LOWER_OPEN_STEP: u32 = 2_000;

impl PreparedRootfs {
    /// Turns the child's report of a failed step into the error `spawn` returns.
    pub(crate) fn error(&self, stage: SetupStage, index: u32, step: u32, errno: Errno) -> Error {
        let op = Op::from_u32(step);
        if stage == SetupStage::PivotRoot {
            return match (op, errno) {
                (Some(Op::PivotRoot), Errno::EINVAL) => Error::unsupported(
                    "pivot_root into the container's root",
                    "the kernel refused (EINVAL): the current root cannot be moved (an \
                     initramfs that was not detected?); Rootfs::chroot_fallback(true) uses \
                     chroot instead",
                ),
                // The old root's place is named through /proc; the new root's directory,
                // when it is a bind of the image's, can have been removed meanwhile.
                (Some(Op::PivotRoot), Errno::ENOENT) => Error::sys_path(
                    "pivot_root (the old root's place is reached through the host's \
                     /proc/self/fd: is /proc mounted? Or the image directory was removed \
                     during the start)",
                    "/proc/self/fd",
                    errno,
                ),
                (Some(op), _) => Error::sys_path(op.syscall(), "/", errno),
                (None, _) => Error::setup(stage, errno),
            };
        }
        if errno == Errno::ENOSYS {
            return Error::unsupported(
                "assembling a rootfs",
                format!(
                    "{} is missing (ENOSYS): a rootfs needs the new mount API (fsopen, \
                     fsmount, move_mount, open_tree; Linux 5.2), mount_setattr (5.12) and \
                     openat2 (5.6)",
                    op.map_or("a mount system call", Op::syscall)
                ),
            );
        }
        if index == 0 {
            if let Base::Overlay(o) = &self.base {
                let layer = |base: u32| {
                    step.checked_sub(base)
                        .and_then(|i| o.lower_paths.get(i as usize))
                        .cloned()
                };
                if let Some(path) = layer(LOWER_OPEN_STEP) {
                    return Error::sys_path("openat2", path, errno);
                }
                if let Some(path) = layer(LOWER_STEP) {
                    // The layer was opened: only its name through /proc can be missing.
                    let syscall = match errno {
                        Errno::ENOENT => {
                            "fsconfig(overlay, lowerdir+) (the layer is named through the \
                             host's /proc/self/fd: is /proc mounted?)"
                        }
                        _ => "fsconfig(overlay, lowerdir+)",
                    };
                    return Error::sys_path(syscall, path, errno);
                }
            }
            return self.base_error(op, errno);
        }
        let Some(s) = self.steps.get(index as usize - 1) else {
            return Error::setup(stage, errno);
        };
        if let Step::Etc(files) = s {
            return files.error(step, errno);
        }
        if let Step::Mount { mount, special, .. } = s {
            if let Some(mstep) = MountStep::from_u32(step) {
                let denied = errno == Errno::EPERM || errno == Errno::EACCES;
                match special {
                    Special::Proc if denied && self.userns => {
                        return Error::unsupported(
                            "a new procfs in a user namespace",
                            format!(
                                "{} refused ({errno}): the kernel mounts procfs in a user \
                                 namespace only for a PID namespace it owns and only when \
                                 the host's /proc is fully visible (no mounts hiding parts \
                                 of it)",
                                mstep.syscall()
                            ),
                        )
                    }
                    Special::Sysfs if denied && self.userns => {
                        return Error::unsupported(
                            "a new sysfs in a user namespace",
                            format!(
                                "{} refused ({errno}): the kernel mounts sysfs in a user \
                                 namespace only for a network namespace it owns and only \
                                 when the host's /sys is fully visible",
                                mstep.syscall()
                            ),
                        )
                    }
                    _ => {}
                }
                return mount.error(MountError { step: mstep, errno });
            }
        }
        if let Step::Device { bind: Some(b), .. } = s {
            if let Some(mstep) = MountStep::from_u32(step) {
                return b.error(MountError { step: mstep, errno });
            }
        }
        match op {
            Some(Op::CheckNull) => {
                Error::sys_path("statx (not the character device 1:3)", "/dev/null", errno)
            }
            Some(Op::OpenNull) => Error::sys_path("openat2", "/dev/null", errno),
            Some(op) => Error::sys_path(op.syscall(), s.path(), errno),
            None => Error::setup(stage, errno),
        }
    }

    fn base_error(&self, op: Option<Op>, errno: Errno) -> Error {
        let Some(op) = op else {
            return Error::setup(SetupStage::Mount, errno);
        };
        match &self.base {
            Base::Overlay(o) => {
                if matches!(op, Op::OverlayOpen | Op::LegacyMount) && errno == Errno::ENODEV {
                    return layers::no_overlayfs();
                }
                let scratch = matches!(o.upper, Some(Upper::Scratch { .. }));
                if self.userns
                    && scratch
                    && matches!(
                        op,
                        Op::OverlayOpen | Op::OverlayConfig | Op::OverlayCreate | Op::LegacyMount
                    )
                    && matches!(errno, Errno::EPERM | Errno::EINVAL)
                {
                    return Error::unsupported(
                        "overlay in a user namespace",
                        format!(
                            "{} refused ({errno}): overlayfs can be mounted in a user namespace \
                             from Linux 5.11 on (with userxattr); RootfsMode::ReadOnly or \
                             ReadWrite work without it",
                            op.syscall()
                        ),
                    );
                }
                if op == Op::LegacyMount && errno == Errno::E2BIG {
                    return Error::unsupported(
                        "an overlay of this many layers",
                        format!(
                            "too many layers: the mount(2) options naming {} lower layers by \
                             descriptor number do not fit in the page of {} bytes the kernel \
                             reads (this kernel has no lowerdir+, Linux 6.7); flatten the \
                             bottom layers into one directory",
                            o.lower_paths.len(),
                            layers::LEGACY_DATA_MAX
                        ),
                    );
                }
                let top = o.lower_paths.first().cloned().unwrap_or_default();
                let path = match (op, &o.upper) {
                    (Op::MakePrivate | Op::ScratchAttach | Op::AttachRoot, _) => PathBuf::from("/"),
                    (Op::SaveCwd | Op::RestoreCwd, _) => PathBuf::from("."),
                    (Op::ChdirFds, _) => PathBuf::from("/proc/self/fd"),
                    (Op::OpenUpper, Some(Upper::Dir { upper_path, .. })) => upper_path.clone(),
                    (Op::OpenWork, Some(Upper::Dir { work_path, .. })) => work_path.clone(),
                    _ => top,
                };
                Error::sys_path(op.syscall(), path, errno)
            }
            Base::Bind { path, .. } => {
                let path = match op {
                    Op::MakePrivate | Op::AttachRoot => PathBuf::from("/"),
                    _ => path.clone(),
                };
                Error::sys_path(op.syscall(), path, errno)
            }
            Base::Tmpfs { .. } => Error::sys_path(op.syscall(), "/", errno),
        }
    }
}

#[cfg(test)]
mod tests;
