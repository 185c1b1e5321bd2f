//! Test root filesystems built at test time from a statically linked busybox.
//!
//! Each test gets its own rootfs in its own temporary directory (removed on drop), so that
//! "the image is byte-for-byte unchanged" checks never see another test's runs. busybox itself
//! is read once per test process.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::TempDir;

/// The applets the tests use, as links to `/bin/busybox`.
pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "mount", "umount", "id", "touch", "mkdir", "stat", "mknod", "head",
    "ps", "grep", "rm", "readlink", "wc", "true", "false", "sleep", "test", "ln", "tr", "env",
    "pwd", "printf", "sed", "rmdir", "chmod", "[",
];

/// Where busybox is looked for, in order (`$CONTAIN_TEST_BUSYBOX` first).
const CANDIDATES: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// Whether the ELF file `bytes` has no program interpreter (is statically linked).
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    // ELF64, little-endian.
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).all(|i| {
        let at = phoff as usize + i * phentsize as usize;
        u32_at(at).is_some_and(|p_type| p_type != 3) // PT_INTERP
    })
}

/// The bytes of a static busybox. Panics with what to install when there is none.
pub fn busybox() -> &'static [u8] {
    &found().1
}

/// The static busybox the tests use: its path and its bytes, read once per test process.
fn found() -> &'static (PathBuf, Vec<u8>) {
    static BUSYBOX: OnceLock<(PathBuf, Vec<u8>)> = OnceLock::new();
    BUSYBOX.get_or_init(|| {
        let env = std::env::var("CONTAIN_TEST_BUSYBOX").ok();
        let mut tried = Vec::new();
        for path in env
            .iter()
            .map(String::as_str)
            .chain(CANDIDATES.iter().copied())
        {
            match std::fs::read(path) {
                Ok(bytes) if is_static_elf(&bytes) => return (PathBuf::from(path), bytes),
                Ok(_) => tried.push(format!("{path}: not a static x86_64/aarch64 ELF")),
                Err(e) => tried.push(format!("{path}: {e}")),
            }
        }
        panic!(
            "the rootfs tests need a statically linked busybox (Debian: apt-get install \
             busybox-static; or set CONTAIN_TEST_BUSYBOX): {}",
            tried.join("; ")
        );
    })
}

/// The path of a static busybox on this host (the first of [`CANDIDATES`]), for commands
/// run through the host's view. Panics with what to install when there is none.
pub fn busybox_path() -> &'static Path {
    CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| std::fs::read(p).is_ok_and(|b| is_static_elf(&b)))
        .unwrap_or_else(|| {
            panic!(
                "no static busybox at {}: apt-get install busybox-static (`cargo xtask test` \
                 installs it)",
                CANDIDATES.join(" or ")
            )
        })
}

/// Copies the executable `from` to `to` with cp(1), in a child process: a write of it from
/// this process could leave the open file in a concurrent spawn's child, and an exec of the
/// copy then fails with ETXTBSY (see [`BusyboxRootfs::new`]).
pub fn copy_executable(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp {} {}: {status}",
        from.display(),
        to.display()
    );
}

/// A busybox root filesystem in a temporary directory: `root()` is the image.
pub struct BusyboxRootfs {
    dir: TempDir,
}

impl BusyboxRootfs {
    /// `/bin/busybox` and its applet links, the usual mount points, an `/etc` with passwd,
    /// group and a marker file `/etc/image` whose content is `image <tag>`.
    pub fn new(tag: &str) -> BusyboxRootfs {
        let dir = TempDir::new(tag);
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        let root = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "data"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), PermissionsExt::from_mode(0o1777)).unwrap();
        // Copied by a cp(1) child, not written from this process: a spawn on another thread
        // of this test binary would otherwise carry the open write fd into its child until
        // that child's exec, and an exec of this busybox in that window fails with ETXTBSY.
        let bin = root.join("bin/busybox");
        copy_executable(&found().0, &bin);
        std::fs::set_permissions(&bin, PermissionsExt::from_mode(0o755)).unwrap();
        for applet in APPLETS {
            symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/image"), format!("image {tag}\n")).unwrap();
        BusyboxRootfs { dir }
    }

    /// The image directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The temporary directory around the image (for canaries and upper layers).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
