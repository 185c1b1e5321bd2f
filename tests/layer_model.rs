//! Property (as root): for random stacks of layers — files, directories, whiteouts and
//! opaque directories, over each other's names in every combination — each layer's tar
//! applied with `image::unpack::unpack` (`Apply::Layer`) into its own directory and the stack
//! mounted as an overlay, the merged view equals a reference model of the final tree built
//! from the OCI image spec's rules (layer.md, "Changesets" and "Whiteouts"): a whiteout
//! hides the name and everything below it in the layers below; an opaque directory hides
//! what the layers below hold in it; a name added replaces what was below, except that a
//! directory over a directory merges with it; a file or whiteout below a name that was a
//! file makes that name a directory.
//!
//! Within one layer each name is used once and no two operations' names contain one another
//! (a layer's own conflicts are tested in image_unpack.rs); across layers anything goes.

mod common;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use common::TempDir;
use contain::image::unpack::{unpack, Apply, UnpackOptions};
use contain::image::OverlayFlavour;
use contain::mount::{self, Mount};
use contain::namespace::{self, Namespaces};
use proptest::prelude::*;

/// One change a layer makes.
#[derive(Debug, Clone)]
enum Op {
    File(String, u8),
    Dir(String),
    Whiteout(String),
    Opaque(String),
}

impl Op {
    fn path(&self) -> &str {
        match self {
            Op::File(p, _) | Op::Dir(p) | Op::Whiteout(p) | Op::Opaque(p) => p,
        }
    }
}

/// What the merged view holds at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Dir,
    /// Anything else in the merged view (a whiteout device that should not show).
    Other(String),
}

type Tree = BTreeMap<String, Node>;

fn content(byte: u8) -> Vec<u8> {
    format!("content {byte}\n").into_bytes()
}

fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Removes `path` and everything below it.
fn remove_tree(tree: &mut Tree, path: &str) {
    let below = format!("{path}/");
    tree.retain(|p, _| p != path && !p.starts_with(&below));
}

/// Makes every parent of `path` a directory (a file in the way is replaced).
fn ensure_parents(tree: &mut Tree, path: &str) {
    for parent in parents(path) {
        if tree.get(parent) != Some(&Node::Dir) {
            remove_tree(tree, parent);
            tree.insert(parent.to_string(), Node::Dir);
        }
    }
}

/// The reference: `layers` (bottom first) applied one over another.
fn model(layers: &[Vec<Op>]) -> Tree {
    let mut tree = Tree::new();
    for layer in layers {
        // What this layer hides of the ones below, then what it adds.
        for op in layer {
            match op {
                Op::Whiteout(p) => {
                    ensure_parents(&mut tree, p);
                    remove_tree(&mut tree, p);
                }
                Op::Opaque(d) => {
                    ensure_parents(&mut tree, d);
                    remove_tree(&mut tree, d);
                    tree.insert(d.clone(), Node::Dir);
                }
                _ => {}
            }
        }
        for op in layer {
            match op {
                Op::File(p, c) => {
                    ensure_parents(&mut tree, p);
                    remove_tree(&mut tree, p);
                    tree.insert(p.clone(), Node::File(content(*c)));
                }
                Op::Dir(p) => {
                    ensure_parents(&mut tree, p);
                    if tree.get(p) != Some(&Node::Dir) {
                        remove_tree(&mut tree, p);
                        tree.insert(p.clone(), Node::Dir);
                    }
                }
                _ => {}
            }
        }
    }
    tree
}

