//! A typed parser for `/proc/<pid>/mountinfo` (see `proc_pid_mountinfo(5)`).
//!
//! Each line describes one mount:
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)    (10)         (11)
//! ```
//!
//! The kernel escapes space, tab, newline and backslash in paths and names as `\ooo` octal;
//! paths come back decoded, as raw bytes (`OsString`), since they need not be UTF-8. Parsing
//! never panics: anything malformed is an [`Error::Parse`] naming the line.
//!
//! # Example
//! ```
//! use contain::mountinfo::{self, MountFlags, OptionalField};
//!
//! let line = r"36 35 98:0 /mnt1 /my\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
//! let m = mountinfo::parse_line(line)?;
//! assert_eq!(m.mount_point, std::path::Path::new("/my disk"));
//! assert!(m.mount_options.flags.contains(MountFlags::NOATIME));
//! assert_eq!(m.optional_fields, [OptionalField::Master(1)]);
//! assert_eq!(m.fs_type, "ext3");
//! # Ok::<(), contain::Error>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::{Error, Result};

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MountInfo {
    /// Unique id of the mount (may be reused after it is unmounted).
    pub mount_id: u32,
    /// Id of the parent mount (its own id for the root of the mount tree).
    pub parent_id: u32,
    /// Major device number of the filesystem (`st_dev`).
    pub major: u32,
    /// Minor device number of the filesystem (`st_dev`).
    pub minor: u32,
    /// The directory of the filesystem that forms the root of this mount (not `/` for a bind
    /// of a subdirectory). Not always a path: `nsfs` mounts show e.g. `net:[4026531840]`.
    pub root: PathBuf,
    /// Where the mount is, relative to the reading process's root.
    pub mount_point: PathBuf,
    /// Per-mount options (`ro`, `nosuid`, ...).
    pub mount_options: MountOptions,
    /// Propagation: peer group, master, unbindable. Empty for a private mount.
    pub optional_fields: Vec<OptionalField>,
    /// Filesystem type, `type` or `type.subtype` (e.g. `fuse.sshfs`).
    pub fs_type: OsString,
    /// Filesystem-specific source (a device, or a name like `tmpfs`). `None` when the kernel
    /// printed `none`, which it does both for a mount without a source and for the literal
    /// source name `none`.
    pub source: Option<OsString>,
    /// Per-superblock options exactly as the kernel printed them (still escaped); see
    /// [`MountInfo::super_options`].
    pub super_options: OsString,
}

bitflags::bitflags! {
    /// The per-mount flags the kernel lists in field 6.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MountFlags: u32 {
        /// `ro` (otherwise `rw`).
        const READ_ONLY = 1 << 0;
        /// `nosuid`.
        const NOSUID = 1 << 1;
        /// `nodev`.
        const NODEV = 1 << 2;
        /// `noexec`.
        const NOEXEC = 1 << 3;
        /// `noatime`.
        const NOATIME = 1 << 4;
        /// `nodiratime`.
        const NODIRATIME = 1 << 5;
        /// `relatime` (neither this nor `noatime`: strictatime).
        const RELATIME = 1 << 6;
        /// `nosymfollow`.
        const NOSYMFOLLOW = 1 << 7;
        /// `idmapped`.
        const IDMAPPED = 1 << 8;
    }
}

/// Per-mount options: the known flags, and the field as printed (unknown ones included).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MountOptions {
    /// The flags this parser knows.
    pub flags: MountFlags,
    /// The whole field, e.g. `rw,nosuid,relatime`.
    pub raw: String,
}

/// An optional field (field 7): the mount's propagation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OptionalField {
    /// `shared:N`: member of peer group N.
    Shared(u32),
    /// `master:N`: slave of peer group N.
    Master(u32),
    /// `propagate_from:N`: receives from peer group N (the closest dominant group visible).
    PropagateFrom(u32),
    /// `unbindable`.
    Unbindable,
    /// A tag this parser does not know, kept as printed.
    Other(String),
}

