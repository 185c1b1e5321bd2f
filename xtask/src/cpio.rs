//! A writer for the "newc" cpio format, the one the kernel unpacks as an initramfs.
//!
//! Every entry is owned by root. Parent directories are created on demand (0755) unless they
//! were declared before, either in this archive or, through [`Writer::assume_present`], in an
//! earlier archive the kernel unpacks first: declaring an existing directory again would
//! chmod it (e.g. /tmp losing its sticky bit).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{bail, Context, Result};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

pub struct Writer<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    /// Every path already in the archive (or assumed present), absolute.
    present: HashSet<PathBuf>,
}

impl<W: Write> Writer<W> {
    /// `first_ino` keeps inode numbers distinct from those of an archive unpacked earlier.
    pub fn new(out: W, first_ino: u32) -> Self {
        Writer {
            out,
            written: 0,
            next_ino: first_ino,
            present: HashSet::from([PathBuf::from("/")]),
        }
    }

    /// Paths that an earlier archive creates: directories among them are not declared again.
    pub fn assume_present<'a>(&mut self, paths: impl IntoIterator<Item = &'a Path>) {
        self.present
            .extend(paths.into_iter().map(Path::to_path_buf));
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.present.contains(path)
    }

    /// The paths in this archive (to pass to [`Writer::assume_present`] of a later one).
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.present.iter().map(PathBuf::as_path)
    }

    pub fn dir(&mut self, path: &Path, mode: u32) -> Result<()> {
        if self.present.contains(path) {
            return Ok(());
        }
        self.parents(path)?;
        self.entry(path, S_IFDIR | (mode & 0o7777), 2, 0, &[])
    }

    pub fn file(&mut self, path: &Path, mode: u32, data: &[u8]) -> Result<()> {
        self.parents(path)?;
        self.entry(path, S_IFREG | (mode & 0o7777), 1, 0, data)
    }

    /// A regular file whose content is streamed from `host` (symlinks followed).
    pub fn host_file(&mut self, path: &Path, mode: u32, host: &Path) -> Result<()> {
        let mut src = File::open(host).with_context(|| format!("open {}", host.display()))?;
        let len = src
            .metadata()
            .with_context(|| format!("stat {}", host.display()))?
            .len();
        let Ok(len32) = u32::try_from(len) else {
            bail!(
                "{} is too large for a cpio archive ({len} bytes)",
                host.display()
            );
        };
        self.parents(path)?;
        self.header(path, S_IFREG | (mode & 0o7777), 1, 0, len32)?;
        let copied = io::copy(&mut src, &mut self.out)
            .with_context(|| format!("copy {} into the initramfs", host.display()))?;
        if copied != len {
            bail!("{} changed size while being copied", host.display());
        }
        self.written += copied;
        self.pad()
    }

    pub fn symlink(&mut self, path: &Path, target: &Path) -> Result<()> {
        self.parents(path)?;
        self.entry(path, S_IFLNK | 0o777, 1, 0, target.as_os_str().as_bytes())
    }

    pub fn char_device(&mut self, path: &Path, mode: u32, major: u32, minor: u32) -> Result<()> {
        self.parents(path)?;
        self.entry(
            path,
            S_IFCHR | (mode & 0o7777),
            1,
            (major << 8) | minor,
            &[],
        )
    }

    /// Write the trailer and return the underlying writer.
    pub fn finish(mut self) -> Result<W> {
        self.raw_header(b"TRAILER!!!", 0, 0, 1, 0, 0)?;
        // The kernel accepts zero padding between concatenated archives; end on 512 bytes.
        let pad = (512 - self.written % 512) % 512;
        self.out.write_all(&vec![0; pad as usize])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn parents(&mut self, path: &Path) -> Result<()> {
        check_path(path)?;
        let mut missing = Vec::new();
        let mut p = path.parent();
        while let Some(dir) = p {
            if self.present.contains(dir) {
                break;
            }
            missing.push(dir.to_path_buf());
            p = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            self.entry(&dir, S_IFDIR | 0o755, 2, 0, &[])?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, mode: u32, nlink: u32, rdev: u32, data: &[u8]) -> Result<()> {
        let Ok(len) = u32::try_from(data.len()) else {
            bail!("{} is too large for a cpio archive", path.display());
        };
        self.header(path, mode, nlink, rdev, len)?;
        self.out.write_all(data)?;
        self.written += u64::from(len);
        self.pad()
    }

    fn header(&mut self, path: &Path, mode: u32, nlink: u32, rdev: u32, size: u32) -> Result<()> {
        check_path(path)?;
        self.present.insert(path.to_path_buf());
        // Archive names are relative ("bin/sh"), as the kernel's own gen_init_cpio writes them.
        let name = path.strip_prefix("/").unwrap_or(path);
        let ino = self.next_ino;
        self.next_ino += 1;
        self.raw_header(name.as_os_str().as_bytes(), ino, mode, nlink, rdev, size)
    }

    fn raw_header(
        &mut self,
        name: &[u8],
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: u32,
        size: u32,
    ) -> Result<()> {
        let namesize = name.len() + 1;
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: reproducible archives
            size,
            0, // devmajor
            0, // devminor
            rdev >> 8,
            rdev & 0xff,
            namesize as u32,
            0, // check
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name)?;
        self.out.write_all(&[0])?;
        self.written += 110 + namesize as u64;
        self.pad()
    }

    fn pad(&mut self) -> Result<()> {
        let pad = (4 - self.written % 4) % 4;
        self.out.write_all(&[0; 3][..pad as usize])?;
        self.written += pad;
        Ok(())
    }
}

