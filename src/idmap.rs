//! Id maps: how user and group ids inside a user namespace correspond to ids outside.
//!
//! Maps are validated before anything is cloned, and written by the parent to
//! `/proc/PID/{uid_map,setgroups,gid_map}` while the child waits. Three ways to write them:
//! - as root (`CAP_SETUID`/`CAP_SETGID`): any ranges, written directly;
//! - not root, a single map of the caller's own id (the rootless default): written directly,
//!   after `deny` to `setgroups` as the kernel requires;
//! - not root, anything else: through the setuid helpers `newuidmap`/`newgidmap` (Debian
//!   package `uidmap`), which check the ranges against `/etc/subuid` and `/etc/subgid`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Errno, Error, Result};

/// The kernel's limit on lines in one `uid_map` or `gid_map` (since Linux 4.15).
pub const MAX_LINES: usize = 340;

/// One line of an id map: ids `inside..inside+count` map to `outside..outside+count`.
///
/// ```
/// use contain::idmap::IdMap;
/// // root inside is 100000 outside, and so on for 65536 ids
/// let m = IdMap::new(0, 100_000, 65_536);
/// assert_eq!(m.to_string(), "0 100000 65536");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdMap {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id outside (in the parent namespace).
    pub outside: u32,
    /// How many ids.
    pub count: u32,
}

impl IdMap {
    /// A map of `count` ids from `inside` to `outside`.
    pub const fn new(inside: u32, outside: u32, count: u32) -> IdMap {
        IdMap {
            inside,
            outside,
            count,
        }
    }

    /// Maps one id outside to `inside`.
    pub const fn single(inside: u32, outside: u32) -> IdMap {
        IdMap {
            inside,
            outside,
            count: 1,
        }
    }
}

impl std::fmt::Display for IdMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

/// Checks a map the way the kernel would, but with a message that says what is wrong: at
/// least one line, at most [`MAX_LINES`], every count > 0, no range past `u32::MAX`, and no two
/// ranges overlapping inside or outside. `what` is `"uid map"` or `"gid map"`.
///
/// # Errors
///
/// [`Error::Config`] naming `what`, saying which rule the map breaks (no ranges, too many, a zero
/// count, a range past `u32::MAX`, two ranges that overlap and which).
pub fn validate(maps: &[IdMap], what: &'static str) -> Result<()> {
    if maps.is_empty() {
        return Err(Error::config(what, "no ranges"));
    }
    if maps.len() > MAX_LINES {
        return Err(Error::config(
            what,
            format!(
                "{} ranges, the kernel takes at most {MAX_LINES}",
                maps.len()
            ),
        ));
    }
    for m in maps {
        if m.count == 0 {
            return Err(Error::config(what, format!("range {m} has count 0")));
        }
        // The kernel refuses a range that reaches u32::MAX ((uid_t)-1 is "no id").
        let last_ok = |start: u32| {
            start
                .checked_add(m.count - 1)
                .is_some_and(|end| end < u32::MAX)
        };
        if !last_ok(m.inside) || !last_ok(m.outside) {
            return Err(Error::config(
                what,
                format!("range {m} runs past the largest id {}", u32::MAX - 1),
            ));
        }
    }
    for (i, a) in maps.iter().enumerate() {
        for b in &maps[i + 1..] {
            let overlap =
                |x: u32, y: u32| x < y.saturating_add(b.count) && y < x.saturating_add(a.count);
            if overlap(a.inside, b.inside) {
                return Err(Error::config(
                    what,
                    format!("ranges {a} and {b} overlap inside"),
                ));
            }
            if overlap(a.outside, b.outside) {
                return Err(Error::config(
                    what,
                    format!("ranges {a} and {b} overlap outside"),
                ));
            }
        }
    }
    Ok(())
}