/// The layer's tar, as an image tool writes it (whiteouts as `.wh.` files).
fn tar_of(layer: &[Op]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for op in layer {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (path, data): (String, Vec<u8>) = match op {
            Op::File(p, c) => (p.clone(), content(*c)),
            Op::Dir(p) => (format!("{p}/"), Vec::new()),
            Op::Whiteout(p) => match p.rsplit_once('/') {
                Some((dir, name)) => (format!("{dir}/.wh.{name}"), Vec::new()),
                None => (format!(".wh.{p}"), Vec::new()),
            },
            Op::Opaque(d) => (format!("{d}/.wh..wh..opq"), Vec::new()),
        };
        if matches!(op, Op::Dir(_)) {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
        }
        h.set_size(data.len() as u64);
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// The merged view under `root`, as lookups see it, and the names that readdir lists but a
/// lookup does not find.
///
/// The second list is overlayfs' doing: a directory that only one layer has is not merged,
/// and the kernel lists it as that layer has it, whiteouts included, while a lookup of a
/// whiteout's name still says ENOENT. A whiteout shows so only where it hides nothing (had
/// a layer below the name's directory, the directory would be merged and the whiteout
/// filtered), so what the container can open is what the spec says.
fn view(root: &Path) -> (Tree, Vec<String>) {
    fn walk(root: &Path, rel: &str, out: &mut Tree, listed_only: &mut Vec<String>) {
        for e in std::fs::read_dir(root.join(rel)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = match std::fs::symlink_metadata(e.path()) {
                Ok(m) => m,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    listed_only.push(path);
                    continue;
                }
                Err(err) => panic!("{path}: {err}"),
            };
            let t = meta.file_type();
            if t.is_dir() {
                out.insert(path.clone(), Node::Dir);
                walk(root, &path, out, listed_only);
            } else if t.is_file() {
                out.insert(path.clone(), Node::File(std::fs::read(e.path()).unwrap()));
            } else {
                out.insert(path, Node::Other(format!("{t:?}")));
            }
        }
    }
    let (mut out, mut listed_only) = (Tree::new(), Vec::new());
    walk(root, "", &mut out, &mut listed_only);
    (out, listed_only)
}

/// Unpacks each layer (bottom first) into its own directory under `dir`, mounts the stack
/// on `dir/merged` in a mount namespace of a thread of its own, and returns the view.
fn overlay_view(dir: &Path, layers: &[Vec<Op>]) -> (Tree, Vec<String>) {
    // An empty layer at the bottom: an overlay without an upper layer needs two lowers.
    let base = dir.join("base");
    std::fs::create_dir(&base).unwrap();
    let mut layer_dirs: Vec<PathBuf> = vec![base];
    for (i, layer) in layers.iter().enumerate() {
        let d = dir.join(format!("layer{i}"));
        std::fs::create_dir(&d).unwrap();
        let below = layer_dirs.clone();
        let mut lowers = move || -> contain::Result<Vec<OwnedFd>> {
            Ok(below
                .iter()
                .rev()
                .map(|p| OwnedFd::from(std::fs::File::open(p).unwrap()))
                .collect())
        };
        let fd = std::fs::File::open(&d).unwrap();
        let options = UnpackOptions {
            apply: Apply::Layer(OverlayFlavour::Trusted),
            chown: true,
        };
        unpack(&mut &tar_of(layer)[..], fd.as_fd(), &mut lowers, options)
            .unwrap_or_else(|e| panic!("layer {i} {layer:?}: {e}"));
        layer_dirs.push(d);
    }
    let merged = dir.join("merged");
    std::fs::create_dir(&merged).unwrap();
    let top_first: Vec<PathBuf> = layer_dirs.iter().rev().cloned().collect();
    std::thread::spawn(move || {
        namespace::unshare(Namespaces::MOUNT).unwrap();
        mount::make_rprivate("/").unwrap();
        Mount::overlay_read_only(top_first, &merged)
            .mount()
            .unwrap();
        let v = view(&merged);
        mount::detach(&merged).unwrap();
        v
    })
    .join()
    .unwrap()
}

fn name() -> impl Strategy<Value = String> {
    // Few names, so that layers meet on them.
    proptest::collection::vec(prop_oneof!["a", "b", "c"], 1..=3).prop_map(|v| v.join("/"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (name(), any::<u8>()).prop_map(|(p, c)| Op::File(p, c)),
        2 => name().prop_map(Op::Dir),
        2 => name().prop_map(Op::Whiteout),
        1 => name().prop_map(Op::Opaque),
    ]
}

/// A layer: operations whose names neither repeat nor contain one another.
fn layer() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..6).prop_map(|ops| {
        let mut kept: Vec<Op> = Vec::new();
        for op in ops {
            let p = op.path();
            let clash = kept.iter().any(|k| {
                let q = k.path();
                p == q || p.starts_with(&format!("{q}/")) || q.starts_with(&format!("{p}/"))
            });
            if !clash {
                kept.push(op);
            }
        }
        kept
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_overlay_of_random_layers_shows_what_the_spec_says(
        layers in proptest::collection::vec(layer(), 1..5)
    ) {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (overlay mounts, trusted.* xattrs)");
            return Ok(());
        }
        let dir = TempDir::new("layer-model");
        let (got, listed_only) = overlay_view(dir.path(), &layers);
        let want = model(&layers);
        prop_assert_eq!(got, want, "layers (bottom first): {:?}", layers);
        // Listed but not found: only names a whiteout of some layer hides (see `view`).
        for path in &listed_only {
            let whited_out = layers
                .iter()
                .flatten()
                .any(|op| matches!(op, Op::Whiteout(p) if p == path));
            prop_assert!(whited_out, "{} is listed but not found: {:?}", path, layers);
        }
    }
}
