//! The image store end to end: images made by umoci and skopeo imported, run, cached, named,
//! removed and collected; a killed import; a hostile layer; concurrent imports. Needs root
//! (umoci unpack keeps owners) and umoci/skopeo (skipped, with a message, without them).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::oci::{sh, tool, Layout};
use common::TempDir;
use contain::image::{ImageCommand, ImageRef, Progress, Store};
use contain::namespace::Namespaces;
use contain::{Error, ImageErrorKind};

/// A store in a temporary directory.
fn store(tag: &str) -> (TempDir, Store) {
    let dir = TempDir::new(tag);
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// The layers an import reported as unpacked (not cached), by index.
fn import_counting(
    store: &Store,
    r: &ImageRef,
    name: Option<&str>,
) -> (contain::image::Image, Vec<usize>) {
    let unpacked = Mutex::new(Vec::new());
    let image = store
        .import_with(r, name, &|p| {
            if let Progress::LayerDone {
                index,
                cached: false,
                ..
            } = p
            {
                unpacked.lock().unwrap().push(*index);
            }
        })
        .unwrap();
    let mut v = unpacked.into_inner().unwrap();
    v.sort();
    (image, v)
}

fn run_in(image: &contain::image::Image, cmd: ImageCommand) -> (i32, String, String) {
    let c = image
        .container(&cmd)
        .unwrap()
        .namespaces(Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC);
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp_entries(store: &Store) -> Vec<String> {
    std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn umoci_layout_imports_runs_and_a_second_import_unpacks_nothing() {
    let t = "umoci_layout_imports_runs_and_a_second_import_unpacks_nothing";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-umoci");
    let (_d, store) = store("store-umoci-s");
    let (image, unpacked) = import_counting(&store, &layout.reference("app"), Some("app:1"));
    assert_eq!(image.layers().len(), 2);
    assert_eq!(unpacked, vec![0, 1]);
    assert_eq!(image.names(), ["app:1".to_owned()]);
    // The whiteout of the second layer hides the first layer's /etc/image.
    let (code, out, err) = run_in(
        &image,
        ImageCommand {
            entrypoint: Some(vec!["/bin/sh".into()]),
            args: vec![
                "-c".into(),
                "cat /etc/app; test -e /etc/image || echo gone".into(),
            ],
        },
    );
    assert_eq!((code, out.as_str()), (0, "app layer\ngone\n"), "{err}");

    let (again, unpacked) = import_counting(&store, &layout.reference("app"), None);
    assert_eq!(again.id(), image.id());
    assert!(
        unpacked.is_empty(),
        "second import unpacked layers {unpacked:?}"
    );
    assert!(tmp_entries(&store).is_empty(), "{:?}", tmp_entries(&store));
    // The stored image by name is the same.
    assert_eq!(store.image("app:1").unwrap().id(), image.id());
}

#[test]
fn an_image_sharing_a_layer_unpacks_only_its_own() {
    let t = "an_image_sharing_a_layer_unpacks_only_its_own";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-share");
    let (_d, store) = store("store-share-s");
    let (base, unpacked) = import_counting(&store, &layout.reference("base"), Some("base"));
    assert_eq!(unpacked, vec![0]);
    let (app, unpacked) = import_counting(&store, &layout.reference("app"), Some("app"));
    assert_eq!(unpacked, vec![1], "the base layer was unpacked again");
    assert_eq!(app.layers()[0].chain_id, base.layers()[0].chain_id);
    assert_eq!(app.layers()[0].dir, base.layers()[0].dir);
}

#[test]
fn the_image_config_drives_the_container_as_docker_run() {
    let t = "the_image_config_drives_the_container_as_docker_run";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-config");
    let (_d, store) = store("store-config-s");
    let image = store.import(&layout.reference("app"), None).unwrap();
    // Entrypoint + Cmd, Env, WorkingDir, User.
    let (code, out, err) = run_in(&image, ImageCommand::default());
    assert_eq!(
        (code, out.as_str()),
        (0, "cmd hello\n/work\n65534\n"),
        "{err}"
    );
    // Arguments replace Cmd and keep the Entrypoint (`sh -c ARG`).
    let (code, out, _) = run_in(&image, ImageCommand::args(["echo args $GREETING"]));
    assert_eq!((code, out.as_str()), (0, "args hello\n"));
    // The base image has neither: no command.
    let base = store.import(&layout.reference("base"), None).unwrap();
    let err = base.container(&ImageCommand::default()).unwrap_err();
    assert!(err.to_string().contains("no command specified"), "{err}");
    assert_eq!(image.stop_signal().unwrap(), contain::Signal::SIGTERM);
}

#[test]
fn skopeo_archives_import_with_their_names() {
    let t = "skopeo_archives_import_with_their_names";
    if !common::is_root(t) || !tool(t, "umoci") || !tool(t, "skopeo") {
        return;
    }
    let layout = Layout::new("store-skopeo");
    let (d, store) = store("store-skopeo-s");
    let oci_archive = d.path().join("app-oci.tar");
    let docker_archive = d.path().join("app-docker.tar");
    let src = format!("oci:{}:app", layout.path().display());
    sh(Command::new("skopeo").args([
        "copy",
        &src,
        &format!("oci-archive:{}:app", oci_archive.display()),
    ]));
    sh(Command::new("skopeo").args([
        "copy",
        &src,
        &format!(
            "docker-archive:{}:example.org/app:v2",
            docker_archive.display()
        ),
    ]));
    let from_oci = store
        .import(
            &oci_archive.display().to_string().parse().unwrap(),
            Some("from-oci:1"),
        )
        .unwrap();
    let from_docker = store
        .import(&docker_archive.display().to_string().parse().unwrap(), None)
        .unwrap();
    // docker-save has the name in RepoTags; the config is the same, so it is the same image
    // with both names.
    assert_eq!(from_docker.id(), from_oci.id());
    assert_eq!(
        from_docker.names(),
        ["example.org/app:v2".to_owned(), "from-oci:1".to_owned()]
    );
    // The same layers (docker-archive's are uncompressed: same diff_ids, same chain ids).
    let chains = |i: &contain::image::Image| {
        i.layers()
            .iter()
            .map(|l| l.chain_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(chains(&from_oci), chains(&from_docker));
    let (code, out, err) = run_in(&from_docker, ImageCommand::default());
    assert_eq!(
        (code, out.as_str()),
        (0, "cmd hello\n/work\n65534\n"),
        "{err}"
    );
}

#[test]
fn remove_untags_then_deletes_and_gc_collects_unused_layers() {
    let t = "remove_untags_then_deletes_and_gc_collects_unused_layers";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-gc");
    let (_d, store) = store("store-gc-s");
    let base = store
        .import(&layout.reference("base"), Some("base"))
        .unwrap();
    let app = store
        .import(&layout.reference("app"), Some("app:1"))
        .unwrap();
    store.tag(&app, "app:2").unwrap();
    assert_eq!(store.images().unwrap().len(), 2);
    // Untag one name: the image stays.
    assert!(store.remove("app:1").unwrap().is_empty());
    assert_eq!(store.image("app:2").unwrap().id(), app.id());
    let err = store.image("app:1").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Image {
                kind: ImageErrorKind::NotFound,
                ..
            }
        ),
        "{err}"
    );
    // gc keeps what images use.
    let r = store.gc().unwrap();
    assert_eq!((r.layers, r.blobs), (0, 0), "{r:?}");
    // The last name: the image goes; gc then removes its own layer and blobs, not the base's.
    assert_eq!(store.remove("app:2").unwrap(), vec![app.id().clone()]);
    let r = store.gc().unwrap();
    assert_eq!(r.layers, 1, "{r:?}");
    assert!(r.blobs >= 3, "layer, manifest and config blobs: {r:?}");
    assert!(!app.layers()[1].dir.exists());
    assert!(base.layers()[0].dir.is_dir());
    // By id prefix.
    let short = &base.id().digest()[..12];
    assert_eq!(store.remove(short).unwrap(), vec![base.id().clone()]);
    assert!(store.images().unwrap().is_empty());
    assert_eq!(store.gc().unwrap().layers, 1);
}

/// The role of a re-executed test binary: import, and stop (blocked) after the first bytes
/// of a layer were read, telling the parent on stdout.
fn slow_import_role() {
    let layout = std::env::var("CONTAIN_TEST_LAYOUT").unwrap();
    let store = Store::open(std::env::var("CONTAIN_TEST_STORE").unwrap()).unwrap();
    let told = Mutex::new(false);
    let _ = store.import_with(&layout.parse().unwrap(), None, &|p| {
        if let Progress::Layer { .. } = p {
            {
                let mut t = told.lock().unwrap();
                if !*t {
                    *t = true;
                    println!("reading");
                    std::io::stdout().flush().unwrap();
                }
            }
            // Every layer thread waits here to be killed (stdin never gets data).
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
    });
}

#[test]
fn a_killed_import_leaves_no_partial_layer_and_the_next_one_succeeds() {
    if std::env::var("CONTAIN_TEST_ROLE").as_deref() == Ok("slow-import") {
        return slow_import_role();
    }
    let t = "a_killed_import_leaves_no_partial_layer_and_the_next_one_succeeds";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-kill");
    let (_d, store) = store("store-kill-s");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([t, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONTAIN_TEST_ROLE", "slow-import")
        .env(
            "CONTAIN_TEST_LAYOUT",
            format!("{}:app", layout.path().display()),
        )
        .env("CONTAIN_TEST_STORE", store.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("reading") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the import ended early"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Something is half-done in tmp/, and no layer is committed.
    assert!(!tmp_entries(&store).is_empty());
    let committed = |s: &Store| {
        std::fs::read_dir(s.root().join("layers/overlay"))
            .unwrap()
            .count()
    };
    assert_eq!(committed(&store), 0);
    // The next open removes the leftovers; the import succeeds and runs.
    let store = Store::open(store.root()).unwrap();
    assert!(tmp_entries(&store).is_empty(), "{:?}", tmp_entries(&store));
    let (image, unpacked) = import_counting(&store, &layout.reference("app"), None);
    assert_eq!(unpacked, vec![0, 1]);
    let (code, out, err) = run_in(&image, ImageCommand::default());
    assert_eq!(
        (code, out.as_str()),
        (0, "cmd hello\n/work\n65534\n"),
        "{err}"
    );
}

/// A tar with a good file, then an entry named `name` (bypassing the tar crate's checks).
fn tar_with_entry(name: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "ok", &b"ok\n"[..]).unwrap();
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(5);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b"evil\n"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn a_hostile_layer_fails_the_import_naming_the_entry_and_leaves_nothing() {
    let t = "a_hostile_layer_fails_the_import_naming_the_entry_and_leaves_nothing";
    if !common::is_root(t) {
        return;
    }
    let (d, store) = store("store-hostile");
    let canary = d.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    let depth = "../".repeat(16);
    let name = format!(
        "{depth}{}",
        canary
            .join("evil")
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    let layout = common::oci::one_layer_layout(
        d.path(),
        "hand",
        &tar_with_entry(name.as_bytes()),
        Some("evil"),
    );
    let err = store
        .import(&format!("{}:evil", layout.display()).parse().unwrap(), None)
        .unwrap_err();
    match &err {
        Error::Image {
            kind: ImageErrorKind::UnsafeEntry,
            object,
            entry: Some(entry),
            ..
        } => {
            assert!(object.starts_with("layer sha256:"), "{err}");
            assert!(entry.to_string_lossy().contains("evil"), "{err}");
        }
        e => panic!("expected an UnsafeEntry error, got {e:?}"),
    }
    assert!(!canary.join("evil").exists());
    assert_eq!(
        std::fs::read_dir(store.root().join("layers/overlay"))
            .unwrap()
            .count(),
        0
    );
    assert!(tmp_entries(&store).is_empty(), "{:?}", tmp_entries(&store));
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn concurrent_imports_of_images_sharing_a_layer_both_succeed() {
    let t = "concurrent_imports_of_images_sharing_a_layer_both_succeed";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-conc");
    let (_d, store) = store("store-conc-s");
    let unpacked = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for tag in ["app", "base", "app"] {
            let (store, layout, unpacked) = (&store, &layout, &unpacked);
            s.spawn(move || {
                let (_, u) = import_counting(store, &layout.reference(tag), None);
                unpacked.lock().unwrap().push(u);
            });
        }
    });
    // Each layer was unpacked exactly once among the three imports.
    let all: Vec<usize> = unpacked
        .into_inner()
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(all.iter().filter(|&&i| i == 0).count(), 1, "{all:?}");
    assert_eq!(all.iter().filter(|&&i| i == 1).count(), 1, "{all:?}");
    assert!(tmp_entries(&store).is_empty());
}

#[test]
fn the_run_and_images_examples_import_list_run_and_remove() {
    let t = "the_run_and_images_examples_import_list_run_and_remove";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-cli");
    let (_d, store) = store("store-cli-s");
    let exe = std::env::current_exe().unwrap();
    let images = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/images");
    assert!(images.exists(), "build it: cargo build --example images");
    let s = store.root().to_str().unwrap();
    let img = |args: &[&str]| {
        let o = Command::new(&images)
            .arg("--store")
            .arg(s)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "images {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let id = img(&[
        "import",
        &format!("{}:app", layout.path().display()),
        "cli:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let inspect: serde_json::Value = serde_json::from_str(&img(&["inspect", "cli:1"])).unwrap();
    assert_eq!(inspect["Id"], id.trim());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["Config"]["config"]["WorkingDir"], "/work");
    let ls = img(&["ls"]);
    assert!(
        ls.contains("cli:1") && ls.contains(&id.trim()[7..19]),
        "{ls}"
    );
    // run --image by name, with args replacing Cmd, and with --entrypoint.
    let o = common::run::run(&[
        "--store",
        s,
        "--image",
        "cli:1",
        "--",
        "echo $GREETING from $(pwd)",
    ]);
    assert_eq!(
        common::run::code(&o),
        0,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from /work\n");
    let o = common::run::run(&[
        "--store",
        s,
        "--image",
        "cli:1",
        "--entrypoint",
        "/bin/cat",
        "--",
        "/etc/app",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "app layer\n");
    // run --image straight from the layout imports it.
    let o = common::run::run(&[
        "--store",
        s,
        "--image",
        &format!("{}:base", layout.path().display()),
        "--",
        "cat",
        "/etc/image",
    ]);
    assert_eq!(
        common::run::code(&o),
        0,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("image store-cli"));
    let rm = img(&["rm", "cli:1"]);
    assert!(rm.contains("Deleted: sha256:"), "{rm}");
    let gc = img(&["gc"]);
    assert!(gc.contains("removed 1 layers"), "{gc}");
    let _ = std::fs::set_permissions(store.root(), std::fs::Permissions::from_mode(0o700));
}

/// The merged tree of an imported image, mounted read-only with the kernel's overlay.
fn mounted(image: &contain::image::Image, at: &Path) -> Mounted {
    let lowers: Vec<String> = image
        .layers()
        .iter()
        .rev()
        .map(|l| l.dir.display().to_string())
        .collect();
    std::fs::create_dir_all(at).unwrap();
    let opts = if lowers.len() == 1 {
        // One layer: a read-only bind of it (an overlay needs two lowers without an upper).
        sh(Command::new("mount")
            .args(["--bind", "-o", "ro", &lowers[0]])
            .arg(at));
        return Mounted(at.to_path_buf());
    } else {
        format!(
            "lowerdir={},index=off,redirect_dir=nofollow",
            lowers.join(":")
        )
    };
    sh(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(at));
    Mounted(at.to_path_buf())
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn the_imported_tree_equals_what_umoci_unpack_gives() {
    let t = "the_imported_tree_equals_what_umoci_unpack_gives";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-tree");
    let (d, store) = store("store-tree-s");
    // Two layers, one of them an `umoci insert` layer (no tar end blocks in 0.4.7).
    let l = layout.path().display().to_string();
    let extra = d.path().join("extra");
    std::fs::create_dir_all(extra.join("deep/er")).unwrap();
    std::fs::write(extra.join("deep/er/file"), "inserted\n").unwrap();
    sh(Command::new("umoci")
        .args(["insert", "--image", &format!("{l}:app"), "--tag", "ins"])
        .arg(&extra)
        .arg("/opt"));
    let image = store.import(&layout.reference("ins"), None).unwrap();
    assert_eq!(image.layers().len(), 3);
    let bundle = d.path().join("bundle");
    sh(Command::new("umoci")
        .args(["unpack", "--image", &format!("{l}:ins")])
        .arg(&bundle));
    let ours = mounted(&image, &d.path().join("merged"));
    let diff = common::oci::tree_diff(
        &common::oci::tree(&bundle.join("rootfs")),
        &common::oci::tree(&ours.0),
    );
    assert!(diff.is_empty(), "trees differ:\n{}", diff.join("\n"));
    assert_eq!(
        std::fs::read_to_string(ours.0.join("opt/deep/er/file")).unwrap(),
        "inserted\n"
    );
}

#[test]
fn a_stack_deeper_than_allowed_runs_with_its_bottom_layers_flattened() {
    let t = "a_stack_deeper_than_allowed_runs_with_its_bottom_layers_flattened";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("store-flat");
    let (d, store) = store("store-flat-s");
    let l = layout.path().display().to_string();
    let extra = d.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("top"), "top layer\n").unwrap();
    sh(Command::new("umoci")
        .args(["insert", "--image", &format!("{l}:app"), "--tag", "three"])
        .arg(&extra)
        .arg("/top"));
    let image = store.import(&layout.reference("three"), None).unwrap();
    assert_eq!(image.layers().len(), 3);
    // At most 2 lowers: layers 1 and 2 flattened into one directory, layer 3 on top.
    let rootfs = image.rootfs_with_lowers(2).unwrap();
    assert_eq!(rootfs.layers().len(), 2);
    let flat = rootfs.layers()[0].clone();
    assert!(
        flat.starts_with(store.root().join("flat")),
        "{}",
        flat.display()
    );
    assert_eq!(
        flat.file_name().unwrap().to_str().unwrap(),
        image.layers()[1].chain_id.digest(),
        "keyed by the chain id of the top layer flattened"
    );
    // The flattened copy applied layer 2's whiteout: /etc/image is gone, not a char device.
    assert!(std::fs::symlink_metadata(flat.join("etc/image")).is_err());
    assert_eq!(
        std::fs::read_to_string(flat.join("etc/app")).unwrap(),
        "app layer\n"
    );
    let out = contain::process::Container::new("/bin/sh")
        .args([
            "-c",
            "cat /etc/app /top/top; test -e /etc/image || echo gone",
        ])
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .rootfs(rootfs)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "app layer\ntop layer\ngone\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Built once: a second call reuses the directory; gc keeps it while the image lives.
    let again = image.rootfs_with_lowers(2).unwrap();
    assert_eq!(again.layers()[0], flat);
    assert_eq!(store.gc().unwrap().flattened, 0);
    store.remove(image.id().as_ref()).unwrap();
    assert_eq!(store.gc().unwrap().flattened, 1);
    assert!(!flat.exists());
}

#[test]
fn a_buildah_image_imports_runs_and_equals_umoci_unpack() {
    let t = "a_buildah_image_imports_runs_and_equals_umoci_unpack";
    if !common::is_root(t) || !tool(t, "umoci") || !tool(t, "buildah") {
        return;
    }
    let layout = Layout::new("store-buildah");
    let (d, store) = store("store-buildah-s");
    let ctx = d.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello"), "hello from buildah\n").unwrap();
    // Built offline from the local base, as a user of buildah would: a COPY, a RUN that
    // deletes a base file (a whiteout) and makes a directory, an ENV and a CMD.
    std::fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM oci:{}:base\nCOPY hello /etc/hello\nENV B=uildah\n\
             RUN rm /etc/image && mkdir /made\nCMD [\"/bin/sh\", \"-c\", \"cat /etc/hello; echo b$B\"]\n",
            layout.path().display()
        ),
    )
    .unwrap();
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(d.path().join("storage"))
            .arg("--runroot")
            .arg(d.path().join("run"))
            .args(["--storage-driver", "vfs"]);
        c
    };
    sh(buildah()
        .args(["bud", "--pull-never", "--isolation", "chroot", "-f"])
        .arg(ctx.join("Containerfile"))
        .args(["-t", "localhost/bapp:1"])
        .arg(&ctx));
    let out = d.path().join("out");
    sh(buildah()
        .args(["push", "localhost/bapp:1"])
        .arg(format!("oci:{}:bapp", out.display())));
    let image = store
        .import(
            &format!("{}:bapp", out.display()).parse().unwrap(),
            Some("bapp:1"),
        )
        .unwrap();
    assert!(image.layers().len() >= 2);
    let (code, stdout, err) = run_in(&image, ImageCommand::default());
    assert_eq!(
        (code, stdout.as_str()),
        (0, "hello from buildah\nbuildah\n"),
        "{err}"
    );
    // The tree is what umoci unpacks from the same layout.
    let bundle = d.path().join("bundle");
    sh(Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:bapp", out.display())])
        .arg(&bundle));
    let ours = mounted(&image, &d.path().join("merged"));
    let diff = common::oci::tree_diff(
        &common::oci::tree(&bundle.join("rootfs")),
        &common::oci::tree(&ours.0),
    );
    assert!(diff.is_empty(), "trees differ:\n{}", diff.join("\n"));
    // buildah's storage: its files are root's in a temporary directory that TempDir removes;
    // vfs leaves no mounts.
}
