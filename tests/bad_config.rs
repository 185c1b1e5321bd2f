//! Every refused configuration returns its error and leaves nothing behind: no descriptor,
//! no child process, no change to the caller's namespaces.
//!
//! One test function on purpose: it counts this process's descriptors and children, which
//! other tests running in parallel threads would disturb.

mod common;

use contain::idmap::IdMap;
use contain::namespace::{Namespace, Namespaces};
use contain::process::{CloneCall, Container};
use contain::{Error, SetupStage};

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

fn has_children() -> bool {
    // waitid(P_ALL, WNOHANG|WNOWAIT) says ECHILD when there is no child at all.
    // SAFETY: a zeroed siginfo_t is valid and waitid writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    !(r == -1 && nix::errno::Errno::last() == nix::errno::Errno::ECHILD)
}

#[test]
fn refused_configurations_leave_nothing_behind() {
    let root = nix::unistd::geteuid().is_root();
    let net_before = Namespace::current(Namespaces::NET).unwrap().id().unwrap();
    let before = open_fds();
    assert!(!has_children());

    let own_net = Namespace::current(Namespaces::NET).unwrap();
    let mut cases: Vec<(&str, Container, fn(&Error) -> bool)> = vec![
        ("empty program", Container::new(""), |e| {
            matches!(
                e,
                Error::Config {
                    what: "program",
                    ..
                }
            )
        }),
        ("NUL in program", Container::new("a\0b"), |e| {
            matches!(
                e,
                Error::Config {
                    what: "program",
                    ..
                }
            )
        }),
        (
            "NUL in argument",
            {
                let mut c = Container::new("true");
                c.arg("x\0y");
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "argument",
                        ..
                    }
                )
            },
        ),
        (
            "NUL in env",
            {
                let mut c = Container::new("true");
                c.env("K", "v\0");
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "environment",
                        ..
                    }
                )
            },
        ),
        (
            "= in env name",
            {
                let mut c = Container::new("true");
                c.env("K=V", "v");
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "environment",
                        ..
                    }
                )
            },
        ),
        (
            "hostname without UTS",
            {
                let mut c = Container::new("true");
                c.hostname("x");
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "hostname",
                        ..
                    }
                )
            },
        ),
        (
            "hostname too long",
            {
                let mut c = Container::new("true");
                c.namespaces(Namespaces::UTS).hostname("h".repeat(65));
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "hostname",
                        ..
                    }
                )
            },
        ),
        (
            "uid map without USER",
            {
                let mut c = Container::new("true");
                c.uid_map(&[IdMap::new(0, 1000, 1)]);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "id maps",
                        ..
                    }
                )
            },
        ),
        (
            "overlapping uid map",
            {
                let mut c = Container::new("true");
                c.namespaces(Namespaces::USER)
                    .uid_map(&[IdMap::new(0, 1000, 10), IdMap::new(5, 5000, 1)]);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "uid map",
                        ..
                    }
                )
            },
        ),
        (
            "count 0 gid map",
            {
                let mut c = Container::new("true");
                c.namespaces(Namespaces::USER)
                    .gid_map(&[IdMap::new(0, 1000, 0)]);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "gid map",
                        ..
                    }
                )
            },
        ),
        (
            "fd target 1",
            {
                let mut c = Container::new("true");
                c.pass_fd(std::fs::File::open("/dev/null").unwrap().into(), 1);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "passed fd",
                        ..
                    }
                )
            },
        ),
        (
            "fd target twice",
            {
                let mut c = Container::new("true");
                c.pass_fd(std::fs::File::open("/dev/null").unwrap().into(), 9)
                    .pass_fd(std::fs::File::open("/dev/null").unwrap().into(), 9);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "passed fd",
                        ..
                    }
                )
            },
        ),
        (
            "create and join NET",
            {
                let mut c = Container::new("true");
                c.namespaces(Namespaces::NET)
                    .join(Namespace::current(Namespaces::NET).unwrap());
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "namespaces",
                        ..
                    }
                )
            },
        ),
        (
            "time with legacy clone",
            {
                let mut c = Container::new("true");
                c.namespaces(Namespaces::TIME).clone_call(CloneCall::Legacy);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Config {
                        what: "namespaces",
                        ..
                    }
                )
            },
        ),
        (
            "missing program",
            Container::new("/nonexistent/program"),
            |e| {
                matches!(
                    e,
                    Error::Setup {
                        stage: SetupStage::Exec,
                        ..
                    }
                )
            },
        ),
        (
            "missing cwd",
            {
                let mut c = Container::new("true");
                c.current_dir("/nonexistent");
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Setup {
                        stage: SetupStage::Chdir,
                        ..
                    }
                )
            },
        ),
    ];
    if root {
        cases.push((
            "uid not mapped",
            {
                let mut c = Container::new("true");
                c.namespaces(Namespaces::USER)
                    .uid_map(&[IdMap::new(0, 100_000, 10)])
                    .uid(50);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Setup {
                        stage: SetupStage::SetUid,
                        ..
                    }
                )
            },
        ));
        // The new user namespace has no power over the host's network namespace.
        cases.push((
            "join a host namespace from a new user namespace",
            {
                let mut c = Container::new("true");
                c.namespaces(Namespaces::all() - Namespaces::NET)
                    .join(own_net);
                c
            },
            |e| {
                matches!(
                    e,
                    Error::Setup {
                        stage: SetupStage::JoinNamespace,
                        errno: contain::Errno::EPERM
                    }
                )
            },
        ));
    } else {
        eprintln!(
            "refused_configurations_leave_nothing_behind: the cases that need root are not run"
        );
    }

    for (name, c, expected) in &cases {
        let e = match c.spawn() {
            Ok(mut child) => {
                let _ = child.kill(libc::SIGKILL);
                let _ = child.wait();
                panic!("{name}: spawn succeeded")
            }
            Err(e) => e,
        };
        assert!(expected(&e), "{name}: unexpected error {e:?}");
        assert!(!e.to_string().is_empty());
        assert!(!has_children(), "{name}: a child was left behind");
    }
    drop(cases);
    assert_eq!(open_fds(), before, "descriptors leaked");
    assert_eq!(
        Namespace::current(Namespaces::NET).unwrap().id().unwrap(),
        net_before
    );
    common::is_root("");
}
