//! docker's command-line mount syntax: `--tmpfs DST[:OPTIONS]`, `--volume SRC:DST[:OPTIONS]`
//! and byte sizes (`--shm-size 64m`), parsed into [`Mount`]s and [`Bytes`].

use std::path::{Component, Path};

use super::{Atime, Mount, Propagation};
use crate::cgroup::Bytes;
use crate::{Error, Result};

/// Parses a byte size as docker's `--shm-size`, `--memory` and `--tmpfs size=` accept it
/// (`64m`, `1.5g`, `512KiB`, powers of 1024): [`Bytes`]'s [`FromStr`](std::str::FromStr),
/// the crate's one size parser (see [its syntax](Bytes#parsing)), with the error naming
/// `what`, the flag or setting the text came from.
///
/// # Errors
///
/// Fails with [`Error::Config`] (naming `what`) for anything `Bytes` refuses.
///
/// # Examples
///
/// ```
/// use contain::mount::parse_size;
/// use contain::Bytes;
/// assert_eq!(parse_size("64m", "--shm-size")?, Bytes::mib(64));
/// assert_eq!(parse_size("1.5KiB", "--shm-size")?, Bytes(1536));
/// assert_eq!(parse_size("4096", "--shm-size")?, Bytes(4096));
/// assert!(parse_size("12x", "--shm-size").is_err());
/// # Ok::<(), contain::Error>(())
/// ```
pub fn parse_size(s: &str, what: &'static str) -> Result<Bytes> {
    s.parse::<Bytes>().map_err(|e| match e {
        Error::Parse { reason, .. } => Error::config(what, reason),
        e => e,
    })
}

