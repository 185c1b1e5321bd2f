//! Errors that say what to do (issue 10, part 5): a failed `execve` names the program, the
//! PATH searched and the likely cause; a hybrid host's missing controllers are all named; a
//! rootless cgroup failure explains delegation; and `LimitPolicy::BestEffort` starts the
//! container with what the host supports and lists the rest.
//!
//! The cgroup cases depend on the host: on a hybrid host (memory, cpu and pids bound to
//! cgroup v1) they check the errors and the skipped list; in the qemu guest (pure cgroup v2,
//! `cargo xtask test --vm-only -- --test error_remedies`) nothing may be skipped.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::busybox::BusyboxRootfs;
use common::{is_root, role, TempDir};
use contain::cgroup::{
    Bytes, Cgroup, CgroupBuilder, Controller, CpuMax, HostCgroups, HugePageSize, LimitPolicy, Max,
    Resources,
};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::Rootfs;
use contain::security::{CapSet, Seccomp};
use contain::{Errno, Error, ExecFailure, ExecTarget, SetupStage};

fn in_vm() -> bool {
    std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1")
}

/// The exec details of `e`, which must be a failed execve with `errno`.
fn exec_failure(e: &Error, errno: Errno) -> &ExecFailure {
    match e {
        Error::Setup {
            stage: SetupStage::Exec,
            errno: got,
            exec: Some(exec),
        } if *got == errno => exec,
        other => panic!("expected a failed execve with {errno}, got {other:?}: {other}"),
    }
}

fn write_executable(path: &Path, content: &[u8], mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, PermissionsExt::from_mode(mode)).unwrap();
}

/// Three memory, cpu and pids limits: what a CI runner sets.
fn limits() -> Resources {
    Resources::new()
        .memory_max(Bytes::mib(256))
        .cpu_max(CpuMax::cpus(1.0).unwrap())
        .pids_max(64)
}

#[test]
fn a_program_missing_from_the_image_names_itself_and_the_path_searched() {
    // A bare name, looked up in the container's PATH: the first directory does not exist.
    let e = Container::new("no-such-tool-xyz")
        .env("PATH", "/nonexistent/bin:/usr/bin")
        .spawn()
        .unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.program, "no-such-tool-xyz");
    assert_eq!(
        exec.search_path.as_deref(),
        Some("/nonexistent/bin:/usr/bin".as_ref())
    );
    assert_eq!(exec.target, ExecTarget::Missing, "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("container setup failed at execve: ENOENT")
            && msg.contains(
                "\"no-such-tool-xyz\" was not found in any directory of \
                 PATH=/nonexistent/bin:/usr/bin in the caller's root (no rootfs)"
            ),
        "{msg}"
    );
    assert!(msg.contains("#! interpreter"), "{msg}");
    let remedy = e.remedy().expect("a remedy");
    assert!(remedy.contains("set PATH"), "{remedy}");
    assert!(msg.ends_with(&format!("; remedy: {remedy}")), "{msg}");

    // A path: named, and found missing.
    let e = Container::new("/no/such/dir/tool").spawn().unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.path.as_deref(), Some(Path::new("/no/such/dir/tool")));
    assert_eq!(exec.search_path, None);
    assert!(
        e.to_string().contains("/no/such/dir/tool does not exist"),
        "{e}"
    );

    // In an image: the message says where it looked.
    if !is_root("a_program_missing_from_the_image_names_itself_and_the_path_searched (rootfs)") {
        return;
    }
    let image = BusyboxRootfs::new("missing-program");
    let e = Container::new("python3")
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .rootfs(Rootfs::new(image.root()))
        .spawn()
        .unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert!(exec.in_rootfs);
    let msg = e.to_string();
    assert!(
        msg.contains("\"python3\" was not found in any directory of PATH=/usr/local/sbin:")
            && msg.contains("in the container's root")
            && msg.contains("add the program to the image"),
        "{msg}"
    );
}

