use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

/// A small tar with a file, as GNU tar pads it (end blocks, then zeros to 10 KiB).
fn tar_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data = b"hello layer\n".repeat(1000);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "etc/hello", &data[..]).unwrap();
    let mut v = b.into_inner().unwrap();
    v.resize(v.len().div_ceil(10240) * 10240, 0);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd_of(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn expected(raw: &[u8], tar: &[u8]) -> Expected {
    Expected {
        digest: Some(sha256_of(raw)),
        size: Some(raw.len() as u64),
        diff_id: sha256_of(tar),
        object: "layer test".into(),
    }
}

/// Reads the stream with small reads (as a tar parser does), then finishes it.
fn run(raw: Vec<u8>, exp: Expected) -> (Result<(Digest, u64)>, Vec<u8>, Compression) {
    let mut s = LayerStream::new(Box::new(std::io::Cursor::new(raw)), exp, None).unwrap();
    let c = s.compression();
    let mut out = Vec::new();
    let mut buf = [0u8; 700];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (s.finish(), out, c)
}

fn kind(r: &Result<(Digest, u64)>) -> Option<ImageErrorKind> {
    match r {
        Err(Error::Image { kind, .. }) => Some(*kind),
        _ => None,
    }
}

#[test]
fn magic_detection() {
    assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(
        Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
        Compression::Zstd
    );
    assert_eq!(
        Compression::detect(&[0x5e, 0x2a, 0x4d, 0x18]),
        Compression::Zstd
    );
    assert_eq!(
        Compression::detect(&[0x60, 0x2a, 0x4d, 0x18]),
        Compression::None
    );
    assert_eq!(Compression::detect(b"etc/"), Compression::None);
    assert_eq!(Compression::detect(&[0x1f]), Compression::None);
    assert_eq!(Compression::detect(&[]), Compression::None);
}

#[test]
fn gzip_zstd_plain_verify() {
    let tar = tar_bytes();
    for (raw, c) in [
        (gzip(&tar), Compression::Gzip),
        (zstd_of(&tar), Compression::Zstd),
        (tar.clone(), Compression::None),
    ] {
        let (r, out, got) = run(raw.clone(), expected(&raw, &tar));
        assert_eq!(got, c);
        assert_eq!(out, tar, "{c:?}");
        let (d, n) = r.unwrap();
        assert_eq!(d, sha256_of(&raw));
        assert_eq!(n, raw.len() as u64);
    }
}

#[test]
fn zstd_with_skippable_frame_first() {
    let tar = tar_bytes();
    let mut raw = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    raw.extend(zstd_of(&tar));
    let (r, out, c) = run(raw.clone(), expected(&raw, &tar));
    assert_eq!(c, Compression::Zstd);
    assert_eq!(out, tar);
    r.unwrap();
}

#[test]
fn multi_member_gzip_and_trailing_zeros() {
    let tar = tar_bytes();
    let (a, b) = tar.split_at(3000);
    let mut raw = gzip(a);
    raw.extend(gzip(b));
    raw.extend([0u8; 1000]);
    let (r, out, _) = run(raw.clone(), expected(&raw, &tar));
    assert_eq!(out, tar);
    assert_eq!(r.unwrap().1, raw.len() as u64);
}

#[test]
fn finish_drains_what_the_reader_left() {
    // The unpacker stops at the end blocks; finish() must still hash the padding.
    let tar = tar_bytes();
    for raw in [gzip(&tar), tar.clone()] {
        let mut s = LayerStream::new(
            Box::new(std::io::Cursor::new(raw.clone())),
            expected(&raw, &tar),
            None,
        )
        .unwrap();
        let mut head = [0u8; 512];
        s.read_exact(&mut head).unwrap();
        let (d, n) = s.finish().unwrap();
        assert_eq!((d, n), (sha256_of(&raw), raw.len() as u64));
    }
}

#[test]
fn tee_gets_the_blob_as_stored() {
    let tar = tar_bytes();
    let raw = gzip(&tar);
    let mut copy: Vec<u8> = Vec::new();
    {
        let tee: &mut (dyn Write + Send) = &mut copy;
        let s = LayerStream::new(Box::new(&raw[..]), expected(&raw, &tar), Some(tee)).unwrap();
        s.finish().unwrap();
    }
    assert_eq!(copy, raw);
}

#[test]
fn digest_mismatch_names_both() {
    let tar = tar_bytes();
    let raw = gzip(&tar);
    let mut exp = expected(&raw, &tar);
    let wrong = sha256_of(b"other");
    exp.digest = Some(wrong.clone());
    let (r, _, _) = run(raw.clone(), exp);
    let msg = r.as_ref().unwrap_err().to_string();
    assert_eq!(kind(&r), Some(ImageErrorKind::DigestMismatch), "{msg}");
    assert!(
        msg.contains(wrong.as_ref()) && msg.contains(sha256_of(&raw).as_ref()),
        "{msg}"
    );
}

#[test]
fn diff_id_mismatch() {
    let tar = tar_bytes();
    for raw in [gzip(&tar), zstd_of(&tar), tar.clone()] {
        let mut exp = expected(&raw, &tar);
        exp.diff_id = sha256_of(b"not the tar");
        let (r, _, _) = run(raw, exp);
        assert_eq!(kind(&r), Some(ImageErrorKind::DigestMismatch));
        assert!(r.unwrap_err().to_string().contains("diff_id"));
    }
}

#[test]
fn size_mismatch_shorter_and_longer() {
    let tar = tar_bytes();
    let raw = gzip(&tar);
    let mut exp = expected(&raw, &tar);
    exp.size = Some(raw.len() as u64 + 5);
    let (r, _, _) = run(raw.clone(), exp);
    assert_eq!(kind(&r), Some(ImageErrorKind::SizeMismatch));
    let mut exp = expected(&raw, &tar);
    exp.size = Some(raw.len() as u64 - 1);
    let (r, _, _) = run(raw, exp);
    assert_eq!(kind(&r), Some(ImageErrorKind::SizeMismatch));
}

/// Counts the bytes pulled from it.
struct Counting(std::io::Take<std::io::Repeat>, Arc<AtomicU64>);

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_longer_blob_is_not_read_past_size_plus_one() {
    let pulled = Arc::new(AtomicU64::new(0));
    let raw = Counting(std::io::repeat(0).take(1 << 40), pulled.clone());
    let exp = Expected {
        digest: None,
        size: Some(100),
        diff_id: sha256_of(b""),
        object: "layer big".into(),
    };
    let mut s = LayerStream::new(Box::new(raw), exp, None).unwrap();
    let mut buf = [0u8; 4096];
    let mut res = Ok(1);
    while matches!(res, Ok(n) if n > 0) {
        res = s.read(&mut buf);
    }
    assert!(res.is_err());
    let r = s.finish();
    assert_eq!(kind(&r), Some(ImageErrorKind::SizeMismatch), "{r:?}");
    assert_eq!(pulled.load(Ordering::Relaxed), 101);
}

#[test]
fn corrupt_gzip_reports_the_digest_first_then_malformed() {
    let tar = tar_bytes();
    let raw = gzip(&tar);
    let mut bad = raw.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    bad[mid + 1] ^= 0x55;
    // The descriptor names the good blob: a digest mismatch.
    let (r, _, _) = run(bad.clone(), expected(&raw, &tar));
    assert_eq!(kind(&r), Some(ImageErrorKind::DigestMismatch), "{r:?}");
    // No digest known (docker-save legacy): the stream's own fault.
    let mut exp = expected(&bad, &tar);
    exp.digest = None;
    let (r, _, _) = run(bad, exp);
    assert!(
        matches!(
            kind(&r),
            Some(ImageErrorKind::Malformed | ImageErrorKind::DigestMismatch)
        ),
        "{r:?}"
    );
}

#[test]
fn truncated_gzip_is_a_size_mismatch() {
    let tar = tar_bytes();
    let raw = gzip(&tar);
    let exp = expected(&raw, &tar);
    let (r, _, _) = run(raw[..raw.len() / 2].to_vec(), exp);
    assert_eq!(kind(&r), Some(ImageErrorKind::SizeMismatch), "{r:?}");
}
