//! Unit tests of preparation (no privileges needed). Mounting itself is tested as root in
//! `tests/mount.rs`.

use super::*;

fn config_err(m: &Mount) -> String {
    match m.prepare() {
        Err(e @ Error::Config { .. }) => e.to_string(),
        other => panic!("expected a config error for {m:?}, got {other:?}"),
    }
}

fn data(m: &Mount) -> Option<String> {
    match m.prepare().unwrap().op {
        Op::New { data, .. } => data.map(|d| d.into_string().unwrap()),
        Op::Bind { .. } => panic!("not a new filesystem"),
    }
}

#[test]
fn refuses_bad_configurations() {
    assert!(config_err(&Mount::tmpfs("tmp")).contains("absolute"));
    assert!(config_err(&Mount::tmpfs("/t\0mp")).contains("NUL"));
    assert!(config_err(&Mount::bind("/a\0b", "/x")).contains("NUL"));
    assert!(config_err(&Mount::bind("", "/x")).contains("empty"));
    assert!(config_err(&Mount::proc("/proc").size(Bytes(1))).contains("proc"));
    assert!(config_err(&Mount::proc("/proc").mode(0o755)).contains("mode"));
    assert!(config_err(&Mount::tmpfs("/t").ptmxmode(0o666)).contains("ptmxmode"));
    assert!(config_err(&Mount::tmpfs("/t").gid(5)).contains("gid"));
    assert!(config_err(&Mount::tmpfs("/t").mode(0o17777)).contains("0o7777"));
    assert!(config_err(&Mount::bind("/a", "/b").option("size", "1")).contains("bind"));
    assert!(config_err(&Mount::tmpfs("/t").option("a,b", "1")).contains("option name"));
    assert!(config_err(&Mount::tmpfs("/t").option("a=b", "1")).contains("option name"));
    assert!(config_err(&Mount::tmpfs("/t").option("", "1")).contains("option name"));
    assert!(config_err(&Mount::tmpfs("/t").option("source", "x")).contains("option name"));
    assert!(config_err(&Mount::tmpfs("/t").option("uid", "1,gid=0")).contains("','"));
    assert!(config_err(&Mount::tmpfs("/t").option_flag("a\0")).contains("option name"));
    assert!(config_err(&Mount::overlay(vec![], "/u", "/w", "/m")).contains("at least one"));
    for bad in ["/a:b", "/a,b", "/a\\b"] {
        let m = Mount::overlay(vec![bad.into()], "/u", "/w", "/m");
        assert!(config_err(&m).contains("contains"), "{bad}");
        let m = Mount::overlay(vec!["/l".into()], bad, "/w", "/m");
        assert!(config_err(&m).contains("contains"), "{bad}");
    }
}

#[test]
fn builds_option_strings() {
    assert_eq!(data(&Mount::tmpfs("/t")), None);
    assert_eq!(
        data(&Mount::tmpfs("/t").size(Bytes::mib(64)).mode(0o1777)).as_deref(),
        Some("size=67108864,mode=1777")
    );
    assert_eq!(
        data(&Mount::devpts("/dev/pts").ptmxmode(0o666).mode(0o620).gid(5)).as_deref(),
        Some("newinstance,mode=620,ptmxmode=666,gid=5")
    );
    assert_eq!(
        data(
            &Mount::overlay(vec!["/l1".into(), "/l2".into()], "/u", "/w", "/m")
                .option_flag("userxattr")
        )
        .as_deref(),
        Some("lowerdir=/l1:/l2,upperdir=/u,workdir=/w,userxattr")
    );
    assert_eq!(
        data(&Mount::overlay_read_only(
            vec!["/a".into(), "/b".into()],
            "/m"
        ))
        .as_deref(),
        Some("lowerdir=/a:/b")
    );
    assert_eq!(
        data(&Mount::proc("/proc").option("hidepid", "invisible")).as_deref(),
        Some("hidepid=invisible")
    );
    let p = Mount::cgroup2("/sys/fs/cgroup").prepare().unwrap();
    match p.op {
        Op::New {
            fstype,
            source,
            params,
            ..
        } => {
            assert_eq!(fstype.as_c_str(), c"cgroup2");
            assert_eq!(source.as_c_str(), c"cgroup2");
            assert!(params.is_empty());
        }
        Op::Bind { .. } => unreachable!(),
    }
}

