//! One container at a time on a persistent upper layer.
//!
//! overlayfs only logs "upperdir is in-use" when two overlays share an upper or work
//! directory, and both containers then see each other's writes half-way. `spawn` therefore
//! locks each layer directory before the overlay is mounted, and the
//! [`Child`](crate::process::Child) holds the lock until it is reaped.
//!
//! # Why a POSIX lock on a file beside the directory, and a table in the process
//! `flock(2)` (and `F_OFD_SETLK`) locks belong to the open file description: every copy of
//! the descriptor holds them. Each clone made by another thread of the caller meanwhile (a
//! concurrent spawn, whose child keeps a copy of the fd table until it closes it before
//! `execve`) would keep a finished container's lock a while longer, and a spawn on the same
//! directory right after would fail for no reason. A POSIX record lock (`F_SETLK`) belongs
//! to the fd *table* that took it: a clone without `CLONE_FILES` has a table of its own and
//! neither holds the lock nor releases it when it closes its copy. Record locks need a file
//! opened for writing, so the lock is on `<dir>.lock` beside the directory (never inside an
//! upper directory, where the container would see it). Within one process record locks do
//! not exclude each other, so a table of the directories this process's containers hold
//! covers that case.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::io_errno;
use crate::{Errno, Error, Result};

/// The layer directories (device, inode) that this process's containers hold.
static HELD: Mutex<Option<HashSet<(u64, u64)>>> = Mutex::new(None);

/// An exclusive lock on one layer directory of a persistent upper layer, released on drop.
#[derive(Debug)]
pub(crate) struct LayerLock {
    /// `<dir>.lock`, write-locked with `F_SETLK` (closing it releases the lock).
    _file: File,
    /// The directory's (device, inode) in [`HELD`].
    key: (u64, u64),
}

impl Drop for LayerLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = held.as_mut() {
            set.remove(&self.key);
        }
    }
}

/// Locks `dir`, a layer directory of the persistent upper layer `upper` (the upper itself or
/// its work directory): [`Error::InUse`] if a container of this or another process holds it.
pub(crate) fn lock_layer_dir(dir: &Path, upper: &Path) -> Result<LayerLock> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::sys_path("stat", dir, io_errno(&e)))?;
    let key = (meta.dev(), meta.ino());
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.as_ref().is_some_and(|set| set.contains(&key)) {
        return Err(in_use(dir, upper));
    }
    let path = lock_path(dir);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| match io_errno(&e) {
            errno @ (Errno::ELOOP | Errno::EISDIR) => Error::sys_path(
                "open (the lock file beside the layer directory is a symbolic link or a \
                 directory, which is never followed: remove it)",
                &path,
                errno,
            ),
            errno => Error::sys_path("open", &path, errno),
        })?;
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0, // the whole file
        l_pid: 0,
    };
    // SAFETY: F_SETLK reads a struct flock from a live local; the descriptor is owned.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } != 0 {
        let errno = Errno::last();
        if errno == Errno::EAGAIN || errno == Errno::EACCES {
            return Err(in_use(dir, upper));
        }
        return Err(Error::sys_path("fcntl(F_SETLK)", path, errno));
    }
    held.get_or_insert_with(HashSet::new).insert(key);
    Ok(LayerLock { _file: file, key })
}

/// `<dir>.lock`, beside `dir`.
fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    dir.with_file_name(name)
}

fn in_use(dir: &Path, upper: &Path) -> Error {
    let reason = if dir == upper {
        "another container uses it as its persistent upper directory (or its work \
         directory); a directory can be the writable layer of one running container only: \
         wait for that container to end, or give this one another directory"
            .to_string()
    } else {
        format!(
            "another container uses it (the work directory of the persistent upper \
             directory {}, or as its own upper directory); wait for that container to end, \
             or give this one another directory",
            upper.display()
        )
    };
    Error::InUse {
        path: dir.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_is_refused_in_the_same_process_until_dropped() {
        let dir = std::env::temp_dir().join(format!("contain-lock-unit-{}", std::process::id()));
        let upper = dir.join("upper");
        std::fs::create_dir_all(&upper).unwrap();
        let first = lock_layer_dir(&upper, &upper).unwrap();
        match lock_layer_dir(&upper, &upper) {
            Err(Error::InUse { path, .. }) => assert_eq!(path, upper),
            other => panic!("second lock: {other:?}"),
        }
        drop(first);
        drop(lock_layer_dir(&upper, &upper).unwrap());
        assert!(dir.join("upper.lock").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
