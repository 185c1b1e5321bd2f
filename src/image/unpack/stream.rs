//! A tar stream read one entry at a time, with bounded metadata: headers are parsed by the
//! `tar` crate ([`tar::Header`], [`tar::GnuSparseHeader`]); the stream itself (extension
//! headers, PAX records, sizes, padding, the end) is walked here so that nothing a header
//! claims is allocated before it is checked against a cap, and so that every entry is
//! exactly what GNU tar and Go's `archive/tar` see (the PAX `size` always wins, RUSTSEC-
//! 2026-0068).
//!
//! PAX records are parsed here, not with `tar::PaxExtensions`: that splits the body on
//! newlines, so a binary `SCHILY.xattr.security.capability` value holding a `0x0a` byte (a
//! capability set with bits 1 and 3, say) would not parse. Records are length-prefixed
//! (POSIX `pax` "extended header"), which is what this parser follows.

use std::io::{self, Read};

use tar::{EntryType, GnuExtSparseHeader, Header};

/// Bytes of one GNU long name / long link body or one PAX header body accepted: real ones
/// are a few hundred bytes (`PATH_MAX` is 4096; a few xattrs); a hostile one may claim
/// gigabytes from a tiny compressed stream.
pub(super) const METADATA_CAP: u64 = 1 << 20;

/// Data regions accepted in one GNU sparse map (a 512-byte extension block holds 21).
const SPARSE_REGIONS_CAP: usize = 1 << 16;

const BLOCK: usize = 512;

/// Why the stream could not be read: the caller turns it into its error type.
#[derive(Debug)]
pub(super) enum StreamError {
    /// Reading the underlying stream failed.
    Io(io::Error),
    /// The tar is malformed; the entry's name if it is known.
    Malformed(Option<Vec<u8>>, String),
    /// A valid tar feature this reader does not handle.
    Unsupported(Option<Vec<u8>>, String),
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

type Result<T> = std::result::Result<T, StreamError>;

fn malformed<T>(name: Option<&[u8]>, why: impl Into<String>) -> Result<T> {
    Err(StreamError::Malformed(name.map(<[u8]>::to_vec), why.into()))
}

/// A time stamp: seconds since the epoch and nanoseconds (PAX times are decimal fractions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A regular file (also `7`, contiguous); `sparse` entries have a map.
    File,
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
}

/// One entry, its metadata merged from the GNU long name/link and PAX headers before it.
#[derive(Debug)]
pub(super) struct Entry {
    /// The name as the tar has it (PAX `path`, else GNU long name, else ustar prefix/name).
    pub name: Vec<u8>,
    /// The link target (PAX `linkpath`, else GNU long link, else the header's).
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Permission bits with setuid, setgid, sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Time,
    /// PAX `atime` when there is one.
    pub atime: Option<Time>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// `SCHILY.xattr.NAME` records, in order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The file's size (for a sparse file the size with its holes).
    pub size: u64,
    /// GNU sparse data regions (offset, length), ascending; `None` for a plain file.
    pub sparse: Option<Vec<(u64, u64)>>,
}

/// PAX records of one `x` header.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<Time>,
    atime: Option<Time>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// `GNU.sparse.*` records: a PAX-format sparse file.
    gnu_sparse: bool,
}

/// The reader: [`Stream::next_entry`], then the entry's data through [`Stream::read_data`]
/// (what is not read is skipped by the next call).
pub(super) struct Stream<'r> {
    inner: &'r mut dyn Read,
    /// Data bytes of the current entry not read yet.
    remaining: u64,
    /// Padding after them.
    pad: u64,
    /// The underlying stream ended (in the padding of the last entry, or at a block edge).
    eof: bool,
    /// Bytes consumed, for messages.
    pos: u64,
}