/// The text written to `uid_map`/`gid_map`: one `inside outside count` line per range.
pub fn map_file_text(maps: &[IdMap]) -> String {
    let mut s = String::with_capacity(maps.len() * 24);
    for m in maps {
        let _ = writeln!(s, "{m}");
    }
    s
}

/// How the parent will write the maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Writer {
    /// Write the files directly, `setgroups` left as is (privileged caller).
    Direct,
    /// Write `deny` to `setgroups`, then the files (unprivileged self-map).
    DirectDenySetgroups,
    /// Run `newuidmap`/`newgidmap` (unprivileged, several ranges).
    Helpers {
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

/// Id maps checked and turned into file contents before clone; written after.
#[derive(Debug, Clone)]
pub(crate) struct PreparedIdMaps {
    uid_text: String,
    gid_text: String,
    uid: Vec<IdMap>,
    gid: Vec<IdMap>,
    writer: Writer,
}

impl PreparedIdMaps {
    /// Validates `uid`/`gid` and picks how to write them for a caller with `euid`, holding
    /// `CAP_SETUID`+`CAP_SETGID` or not (`privileged`).
    pub(crate) fn prepare(
        uid: &[IdMap],
        gid: &[IdMap],
        euid: u32,
        egid: u32,
        privileged: bool,
    ) -> Result<Self> {
        validate(uid, "uid map")?;
        validate(gid, "gid map")?;
        let writer = if privileged {
            Writer::Direct
        } else if uid == [IdMap::single(uid[0].inside, euid)]
            && gid == [IdMap::single(gid[0].inside, egid)]
        {
            Writer::DirectDenySetgroups
        } else {
            Writer::Helpers {
                newuidmap: find_helper("newuidmap")?,
                newgidmap: find_helper("newgidmap")?,
            }
        };
        Ok(PreparedIdMaps {
            uid_text: map_file_text(uid),
            gid_text: map_file_text(gid),
            uid: uid.to_vec(),
            gid: gid.to_vec(),
            writer,
        })
    }

    /// Whether the child may call `setgroups(2)` once the maps are in place.
    pub(crate) fn setgroups_allowed(&self) -> bool {
        !matches!(self.writer, Writer::DirectDenySetgroups)
    }

    /// Writes the maps of process `pid` (which must be waiting in its new user namespace).
    pub(crate) fn write(&self, pid: i32) -> Result<()> {
        match &self.writer {
            Writer::Direct => {
                write_proc(pid, "uid_map", &self.uid_text)?;
                write_proc(pid, "gid_map", &self.gid_text)
            }
            Writer::DirectDenySetgroups => {
                write_proc(pid, "setgroups", "deny")?;
                write_proc(pid, "uid_map", &self.uid_text)?;
                write_proc(pid, "gid_map", &self.gid_text)
            }
            Writer::Helpers {
                newuidmap,
                newgidmap,
            } => {
                run_helper(newuidmap, pid, &self.uid)?;
                run_helper(newgidmap, pid, &self.gid)
            }
        }
    }
}

fn write_proc(pid: i32, file: &str, text: &str) -> Result<()> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    // One write(2) call: the kernel accepts a map only in a single write.
    let fd = nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys_path("open", &path, e))?;
    match nix::unistd::write(&fd, text.as_bytes()) {
        Ok(n) if n == text.len() => Ok(()),
        Ok(_) => Err(Error::sys_path("write", &path, Errno::EIO)),
        Err(e) => Err(Error::sys_path("write", &path, e)),
    }
}

fn find_helper(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            Error::unsupported(
                "id maps with several ranges without privileges",
                format!("{name} was not found in PATH; install the uidmap package (it checks the ranges against /etc/subuid and /etc/subgid)"),
            )
        })
}

fn is_executable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file()
}