#[test]
fn a_script_whose_interpreter_is_missing_says_so() {
    let dir = TempDir::new("interp");
    let script = dir.path().join("job.sh");
    write_executable(&script, b"#!/no/such/interpreter\necho hi\n", 0o755);
    let e = Container::new(&script).spawn().unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.target, ExecTarget::Script, "{e}");
    assert_eq!(exec.path.as_deref(), Some(script.as_path()));
    assert_eq!(
        exec.interpreter.as_deref(),
        Some(Path::new("/no/such/interpreter"))
    );
    assert!(!exec.interpreter_truncated);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "{} exists but is a script whose interpreter /no/such/interpreter is missing in the \
             caller's root",
            script.display()
        )),
        "{msg}"
    );
    assert!(
        e.remedy().unwrap().contains("install /no/such/interpreter")
            && e.remedy().unwrap().contains("change the script's #! line"),
        "{msg}"
    );

    // Through PATH, after a directory without it: the broken candidate is the one named.
    let e = Container::new("job.sh")
        .env("PATH", format!("/nonexistent:{}", dir.path().display()))
        .spawn()
        .unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.target, ExecTarget::Script, "{e}");
    assert_eq!(exec.path.as_deref(), Some(script.as_path()), "{e}");
    assert_eq!(
        exec.interpreter.as_deref(),
        Some(Path::new("/no/such/interpreter")),
        "{e}"
    );

    // An interpreter that exists but is itself a script with a missing interpreter: execve
    // says ENOENT too, and the message must not claim the interpreter is missing.
    let nested = dir.path().join("nested");
    write_executable(
        &nested,
        format!("#!{}\n", script.display()).as_bytes(),
        0o755,
    );
    let e = Container::new(&nested).spawn().unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.interpreter.as_deref(), Some(script.as_path()), "{e}");
    assert!(exec.interpreter_exists, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "whose interpreter {} exists too, but cannot be run",
            script.display()
        )),
        "{msg}"
    );
    assert!(
        !exec_failure(&Container::new(&script).spawn().unwrap_err(), Errno::ENOENT)
            .interpreter_exists
    );

    // An interpreter line with arguments: the interpreter is what the #! line names, up to
    // the first blank (execve fails on it, not on the program it would run).
    let with_args = dir.path().join("with-args");
    write_executable(&with_args, b"#! /no/such/env -S python3 -u\n", 0o755);
    let e = Container::new(&with_args).spawn().unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(
        exec.interpreter.as_deref(),
        Some(Path::new("/no/such/env")),
        "{e}"
    );
    assert!(e.to_string().contains("interpreter /no/such/env is"), "{e}");

    // A #! line longer than what the child reads (128 bytes), shorter than the kernel's 256:
    // execve says ENOENT; the name is cut, said so, and nothing overflows.
    let long_interp = format!("/no/{}/python3", "d".repeat(180));
    let long = dir.path().join("long");
    write_executable(&long, format!("#!{long_interp}\n").as_bytes(), 0o755);
    let e = Container::new(&long).spawn().unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.target, ExecTarget::Script, "{e}");
    assert!(exec.interpreter_truncated, "{e}");
    let cut = exec.interpreter.as_deref().expect("the start of the name");
    assert_eq!(cut.as_os_str().len(), 126, "{e}");
    assert!(long_interp.starts_with(cut.to_str().unwrap()), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("interpreter {}... (its #! line", cut.display())),
        "{msg}"
    );
    assert!(e.remedy().unwrap().contains("head -1 SCRIPT"), "{msg}");

    // Under the caller's own seccomp program nothing is probed: the message must not claim
    // that the file does not exist.
    let custom = || Seccomp::Program(Seccomp::default_program(CapSet::DOCKER_DEFAULT).unwrap());
    let e = Container::new(&script)
        .seccomp(custom())
        .spawn()
        .unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.target, ExecTarget::Unknown, "{e}");
    assert_eq!(exec.interpreter, None, "{e}");
    let msg = e.to_string();
    assert!(!msg.contains("does not exist"), "{msg}");
    assert!(
        msg.contains(&format!(
            "{} was not found in the caller's root (no rootfs), or is a script whose #! \
             interpreter or a binary whose loader is missing (not examined: ",
            script.display()
        )),
        "{msg}"
    );
    let e = Container::new("job.sh")
        .env("PATH", format!("/nonexistent:{}", dir.path().display()))
        .seccomp(custom())
        .spawn()
        .unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains("does not exist"), "{msg}");
    assert!(
        msg.contains("\"job.sh\" was not found in any directory of PATH=")
            && msg.contains("or is a script whose #! interpreter or a binary whose loader is missing (not examined: "),
        "{msg}"
    );

    // A dynamically linked binary whose loader is missing: ENOENT too, said as such.
    let true_bin = common::in_path("true").expect("true in PATH");
    let mut elf = std::fs::read(&true_bin).unwrap();
    let loader: &[u8] = b"/lib64/ld-linux-x86-64.so.2";
    if let Some(at) = elf.windows(loader.len()).position(|w| w == loader) {
        elf[at + loader.len() - 1] = b'9';
        let bin = dir.path().join("broken-true");
        write_executable(&bin, &elf, 0o755);
        let e = Container::new(&bin).spawn().unwrap_err();
        let exec = exec_failure(&e, Errno::ENOENT);
        assert_eq!(exec.target, ExecTarget::Elf, "{e}");
        assert!(
            e.to_string()
                .contains("dynamically linked binary whose loader"),
            "{e}"
        );
        assert!(e.remedy().unwrap().contains("readelf -l"), "{e}");
    } else {
        common::skip(
            "a_script_whose_interpreter_is_missing_says_so (ELF part)",
            "`true` has no x86-64 glibc loader path to break",
        );
    }

    // Not executable, and not a format the kernel knows.
    let plain = dir.path().join("plain");
    write_executable(&plain, b"#!/bin/sh\n", 0o644);
    let e = Container::new(&plain).spawn().unwrap_err();
    exec_failure(&e, Errno::EACCES);
    assert!(e.to_string().contains("may not be executed"), "{e}");
    assert!(e.remedy().unwrap().contains("chmod +x"), "{e}");
    let no_shebang = dir.path().join("no-shebang");
    write_executable(&no_shebang, b"echo hi\n", 0o755);
    let e = Container::new(&no_shebang).spawn().unwrap_err();
    exec_failure(&e, Errno::ENOEXEC);
    assert!(e.to_string().contains("script without a #! line"), "{e}");
    assert!(e.remedy().unwrap().contains("#!/bin/sh"), "{e}");

    // In an image, the case: a script for an interpreter the image lacks.
    if !is_root("a_script_whose_interpreter_is_missing_says_so (rootfs)") {
        return;
    }
    let image = BusyboxRootfs::new("interp-image");
    write_executable(
        &image.root().join("bin/job.py"),
        b"#!/usr/bin/python3\nprint('hi')\n",
        0o755,
    );
    let e = Container::new("job.py")
        .namespaces(Namespaces::MOUNT | Namespaces::PID)
        .rootfs(Rootfs::new(image.root()))
        .spawn()
        .unwrap_err();
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.target, ExecTarget::Script, "{e}");
    assert_eq!(exec.path.as_deref(), Some(Path::new("/bin/job.py")), "{e}");
    assert!(
        e.to_string().contains(
            "/bin/job.py exists but is a script whose interpreter /usr/bin/python3 is missing \
             in the container's root"
        ),
        "{e}"
    );
    assert!(
        e.remedy()
            .unwrap()
            .contains("add /usr/bin/python3 to the image"),
        "{e}"
    );

    // The same under init(true): contain-init probes as the child does, directly and through
    // PATH, and its report names the interpreter.
    write_executable(
        &image.root().join("bin/env-job"),
        b"#!/opt/bin/env python3\nprint('hi')\n",
        0o755,
    );
    let in_image = |program: &str, seccomp: Seccomp| {
        Container::new(program)
            .namespaces(Namespaces::MOUNT | Namespaces::PID)
            .rootfs(Rootfs::new(image.root()))
            .init(true)
            .seccomp(seccomp)
            .spawn()
            .unwrap_err()
    };
    for (program, interpreter) in [
        ("job.py", "/usr/bin/python3"),
        ("/bin/job.py", "/usr/bin/python3"),
        ("env-job", "/opt/bin/env"),
    ] {
        let e = in_image(program, Seccomp::Default);
        let exec = exec_failure(&e, Errno::ENOENT);
        assert_eq!(exec.target, ExecTarget::Script, "{program}: {e}");
        assert_eq!(
            exec.interpreter.as_deref(),
            Some(Path::new(interpreter)),
            "{program}: {e}"
        );
        let msg = e.to_string();
        assert!(!msg.contains("does not exist"), "{program}: {msg}");
        assert!(
            msg.contains(&format!(
                "exists but is a script whose interpreter {interpreter} is missing in the \
                 container's root"
            )),
            "{program}: {msg}"
        );
    }
    // An interpreter that exists in the image (a script whose own interpreter is missing).
    write_executable(&image.root().join("bin/nested"), b"#!/bin/job.py\n", 0o755);
    let e = in_image("nested", Seccomp::Default);
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(
        exec.interpreter.as_deref(),
        Some(Path::new("/bin/job.py")),
        "{e}"
    );
    assert!(exec.interpreter_exists, "{e}");
    // A program that is really missing, under init: said so.
    let e = in_image("/bin/no-such-job", Seccomp::Default);
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.target, ExecTarget::Missing, "{e}");
    assert!(
        e.to_string()
            .contains("/bin/no-such-job does not exist in the container's root"),
        "{e}"
    );
    // Under init and the caller's seccomp program, the init does not probe either.
    let e = in_image("/bin/job.py", custom());
    let exec = exec_failure(&e, Errno::ENOENT);
    assert_eq!(exec.target, ExecTarget::Unknown, "{e}");
    let msg = e.to_string();
    assert!(!msg.contains("does not exist"), "{msg}");
    assert!(msg.contains("(not examined: "), "{msg}");
}

