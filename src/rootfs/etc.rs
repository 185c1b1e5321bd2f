//! The container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`: generated as docker
//! and podman do and bind-mounted over the image's, which stays unchanged.
//!
//! # Design
//! The contents are built in the parent as bytes ([`prepare`]); what the parent cannot know
//! before clone comes in the child as fixed-size values: the container's hostname (`uname(2)`
//! after `sethostname`, so that `hostname`, `/etc/hostname` and `/etc/hosts` agree whatever
//! set it) and, with [`Net::Veth`](crate::net::Net::Veth), the two addresses of the pair,
//! which the parent picks after clone and sends behind the go-ahead byte (8 bytes).
//!
//! In the child, with raw system calls only:
//! 1. before the new root is attached ([`EtcFiles::attach_tmpfs`]): a new tmpfs (`fsopen`,
//!    `fsconfig` with a `size` limit, `fsmount`), attached on top of the host's `/` in the
//!    child's private mount namespace (`move_mount`), where the new root then goes on top of
//!    it. The attach is needed: before Linux 6.15 `open_tree` refuses (`EINVAL`) to clone from
//!    a mount that is not in the caller's namespace, as a detached one is not. Below the new
//!    root, it leaves with the old root's one detach after `pivot_root`: its own `umount2`
//!    would cost a second RCU grace period (`synchronize_rcu_expedited`, 0.09-0.4 ms on the
//!    2-core VM), the dearest system call of the start;
//! 2. ([`EtcFiles::apply`]) the files are created and written through the mount's descriptor
//!    (`openat`, `write`) and each is cloned (`open_tree(OPEN_TREE_CLONE)`);
//! 3. each clone is moved onto its target, resolved inside the root with
//!    `openat2(RESOLVE_IN_ROOT)` like every other mount target (and created where the mode
//!    allows), `nosuid,nodev,noexec`.
//!
//! Why this design: the files exist only in a tmpfs that belongs to the container's mount
//! namespace, so nothing is ever written on the host, and nothing is left when the container
//! (or its caller, SIGKILLed mid-spawn) dies; the tmpfs has a size limit, so a container that
//! writes into its `/etc/hosts` (they stay writable, as docker's) cannot fill the host's memory;
//! and it needs only the mount API the rest of the rootfs already uses (5.2; `openat2` 5.6).
//! Files made on the host (docker's and podman's way) would need cleaning up after a crash.
//! Both steps of 3 were checked on 6.1 (the test guest) and 6.18.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::c_int;

use super::normalize;
use crate::mount::apply::{open, Fd};
use crate::mount::{cstring, Mount, MountError, MountStep, PreparedMount};
use crate::net::dns::{self, ExtraHost, HostAddr, Resolver};
use crate::sys::{self, mount as raw};
use crate::{Errno, Error, Result};

/// The smallest size of the tmpfs that holds the generated files: room for what a container
/// appends to them. It grows with the files (twice their size plus 64 KiB).
pub const ETC_FILES_MIN_SIZE: u64 = 256 << 10;

/// docker's `/etc/hosts` header: localhost for IPv4 and IPv6, and the IPv6 names glibc's
/// `/etc/hosts` usually carries.
const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n\
    ::1\tlocalhost ip6-localhost ip6-loopback\n\
    fe00::0\tip6-localnet\n\
    ff00::0\tip6-mcastprefix\n\
    ff02::1\tip6-allnodes\n\
    ff02::2\tip6-allrouters\n";

/// The caller's name-resolution settings, kept on the `Container`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EtcConfig {
    pub hosts: Vec<ExtraHost>,
    pub resolver: Resolver,
}

impl EtcConfig {
    pub(crate) fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.resolver.is_empty()
    }
}

/// How the container reaches the network, as far as these files care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetView {
    /// The caller's network namespace.
    Host,
    /// Its own namespace with only `lo`.
    Loopback,
    /// Its own namespace with a veth pair (addresses sent after clone).
    Veth,
    /// A network namespace it joins.
    Joined,
}

