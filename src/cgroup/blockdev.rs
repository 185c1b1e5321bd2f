//! From a block device's path to the `major:minor` that `io.max` and `io.weight` take.
//!
//! The kernel throttles whole disks: `io.max` and `io.weight` refuse a partition's number with
//! `ENODEV` (`blkcg_conf_open_bdev`, Linux 5.x and 6.x), and docker passes a partition on to
//! the runtime, which then fails with a bare "no such device". Here the partition is caught
//! first and the disk it belongs to is named, from sysfs (`/sys/dev/block/MAJ:MIN/partition`
//! and the parent directory's `dev`, as in `Documentation/ABI/stable/sysfs-block`).

use std::path::{Path, PathBuf};

use nix::sys::stat::{major, minor, stat, SFlag};

use super::value::Device;
use crate::{Error, Result};

/// Where sysfs puts the block devices by number.
const SYS_DEV_BLOCK: &str = "/sys/dev/block";

impl Device {
    /// The device number of the block device at `path` (a symlink such as
    /// `/dev/disk/by-id/...` is followed), for [`IoMax`](super::IoMax) and
    /// [`Io::set_device_weight`](super::Io::set_device_weight): what docker's
    /// `--device-write-bps /dev/sda:1mb` resolves.
    ///
    /// ```no_run
    /// use contain::cgroup::{Device, IoMax, Resources};
    /// use contain::Bytes;
    /// let disk = Device::from_block_device("/dev/nvme0n1")?;
    /// let limits = Resources::new().io_max(IoMax::new(disk).wbps(Bytes::mib(1)));
    /// # let _ = limits;
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Sys`] naming `stat` and `path`: `ENOENT` when nothing is there.
    /// - [`Error::Config`] (what: `"io device"`) when `path` is not a block device (a
    ///   character device, a regular file or a directory; for the last two it names the disk
    ///   their file system is on, when sysfs knows one), or when it is a partition: the
    ///   message names the whole disk to give instead (the kernel limits I/O per disk).
    pub fn from_block_device(path: impl AsRef<Path>) -> Result<Device> {
        from_block_device_in(path.as_ref(), Path::new(SYS_DEV_BLOCK))
    }
}

/// [`Device::from_block_device`] with sysfs's `dev/block` directory at `sys_dev_block`.
fn from_block_device_in(path: &Path, sys_dev_block: &Path) -> Result<Device> {
    let st = stat(path).map_err(|e| Error::sys_path("stat", path, e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFBLK {
        let what = match kind {
            SFlag::S_IFCHR => "a character device",
            SFlag::S_IFDIR => "a directory",
            SFlag::S_IFREG => "a regular file",
            _ => "not a device",
        };
        let on = match kind {
            SFlag::S_IFDIR | SFlag::S_IFREG => disk_holding(device(st.st_dev), sys_dev_block),
            _ => String::new(),
        };
        return Err(Error::config(
            "io device",
            format!(
                "{} is {what}, not a block device: I/O limits take a disk such as /dev/sda \
                 or /dev/nvme0n1{on}",
                path.display()
            ),
        ));
    }
    let dev = device(st.st_rdev);
    if let Some(disk) = partition_of(dev, sys_dev_block) {
        return Err(Error::config(
            "io device",
            format!(
                "{} ({dev}) is a partition of {disk}: the kernel limits I/O per whole disk \
                 (io.max refuses a partition with ENODEV), so give the disk, {}",
                path.display(),
                disk.path.display()
            ),
        ));
    }
    Ok(dev)
}

fn device(rdev: libc::dev_t) -> Device {
    Device::new(major(rdev) as u32, minor(rdev) as u32)
}

/// A whole disk as sysfs names it.
#[derive(Debug, PartialEq, Eq)]
struct Disk {
    device: Device,
    /// `/dev/` and the kernel's name (sysfs's directory name, e.g. `nvme0n1`).
    path: PathBuf,
}

impl std::fmt::Display for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.device)
    }
}

/// The disk `dev` is a partition of, or `None` when it is a whole disk (or sysfs does not
/// say: then the kernel's answer to the write is what the caller gets).
fn partition_of(dev: Device, sys_dev_block: &Path) -> Option<Disk> {
    let node = sys_dev_block.join(dev.to_string());
    if !node.join("partition").exists() {
        return None;
    }
    // The partition's directory sits in its disk's: .../block/sda/sda1.
    let dir = std::fs::canonicalize(&node).ok()?;
    let parent = dir.parent()?;
    let device = std::fs::read_to_string(parent.join("dev"))
        .ok()?
        .parse()
        .ok()?;
    let name = parent.file_name()?;
    Some(Disk {
        device,
        path: Path::new("/dev").join(name),
    })
}

/// ", and the file system holding it is on DISK" for a file's `st_dev`, when sysfs knows the
/// device (a tmpfs or overlayfs has an anonymous one, major 0, that it does not).
fn disk_holding(dev: Device, sys_dev_block: &Path) -> String {
    let whole = match partition_of(dev, sys_dev_block) {
        Some(disk) => Some(disk),
        None => std::fs::canonicalize(sys_dev_block.join(dev.to_string()))
            .ok()
            .and_then(|dir| {
                Some(Disk {
                    device: dev,
                    path: Path::new("/dev").join(dir.file_name()?),
                })
            }),
    };
    whole.map_or_else(String::new, |disk| {
        format!("; the file system holding it is on the disk {disk}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake `/sys/dev/block` with the disk sda (8:0) and its partition sda1 (8:1).
    fn fake_sysfs(root: &Path) -> PathBuf {
        let disk = root.join("devices/pci0/block/sda");
        std::fs::create_dir_all(disk.join("sda1")).unwrap();
        std::fs::write(disk.join("dev"), "8:0\n").unwrap();
        std::fs::write(disk.join("sda1/dev"), "8:1\n").unwrap();
        std::fs::write(disk.join("sda1/partition"), "1\n").unwrap();
        let by_number = root.join("dev/block");
        std::fs::create_dir_all(&by_number).unwrap();
        symlink(&disk, by_number.join("8:0")).unwrap();
        symlink(disk.join("sda1"), by_number.join("8:1")).unwrap();
        by_number
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "contain-blockdev-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_partition_names_its_disk_and_a_disk_is_none() {
        let dir = tempdir();
        let sys = fake_sysfs(&dir);
        let disk = partition_of(Device::new(8, 1), &sys).expect("8:1 is a partition");
        assert_eq!(disk.device, Device::new(8, 0));
        assert_eq!(disk.path, Path::new("/dev/sda"));
        assert_eq!(partition_of(Device::new(8, 0), &sys), None);
        // Unknown to sysfs: not called a partition (the kernel will answer the write).
        assert_eq!(partition_of(Device::new(259, 7), &sys), None);
        assert_eq!(
            disk_holding(Device::new(8, 1), &sys),
            "; the file system holding it is on the disk /dev/sda (8:0)"
        );
        assert_eq!(disk_holding(Device::new(0, 42), &sys), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_is_not_a_block_device_is_refused_with_what_it_is() {
        let e = Device::from_block_device("/dev/null").unwrap_err();
        assert!(
            matches!(&e, Error::Config { what: "io device", reason } if reason.contains("/dev/null is a character device")),
            "{e}"
        );
        let e = Device::from_block_device("/").unwrap_err();
        assert!(e.to_string().contains("/ is a directory"), "{e}");
        let e = Device::from_block_device("/nonexistent/disk").unwrap_err();
        assert!(
            matches!(&e, Error::Sys { syscall: "stat", errno: crate::Errno::ENOENT, path: Some(p) } if p == Path::new("/nonexistent/disk")),
            "{e}"
        );
    }
}