#[test]
fn a_hybrid_host_names_every_missing_controller() {
    // The layout of the hybrid host this crate is developed on, as texts: runs anywhere.
    let mountinfo = "30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n\
         31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
         32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         33 30 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
         34 30 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
    let host = HostCgroups::from_texts(mountinfo, "0::/\n", "", "hugetlb\n").unwrap();
    let e = host
        .check_all(&[Controller::Memory, Controller::Cpu, Controller::Pids])
        .unwrap_err();
    let Error::Unsupported { feature, reason } = &e else {
        panic!("{e}")
    };
    assert_eq!(feature, "memory, cpu and pids controllers");
    for c in ["memory", "cpu", "pids"] {
        assert!(
            reason.contains(&format!(
                "{c} is bound to the cgroup v1 hierarchy at /sys/fs/cgroup/{c}"
            )),
            "{c}: {e}"
        );
    }
    assert!(
        reason.contains("cgroup v2 at /sys/fs/cgroup/unified offers only hugetlb")
            && reason.contains("systemd.unified_cgroup_hierarchy=1")
            && reason.contains("cgroup_no_v1=memory,cpu,pids")
            && reason.contains("LimitPolicy::BestEffort"),
        "{e}"
    );

    // This host, through spawn: every controller cgroup v2 lacks is in the one error.
    let here = HostCgroups::detect().unwrap();
    let lacking: Vec<Controller> = [Controller::Memory, Controller::Cpu, Controller::Pids]
        .into_iter()
        .filter(|&c| here.check(c).is_err())
        .collect();
    if lacking.is_empty() {
        eprintln!("cgroup v2 has memory, cpu and pids here: the spawn part is not run");
        return;
    }
    assert!(!in_vm(), "the guest lacks {lacking:?}");
    let e = Container::new("true")
        .resources(limits())
        .spawn()
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
    for c in &lacking {
        assert!(msg.contains(&format!("{c} is ")), "{c} not named: {msg}");
    }
    assert!(msg.contains("To fix: "), "{msg}");
}

