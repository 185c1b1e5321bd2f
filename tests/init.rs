//! The optional PID-1 init: zombies reaped, signals forwarded, the payload's status passed on;
//! and what a payload that is PID 1 itself gets instead, as the docs say.

mod common;

use std::time::Duration;

use common::{is_root, output, stdout};
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::{Error, SetupStage};

/// Zombies whose parent is `pid`, from the host's /proc.
fn zombie_children(pid: i32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let rest: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().collect())
                .unwrap_or_default();
            rest.first() == Some(&"Z") && rest.get(1) == Some(&pid.to_string().as_str())
        })
        .count()
}

/// A payload that makes an orphan (which exits at once) and then never reaps anything.
fn orphan_maker(init: bool) -> Container {
    let mut c = Container::new("sh");
    c.args(["-c", "sh -c 'sleep 0.1 &'; exec sleep 3"])
        .namespaces(Namespaces::PID)
        .init(init);
    c
}

#[test]
fn init_reaps_orphans_and_pid_1_without_it_does_not() {
    if !is_root("init_reaps_orphans_and_pid_1_without_it_does_not") {
        return;
    }
    for init in [true, false] {
        let mut child = orphan_maker(init).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let zombies = zombie_children(child.id());
        child.kill(libc::SIGKILL).unwrap();
        child.wait().unwrap();
        if init {
            assert_eq!(zombies, 0, "the init must reap the orphan");
        } else {
            assert_eq!(
                zombies, 1,
                "as documented, a PID 1 that never waits keeps the orphan as a zombie"
            );
        }
    }
}

#[test]
fn init_forwards_sigterm_and_pid_1_without_it_ignores_it() {
    if !is_root("init_forwards_sigterm_and_pid_1_without_it_ignores_it") {
        return;
    }
    let mut with = Container::new("sleep")
        .arg("30")
        .namespaces(Namespaces::PID)
        .init(true)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    with.kill(libc::SIGTERM).unwrap();
    let st = with.wait().unwrap();
    assert_eq!((st.code(), st.shell_code()), (Some(143), 143), "{st}");

    let mut without = Container::new("sleep")
        .arg("30")
        .namespaces(Namespaces::PID)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    without.kill(libc::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        without.try_wait().unwrap(),
        None,
        "PID 1 without a handler ignores SIGTERM"
    );
    without.kill(libc::SIGKILL).unwrap();
    assert_eq!(without.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn init_passes_the_status_on_and_is_pid_1() {
    if !is_root("init_passes_the_status_on_and_is_pid_1") {
        return;
    }
    let o = output(
        Container::new("sh")
            .args(["-c", "echo $$ $PPID; exit 5"])
            .namespaces(Namespaces::PID)
            .init(true),
    );
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(stdout(&o), "2 1", "the payload is PID 2, child of the init");
    let e = Container::new("/nonexistent")
        .namespaces(Namespaces::PID)
        .init(true)
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Setup {
                stage: SetupStage::Exec,
                ..
            }
        ),
        "{e}"
    );
    let e = Container::new("true").init(true).spawn().unwrap_err();
    assert!(matches!(e, Error::Config { what: "init", .. }), "{e}");
}
