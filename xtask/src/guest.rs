//! What the guest boots: the base initramfs (busybox, /init, /etc) that is cached, and the
//! per-run archive (the program, its shared libraries, extra files, the run's config) that is
//! appended to it uncompressed, so the guest spends no time decompressing.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::cpio;
use crate::error::{bail, Context, Result};

/// Stage 1, pid 1 on the initramfs. The initramfs root is the kernel's rootfs, which
/// pivot_root(2) refuses to move (EINVAL), and the tests use pivot_root. So, like the kernel
/// does for a disk root, mount a bind of it over / and chroot into that: the root is then an
/// ordinary mount with a parent, and pivot_root in a new mount namespace works. No copy.
const INIT: &str = r#"#!/bin/busybox sh
bb=/bin/busybox
die() { $bb echo "xtask-guest: $*"; $bb poweroff -f; }
$bb mount --bind / /newroot || die "bind-mounting / failed"
cd /newroot || die "cd /newroot failed"
$bb mount --move . / || die "moving the root mount failed"
exec $bb chroot . /init2
"#;

/// Stage 2, pid 1 in the final root: the mounts a container host has, a pure cgroup2 tree with
/// every controller enabled at the root, loopback up; then the command, from the non-root
/// cgroup /ci.scope that also holds pid 1 (as on a real host, where the caller's own cgroup
/// holds processes), and its exit status on the console tagged with the run's nonce.
const INIT2: &str = r#"#!/bin/busybox sh
bb=/bin/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
warn() { echo "xtask-guest: $*"; }
$bb rmdir /newroot
$bb mount -t proc -o nosuid,nodev,noexec proc /proc || warn "mounting /proc failed"
$bb --install -s || warn "busybox --install failed"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || warn "mounting /sys failed"
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || warn "mounting /dev failed"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts ||
    warn "mounting /dev/pts failed"
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || warn "mounting /dev/shm failed"
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run || warn "mounting /run failed"
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
for m in /lib/modules/xtask/*.ko; do
    [ -e "$m" ] || continue
    case $m in
    */brd.ko) insmod "$m" rd_nr=1 rd_size=65536 ;; # /dev/ram0, 64 MiB, allocated on write
    *) insmod "$m" ;;
    esac || warn "cannot load $m"
done
. /xtask/config
mount -t cgroup2 -o "nosuid,nodev,noexec${CGROUP_OPTS:+,$CGROUP_OPTS}" cgroup2 /sys/fs/cgroup ||
    warn "mounting cgroup2 at /sys/fs/cgroup failed"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || warn "cannot enable controller $c"
