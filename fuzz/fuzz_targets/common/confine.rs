//! For the targets that write files as root on hostile input (`layer`, `in_root`): a mount
//! namespace of the fuzzing process in which every mount is read-only but the directories
//! `cargo xtask fuzz` names in `$CONTAIN_FUZZ_WRITABLE` (colon-separated: the scratch
//! directory, the corpus, the artifacts). A bug that writes outside what the target checks
//! then fails with EROFS instead of changing the host.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

fn setattr(path: &Path, recursive: bool, set: u64, clr: u64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive {
        libc::AT_RECURSIVE as u32
    } else {
        0
    };
    // SAFETY: mount_setattr(2) with a NUL-terminated path and an initialized mount_attr of
    // the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    assert_eq!(
        rc,
        0,
        "mount_setattr {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Enters the read-only mount namespace (once per process; call it first).
pub fn confine() {
    use contain::mount::{self, Mount};
    use contain::namespace::{self, Namespaces};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(writable) = std::env::var_os("CONTAIN_FUZZ_WRITABLE") else {
            eprintln!(
                "fuzz: CONTAIN_FUZZ_WRITABLE is not set: not confined (run it with `cargo \
                 xtask fuzz`, which confines it to its scratch, corpus and artifacts)"
            );
            return;
        };
        namespace::unshare(Namespaces::MOUNT).expect("unshare(CLONE_NEWNS): run as root");
        mount::make_rprivate("/").expect("make / private");
        let holes: Vec<&Path> = std::env::split_paths(&writable)
            .map(|p| Path::new(Box::leak(p.into_boxed_path())))
            .collect();
        for p in &holes {
            Mount::bind(*p, *p)
                .mount()
                .expect("bind a writable directory");
        }
        setattr(Path::new("/"), true, MOUNT_ATTR_RDONLY, 0);
        for p in &holes {
            setattr(p, false, 0, MOUNT_ATTR_RDONLY);
        }
        // The confinement holds: the root refuses a new file.
        let probe = std::fs::File::create("/.contain-fuzz-confined");
        assert!(
            probe
                .as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::EROFS)),
            "/ is still writable: {probe:?}"
        );
    });
}
