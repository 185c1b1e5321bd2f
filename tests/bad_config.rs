//! Every refused configuration returns its error and leaves nothing behind: no descriptor,
//! no child process, no change to the caller's namespaces.
//!
//! One test function on purpose: it counts this process's descriptors and children, which
//! other tests running in parallel threads would disturb.

mod common;

use contain::idmap::IdMap;
use contain::namespace::{Namespace, Namespaces};
use contain::process::{CloneCall, Container};
use contain::Signal;
use contain::{Errno, Error, SetupStage};

fn open_fds() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{} -> {:?}",
                e.file_name().to_string_lossy(),
                std::fs::read_link(e.path()).ok()
            )
        })
        .filter(|s| !s.contains("/proc/") || !s.contains("/fd"))
        .collect();
    v.sort();
    v
}

#[test]
fn refused_configurations_leave_nothing_behind() {
    let root = nix::unistd::geteuid().is_root();
    let net_before = Namespace::current(Namespaces::NET).unwrap().id().unwrap();
    let before = open_fds();
    assert!(!common::procs::has_children());

    let own_net = Namespace::current(Namespaces::NET).unwrap();
    let null = || -> std::os::fd::OwnedFd { std::fs::File::open("/dev/null").unwrap().into() };
    let user = Namespaces::USER;
    let mut cases: Vec<(&str, Container, Expect)> = vec![
        ("empty program", build("", |c| c), config("program")),
        ("NUL in program", build("a\0b", |c| c), config("program")),
        (
            "NUL in argument",
            build("true", |c| c.arg("x\0y")),
            config("argument"),
        ),
        (
            "NUL in env",
            build("true", |c| c.env("K", "v\0")),
            config("environment"),
        ),
        (
            "= in env name",
            build("true", |c| c.env("K=V", "v")),
            config("environment"),
        ),
        (
            "hostname without UTS",
            build("true", |c| c.hostname("x")),
            config("hostname"),
        ),
        (
            "hostname too long",
            build("true", |c| {
                c.namespaces(Namespaces::UTS).hostname("h".repeat(65))
            }),
            config("hostname"),
        ),
        (
            "uid map without USER",
            build("true", |c| c.uid_map(&[IdMap::new(0, 1000, 1)])),
            config("id maps"),
        ),
        (
            "overlapping uid map",
            build("true", |c| {
                c.namespaces(user)
                    .uid_map(&[IdMap::new(0, 1000, 10), IdMap::new(5, 5000, 1)])
            }),
            config("uid map"),
        ),
        (
            "count 0 gid map",
            build("true", |c| {
                c.namespaces(user).gid_map(&[IdMap::new(0, 1000, 0)])
            }),
            config("gid map"),
        ),
        (
            "uid not mapped",
            build("true", |c| {
                c.namespaces(user)
                    .uid_map(&[IdMap::new(0, 100_000, 10)])
                    .uid(50)
            }),
            config("uid"),
        ),
        (
            "gid not mapped by default",
            build("true", |c| c.namespaces(user).gid(7)),
            config("gid"),
        ),
        (
            "fd target 1",
            build("true", |c| c.pass_fd(null(), 1)),
            config("passed fd"),
        ),
        (
            "fd target twice",
            build("true", |c| c.pass_fd(null(), 9).pass_fd(null(), 9)),
            config("passed fd"),
        ),
        (
            "create and join NET",
            build("true", |c| {
                c.namespaces(Namespaces::NET)
                    .join(Namespace::current(Namespaces::NET).unwrap())
            }),
            config("namespaces"),
        ),
        (
            "time with legacy clone",
            build("true", |c| {
                c.namespaces(Namespaces::TIME).clone_call(CloneCall::Legacy)
            }),
            config("namespaces"),
        ),
        (
            "missing program",
            build("/nonexistent/program", |c| c),
            setup(SetupStage::Exec, Errno::ENOENT),
        ),
        (
            "missing cwd",
            build("true", |c| c.current_dir("/nonexistent")),
            chdir("/nonexistent", Errno::ENOENT),
        ),
    ];
    if root {
        // The new user namespace has no power over the host's network namespace.
        cases.push((
            "join a host namespace from a new user namespace",
            build("true", |c| {
                c.namespaces(Namespaces::all() - Namespaces::NET)
                    .join(own_net)
            }),
            setup(SetupStage::JoinNamespace, Errno::EPERM),
        ));
        // Unprivileged inside the new user namespace: cannot enter a path only root may.
        cases.push((
            "cwd not reachable as the target user",
            build("true", |c| {
                c.namespaces(user)
                    .uid_map(&[IdMap::new(0, 0, 65536)])
                    .gid_map(&[IdMap::new(0, 0, 65536)])
                    .uid(1000)
                    .gid(1000)
                    .current_dir("/root")
            }),
            chdir("/root", Errno::EACCES),
        ));
    } else {
        eprintln!(
            "refused_configurations_leave_nothing_behind: the cases that need root are not run"
        );
    }

    for (name, c, expected) in &cases {
        let e = match c.spawn() {
            Ok(mut child) => {
                let _ = child.kill(Signal::SIGKILL);
                let _ = child.wait();
                panic!("{name}: spawn succeeded")
            }
            Err(e) => e,
        };
        assert!(expected(&e), "{name}: unexpected error {e:?}");
        assert!(!e.to_string().is_empty());
        assert!(
            !common::procs::has_children(),
            "{name}: a child was left behind"
        );
    }
    drop(cases);
    assert_eq!(open_fds(), before, "descriptors leaked");
    assert_eq!(
        Namespace::current(Namespaces::NET).unwrap().id().unwrap(),
        net_before
    );
}

type Expect = Box<dyn Fn(&Error) -> bool>;

fn build(program: &str, f: impl FnOnce(Container) -> Container) -> Container {
    f(Container::new(program))
}

fn config(what: &'static str) -> Expect {
    Box::new(move |e| matches!(e, Error::Config { what: w, .. } if *w == what))
}

/// A working directory the child could not enter: named, with the errno.
fn chdir(path: &'static str, errno: Errno) -> Expect {
    Box::new(move |e| {
        matches!(e, Error::Sys { syscall, path: Some(p), errno: n }
            if syscall.starts_with("chdir") && p == std::path::Path::new(path) && *n == errno)
    })
}

fn setup(stage: SetupStage, errno: Errno) -> Expect {
    Box::new(
        move |e| matches!(e, Error::Setup { stage: s, errno: n, .. } if *s == stage && *n == errno),
    )
}
