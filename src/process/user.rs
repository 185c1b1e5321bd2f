//! Users and groups of the container's image: a `/etc/passwd` and `/etc/group` parser that
//! never panics (long lines, missing fields, non-UTF-8 bytes: a bad line is skipped, as glibc
//! does), the [`User`] spec of docker's `--user NAME[:GROUP]`, and its resolution against the
//! image's files.
//!
//! Resolution follows runc's (and so docker's) user lookup:
//! - `NAME` is looked up in passwd (an unknown name is an error: "unable to find user NAME:
//!   no matching entries in passwd file"); a numeric `UID` is taken as it is, and when passwd
//!   has an entry for it that entry's primary group, home and name are used too.
//! - the primary gid is the passwd entry's (0 without one); `:GROUP` replaces it (a name is
//!   looked up in group, a number is taken as it is).
//! - the supplementary groups are the groups of `/etc/group` that list the user's name, only
//!   when no `:GROUP` was given (an explicit group means exactly that group).
//! - `HOME` is the passwd entry's home directory, `/` without an entry.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The most of a passwd or group file that is read (a bigger file is cut there).
pub(crate) const MAX_FILE: u64 = 16 << 20;

/// One line of `/etc/passwd`: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswdEntry {
    pub name: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub home: Vec<u8>,
}

/// One line of `/etc/group`: `name:password:gid:member,member,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupEntry {
    pub name: Vec<u8>,
    pub gid: u32,
    pub members: Vec<Vec<u8>>,
}

/// A decimal id as the files hold it: digits only, at most `u32::MAX - 1` (`-1` is "no id").
fn parse_id(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 10 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = field.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    u32::try_from(n).ok().filter(|&n| n != u32::MAX)
}

/// The lines of a file, without comments and blank lines (`\r` of DOS files dropped).
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii();
        (!trimmed.is_empty() && !trimmed.starts_with(b"#")).then_some(line)
    })
}

/// Parses a passwd file; lines that do not have the seven fields with numeric ids are skipped.
pub(crate) fn parse_passwd(bytes: &[u8]) -> Vec<PasswdEntry> {
    lines(bytes)
        .filter_map(|line| {
            let f: Vec<&[u8]> = line.splitn(7, |&b| b == b':').collect();
            // name:password:uid:gid:gecos:home[:shell]; shadow-utils tolerates a missing shell.
            if f.len() < 6 || f[0].is_empty() {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_vec(),
                uid: parse_id(f[2])?,
                gid: parse_id(f[3])?,
                home: f[5].to_vec(),
            })
        })
        .collect()
}

/// Parses a group file; lines without a name and a numeric gid are skipped.
pub(crate) fn parse_group(bytes: &[u8]) -> Vec<GroupEntry> {
    lines(bytes)
        .filter_map(|line| {
            let f: Vec<&[u8]> = line.splitn(4, |&b| b == b':').collect();
            if f.len() < 3 || f[0].is_empty() {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(|&b| b == b',')
                        .map(<[u8]>::trim_ascii)
                        .filter(|m| !m.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect()
                })
                .unwrap_or_default();
            Some(GroupEntry {
                name: f[0].to_vec(),
                gid: parse_id(f[2])?,
                members,
            })
        })
        .collect()
}

/// A user or a group as given: a number, or a name to look up in the image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id, used as it is.
    Number(u32),
    /// A name, looked up in the image's `/etc/passwd` or `/etc/group`.
    Name(String),
}

impl Id {
    fn parse(s: &str) -> Id {
        match parse_id(s.as_bytes()) {
            Some(n) => Id::Number(n),
            None => Id::Name(s.to_owned()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Name(s) => f.write_str(s),
        }
    }
}

/// Who the container runs as, as docker's `--user` gives it: `USER[:GROUP]`, each a name or a
/// number (`1000`, `1000:100`, `www-data`, `www-data:100`, `1000:staff`).
///
/// Names are looked up in the image's `/etc/passwd` and `/etc/group` (see
/// [`Container::user`](crate::process::Container::user) for how the ids, the supplementary
/// groups and `HOME` follow from it).
///
/// ```
/// use contain::process::{Id, User};
/// let u: User = "www-data:100".parse()?;
/// assert_eq!(u.user(), &Id::Name("www-data".into()));
/// assert_eq!(u.group(), Some(&Id::Number(100)));
/// # Ok::<(), contain::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    user: Id,
    group: Option<Id>,
}

impl User {
    /// A user with no explicit group (its primary group comes from passwd).
    pub fn new(user: Id) -> User {
        User { user, group: None }
    }

    /// The same user with an explicit group (no supplementary groups then, as docker).
    #[must_use]
    pub fn with_group(mut self, group: Id) -> User {
        self.group = Some(group);
        self
    }

    /// The user part.
    pub fn user(&self) -> &Id {
        &self.user
    }

    /// The group part, if given.
    pub fn group(&self) -> Option<&Id> {
        self.group.as_ref()
    }
}

