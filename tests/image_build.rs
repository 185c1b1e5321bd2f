//! Building images: a Containerfile with RUN, COPY, ENV, WORKDIR, USER, CMD built on an image
//! made by umoci, run, rebuilt from the cache, made reproducible, exported and read by skopeo
//! and umoci; a failing RUN. Needs root (builds run as root) and umoci/skopeo (skipped, with
//! a message, without them).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::oci::{sh, tool, Layout};
use common::TempDir;
use contain::image::build::{BuildEvent, BuildOptions};
use contain::image::{Image, ImageCommand, Store};
use contain::namespace::Namespaces;
use contain::{Error, ImageErrorKind};

const CONTAINERFILE: &str = r#"# A small app on the busybox base.
FROM base:1
ARG GREETING=hi
ENV APP=/app
WORKDIR $APP
COPY --chown=65534:65534 files/ ./
COPY hello.txt /etc/hello
RUN echo "$GREETING" > greeting && rm /etc/image && \
    mkdir -p /var/x && echo run >> /var/x/log && ln a.txt hard.txt
USER 65534
CMD ["/bin/sh", "-c", "cat greeting a.txt /etc/hello; id -u; test -e /etc/image || echo no-image; stat -c %u:%g a.txt; pwd"]
"#;

struct Fixture {
    _layout: Layout,
    dir: TempDir,
    store: Store,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let layout = Layout::new(tag);
        let dir = TempDir::new(&format!("{tag}-b"));
        let store = Store::open(dir.path().join("store")).unwrap();
        store
            .import(&layout.reference("base"), Some("base:1"))
            .unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(ctx.join("files")).unwrap();
        std::fs::write(ctx.join("files/a.txt"), "A\n").unwrap();
        std::fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
        std::fs::write(ctx.join("Containerfile"), CONTAINERFILE).unwrap();
        Fixture {
            _layout: layout,
            dir,
            store,
        }
    }

    fn ctx(&self) -> std::path::PathBuf {
        self.dir.path().join("ctx")
    }

    /// Builds, returning the image and the step numbers that came from the cache.
    fn build(&self, opts: BuildOptions) -> (Image, Vec<usize>) {
        let cached = Mutex::new(Vec::new());
        let image = self
            .store
            .build(&opts, &|e| {
                if let BuildEvent::Cached { number } = e {
                    cached.lock().unwrap().push(*number);
                }
            })
            .unwrap();
        (image, cached.into_inner().unwrap())
    }
}