/// Guest paths are absolute and plain: no `..`, no `.`, no empty name.
fn check_path(path: &Path) -> Result<()> {
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        bail!("initramfs path {} is not absolute", path.display());
    }
    if !components.all(|c| matches!(c, Component::Normal(_))) {
        bail!("initramfs path {} is not normalized", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse the archive back: (name, mode, size, data) per entry, stopping at the trailer.
    fn parse(mut buf: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        assert_eq!(buf.len() % 512, 0, "archive ends on 512 bytes");
        let mut out = Vec::new();
        loop {
            assert_eq!(&buf[..6], b"070701");
            let field = |i: usize| {
                let s = std::str::from_utf8(&buf[6 + i * 8..14 + i * 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            let name = std::str::from_utf8(&buf[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            let data_start = (110 + namesize).next_multiple_of(4);
            let data = buf[data_start..data_start + size].to_vec();
            let next = (data_start + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert!(
                    buf[next..].iter().all(|&b| b == 0),
                    "only padding after the trailer"
                );
                return out;
            }
            out.push((name, mode, data));
            buf = &buf[next..];
        }
    }

    #[test]
    fn writes_parents_once_and_pads() {
        let mut w = Writer::new(Vec::new(), 1);
        w.dir(Path::new("/tmp"), 0o1777).unwrap();
        w.file(Path::new("/a/b/c"), 0o4755, b"hello").unwrap();
        w.symlink(Path::new("/a/b/d"), Path::new("c")).unwrap();
        w.char_device(Path::new("/dev/null"), 0o666, 1, 3).unwrap();
        let entries = parse(&w.finish().unwrap());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["tmp", "a", "a/b", "a/b/c", "a/b/d", "dev", "dev/null"]
        );
        assert_eq!(entries[0].1, S_IFDIR | 0o1777);
        assert_eq!(entries[3].1, S_IFREG | 0o4755);
        assert_eq!(entries[3].2, b"hello");
        assert_eq!(entries[4].2, b"c");
    }

    #[test]
    fn assumed_dirs_are_not_redeclared() {
        let mut w = Writer::new(Vec::new(), 1000);
        w.assume_present([Path::new("/tmp")]);
        w.file(Path::new("/tmp/x"), 0o644, b"").unwrap();
        let names: Vec<_> = parse(&w.finish().unwrap())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["tmp/x"]);
    }

    #[test]
    fn rejects_relative_and_dotted_paths() {
        let mut w = Writer::new(Vec::new(), 1);
        assert!(w.file(Path::new("rel"), 0o644, b"").is_err());
        assert!(w.file(Path::new("/a/../b"), 0o644, b"").is_err());
    }
}
