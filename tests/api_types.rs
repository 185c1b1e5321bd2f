//! The crate's own types at its API: `Errno`, `Signal`, `Pid` (issue 10, part 3). No nix type
//! is needed to call the library or to read what it returns.

mod common;

use std::io::ErrorKind;

use common::{is_root, skip};
use contain::cgroup::CgroupBuilder;
use contain::process::{Container, SignalForwarder};
use contain::{Errno, Error, Pid, Signal};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Errno

#[test]
fn errno_names_and_descriptions_are_the_kernel_s() {
    for (e, n, name, desc) in [
        (Errno::EPERM, 1, "EPERM", "Operation not permitted"),
        (Errno::ENOENT, 2, "ENOENT", "No such file or directory"),
        (Errno::EACCES, 13, "EACCES", "Permission denied"),
        (Errno::EBUSY, 16, "EBUSY", "Device or resource busy"),
        (Errno::ENOSPC, 28, "ENOSPC", "No space left on device"),
        (
            Errno::ELOOP,
            40,
            "ELOOP",
            "Too many symbolic links encountered",
        ),
        (
            Errno::EHWPOISON,
            133,
            "EHWPOISON",
            "Memory page has hardware error",
        ),
    ] {
        assert_eq!(e.raw(), n);
        assert_eq!(Errno::from_raw(n), e);
        assert_eq!(e.name(), Some(name));
        assert_eq!(e.desc(), desc);
        // Display as nix's was, so messages that users match on keep their wording.
        assert_eq!(e.to_string(), format!("{name}: {desc}"));
        assert_eq!(format!("{e:?}"), name);
    }
}

#[test]
fn an_unknown_errno_neither_panics_nor_gets_a_name() {
    for n in [4095, 0, 41, 134, -5, i32::MAX, i32::MIN] {
        let e = Errno::from_raw(n);
        assert_eq!(e.raw(), n, "the number is kept");
        assert_eq!(e.name(), None, "{n} is no Linux errno");
        assert_eq!(e.desc(), "Unknown error");
        assert_eq!(e.to_string(), format!("errno {n}: Unknown error"));
        assert_eq!(format!("{e:?}"), format!("Errno({n})"));
    }
}

#[test]
fn errnos_can_be_matched_on() {
    let what = |e: Errno| match e {
        Errno::ENOENT | Errno::ENOTDIR => "missing",
        Errno::EACCES | Errno::EPERM => "denied",
        _ => "other",
    };
    assert_eq!(what(Errno::from_raw(libc::ENOENT)), "missing");
    assert_eq!(what(Errno::from_raw(libc::EPERM)), "denied");
    assert_eq!(what(Errno::from_raw(4095)), "other");
    assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
}

#[test]
fn errno_last_reads_the_thread_s_errno() {
    // SAFETY: close of a descriptor that is not open only sets errno.
    assert_eq!(unsafe { libc::close(-1) }, -1);
    assert_eq!(Errno::last(), Errno::EBADF);
}

#[test]
fn errno_to_io_error_keeps_the_number() {
    let io = std::io::Error::from(Errno::ENOENT);
    assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(io.kind(), ErrorKind::NotFound);
    let io = std::io::Error::from(Errno::from_raw(4095));
    assert_eq!(io.raw_os_error(), Some(4095));
}

#[test]
fn error_to_io_error_keeps_the_message_kind_and_the_error() {
    // A real failure from the library: a program that does not exist.
    let e = Container::new("/nonexistent/program")
        .spawn()
        .expect_err("no such program");
    let errno = e.errno().expect("a setup error has an errno");
    assert_eq!(errno, Errno::ENOENT);
    let message = e.to_string();
    let io = std::io::Error::from(e);
    assert_eq!(io.kind(), ErrorKind::NotFound);
    assert_eq!(io.to_string(), message);
    let inner = io
        .get_ref()
        .and_then(|i| i.downcast_ref::<Error>())
        .expect("the contain::Error inside");
    assert_eq!(inner.errno(), Some(Errno::ENOENT));

    let config: Error = "SIGFOO".parse::<Signal>().unwrap_err();
    assert_eq!(std::io::Error::from(config).kind(), ErrorKind::InvalidInput);
}

// ---------------------------------------------------------------------------------------
// Signal