fn run(image: &Image) -> (i32, String, String) {
    let out = image
        .container(&ImageCommand::default())
        .unwrap()
        .namespaces(Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS | Namespaces::IPC)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const EXPECTED: &str = "hi\nA\nhello\n65534\nno-image\n65534:65534\n/app\n";

#[test]
fn a_containerfile_builds_runs_and_rebuilds_from_the_cache() {
    let t = "a_containerfile_builds_runs_and_rebuilds_from_the_cache";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let f = Fixture::new("build-main");
    let (image, cached) = f.build(BuildOptions::new(f.ctx()).tag("app:1"));
    assert!(
        cached.is_empty(),
        "a first build used the cache: {cached:?}"
    );
    // base (1 layer) + WORKDIR + 2 COPY + RUN.
    assert_eq!(image.layers().len(), 5);
    assert_eq!(image.names(), ["app:1".to_owned()]);
    let (code, out, err) = run(&image);
    assert_eq!((code, out.as_str()), (0, EXPECTED), "{err}");
    // The RUN layer has the hard link and the whiteout, and no mount-point stubs.
    let run_layer = &image.layers()[4].dir;
    assert!(run_layer.join("app/greeting").is_file());
    assert!(!run_layer.join("proc").exists() && !run_layer.join("etc/hosts").exists());
    use std::os::unix::fs::MetadataExt;
    let w = std::fs::symlink_metadata(run_layer.join("etc/image")).unwrap();
    assert_eq!(
        (w.mode() & libc::S_IFMT, w.rdev()),
        (libc::S_IFCHR, 0),
        "a whiteout"
    );

    // Again: every layer step is a cache hit (the RUN does not run), and the image is the
    // same.
    let (again, cached) = f.build(BuildOptions::new(f.ctx()).tag("app:2"));
    assert_eq!(cached, vec![4, 5, 6, 7], "steps from the cache");
    assert_eq!(again.id(), image.id());
    // A changed COPY source: that step and the ones after it run again.
    std::fs::write(f.ctx().join("hello.txt"), "hello again\n").unwrap();
    let (changed, cached) = f.build(BuildOptions::new(f.ctx()).tag("app:3"));
    assert_eq!(
        cached,
        vec![4, 5],
        "only the steps before the changed COPY are cached"
    );
    assert_ne!(changed.id(), image.id());
    let (_, out, _) = run(&changed);
    assert!(out.contains("hello again"), "{out}");
    // Nothing left in tmp/.
    let tmp: Vec<_> = std::fs::read_dir(f.store.root().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn a_fixed_source_date_epoch_gives_the_same_image_twice() {
    let t = "a_fixed_source_date_epoch_gives_the_same_image_twice";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let f = Fixture::new("build-repro");
    let opts = || {
        BuildOptions::new(f.ctx())
            .no_cache(true)
            .source_date_epoch(1_700_000_000)
    };
    let (a, cached) = f.build(opts());
    assert!(cached.is_empty());
    let (b, cached) = f.build(opts());
    assert!(cached.is_empty(), "--no-cache used the cache");
    assert_eq!(a.id(), b.id(), "the same input gave two images");
}

#[test]
fn a_built_image_is_read_by_skopeo_and_umoci() {
    let t = "a_built_image_is_read_by_skopeo_and_umoci";
    if !common::is_root(t) || !tool(t, "umoci") || !tool(t, "skopeo") {
        return;
    }
    let f = Fixture::new("build-out");
    let (image, _) = f.build(BuildOptions::new(f.ctx()).tag("app:1"));
    let out = f.dir.path().join("out");
    image.write_layout(&out, Some("app:1")).unwrap();
    let o = Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:1", out.display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inspect = String::from_utf8_lossy(&o.stdout);
    assert!(
        inspect.contains(&image.layers()[4].digest.to_string()),
        "{inspect}"
    );
    // umoci unpacks the same tree as our layers mounted.
    let bundle = f.dir.path().join("bundle");
    sh(Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:1", out.display())])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/greeting")).unwrap(),
        "hi\n"
    );
    assert!(
        !rootfs.join("etc/image").exists(),
        "the whiteout was applied"
    );
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(rootfs.join("app/a.txt")).unwrap();
    assert_eq!((a.uid(), a.gid()), (65534, 65534));
    assert_eq!(
        a.ino(),
        std::fs::metadata(rootfs.join("app/hard.txt"))
            .unwrap()
            .ino(),
        "the hard link is one"
    );
    // An archive too, and it imports back as the same image.
    let archive = f.dir.path().join("app.tar");
    image.write_archive(&archive, Some("app:1")).unwrap();
    sh(Command::new("skopeo").args(["inspect", &format!("oci-archive:{}:1", archive.display())]));
    let (_d, other) = {
        let d = TempDir::new("build-out-2");
        let s = Store::open(d.path().join("s")).unwrap();
        (d, s)
    };
    let back = other
        .import(&archive.display().to_string().parse().unwrap(), None)
        .unwrap();
    assert_eq!(back.id(), image.id());
    let (code, out, err) = run(&back);
    assert_eq!((code, out.as_str()), (0, EXPECTED), "{err}");
}

#[test]
fn a_failing_run_fails_the_build_and_names_the_step() {
    let t = "a_failing_run_fails_the_build_and_names_the_step";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let f = Fixture::new("build-fail");
    std::fs::write(
        f.ctx().join("Containerfile"),
        "FROM base:1\nRUN echo ok\nRUN exit 3\nCMD [\"true\"]\n",
    )
    .unwrap();
    let err = f
        .store
        .build(&BuildOptions::new(f.ctx()).tag("broken"), &|_| {})
        .unwrap_err();
    match &err {
        Error::Image {
            kind: ImageErrorKind::StepFailed,
            object,
            reason,
            ..
        } => {
            assert!(object.contains("line 3"), "{err}");
            assert!(err.remedy().unwrap().contains("no network"), "{err}");
            assert!(reason.contains("exit 3") && reason.contains('3'), "{err}");
        }
        e => panic!("expected StepFailed, got {e:?}"),
    }
    assert!(
        f.store.image("broken").is_err(),
        "a failed build named an image"
    );
    let tmp: Vec<_> = std::fs::read_dir(f.store.root().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    // A missing base is named.
    std::fs::write(f.ctx().join("Containerfile"), "FROM nothere:1\nRUN true\n").unwrap();
    let err = f
        .store
        .build(&BuildOptions::new(f.ctx()), &|_| {})
        .unwrap_err();
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
}

#[test]
fn from_scratch_with_copy_only() {
    let t = "from_scratch_with_copy_only";
    if !common::is_root(t) {
        return;
    }
    let d = TempDir::new("build-scratch");
    let store = Store::open(d.path().join("store")).unwrap();
    let ctx = d.path().join("ctx");
    std::fs::create_dir_all(ctx.join("bin")).unwrap();
    std::fs::copy(common::busybox::busybox_path(), ctx.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", ctx.join("bin/sh")).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY bin /bin/\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"echo from scratch\"]\n",
    )
    .unwrap();
    let image = store
        .build(&BuildOptions::new(&ctx).tag("tiny"), &|_| {})
        .unwrap();
    assert_eq!(image.layers().len(), 1);
    let (code, out, err) = run(&image);
    assert_eq!((code, out.as_str()), (0, "from scratch\n"), "{err}");
}

#[test]
fn the_build_example_builds_and_writes_a_layout() {
    let t = "the_build_example_builds_and_writes_a_layout";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let f = Fixture::new("build-cli");
    let exe = std::env::current_exe().unwrap();
    let build = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/build");
    assert!(build.exists(), "cargo build --example build");
    let out = f.dir.path().join("layout");
    let o = Command::new(&build)
        .arg("--store")
        .arg(f.store.root())
        .args(["-t", "cli:1", "--build-arg", "GREETING=hey", "--output"])
        .arg(&out)
        .arg(f.ctx())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("STEP 1/9: FROM base:1"), "{stderr}");
    assert!(stderr.contains("STEP 7/9: RUN"), "{stderr}");
    let id = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert_eq!(f.store.image("cli:1").unwrap().id().to_string(), id);
    assert!(out.join("index.json").is_file());
    let (code, stdout, _) = run(&f.store.image("cli:1").unwrap());
    assert_eq!(code, 0);
    assert!(stdout.starts_with("hey\n"), "{stdout}");
}

/// The rootless part of [`a_rootless_build_records_the_callers_files_as_root`], as nobody.
fn rootless_build_role(args: &str) {
    let (dir, layout) = args.split_once('|').unwrap();
    let dir = std::path::PathBuf::from(dir);
    let store = Store::open(dir.join("store")).unwrap();
    assert_eq!(
        store.overlay_flavour(),
        contain::image::OverlayFlavour::User
    );
    store
        .import(&layout.parse().unwrap(), Some("base:1"))
        .unwrap();
    let ctx = dir.join("ctx");
    let image = store
        .build(&BuildOptions::new(&ctx).tag("rootless:1"), &|_| {})
        .unwrap();
    let out = image
        .container(&ImageCommand {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            args: vec![
                "cat /app/greeting /app/a.txt; stat -c %u:%g /app/greeting /app/a.txt; \
                 test -e /etc/image || echo no-image"
                    .into(),
            ],
        })
        .unwrap()
        .namespaces(Namespaces::all())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi\nA\n0:0\n0:0\nno-image\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The RUN layer's tar says 0/0 too (not nobody's 65534), as it is exported.
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(image.layers().last().unwrap().digest.digest());
    let listing = Command::new("tar")
        .args(["--numeric-owner", "-tzvf"])
        .arg(&blob)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    let line = listing
        .lines()
        .find(|l| l.ends_with("app/greeting"))
        .unwrap_or_else(|| panic!("no app/greeting in\n{listing}"));
    assert!(line.contains(" 0/0 "), "{line}");
    assert!(!listing.contains("65534"), "{listing}");
    // A --chown to another user cannot be had rootless: said so.
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM base:1\nCOPY --chown=1000:1000 files/ /x/\n",
    )
    .unwrap();
    let err = store.build(&BuildOptions::new(&ctx), &|_| {}).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    println!("rootless build done");
}

#[test]
fn a_rootless_build_records_the_callers_files_as_root() {
    if let Some(args) = common::role()
        .as_deref()
        .and_then(|r| r.strip_prefix("rootless-build:"))
    {
        return rootless_build_role(args);
    }
    let t = "a_rootless_build_records_the_callers_files_as_root";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("build-rootless");
    let dir = TempDir::new("build-rootless-b");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("files")).unwrap();
    std::fs::write(ctx.join("files/a.txt"), "A\n").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM base:1\nWORKDIR /app\nCOPY files/ ./\nRUN echo hi > greeting && rm /etc/image\n",
    )
    .unwrap();
    let chown = |p: &Path| {
        sh(Command::new("chown").args(["-R", "65534:65534"]).arg(p));
    };
    chown(dir.path());
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The layout: readable by nobody (its parent directories too).
    sh(Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(layout.path().parent().unwrap()));
    // The role carries the paths (no environment variable set in a threaded test process).
    let role = format!(
        "rootless-build:{}|{}:base",
        dir.path().display(),
        layout.path().display()
    );
    let out = common::rerun_as_nobody(t, &role, false);
    assert!(out.status.success(), "the rootless build failed");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rootless build done"));
}
