//! Sources: layouts and archives made by umoci and skopeo, hand-written docker-save shapes
//! and indexes, and hostile inputs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::image::compress::{sha256_of, LayerStream};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "contain-source-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tool(name: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if !found {
        eprintln!("skipped: {test}: {name} is not installed");
    }
    found
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kind<T: std::fmt::Debug>(r: &Result<T>) -> ImageErrorKind {
    match r {
        Err(Error::Image { kind, .. }) => *kind,
        other => panic!("expected an image error, got {other:?}"),
    }
}

fn msg<T>(r: Result<T>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    }
}

/// Streams every layer through a LayerStream; returns what finish() found.
fn verify_layers(r: &Resolved) -> Result<Vec<(Digest, u64, Compression)>> {
    let mut out = Vec::new();
    for (i, l) in r.layers.iter().enumerate() {
        let s = LayerStream::new(r.open_layer(i)?, l.expected.clone(), None)?;
        let c = s.compression();
        let (d, n) = s.finish()?;
        out.push((d, n, c));
    }
    Ok(out)
}

/// A tar of one file.
fn layer_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn hex(d: &Digest) -> String {
    d.digest().to_owned()
}

fn config_json(diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

/// A hand-written OCI layout.
struct Layout {
    dir: TempDir,
}

impl Layout {
    fn new(tag: &str) -> Layout {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.0.join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.0.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout { dir }
    }

    fn path(&self) -> &Path {
        &self.dir.0
    }

    /// Writes a blob; returns a descriptor for it.
    fn blob(&self, media_type: &str, bytes: &[u8]) -> serde_json::Value {
        let d = sha256_of(bytes);
        std::fs::write(self.path().join("blobs/sha256").join(hex(&d)), bytes).unwrap();
        serde_json::json!({"mediaType": media_type, "digest": d.to_string(), "size": bytes.len()})
    }

    /// An image of the given layers (raw blobs, tars): its manifest descriptor.
    fn image(&self, layers: &[(&[u8], &[u8])]) -> serde_json::Value {
        let diff_ids: Vec<Digest> = layers.iter().map(|(_, tar)| sha256_of(tar)).collect();
        let config = self.blob(OCI_CONFIG, &config_json(&diff_ids));
        let descs: Vec<_> = layers
            .iter()
            .map(|(raw, _)| self.blob("application/vnd.oci.image.layer.v1.tar+gzip", raw))
            .collect();
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descs});
        self.blob(OCI_MANIFEST, &serde_json::to_vec(&m).unwrap())
    }

    fn index(&self, manifests: Vec<serde_json::Value>) {
        let i =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        std::fs::write(
            self.path().join("index.json"),
            serde_json::to_vec(&i).unwrap(),
        )
        .unwrap();
    }

    fn r#ref(&self, tag: Option<&str>) -> ImageRef {
        ImageRef::Layout {
            dir: self.path().to_owned(),
            tag: tag.map(str::to_owned),
        }
    }
}

fn named(mut d: serde_json::Value, name: &str) -> serde_json::Value {
    d["annotations"] = serde_json::json!({ANN_REF_NAME: name});
    d
}

fn one_layer(l: &Layout, content: &[u8]) -> serde_json::Value {
    let tar = layer_tar("etc/x", content);
    l.image(&[(&gzip(&tar), &tar)])
}

// --- ImageRef ---------------------------------------------------------------------------

#[test]
fn image_ref_forms_and_round_trip() {
    let t = TempDir::new("ref");
    let dir = t.0.join("layout");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let file = t.0.join("img.tar");
    std::fs::write(&file, [0x1f, 0x8b, 8, 0]).unwrap();
    // Paths that exist but are no image: a name of the store, not a source.
    let plain = t.0.join("app");
    std::fs::create_dir(&plain).unwrap();
    let text = t.0.join("notes");
    std::fs::write(&text, b"not a tar\n").unwrap();
    let (p, n) = (plain.display().to_string(), text.display().to_string());
    let d = dir.display().to_string();
    let f = file.display().to_string();
    let cases = [
        (
            format!("oci:{d}:v1"),
            ImageRef::Layout {
                dir: dir.clone(),
                tag: Some("v1".into()),
            },
        ),
        (
            format!("oci-archive:{f}"),
            ImageRef::Archive {
                path: file.clone(),
                tag: None,
            },
        ),
        (
            format!("docker-archive:{f}:busybox:latest"),
            ImageRef::Archive {
                path: file.clone(),
                tag: Some("busybox:latest".into()),
            },
        ),
        (
            d.clone(),
            ImageRef::Layout {
                dir: dir.clone(),
                tag: None,
            },
        ),
        (
            format!("{d}:t"),
            ImageRef::Layout {
                dir: dir.clone(),
                tag: Some("t".into()),
            },
        ),
        (
            f.clone(),
            ImageRef::Archive {
                path: file.clone(),
                tag: None,
            },
        ),
        (
            format!("{f}:a:b"),
            ImageRef::Archive {
                path: file.clone(),
                tag: Some("a:b".into()),
            },
        ),
        (
            "busybox:latest".into(),
            ImageRef::Stored("busybox:latest".into()),
        ),
        ("sha256:0123".into(), ImageRef::Stored("sha256:0123".into())),
        (format!("{p}:1"), ImageRef::Stored(format!("{p}:1"))),
        (p.clone(), ImageRef::Stored(p.clone())),
        (format!("{n}:1"), ImageRef::Stored(format!("{n}:1"))),
        (
            format!("{}/nothere:x", t.0.display()),
            ImageRef::Stored(format!("{}/nothere:x", t.0.display())),
        ),
    ];
    for (s, want) in cases {
        let got = ImageRef::parse(&s).unwrap();
        assert_eq!(got, want, "{s}");
        assert_eq!(
            got.to_string().parse::<ImageRef>().unwrap(),
            want,
            "{s} round trip"
        );
    }
    for bad in ["", "oci:", "oci:/x:", "docker-archive:"] {
        assert!(
            matches!(ImageRef::parse(bad), Err(Error::Config { .. })),
            "{bad:?}"
        );
    }
}