impl FromStr for User {
    type Err = Error;

    /// `USER[:GROUP]`; an empty part, a third field or a NUL byte is refused.
    fn from_str(s: &str) -> Result<User> {
        let bad = |why: &str| Error::config("user", format!("{s:?}: {why} (want USER[:GROUP])"));
        if s.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        if user.is_empty() || group.is_some_and(str::is_empty) {
            return Err(bad("empty user or group"));
        }
        if group.is_some_and(|g| g.contains(':')) {
            return Err(bad("more than two fields"));
        }
        // A number that is no valid id is refused, never looked up as a name: an image's
        // passwd could map the name "4294967296" to uid 0 (CVE-2026-46680).
        for part in std::iter::once(user).chain(group) {
            if part.bytes().all(|b| b.is_ascii_digit()) && parse_id(part.as_bytes()).is_none() {
                return Err(bad("a numeric id must be below 4294967295"));
            }
        }
        Ok(User {
            user: Id::parse(user),
            group: group.map(Id::parse),
        })
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

/// What a [`User`] comes to in an image (see [`User::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups, ascending (empty with an explicit group).
    pub groups: Vec<u32>,
    /// The passwd entry's home directory, `/` without an entry (what `HOME` becomes).
    pub home: Vec<u8>,
}

impl User {
    /// Resolves this user against the contents of a passwd and a group file (`None`: the
    /// file is missing), as docker and runc do (see the module rules in
    /// [`Container::user`](crate::process::Container::user)). Never panics, whatever the bytes.
    ///
    /// ```
    /// use contain::process::User;
    /// let passwd = b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    /// let group = b"audio:x:29:alice\n";
    /// let r = "alice".parse::<User>()?.resolve(Some(passwd), Some(group))?;
    /// assert_eq!((r.uid, r.gid, r.groups, r.home), (1000, 1000, vec![29], b"/home/alice".to_vec()));
    /// # Ok::<(), contain::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when a name has no entry ("unable to find user NAME: no matching
    /// entries in passwd file", as docker says; the same for a group).
    pub fn resolve(&self, passwd: Option<&[u8]>, group: Option<&[u8]>) -> Result<ResolvedUser> {
        resolve(self, passwd, group)
    }
}

/// Resolves `user` against the image's passwd and group files (`None`: the file is missing).
pub(crate) fn resolve(
    user: &User,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<ResolvedUser> {
    let entries = passwd.map(parse_passwd).unwrap_or_default();
    let (uid, entry) = match &user.user {
        Id::Number(uid) => (*uid, entries.iter().find(|e| e.uid == *uid)),
        Id::Name(name) => {
            let e = entries
                .iter()
                .find(|e| e.name == name.as_bytes())
                .ok_or_else(|| {
                    Error::config(
                        "user",
                        format!("unable to find user {name}: no matching entries in passwd file"),
                    )
                })?;
            (e.uid, Some(e))
        }
    };
    // Parsed only where a name or the supplementary groups need it.
    let groups_file = || group.map(parse_group).unwrap_or_default();
    let (gid, groups) = match &user.group {
        Some(Id::Number(gid)) => (*gid, Vec::new()),
        Some(Id::Name(name)) => {
            let g = groups_file()
                .into_iter()
                .find(|g| g.name == name.as_bytes())
                .ok_or_else(|| {
                    Error::config(
                        "user",
                        format!("unable to find group {name}: no matching entries in group file"),
                    )
                })?;
            (g.gid, Vec::new())
        }
        None => {
            let gid = entry.map_or(0, |e| e.gid);
            let mut groups: Vec<u32> = match entry {
                Some(e) => groups_file()
                    .iter()
                    .filter(|g| g.members.contains(&e.name))
                    .map(|g| g.gid)
                    .collect(),
                None => Vec::new(),
            };
            groups.sort_unstable();
            groups.dedup();
            (gid, groups)
        }
    };
    Ok(ResolvedUser {
        uid,
        gid,
        groups,
        home: home_of(entry),
    })
}

fn home_of(entry: Option<&PasswdEntry>) -> Vec<u8> {
    match entry {
        Some(e) if !e.home.is_empty() => e.home.clone(),
        _ => b"/".to_vec(),
    }
}

/// `HOME` for `uid` as runc sets it: the passwd entry's home, `/` without one.
pub(crate) fn home_for(uid: u32, passwd: Option<&[u8]>) -> Vec<u8> {
    let entries = passwd.map(parse_passwd).unwrap_or_default();
    home_of(entries.iter().find(|e| e.uid == uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        # a comment\n\
        \n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
        alice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\r\n\
        nohome:x:1001:1001:::/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &[u8] = b"root:x:0:\n\
        audio:x:29:alice,bob\n\
        staff:x:50:\n\
        video:x:44: alice \n\
        alice:x:1000:\n\
        users:x:100:bob\n";

    fn resolve_str(spec: &str) -> Result<ResolvedUser> {
        resolve(&spec.parse()?, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn numbers_too_big_for_an_id_are_refused_not_looked_up_as_names() {
        // CVE-2026-46680: passwd maps the "name" 4294967296 to uid 0.
        let passwd = b"4294967296:x:0:0::/root:/bin/sh\n";
        for spec in ["4294967296", "4294967295", "99999999999", "0:4294967296"] {
            let err = spec.parse::<User>().unwrap_err();
            assert!(err.to_string().contains("numeric id"), "{spec}: {err}");
        }
        let ok: User = "4294967294:0".parse().unwrap();
        let r = resolve(&ok, Some(passwd), None).unwrap();
        assert_eq!((r.uid, r.gid), (4294967294, 0));
    }

    #[test]
    fn names_resolve_with_primary_and_supplementary_groups() {
        let r = resolve_str("alice").unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        assert_eq!(r.groups, vec![29, 44]);
        assert_eq!(r.home, b"/home/alice");
        // A numeric uid with an entry gets that entry's group and groups, as runc.
        assert_eq!(resolve_str("1000").unwrap(), r);
    }

    #[test]
    fn an_explicit_group_means_exactly_that_group() {
        let r = resolve_str("alice:staff").unwrap();
        assert_eq!((r.uid, r.gid, r.groups.len()), (1000, 50, 0));
        let r = resolve_str("alice:7").unwrap();
        assert_eq!((r.uid, r.gid), (1000, 7));
        let r = resolve_str("33:audio").unwrap();
        assert_eq!(
            (r.uid, r.gid, r.home.as_slice()),
            (33, 29, &b"/var/www"[..])
        );
        let r = resolve_str("5000:5000").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_slice()), (5000, 5000, &b"/"[..]));
    }

    #[test]
    fn unknown_numbers_run_unknown_names_fail_as_docker_says() {
        let r = resolve_str("4242").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_slice()), (4242, 0, &b"/"[..]));
        let e = resolve_str("mallory").unwrap_err().to_string();
        assert!(
            e.contains("unable to find user mallory: no matching entries in passwd file"),
            "{e}"
        );
        let e = resolve_str("alice:nogroup").unwrap_err().to_string();
        assert!(
            e.contains("unable to find group nogroup: no matching entries in group file"),
            "{e}"
        );
        // Without the files at all: numbers work, names do not.
        let user: User = "7:8".parse().unwrap();
        let r = resolve(&user, None, None).unwrap();
        assert_eq!((r.uid, r.gid), (7, 8));
        assert!(resolve(&"root".parse().unwrap(), None, None).is_err());
    }

    #[test]
    fn home_is_from_passwd_or_slash() {
        assert_eq!(home_for(0, Some(PASSWD)), b"/root");
        assert_eq!(home_for(1001, Some(PASSWD)), b"/");
        assert_eq!(home_for(12345, Some(PASSWD)), b"/");
        assert_eq!(home_for(0, None), b"/");
    }

    #[test]
    fn specs_parse_and_print() {
        for s in ["0", "root", "1000:100", "www-data:staff", "1:x"] {
            assert_eq!(s.parse::<User>().unwrap().to_string(), s);
        }
        for s in ["", ":", "a:", ":b", "a:b:c", "a\0b"] {
            assert!(s.parse::<User>().is_err(), "{s:?}");
        }
        // Too big for an id: refused, never taken as a name (CVE-2026-46680).
        assert!("4294967295".parse::<User>().is_err());
    }

    #[test]
    fn bad_lines_are_skipped_never_panic() {
        let mut nasty = Vec::new();
        nasty.extend_from_slice(b"short:x:1\n");
        nasty.extend_from_slice(b":x:5:5::/:\n");
        nasty.extend_from_slice(b"neg:x:-1:0::/:/bin/sh\n");
        nasty.extend_from_slice(b"big:x:99999999999:0::/:/bin/sh\n");
        nasty.extend_from_slice(b"\xff\xfe:x:7:7::/\xff:/bin/sh\n");
        nasty.extend(std::iter::repeat_n(b'a', 1 << 20));
        nasty.extend_from_slice(b":x:8:8::/:/bin/sh\n:::::::::::::\n\n\n");
        let p = parse_passwd(&nasty);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].name, b"\xff\xfe");
        assert_eq!(p[0].home, b"/\xff");
        assert_eq!(p[1].uid, 8);
        let g = parse_group(b"g\n:x:1:\nok:x:2\nx:y:z:a\n\xff:x:3:\xfe,,\n");
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(g[1].members, vec![b"\xfe".to_vec()]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic fuzz: every byte string made of the separators and a few
        // characters, up to length 6, and pseudo-random longer ones.
        let alphabet = b":\n,0a\xff#";
        let mut buf = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..4000usize {
            buf.clear();
            for _ in 0..(len % 97) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                buf.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse_passwd(&buf);
            let _ = parse_group(&buf);
            let _ = resolve(&User::new(Id::Number(0)), Some(&buf), Some(&buf));
        }
    }
}