/// As root: reruns itself as nobody. As nobody: a container's cgroup cannot be made in the
/// caller's cgroup, which is not delegated; the error says so and what to do, and best
/// effort runs the container without a cgroup, listing every limit.
#[test]
fn a_rootless_cgroup_failure_explains_delegation() {
    const TEST: &str = "a_rootless_cgroup_failure_explains_delegation";
    match role().as_deref() {
        Some("nobody") => {}
        Some(_) => return,
        None => {
            if !is_root(TEST) {
                return;
            }
            if HostCgroups::detect()
                .and_then(|h| h.own_cgroup_dir())
                .is_err()
            {
                return common::skip(TEST, "no cgroup v2 here");
            }
            let mode = std::fs::metadata("/").unwrap().permissions().mode();
            if mode & 0o001 == 0 {
                return common::skip(TEST, "/ is not searchable by other users here");
            }
            return common::assert_passes_as_nobody(TEST, "nobody", false);
        }
    }
    let own = Cgroup::own().unwrap();
    // No controller needed: the group goes into the caller's own cgroup, which is root's.
    let e = Container::new("true")
        .resources(Resources::default())
        .spawn()
        .unwrap_err();
    let msg = e.to_string();
    eprintln!("the error: {msg}");
    let Error::Unsupported { feature, .. } = &e else {
        panic!("not Unsupported: {msg}")
    };
    assert_eq!(feature, "a cgroup for the container");
    for needed in [
        own.path().to_str().unwrap(),
        "is the cgroup this process is in",
        "not delegated to uid 65534",
        "EACCES",
        "systemd-run --user --scope -p Delegate=yes",
        "run as root",
        "drop these limits",
        "LimitPolicy::BestEffort",
    ] {
        assert!(msg.contains(needed), "{needed:?} missing from: {msg}");
    }

    // Namespaces without privilege (and without a user namespace): clone refuses, and the
    // remedy names the capability and the sysctls that gate unprivileged user namespaces.
    let e = Container::new("true")
        .namespaces(Namespaces::NET)
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Sys { syscall, errno: Errno::EPERM, .. } if syscall.starts_with("clone")),
        "{e}"
    );
    let remedy = e.remedy().expect("a remedy for clone EPERM");
    for needed in [
        "CAP_SYS_ADMIN",
        "kernel.unprivileged_userns_clone",
        "kernel.apparmor_restrict_unprivileged_userns",
        "user.max_user_namespaces",
    ] {
        assert!(remedy.contains(needed), "{needed:?} missing from: {e}");
    }

    // Best effort: the container runs without a cgroup, and says what it did not apply.
    let mut child = Container::new("true")
        .resources(Resources::new().pids_max(64))
        .limit_policy(LimitPolicy::BestEffort)
        .spawn()
        .unwrap();
    assert!(child.cgroup().is_none());
    let skipped = child.skipped_limits();
    let settings: Vec<(&str, &str, bool)> = skipped
        .iter()
        .map(|s| (&s.setting[..], &s.value[..], s.controller.is_some()))
        .collect();
    // The limit, and that there is no cgroup at all (kill_container then reaches only what
    // a PID namespace holds): a runner must be able to tell.
    assert_eq!(
        settings,
        [
            ("pids.max", "64", true),
            ("cgroup", "the container's own cgroup", false)
        ],
        "{skipped:?}"
    );
    for s in skipped {
        assert!(matches!(s.reason, Error::Unsupported { .. }), "{s}");
        assert!(
            !s.to_string().contains("BestEffort"),
            "the reason suggests what the caller chose: {s}"
        );
    }
    assert!(child.wait().unwrap().success());
    // No limits, only a cgroup asked for (for usage and kill_container): its absence is
    // reported too, not silently dropped.
    let mut child = Container::new("true")
        .resources(Resources::new())
        .limit_policy(LimitPolicy::BestEffort)
        .spawn()
        .unwrap();
    assert!(child.cgroup().is_none());
    let skipped: Vec<&str> = child
        .skipped_limits()
        .iter()
        .map(|s| &s.setting[..])
        .collect();
    assert_eq!(skipped, ["cgroup"]);
    assert!(child.wait().unwrap().success());
}

