use std::path::{Path, PathBuf};

use super::*;
use crate::mount::Mount;

const NS: Namespaces = Namespaces::MOUNT.union(Namespaces::PID);

/// An image directory that exists: this crate's sources.
const IMG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

fn prepare(r: &Rootfs) -> Result<PreparedRootfs> {
    r.prepare(NS, Namespaces::empty(), true)
}

fn config_what(e: Error) -> &'static str {
    match e {
        Error::Config { what, .. } => what,
        other => panic!("not a config error: {other}"),
    }
}

#[test]
fn needs_a_mount_namespace_and_its_own_pid_namespace() {
    let r = Rootfs::new(IMG);
    let e = r
        .prepare(Namespaces::PID, Namespaces::empty(), true)
        .unwrap_err();
    assert!(e.to_string().contains("Namespaces::MOUNT"), "{e}");
    // A joined mount namespace is where the rootfs is assembled (OCI's mount path).
    r.prepare(Namespaces::PID, Namespaces::MOUNT, true).unwrap();
    let e = r
        .prepare(Namespaces::MOUNT, Namespaces::empty(), true)
        .unwrap_err();
    assert!(e.to_string().contains("Namespaces::PID"), "{e}");
    // A joined PID namespace is fine: the new procfs shows that one.
    r.prepare(Namespaces::MOUNT, Namespaces::PID, true).unwrap();
}

#[test]
fn conflicting_settings_are_refused() {
    let host_rw = Rootfs::host().mode(RootfsMode::ReadWrite);
    assert_eq!(config_what(prepare(&host_rw).unwrap_err()), "rootfs");
    let host_upper = Rootfs::host().persistent_upper("/tmp/u");
    assert_eq!(config_what(prepare(&host_upper).unwrap_err()), "rootfs");
    let zero = Rootfs::new(IMG).size(Bytes(0));
    assert_eq!(config_what(prepare(&zero).unwrap_err()), "rootfs size");
    let ro_size = Rootfs::new(IMG)
        .mode(RootfsMode::ReadOnly)
        .size(Bytes::mib(1));
    assert_eq!(config_what(prepare(&ro_size).unwrap_err()), "rootfs size");
    let ro_upper = Rootfs::new(IMG)
        .mode(RootfsMode::ReadOnly)
        .persistent_upper("/tmp/u");
    assert_eq!(
        config_what(prepare(&ro_upper).unwrap_err()),
        "persistent upper directory"
    );
    let nested =
        Rootfs::new(IMG).persistent_upper(concat!(env!("CARGO_MANIFEST_DIR"), "/src/upper"));
    assert_eq!(
        config_what(prepare(&nested).unwrap_err()),
        "persistent upper directory"
    );
    let over_root = Rootfs::new(IMG).mount(Mount::tmpfs("/x/.."));
    assert_eq!(
        config_what(prepare(&over_root).unwrap_err()),
        "rootfs mount"
    );
    let relative = Rootfs::new(IMG).mask("proc/kcore");
    assert_eq!(config_what(prepare(&relative).unwrap_err()), "masked path");
    let nul = Rootfs::new("/srv/im\0age");
    assert_eq!(config_what(prepare(&nul).unwrap_err()), "rootfs directory");
}

#[test]
fn the_plan_has_proc_dev_sys_then_volumes_then_masks() {
    let r = Rootfs::new(IMG).mount(Mount::bind("/srv/data", "/data"));
    let p = r
        .prepare(
            NS | Namespaces::NET | Namespaces::IPC,
            Namespaces::empty(),
            true,
        )
        .unwrap();
    let paths: Vec<PathBuf> = p.steps.iter().map(Step::path).collect();
    // The last step on a path: the mount on /dev/pts, /dev/shm and /dev/mqueue comes after
    // the directory made for it in the new /dev.
    let pos = |p: &str| {
        paths
            .iter()
            .rposition(|x| x == Path::new(p))
            .unwrap_or_else(|| panic!("{p} not in {paths:?}"))
    };
    // runc's default order (runtimetest checks the config's order in mountinfo).
    assert!(pos("/proc") < pos("/dev"));
    assert!(pos("/dev") < pos("/dev/null") && pos("/dev/null") < pos("/dev/pts"));
    assert!(pos("/dev/pts") < pos("/dev/shm") && pos("/dev/shm") < pos("/dev/mqueue"));
    assert!(pos("/dev/mqueue") < pos("/sys") && pos("/sys") < pos("/data"));
    assert!(pos("/data") < pos("/proc/kcore") && pos("/proc/kcore") < pos("/proc/sys"));
    for masked in DEFAULT_MASKED_PATHS {
        pos(masked);
    }
    for ro in DEFAULT_READ_ONLY_PATHS {
        pos(ro);
    }
    assert!(matches!(
        p.base,
        Base::Overlay(Overlay {
            userxattr: false,
            ..
        })
    ));

    // Without an IPC namespace no mqueue (it would be the host's).
    let p = prepare(&r).unwrap();
    assert!(!p.steps.iter().any(|s| s.path() == Path::new("/dev/mqueue")));
}