done
# A hung command is killed from outside (xtask's --timeout) with nothing said of where it
# hung: before that, list every user thread's state, wait channel and kernel stack, and the
# kernel's last messages (a stuck netdev or an RCU stall says so there). Started
# here, so that it stays in the root cgroup, away from the command's. WATCHDOG counts from
# qemu's start, as xtask's timeout does: the boot so far is taken off. Reading a command
# line locks the process's memory map, which a hung process may hold: bounded by timeout.
dump() {
    warn "the command still runs after $WATCHDOG s; its threads (pid/tid state wchan comm, cmdline, kernel stack):"
    for p in /proc/[0-9]*; do
        cmd=$({ timeout 2 tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)
        [ -n "$cmd" ] || continue # kernel threads have no command line
        echo "== ${p#/proc/}: $cmd"
        for t in "$p"/task/*; do
            state=$({ timeout 2 sed -n 's/^State:[[:space:]]*//p' "$t/status"; } 2>/dev/null)
            echo "  ${p#/proc/}/${t##*/} $state $(cat "$t/wchan" 2>/dev/null) $(cat "$t/comm" 2>/dev/null)"
            sed 's/^/      /' "$t/stack" 2>/dev/null
        done
    done
    warn "the kernel's last messages:"
    dmesg | tail -n 40
    warn "end of the list"
}
dog=
if [ "${WATCHDOG:-0}" -gt 0 ]; then
    up=$(cut -d. -f1 /proc/uptime)
    (sleep "$((WATCHDOG > up ? WATCHDOG - up : 1))" && dump) &
    dog=$!
fi
# The command runs where it does on a real host (a systemd service, a CI job, a container): in
# a non-root cgroup that holds processes (this shell, pid 1, and the command), not at the root.
# `--env CONTAIN_VM_CGROUP=` (empty) keeps it at the root; another value names the group.
cg=$( (. /xtask/env; echo "${CONTAIN_VM_CGROUP-ci.scope}") )
if [ -n "$cg" ]; then
    mkdir -p "/sys/fs/cgroup/$cg" && echo $$ >"/sys/fs/cgroup/$cg/cgroup.procs" ||
        warn "cannot move the command into /sys/fs/cgroup/$cg"
fi
hostname vm
ip link set lo up || warn "cannot bring lo up"
mkdir -p "$GUEST_CWD" && cd "$GUEST_CWD" || warn "cannot enter $GUEST_CWD"
echo "@@XTASK_START_${NONCE}@@"
(. /xtask/env; exec /xtask/cmd </dev/null)
rc=$?
[ -z "$dog" ] || kill "$dog" 2>/dev/null
echo "@@XTASK_EXIT_${NONCE}=${rc}@@"
poweroff -f
"#;

/// Where the base image keeps the kernel modules /init2 loads.
const MODULE_DIR: &str = "/lib/modules/xtask";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost vm\n::1\tlocalhost ip6-localhost ip6-loopback\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n";

/// Host tools copied in when present, with their libraries and setuid bits: (guest path, host
/// paths to try). newuidmap/newgidmap for rootless id maps with several ranges; iproute2's
/// `ip`, which (unlike busybox's) creates veth pairs, placed ahead of busybox's in PATH.
const HOST_TOOLS: [(&str, &[&str]); 3] = [
    ("/usr/bin/newuidmap", &["/usr/bin/newuidmap"]),
    ("/usr/bin/newgidmap", &["/usr/bin/newgidmap"]),
    (
        "/usr/sbin/ip",
        &["/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip"],
    ),
];
/// What `--bare` removes before the command runs: the `ip` applet links.
const BARE_REMOVE: &[u8] = b"rm -f /sbin/ip /bin/ip /usr/sbin/ip /usr/bin/ip\n";
/// Host files copied in when present: the subordinate id ranges newuidmap reads.
const HOST_CONFIG: [&str; 2] = ["/etc/subuid", "/etc/subgid"];

/// Environment variables forwarded from the host when set.
pub const FORWARDED_ENV: [&str; 6] = [
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_LOG",
    "RUST_MIN_STACK",
    "RUST_TEST_THREADS",
    "RUST_TEST_NOCAPTURE",
];

/// The cached base image and what the per-run archive must know about it.
pub struct Base {
    pub image: PathBuf,
    /// Paths the base creates (so the per-run archive does not declare them again).
    pub paths: Vec<PathBuf>,
    /// Absolute paths of busybox applets, e.g. /bin/sh, that the guest provides itself.
    pub applets: BTreeSet<PathBuf>,
}

/// Build the base image into `cache_dir` unless an identical one is there already.
pub fn base(cache_dir: &Path, busybox: &Path, modules: &[PathBuf]) -> Result<Base> {
    let applets = applets(busybox)?;
    // Building it in memory is cheap (busybox is ~2 MiB); naming it by a hash of its bytes
    // means any change of script, layout or busybox gives a new image, and nothing stale.
    let mut w = cpio::Writer::new(Vec::new(), 1);
    write_base(&mut w, busybox, modules)?;
    let paths = w.paths().map(Path::to_path_buf).collect();
    let bytes = w.finish()?;
    let mut key = Fnv::new();
    key.write(&bytes);
    let image = cache_dir.join(format!("base-{:016x}.cpio", key.finish()));
    if !image.is_file() {
        let partial = image.with_extension("partial");
        fs::write(&partial, &bytes).with_context(|| format!("write {}", partial.display()))?;
        fs::rename(&partial, &image)?;
    }
    Ok(Base {
        image,
        paths,
        applets,
    })
}

fn write_base<W: Write>(
    w: &mut cpio::Writer<W>,
    busybox: &Path,
    modules: &[PathBuf],
) -> Result<()> {
    for (dir, mode) in [
        ("/bin", 0o755),
        ("/sbin", 0o755),
        ("/usr/bin", 0o755),
        ("/usr/sbin", 0o755),
        ("/etc", 0o755),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/run", 0o755),
        ("/tmp", 0o1777),
        ("/var/tmp", 0o1777),
        ("/root", 0o700),
        ("/mnt", 0o755),
        ("/newroot", 0o755),
        ("/xtask", 0o755),
    ] {
        w.dir(Path::new(dir), mode)?;
    }
    // Before devtmpfs is mounted, the console and /dev/null must exist.
    w.char_device(Path::new("/dev/console"), 0o600, 5, 1)?;
    w.char_device(Path::new("/dev/null"), 0o666, 1, 3)?;
    w.host_file(Path::new("/bin/busybox"), 0o755, busybox)?;
    w.symlink(Path::new("/usr/bin/busybox"), Path::new("/bin/busybox"))?;
    w.file(Path::new("/init"), 0o755, INIT.as_bytes())?;
    w.file(Path::new("/init2"), 0o755, INIT2.as_bytes())?;
    w.file(Path::new("/etc/passwd"), 0o644, PASSWD.as_bytes())?;
    w.file(Path::new("/etc/group"), 0o644, GROUP.as_bytes())?;
    w.file(Path::new("/etc/hosts"), 0o644, HOSTS.as_bytes())?;
    w.file(Path::new("/etc/nsswitch.conf"), 0o644, NSSWITCH.as_bytes())?;
    w.file(Path::new("/etc/hostname"), 0o644, b"vm\n")?;
    w.dir(Path::new(MODULE_DIR), 0o755)?;
    for module in modules {
        let Some(name) = module.file_name() else {
            bail!("module path {} has no file name", module.display());
        };
        w.host_file(&Path::new(MODULE_DIR).join(name), 0o644, module)?;
    }
    Ok(())
}

/// `busybox --list-full` run on the host (the binary is static): bin/sh, usr/bin/env, ...
fn applets(busybox: &Path) -> Result<BTreeSet<PathBuf>> {
    let mode = fs::metadata(busybox)?.permissions().mode();
    if mode & 0o111 == 0 {
        fs::set_permissions(busybox, fs::Permissions::from_mode(0o755))?;
    }
    let list = cmd::stdout(Command::new(busybox).arg("--list-full"))?;
    let mut applets: BTreeSet<PathBuf> = list
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| Path::new("/").join(l))
        .collect();
    applets.insert(PathBuf::from("/bin/busybox"));
    applets.insert(PathBuf::from("/usr/bin/busybox"));
    Ok(applets)
}

