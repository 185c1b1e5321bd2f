//! The image store as a docker or podman user meets it: names as docker shows them, a build
//! context directory next to the image of the same name, `images tag`. Needs root and umoci
//! (skopeo for the docker-archive); skipped, with a message, without them.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::oci::{sh, tool, Layout};
use common::TempDir;
use contain::image::{ImageRef, Store};
use contain::{Error, ImageErrorKind};

/// The example `name` built next to this test binary, run with `args` in `cwd`.
fn example(name: &str, args: &[&str], cwd: &Path) -> Output {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(path.exists(), "build it: cargo build --example {name}");
    Command::new(path)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn images(args: &[&str], cwd: &Path) -> Output {
    example("images", args, cwd)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A directory or a file that exists but is no image is not taken for a source: `app:1`
/// next to a build context `./app` is the image of the store (docker and podman never look
/// at the file system for a name). A real layout, or a tarball, still is a source.
#[test]
fn a_path_that_is_no_image_does_not_hide_a_name() {
    let t = TempDir::new("user-ref");
    let app = t.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("Containerfile"), "FROM scratch\n").unwrap();
    let tool = t.path().join("tool");
    std::fs::write(&tool, b"\x7fELF not a tar").unwrap();
    let a = app.display().to_string();
    for s in [format!("{a}:1"), a.clone(), format!("{}:2", tool.display())] {
        assert_eq!(ImageRef::parse(&s).unwrap(), ImageRef::Stored(s.clone()));
    }
    std::fs::write(app.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    assert_eq!(
        ImageRef::parse(&format!("{a}:1")).unwrap(),
        ImageRef::Layout {
            dir: app.clone(),
            tag: Some("1".into())
        }
    );
    let mut tar = vec![0u8; 512];
    tar[257..262].copy_from_slice(b"ustar");
    std::fs::write(&tool, &tar).unwrap();
    assert_eq!(
        ImageRef::parse(&format!("{}:2", tool.display())).unwrap(),
        ImageRef::Archive {
            path: tool.clone(),
            tag: Some("2".into())
        }
    );
    // Not in the store either: the message says what the path is.
    std::fs::remove_file(app.join("oci-layout")).unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let err = store.image(&format!("{a}:1")).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Image {
                kind: ImageErrorKind::NotFound,
                ..
            }
        ) && err.to_string().contains("no oci-layout file"),
        "{err}"
    );
}