/// What `spawn` knows that the files depend on.
#[derive(Debug)]
pub(crate) struct EtcContext<'a> {
    pub config: &'a EtcConfig,
    pub net: NetView,
    /// The hostname the caller sets.
    pub hostname: Option<&'a OsStr>,
    pub domainname: Option<&'a OsStr>,
    /// The container joins a UTS namespace (whose name the parent cannot know).
    pub uts_joined: bool,
}

/// One piece of a file's content.
#[derive(Debug)]
enum Piece {
    Text(Vec<u8>),
    /// The hostname (`uname` in the child).
    Hostname,
    /// docker's names for the container: `FQDN` (hostname, `.domainname` if set) and, when
    /// that has a dot, the short name before it.
    Names,
    /// The container end's IPv4 address of the veth pair.
    ContainerAddr,
    /// The host end's.
    GatewayAddr,
}

#[derive(Debug)]
struct EtcFile {
    /// The name in the tmpfs.
    name: CString,
    pieces: Vec<Piece>,
    mount: PreparedMount,
}

/// The generated files, ready for the child.
#[derive(Debug)]
pub(crate) struct EtcFiles {
    size: CString,
    /// Read the veth addresses from the go-ahead pipe.
    late: bool,
    domain: Vec<u8>,
    files: Vec<EtcFile>,
}

/// Whether `name` is a host name the container may be given (`Container::hostname`,
/// `Container::domainname`): RFC 1123 labels of letters, digits, `-` (not first or last) and
/// `_` (glibc and the kernel accept it, and so does docker since 1.10.2), 1 to 63 bytes each,
/// joined by single dots; at most 64 bytes in all (the kernel's `__NEW_UTS_LEN`). Anything else
/// (whitespace, control characters, `#`) would break or add lines of `/etc/hosts`.
/// Allocates nothing (the child checks the name it reads back with `line_safe`).
pub(crate) fn is_host_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether the name read back with `uname` (a joined UTS namespace's, or the host's) can be
/// written into a line of `/etc/hosts`: no whitespace, control character or `#`. Looser than
/// [`is_host_name`], so that a host with an odd but harmless name still runs containers.
/// Async-signal-safe.
fn line_safe(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| (b.is_ascii_graphic() && b != b'#') || b >= 0x80)
}

/// Step codes of the child (distinct from the rootfs `Op`s and `MountStep`s); a file's index
/// goes in bits 16-23, bit 24 marks a `MountStep` of that file's mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum EtcOp {
    ReadLate = 200,
    Uname,
    FsOpen,
    FsConfig,
    FsCreate,
    FsMount,
    CreateFile,
    Write,
    Attach,
    Clone,
}

const MOUNT_STEP: u32 = 1 << 24;

impl EtcOp {
    const ALL: [EtcOp; 10] = [
        EtcOp::ReadLate,
        EtcOp::Uname,
        EtcOp::FsOpen,
        EtcOp::FsConfig,
        EtcOp::FsCreate,
        EtcOp::FsMount,
        EtcOp::CreateFile,
        EtcOp::Write,
        EtcOp::Attach,
        EtcOp::Clone,
    ];

    fn syscall(self) -> &'static str {
        match self {
            EtcOp::ReadLate => "read(go-ahead pipe: veth addresses)",
            EtcOp::Uname => "uname",
            EtcOp::FsOpen => "fsopen(tmpfs)",
            EtcOp::FsConfig | EtcOp::FsCreate => "fsconfig(tmpfs)",
            EtcOp::FsMount => "fsmount(tmpfs)",
            EtcOp::CreateFile => "openat2(O_CREAT) in the tmpfs",
            EtcOp::Write => "write",
            EtcOp::Attach => "move_mount(tmpfs onto /)",
            EtcOp::Clone => "open_tree(OPEN_TREE_CLONE)",
        }
    }
}