/// An unsigned number in the kernel's `memparse` syntax (`nr_inodes=1k`): decimal digits
/// and an optional `k`, `m` or `g` (any case, powers of 1024).
fn parse_count(s: &str, what: &'static str, key: &str) -> Result<u64> {
    let bad = || {
        Error::config(
            what,
            format!("{key}={s:?} is not a number (digits with an optional k, m or g)"),
        )
    };
    let (digits, shift) = match s.as_bytes().last().map(u8::to_ascii_lowercase) {
        Some(b'k') => (&s[..s.len() - 1], 10),
        Some(b'm') => (&s[..s.len() - 1], 20),
        Some(b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// An absolute container path from a command-line spec.
fn container_path(dst: &str, what: &'static str, spec: &str) -> Result<()> {
    if !dst.starts_with('/') {
        return Err(Error::config(
            what,
            format!("{spec:?}: the container path {dst:?} is not absolute"),
        ));
    }
    // The container's root itself (`/`, `/.`, `/a/..`), which docker refuses too
    // ("destination can't be '/'"): a mount there would hide the whole image.
    let depth = Path::new(dst)
        .components()
        .fold(0usize, |depth, c| match c {
            Component::Normal(_) => depth + 1,
            Component::ParentDir => depth.saturating_sub(1),
            _ => depth,
        });
    if depth == 0 {
        return Err(Error::config(
            what,
            format!("{spec:?}: the container path {dst:?} is the container's root `/`"),
        ));
    }
    Ok(())
}

impl Mount {
    /// Parses docker's `--tmpfs DST[:OPTIONS]`: a tmpfs at the absolute path `DST`, with a
    /// comma-separated list of options.
    ///
    /// Defaults, as docker's `--tmpfs`: `rw,noexec,nosuid,nodev`, the kernel's `mode=1777`
    /// and no size limit other than the kernel's (half of RAM). Options (later ones win, as
    /// docker merges them):
    ///
    /// | option | meaning |
    /// |---|---|
    /// | `size=N` | limit in bytes: [`parse_size`]'s syntax (`64m`, `1g`), or `N%` of RAM (as tmpfs takes it); `0` is refused (tmpfs would read it as no limit) |
    /// | `mode=OCTAL` | permissions of the root directory (`mode=755`) |
    /// | `uid=N`, `gid=N` | owner of the root directory (numbers, as seen in the container) |
    /// | `nr_inodes=N` | inode limit (`k`, `m`, `g` suffixes; `0`: no limit) |
    /// | `exec`/`noexec`, `suid`/`nosuid`, `dev`/`nodev` | undo or keep the defaults |
    /// | `ro`/`rw` | read-only or writable |
    /// | `noatime`, `relatime`, `strictatime` | access-time updates |
    ///
    /// # Errors
    ///
    /// Fails with [`Error::Config`] naming the option for anything else (an unknown option,
    /// a bad value, an empty size, a relative `DST`, a `DST` that is the container's root
    /// `/` however spelt, as docker refuses it): an option never becomes part of the path. A
    /// `DST` with a `:` cannot be given (as with docker).
    ///
    /// # Examples
    ///
    /// ```
    /// use contain::mount::Mount;
    /// use contain::Bytes;
    /// let run = Mount::parse_tmpfs("/run:size=1m,mode=755")?;
    /// assert_eq!(run.target(), std::path::Path::new("/run"));
    /// assert_eq!(run, Mount::tmpfs("/run").mode(0o755).size(Bytes::mib(1)).noexec().nosuid().nodev());
    /// assert!(Mount::parse_tmpfs("/run:size=1m,bogus").is_err());
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn parse_tmpfs(spec: &str) -> Result<Mount> {
        const WHAT: &str = "--tmpfs";
        let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
        container_path(dst, WHAT, spec)?;
        let (mut ro, mut noexec, mut nosuid, mut nodev) = (false, true, true, true);
        let mut size: Option<String> = None;
        let mut mode = None;
        let mut atime = None;
        let mut numeric: Vec<(&'static str, u64)> = Vec::new();
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            let bad = |why: &str| Error::config(WHAT, format!("{spec:?}: option {opt:?}: {why}"));
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            match (key, value) {
                ("ro", None) => ro = true,
                ("rw", None) => ro = false,
                ("exec", None) => noexec = false,
                ("noexec", None) => noexec = true,
                ("suid", None) => nosuid = false,
                ("nosuid", None) => nosuid = true,
                ("dev", None) => nodev = false,
                ("nodev", None) => nodev = true,
                ("noatime", None) => atime = Some(Atime::Noatime),
                ("relatime", None) => atime = Some(Atime::Relatime),
                ("strictatime", None) => atime = Some(Atime::Strictatime),
                ("size", Some(v)) => {
                    size = Some(match v.strip_suffix('%') {
                        Some(pct) if !pct.is_empty() && pct.bytes().all(|b| b.is_ascii_digit()) => {
                            match pct.parse::<u32>() {
                                Ok(1..) => v.to_string(),
                                _ => return Err(bad("want a percentage of RAM above 0%")),
                            }
                        }
                        Some(_) => return Err(bad("want N% with N a whole number")),
                        None => {
                            let bytes = parse_size(v, WHAT)
                                .map_err(|_| bad("not a size (e.g. 64m, 1g, 50%)"))?;
                            if bytes.as_u64() == 0 {
                                // tmpfs reads size=0 as "no limit".
                                return Err(bad("0 bytes: leave size out for no limit"));
                            }
                            bytes.to_string()
                        }
                    })
                }
                ("mode", Some(v)) => match u32::from_str_radix(v, 8) {
                    Ok(m) if m <= 0o7777 && !v.is_empty() => mode = Some(m),
                    _ => return Err(bad("want an octal mode up to 7777 (e.g. 1777)")),
                },
                ("uid" | "gid", Some(v)) => {
                    let n: u32 = v
                        .parse()
                        .map_err(|_| bad("want a numeric id (names are not looked up)"))?;
                    let key = if key == "uid" { "uid" } else { "gid" };
                    numeric.retain(|(k, _)| *k != key);
                    numeric.push((key, u64::from(n)));
                }
                ("nr_inodes", Some(v)) => {
                    let n = parse_count(v, WHAT, key)?;
                    numeric.retain(|(k, _)| *k != "nr_inodes");
                    numeric.push(("nr_inodes", n));
                }
                (
                    "ro" | "rw" | "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev"
                    | "noatime" | "relatime" | "strictatime",
                    Some(_),
                ) => return Err(bad("takes no value")),
                ("size" | "mode" | "uid" | "gid" | "nr_inodes", None) => {
                    return Err(bad("needs a value (KEY=VALUE)"))
                }
                _ => {
                    return Err(bad(
                        "unknown tmpfs option (known: size, mode, uid, gid, nr_inodes, \
                         ro, rw, exec, noexec, suid, nosuid, dev, nodev, noatime, relatime, \
                         strictatime)",
                    ))
                }
            }
        }
        let mut m = Mount::tmpfs(dst);
        m.read_only = ro;
        m.noexec = noexec;
        m.nosuid = nosuid;
        m.nodev = nodev;
        m.atime = atime;
        m.mode = mode;
        if let Some(size) = size {
            match size.parse::<u64>() {
                Ok(bytes) => m.size = Some(bytes),
                Err(_) => m = m.option("size", size),
            }
        }
        for (key, n) in numeric {
            m = m.option(key, n.to_string());
        }
        Ok(m)
    }

    /// Parses docker's `--volume SRC:DST[:OPTIONS]` for a host path `SRC`: a recursive bind
    /// of `SRC` at the absolute container path `DST`. A relative `SRC` is taken relative to
    /// the current directory (as docker's CLI does since 23.0); docker's named volumes are
    /// not supported.
    ///
    /// `OPTIONS` is a comma-separated list of docker's names:
    ///
    /// | option | meaning |
    /// |---|---|
    /// | `ro` / `rw` | read-only / writable (default), at most one |
    /// | `private`, `rprivate`, `slave`, `rslave`, `shared`, `rshared` | propagation of the mount (`r`: with its submounts), at most one |
    /// | `consistent`, `cached`, `delegated` | accepted and ignored (macOS options; docker ignores them on Linux) |
    ///
    /// # Errors
    ///
    /// Fails with [`Error::Config`] naming the option for anything else, including SELinux's
    /// `z`/`Z` (this crate does not relabel) and `nocopy` (named volumes only); and for a
    /// relative `DST` or one that is the container's root `/` however spelt (`/..`), which
    /// docker refuses too.
    ///
    /// # Examples
    ///
    /// ```
    /// use contain::mount::Mount;
    /// let v = Mount::parse_volume("/srv/data:/data:ro")?;
    /// assert_eq!(v, Mount::bind("/srv/data", "/data").read_only());
    /// assert!(Mount::parse_volume("/srv/data:/data:bogus").is_err());
    /// # Ok::<(), contain::Error>(())
    /// ```
    pub fn parse_volume(spec: &str) -> Result<Mount> {
        const WHAT: &str = "--volume";
        let bad = |why: String| Error::config(WHAT, format!("{spec:?}: {why}"));
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [src, dst] => (*src, *dst, ""),
            [src, dst, opts] => (*src, *dst, *opts),
            _ => {
                return Err(bad(
                    "want SRC:DST[:OPTIONS] (two or three fields separated by ':')".into(),
                ))
            }
        };
        if src.is_empty() {
            return Err(bad("SRC is empty".into()));
        }
        if !src.contains('/') && !src.starts_with('.') {
            return Err(bad(format!(
                "{src:?} is not a host path (named volumes are not supported: give an \
                 absolute path, or ./{src} for a directory here)"
            )));
        }
        container_path(dst, WHAT, spec)?;
        let mut m = Mount::bind(src, dst);
        let (mut access, mut propagation) = (None, None);
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            let prop = match opt {
                "ro" | "rw" => {
                    if access.replace(opt).is_some() {
                        return Err(bad(format!("option {opt:?}: ro or rw given twice")));
                    }
                    m.read_only = opt == "ro";
                    continue;
                }
                "consistent" | "cached" | "delegated" => continue,
                "private" => (Propagation::Private, false),
                "rprivate" => (Propagation::Private, true),
                "slave" => (Propagation::Slave, false),
                "rslave" => (Propagation::Slave, true),
                "shared" => (Propagation::Shared, false),
                "rshared" => (Propagation::Shared, true),
                "z" | "Z" => {
                    return Err(bad(format!(
                        "option {opt:?}: SELinux relabeling is not supported; label the \
                         host path yourself (chcon) and leave {opt:?} out"
                    )))
                }
                _ => {
                    return Err(bad(format!(
                        "unknown volume option {opt:?} (known: ro, rw, private, rprivate, \
                         slave, rslave, shared, rshared)"
                    )))
                }
            };
            if propagation.replace(prop).is_some() {
                return Err(bad(format!("option {opt:?}: a second propagation mode")));
            }
        }
        if let Some((p, rec)) = propagation {
            m = m.propagation(p, rec);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sizes_follow_docker() {
        for (s, n) in [
            ("0", 0),
            ("1", 1),
            ("1b", 1),
            ("1k", 1024),
            ("1K", 1024),
            ("1kb", 1024),
            ("1KiB", 1024),
            ("64m", 64 << 20),
            ("64 MB", 64 << 20),
            ("2g", 2 << 30),
            ("1t", 1 << 40),
            ("1.5k", 1536),
            ("0.5m", 512 << 10),
        ] {
            assert_eq!(parse_size(s, "t").unwrap(), Bytes(n), "{s}");
        }
        for s in [
            "",
            "k",
            "-1",
            "1x",
            "1.2.3",
            ".5m",
            "5.m",
            "1kk",
            "1ib",
            "99999999999p",
        ] {
            assert!(parse_size(s, "t").is_err(), "{s}");
        }
    }

    #[test]
    fn tmpfs_options_are_parsed_never_part_of_the_path() {
        let m = Mount::parse_tmpfs("/run:size=1m").unwrap();
        assert_eq!(m.target(), Path::new("/run"));
        assert_eq!(m.size, Some(1 << 20));
        assert!(m.noexec && m.nosuid && m.nodev && !m.read_only);
        let m = Mount::parse_tmpfs("/x:exec,suid,dev,ro,mode=700,uid=1,gid=2,nr_inodes=1k,noatime")
            .unwrap();
        assert!(!m.noexec && !m.nosuid && !m.nodev && m.read_only);
        assert_eq!(m.mode, Some(0o700));
        assert_eq!(m.atime, Some(Atime::Noatime));
        assert_eq!(
            m.options,
            vec![
                ("uid".to_string(), Some("1".to_string())),
                ("gid".to_string(), Some("2".to_string())),
                ("nr_inodes".to_string(), Some("1024".to_string())),
            ]
        );
        let m = Mount::parse_tmpfs("/x:size=50%").unwrap();
        assert_eq!(m.options, vec![("size".into(), Some("50%".into()))]);
        let m = Mount::parse_tmpfs("/x").unwrap();
        assert_eq!(m.size, None);
        m.prepare().unwrap();
        for bad in [
            "/run:size=1q",
            "/run:bogus",
            "/run:size",
            "/run:mode=999",
            "/run:uid=root",
            "/run:size=0",
            "/run:size=0%",
            "/run:ro=1",
            "run:size=1m",
            "/run:size=1m:mode=1",
        ] {
            let e = Mount::parse_tmpfs(bad).unwrap_err().to_string();
            assert!(e.contains("--tmpfs"), "{bad}: {e}");
        }
        let e = Mount::parse_tmpfs("/run:size=1m,bogus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"bogus\""), "{e}");
    }

    #[test]
    fn volume_options_follow_docker() {
        assert_eq!(
            Mount::parse_volume("/a:/b").unwrap(),
            Mount::bind("/a", "/b")
        );
        assert_eq!(
            Mount::parse_volume("/a:/b:rw").unwrap(),
            Mount::bind("/a", "/b")
        );
        assert_eq!(
            Mount::parse_volume("./a:/b:ro,rslave").unwrap(),
            Mount::bind("./a", "/b")
                .read_only()
                .propagation(Propagation::Slave, true)
        );
        assert_eq!(
            Mount::parse_volume("/a:/b:cached").unwrap(),
            Mount::bind("/a", "/b")
        );
        for (bad, names) in [
            ("/a:/b:bogus", "\"bogus\""),
            ("/a:/b:ro,rw", "twice"),
            ("/a:/b:z", "SELinux"),
            ("/a:/b:private,shared", "propagation"),
            ("/a", "SRC:DST"),
            ("/a:/b:ro:x", "SRC:DST"),
            ("/a:b", "not absolute"),
            (":/b", "empty"),
            ("vol:/b", "named volumes"),
            // The root, however spelt (fuzz/specs found `/..` taken).
            ("/a:/", "container's root"),
            ("/a:/..", "container's root"),
            ("/a:/b/../.", "container's root"),
        ] {
            let e = Mount::parse_volume(bad).unwrap_err().to_string();
            assert!(e.contains(names), "{bad}: {e}");
        }
        assert_eq!(
            Mount::parse_volume("/a:/../b").unwrap(),
            Mount::bind("/a", "/../b")
        );
        for bad in ["/", "/..", "/tmp/.."] {
            let e = Mount::parse_tmpfs(bad).unwrap_err().to_string();
            assert!(e.contains("container's root"), "{bad}: {e}");
        }
    }
}