#[test]
fn relative_sources_become_absolute() {
    let p = Mount::bind("some/dir", "/x").prepare().unwrap();
    let cwd = std::env::current_dir().unwrap();
    match p.op {
        Op::Bind { source, recursive } => {
            assert_eq!(
                Path::new(OsStr::from_bytes(source.as_bytes())),
                cwd.join("some/dir")
            );
            assert!(recursive, "binds are recursive by default");
        }
        Op::New { .. } => unreachable!(),
    }
    assert!(matches!(
        Mount::bind("/a", "/b")
            .recursive(false)
            .prepare()
            .unwrap()
            .op,
        Op::Bind {
            recursive: false,
            ..
        }
    ));
}

#[test]
fn builds_flag_words() {
    let p = Mount::tmpfs("/t")
        .read_only()
        .nosuid()
        .nodev()
        .noexec()
        .nosymfollow()
        .atime(Atime::Noatime)
        .prepare()
        .unwrap();
    let set = raw::MOUNT_ATTR_RDONLY
        | raw::MOUNT_ATTR_NOSUID
        | raw::MOUNT_ATTR_NODEV
        | raw::MOUNT_ATTR_NOEXEC
        | raw::MOUNT_ATTR_NOSYMFOLLOW
        | raw::MOUNT_ATTR_NOATIME;
    assert_eq!(p.attr.attr_set, set);
    assert_eq!(p.attr.attr_clr, raw::MOUNT_ATTR__ATIME);
    let ms = libc::MS_RDONLY
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | libc::MS_NOSYMFOLLOW
        | libc::MS_NOATIME;
    assert_eq!(p.ms_flags, ms);

    let p = Mount::bind("/a", "/b").prepare().unwrap();
    assert_eq!(
        (p.attr.attr_set, p.attr.attr_clr, p.ms_flags),
        (0, 0, 0),
        "a plain bind changes no flags"
    );
    assert_eq!(p.propagation, None);
    let p = Mount::bind("/a", "/b")
        .atime(Atime::Strictatime)
        .propagation(Propagation::Slave, true)
        .prepare()
        .unwrap();
    assert_eq!(
        (p.attr.attr_set, p.attr.attr_clr),
        (raw::MOUNT_ATTR_STRICTATIME, raw::MOUNT_ATTR__ATIME)
    );
    assert_eq!(p.propagation, Some((libc::MS_SLAVE, true)));
}

#[test]
fn splits_targets_lexically_inside_the_root() {
    let rel = |t: &str| {
        split_target(Path::new(t))
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(rel("/"), ".");
    assert_eq!(rel("/proc"), "proc");
    assert_eq!(rel("/a/./b/../c//d/"), "a/c/d");
    assert_eq!(rel("/../../etc"), "etc");
    assert_eq!(rel("/a/../../.."), ".");
    assert!(split_target(Path::new("relative")).is_err());
    assert!(split_target(&Path::new("/").join("a".repeat(5000))).is_err());
}

#[test]
fn steps_cross_a_pipe() {
    for s in MountStep::ALL {
        assert_eq!(MountStep::from_u32(s as u32), Some(s));
    }
    assert_eq!(MountStep::from_u32(0), None);
    assert_eq!(MountStep::from_u32(1000), None);
}

#[test]
fn errors_name_syscall_and_path() {
    let p = Mount::bind("/src", "/dst").read_only().prepare().unwrap();
    let e = p.error(MountError {
        step: MountStep::OpenTree,
        errno: Errno::ENOENT,
    });
    assert!(
        matches!(&e, Error::Sys { syscall, path: Some(path), errno: Errno::ENOENT }
            if syscall.starts_with("open_tree (the bind source does not exist: create it first")
                && path == Path::new("/src")),
        "{e:?}"
    );
    let e = p.error(MountError {
        step: MountStep::MoveMount,
        errno: Errno::EINVAL,
    });
    assert!(
        matches!(&e, Error::Sys { syscall: "move_mount", path: Some(path), .. } if path == Path::new("/dst")),
        "{e:?}"
    );
    let e = p.error(MountError {
        step: MountStep::SetAttr,
        errno: Errno::ENOSYS,
    });
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert!(e.to_string().contains("mount_setattr"), "{e}");
    let e = p.error(MountError {
        step: MountStep::ResolveTarget,
        errno: Errno::ENOSYS,
    });
    assert!(e.to_string().contains("openat2"), "{e}");
    let e = p.error(MountError {
        step: MountStep::SetAttr,
        errno: Errno::EPERM,
    });
    assert!(
        matches!(
            e,
            Error::Sys {
                syscall: "mount_setattr",
                errno: Errno::EPERM,
                ..
            }
        ),
        "{e:?}"
    );
}