/// The host's `path`, empty when it cannot be read.
fn read_host(path: &str) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Builds the files for a container (see the [rootfs docs](super#etchosts-etchostname-etcresolvconf)).
/// `caller_mounts`: a file the caller mounts something onto is left to that mount. `create`:
/// missing targets (and `/etc`) may be created. `None` when no file is left to make.
pub(crate) fn prepare(
    ctx: &EtcContext<'_>,
    caller_mounts: &[Mount],
    create: bool,
) -> Result<Option<EtcFiles>> {
    let config = ctx.config;
    for h in &config.hosts {
        dns::check_token("add-host name", &h.name)?;
    }
    config.resolver.check()?;
    let hostname = match (ctx.hostname, ctx.uts_joined) {
        (Some(h), _) => Some(h.to_string_lossy().into_owned()),
        (None, false) => nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned()),
        (None, true) => None,
    };
    let domain = ctx
        .domainname
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    let names_line = |addr: Piece| {
        vec![
            addr,
            Piece::Text(b"\t".to_vec()),
            Piece::Names,
            Piece::Text(b"\n".to_vec()),
        ]
    };

    // /etc/hosts; with the host's network the host's file, read once.
    let host_hosts = match ctx.net {
        NetView::Host => read_host("/etc/hosts"),
        _ => String::new(),
    };
    let mut hosts = Vec::new();
    match ctx.net {
        NetView::Host => {
            let mut base = host_hosts.clone();
            if !base.is_empty() && !base.ends_with('\n') {
                base.push('\n');
            }
            if base.is_empty() {
                base.push_str(DEFAULT_HOSTS);
            }
            hosts.push(Piece::Text(base.into_bytes()));
        }
        _ => hosts.push(Piece::Text(DEFAULT_HOSTS.as_bytes().to_vec())),
    }
    for h in &config.hosts {
        match (h.addr, ctx.net) {
            (HostAddr::Ip(ip), _) => {
                hosts.push(Piece::Text(format!("{ip}\t{}\n", h.name).into_bytes()))
            }
            (HostAddr::HostGateway, NetView::Veth) => {
                hosts.push(Piece::GatewayAddr);
                hosts.push(Piece::Text(format!("\t{}\n", h.name).into_bytes()));
            }
            (HostAddr::HostGateway, NetView::Host) => {
                hosts.push(Piece::Text(format!("127.0.0.1\t{}\n", h.name).into_bytes()))
            }
            (HostAddr::HostGateway, _) => {
                return Err(Error::config(
                    "add-host",
                    format!(
                        "{}:host-gateway: the container has no way to the host (host-gateway \
                         needs Net::Veth, whose host end it names, or Net::Host)",
                        h.name
                    ),
                ))
            }
        }
    }
    match ctx.net {
        NetView::Veth => hosts.extend(names_line(Piece::ContainerAddr)),
        NetView::Host => {
            let present = hostname
                .as_deref()
                .is_some_and(|h| dns::hosts_has_name(&host_hosts, h));
            if !present {
                hosts.extend(names_line(Piece::Text(b"127.0.0.1".to_vec())));
            }
        }
        // podman's choice for a container without an address: the hostname on loopback, so
        // that `getent hosts $(hostname)` (and sudo) work.
        NetView::Loopback | NetView::Joined => {
            hosts.extend(names_line(Piece::Text(b"127.0.0.1".to_vec())))
        }
    }

    // /etc/resolv.conf
    let resolv = match ctx.net {
        NetView::Host => {
            let base = read_host("/etc/resolv.conf");
            (!base.is_empty() || !config.resolver.is_empty())
                .then(|| dns::resolv_conf(&base, false, &config.resolver))
        }
        NetView::Loopback if config.resolver.is_empty() => None,
        NetView::Loopback | NetView::Veth | NetView::Joined => {
            let mut base = read_host("/etc/resolv.conf");
            if dns::is_systemd_stub(&base) {
                let upstream = read_host(dns::SYSTEMD_RESOLV_CONF);
                if !upstream.is_empty() {
                    base = upstream;
                }
            }
            Some(dns::resolv_conf(&base, true, &config.resolver))
        }
    };

    let mut contents: Vec<(&str, Vec<Piece>)> = vec![
        ("hosts", hosts),
        (
            "hostname",
            vec![Piece::Hostname, Piece::Text(b"\n".to_vec())],
        ),
    ];
    if let Some(r) = resolv {
        contents.push(("resolv.conf", vec![Piece::Text(r.into_bytes())]));
    }
    let taken = |target: &Path| {
        caller_mounts
            .iter()
            .any(|m| normalize(m.target()) == target)
    };
    let mut files = Vec::new();
    let mut text = 0u64;
    for (name, pieces) in contents {
        let target = Path::new("/etc").join(name);
        if taken(&target) {
            continue;
        }
        text += pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len() as u64,
                _ => 0,
            })
            .sum::<u64>();
        let mount = Mount::bind(&target, &target)
            .recursive(false)
            .nosuid()
            .nodev()
            .noexec()
            .create_target(create)
            .prepare()?;
        files.push(EtcFile {
            name: cstring(OsStr::new(name), "etc file")?,
            pieces,
            mount,
        });
    }
    if files.is_empty() {
        return Ok(None);
    }
    let size = (text * 2 + (64 << 10))
        .max(ETC_FILES_MIN_SIZE)
        .next_multiple_of(4096);
    Ok(Some(EtcFiles {
        size: cstring(OsStr::new(&size.to_string()), "etc tmpfs size")?,
        late: ctx.net == NetView::Veth,
        domain,
        files,
    }))
}

