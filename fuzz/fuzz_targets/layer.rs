//! Fuzzes `image::unpack::unpack` with whole tar streams, hostile ones included: it must never
//! panic, and nothing may be written, removed, linked or changed outside the layer directory,
//! whatever the tar holds (`..`, absolute names, symlinks and hard links pointing out,
//! whiteouts of names outside, duplicate and replaced entries).
//!
//! The first byte picks how the layer is applied (`Apply::Layer` with either overlay flavour,
//! or `Apply::Flatten` onto a directory with a few files in it), the rest is the tar. Each
//! input is unpacked into `layer/` of a fresh directory that also holds a canary file with a
//! hard link count of 1 and an empty directory; afterwards that directory must hold exactly
//! those three, unchanged. Owners are not set (`chown: false`, no device nodes), so that a
//! bug shows as a failed check here rather than as device nodes on the host.
//!
//! Needs a filesystem with `user.*` xattrs for the user overlay flavour (tmpfs since Linux
//! 6.6, ext4); runs as root (the trusted flavour's xattrs), confined by `cargo xtask fuzz` to
//! a mount namespace where all but its scratch, corpus and artifacts is read-only
//! (common/confine.rs).
#![no_main]

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use contain::image::unpack::{unpack, Apply, UnpackOptions};
use contain::image::OverlayFlavour;
use libfuzzer_sys::fuzz_target;

#[path = "common/confine.rs"]
mod confine;

const CANARY: &[u8] = b"canary: must not change\n";

/// This process's scratch directory: `$CONTAIN_FUZZ_SCRATCH/layer-PID` (`cargo xtask fuzz`
/// sets it to a directory it removes afterwards), else the same under the temporary
/// directory. Each input's directory in it is removed as soon as it is checked.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = std::env::var_os("CONTAIN_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = parent.join(format!("contain-fuzz-layer-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    confine::confine();
    let Some((&mode, tar)) = data.split_first() else {
        return;
    };
    let apply = match mode % 3 {
        0 => Apply::Layer(OverlayFlavour::Trusted),
        1 => Apply::Layer(OverlayFlavour::User),
        _ => Apply::Flatten,
    };
    static N: AtomicU64 = AtomicU64::new(0);
    let base = scratch().join(N.fetch_add(1, Ordering::Relaxed).to_string());
    let layer = base.join("layer");
    fs::create_dir_all(&layer).unwrap();
    fs::create_dir(base.join("sibling")).unwrap();
    fs::write(base.join("canary"), CANARY).unwrap();
    fs::set_permissions(base.join("canary"), fs::Permissions::from_mode(0o644)).unwrap();
    if apply == Apply::Flatten {
        // What the layers below left: names a whiteout or a replacement may act on.
        fs::create_dir_all(layer.join("etc/dir")).unwrap();
        fs::write(layer.join("etc/passwd"), b"root:x:0:0::/:/bin/sh\n").unwrap();
        fs::write(layer.join("etc/dir/file"), b"lower\n").unwrap();
        // Links out of the layer, to what the checks below watch (never to the host's own
        // files: a write through one must show here, not land there).
        std::os::unix::fs::symlink("../canary", layer.join("up")).unwrap();
        std::os::unix::fs::symlink("../sibling", layer.join("out")).unwrap();
    }
    let dir = fs::File::open(&layer).unwrap();
    let options = UnpackOptions {
        apply,
        chown: false,
    };
    let _ = unpack(&mut &tar[..], dir.as_fd(), &mut || Ok(Vec::new()), options);
    drop(dir);

    let mut names: Vec<String> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["canary", "layer", "sibling"],
        "entries beside the layer"
    );
    let canary = fs::symlink_metadata(base.join("canary")).unwrap();
    assert!(canary.is_file(), "canary replaced");
    assert_eq!(canary.nlink(), 1, "canary hard-linked from the layer");
    assert_eq!(canary.mode() & 0o7777, 0o644, "canary's mode changed");
    assert_eq!(
        fs::read(base.join("canary")).unwrap(),
        CANARY,
        "canary written"
    );
    let sibling = fs::symlink_metadata(base.join("sibling")).unwrap();
    assert!(sibling.is_dir(), "sibling replaced");
    assert_eq!(
        fs::read_dir(base.join("sibling")).unwrap().count(),
        0,
        "written into sibling"
    );
    let beside: Vec<_> = fs::read_dir(scratch()).unwrap().collect();
    assert_eq!(beside.len(), 1, "entries beside this input's directory");
    remove(&base);
});

/// Removes `dir` and everything in it, without following symlinks; a directory the tar left
/// without write or search permission is opened up first (the fuzzer may run unprivileged).
fn remove(dir: &Path) {
    if fs::remove_dir_all(dir).is_ok() {
        return;
    }
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+rwx"])
        .arg(dir)
        .status();
    fs::remove_dir_all(dir).unwrap();
}