/// What one run puts into the guest besides the base.
pub struct Payload<'a> {
    /// Host executables to copy to the same path, with their shared libraries.
    pub executables: Vec<PathBuf>,
    /// Host files or directories to copy as they are (`--files`).
    pub files: &'a [PathBuf],
    /// argv of the command, argv[0] an absolute guest path.
    pub argv: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
    pub cwd: PathBuf,
    pub cgroup_opts: &'a str,
    /// Without the host's tools ([`HOST_TOOLS`], [`HOST_CONFIG`]) and busybox's `ip` applet.
    pub bare: bool,
    /// After this long, if the command still runs, the guest prints every user process's
    /// threads with their state, wait channel and kernel stack: what a hung test waits on.
    pub watchdog: Option<std::time::Duration>,
}

/// Write the per-run archive (config, command, executables with libraries, host tools) to
/// `out`, which must be positioned at a 4-byte boundary after the base image.
pub fn write_payload<W: Write>(out: W, base: &Base, payload: &Payload, nonce: &str) -> Result<()> {
    let mut w = cpio::Writer::new(out, 1 << 24);
    w.assume_present(base.paths.iter().map(PathBuf::as_path));

    let mut config = format!("NONCE={nonce}\n").into_bytes();
    config.extend_from_slice(b"GUEST_CWD=");
    config.extend_from_slice(&sh_quote(payload.cwd.as_os_str().as_bytes()));
    config.extend_from_slice(b"\nCGROUP_OPTS=");
    config.extend_from_slice(&sh_quote(payload.cgroup_opts.as_bytes()));
    let watchdog = payload.watchdog.map_or(0, |d| d.as_secs());
    config.extend_from_slice(format!("\nWATCHDOG={watchdog}\n").as_bytes());
    w.file(Path::new("/xtask/config"), 0o644, &config)?;

    let mut env = Vec::new();
    for (name, value) in &payload.env {
        env.extend_from_slice(b"export ");
        env.extend_from_slice(name.as_bytes());
        env.push(b'=');
        env.extend_from_slice(&sh_quote(value.as_bytes()));
        env.push(b'\n');
    }
    w.file(Path::new("/xtask/env"), 0o644, &env)?;

    let mut script = b"#!/bin/sh\n".to_vec();
    if payload.bare {
        // `busybox --install -s` made /sbin/ip (which cannot make veth pairs): a bare host
        // has no `ip` at all.
        script.extend_from_slice(BARE_REMOVE);
    }
    script.extend_from_slice(b"exec");
    for arg in &payload.argv {
        script.push(b' ');
        script.extend_from_slice(&sh_quote(arg.as_bytes()));
    }
    script.push(b'\n');
    w.file(Path::new("/xtask/cmd"), 0o755, &script)?;

    for exe in &payload.executables {
        add_elf(&mut w, exe, exe)?;
    }
    for (guest, candidates) in HOST_TOOLS.iter().filter(|_| !payload.bare) {
        let guest = Path::new(guest);
        let host = candidates.iter().map(Path::new).find(|p| p.is_file());
        if let Some(host) = host.filter(|_| !w.contains(guest)) {
            add_elf(&mut w, guest, host)
                .with_context(|| format!("adding the host's {}", host.display()))?;
        }
    }
    for config in HOST_CONFIG.map(Path::new).iter().filter(|_| !payload.bare) {
        if config.is_file() {
            w.host_file(config, 0o644, config)?;
        }
    }
    for path in payload.files {
        // A path named on the command line is followed (like `cp -H`): /etc/os-release is a
        // symlink whose target the guest lacks. Symlinks inside directories are kept.
        let meta = fs::metadata(path).with_context(|| format!("--files {}", path.display()))?;
        if meta.is_dir() {
            add_tree(&mut w, path)?;
        } else {
            add_elf(&mut w, path, path)?;
        }
    }
    w.finish()?;
    Ok(())
}