/// The go-ahead message for a child whose files need the veth addresses: the go byte, then
/// the container's and the host end's IPv4 addresses.
pub(crate) fn go_message(veth: Option<&crate::net::Veth>) -> Vec<u8> {
    let mut msg = vec![1u8];
    if let Some(v) = veth {
        // Always 8 bytes with a veth: the child waits for all of them.
        let octets = |a: Option<crate::net::Ipv4Cidr>| a.map_or([0; 4], |a| a.address().octets());
        msg.extend_from_slice(&octets(v.container_address()));
        msg.extend_from_slice(&octets(v.host_address()));
    }
    msg
}

impl EtcFiles {
    /// The container path of file `i`.
    fn path(&self, i: usize) -> &Path {
        self.files
            .get(i)
            .map_or(Path::new("/etc"), |f| f.mount.target())
    }

    /// Turns the child's report into the error `spawn` returns.
    pub(crate) fn error(&self, step: u32, errno: Errno) -> Error {
        let file = ((step >> 16) & 0xff) as usize;
        if step & MOUNT_STEP != 0 {
            if let (Some(f), Some(ms)) = (self.files.get(file), MountStep::from_u32(step & 0xffff))
            {
                return f.mount.error(MountError { step: ms, errno });
            }
        }
        let op = EtcOp::ALL
            .iter()
            .copied()
            .find(|op| *op as u32 == step & 0xffff);
        match op {
            Some(op @ (EtcOp::CreateFile | EtcOp::Write | EtcOp::Clone)) => {
                Error::sys_path(op.syscall(), self.path(file), errno)
            }
            Some(EtcOp::Uname) if errno == Errno::EINVAL => Error::config(
                "hostname",
                "the UTS namespace's hostname holds whitespace, a control character or '#', \
                 which would break /etc/hosts: set a valid one with Container::hostname",
            ),
            Some(op) => Error::sys_path(op.syscall(), "/etc", errno),
            None => Error::sys_path("generating /etc files", "/etc", errno),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// In the child: raw system calls only, no allocation (see `super::apply`).

type Failure = (u32, Errno);

fn at(op: EtcOp, file: usize) -> impl Fn(Errno) -> Failure {
    move |errno| (op as u32 | ((file as u32 & 0xff) << 16), errno)
}

/// `write(2)` of all of `buf`.
fn write_all(fd: c_int, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: a write from a live buffer of the given length.
        match unsafe {
            sys::syscall3(
                libc::SYS_write,
                fd as usize,
                buf.as_ptr() as usize,
                buf.len(),
            )
        } {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `a.b.c.d` into `out`; returns the length.
fn ipv4_text(a: &[u8], out: &mut [u8; 16]) -> usize {
    let mut n = 0;
    for (i, &octet) in a.iter().take(4).enumerate() {
        if i > 0 {
            out[n] = b'.';
            n += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for &d in &digits[skip..] {
            out[n] = b'0' + d;
            n += 1;
        }
    }
    n
}

/// The NUL-terminated prefix of a `utsname` field.
fn c_field(field: &[libc::c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes = unsafe { std::slice::from_raw_parts(field.as_ptr().cast::<u8>(), field.len()) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..len]
}

impl EtcFiles {
    /// Makes and mounts the files inside `root` (the new root, attached on top of the host's
    /// `/` in the child's private mount namespace), through `tmpfs`, the mount that
    /// [`attach_tmpfs`](Self::attach_tmpfs) attached below the new root. `go_fd`: the go-ahead
    /// pipe, which holds the veth addresses behind the go byte.
    pub(crate) fn apply(&self, root: c_int, tmpfs: c_int, go_fd: c_int) -> Result<(), Failure> {
        let mut late = [0u8; 8];
        if self.late {
            let mut got = 0;
            while got < late.len() {
                let rest = &mut late[got..];
                // SAFETY: a read into a live local buffer of the given length.
                match unsafe {
                    sys::syscall3(
                        libc::SYS_read,
                        go_fd as usize,
                        rest.as_mut_ptr() as usize,
                        rest.len(),
                    )
                } {
                    Ok(0) => return Err(at(EtcOp::ReadLate, 0)(Errno::EPIPE)),
                    Ok(n) => got += n,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(at(EtcOp::ReadLate, 0)(e)),
                }
            }
        }
        // SAFETY: an all-zero utsname is valid; uname fills it.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: uname into a live local struct.
        unsafe {
            sys::syscall3(
                libc::SYS_uname,
                &mut uts as *mut libc::utsname as usize,
                0,
                0,
            )
        }
        .map_err(at(EtcOp::Uname, 0))?;
        let node = c_field(&uts.nodename);
        // A joined namespace's name is not checked by the parent: never write a line break.
        if !line_safe(node) {
            return Err(at(EtcOp::Uname, 0)(Errno::EINVAL));
        }

        for (i, file) in self.files.iter().enumerate() {
            let flags = (libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC) as u64;
            let fd = open(tmpfs, &file.name, flags, 0o644, 0).map_err(at(EtcOp::CreateFile, i))?;
            self.write(fd.0, &file.pieces, node, &late)
                .map_err(at(EtcOp::Write, i))?;
        }
        let mut trees: [Option<Fd>; 3] = [None, None, None];
        for (i, file) in self.files.iter().enumerate().take(trees.len()) {
            let flags = raw::OPEN_TREE_CLONE | raw::OPEN_TREE_CLOEXEC;
            // SAFETY: `name` is a NUL-terminated string.
            let tree = unsafe { raw::open_tree(tmpfs, file.name.as_ptr(), flags) }
                .map_err(at(EtcOp::Clone, i))?;
            trees[i] = Some(Fd(tree));
        }

        for (i, (file, tree)) in self.files.iter().zip(trees.iter()).enumerate() {
            let Some(tree) = tree else { continue };
            match file.mount.attach_tree(root, tree.0) {
                Ok(()) => {}
                // Read-only image without the file (or without /etc): skipped, see the docs.
                Err(MountError {
                    step: MountStep::ResolveTarget,
                    errno: Errno::ENOENT,
                }) if !file.mount.creates_target() => {}
                // The same where the container's root may not create it (an /etc owned by an
                // id its user namespace does not map).
                Err(MountError {
                    step: MountStep::CreateFile | MountStep::CreateDir,
                    errno: Errno::EACCES | Errno::EPERM | Errno::EROFS,
                }) => {}
                Err(e) => {
                    return Err((
                        MOUNT_STEP | ((i as u32 & 0xff) << 16) | e.step as u32,
                        e.errno,
                    ))
                }
            }
        }
        Ok(())
    }

    /// The tmpfs for the files, attached on top of the host's `/` (step 1 of the module
    /// docs): called before the new root is attached on top of it.
    pub(crate) fn attach_tmpfs(&self) -> Result<Fd, Failure> {
        let tmpfs = self.tmpfs()?;
        // SAFETY: both paths are NUL-terminated strings.
        unsafe {
            raw::move_mount(
                tmpfs.0,
                c"".as_ptr(),
                libc::AT_FDCWD,
                c"/".as_ptr(),
                raw::MOVE_MOUNT_F_EMPTY_PATH,
            )
        }
        .map_err(at(EtcOp::Attach, 0))?;
        Ok(tmpfs)
    }

    /// The detached tmpfs for the files.
    fn tmpfs(&self) -> Result<Fd, Failure> {
        // SAFETY: the type is a NUL-terminated string.
        let fs = Fd(
            unsafe { raw::fsopen(c"tmpfs".as_ptr(), raw::FSOPEN_CLOEXEC) }
                .map_err(at(EtcOp::FsOpen, 0))?,
        );
        for (key, value) in [
            (c"source", c"tmpfs"),
            (c"mode", c"755"),
            (c"size", self.size.as_c_str()),
            (c"nr_inodes", c"16"),
        ] {
            // SAFETY: key and value are NUL-terminated strings that live across the call.
            unsafe {
                raw::fsconfig(
                    fs.0,
                    raw::FSCONFIG_SET_STRING,
                    key.as_ptr(),
                    value.as_ptr().cast(),
                    0,
                )
            }
            .map_err(at(EtcOp::FsConfig, 0))?;
        }
        raw::fsconfig_create(fs.0).map_err(at(EtcOp::FsCreate, 0))?;
        let attrs =
            (raw::MOUNT_ATTR_NOSUID | raw::MOUNT_ATTR_NODEV | raw::MOUNT_ATTR_NOEXEC) as u32;
        raw::fsmount(fs.0, raw::FSMOUNT_CLOEXEC, attrs)
            .map(Fd)
            .map_err(at(EtcOp::FsMount, 0))
    }

    fn write(&self, fd: c_int, pieces: &[Piece], node: &[u8], late: &[u8; 8]) -> Result<(), Errno> {
        let mut addr = [0u8; 16];
        for piece in pieces {
            match piece {
                Piece::Text(t) => write_all(fd, t)?,
                Piece::Hostname => write_all(fd, node)?,
                Piece::Names => {
                    write_all(fd, node)?;
                    if !self.domain.is_empty() {
                        write_all(fd, b".")?;
                        write_all(fd, &self.domain)?;
                    }
                    // docker: the FQDN, then the name before its first dot.
                    let short = match node.iter().position(|&b| b == b'.') {
                        Some(dot) => Some(&node[..dot]),
                        None if !self.domain.is_empty() => Some(node),
                        None => None,
                    };
                    if let Some(short) = short.filter(|s| !s.is_empty()) {
                        write_all(fd, b" ")?;
                        write_all(fd, short)?;
                    }
                }
                Piece::ContainerAddr => {
                    let n = ipv4_text(&late[..4], &mut addr);
                    write_all(fd, &addr[..n])?;
                }
                Piece::GatewayAddr => {
                    let n = ipv4_text(&late[4..], &mut addr);
                    write_all(fd, &addr[..n])?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_rfc_1123_with_underscores() {
        let max_label = "a".repeat(63);
        let max = format!("{}.{}", "b".repeat(31), "c".repeat(32));
        for good in [
            "web",
            "web.example.org",
            "a-b_c",
            "1x",
            max_label.as_str(),
            &max,
        ] {
            assert!(is_host_name(good.as_bytes()), "{good:?}");
        }
        let long_label = "a".repeat(64);
        let long = format!("{}.{}", "b".repeat(32), "c".repeat(32));
        for bad in [
            "",
            "web\n6.6.6.6 x",
            "a b",
            "a#b",
            "a\tb",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a/b",
            "\u{e9}",
            &long_label,
            &long,
        ] {
            assert!(!is_host_name(bad.as_bytes()), "{bad:?}");
        }
        assert!(line_safe(b"odd!name") && line_safe("h\u{f4}te".as_bytes()));
        for bad in [&b""[..], b"a b", b"a\nb", b"a#b", b"a\x7fb"] {
            assert!(!line_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn ipv4_text_formats_every_width() {
        let mut out = [0u8; 16];
        for (a, want) in [
            ([10, 200, 3, 2], "10.200.3.2"),
            ([0, 0, 0, 0], "0.0.0.0"),
            ([255, 255, 255, 255], "255.255.255.255"),
            ([1, 20, 100, 9], "1.20.100.9"),
        ] {
            let n = ipv4_text(&a, &mut out);
            assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), want);
        }
    }

    fn context(config: &EtcConfig, net: NetView) -> EtcContext<'_> {
        EtcContext {
            config,
            net,
            hostname: Some(OsStr::new("box")),
            domainname: None,
            uts_joined: false,
        }
    }

    fn text(files: &EtcFiles, name: &str) -> String {
        let f = files
            .files
            .iter()
            .find(|f| f.name.to_bytes() == name.as_bytes())
            .unwrap();
        f.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => String::from_utf8_lossy(t).into_owned(),
                Piece::Hostname => "<hostname>".into(),
                Piece::Names => "<names>".into(),
                Piece::ContainerAddr => "<eth0>".into(),
                Piece::GatewayAddr => "<gateway>".into(),
            })
            .collect()
    }

    #[test]
    fn hosts_follow_docker_and_podman() {
        let mut config = EtcConfig::default();
        config.hosts.push("db:10.0.0.5".parse().unwrap());
        config.hosts.push("gw:host-gateway".parse().unwrap());
        let files = prepare(&context(&config, NetView::Veth), &[], true)
            .unwrap()
            .unwrap();
        let hosts = text(&files, "hosts");
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost"));
        assert!(
            hosts.ends_with("10.0.0.5\tdb\n<gateway>\tgw\n<eth0>\t<names>\n"),
            "{hosts}"
        );
        assert!(files.late);
        assert_eq!(text(&files, "hostname"), "<hostname>\n");

        config.hosts.pop();
        let files = prepare(&context(&config, NetView::Loopback), &[], true)
            .unwrap()
            .unwrap();
        assert!(text(&files, "hosts").ends_with("10.0.0.5\tdb\n127.0.0.1\t<names>\n"));
        assert!(!files.late);
        // Net::None without resolver settings: the image's resolv.conf is left alone.
        assert_eq!(files.files.len(), 2);

        config.hosts.push("gw:host-gateway".parse().unwrap());
        let e = prepare(&context(&config, NetView::Loopback), &[], true).unwrap_err();
        assert!(e.to_string().contains("host-gateway"), "{e}");
    }

    #[test]
    fn a_callers_mount_wins_and_sizes_are_bounded() {
        let config = EtcConfig::default();
        let mounts = [Mount::bind("/srv/hosts", "/etc/../etc/hosts")];
        let files = prepare(&context(&config, NetView::Veth), &mounts, true)
            .unwrap()
            .unwrap();
        let names: Vec<_> = files
            .files
            .iter()
            .map(|f| f.name.to_str().unwrap())
            .collect();
        assert_eq!(names, ["hostname", "resolv.conf"]);
        let size: u64 = files.size.to_str().unwrap().parse().unwrap();
        assert!(
            size >= ETC_FILES_MIN_SIZE && size % 4096 == 0 && size < 16 << 20,
            "{size}"
        );
    }
}