impl<'r> Stream<'r> {
    pub(super) fn new(inner: &'r mut dyn Read) -> Stream<'r> {
        Stream {
            inner,
            remaining: 0,
            pad: 0,
            eof: false,
            pos: 0,
        }
    }

    /// Reads as much of `buf` as the stream has: the count (short only at EOF).
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Skips `n` bytes; `Ok(false)` when the stream ended first.
    fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.fill(&mut buf[..want])?;
            n -= got as u64;
            if got < want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Skips what is left of the current entry. A stream that ends in the padding after the
    /// last entry's data is accepted (umoci 0.4.7 `insert` layers end that way).
    fn finish_entry(&mut self, name: Option<&[u8]>) -> Result<()> {
        if self.remaining > 0 {
            let n = self.remaining;
            self.remaining = 0;
            if !self.skip(n)? {
                return malformed(name, "the stream ends inside the entry's data");
            }
        }
        let pad = std::mem::take(&mut self.pad);
        if pad > 0 && !self.eof {
            self.skip(pad)?;
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes of the current entry's data; 0 when it is all read.
    /// A stream that ends before the data does is an error.
    pub(super) fn read_data(&mut self, buf: &mut [u8], name: &[u8]) -> Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let got = self.fill(&mut buf[..want])?;
        self.remaining -= got as u64;
        if got < want {
            return malformed(Some(name), "the stream ends inside the entry's data");
        }
        Ok(got)
    }

    /// Reads a whole header block; `None` at the end of the stream (also when it ends
    /// without the two zero blocks: such tars exist, e.g. umoci 0.4.7's). A block cut short
    /// by the end of the stream is malformed.
    fn header(&mut self) -> Result<Option<Header>> {
        let mut h = Header::new_old();
        let got = self.fill(h.as_mut_bytes())?;
        if got == 0 {
            return Ok(None);
        }
        if got < BLOCK {
            return malformed(None, format!("a header cut short at byte {}", self.pos));
        }
        Ok(Some(h))
    }

    /// Reads a metadata body (long name, long link, PAX records) of `size` bytes, at most
    /// [`METADATA_CAP`].
    fn metadata_body(&mut self, size: u64, what: &str) -> Result<Vec<u8>> {
        if size > METADATA_CAP {
            return malformed(
                None,
                format!(
                    "a {what} header of {size} bytes at byte {} (at most {METADATA_CAP} \
                     accepted)",
                    self.pos
                ),
            );
        }
        let mut body = vec![0u8; size as usize];
        if self.fill(&mut body)? < body.len() {
            return malformed(None, format!("the stream ends inside a {what} header"));
        }
        let pad = padding(size);
        if !self.skip(pad)? && pad > 0 {
            return malformed(None, format!("the stream ends after a {what} header"));
        }
        Ok(body)
    }

    /// Drains the stream to its end (after the end-of-archive blocks: whatever follows is
    /// part of the blob and of its digest).
    pub(super) fn drain(&mut self) -> Result<()> {
        self.finish_entry(None)?;
        let mut buf = [0u8; 8192];
        while !self.eof {
            self.fill(&mut buf)?;
        }
        Ok(())
    }

    /// The next entry, with its metadata headers folded in; `None` at the end of the
    /// archive (the first zero block, or the end of the stream at a header boundary).
    /// Global PAX headers (`g`) are skipped. Skips what the previous entry left unread.
    pub(super) fn next_entry(&mut self) -> Result<Option<Entry>> {
        self.finish_entry(None)?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Pax> = None;
        loop {
            let Some(h) = self.header()? else {
                if long_name.is_some() || long_link.is_some() || pax.is_some() {
                    return malformed(None, "the stream ends after an extension header");
                }
                return Ok(None);
            };
            if h.as_bytes().iter().all(|b| *b == 0) {
                if long_name.is_some() || long_link.is_some() || pax.is_some() {
                    return malformed(None, "an extension header describes no entry");
                }
                return Ok(None);
            }
            check_sum(&h, self.pos)?;
            let ty = h.entry_type();
            let header_size = h
                .entry_size()
                .or_else(|e| malformed(None, format!("header size: {e}")))?;
            match ty {
                EntryType::GNULongName | EntryType::GNULongLink => {
                    let long = ty == EntryType::GNULongName;
                    let slot = if long { &mut long_name } else { &mut long_link };
                    if slot.is_some() {
                        return malformed(None, "two GNU long name headers for one entry");
                    }
                    let mut body = self.metadata_body(header_size, "GNU long name")?;
                    // The body is NUL-terminated (and may be padded with more NULs).
                    while body.last() == Some(&0) {
                        body.pop();
                    }
                    *slot = Some(body);
                    continue;
                }
                EntryType::XHeader => {
                    if pax.is_some() {
                        return malformed(None, "two PAX headers for one entry");
                    }
                    let body = self.metadata_body(header_size, "PAX")?;
                    pax = Some(parse_pax(&body)?);
                    continue;
                }
                EntryType::XGlobalHeader => {
                    // Global defaults (comments, mostly); nothing we apply. Skipped without
                    // reading it into memory.
                    let total = header_size.saturating_add(padding(header_size));
                    if !self.skip(total)? && header_size > 0 {
                        return malformed(None, "the stream ends inside a PAX global header");
                    }
                    continue;
                }
                _ => {}
            }
            let pax = pax.unwrap_or_default();
            // GNU tar takes the PAX record over the GNU long name, Go's archive/tar (and so
            // containerd and most scanners) the long name: an entry with both, different,
            // is a different file to each.
            let differ = |what: &str, p: &[u8]| {
                malformed(
                    Some(p),
                    format!(
                        "the PAX {what} and the GNU long {what} differ (tar readers disagree \
                         on which one wins)"
                    ),
                )
            };
            if let (Some(p), Some(l)) = (&pax.path, &long_name) {
                if p != l {
                    return differ("path", p);
                }
            }
            if let (Some(p), Some(l)) = (&pax.linkpath, &long_link) {
                if p != l {
                    return differ("linkpath", p);
                }
            }
            let name = match (pax.path, long_name) {
                (Some(p), _) => p,
                (None, Some(l)) => l,
                (None, None) => h.path_bytes().into_owned(),
            };
            let link = match (pax.linkpath, long_link) {
                (Some(p), _) => p,
                (None, Some(l)) => l,
                (None, None) => h
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default(),
            };
            let n = Some(name.as_slice());
            let kind = match ty {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
                EntryType::Directory => Kind::Dir,
                EntryType::Symlink => Kind::Symlink,
                EntryType::Link => Kind::HardLink,
                EntryType::Char => Kind::Char,
                EntryType::Block => Kind::Block,
                EntryType::Fifo => Kind::Fifo,
                other => {
                    return Err(StreamError::Unsupported(
                        Some(name),
                        format!("tar entry type {:?}", other.as_byte() as char),
                    ))
                }
            };
            // A field of only NULs or spaces reads as 0, as in Go's archive/tar.
            let old = h.as_old();
            let field = |raw: &[u8], r: io::Result<u64>, what: &str| {
                if raw.iter().all(|b| *b == 0 || *b == b' ') {
                    return Ok(0);
                }
                r.or_else(|e| malformed(n, format!("header {what}: {e}")))
            };
            let mode = field(&old.mode, h.mode().map(u64::from), "mode")? as u32 & 0o7777;
            let uid = match pax.uid {
                Some(u) => u,
                None => field(&old.uid, h.uid(), "uid")?,
            };
            let gid = match pax.gid {
                Some(g) => g,
                None => field(&old.gid, h.gid(), "gid")?,
            };
            let mtime = match pax.mtime {
                Some(t) => t,
                None => {
                    let s = field(&old.mtime, h.mtime(), "mtime")?;
                    Time {
                        sec: i64::try_from(s).unwrap_or(i64::MAX),
                        nsec: 0,
                    }
                }
            };
            let (dev_major, dev_minor) = if matches!(kind, Kind::Char | Kind::Block) {
                let maj = h.device_major().or_else(|e| malformed(n, format!("{e}")))?;
                let min = h.device_minor().or_else(|e| malformed(n, format!("{e}")))?;
                (maj.unwrap_or(0), min.unwrap_or(0))
            } else {
                (0, 0)
            };
            if pax.gnu_sparse {
                // PAX (0.x / 1.0) sparse files keep their map in the
                // data, which would otherwise be written into the file.
                return Err(StreamError::Unsupported(
                    Some(name),
                    "a PAX-format sparse file (GNU.sparse.*; GNU tar --format=posix -S): only \
                     the GNU format (type 'S') is read"
                        .into(),
                ));
            }
            // The stored size: the PAX `size` record wins over the header (as in GNU tar and
            // Go), also when the header says 0.
            let stored = pax.size.unwrap_or(header_size);
            // Hard links, directories, devices, FIFOs and symlinks carry no data in our
            // sense, but whatever size the header gives is in the stream and skipped.
            let (size, sparse) = if ty == EntryType::GNUSparse {
                let (real, map) = self.sparse_map(&h, stored, &name)?;
                (real, Some(map))
            } else {
                (stored, None)
            };
            self.remaining = stored;
            self.pad = padding(stored);
            return Ok(Some(Entry {
                name,
                link,
                kind,
                mode,
                uid,
                gid,
                mtime,
                atime: pax.atime,
                dev_major,
                dev_minor,
                xattrs: pax.xattrs,
                size,
                sparse,
            }));
        }
    }

    /// The old-GNU sparse map of `h` (and its extension blocks): the file's real size and
    /// its data regions, checked to be ascending, inside the file and to add up to
    /// `stored`, the bytes in the stream.
    fn sparse_map(
        &mut self,
        h: &Header,
        stored: u64,
        name: &[u8],
    ) -> Result<(u64, Vec<(u64, u64)>)> {
        let n = Some(name);
        let Some(gnu) = h.as_gnu() else {
            return malformed(n, "a sparse entry without a GNU header");
        };
        let real = gnu
            .real_size()
            .or_else(|e| malformed(n, format!("sparse real size: {e}")))?;
        let mut map: Vec<(u64, u64)> = Vec::new();
        let mut end = 0u64;
        let mut sum = 0u64;
        let mut add = |s: &tar::GnuSparseHeader, map: &mut Vec<(u64, u64)>| -> Result<()> {
            if s.is_empty() {
                return Ok(());
            }
            let off = s
                .offset()
                .or_else(|e| malformed(n, format!("sparse map: {e}")))?;
            let len = s
                .length()
                .or_else(|e| malformed(n, format!("sparse map: {e}")))?;
            if off < end {
                return malformed(n, "sparse regions overlap or are out of order");
            }
            end = off.checked_add(len).filter(|e| *e <= real).ok_or_else(|| {
                StreamError::Malformed(
                    n.map(<[u8]>::to_vec),
                    "a sparse region past the file's size".into(),
                )
            })?;
            sum = sum.saturating_add(len);
            if map.len() >= SPARSE_REGIONS_CAP {
                return malformed(n, format!("more than {SPARSE_REGIONS_CAP} sparse regions"));
            }
            if len > 0 {
                map.push((off, len));
            }
            Ok(())
        };
        for s in gnu.sparse.iter() {
            add(s, &mut map)?;
        }
        let mut extended = gnu.is_extended();
        while extended {
            let mut ext = GnuExtSparseHeader::new();
            if self.fill(ext.as_mut_bytes())? < BLOCK {
                return malformed(n, "the stream ends inside a sparse map");
            }
            for s in ext.sparse.iter() {
                add(s, &mut map)?;
            }
            extended = ext.is_extended();
        }
        if sum != stored {
            return malformed(
                n,
                format!("the sparse map holds {sum} bytes, the entry {stored}"),
            );
        }
        Ok((real, map))
    }
}

/// Padding after `size` bytes of data to the next 512-byte block.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The header checksum (unsigned sum of the block, the checksum field counted as spaces).
fn check_sum(h: &Header, pos: u64) -> Result<()> {
    let b = h.as_bytes();
    let sum: u32 = b[..148]
        .iter()
        .chain(&b[156..])
        .map(|x| u32::from(*x))
        .sum::<u32>()
        + 8 * 32;
    match h.cksum() {
        Ok(c) if c == sum => Ok(()),
        _ => malformed(
            Some(&h.path_bytes()),
            format!("header checksum mismatch at byte {}", pos - BLOCK as u64),
        ),
    }
}

/// Parses a PAX extended header body: records `"%d %s=%s\n"`, the length counting the whole
/// record in decimal. A malformed record is an error, never skipped (RUSTSEC-2026-0066).
fn parse_pax(mut body: &[u8]) -> Result<Pax> {
    let mut pax = Pax::default();
    while !body.is_empty() {
        let bad = |why: &str| malformed(None, format!("a malformed PAX record: {why}"));
        let Some(sp) = body.iter().position(|b| *b == b' ') else {
            return bad("no length");
        };
        let len: usize = match std::str::from_utf8(&body[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(l) => l,
            None => return bad("length is not a number"),
        };
        if len <= sp + 1 || len > body.len() || body[len - 1] != b'\n' {
            return bad("length does not match");
        }
        let record = &body[sp + 1..len - 1];
        body = &body[len..];
        let Some(eq) = record.iter().position(|b| *b == b'=') else {
            return bad("no '='");
        };
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let num = |v: &[u8]| -> Result<u64> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .map_or_else(
                    || {
                        malformed(
                            None,
                            format!("a malformed PAX {} record", String::from_utf8_lossy(key)),
                        )
                    },
                    Ok,
                )
        };
        // An empty value deletes the record: the header's field stands (POSIX `pax`,
        // "extended header"; Go's archive/tar does the same). Taken as a value, an empty
        // `path` would name the layer's root where other readers see the header's name.
        let set = !value.is_empty();
        match key {
            b"path" => pax.path = set.then(|| value.to_vec()),
            b"linkpath" => pax.linkpath = set.then(|| value.to_vec()),
            b"size" => pax.size = if set { Some(num(value)?) } else { None },
            b"uid" => pax.uid = if set { Some(num(value)?) } else { None },
            b"gid" => pax.gid = if set { Some(num(value)?) } else { None },
            b"mtime" => pax.mtime = if set { Some(parse_time(value)?) } else { None },
            b"atime" => pax.atime = if set { Some(parse_time(value)?) } else { None },
            _ => {
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if name.is_empty() || name.contains(&0) {
                        return bad("an xattr name that is empty or holds a NUL");
                    }
                    pax.xattrs.push((name.to_vec(), value.to_vec()));
                } else if key.starts_with(b"GNU.sparse.") {
                    pax.gnu_sparse = true;
                }
                // Others (ctime, uname, gname, comment, charset, LIBARCHIVE.*, vendor
                // records) have nothing to apply.
            }
        }
    }
    Ok(pax)
}

/// A PAX time: decimal seconds, optionally negative, with an optional fraction.
fn parse_time(v: &[u8]) -> Result<Time> {
    fn bad(v: &[u8]) -> StreamError {
        StreamError::Malformed(
            None,
            format!("a malformed PAX time {:?}", String::from_utf8_lossy(v)),
        )
    }
    let s = std::str::from_utf8(v).map_err(|_| bad(v))?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad(v));
    }
    let sec: i64 = int.parse().map_err(|_| bad(v))?;
    let mut nsec: u32 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
    }
    Ok(if !neg {
        Time { sec, nsec }
    } else if nsec == 0 {
        Time { sec: -sec, nsec: 0 }
    } else {
        Time {
            sec: -sec - 1,
            nsec: 1_000_000_000 - nsec,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(k: &str, v: &[u8]) -> Vec<u8> {
        let body_len = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body_len + 1;
        while len.to_string().len() + body_len != len {
            len += 1;
        }
        let mut r = format!("{len} {k}=").into_bytes();
        r.extend_from_slice(v);
        r.push(b'\n');
        r
    }

    #[test]
    fn pax_records_with_newlines_in_binary_values_parse() {
        let cap = [
            1u8, 0, 0, 2, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut body = record("SCHILY.xattr.security.capability", &cap);
        body.extend(record("path", b"a/b"));
        body.extend(record("mtime", b"1.5"));
        let p = parse_pax(&body).unwrap();
        assert_eq!(
            p.xattrs,
            vec![(b"security.capability".to_vec(), cap.to_vec())]
        );
        assert_eq!(p.path.as_deref(), Some(&b"a/b"[..]));
        assert_eq!(
            p.mtime,
            Some(Time {
                sec: 1,
                nsec: 500_000_000
            })
        );
    }

    #[test]
    fn malformed_pax_records_are_errors() {
        for bad in [
            &b"5 a=b\n"[..],
            b"x a=b\n",
            b"6 ab\n\n",
            b"100 path=a\n",
            b"9 size=x\n",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_time(b"0").unwrap(), Time { sec: 0, nsec: 0 });
        assert_eq!(
            parse_time(b"-1.25").unwrap(),
            Time {
                sec: -2,
                nsec: 750_000_000
            }
        );
        assert_eq!(
            parse_time(b"12.000000001999").unwrap(),
            Time { sec: 12, nsec: 1 }
        );
        assert!(parse_time(b"1e9").is_err());
        assert!(parse_time(b"").is_err());
    }
}