/// A host file at the same path in the guest, mode kept (setuid included), plus the shared
/// libraries `ldd` reports when it is a dynamic ELF executable.
fn add_elf<W: Write>(w: &mut cpio::Writer<W>, guest: &Path, host: &Path) -> Result<()> {
    let mode = fs::metadata(host)
        .with_context(|| format!("stat {}", host.display()))?
        .permissions()
        .mode();
    w.host_file(guest, mode, host)?;
    if !is_elf(host)? {
        return Ok(());
    }
    let libs = shared_libraries(host)
        .with_context(|| format!("cannot list the libraries of {}", host.display()))?;
    for lib in libs {
        if !w.contains(&lib) {
            let mode = fs::metadata(&lib)
                .with_context(|| format!("stat {}", lib.display()))?
                .permissions()
                .mode();
            // Libraries are copied as files at the path the loader asks for; symlinks
            // on the host (/lib64 -> usr/lib64) need not exist in the guest.
            w.host_file(&lib, mode, &lib)?;
        }
    }
    Ok(())
}

/// `--files`: a file (with its libraries if it is an ELF) or a directory tree, symlinks kept.
fn add_tree<W: Write>(w: &mut cpio::Writer<W>, path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("stat {}", path.display()))?;
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        let target = fs::read_link(path)?;
        w.symlink(path, &target)?;
    } else if file_type.is_dir() {
        w.dir(path, meta.permissions().mode())?;
        let mut entries: Vec<_> = fs::read_dir(path)
            .with_context(|| format!("read {}", path.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            add_tree(w, &entry.path())?;
        }
    } else if file_type.is_file() {
        add_elf(w, path, path)?;
    } else {
        bail!(
            "{} is neither a file, a directory nor a symlink",
            path.display()
        );
    }
    Ok(())
}

fn is_elf(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"\x7fELF"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// The absolute paths in `ldd`'s output; a library "not found" is an error.
fn shared_libraries(path: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .context("cannot run ldd (install libc-bin)")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        bail!("ldd {} failed: {}", path.display(), text.trim());
    }
    parse_ldd(&text).map_err(|missing| {
        crate::error::Error::new(format!(
            "{} needs libraries the host lacks: {}",
            path.display(),
            missing.join(", ")
        ))
    })
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and `/lib64/ld-linux-x86-64.so.2
/// (0x...)` give paths; `linux-vdso.so.1 (0x...)` gives none; `libx.so => not found` is an
/// error listing the missing names.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut libs = Vec::new();
    let mut missing = Vec::new();
    for line in text.lines().map(str::trim) {
        let (name, rest) = match line.split_once(" => ") {
            Some((name, rest)) => (name, rest),
            None => ("", line),
        };
        if rest.starts_with("not found") {
            missing.push(name.to_string());
            continue;
        }
        let path = rest.split(" (0x").next().unwrap_or("").trim();
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    if missing.is_empty() {
        Ok(libs)
    } else {
        Err(missing)
    }
}

/// POSIX sh single quoting, byte for byte: anything but NUL survives.
pub fn sh_quote(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(br"'\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// FNV-1a, 64 bit: a stable cache key (std's hasher may change between toolchains).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f2)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        let missing = "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n";
        assert_eq!(parse_ldd(missing).unwrap_err(), ["libfoo.so.1"]);
    }

    #[test]
    fn quotes_for_sh() {
        assert_eq!(sh_quote(b"a b"), b"'a b'");
        assert_eq!(sh_quote(b"it's"), br"'it'\''s'");
        assert_eq!(sh_quote(b""), b"''");
        assert_eq!(sh_quote(b"\xff$x"), b"'\xff$x'");
    }
}