impl MountInfo {
    /// The mounts of the calling process's mount namespace, as seen from its root.
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `read` and `/proc/self/mountinfo` (`ENOENT` without `/proc`); those of
    /// [`parse`].
    pub fn read_self() -> Result<Vec<MountInfo>> {
        const PATH: &str = "/proc/self/mountinfo";
        let text = std::fs::read(PATH).map_err(|e| {
            let errno = crate::error::io_errno(&e);
            Error::sys_path("read", PATH, errno)
        })?;
        parse(text)
    }

    /// `true` if the mount is read-only (the per-mount flag; the superblock may differ).
    pub fn is_read_only(&self) -> bool {
        self.mount_options.flags.contains(MountFlags::READ_ONLY)
    }

    /// The peer group this mount is shared with, if it is shared.
    pub fn shared_peer_group(&self) -> Option<u32> {
        self.optional_fields.iter().find_map(|f| match f {
            OptionalField::Shared(n) => Some(*n),
            _ => None,
        })
    }

    /// The peer group this mount is a slave of, if it is a slave.
    pub fn master_peer_group(&self) -> Option<u32> {
        self.optional_fields.iter().find_map(|f| match f {
            OptionalField::Master(n) => Some(*n),
            _ => None,
        })
    }

    /// `true` if the mount is unbindable.
    pub fn is_unbindable(&self) -> bool {
        self.optional_fields.contains(&OptionalField::Unbindable)
    }

    /// The superblock options as `(key, value)` pairs, decoded (`size=65536k` gives
    /// `("size", Some("65536k"))`, `rw` gives `("rw", None)`).
    pub fn super_options(&self) -> impl Iterator<Item = (OsString, Option<OsString>)> + '_ {
        self.super_options
            .as_bytes()
            .split(|&b| b == b',')
            .filter(|o| !o.is_empty())
            .map(|opt| match opt.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    let (k, v) = (&opt[..eq], &opt[eq + 1..]);
                    (
                        OsString::from_vec(unescape(k)),
                        Some(OsString::from_vec(unescape(v))),
                    )
                }
                None => (OsString::from_vec(unescape(opt)), None),
            })
    }

    /// The value of superblock option `key` (`Some(None)` for a flag without a value).
    pub fn super_option(&self, key: &str) -> Option<Option<OsString>> {
        self.super_options()
            .find(|(k, _)| k.as_os_str() == OsStr::new(key))
            .map(|(_, v)| v)
    }
}

/// Parses a whole mountinfo file (lines separated by `\n`; a final newline is optional).
///
/// # Errors
///
/// [`Error::Parse`] naming the line number when a line has too few fields, no `-` separator, or a
/// number (id, `major:minor`, peer group) that does not parse.
pub fn parse(text: impl AsRef<[u8]>) -> Result<Vec<MountInfo>> {
    let text = text.as_ref();
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            parse_fields(line)
                .map_err(|reason| Error::parse(format!("mountinfo line {}", i + 1), reason))
        })
        .collect()
}

/// Parses one mountinfo line (without its newline).
///
/// # Errors
///
/// [`Error::Parse`] when the line has too few fields, no `-` separator, more than three fields
/// after it, or a number (id, `major:minor`, peer group) that does not parse.
pub fn parse_line(line: impl AsRef<[u8]>) -> Result<MountInfo> {
    parse_fields(line.as_ref()).map_err(|reason| Error::parse("mountinfo line", reason))
}

fn parse_fields(line: &[u8]) -> Result<MountInfo, String> {
    let mut fields = line.split(|&b| b == b' ');
    let mut next = |name: &str| {
        fields
            .next()
            .ok_or_else(|| format!("line ends before the {name} field"))
    };

    let mount_id = number(next("mount id")?, "mount id")?;
    let parent_id = number(next("parent id")?, "parent id")?;
    let dev = next("major:minor")?;
    let colon = dev
        .iter()
        .position(|&b| b == b':')
        .ok_or("major:minor has no ':'")?;
    let major = number(&dev[..colon], "major")?;
    let minor = number(&dev[colon + 1..], "minor")?;
    let root = PathBuf::from(OsString::from_vec(unescape(next("root")?)));
    let mount_point = PathBuf::from(OsString::from_vec(unescape(next("mount point")?)));
    let mount_options = mount_options(next("mount options")?)?;

    let mut optional_fields = Vec::new();
    loop {
        let f = next("separator '-'")?;
        if f == b"-" {
            break;
        }
        optional_fields.push(optional_field(f)?);
    }

    let fs_type = OsString::from_vec(unescape(next("filesystem type")?));
    let source = match next("source")? {
        b"none" => None,
        s => Some(OsString::from_vec(unescape(s))),
    };
    let super_options = OsString::from_vec(next("superblock options")?.to_vec());
    if fields.next().is_some() {
        return Err("more than three fields after '-'".into());
    }
    Ok(MountInfo {
        mount_id,
        parent_id,
        major,
        minor,
        root,
        mount_point,
        mount_options,
        optional_fields,
        fs_type,
        source,
        super_options,
    })
}