/// `LimitPolicy::BestEffort`: on a hybrid host the limits of controllers cgroup v2 lacks are
/// skipped, each with its reason, and the container starts; in the guest nothing is skipped
/// and the limits are in force. Strict (the default) refuses the same container on a hybrid
/// host.
#[test]
fn best_effort_applies_what_the_host_supports_and_lists_the_rest() {
    const TEST: &str = "best_effort_applies_what_the_host_supports_and_lists_the_rest";
    if !is_root(TEST) {
        return;
    }
    let host = match HostCgroups::detect() {
        Ok(h) if h.v2_mount().is_ok() => h,
        _ => return common::skip(TEST, "no cgroup v2 here"),
    };
    // Where the container's group gets its controllers: the caller's own cgroup when it is
    // the root, else the top of the mount (see contain::cgroup::place).
    let own = Cgroup::own().unwrap();
    let top = match own.is_root().unwrap() {
        true => own,
        false => Cgroup::open(&host.v2_mount().unwrap().mount_point).unwrap(),
    };
    let enabled = top.subtree_control().unwrap();
    let two_mb = HugePageSize::from_bytes(Bytes::mib(2)).unwrap();
    let mut r = limits();
    r.hugetlb_max = vec![(two_mb, Max::Limit(Bytes::mib(4)))];
    let mut child = Container::new("true")
        .resources(r.clone())
        .limit_policy(LimitPolicy::BestEffort)
        .spawn()
        .unwrap();
    let skipped: Vec<(String, String, Controller)> = child
        .skipped_limits()
        .iter()
        .map(|s| {
            let c = s.controller.expect("as root the container gets a cgroup");
            (s.setting.clone(), s.value.clone(), c)
        })
        .collect();
    for s in child.skipped_limits() {
        eprintln!("{s}");
        // The caller chose best effort already: the reason does not suggest it again.
        assert!(!s.to_string().contains("BestEffort"), "{s}");
        assert!(
            s.to_string()
                .starts_with(&format!("{}={} not applied: ", s.setting, s.value)),
            "{s}"
        );
    }
    let cg = child.cgroup().expect("a cgroup as root");
    let mut expected = Vec::new();
    for (setting, value, c) in [
        ("memory.max", "268435456", Controller::Memory),
        ("cpu.max", "100000 100000", Controller::Cpu),
        ("pids.max", "64", Controller::Pids),
        ("hugetlb.2MB.max", "4194304", Controller::Hugetlb),
    ] {
        if host.check(c).is_err() || !enabled.contains(&c) {
            expected.push((setting.to_owned(), value.to_owned(), c));
        } else {
            // Applied: the file says so.
            let got = std::fs::read_to_string(cg.path().join(setting)).unwrap();
            assert_eq!(got.trim(), value, "{setting}");
        }
    }
    assert_eq!(skipped, expected);
    for s in child.skipped_limits() {
        let msg = s.reason.to_string();
        let c = s
            .controller
            .expect("only limits of controllers are skipped here");
        assert!(matches!(s.reason, Error::Unsupported { .. }), "{msg}");
        let why = if host.check(c).is_err() {
            format!("{c} controller is not supported here")
        } else {
            format!(
                "echo +{c} > {}",
                top.path().join("cgroup.subtree_control").display()
            )
        };
        assert!(msg.contains(&why), "{why:?} missing from: {msg}");
    }
    if in_vm() {
        assert!(
            skipped.is_empty(),
            "the guest has every controller: {skipped:?}"
        );
    }
    assert!(child.wait().unwrap().success());
    // The group is there for usage even when its limits were skipped.
    assert!(child.usage().is_ok());

    if !expected.is_empty() {
        let e = Container::new("true").resources(r).spawn().unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "strict: {e}");
    }
}

