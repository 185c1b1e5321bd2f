//! Container state on disk: `ROOT/ID/state.json`, a per-container lock `ROOT/ID/lock`, the
//! exec fifo `ROOT/ID/exec.fifo` and the config `create` read (`ROOT/ID/config.json`).
//!
//! The status (runtime spec, runtime.md#state) is not stored but read from the system each
//! time: `created` while the exec fifo exists and the process lives, `running` once started
//! and alive, `paused` when its cgroup is frozen, `stopped` when the process is gone, a
//! zombie, or another process with its pid (a start time other than the recorded one).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The version of the runtime spec this runtime follows (oci-spec's).
pub const OCI_VERSION: &str = oci_spec::runtime::VERSION;

/// What `ROOT/ID/state.json` holds: the OCI state fields and what this runtime needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The runtime spec version of the state (ours).
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The container's init process, host pid.
    pub pid: i32,
    /// Field 22 of /proc/PID/stat (clock ticks after boot) when `create` recorded it: a
    /// process with the same pid and another start time is not ours.
    pub start_time: u64,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The rootfs, absolute.
    pub rootfs: PathBuf,
    /// config.json's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup, when `create` made one.
    pub cgroup: Option<PathBuf>,
    /// The parents of `cgroup` that `create` made for `linux.cgroupsPath`, deepest first:
    /// `delete` removes them after it, each only when empty (runtime.md#delete: what create
    /// made goes, what existed stays).
    #[serde(default)]
    pub cgroup_parents_made: Vec<PathBuf>,
    /// When `create` finished, RFC 3339 UTC.
    pub created: String,
    /// The exec fifo `start` writes to.
    pub exec_fifo: PathBuf,
    /// The uid that created it.
    pub owner: u32,
}

/// The status of a container (runtime.md#state, plus runc's `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, parked before exec.
    Created,
    /// Started and alive.
    Running,
    /// Its cgroup is frozen.
    Paused,
    /// Its process is gone.
    Stopped,
}

impl Status {
    /// The spec's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The default `--root`: /run/contain-oci as root, $XDG_RUNTIME_DIR/contain-oci otherwise
/// (/tmp/contain-oci-UID without it).
pub fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/contain-oci");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("contain-oci"),
        _ => PathBuf::from(format!("/tmp/contain-oci-{}", nix::unistd::geteuid())),
    }
}

/// Checks a container id as runc does: not empty, only `[A-Za-z0-9_.+-]`, not `.` or `..`;
/// so it never names another directory than ROOT/ID.
///
/// # Errors
///
/// [`Error`] saying what is wrong with it.
pub fn validate_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::msg("container id cannot be empty"));
    }
    if id == "." || id == ".." {
        return Err(Error::msg(format!("invalid container id {id:?}")));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
    {
        return Err(Error::msg(format!(
            "invalid container id {id:?}: only letters, digits, '_', '.', '+' and '-' are allowed"
        )));
    }
    Ok(())
}

/// A container's directory under the root, with its lock held (flock, released on drop).
#[derive(Debug)]
pub struct Locked {
    /// ROOT/ID.
    pub dir: PathBuf,
    /// The id.
    pub id: String,
    _lock: File,
}

fn flock(file: &File, path: &Path) -> Result<(), Error> {
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io("flock", path, e));
        }
    }
}

fn open_lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    flock(&file, &path)?;
    Ok(file)
}