fn number(field: &[u8], name: &str) -> Result<u32, String> {
    // Digits only: `u32::from_str` would also take a sign.
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "{name} {:?} is not a number",
            String::from_utf8_lossy(field)
        ));
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "{name} {:?} is out of range",
                String::from_utf8_lossy(field)
            )
        })
}

fn mount_options(field: &[u8]) -> Result<MountOptions, String> {
    let raw = std::str::from_utf8(field).map_err(|_| "mount options are not UTF-8".to_string())?;
    let mut flags = MountFlags::empty();
    for opt in raw.split(',') {
        flags |= match opt {
            "ro" => MountFlags::READ_ONLY,
            "nosuid" => MountFlags::NOSUID,
            "nodev" => MountFlags::NODEV,
            "noexec" => MountFlags::NOEXEC,
            "noatime" => MountFlags::NOATIME,
            "nodiratime" => MountFlags::NODIRATIME,
            "relatime" => MountFlags::RELATIME,
            "nosymfollow" => MountFlags::NOSYMFOLLOW,
            "idmapped" => MountFlags::IDMAPPED,
            _ => MountFlags::empty(),
        };
    }
    Ok(MountOptions {
        flags,
        raw: raw.to_string(),
    })
}

fn optional_field(field: &[u8]) -> Result<OptionalField, String> {
    let text = std::str::from_utf8(field).map_err(|_| "optional field is not UTF-8".to_string())?;
    if text.is_empty() {
        return Err("empty optional field".into());
    }
    if text == "unbindable" {
        return Ok(OptionalField::Unbindable);
    }
    let Some((tag, value)) = text.split_once(':') else {
        return Ok(OptionalField::Other(text.to_string()));
    };
    let make: fn(u32) -> OptionalField = match tag {
        "shared" => OptionalField::Shared,
        "master" => OptionalField::Master,
        "propagate_from" => OptionalField::PropagateFrom,
        _ => return Ok(OptionalField::Other(text.to_string())),
    };
    Ok(make(number(value.as_bytes(), tag)?))
}