#[test]
fn devices_are_made_as_root_and_bound_in_a_user_namespace() {
    let r = Rootfs::new(IMG);
    let root = prepare(&r).unwrap();
    let userns = r
        .prepare(NS | Namespaces::USER, Namespaces::empty(), false)
        .unwrap();
    let device = |p: &PreparedRootfs, name: &str| {
        p.steps.iter().find_map(|s| match s {
            Step::Device {
                name: n,
                mknod,
                bind,
                ..
            } if n.to_bytes() == name.as_bytes() => Some((*mknod, bind.is_some())),
            _ => None,
        })
    };
    assert_eq!(device(&root, "null").map(|d| d.0), Some(true));
    if Path::new("/dev/null").exists() {
        assert_eq!(device(&userns, "null"), Some((false, true)));
    }
    assert!(matches!(
        userns.base,
        Base::Overlay(Overlay {
            userxattr: true,
            ..
        })
    ));
    // Forced without a user namespace.
    let forced = prepare(&Rootfs::new(IMG).userxattr(true)).unwrap();
    assert!(matches!(
        forced.base,
        Base::Overlay(Overlay {
            userxattr: true,
            ..
        })
    ));
}

#[test]
fn host_view_recreates_symlinks_and_binds_directories() {
    let p = prepare(&Rootfs::host()).unwrap();
    assert!(matches!(p.base, Base::Tmpfs { .. }));
    for dir in HOST_DIRS {
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            continue;
        };
        let step = p
            .steps
            .iter()
            .find(|s| s.path() == Path::new(dir))
            .unwrap_or_else(|| panic!("{dir} missing from the host view"));
        if meta.file_type().is_symlink() {
            assert!(matches!(step, Step::Symlink { .. }), "{dir}: {step:?}");
        } else {
            assert!(matches!(step, Step::Mount { .. }), "{dir}: {step:?}");
        }
    }
    assert!(!p
        .steps
        .iter()
        .any(|s| s.path().starts_with("/home") || s.path().starts_with("/root")));
    assert!(!p.read_only_root);
    let ro = prepare(&Rootfs::host().mode(RootfsMode::ReadOnly)).unwrap();
    assert!(ro.read_only_root);
}

#[test]
fn errors_name_the_step_and_the_path() {
    let r = Rootfs::new(IMG).mount(Mount::bind("/srv/data", "/data"));
    let p = prepare(&r).unwrap();
    let e = p.error(SetupStage::Mount, 0, Op::OverlayOpen as u32, Errno::ENODEV);
    assert!(
        matches!(&e, Error::Unsupported { feature, .. } if feature.contains("overlay")),
        "{e}"
    );
    let e = p.error(SetupStage::Mount, 0, LOWER_OPEN_STEP, Errno::ENOENT);
    assert_eq!(
        e.to_string(),
        format!("openat2 {IMG}: ENOENT: No such file or directory")
    );
    let data = p
        .steps
        .iter()
        .position(|s| s.path() == Path::new("/data"))
        .unwrap() as u32
        + 1;
    let e = p.error(
        SetupStage::Mount,
        data,
        MountStep::OpenTree as u32,
        Errno::ENOENT,
    );
    assert!(
        e.to_string()
            .starts_with("open_tree (the bind source does not exist")
            && e.to_string().contains("/srv/data: ENOENT"),
        "{e}"
    );
    let e = p.error(
        SetupStage::Mount,
        data,
        MountStep::CreateDir as u32,
        Errno::EROFS,
    );
    assert!(
        e.to_string()
            .starts_with("mkdirat of a missing mount point"),
        "{e}"
    );
    assert!(e.to_string().contains("read-only root"), "{e}");
    assert!(e.to_string().contains(" /data: EROFS"), "{e}");
    let e = p.error(
        SetupStage::PivotRoot,
        0,
        Op::PivotRoot as u32,
        Errno::EINVAL,
    );
    assert!(e.to_string().contains("chroot_fallback"), "{e}");
    let e = p.error(
        SetupStage::PivotRoot,
        0,
        Op::PivotRoot as u32,
        Errno::ENOENT,
    );
    assert!(e.to_string().contains("is /proc mounted?"), "{e}");
    assert!(
        e.to_string()
            .ends_with("/proc/self/fd: ENOENT: No such file or directory"),
        "{e}"
    );
    let e = p.error(SetupStage::Mount, 0, Op::CloneImage as u32, Errno::ENOSYS);
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    // A report no child of ours would send still gives an error, not a panic.
    let e = p.error(SetupStage::Mount, 9999, 7, Errno::EIO);
    assert!(matches!(e, Error::Setup { .. }), "{e}");
}

#[test]
fn op_numbers_round_trip_and_stay_clear_of_mount_steps() {
    for op in Op::ALL {
        assert_eq!(Op::from_u32(op as u32), Some(op));
        assert!(MountStep::from_u32(op as u32).is_none());
    }
}