impl Locked {
    /// Makes ROOT/ID (and ROOT) for a new container and takes its lock.
    ///
    /// # Errors
    ///
    /// "container with id ID already exists" when ROOT/ID is there; `mkdir`, `open`, `flock`
    /// errors with their path.
    pub fn new_container(root: &Path, id: &str) -> Result<Locked, Error> {
        validate_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| Error::io("mkdir", root, e))?;
        let dir = root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::msg(format!("container with id {id} already exists")));
            }
            Err(e) => return Err(Error::io("mkdir", &dir, e)),
        }
        let lock = open_lock(&dir)?;
        if !still_current(&lock, &dir)? {
            // Taken for a leftover and removed by a `delete` between our mkdir and flock.
            return Err(Error::msg(format!(
                "container {id} was deleted while being created"
            )));
        }
        Ok(Locked {
            dir,
            id: id.to_owned(),
            _lock: lock,
        })
    }

    /// Takes the lock of an existing container (waiting for whoever holds it).
    ///
    /// # Errors
    ///
    /// "container ID does not exist" when there is no ROOT/ID; lock errors.
    pub fn existing(root: &Path, id: &str) -> Result<Locked, Error> {
        validate_id(id)?;
        let dir = root.join(id);
        if !dir.is_dir() {
            return Err(not_exist(id));
        }
        let lock = open_lock(&dir).map_err(|e| if dir.is_dir() { e } else { not_exist(id) })?;
        if !still_current(&lock, &dir)? {
            return Err(not_exist(id));
        }
        Ok(Locked {
            dir,
            id: id.to_owned(),
            _lock: lock,
        })
    }

    /// The state `create` wrote.
    ///
    /// # Errors
    ///
    /// "container ID does not exist" when there is none (deleted meanwhile, or a `create`
    /// that died before writing it); a parse error naming the file.
    pub fn load(&self) -> Result<State, Error> {
        let path = self.dir.join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_exist(&self.id)),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        serde_json::from_slice(&text)
            .map_err(|e| Error::msg(format!("{}: bad state: {e}", path.display())))
    }

    /// Writes the state atomically (a temporary file renamed over state.json).
    ///
    /// # Errors
    ///
    /// Write or rename errors with their path.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let json = serde_json::to_vec(state).map_err(|e| Error::msg(e.to_string()))?;
        write_atomic(&self.dir.join("state.json"), &json)
    }

    /// Removes ROOT/ID and everything in it. It is first renamed, in one step, to
    /// `ROOT/ID~deleted~PID` (not a valid id: never listed, never another container's), so a
    /// command waiting for the lock can never open a fresh ROOT/ID/lock in a directory being
    /// emptied: it finds ROOT/ID gone and says "does not exist".
    ///
    /// # Errors
    ///
    /// `rename` or `remove_dir_all` errors with the path.
    pub fn remove(&self) -> Result<(), Error> {
        let grave = self
            .dir
            .with_file_name(format!("{}~deleted~{}", self.id, std::process::id()));
        match std::fs::rename(&self.dir, &grave) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("rename", &self.dir, e)),
        }
        std::fs::remove_dir_all(&grave).map_err(|e| Error::io("remove_dir_all", &grave, e))
    }
}

/// Whether `lock` (flocked) is still the file at `dir/lock`: whoever held the lock before us
/// may have deleted the container (the file is then gone with its directory).
fn still_current(lock: &File, dir: &Path) -> Result<bool, Error> {
    let held = lock
        .metadata()
        .map_err(|e| Error::io("fstat", dir.join("lock"), e))?;
    Ok(matches!(std::fs::metadata(dir.join("lock")),
        Ok(now) if now.dev() == held.dev() && now.ino() == held.ino()))
}

/// "container ID does not exist", the words containerd matches.
pub fn not_exist(id: &str) -> Error {
    Error::msg(format!("container {id} does not exist"))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader sees all of it or nothing.
///
/// No `fsync`: the state describes processes that do not outlive the machine (the default
/// root, /run/contain-oci, is a tmpfs), so what a crash could lose is meaningless after it,
/// and on a disk-backed `--root` an `fsync` per `create` costs milliseconds (runc does not
/// sync its state either).
///
/// # Errors
///
/// Create, write or rename errors with their path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|e| Error::io("open", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Field 22 (`starttime`) and field 3 (`state`) of /proc/PID/stat; `None` when there is no
/// such process.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After ')': field 3 is the first, so field 22 is the 20th.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl State {
    /// Whether its process is alive and still the one `create` made.
    pub fn alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((s, start)) => start == self.start_time && s != 'Z' && s != 'X',
            None => false,
        }
    }

    /// The status, read from the system now.
    pub fn status(&self) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if self.exec_fifo.exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if let Ok(events) = std::fs::read_to_string(cg.join("cgroup.events")) {
                if events.lines().any(|l| l == "frozen 1") {
                    return Status::Paused;
                }
            }
        }
        Status::Running
    }

    /// The OCI state JSON (runtime.md#state) with runc's extra fields (rootfs, created,
    /// owner); `pid` is 0 once stopped.
    pub fn oci_json(&self) -> serde_json::Value {
        let status = self.status();
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status.as_str(),
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner.to_string(),
            "annotations": self.annotations,
        })
    }
}

/// The time now as RFC 3339 UTC with nanoseconds (`2026-11-30T21:30:00.123456789Z`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let tod = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60,
        d.subsec_nanos()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (the days-from-civil
/// inverse: 400-year eras of 146097 days, years starting in March).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0y", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["abc", "a.b", "A_b-1", "..x", "x+y"] {
            assert!(validate_id(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn dates_from_day_counts() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn our_own_stat_has_a_start_time_and_is_running() {
        let (s, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(s == 'R' || s == 'S', "{s}");
        assert!(start > 0);
        assert!(proc_stat(i32::MAX).is_none());
    }
}