/// The run example: a missing command names the PATH searched (exit 127, as a shell), and
/// `--limits-best-effort` runs with what the host supports, warning about each skipped limit.
#[test]
fn the_run_example_explains_a_missing_command_and_warns_about_skipped_limits() {
    use common::run::{code, run};
    const TEST: &str = "the_run_example_explains_a_missing_command_and_warns_about_skipped_limits";
    if !is_root(TEST) {
        return;
    }
    let o = run(&["--", "no-such-tool-xyz"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 127, "{err}");
    assert!(
        err.contains("no-such-tool-xyz: command not found: container setup failed at execve")
            && err.contains("not found in any directory of PATH=/usr/local/sbin:"),
        "{err}"
    );
    // A script that exists, with a CRLF #! line: still 127 as docker, but not "not found".
    let dir = TempDir::new("run-crlf");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.path().join("crlf.sh");
    std::fs::write(&script, b"#!/bin/sh\r\necho hi\r\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(&["--no-rootfs", "--", script.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 127, "{err}");
    assert!(
        err.contains("crlf.sh: cannot run: ") && err.contains("carriage return"),
        "{err}"
    );

    let host = match HostCgroups::detect() {
        Ok(h) if h.v2_mount().is_ok() => h,
        _ => return common::skip(TEST, "no cgroup v2 here (best-effort part)"),
    };
    let o = run(&["--pids", "10", "--limits-best-effort", "--", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    let warned = err.contains("contain: warning: pids.max=10 not applied: ");
    let top = HostCgroups::detect()
        .and_then(|h| h.v2_mount().map(|m| m.mount_point.clone()))
        .and_then(Cgroup::open)
        .and_then(|top| top.subtree_control())
        .unwrap();
    let lacks_pids = host.check(Controller::Pids).is_err() || !top.contains(&Controller::Pids);
    assert_eq!(warned, lacks_pids, "{err}");
    if in_vm() {
        assert!(!warned, "the guest has pids: {err}");
    }
}

/// execve refuses a FIFO (or a device) with EACCES before opening it; the probe that looks
/// at a failed program must not open it either: that would release a writer blocked in
/// `open` and eat its data. Here the FIFO holds data (we keep it open read-write): after the
/// failed spawn the data must still be there, unread.
#[test]
fn a_fifo_as_the_program_is_not_opened_by_the_probe() {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let dir = TempDir::new("fifo-program");
    let fifo = dir.path().join("prog");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
    // Read-write: neither end blocks, and the data stays in the pipe until someone reads.
    let mut ours = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    ours.write_all(b"DATA").unwrap();
    for init in [false, true] {
        let ns = match init {
            true => Namespaces::USER | Namespaces::PID,
            false => Namespaces::empty(),
        };
        let e = Container::new(&fifo)
            .namespaces(ns)
            .init(init)
            .spawn()
            .map(drop)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Setup {
                    stage: SetupStage::Exec,
                    errno: Errno::EACCES,
                    ..
                }
            ),
            "init {init}: {e}"
        );
        assert!(e.to_string().contains(fifo.to_str().unwrap()), "{e}");
    }
    let mut left = [0u8; 8];
    let n = ours.read(&mut left).unwrap();
    assert_eq!(&left[..n], b"DATA", "the probe read from the FIFO");
}

/// A rootless caller in a cgroup delegated to it (systemd's `Delegate=yes`, the remedy the
/// crate itself gives) may make cgroups but not load BPF programs: the default device
/// allowlist cannot be attached. Strict says so with what to do; best effort skips it, says
/// so, and the container runs in its cgroup.
#[test]
fn a_delegated_rootless_caller_gets_a_cgroup_without_the_device_filter() {
    const TEST: &str = "a_delegated_rootless_caller_gets_a_cgroup_without_the_device_filter";
    if let Some(r) = role() {
        // The role carries the delegated cgroup's path.
        let Some(deleg) = r.strip_prefix("delegated:") else {
            return;
        };
        let job = || {
            Container::new("true")
                .resources(Resources::new())
                .cgroup_parent(deleg)
        };
        let e = job().spawn().map(drop).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
        for needed in ["BPF_PROG_LOAD", "CAP_BPF", "device_allowlist", "BestEffort"] {
            assert!(msg.contains(needed), "{needed:?} missing from: {msg}");
        }
        let mut child = job().limit_policy(LimitPolicy::BestEffort).spawn().unwrap();
        let skipped: Vec<(&str, bool)> = child
            .skipped_limits()
            .iter()
            .map(|s| (&s.setting[..], s.controller.is_none()))
            .collect();
        assert_eq!(skipped, [("devices", true)], "{:?}", child.skipped_limits());
        let devices = child.skipped_limits()[0].to_string();
        assert!(
            devices.starts_with("the default device allowlist (BPF_CGROUP_DEVICE) not made: ")
                && !devices.contains("BestEffort"),
            "{devices}"
        );
        let cg = child
            .cgroup()
            .expect("a cgroup in the delegated one")
            .path()
            .to_owned();
        assert!(cg.starts_with(deleg), "{}", cg.display());
        assert!(child.wait().unwrap().success());
        return;
    }
    if !is_root(TEST) {
        return;
    }
    let host = match HostCgroups::detect() {
        Ok(h) if h.v2_mount().is_ok() => h,
        _ => return common::skip(TEST, "no cgroup v2 here"),
    };
    drop(host);
    // The delegated subtree: owned by nobody as systemd hands it over, the process in a leaf
    // of it ("proc"), its containers made beside it.
    let deleg = CgroupBuilder::new(format!("contain-test-deleg-{}", std::process::id()))
        .create_in_default()
        .unwrap();
    let leaf = CgroupBuilder::new("proc").create_in(&deleg).unwrap().keep();
    for p in [
        deleg.path().to_owned(),
        deleg.path().join("cgroup.procs"),
        deleg.path().join("cgroup.subtree_control"),
        deleg.path().join("cgroup.threads"),
        leaf.path().to_owned(),
        leaf.path().join("cgroup.procs"),
    ] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let role = format!("delegated:{}", deleg.path().display());
    let out = common::rerun_as_nobody_in(TEST, &role, false, Some(leaf.path()));
    assert!(out.status.success(), "{TEST} failed as nobody");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    drop(leaf);
    drop(deleg);
}

/// A script saved with CRLF line endings: execve looks for `/bin/sh\r`. The message says so
/// and how to convert it, instead of "/bin/sh is missing" (it is not), and the `\r` is shown
/// escaped rather than sent to the terminal.
#[test]
fn a_crlf_script_is_called_what_it_is() {
    let dir = TempDir::new("crlf");
    let script = dir.path().join("crlf.sh");
    std::fs::write(&script, b"#!/bin/sh\r\necho hi\r\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    for init in [false, true] {
        let ns = match init {
            true => Namespaces::USER | Namespaces::PID,
            false => Namespaces::empty(),
        };
        let e = Container::new(&script)
            .namespaces(ns)
            .init(init)
            .spawn()
            .map(drop)
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("carriage return")
                && msg.contains("\"/bin/sh\\r\"")
                && msg.contains("dos2unix"),
            "init {init}: {msg}"
        );
        assert!(!msg.contains('\r'), "a raw carriage return in: {msg:?}");
        assert!(!msg.contains("install /bin/sh"), "init {init}: {msg}");
    }
}

/// `Container::output` consumes its `Child`: the best-effort report comes in `Output`, the
/// same as `spawn()` gives (here on a hybrid host, limits skipped; in the guest, none).
#[test]
fn output_reports_the_skipped_limits_as_spawn_does() {
    if !is_root("output_reports_the_skipped_limits_as_spawn_does") {
        return;
    }
    let job = Container::new("true")
        .resources(limits())
        .limit_policy(LimitPolicy::BestEffort);
    let settings = |s: &[contain::cgroup::SkippedLimit]| -> Vec<String> {
        s.iter().map(|s| s.setting.clone()).collect()
    };
    let mut child = job.spawn().unwrap();
    let from_spawn = settings(child.skipped_limits());
    child.wait().unwrap();
    let lacks_memory = HostCgroups::detect()
        .and_then(|h| h.check(Controller::Memory))
        .is_err();
    assert_eq!(from_spawn.is_empty(), !lacks_memory, "{from_spawn:?}");
    let out = job.output().unwrap();
    assert!(out.status.success());
    assert_eq!(settings(&out.skipped_limits), from_spawn);
}

/// A parent the caller names that is not there, or not a cgroup v2 directory, is a mistake
/// to fix, not something the host lacks: refused with what to do, under best effort too.
#[test]
fn a_wrong_cgroup_parent_is_refused_even_under_best_effort() {
    const TEST: &str = "a_wrong_cgroup_parent_is_refused_even_under_best_effort";
    if HostCgroups::detect()
        .and_then(|h| h.v2_mount().map(drop))
        .is_err()
    {
        return common::skip(TEST, "no cgroup v2 here");
    }
    let dir = TempDir::new("not-a-cgroup");
    let nosuch = format!("contain-no-such-parent-{}", std::process::id());
    for policy in [LimitPolicy::Strict, LimitPolicy::BestEffort] {
        for (parent, says) in [
            (nosuch.as_str(), "does not exist"),
            (dir.path().to_str().unwrap(), "not"),
        ] {
            let e = Container::new("true")
                .resources(Resources::new().pids_max(8))
                .cgroup_parent(parent)
                .limit_policy(policy)
                .spawn()
                .map(drop)
                .unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(
                    e,
                    Error::Config {
                        what: "cgroup parent",
                        ..
                    }
                ) && msg.contains(says),
                "{policy:?} {parent}: {msg}"
            );
        }
    }
}