/// Decodes the kernel's `\ooo` octal escapes. A backslash not followed by three octal digits
/// (which the kernel never prints) is kept as it is rather than refused.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b == b'\\' {
            if let Some(&[d0, d1, d2]) = field.get(i + 1..i + 4) {
                let octal = |d: u8| (b'0'..=b'7').contains(&d).then(|| u32::from(d - b'0'));
                if let (Some(a), Some(b), Some(c)) = (octal(d0), octal(d1), octal(d2)) {
                    let value = a * 64 + b * 8 + c;
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Escapes as the kernel does for mountinfo paths (space, tab, newline, backslash as `\ooo`).
#[cfg(test)]
fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\\') {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    // Lines taken from /proc/self/mountinfo of the development VM (kernel 6.18).
    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334524k,nr_inodes=3083631,mode=755
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn parses_real_lines() {
        let all = parse(SAMPLE).unwrap();
        assert_eq!(all.len(), 8);
        let root = &all[4];
        assert_eq!(
            (root.mount_id, root.parent_id, root.major, root.minor),
            (27, 1, 254, 0)
        );
        assert_eq!(root.root, Path::new("/"));
        assert_eq!(root.mount_point, Path::new("/"));
        assert_eq!(root.mount_options.flags, MountFlags::RELATIME);
        assert_eq!(root.mount_options.raw, "rw,relatime");
        assert!(root.optional_fields.is_empty());
        assert_eq!(root.fs_type, "ext4");
        assert_eq!(root.source.as_deref(), Some(OsStr::new("/dev/vda")));
        assert_eq!(root.super_option("resuid"), Some(Some("65534".into())));
        assert_eq!(root.super_option("discard"), Some(None));
        assert_eq!(root.super_option("nope"), None);

        let devpts = &all[3];
        assert_eq!(devpts.fs_type, "devpts");
        assert_eq!(devpts.super_option("ptmxmode"), Some(Some("000".into())));
        assert_eq!(all[7].fs_type, "cgroup2");
        assert_eq!(all[7].mount_point, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn parses_optional_fields_and_flags() {
        let line = "36 35 98:0 /mnt1 /mnt2 ro,nosuid,nodev,noexec,noatime,nodiratime,nosymfollow,idmapped \
                    shared:7 master:1 propagate_from:2 unbindable future:9 - ext3 /dev/root rw,errors=continue";
        let m = parse_line(line).unwrap();
        assert!(m.is_read_only());
        assert_eq!(
            m.mount_options.flags,
            MountFlags::READ_ONLY
                | MountFlags::NOSUID
                | MountFlags::NODEV
                | MountFlags::NOEXEC
                | MountFlags::NOATIME
                | MountFlags::NODIRATIME
                | MountFlags::NOSYMFOLLOW
                | MountFlags::IDMAPPED
        );
        assert_eq!(
            m.optional_fields,
            [
                OptionalField::Shared(7),
                OptionalField::Master(1),
                OptionalField::PropagateFrom(2),
                OptionalField::Unbindable,
                OptionalField::Other("future:9".into()),
            ]
        );
        assert_eq!(m.shared_peer_group(), Some(7));
        assert_eq!(m.master_peer_group(), Some(1));
        assert!(m.is_unbindable());
    }

    #[test]
    fn decodes_escapes() {
        let line =
            r"50 27 0:40 /a\134b /tmp/with\040space\011tab\012nl rw - tmpfs my\040src rw,x=a\054b";
        let m = parse_line(line).unwrap();
        assert_eq!(m.root, Path::new("/a\\b"));
        assert_eq!(m.mount_point, Path::new("/tmp/with space\ttab\nnl"));
        assert_eq!(m.source.as_deref(), Some(OsStr::new("my src")));
        assert_eq!(m.super_option("x"), Some(Some("a,b".into())));
        // Non-UTF-8 bytes survive.
        let m = parse_line(b"1 1 0:1 / /\xff\\377 rw - t s rw".as_slice()).unwrap();
        assert_eq!(m.mount_point.as_os_str().as_bytes(), b"/\xff\xff");
    }

    #[test]
    fn none_and_empty_sources() {
        assert_eq!(
            parse_line("1 1 0:1 / /x rw - tmpfs none rw")
                .unwrap()
                .source,
            None
        );
        assert_eq!(
            parse_line("1 1 0:1 / /x rw - tmpfs  rw").unwrap().source,
            Some(OsString::new())
        );
    }

    #[test]
    fn lone_backslashes_are_kept() {
        assert_eq!(unescape(br"a\b"), br"a\b");
        assert_eq!(unescape(br"a\12"), br"a\12");
        assert_eq!(unescape(br"\400"), br"\400");
        assert_eq!(unescape(br"\\040"), b"\\ ");
        assert_eq!(unescape(br"\1x1"), br"\1x1");
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "",
            "1",
            "1 2",
            "1 2 3 / / rw - a b c",
            "1 2 3: / / rw - a b c",
            "x 2 0:1 / / rw - a b c",
            "+1 2 0:1 / / rw - a b c",
            "1 2 0:1 / / rw a b c",
            "1 2 0:1 / / rw - a b",
            "1 2 0:1 / / rw - a b c d",
            "1 2 0:1 / / rw shared: - a b c",
            "1 2 0:1 / / rw shared:x - a b c",
            "1 2 0:1 / / rw  - a b c",
            "99999999999 2 0:1 / / rw - a b c",
        ] {
            let err = parse_line(bad).expect_err(bad);
            assert!(matches!(err, Error::Parse { .. }), "{bad}: {err}");
        }
        let err = parse("1 1 0:1 / / rw - a b c\n1 2 3\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn empty_file_is_empty() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n").unwrap().is_empty());
    }

    #[test]
    fn reads_this_process() {
        let all = MountInfo::read_self().unwrap();
        assert!(
            all.iter().any(|m| m.mount_point == Path::new("/")),
            "{all:?}"
        );
        let ids: std::collections::HashSet<_> = all.iter().map(|m| m.mount_id).collect();
        assert_eq!(ids.len(), all.len(), "mount ids are unique");
    }

    fn format_line(m: &MountInfo) -> Vec<u8> {
        let mut out =
            format!("{} {} {}:{} ", m.mount_id, m.parent_id, m.major, m.minor).into_bytes();
        out.extend(escape(m.root.as_os_str().as_bytes()));
        out.push(b' ');
        out.extend(escape(m.mount_point.as_os_str().as_bytes()));
        out.push(b' ');
        out.extend(m.mount_options.raw.as_bytes());
        for f in &m.optional_fields {
            out.push(b' ');
            out.extend(
                match f {
                    OptionalField::Shared(n) => format!("shared:{n}"),
                    OptionalField::Master(n) => format!("master:{n}"),
                    OptionalField::PropagateFrom(n) => format!("propagate_from:{n}"),
                    OptionalField::Unbindable => "unbindable".into(),
                    OptionalField::Other(s) => s.clone(),
                }
                .into_bytes(),
            );
        }
        out.extend(b" - ");
        out.extend(escape(m.fs_type.as_bytes()));
        out.push(b' ');
        out.extend(escape(
            m.source
                .as_ref()
                .map_or(b"none".as_slice(), |s| s.as_bytes()),
        ));
        out.push(b' ');
        out.extend(m.super_options.as_bytes());
        out
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..40)
    }

    prop_compose! {
        fn mount_info()(
            ids in any::<(u32, u32, u32, u32)>(),
            root in bytes(),
            mount_point in bytes(),
            ro in any::<bool>(),
            shared in proptest::option::of(any::<u32>()),
            master in proptest::option::of(any::<u32>()),
            unbindable in any::<bool>(),
            fs_type in "[a-z0-9.]{1,12}",
            source in proptest::option::of(bytes().prop_filter("not none", |s| s != b"none")),
            super_options in "[a-z0-9=,]{1,30}",
        ) -> MountInfo {
            let mut optional_fields = Vec::new();
            optional_fields.extend(shared.map(OptionalField::Shared));
            optional_fields.extend(master.map(OptionalField::Master));
            if unbindable { optional_fields.push(OptionalField::Unbindable); }
            let raw = if ro { "ro,nosuid" } else { "rw,relatime" };
            MountInfo {
                mount_id: ids.0, parent_id: ids.1, major: ids.2, minor: ids.3,
                root: PathBuf::from(OsString::from_vec(root)),
                mount_point: PathBuf::from(OsString::from_vec(mount_point)),
                mount_options: mount_options(raw.as_bytes()).unwrap(),
                optional_fields,
                fs_type: fs_type.into(),
                source: source.map(OsString::from_vec),
                super_options: super_options.into(),
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_line(&line);
            let _ = parse(&line);
        }

        #[test]
        fn never_panics_on_near_valid_text(line in r"[0-9]{1,3} [0-9]{1,3} [0-9:]{1,5} [/a\\0-7 ]{0,10} [a-z,]{0,10}( [a-z:0-9_]{0,12}){0,3}( -)?( [a-z\\0-9]{0,5}){0,4}") {
            let _ = parse_line(&line);
            let _ = parse(format!("{line}\n{line}"));
        }

        #[test]
        fn escape_round_trips(raw in proptest::collection::vec(any::<u8>(), 0..100)) {
            let escaped = escape(&raw);
            prop_assert!(!escaped.iter().any(|b| matches!(b, b' ' | b'\t' | b'\n')));
            prop_assert_eq!(unescape(&escaped), raw);
        }

        #[test]
        fn formatted_lines_parse_back(m in mount_info()) {
            let line = format_line(&m);
            prop_assert_eq!(parse_line(&line).unwrap(), m);
        }
    }
}