#[test]
fn signals_parse_from_what_docker_and_kill_accept() {
    let rtmin = libc::SIGRTMIN();
    let rtmax = libc::SIGRTMAX();
    for (input, want) in [
        ("TERM", libc::SIGTERM),
        ("SIGTERM", libc::SIGTERM),
        ("sigterm", libc::SIGTERM),
        ("term", libc::SIGTERM),
        ("SigTerm", libc::SIGTERM),
        ("15", libc::SIGTERM),
        ("9", libc::SIGKILL),
        ("KILL", libc::SIGKILL),
        ("HUP", libc::SIGHUP),
        ("SIGUSR1", libc::SIGUSR1),
        ("WINCH", libc::SIGWINCH),
        ("IOT", libc::SIGABRT),
        ("SIGPOLL", libc::SIGIO),
        ("CLD", libc::SIGCHLD),
        ("RTMIN", rtmin),
        ("RTMIN+3", rtmin + 3),
        ("SIGRTMIN+3", rtmin + 3),
        ("rtmin+0", rtmin),
        ("RTMAX", rtmax),
        ("SIGRTMAX-2", rtmax - 2),
        ("sigrtmax-0", rtmax),
        ("64", 64),
        ("32", 32),
        ("SIG32", 32),
        ("sig15", libc::SIGTERM),
    ] {
        let s: Signal = input
            .parse()
            .unwrap_or_else(|e| panic!("{input:?} must parse: {e}"));
        assert_eq!(s.raw(), want, "{input:?}");
    }
    assert_eq!("TERM".parse::<Signal>().unwrap(), Signal::SIGTERM);
    assert_eq!("RTMIN+3".parse::<Signal>().unwrap(), Signal::rt(3).unwrap());
}

#[test]
fn bad_signals_are_refused_with_an_error_that_names_them() {
    for input in [
        "SIGFOO",
        "FOO",
        "0",
        "65",
        "",
        "RTMIN+99",
        "RTMAX-99",
        "RTMIN-1",
        "RTMAX+1",
        "RTMIN+",
        "-1",
        "+15",
        " 15",
        "15 ",
        "SIG",
        "SIGSIGTERM",
        "RTMIN3",
        "99999999999999999999",
        "SIGRTMIN+1+1",
        "TERM\0",
    ] {
        let e = input
            .parse::<Signal>()
            .expect_err(&format!("{input:?} must be refused"));
        assert!(
            matches!(e, Error::Config { what: "signal", .. }),
            "{input:?}: {e:?}"
        );
        assert!(
            e.to_string().contains(&format!("{input:?}")),
            "the error names the input {input:?}: {e}"
        );
    }
}

#[test]
fn signal_names_numbers_and_bounds() {
    assert_eq!(Signal::SIGTERM.raw(), 15);
    assert_eq!(Signal::SIGTERM.name(), "SIGTERM");
    assert_eq!(Signal::SIGKILL.to_string(), "SIGKILL");
    assert_eq!(format!("{:?}", Signal::SIGHUP), "SIGHUP");
    assert_eq!(Signal::SIGHUP.raw(), 1);
    assert_eq!(Signal::SIGSYS.raw(), 31);
    assert_eq!(Signal::rt(3).unwrap().name(), "SIGRTMIN+3");
    assert_eq!(Signal::rt(3).unwrap().to_string(), "SIGRTMIN+3");
    let max = Signal::from_raw(libc::SIGRTMAX()).unwrap();
    assert_eq!(max.name(), "SIGRTMAX");
    assert_eq!(
        Signal::from_raw(libc::SIGRTMAX() - 2).unwrap().name(),
        "SIGRTMAX-2"
    );
    assert!(Signal::rt(3).unwrap().is_real_time() && !Signal::SIGTERM.is_real_time());
    assert_eq!(
        Signal::rt((libc::SIGRTMAX() - libc::SIGRTMIN()) as u32),
        Some(max)
    );
    assert_eq!(
        Signal::rt((libc::SIGRTMAX() - libc::SIGRTMIN() + 1) as u32),
        None
    );
    for bad in [0, -1, 65, libc::SIGRTMAX() + 1, i32::MIN, i32::MAX] {
        assert_eq!(Signal::from_raw(bad), None, "{bad}");
    }
    for n in 1..=libc::SIGRTMAX() {
        assert_eq!(Signal::from_raw(n).map(Signal::raw), Some(n));
    }
}