fn run_helper(program: &Path, pid: i32, maps: &[IdMap]) -> Result<()> {
    let mut cmd = Command::new(program);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.inside.to_string(),
            m.outside.to_string(),
            m.count.to_string(),
        ]);
    }
    let out = cmd.output().map_err(|e| Error::Helper {
        program: program.to_owned(),
        detail: format!("cannot run it: {e}"),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Helper {
        program: program.to_owned(),
        detail: format!(
            "{} (are the ranges in /etc/subuid and /etc/subgid?): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_bad_maps() {
        let bad: &[(&[IdMap], &str)] = &[
            (&[], "no ranges"),
            (&[IdMap::new(0, 1000, 0)], "count 0"),
            (&[IdMap::new(u32::MAX - 1, 0, 2)], "past"),
            (&[IdMap::new(0, u32::MAX, 1)], "past"),
            (
                &[IdMap::new(0, 1000, 10), IdMap::new(5, 5000, 10)],
                "overlap inside",
            ),
            (
                &[IdMap::new(0, 1000, 10), IdMap::new(100, 1009, 10)],
                "overlap outside",
            ),
        ];
        for (maps, want) in bad {
            let e = validate(maps, "uid map").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("uid map"), "{maps:?}: {e}");
        }
        let many: Vec<IdMap> = (0..341).map(|i| IdMap::new(i * 2, i * 2, 1)).collect();
        assert!(validate(&many, "gid map")
            .unwrap_err()
            .to_string()
            .contains("340"));
        assert!(validate(&many[..340], "gid map").is_ok());
    }

    #[test]
    fn accepts_adjacent_ranges_and_formats_lines() {
        let maps = [IdMap::new(0, 1000, 1), IdMap::new(1, 100_000, 65_535)];
        validate(&maps, "uid map").unwrap();
        assert_eq!(map_file_text(&maps), "0 1000 1\n1 100000 65535\n");
    }

    #[test]
    fn picks_the_writer() {
        let p = PreparedIdMaps::prepare(
            &[IdMap::single(0, 1000)],
            &[IdMap::single(0, 1000)],
            1000,
            1000,
            false,
        )
        .unwrap();
        assert_eq!(p.writer, Writer::DirectDenySetgroups);
        assert!(!p.setgroups_allowed());
        let p = PreparedIdMaps::prepare(
            &[IdMap::new(0, 0, 65536)],
            &[IdMap::new(0, 0, 65536)],
            0,
            0,
            true,
        )
        .unwrap();
        assert_eq!(p.writer, Writer::Direct);
        assert!(p.setgroups_allowed());
    }

    fn overlaps(a: &IdMap, b: &IdMap) -> bool {
        let r = |x: u32, n: u32| (x as u64)..(x as u64 + n as u64);
        let (ai, bi, ao, bo) = (
            r(a.inside, a.count),
            r(b.inside, b.count),
            r(a.outside, a.count),
            r(b.outside, b.count),
        );
        (ai.start < bi.end && bi.start < ai.end) || (ao.start < bo.end && bo.start < ao.end)
    }

    proptest! {
        // The validator agrees with a straightforward 64-bit model of the kernel's rules.
        #[test]
        fn validate_matches_model(maps in proptest::collection::vec((0u32..5000, 0u32..5000, 0u32..3000), 0..6)) {
            let maps: Vec<IdMap> = maps.into_iter().map(|(i, o, c)| IdMap::new(i, o, c)).collect();
            let model_ok = !maps.is_empty()
                && maps.iter().all(|m| m.count > 0)
                && maps.iter().enumerate().all(|(i, a)| maps[i + 1..].iter().all(|b| !overlaps(a, b)));
            prop_assert_eq!(validate(&maps, "uid map").is_ok(), model_ok);
        }

        #[test]
        fn validate_never_panics(maps in proptest::collection::vec(any::<(u32, u32, u32)>(), 0..8)) {
            let maps: Vec<IdMap> = maps.into_iter().map(|(i, o, c)| IdMap::new(i, o, c)).collect();
            let _ = validate(&maps, "gid map");
        }
    }
}