#[test]
fn steps_the_kernel_refuses_in_a_user_namespace_say_why() {
    let r = Rootfs::new(IMG);
    let p = r
        .prepare(NS | Namespaces::USER, Namespaces::empty(), false)
        .unwrap();
    let proc_index = p
        .steps
        .iter()
        .position(|s| s.path() == Path::new("/proc"))
        .unwrap() as u32
        + 1;
    let e = p.error(
        SetupStage::Mount,
        proc_index,
        MountStep::FsCreate as u32,
        Errno::EPERM,
    );
    assert!(
        matches!(&e, Error::Unsupported { feature, reason }
            if feature.contains("procfs") && reason.contains("EPERM")),
        "{e}"
    );
    let e = p.error(
        SetupStage::Mount,
        0,
        Op::OverlayCreate as u32,
        Errno::EINVAL,
    );
    assert!(
        matches!(&e, Error::Unsupported { reason, .. } if reason.contains("5.11")),
        "{e}"
    );
    // As root the same errno is a plain syscall error naming the path.
    let p = prepare(&r).unwrap();
    let e = p.error(
        SetupStage::Mount,
        proc_index,
        MountStep::FsCreate as u32,
        Errno::EPERM,
    );
    assert!(e.to_string().starts_with("fsconfig /proc"), "{e}");
}

#[test]
fn a_stack_of_layers_is_an_overlay_of_them_top_first() {
    let bottom = format!("{IMG}/rootfs");
    let top = format!("{IMG}/process");
    let r = Rootfs::from_layers([&bottom, &top]);
    assert_eq!(r.layers(), [PathBuf::from(&bottom), PathBuf::from(&top)]);
    assert_eq!(r.image(), Some(Path::new(&top)));
    let p = prepare(&r).unwrap();
    let Base::Overlay(o) = &p.base else {
        panic!("not an overlay: {:?}", p.base);
    };
    assert_eq!(o.lower_paths, [PathBuf::from(&top), PathBuf::from(&bottom)]);
    assert_eq!(
        o.lowers,
        [
            CString::new(top.clone()).unwrap(),
            CString::new(bottom.clone()).unwrap()
        ]
    );
    assert!(matches!(o.upper, Some(Upper::Scratch { .. })));
    assert_eq!(
        o.legacy_head,
        b"index=off,redirect_dir=nofollow,metacopy=off,lowerdir="
    );

    // Read-only: an overlay without an upper layer; one layer stays a read-only bind.
    let ro = prepare(&r.clone().mode(RootfsMode::ReadOnly)).unwrap();
    assert!(matches!(
        ro.base,
        Base::Overlay(Overlay { upper: None, .. })
    ));
    let one = prepare(&Rootfs::from_layers([&top]).mode(RootfsMode::ReadOnly)).unwrap();
    assert!(matches!(
        one.base,
        Base::Bind {
            read_only: true,
            ..
        }
    ));

    // A failed lowerdir+ or open names its layer (top first).
    let e = p.error(SetupStage::Mount, 0, LOWER_STEP + 1, Errno::EACCES);
    assert!(e.to_string().contains(&bottom), "{e}");
    assert!(e.to_string().contains("lowerdir+"), "{e}");
    assert!(!e.to_string().contains("/proc"), "{e}");
    // The layer was opened: a missing name is /proc's (not mounted on the host).
    let e = p.error(SetupStage::Mount, 0, LOWER_STEP + 1, Errno::ENOENT);
    assert!(e.to_string().contains("is /proc mounted?"), "{e}");
    assert!(e.to_string().contains(&bottom), "{e}");
    let e = p.error(SetupStage::Mount, 0, LOWER_OPEN_STEP + 1, Errno::ENOENT);
    assert!(
        e.to_string()
            .starts_with(&format!("openat2 {bottom}: ENOENT")),
        "{e}"
    );
    // A mount(2) page that overflowed is the typed "too many layers".
    let e = p.error(SetupStage::Mount, 0, Op::LegacyMount as u32, Errno::E2BIG);
    assert!(
        matches!(&e, Error::Unsupported { reason, .. } if reason.contains("too many layers")),
        "{e}"
    );
}

#[test]
fn stacks_refuse_read_write_no_layer_and_too_many_layers() {
    let rw = Rootfs::from_layers([IMG, IMG]).mode(RootfsMode::ReadWrite);
    assert_eq!(config_what(prepare(&rw).unwrap_err()), "rootfs");
    let none = Rootfs::from_layers(Vec::<PathBuf>::new());
    assert_eq!(config_what(prepare(&none).unwrap_err()), "rootfs");
    assert_eq!(none.image(), None);
    let max = max_lowers().unwrap_or(layers::OVL_MAX_STACK);
    let many = Rootfs::from_layers(vec![IMG; max + 1]);
    let e = prepare(&many).unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported { reason, .. } if reason.contains("too many layers")),
        "{e}"
    );
    let ro_size = Rootfs::from_layers([IMG, IMG])
        .mode(RootfsMode::ReadOnly)
        .size(Bytes::mib(1));
    assert_eq!(config_what(prepare(&ro_size).unwrap_err()), "rootfs size");
}