/// The README's own sequence, from the directory that holds the build context `./app`:
/// `images import ... app:1`, then `run --image app:1` runs the image; `images import app`
/// (the context, no layout) says why it is no image; `images tag` names it again.
#[test]
fn run_image_by_name_next_to_a_directory_of_that_name() {
    let t = "run_image_by_name_next_to_a_directory_of_that_name";
    if !common::is_root(t) || !tool(t, "umoci") {
        return;
    }
    let layout = Layout::new("user-cwd");
    let d = TempDir::new("user-cwd-s");
    let cwd = d.path().join("work");
    std::fs::create_dir_all(cwd.join("app")).unwrap();
    let store = d.path().join("store");
    let s = store.to_str().unwrap();
    let l = format!("{}:app", layout.path().display());
    let o = images(&["--store", s, "import", &l, "app:1"], &cwd);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = common::run::run_example()
        .args(["--store", s, "--image", "app:1", "--", "echo $GREETING"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(
        (common::run::code(&o), text(&o.stdout).as_str()),
        (0, "hello\n"),
        "{}",
        text(&o.stderr)
    );
    let o = images(&["--store", s, "import", "app"], &cwd);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("app is a directory but not an OCI image layout"),
        "{}",
        text(&o.stderr)
    );
    let o = images(&["--store", s, "tag", "app:1", "other:2"], &cwd);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = images(&["--store", s, "ls"], &cwd);
    let ls = text(&o.stdout);
    let id = |name: &str| {
        ls.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    };
    assert!(
        id("app:1").is_some() && id("app:1") == id("other:2"),
        "{ls}"
    );
}

/// skopeo and buildah write `docker.io/library/NAME:TAG` into a docker-archive's RepoTags;
/// docker shows it as `NAME:TAG` and finds it by that name, and so does the store. A
/// `localhost/NAME` (podman's and buildah's local images) is found as `NAME`, and removing
/// it by that name untags only it.
#[test]
fn names_are_found_as_docker_and_podman_show_them() {
    let t = "names_are_found_as_docker_and_podman_show_them";
    if !common::is_root(t) || !tool(t, "umoci") || !tool(t, "skopeo") {
        return;
    }
    let layout = Layout::new("user-names");
    let d = TempDir::new("user-names-s");
    let archive = d.path().join("bb.tar");
    sh(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:app", layout.path().display()),
        &format!("docker-archive:{}:bb:3", archive.display()),
    ]));
    let store = Store::open(d.path().join("store")).unwrap();
    let image = store
        .import(&archive.display().to_string().parse().unwrap(), None)
        .unwrap();
    assert_eq!(image.names(), ["bb:3".to_owned()]);
    for name in ["bb:3", "docker.io/library/bb:3", "library/bb:3"] {
        assert_eq!(store.image(name).unwrap().id(), image.id(), "{name}");
    }
    // The archive's tag picked in the docker form too.
    let again = store
        .import(
            &format!("docker-archive:{}:library/bb:3", archive.display())
                .parse()
                .unwrap(),
            Some("docker.io/library/bb:4"),
        )
        .unwrap();
    assert_eq!(again.names(), ["bb:3".to_owned(), "bb:4".to_owned()]);
    store.tag(&image, "localhost/myapp:7").unwrap();
    assert_eq!(store.image("myapp:7").unwrap().id(), image.id());
    assert!(store.image("example.org/myapp:7").is_err());
    // rm by the short name untags localhost/myapp:7 only.
    assert!(store.remove("myapp:7").unwrap().is_empty());
    assert_eq!(
        store.image(image.id().as_ref()).unwrap().names(),
        ["bb:3".to_owned(), "bb:4".to_owned()]
    );
    // A name of its own wins over localhost/.
    store.tag(&image, "localhost/x:1").unwrap();
    store.tag(&image, "x:1").unwrap();
    assert!(store.remove("x:1").unwrap().is_empty());
    assert_eq!(
        store.image(image.id().as_ref()).unwrap().names(),
        [
            "bb:3".to_owned(),
            "bb:4".to_owned(),
            "localhost/x:1".to_owned()
        ]
    );
}

/// A `.dockerignore` (or `.containerignore`) keeps files out of docker's and buildah's COPY;
/// the build example does not read it, so it stops instead of copying what it excludes (a
/// key next to the sources) into the image, and says so.
#[test]
fn a_build_context_with_an_ignore_file_is_refused() {
    let t = TempDir::new("user-ignore");
    let ctx = t.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Containerfile"), "FROM scratch\nCOPY . /app/\n").unwrap();
    std::fs::write(ctx.join("id_rsa"), "secret\n").unwrap();
    let store = t.path().join("store");
    for ignore in [".dockerignore", ".containerignore"] {
        std::fs::write(ctx.join(ignore), "id_rsa\n").unwrap();
        let o = example(
            "build",
            &["--store", store.to_str().unwrap(), "-t", "x:1", "ctx"],
            t.path(),
        );
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{err}");
        assert!(
            err.contains(&format!("ctx/{ignore} would be ignored")),
            "{err}"
        );
        std::fs::remove_file(ctx.join(ignore)).unwrap();
    }
    // Nothing was built.
    let o = images(&["--store", store.to_str().unwrap(), "ls"], t.path());
    assert_eq!(text(&o.stdout).lines().count(), 1, "{}", text(&o.stdout));
}