#[test]
fn the_forwarder_takes_signals_and_refuses_the_unblockable() {
    for bad in [Signal::SIGKILL, Signal::SIGSTOP] {
        let e = SignalForwarder::new(&[bad]).expect_err("cannot be blocked");
        assert!(e.to_string().contains(bad.name()), "{e}");
    }
}

proptest! {
    #[test]
    fn signal_parsing_never_panics_and_round_trips(input in ".{0,24}") {
        if let Ok(s) = input.parse::<Signal>() {
            prop_assert!((1..=libc::SIGRTMAX()).contains(&s.raw()));
            prop_assert_eq!(s.name().parse::<Signal>().unwrap(), s);
        }
    }

    #[test]
    fn signal_like_strings_never_panic(
        prefix in "(SIG|sig|)",
        name in "(RTMIN|RTMAX|rtmin|TERM|KILL|)",
        sign in "[-+]?",
        n in any::<i64>(),
    ) {
        let input = format!("{prefix}{name}{sign}{n}");
        match input.parse::<Signal>() {
            Ok(s) => prop_assert!((1..=libc::SIGRTMAX()).contains(&s.raw())),
            Err(e) => prop_assert!(e.to_string().contains(&input)),
        }
    }

    #[test]
    fn any_raw_signal_or_errno_is_safe(n in any::<i32>()) {
        match Signal::from_raw(n) {
            Some(s) => {
                prop_assert_eq!(s.raw(), n);
                prop_assert!(s.name().starts_with("SIG"));
            }
            None => prop_assert!(n < 1 || n > libc::SIGRTMAX()),
        }
        let e = Errno::from_raw(n);
        prop_assert_eq!(e.raw(), n);
        prop_assert!(!e.to_string().is_empty());
        prop_assert_eq!(Pid::from_raw(n).map(Pid::raw), (n > 0).then_some(n));
    }
}

// ---------------------------------------------------------------------------------------
// Pid, and the types at work on a real child

#[test]
fn pids_are_positive() {
    assert_eq!(Pid::from_raw(0), None);
    assert_eq!(Pid::from_raw(-1), None);
    let p = Pid::from_raw(4242).unwrap();
    assert_eq!(p.raw(), 4242);
    assert_eq!(p.as_u32(), 4242);
    assert_eq!(p.to_string(), "4242");
}

#[test]
fn kill_with_sigterm_ends_the_child_by_sigterm() {
    let mut child = Container::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(child.pid().as_u32(), child.id());
    assert_eq!(child.pid().raw() as u32, child.id());
    child.kill(Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM), "{status}");
    assert_eq!(status.code(), None);
    assert_eq!(status.shell_code(), 128 + 15);
    assert!(status.to_string().contains("SIGTERM"), "{status}");
}

#[test]
fn a_real_time_signal_through_the_signaller() {
    let mut child = Container::new("sleep").arg("30").spawn().unwrap();
    let rt = Signal::rt(3).unwrap();
    child.signaller().unwrap().kill(rt).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(rt), "{status}");
    assert!(status.to_string().contains("SIGRTMIN+3"), "{status}");
}

#[test]
fn parent_death_signal_takes_a_signal() {
    // SIGTERM as the parent death signal; the child runs and exits normally.
    let status = Container::new("true")
        .parent_death_signal(Some(Signal::SIGTERM))
        .spawn()
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn cgroup_procs_are_the_child_s_pid_and_signal_all_takes_a_signal() {
    let test = "cgroup_procs_are_the_child_s_pid_and_signal_all_takes_a_signal";
    if !is_root(test) {
        return;
    }
    let name = format!("contain-test-api-types-{}", std::process::id());
    let cg = match CgroupBuilder::new(name).create_in_default() {
        Ok(cg) => cg,
        Err(e) => {
            skip(test, &format!("no writable cgroup v2 hierarchy: {e}"));
            return;
        }
    };
    let mut child = Container::new("sleep")
        .arg("30")
        .cgroup(cg.try_clone().unwrap())
        .spawn()
        .unwrap();
    let procs: Vec<Pid> = cg.procs().unwrap();
    assert_eq!(procs, vec![child.pid()]);
    assert_eq!(cg.signal_all(Signal::SIGTERM).unwrap(), 1);
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGTERM));
}
