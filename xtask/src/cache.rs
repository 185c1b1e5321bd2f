//! The VM cache under `target/vm-cache/`: the Debian kernel and static busybox (fetched with
//! apt-get download + dpkg -x, the host's /boot untouched), base initramfs images, the KVM
//! probe result, and per-run scratch directories.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::error::{bail, Context, Result};
use crate::sys::FileLock;

/// The Debian meta package whose dependency is the kernel image we boot.
pub const KERNEL_META_PACKAGE: &str = "linux-image-cloud-amd64";
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Modules (built as =m in Debian's cloud kernel, without dependencies) that the guest
/// loads: block devices for io.max (/dev/loop*, /dev/ram0), veth pairs for network tests, and
/// overlayfs for the container root filesystems.
const GUEST_MODULES: [&str; 4] = [
    "kernel/drivers/block/loop.ko",
    "kernel/drivers/block/brd.ko",
    "kernel/drivers/net/veth.ko",
    "kernel/fs/overlayfs/overlay.ko",
];

pub struct Cache {
    dir: PathBuf,
}

/// A bootable kernel image and the modules the guest loads at boot.
pub struct Kernel {
    pub image: PathBuf,
    pub modules: Vec<PathBuf>,
}

impl Cache {
    /// `$CARGO_TARGET_DIR/vm-cache` or `<workspace>/target/vm-cache`.
    pub fn open() -> Result<Cache> {
        let dir = target_dir().join("vm-cache");
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Cache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Serialises cache population between concurrent xtask runs.
    pub fn lock(&self) -> Result<FileLock> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        FileLock::acquire(file).with_context(|| format!("lock {}", path.display()))
    }

    /// The kernel to boot: `$CONTAIN_VM_KERNEL` if set (no modules then), else the cached
    /// Debian one with [`GUEST_MODULES`].
    pub fn kernel(&self) -> Result<Kernel> {
        if let Some(path) = std::env::var_os("CONTAIN_VM_KERNEL") {
            let image = PathBuf::from(path);
            if !image.is_file() {
                bail!("CONTAIN_VM_KERNEL={} is not a file", image.display());
            }
            return Ok(Kernel {
                image,
                modules: Vec::new(),
            });
        }
        // The resolved package name is remembered so that later runs need no apt at all.
        let resolved = self.dir.join(format!("{KERNEL_META_PACKAGE}.resolved"));
        let package = match fs::read_to_string(&resolved) {
            Ok(package) if self.kernel_dir(package.trim()).join("vmlinuz").is_file() => {
                package.trim().to_string()
            }
            _ => resolve_kernel_package()?,
        };
        let dir = self.kernel_dir(&package);
        let vmlinuz = dir.join("vmlinuz");
        let modules = dir.join("modules");
        // vmlinuz is renamed into place last: its presence means the directory is complete,
        // for the module list recorded beside it (a cache made for fewer modules is redone).
        let module_list = dir.join("modules.list");
        let wanted = GUEST_MODULES.join("\n");
        let listed = fs::read_to_string(&module_list).is_ok_and(|l| l == wanted);
        if !vmlinuz.is_file() || !modules.is_dir() || !listed {
            eprintln!("xtask: fetching kernel package {package}");
            let tmp = self.unpack_package(&package)?;
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&modules)
                .with_context(|| format!("create {}", modules.display()))?;
            let boot = tmp.path().join("boot");
            let mut found = None;
            for entry in fs::read_dir(&boot).with_context(|| format!("read {}", boot.display()))? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("vmlinuz-") {
                    found = Some(entry.path());
                } else if name.starts_with("config-") {
                    fs::copy(entry.path(), dir.join("config"))?;
                }
            }
            let Some(image) = found else {
                bail!("package {package} has no /boot/vmlinuz-*");
            };
            let module_root = tmp.path().join("lib/modules");
            for release in fs::read_dir(&module_root)
                .with_context(|| format!("read {}", module_root.display()))?
            {
                let release = release?.path();
                for module in GUEST_MODULES {
                    // A module built into a later kernel is simply absent.
                    let path = release.join(module);
                    if let Some(name) = path.file_name().filter(|_| path.is_file()) {
                        fs::copy(&path, modules.join(name))
                            .with_context(|| format!("copy {}", path.display()))?;
                    }
                }
            }
            fs::write(&module_list, &wanted)?;
            let partial = dir.join("vmlinuz.partial");
            fs::copy(&image, &partial).with_context(|| format!("copy {}", image.display()))?;
            fs::rename(&partial, &vmlinuz)?;
        }
        fs::write(&resolved, &package)?;
        let mut found = Vec::new();
        for entry in
            fs::read_dir(&modules).with_context(|| format!("read {}", modules.display()))?
        {
            found.push(entry?.path());
        }
        found.sort();
        Ok(Kernel {
            image: vmlinuz,
            modules: found,
        })
    }

    fn kernel_dir(&self, package: &str) -> PathBuf {
        self.dir.join("kernel").join(package)
    }

    /// A statically linked busybox: `$CONTAIN_VM_BUSYBOX` if set, else Debian's busybox-static.
    pub fn busybox(&self) -> Result<PathBuf> {
        if let Some(path) = std::env::var_os("CONTAIN_VM_BUSYBOX") {
            let path = PathBuf::from(path);
            if !path.is_file() {
                bail!("CONTAIN_VM_BUSYBOX={} is not a file", path.display());
            }
            return Ok(path);
        }
        let busybox = self.dir.join("busybox");
        if busybox.is_file() {
            return Ok(busybox);
        }
        eprintln!("xtask: fetching {BUSYBOX_PACKAGE}");
        let tmp = self.unpack_package(BUSYBOX_PACKAGE)?;
        let unpacked = tmp.path().join("bin/busybox");
        let partial = self.dir.join("busybox.partial");
        fs::copy(&unpacked, &partial)
            .with_context(|| format!("{BUSYBOX_PACKAGE} has no usable /bin/busybox"))?;
        fs::rename(&partial, &busybox)?;
        Ok(busybox)
    }

    /// Where the accelerator probe result for this host kernel and guest kernel is kept.
    pub fn accel_record(&self, kernel: &Path) -> PathBuf {
        let host = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let guest = kernel
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.dir.join(format!("accel-{}-{guest}", host.trim()))
    }

    /// A fresh scratch directory, removed on drop. Directories of earlier runs whose process
    /// is gone (killed with SIGKILL, say) are removed first.
    pub fn scratch(&self, what: &str) -> Result<ScratchDir> {
        let runs = self.dir.join("runs");
        fs::create_dir_all(&runs).with_context(|| format!("create {}", runs.display()))?;
        if let Ok(entries) = fs::read_dir(&runs) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let owner = name
                    .split('-')
                    .next()
                    .and_then(|pid| pid.parse::<u32>().ok());
                if let Some(pid) = owner {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        let path = runs.join(format!(
            "{}-{what}-{:016x}",
            std::process::id(),
            random_u64()
        ));
        fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    /// `apt-get download PACKAGE` into the cache and `dpkg -x` it into a scratch directory.
    fn unpack_package(&self, package: &str) -> Result<ScratchDir> {
        for tool in ["apt-get", "dpkg"] {
            if !cmd::in_path(tool) {
                bail!(
                    "`{tool}` not found: fetching {package} needs a Debian-like host \
                     (or set CONTAIN_VM_KERNEL / CONTAIN_VM_BUSYBOX to local files)"
                );
            }
        }
        let debs = self.dir.join("debs");
        fs::create_dir_all(&debs)?;
        let deb = match find_deb(&debs, package)? {
            Some(deb) => deb,
            None => {
                let download = || {
                    cmd::output(
                        Command::new("apt-get")
                            .args(["download", package])
                            .current_dir(&debs),
                    )
                };
                if let Err(first) = download() {
                    // The package lists may be missing or stale: refresh once and retry.
                    apt_get_update().with_context(|| format!("after: {first}"))?;
                    download()?;
                }
                match find_deb(&debs, package)? {
                    Some(deb) => deb,
                    None => bail!(
                        "apt-get download {package} left no .deb in {}",
                        debs.display()
                    ),
                }
            }
        };
        let tmp = self.scratch("unpack")?;
        cmd::output(Command::new("dpkg").arg("-x").arg(&deb).arg(tmp.path()))?;
        Ok(tmp)
    }
}

/// A directory removed with everything in it when dropped.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                eprintln!("xtask: warning: cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

/// The workspace root: xtask lives in `<root>/xtask`.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// 64 bits from the kernel's CSPRNG, for nonces and unique names.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // getrandom(2) cannot fail for 8 bytes once the pool is ready; fall back to time and pid.
    // SAFETY: the buffer is valid for 8 bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        return u64::from_ne_bytes(buf);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    now ^ (u64::from(std::process::id()) << 32)
}

/// `apt-cache depends linux-image-cloud-amd64` → `linux-image-6.1.0-NN-cloud-amd64`.
fn resolve_kernel_package() -> Result<String> {
    let query = || {
        cmd::stdout(Command::new("apt-cache").args(["depends", KERNEL_META_PACKAGE])).map(|out| {
            out.lines()
                .filter_map(|l| l.trim().strip_prefix("Depends: "))
                .map(str::trim)
                .find(|p| p.starts_with("linux-image-"))
                .map(str::to_string)
        })
    };
    if !cmd::in_path("apt-cache") {
        bail!(
            "`apt-cache` not found: fetching the guest kernel needs a Debian-like host \
             (or set CONTAIN_VM_KERNEL to a bzImage)"
        );
    }
    if let Ok(Some(package)) = query() {
        return Ok(package);
    }
    apt_get_update()?;
    match query()? {
        Some(package) => Ok(package),
        None => bail!("apt-cache depends {KERNEL_META_PACKAGE} names no linux-image-* package"),
    }
}

fn apt_get_update() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the apt package lists need refreshing; run `sudo apt-get update`");
    }
    eprintln!("xtask: apt-get update");
    cmd::output(Command::new("apt-get").arg("update")).map(drop)
}

fn find_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}