// --- Digests ----------------------------------------------------------------------------

#[test]
fn digests_are_checked_before_use() {
    let good = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(parse_sha256(&good, "o").unwrap().1, "ab".repeat(32));
    for bad in [
        "sha256:../../x".to_owned(),
        format!("sha256:{}", "AB".repeat(32)),
        format!("sha256:{}", "ab".repeat(31)),
        format!("sha256:{}/", "ab".repeat(32)),
        "nocolon".to_owned(),
        "".to_owned(),
    ] {
        assert_eq!(
            kind(&parse_sha256(&bad, "o")),
            ImageErrorKind::Malformed,
            "{bad}"
        );
    }
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    assert_eq!(
        kind(&parse_sha256(&sha512, "o")),
        ImageErrorKind::Unsupported
    );
}

// --- Hand-written layouts ----------------------------------------------------------------

#[test]
fn layout_by_tag_and_alone() {
    let l = Layout::new("tags");
    let a = one_layer(&l, b"a");
    let b = one_layer(&l, b"b");
    l.index(vec![named(a.clone(), "a"), named(b, "b")]);
    let r = Resolved::open(&l.r#ref(Some("b"))).unwrap();
    assert_eq!(r.name.as_deref(), Some("b"));
    assert_eq!(r.layers.len(), 1);
    verify_layers(&r).unwrap();
    // Two images and no tag.
    let e = Resolved::open(&l.r#ref(None));
    assert_eq!(kind(&e), ImageErrorKind::Ambiguous);
    let m = msg(e);
    assert!(m.contains('a') && m.contains('b'), "{m}");
    // Unknown tag: NotFound listing the tags.
    let e = Resolved::open(&l.r#ref(Some("zzz")));
    assert_eq!(kind(&e), ImageErrorKind::NotFound);
    let m = msg(e);
    assert!(m.contains("a, b"), "{m}");
    // By position, as skopeo's oci:DIR@N.
    let r = Resolved::open(&l.r#ref(Some("@1"))).unwrap();
    assert_eq!(r.name.as_deref(), Some("b"));
    assert_eq!(
        kind(&Resolved::open(&l.r#ref(Some("@2")))),
        ImageErrorKind::NotFound
    );
    // One image named twice is not ambiguous.
    l.index(vec![named(a.clone(), "a"), named(a, "again")]);
    Resolved::open(&l.r#ref(None)).unwrap();
}

#[test]
fn containerd_names_and_tag_part() {
    let l = Layout::new("ctrd");
    let a = one_layer(&l, b"a");
    let mut d = a.clone();
    d["annotations"] = serde_json::json!({
        ANN_CONTAINERD_NAME: "docker.io/library/busybox:latest",
        ANN_REF_NAME: "latest",
    });
    let b = named(one_layer(&l, b"b"), "v2");
    l.index(vec![d, b]);
    for tag in [
        "busybox:latest",
        "busybox",
        "docker.io/library/busybox:latest",
        "latest",
    ] {
        let r = Resolved::open(&l.r#ref(Some(tag))).unwrap();
        assert_eq!(
            r.name.as_deref(),
            Some("docker.io/library/busybox:latest"),
            "{tag}"
        );
    }
    // NAME:TAG whose tag part is a bare ref.name.
    let r = Resolved::open(&l.r#ref(Some("myimage:v2"))).unwrap();
    assert_eq!(r.name.as_deref(), Some("v2"));
}

#[test]
fn zstd_layer_in_a_layout() {
    let l = Layout::new("zstd");
    let tar = layer_tar("etc/z", b"zstd content");
    let raw = zstd::stream::encode_all(&tar[..], 3).unwrap();
    let diff = sha256_of(&tar);
    let config = l.blob(OCI_CONFIG, &config_json(&[diff]));
    let layer = l.blob("application/vnd.oci.image.layer.v1.tar+zstd", &raw);
    let m = serde_json::json!({"schemaVersion": 2, "config": config, "layers": [layer]});
    let md = l.blob(OCI_MANIFEST, &serde_json::to_vec(&m).unwrap());
    l.index(vec![md]);
    let r = Resolved::open(&l.r#ref(None)).unwrap();
    let v = verify_layers(&r).unwrap();
    assert_eq!(v[0].2, Compression::Zstd);
    assert_eq!(v[0].0, sha256_of(&raw));
}

fn platform_manifest(l: &Layout, arch: &str, variant: Option<&str>, os: &str) -> serde_json::Value {
    let mut d = one_layer(l, format!("{os}/{arch}/{variant:?}").as_bytes());
    let mut p = serde_json::json!({"architecture": arch, "os": os});
    if let Some(v) = variant {
        p["variant"] = v.into();
    }
    d["platform"] = p;
    d
}

#[test]
fn multi_platform_index_picks_the_host() {
    let l = Layout::new("multi");
    let mut attest = platform_manifest(&l, "unknown", None, "unknown");
    attest["annotations"] =
        serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    let entries = vec![
        platform_manifest(&l, "arm64", Some("v8"), "linux"),
        platform_manifest(&l, "amd64", None, "linux"),
        platform_manifest(&l, "amd64", Some("v3"), "linux"),
        platform_manifest(&l, "amd64", Some("v2"), "linux"),
        attest,
    ];
    let descs: Vec<Desc> = entries
        .iter()
        .map(|v| Desc::check(serde_json::from_value(v.clone()).unwrap(), "t").unwrap())
        .collect();
    let host = |arch, amd64_level| HostPlatform { arch, amd64_level };
    let pick = |h: HostPlatform| choose_platform(descs.clone(), &h, "t").unwrap();
    let (d, note) = pick(host("amd64", 1));
    assert_eq!(d.platform.unwrap().variant, None);
    assert_eq!(note.as_deref(), Some("picked linux/amd64 of 4 platforms"));
    let (d, _) = pick(host("amd64", 2));
    assert_eq!(d.platform.unwrap().variant.as_deref(), Some("v2"));
    let (d, note) = pick(host("amd64", 4));
    assert_eq!(d.platform.unwrap().variant.as_deref(), Some("v3"));
    assert_eq!(
        note.as_deref(),
        Some("picked linux/amd64/v3 of 4 platforms")
    );
    let (d, _) = pick(host("arm64", 1));
    assert_eq!(d.platform.unwrap().architecture, "arm64");
    let e = choose_platform(descs.clone(), &host("s390x", 1), "t");
    assert_eq!(kind(&e), ImageErrorKind::Unsupported);
    assert!(msg(e).contains("linux/arm64/v8"));

    // Through a nested index in a layout, on this host.
    let idx = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    let top = l.blob(OCI_INDEX, &serde_json::to_vec(&idx).unwrap());
    l.index(vec![named(top, "multi")]);
    let h = HostPlatform::detect();
    if h.arch == "amd64" || h.arch == "arm64" {
        let r = Resolved::open(&l.r#ref(Some("multi"))).unwrap();
        let note = r.platform_note.clone().unwrap();
        assert!(
            note.starts_with(&format!("picked linux/{}", h.arch)),
            "{note}"
        );
        verify_layers(&r).unwrap();
        // Other platforms' blobs may be missing (a containerd-store docker save).
        let ours = r.manifest.clone();
        for e in &entries {
            let d = e["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap();
            let p = l.path().join("blobs/sha256").join(d);
            if std::fs::read(&p).unwrap() != ours {
                std::fs::remove_file(p).unwrap();
            }
        }
        let again = Resolved::open(&l.r#ref(Some("multi"))).unwrap();
        assert_eq!(again.config_digest(), r.config_digest());
    }
}

// --- Hostile layouts ----------------------------------------------------------------------

#[test]
fn blob_digest_size_and_diff_id_mismatches() {
    let l = Layout::new("mismatch");
    let tar = layer_tar("etc/x", b"x");
    let raw = gzip(&tar);
    let md = l.image(&[(&raw, &tar)]);
    l.index(vec![md]);
    let layer_path = l.path().join("blobs/sha256").join(hex(&sha256_of(&raw)));
    // Same size, other bytes: digest mismatch.
    let mut bad = raw.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&layer_path, &bad).unwrap();
    let r = Resolved::open(&l.r#ref(None)).unwrap();
    assert_eq!(kind(&verify_layers(&r)), ImageErrorKind::DigestMismatch);
    // Longer: size mismatch.
    let mut long = raw.clone();
    long.extend([0u8; 10]);
    std::fs::write(&layer_path, &long).unwrap();
    assert_eq!(kind(&verify_layers(&r)), ImageErrorKind::SizeMismatch);

    // A config whose diff_id is not the layer's.
    let l2 = Layout::new("diffid");
    let other = layer_tar("etc/y", b"y");
    let md = l2.image(&[(&raw, &other)]);
    std::fs::write(
        l2.path().join("blobs/sha256").join(hex(&sha256_of(&raw))),
        &raw,
    )
    .unwrap();
    l2.index(vec![md]);
    let r = Resolved::open(&l2.r#ref(None)).unwrap();
    let e = verify_layers(&r);
    assert_eq!(kind(&e), ImageErrorKind::DigestMismatch);
    assert!(msg(e).contains("diff_id"));

    // A manifest blob that is not what its descriptor says.
    let l3 = Layout::new("manifest-mismatch");
    let mut md = one_layer(&l3, b"q");
    let mhex = md["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_owned();
    md["size"] = (md["size"].as_u64().unwrap() + 1).into();
    l3.index(vec![md.clone()]);
    assert_eq!(
        kind(&Resolved::open(&l3.r#ref(None))),
        ImageErrorKind::SizeMismatch
    );
    md["size"] = (md["size"].as_u64().unwrap() - 1).into();
    l3.index(vec![md]);
    let p = l3.path().join("blobs/sha256").join(mhex);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[0] = b' ';
    std::fs::write(&p, bytes).unwrap();
    assert_eq!(
        kind(&Resolved::open(&l3.r#ref(None))),
        ImageErrorKind::DigestMismatch
    );
}

#[test]
fn traversal_and_uppercase_digests_never_reach_the_file_system() {
    let l = Layout::new("traversal");
    // A file the traversal would reach.
    std::fs::write(l.path().join("x"), b"{}").unwrap();
    for digest in [
        "sha256:../../x".to_owned(),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:../{}", "a".repeat(61)),
    ] {
        l.index(vec![
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": 2}),
        ]);
        assert_eq!(
            kind(&Resolved::open(&l.r#ref(None))),
            ImageErrorKind::Malformed,
            "{digest}"
        );
    }
}

#[test]
fn a_symlinked_blob_cannot_lead_out_of_the_layout() {
    let l = Layout::new("symlink");
    let md = one_layer(&l, b"s");
    l.index(vec![md.clone()]);
    let hexd = md["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_owned();
    let outside = TempDir::new("outside");
    let target = outside.0.join("m");
    let p = l.path().join("blobs/sha256").join(&hexd);
    std::fs::rename(&p, &target).unwrap();
    std::os::unix::fs::symlink(&target, &p).unwrap();
    // Resolved inside the layout's root: /tmp/.../m is looked up under the layout.
    assert_eq!(
        kind(&Resolved::open(&l.r#ref(None))),
        ImageErrorKind::NotFound
    );
}

#[test]
fn media_type_confusion_is_refused() {
    // A config descriptor that names a manifest blob (CVE-2021-41190 shape).
    let l = Layout::new("confusion");
    let inner = one_layer(&l, b"c");
    let inner_bytes = std::fs::read(
        l.path().join("blobs/sha256").join(
            inner["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap(),
        ),
    )
    .unwrap();
    let cfg_as_manifest = l.blob(OCI_CONFIG, &inner_bytes);
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg_as_manifest, "layers": []});
    let md = l.blob(OCI_MANIFEST, &serde_json::to_vec(&m).unwrap());
    l.index(vec![md]);
    let e = Resolved::open(&l.r#ref(None));
    assert_eq!(kind(&e), ImageErrorKind::Malformed);
    assert!(msg(e).contains("not an image config"));

    // A config descriptor with a non-config media type (an artifact).
    let cfg = l.blob("application/vnd.oci.empty.v1+json", b"{}");
    let m = serde_json::json!({"schemaVersion": 2, "config": cfg, "layers": []});
    let md = l.blob(OCI_MANIFEST, &serde_json::to_vec(&m).unwrap());
    l.index(vec![md]);
    assert_eq!(
        kind(&Resolved::open(&l.r#ref(None))),
        ImageErrorKind::Unsupported
    );

    // A manifest whose own mediaType says index.
    let mut m: serde_json::Value = serde_json::from_slice(&inner_bytes).unwrap();
    m["mediaType"] = OCI_INDEX.into();
    let md = l.blob(OCI_MANIFEST, &serde_json::to_vec(&m).unwrap());
    l.index(vec![md]);
    let e = Resolved::open(&l.r#ref(None));
    assert_eq!(kind(&e), ImageErrorKind::Malformed);
    assert!(msg(e).contains("contradicts"));

    // An index descriptor pointing at a manifest.
    let mut d = one_layer(&l, b"d");
    d["mediaType"] = OCI_INDEX.into();
    l.index(vec![d]);
    assert_eq!(
        kind(&Resolved::open(&l.r#ref(None))),
        ImageErrorKind::Malformed
    );
}

#[test]
fn huge_sizes_are_refused_unread() {
    let l = Layout::new("huge");
    let mut md = one_layer(&l, b"h");
    md["size"] = 1_000_000_000u64.into();
    l.index(vec![md]);
    let e = Resolved::open(&l.r#ref(None));
    assert_eq!(kind(&e), ImageErrorKind::Malformed);
    assert!(msg(e).contains("1000000000"));
    // index.json itself over the cap: read no further than the cap.
    let big = vec![b' '; (MAX_JSON + 10) as usize];
    std::fs::write(l.path().join("index.json"), big).unwrap();
    assert_eq!(
        kind(&Resolved::open(&l.r#ref(None))),
        ImageErrorKind::Malformed
    );
}

#[test]
fn missing_or_bad_layout_files() {
    let l = Layout::new("nolayout");
    l.index(vec![one_layer(&l, b"n")]);
    std::fs::write(
        l.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    assert_eq!(
        kind(&Resolved::open(&l.r#ref(None))),
        ImageErrorKind::Unsupported
    );
    std::fs::remove_file(l.path().join("oci-layout")).unwrap();
    assert_eq!(
        kind(&Resolved::open(&l.r#ref(None))),
        ImageErrorKind::Malformed
    );
    let none = ImageRef::Layout {
        dir: l.path().join("nope"),
        tag: None,
    };
    assert_eq!(kind(&Resolved::open(&none)), ImageErrorKind::NotFound);
}

// --- Hand-written docker save archives ----------------------------------------------------

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

fn append_symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, path, target).unwrap();
}

fn write_archive(dir: &Path, name: &str, b: tar::Builder<Vec<u8>>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    p
}

fn archive_ref(p: &Path, tag: Option<&str>) -> ImageRef {
    ImageRef::Archive {
        path: p.to_owned(),
        tag: tag.map(str::to_owned),
    }
}

/// The Docker <= 24 shape: `<id>/layer.tar` (one of them a symlink, as skopeo writes),
/// `<hex>.json` config.
fn legacy_archive(dir: &Path, manifest: Option<serde_json::Value>) -> PathBuf {
    let t1 = layer_tar("bin/a", b"one");
    let t2 = layer_tar("bin/b", b"two");
    let config = config_json(&[sha256_of(&t1), sha256_of(&t2)]);
    let chex = hex(&sha256_of(&config));
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "1111/layer.tar", &t1);
    append(&mut b, "1111/VERSION", b"1.0");
    append(&mut b, &format!("{}.tar", hex(&sha256_of(&t2))), &t2);
    append_symlink(
        &mut b,
        "2222/layer.tar",
        &format!("../{}.tar", hex(&sha256_of(&t2))),
    );
    append(&mut b, &format!("{chex}.json"), &config);
    let m = manifest.unwrap_or_else(|| {
        serde_json::json!([{"Config": format!("{chex}.json"), "RepoTags": ["busybox:latest", "busybox:1"], "Layers": ["1111/layer.tar", "2222/layer.tar"]}])
    });
    append(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    write_archive(dir, "legacy.tar", b)
}

#[test]
fn docker_save_legacy_shape() {
    let t = TempDir::new("legacy");
    let p = legacy_archive(&t.0, None);
    for tag in [
        None,
        Some("busybox:1"),
        Some("docker.io/library/busybox:latest"),
        Some("busybox"),
    ] {
        let r = Resolved::open(&archive_ref(&p, tag)).unwrap();
        assert!(r.needs_manifest());
        assert!(r.layers.iter().all(|l| l.expected.digest.is_none()));
        let v = verify_layers(&r).unwrap();
        assert_eq!(v.len(), 2);
        let m = r.synthesize_manifest(&v).unwrap();
        let (cfg, layers) = parse_manifest(&m, OCI_MANIFEST, "m").unwrap();
        assert_eq!(cfg.digest, r.config_digest());
        assert_eq!(layers[1].digest, v[1].0);
    }
    let e = Resolved::open(&archive_ref(&p, Some("alpine")));
    assert_eq!(kind(&e), ImageErrorKind::NotFound);
    assert!(msg(e).contains("busybox:latest, busybox:1"));
}

#[test]
fn docker_save_hostile_paths_and_lengths() {
    let t = TempDir::new("hostile-docker");
    for (layers, want) in [
        (
            serde_json::json!(["../1111/layer.tar", "2222/layer.tar"]),
            ImageErrorKind::UnsafeEntry,
        ),
        (
            serde_json::json!(["/1111/layer.tar", "2222/layer.tar"]),
            ImageErrorKind::UnsafeEntry,
        ),
        (
            serde_json::json!(["1111/../../etc/passwd", "2222/layer.tar"]),
            ImageErrorKind::UnsafeEntry,
        ),
        (
            serde_json::json!(["1111/layer.tar"]),
            ImageErrorKind::Malformed,
        ),
        (
            serde_json::json!(["1111/layer.tar", "3333/layer.tar"]),
            ImageErrorKind::NotFound,
        ),
    ] {
        // The config's name is taken from a good archive first.
        let good = legacy_archive(&t.0, None);
        let r = Resolved::open(&archive_ref(&good, None)).unwrap();
        let chex = hex(&r.config_digest());
        drop(r);
        let m = serde_json::json!([{"Config": format!("{chex}.json"), "RepoTags": null, "Layers": layers}]);
        let p = legacy_archive(&t.0, Some(m));
        assert_eq!(
            kind(&Resolved::open(&archive_ref(&p, None))),
            want,
            "{layers}"
        );
    }
    // A symlink member out of the archive.
    let t1 = layer_tar("a", b"1");
    let config = config_json(&[sha256_of(&t1)]);
    let chex = hex(&sha256_of(&config));
    let mut b = tar::Builder::new(Vec::new());
    append_symlink(&mut b, "1111/layer.tar", "../../etc/passwd");
    append(&mut b, &format!("{chex}.json"), &config);
    let m = serde_json::json!([{"Config": format!("{chex}.json"), "RepoTags": [], "Layers": ["1111/layer.tar"]}]);
    append(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    let p = write_archive(&t.0, "out.tar", b);
    let r = Resolved::open(&archive_ref(&p, None));
    assert_eq!(kind(&r), ImageErrorKind::UnsafeEntry);
    // A config whose file name is not its digest.
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "a.tar", &t1);
    append(&mut b, &format!("{}.json", "0".repeat(64)), &config);
    let m =
        serde_json::json!([{"Config": format!("{}.json", "0".repeat(64)), "Layers": ["a.tar"]}]);
    append(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    let p = write_archive(&t.0, "cfg.tar", b);
    assert_eq!(
        kind(&Resolved::open(&archive_ref(&p, None))),
        ImageErrorKind::DigestMismatch
    );
}

#[test]
fn docker_save_several_images_need_a_tag() {
    let t = TempDir::new("several");
    let t1 = layer_tar("a", b"1");
    let config = config_json(&[sha256_of(&t1)]);
    let chex = hex(&sha256_of(&config));
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "a.tar", &t1);
    append(&mut b, &format!("{chex}.json"), &config);
    let m = serde_json::json!([
        {"Config": format!("{chex}.json"), "RepoTags": ["one:1"], "Layers": ["a.tar"]},
        {"Config": format!("{chex}.json"), "RepoTags": ["two:2"], "Layers": ["a.tar"]},
    ]);
    append(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    let p = write_archive(&t.0, "two.tar", b);
    let e = Resolved::open(&archive_ref(&p, None));
    assert_eq!(kind(&e), ImageErrorKind::Ambiguous);
    assert!(msg(e).contains("one:1, two:2"));
    let r = Resolved::open(&archive_ref(&p, Some("two:2"))).unwrap();
    assert_eq!(r.name.as_deref(), Some("two:2"));
}

/// The Docker 25+ shape: an OCI layout inside, uncompressed blobs, manifest.json naming
/// `blobs/sha256/HEX`; plus a gzip layer as the containerd store keeps it.
#[test]
fn docker_save_v25_shape() {
    let t = TempDir::new("v25");
    let t1 = layer_tar("bin/a", b"one");
    let t2 = layer_tar("bin/b", b"two");
    let g2 = gzip(&t2);
    let config = config_json(&[sha256_of(&t1), sha256_of(&t2)]);
    let blob = |d: &[u8]| format!("blobs/sha256/{}", hex(&sha256_of(d)));
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, &blob(&t1), &t1);
    append(&mut b, &blob(&g2), &g2);
    append(&mut b, &blob(&config), &config);
    append(
        &mut b,
        "index.json",
        br#"{"schemaVersion":2,"manifests":[]}"#,
    );
    let m = serde_json::json!([{"Config": blob(&config), "RepoTags": ["app:v25"], "Layers": [blob(&t1), blob(&g2)]}]);
    append(&mut b, "manifest.json", &serde_json::to_vec(&m).unwrap());
    let p = write_archive(&t.0, "v25.tar", b);
    let r = Resolved::open(&archive_ref(&p, Some("app:v25"))).unwrap();
    assert_eq!(r.layers[1].expected.digest, Some(sha256_of(&g2)));
    let v = verify_layers(&r).unwrap();
    assert_eq!(v[0].2, Compression::None);
    assert_eq!(v[1].2, Compression::Gzip);
    assert_eq!(r.config_digest(), sha256_of(&config));
}

#[test]
fn compressed_archives_and_bad_tars() {
    let t = TempDir::new("badtar");
    let good = legacy_archive(&t.0, None);
    // Compressed as a whole: read through a temporary copy.
    let plain = std::fs::read(&good).unwrap();
    let gz = t.0.join("legacy.tar.gz");
    std::fs::write(&gz, gzip(&plain)).unwrap();
    let zst = t.0.join("legacy.tar.zst");
    std::fs::write(&zst, zstd::stream::encode_all(&plain[..], 3).unwrap()).unwrap();
    for p in [&gz, &zst] {
        let r = Resolved::open(&archive_ref(p, Some("busybox:1"))).unwrap();
        assert_eq!(verify_layers(&r).unwrap().len(), 2);
    }
    let xz = t.0.join("legacy.tar.xz");
    std::fs::write(&xz, [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0]).unwrap();
    assert_eq!(
        kind(&Resolved::open(&archive_ref(&xz, None))),
        ImageErrorKind::Unsupported
    );
    // A truncated gzip archive.
    let cut = gzip(&plain);
    std::fs::write(&gz, &cut[..cut.len() / 2]).unwrap();
    assert_eq!(
        kind(&Resolved::open(&archive_ref(&gz, None))),
        ImageErrorKind::Malformed
    );
    // A broken header checksum.
    let mut bytes = std::fs::read(&good).unwrap();
    bytes[0] ^= 1;
    let bad = t.0.join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let e = Resolved::open(&archive_ref(&bad, None));
    assert_eq!(kind(&e), ImageErrorKind::Malformed);
    assert!(msg(e).contains("checksum"));
    // A GNU long name of 1 GB from a small file: refused before allocating.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(1 << 30);
    h.set_cksum();
    let mut v = h.as_bytes().to_vec();
    v.resize(512 + (1 << 20), 0);
    let lf = t.0.join("long.tar");
    std::fs::write(&lf, &v).unwrap();
    assert_eq!(
        kind(&Resolved::open(&archive_ref(&lf, None))),
        ImageErrorKind::Malformed
    );
}

// --- Images made by umoci and skopeo --------------------------------------------------------

/// A two-layer umoci layout (busybox, then a file), tagged `t` and `t2`, plus another image
/// `other`.
fn umoci_layout(t: &TempDir) -> PathBuf {
    let layout = t.0.join("layout");
    let src = t.0.join("hello");
    std::fs::write(&src, b"hello\n").unwrap();
    let image = |tag: &str| format!("{}:{tag}", layout.display());
    sh(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    sh(Command::new("umoci").args(["new", "--image", &image("t")]));
    sh(Command::new("umoci").args([
        "insert",
        "--image",
        &image("t"),
        "/bin/busybox",
        "/bin/busybox",
    ]));
    sh(Command::new("umoci")
        .args(["insert", "--image", &image("t")])
        .arg(&src)
        .arg("/etc/hello"));
    sh(Command::new("umoci").args(["tag", "--image", &image("t"), "t2"]));
    sh(Command::new("umoci").args(["new", "--image", &image("other")]));
    layout
}

#[test]
fn umoci_layouts() {
    if !tool("umoci", "umoci_layouts") || !Path::new("/bin/busybox").is_file() {
        return;
    }
    let t = TempDir::new("umoci");
    let layout = umoci_layout(&t);
    let r = Resolved::open(&ImageRef::parse(&format!("{}:t", layout.display())).unwrap()).unwrap();
    assert_eq!(r.layers.len(), 2);
    let v = verify_layers(&r).unwrap();
    assert!(v.iter().all(|(_, _, c)| *c == Compression::Gzip));
    let r2 = Resolved::open(&ImageRef::Layout {
        dir: layout.clone(),
        tag: Some("t2".into()),
    })
    .unwrap();
    assert_eq!(r2.config_digest(), r.config_digest());
    let e = Resolved::open(&ImageRef::Layout {
        dir: layout.clone(),
        tag: None,
    });
    assert_eq!(kind(&e), ImageErrorKind::Ambiguous);
    let e = Resolved::open(&ImageRef::Layout {
        dir: layout,
        tag: Some("nope".into()),
    });
    assert_eq!(kind(&e), ImageErrorKind::NotFound);
    let m = msg(e);
    assert!(m.contains("t, t2, other"), "{m}");
}

#[test]
fn skopeo_archives() {
    if !tool("umoci", "skopeo_archives")
        || !tool("skopeo", "skopeo_archives")
        || !Path::new("/bin/busybox").is_file()
    {
        return;
    }
    let t = TempDir::new("skopeo");
    let layout = umoci_layout(&t);
    let oci_archive = t.0.join("oci.tar");
    let docker_archive = t.0.join("docker.tar");
    let src = format!("oci:{}:t", layout.display());
    sh(Command::new("skopeo")
        .args(["--insecure-policy", "copy", &src])
        .arg(format!("oci-archive:{}:t", oci_archive.display())));
    sh(Command::new("skopeo")
        .args(["--insecure-policy", "copy", &src])
        .arg(format!(
            "docker-archive:{}:busybox:latest",
            docker_archive.display()
        )));
    let from_layout = Resolved::open(&ImageRef::Layout {
        dir: layout,
        tag: Some("t".into()),
    })
    .unwrap();
    let diff_ids: Vec<Digest> = from_layout
        .layers
        .iter()
        .map(|l| l.expected.diff_id.clone())
        .collect();

    let r = Resolved::open(
        &ImageRef::parse(&format!("oci-archive:{}:t", oci_archive.display())).unwrap(),
    )
    .unwrap();
    assert!(!r.needs_manifest());
    assert_eq!(r.name.as_deref(), Some("t"));
    verify_layers(&r).unwrap();
    let r = Resolved::open(&ImageRef::parse(oci_archive.to_str().unwrap()).unwrap()).unwrap();
    verify_layers(&r).unwrap();

    for tag in [None, Some("busybox:latest"), Some("busybox")] {
        let r = Resolved::open(&archive_ref(&docker_archive, tag)).unwrap();
        assert!(r.needs_manifest());
        assert_eq!(r.name.as_deref(), Some("docker.io/library/busybox:latest"));
        let got: Vec<Digest> = r
            .layers
            .iter()
            .map(|l| l.expected.diff_id.clone())
            .collect();
        assert_eq!(got, diff_ids);
        let v = verify_layers(&r).unwrap();
        // skopeo stores layers uncompressed: digest = diff_id.
        assert!(v
            .iter()
            .zip(&diff_ids)
            .all(|((d, _, c), id)| d == id && *c == Compression::None));
    }
}

#[test]
fn layers_read_concurrently() {
    let t = TempDir::new("concurrent");
    let p = legacy_archive(&t.0, None);
    let r = Resolved::open(&archive_ref(&p, None)).unwrap();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..r.layers.len())
            .map(|i| {
                let r = &r;
                s.spawn(move || {
                    let l = &r.layers[i];
                    LayerStream::new(r.open_layer(i).unwrap(), l.expected.clone(), None)
                        .unwrap()
                        .finish()
                        .unwrap()
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// buildah builds from a umoci base offline (COPY, ENV, an exec-form RUN) and pushes the
/// result to a layout and a docker archive; both resolve and verify.
#[test]
fn buildah_image() {
    let test = "buildah_image";
    if !tool("umoci", test) || !tool("buildah", test) || !Path::new("/bin/busybox").is_file() {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: {test}: needs root (buildah storage in a temporary directory)");
        return;
    }
    let t = TempDir::new("buildah");
    let layout = umoci_layout(&t);
    let ctx = t.0.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("hello"), b"hello\n").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM oci:{}:t\nCOPY hello /etc/hello\nENV A=b\nRUN [\"/bin/busybox\", \"mkdir\", \"/made\"]\n",
            layout.display()
        ),
    )
    .unwrap();
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(t.0.join("storage"))
            .arg("--runroot")
            .arg(t.0.join("run"))
            .args(["--storage-driver", "vfs"]);
        c
    };
    sh(buildah()
        .args(["bud", "--pull-never", "--isolation", "chroot", "-f"])
        .arg(ctx.join("Containerfile"))
        .args(["-t", "localhost/app:1"])
        .arg(&ctx));
    let out = t.0.join("out");
    let archive = t.0.join("app.tar");
    sh(buildah()
        .args(["push", "localhost/app:1"])
        .arg(format!("oci:{}:app", out.display())));
    sh(buildah()
        .args(["push", "localhost/app:1"])
        .arg(format!("docker-archive:{}:app:1", archive.display())));
    let base = Resolved::open(&ImageRef::Layout {
        dir: layout,
        tag: Some("t".into()),
    })
    .unwrap();
    for r in [
        ImageRef::Layout {
            dir: out,
            tag: Some("app".into()),
        },
        ImageRef::Archive {
            path: archive,
            tag: Some("app:1".into()),
        },
    ] {
        let img = Resolved::open(&r).unwrap();
        let env = img
            .config_parsed
            .config()
            .as_ref()
            .and_then(|c| c.env().clone())
            .unwrap_or_default();
        assert!(env.iter().any(|e| e == "A=b"), "{r}: {env:?}");
        assert!(img.layers.len() > base.layers.len(), "{r}");
        // The base's layers are the new image's bottom layers.
        for (a, b) in base.layers.iter().zip(&img.layers) {
            assert_eq!(a.expected.diff_id, b.expected.diff_id, "{r}");
        }
        verify_layers(&img).unwrap();
    }
}

#[test]
fn shareable_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Resolved>();
    send::<LayerStream<'static>>();
}
