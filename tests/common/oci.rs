//! Images for the image tests: OCI layouts made by umoci from the busybox rootfs, and a
//! comparison of two trees.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use contain::image::ImageRef;

use super::busybox::BusyboxRootfs;
use super::TempDir;

pub fn tool(test: &str, name: &str) -> bool {
    if super::in_path(name).is_none() {
        super::skip(
            test,
            &format!("{name} is not installed (apt-get install {name})"),
        );
        return false;
    }
    true
}

pub fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OCI layout made by umoci: `base` (the busybox rootfs, one layer) and `app` (base plus
/// a layer that deletes /etc/image and adds /etc/app), `app` with an image config.
pub struct Layout {
    _busybox: BusyboxRootfs,
    dir: TempDir,
}

impl Layout {
    pub fn new(tag: &str) -> Layout {
        let busybox = BusyboxRootfs::new(tag);
        let dir = TempDir::new(&format!("{tag}-oci"));
        let layout = dir.path().join("layout");
        let l = layout.to_str().unwrap();
        sh(Command::new("umoci").args(["init", "--layout", l]));
        sh(Command::new("umoci").args(["new", "--image", &format!("{l}:empty")]));
        let b1 = dir.path().join("b1");
        sh(Command::new("umoci")
            .args(["unpack", "--image", &format!("{l}:empty")])
            .arg(&b1));
        sh(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", busybox.root().display()))
            .arg(b1.join("rootfs")));
        sh(Command::new("umoci")
            .args(["repack", "--image", &format!("{l}:base")])
            .arg(&b1));
        let b2 = dir.path().join("b2");
        sh(Command::new("umoci")
            .args(["unpack", "--image", &format!("{l}:base")])
            .arg(&b2));
        std::fs::remove_file(b2.join("rootfs/etc/image")).unwrap();
        std::fs::write(b2.join("rootfs/etc/app"), "app layer\n").unwrap();
        std::fs::create_dir(b2.join("rootfs/work")).unwrap();
        sh(Command::new("umoci")
            .args(["repack", "--image", &format!("{l}:app")])
            .arg(&b2));
        sh(Command::new("umoci").args([
            "config",
            "--image",
            &format!("{l}:app"),
            "--config.entrypoint",
            "/bin/sh",
            "--config.entrypoint",
            "-c",
            "--config.cmd",
            "echo cmd $GREETING; pwd; id -u",
            "--config.env",
            "GREETING=hello",
            "--config.workingdir",
            "/work",
            "--config.user",
            "65534",
        ]));
        for b in [b1, b2] {
            let _ = std::fs::remove_dir_all(b);
        }
        Layout {
            _busybox: busybox,
            dir,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    pub fn reference(&self, tag: &str) -> ImageRef {
        format!("{}:{tag}", self.path().display()).parse().unwrap()
    }
}

/// One entry of a tree as compared: type, mode, owner, size, content hash or link target,
/// device numbers. Times are left out (tools differ on directory times).
pub fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names {
        let r = rel.join(&n);
        let p = root.join(&r);
        let m = std::fs::symlink_metadata(&p).unwrap();
        let t = m.file_type();
        let what = if t.is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else if t.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            let sum: u64 = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
            });
            format!("file {} {sum:x}", m.len())
        } else if t.is_dir() {
            "dir".to_owned()
        } else if t.is_char_device() || t.is_block_device() {
            format!("dev {:x}", m.rdev())
        } else {
            "other".to_owned()
        };
        out.insert(
            r.clone(),
            format!(
                "{what} mode {:o} {}:{}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ),
        );
        if t.is_dir() {
            walk(root, &r, out);
        }
    }
}

/// The differences between two trees, one line each (empty when they are equal).
pub fn tree_diff(a: &BTreeMap<PathBuf, String>, b: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("only in first: {} ({v})", k.display())),
            Some(w) if w != v => out.push(format!("{}: {v} != {w}", k.display())),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            out.push(format!("only in second: {} ({v})", k.display()));
        }
    }
    out
}

/// A one-layer OCI layout at `dir/NAME`, written by hand, whose layer is `tar`
/// (uncompressed), its index entry named `tag` when given.
pub fn one_layer_layout(dir: &Path, name: &str, tar: &[u8], tag: Option<&str>) -> PathBuf {
    use sha2::{Digest as _, Sha256};
    let layout = dir.join(name);
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let h: String = Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        std::fs::write(blobs.join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let (layer, layer_size) = put(tar);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let (config, config_size) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
    );
    let (manifest, manifest_size) = put(manifest.as_bytes());
    let annotations = match tag {
        Some(t) => format!(r#","annotations":{{"org.opencontainers.image.ref.name":"{t}"}}"#),
        None => String::new(),
    };
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{manifest_size}{annotations}}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}
