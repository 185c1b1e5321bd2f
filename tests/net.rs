//! Container networking: `Net::None` (own namespace, `lo` up), `Net::Host`, `Net::Veth`.
//!
//! Every veth test runs on a thread that first moves into a network namespace of its own
//! (`unshare(CLONE_NEWNET)`), which plays the host: the host ends, their addresses and all
//! test traffic stay in namespaces these tests made, and anything a failing test leaves
//! behind dies with that namespace when the thread ends.
//!
//! Links, addresses and routes are read with busybox's `ip` (inside the containers and here),
//! so these tests need no iproute2: only the static busybox the other tests need too.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{assert_passes_as_nobody, is_root, output, role, stdout};
use contain::namespace::{Namespace, Namespaces};
use contain::net::{self, Ipv4Cidr, Net, VethConfig};
use contain::process::{Child, Container, Stdio};
use contain::Error;
use contain::Signal;

const BUSYBOX: &str = "/usr/bin/busybox";

/// Runs `f` on a new thread inside a new network namespace (see the module docs).
fn in_private_netns<T: Send>(f: impl FnOnce(&Namespace) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            contain::namespace::unshare(Namespaces::NET).expect("unshare(CLONE_NEWNET)");
            let ns = Namespace::current(Namespaces::NET).expect("open own netns");
            net::set_link_up(&ns, "lo").expect("lo up in the test's netns");
            f(&ns)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `busybox ip ARGS` run by this thread (so in its network namespace), stdout as a String.
fn ip_here(args: &[&str]) -> String {
    let o = Command::new(busybox())
        .arg("ip")
        .args(args)
        .output()
        .expect("run busybox ip");
    assert!(o.status.success(), "busybox ip {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether veth pairs can be made here; if not, checks that the error says why, clearly.
fn veth_available(test: &str) -> bool {
    let ns = Namespace::current(Namespaces::NET).unwrap();
    match net::create_veth("probe-h", "probe-c", &ns) {
        Ok(v) => {
            v.delete().unwrap();
            true
        }
        Err(e @ Error::Unsupported { .. }) => {
            assert!(e.to_string().contains("veth driver"), "{e}");
            eprintln!("{test}: {e}; not run");
            false
        }
        Err(e) => panic!("creating a probe veth pair: {e}"),
    }
}

fn busybox() -> &'static str {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install busybox-static (CI does)"
    );
    BUSYBOX
}

/// Waits until `fd` is readable, at most `limit`; false when the time ran out.
fn readable_within(fd: impl AsFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut pfd = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return false,
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return true,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// A one-connection echo server on `addr`: reads a line, answers `echo:LINE`, returns LINE.
/// Gives up after 20 s so that a container that never connects fails the test instead of
/// hanging it.
fn echo_once(listener: TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        assert!(
            readable_within(&listener, Duration::from_secs(20)),
            "no connection within 20 s"
        );
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        let line = line.trim().to_owned();
        (&stream)
            .write_all(format!("echo:{line}\n").as_bytes())
            .unwrap();
        line
    })
}

/// The container script for the veth tests: show eth-side state, then wait for "HOST PORT"
/// on stdin and talk to the echo server there through busybox nc.
fn veth_script(dev: &str) -> String {
    format!(
        "bb={}; $bb ip -o link; $bb ip -o addr show dev {dev}; $bb ip -o route; \
         read host port; echo ping-from-container | $bb nc -w 10 \"$host\" \"$port\"",
        busybox()
    )
}

fn spawn_piped(mut c: Container) -> Child {
    c = c
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped);
    c.spawn().unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// Checks the container's view and the echo round trip, for a veth pair with these
/// addresses; leaves the child ended and dropped, and checks the host end went with it.
fn check_veth_container(ns: &Namespace, mut child: Child, dev: &str) {
    let veth = child.veth().expect("Child::veth for Net::Veth");
    let host = veth.host_address().unwrap();
    let container = veth.container_address().unwrap();
    let host_name = veth.name().to_owned();
    // While it runs, the host end is here, up, with its address.
    assert_eq!(net::link_index(ns, &host_name).unwrap(), Some(veth.index()));
    let link = ip_here(&["-o", "link", "show", "dev", &host_name]);
    assert!(link.contains(",UP"), "host end not up: {link}");
    let addr = ip_here(&["-o", "-4", "addr", "show", "dev", &host_name]);
    assert!(addr.contains(&format!("inet {host} ")), "{addr}");

    let listener = TcpListener::bind((host.address(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = echo_once(listener);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{} {port}", host.address()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap(); // drops the Child, and with it the pair
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{out:?}\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.join().unwrap(), "ping-from-container");
    assert!(text.contains("echo:ping-from-container"), "{text}");

    // Inside: lo (up) and the container end only; its address; the default route.
    let links: Vec<&str> = text.lines().filter(|l| l.contains(": <")).collect();
    assert_eq!(links.len(), 2, "{text}");
    assert!(
        links[0].starts_with("1: lo: <") && links[0].contains(",UP"),
        "{text}"
    );
    assert!(links[1].contains(&format!(" {dev}@")), "{text}");
    assert!(links[1].contains(",UP"), "{text}");
    assert!(
        text.contains(&format!("{dev}    inet {container} ")),
        "container address {container} missing: {text}"
    );
    assert!(
        text.contains(&format!("default via {} dev {dev}", host.address())),
        "default route missing: {text}"
    );
    // Dropping the Child deleted the pair.
    assert_eq!(net::link_index(ns, &host_name).unwrap(), None);
}

#[test]
fn none_is_only_lo_and_it_is_up() {
    if !is_root("none_is_only_lo_and_it_is_up") {
        return;
    }
    for (ns, net) in [
        (Namespaces::NET, None),
        (Namespaces::NET, Some(Net::None)),
        (
            Namespaces::NET | Namespaces::USER | Namespaces::PID,
            Some(Net::None),
        ),
    ] {
        let mut c = Container::new("sh")
            .args(["-c", &show_net()])
            .namespaces(ns);
        if let Some(net) = net.clone() {
            c = c.network(net);
        }
        let o = output(c);
        let text = stdout(&o);
        assert!(o.status.success(), "{ns:?} {net:?}: {o:?}");
        check_only_lo_up(&text);
    }
}

/// What `check_only_lo_up` reads: links, devices, addresses, separated by `--`.
fn show_net() -> String {
    let bb = busybox();
    format!("{bb} ip -o link; echo --; cat /proc/net/dev; echo --; {bb} ip -o addr")
}

fn check_only_lo_up(text: &str) {
    let parts: Vec<&str> = text.split("--\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    let links: Vec<&str> = parts[0].lines().collect();
    assert_eq!(links.len(), 1, "{text}");
    assert!(links[0].starts_with("1: lo: <"), "{text}");
    let flags = links[0].split(['<', '>']).nth(1).unwrap_or_default();
    assert!(flags.split(',').any(|f| f == "UP"), "lo is not up: {text}");
    // /proc/net/dev: two header lines, then "NAME: counters..." per device.
    let devs: Vec<&str> = parts[1]
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(devs, ["lo"], "{text}");
    assert!(parts[2].contains("inet 127.0.0.1/8"), "{text}");
}

#[test]
fn none_works_rootless() {
    match role().as_deref() {
        Some("nobody") => {
            let o = output(
                Container::new("sh")
                    .args(["-c", &show_net()])
                    .namespaces(Namespaces::USER | Namespaces::NET)
                    .network(Net::None),
            );
            assert!(o.status.success(), "{o:?}");
            check_only_lo_up(&stdout(&o));
            // The same through the public function, on a namespace we own.
            let mut child = Container::new("sleep")
                .arg("30")
                .namespaces(Namespaces::USER | Namespaces::NET)
                .spawn()
                .unwrap();
            let ns = Namespace::of_pid(child.pid(), Namespaces::NET).unwrap();
            net::set_link_up(&ns, "lo").unwrap();
            assert_eq!(net::link_index(&ns, "lo").unwrap(), Some(1));
            assert_eq!(net::link_index(&ns, "eth0").unwrap(), None);
            child.kill(Signal::SIGKILL).unwrap();
            child.wait().unwrap();
        }
        Some(_) => {}
        None => {
            if !is_root("none_works_rootless") {
                return;
            }
            assert_passes_as_nobody("none_works_rootless", "nobody", false);
        }
    }
}

#[test]
fn veth_is_refused_rootless_with_what_to_do() {
    match role().as_deref() {
        Some("nobody") => {
            let e = Container::new("true")
                .namespaces(Namespaces::USER | Namespaces::NET)
                .network(Net::veth())
                .spawn()
                .unwrap_err();
            assert!(matches!(e, Error::Unsupported { .. }), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("needs root") && msg.contains("Net::None"),
                "{msg}"
            );
        }
        Some(_) => {}
        None => {
            if !is_root("veth_is_refused_rootless_with_what_to_do") {
                return;
            }
            assert_passes_as_nobody("veth_is_refused_rootless_with_what_to_do", "nobody", false);
        }
    }
}

#[test]
fn host_shares_the_callers_network_and_contradictions_are_refused() {
    let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
    let o = output(
        Container::new("readlink")
            .arg("/proc/self/ns/net")
            .network(Net::Host),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), mine.to_string_lossy());

    for (ns, mode) in [
        (Namespaces::NET, Net::Host),
        (Namespaces::PID, Net::None),
        (Namespaces::empty(), Net::veth()),
    ] {
        let e = Container::new("true")
            .namespaces(ns)
            .network(mode.clone())
            .spawn()
            .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{mode:?}: {e}");
        assert!(e.to_string().contains("Namespaces::NET"), "{mode:?}: {e}");
    }
}

#[test]
fn bad_veth_settings_are_refused_before_anything_is_made() {
    let cidr = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
    for bad in ["10.0.0.1", "10.0.0.1/33", "10.0.0.300/24", "10.0.0.1/x"] {
        let e = bad.parse::<Ipv4Cidr>().unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{bad}: {e}");
        assert!(e.to_string().contains(bad), "{e}");
    }
    for (config, says) in [
        (
            VethConfig::new().host_name("a-name-too-long-"),
            "1 to 15 bytes",
        ),
        (VethConfig::new().container_name("eth/0"), "cannot contain"),
        (
            VethConfig::new().addresses(cidr("10.1.0.1/30"), cidr("10.1.1.2/30")),
            "not in one subnet",
        ),
        (
            VethConfig::new().addresses(cidr("10.1.0.1/30"), cidr("10.1.0.1/30")),
            "same address",
        ),
        (
            VethConfig::new().container_address(cidr("10.1.0.3/30")),
            "broadcast",
        ),
    ] {
        let e = Container::new("true")
            .namespaces(Namespaces::NET)
            .network(Net::Veth(config.clone()))
            .spawn()
            .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{config:?}: {e}");
        assert!(e.to_string().contains(says), "{config:?}: {e}");
    }
    let ns = Namespace::current(Namespaces::NET).unwrap();
    let e = net::create_veth("sixteen-bytes-xx", "p", &ns).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
    let e = net::link_index(&ns, "").unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e}");
}

#[test]
fn veth_with_default_addresses_reaches_the_host_end() {
    if !is_root("veth_with_default_addresses_reaches_the_host_end") {
        return;
    }
    in_private_netns(|ns| {
        if !veth_available("veth_with_default_addresses_reaches_the_host_end") {
            return;
        }
        let child = spawn_piped(
            Container::new("sh")
                .args(["-c", &veth_script("eth0")])
                .namespaces(Namespaces::NET | Namespaces::PID | Namespaces::UTS)
                .network(Net::veth()),
        );
        let veth = child.veth().unwrap();
        assert_eq!(veth.name(), format!("ctn{}", child.id()));
        assert_eq!(veth.peer_name(), "eth0");
        let host = veth.host_address().unwrap();
        let container = veth.container_address().unwrap();
        let pool: Ipv4Cidr = net::DEFAULT_POOL.parse().unwrap();
        assert!(pool.overlaps(&host) && host.prefix_len() == 30, "{host}");
        assert_eq!(container.network(), host.network());
        assert_eq!(
            u32::from(container.address()),
            u32::from(host.address()) + 1
        );
        check_veth_container(ns, child, "eth0");
    });
}

#[test]
fn veth_with_given_names_and_addresses() {
    if !is_root("veth_with_given_names_and_addresses") {
        return;
    }
    in_private_netns(|ns| {
        if !veth_available("veth_with_given_names_and_addresses") {
            return;
        }
        let cidr = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
        let child = spawn_piped(
            Container::new("sh")
                .args(["-c", &veth_script("ceth1")])
                .namespaces(Namespaces::NET | Namespaces::USER | Namespaces::MOUNT)
                .network(Net::Veth(
                    VethConfig::new()
                        .host_name("test-host-end")
                        .container_name("ceth1")
                        .addresses(cidr("10.231.7.1/29"), cidr("10.231.7.6/29")),
                )),
        );
        let veth = child.veth().unwrap();
        assert_eq!(veth.name(), "test-host-end");
        assert_eq!(veth.host_address(), Some(cidr("10.231.7.1/29")));
        assert_eq!(veth.container_address(), Some(cidr("10.231.7.6/29")));
        check_veth_container(ns, child, "ceth1");

        // Only the container's address: the host end takes the subnet's first.
        let child = spawn_piped(
            Container::new("sh")
                .args(["-c", &veth_script("eth0")])
                .namespaces(Namespaces::NET)
                .network(Net::Veth(
                    VethConfig::new().container_address(cidr("10.231.8.5/24")),
                )),
        );
        assert_eq!(
            child.veth().unwrap().host_address(),
            Some(cidr("10.231.8.1/24"))
        );
        check_veth_container(ns, child, "eth0");
    });
}

#[test]
fn parallel_containers_get_distinct_subnets() {
    if !is_root("parallel_containers_get_distinct_subnets") {
        return;
    }
    const N: usize = 4;
    in_private_netns(|ns| {
        if !veth_available("parallel_containers_get_distinct_subnets") {
            return;
        }
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            // Each thread keeps its container (and so its pair) until its `release` is sent
            // or dropped: dropped too when this closure panics, so no thread is left waiting.
            let mut releases = Vec::new();
            for _ in 0..N {
                let tx = tx.clone();
                let (release, released) = mpsc::channel::<()>();
                releases.push(release);
                s.spawn(move || {
                    ns.enter().unwrap();
                    let child = Container::new("sleep")
                        .arg("30")
                        .namespaces(Namespaces::NET)
                        .network(Net::veth())
                        .spawn();
                    let info = child.as_ref().map(|c| {
                        let v = c.veth().unwrap();
                        (v.name().to_owned(), v.host_address().unwrap())
                    });
                    tx.send(info.map_err(|e| e.to_string())).unwrap();
                    drop(tx);
                    // Keep the container until every address is checked.
                    let _ = released.recv_timeout(Duration::from_secs(60));
                    drop(child);
                });
            }
            drop(tx);
            let got: Vec<_> = (0..N)
                .map(|_| {
                    rx.recv_timeout(Duration::from_secs(60))
                        .expect("a spawning thread failed or took over 60 s")
                })
                .collect();
            let here = ip_here(&["-o", "-4", "addr"]);
            drop(releases);
            let got: Vec<(String, Ipv4Cidr)> = got
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("spawn: {e}")))
                .collect();
            for (i, (name, a)) in got.iter().enumerate() {
                assert!(here.contains(&format!("{name}    inet {a} ")), "{here}");
                for (other, b) in &got[i + 1..] {
                    assert!(!a.overlaps(b), "{name} {a} and {other} {b} overlap");
                }
            }
        });
        let links = ip_here(&["-o", "link"]);
        assert!(!links.contains("ctn"), "pairs left behind: {links}");
    });
}

#[test]
fn default_subnets_avoid_addresses_in_use() {
    if !is_root("default_subnets_avoid_addresses_in_use") {
        return;
    }
    in_private_netns(|ns| {
        if !veth_available("default_subnets_avoid_addresses_in_use") {
            return;
        }
        // A pair with both ends here, holding the lower half of the pool.
        let blocker = net::create_veth("block-a", "block-b", ns).unwrap();
        net::add_address(ns, "block-a", "10.200.0.1/17".parse().unwrap()).unwrap();
        let mut child = Container::new("sleep")
            .arg("30")
            .namespaces(Namespaces::NET)
            .network(Net::veth())
            .spawn()
            .unwrap();
        let host = child.veth().unwrap().host_address().unwrap();
        assert!(
            !host.overlaps(&"10.200.0.0/17".parse().unwrap()),
            "{host} is in the blocked half"
        );
        child.kill(Signal::SIGKILL).unwrap();
        drop(child);

        // The whole pool blocked: a clear error, and nothing left behind.
        net::add_address(ns, "block-a", "10.200.128.1/17".parse().unwrap()).unwrap();
        let e = Container::new("sleep")
            .arg("30")
            .namespaces(Namespaces::NET)
            .network(Net::veth())
            .spawn()
            .unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("VethConfig::addresses"), "{e}");
        blocker.delete().unwrap();

        // A spawn that fails after the pair was made (exec) leaves no pair either.
        let e = Container::new("/nonexistent/program")
            .namespaces(Namespaces::NET)
            .network(Net::veth())
            .spawn()
            .unwrap_err();
        assert_eq!(e.errno(), Some(contain::Errno::ENOENT), "{e}");
        let links = ip_here(&["-o", "link"]);
        assert!(
            !links.contains("ctn") && !links.contains("block-"),
            "left behind: {links}"
        );
    });
}

#[test]
fn veth_functions_work_without_a_container_and_removal_is_idempotent() {
    if !is_root("veth_functions_work_without_a_container_and_removal_is_idempotent") {
        return;
    }
    in_private_netns(|ns| {
        if !veth_available("veth_functions_work_without_a_container_and_removal_is_idempotent") {
            return;
        }
        let mut child = Container::new("sleep")
            .arg("30")
            .namespaces(Namespaces::NET)
            .spawn()
            .unwrap();
        let inner = Namespace::of_pid(child.pid(), Namespaces::NET).unwrap();
        let veth = net::create_veth("fn-host", "fn-peer", &inner).unwrap();
        assert_eq!(
            net::link_index(ns, "fn-peer").unwrap(),
            None,
            "peer made here"
        );
        assert!(net::link_index(&inner, "fn-peer").unwrap().is_some());
        assert_eq!(veth.host_address(), None);

        let cidr = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
        net::add_address(ns, "fn-host", cidr("10.232.0.1/30")).unwrap();
        net::set_link_up(ns, "fn-host").unwrap();
        net::add_address(&inner, "fn-peer", cidr("10.232.0.2/30")).unwrap();
        net::set_link_up(&inner, "fn-peer").unwrap();
        net::add_default_route(&inner, "fn-peer", Ipv4Addr::new(10, 232, 0, 1)).unwrap();
        // A second default route is refused, naming the request, the interface and errno.
        let e =
            net::add_default_route(&inner, "fn-peer", Ipv4Addr::new(10, 232, 0, 1)).unwrap_err();
        assert!(matches!(e, Error::Netlink { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("RTM_NEWROUTE") && msg.contains("fn-peer") && msg.contains("EEXIST"),
            "{msg}"
        );
        let e = net::set_link_up(&inner, "nope0").unwrap_err();
        assert_eq!(e.errno(), Some(contain::Errno::ENODEV), "{e}");

        // Deleting the other end deletes the pair; deleting again is fine, from either side.
        assert!(net::delete_link(&inner, "fn-peer").unwrap());
        assert_eq!(net::link_index(ns, "fn-host").unwrap(), None);
        assert!(!net::delete_link(ns, "fn-host").unwrap());
        veth.delete().unwrap();

        // When the container's namespace dies, the kernel removes the pair by itself; the
        // Veth's own removal then finds nothing and is still fine.
        let veth = net::create_veth("fn-host2", "fn-peer2", &inner).unwrap();
        let events = link_events();
        drop(inner);
        child.kill(Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        // The namespace is torn down asynchronously: wait for the kernel's link
        // notifications, checking after each batch, for at most 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        while net::link_index(ns, "fn-host2").unwrap().is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                readable_within(&events, left),
                "the kernel kept the pair for 10 s"
            );
            drain(&events);
        }
        veth.delete().unwrap();
    });
}

/// A netlink socket subscribed to the kernel's link notifications (RTMGRP_LINK) in this
/// thread's network namespace: readable when a link appears, changes or goes.
fn link_events() -> OwnedFd {
    // SAFETY: socket(2) with constant arguments; the result is checked and then owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    assert!(
        fd >= 0,
        "netlink socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = libc::RTMGRP_LINK as u32;
    // SAFETY: `addr` is a valid sockaddr_nl of the size given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    assert_eq!(
        r,
        0,
        "bind RTMGRP_LINK: {}",
        std::io::Error::last_os_error()
    );
    fd
}

/// Reads whatever the socket holds without waiting (the messages themselves do not matter).
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: recv(2) into a buffer of the length given.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let err = std::io::Error::last_os_error().raw_os_error();
        // ENOBUFS: notifications were lost; the caller checks the state again anyway.
        if n <= 0 && err != Some(libc::ENOBUFS) && err != Some(libc::EINTR) {
            return;
        }
    }
}

#[test]
fn given_and_default_subnets_avoid_the_hosts_routes() {
    if !is_root("given_and_default_subnets_avoid_the_hosts_routes") {
        return;
    }
    in_private_netns(|ns| {
        if !veth_available("given_and_default_subnets_avoid_the_hosts_routes") {
            return;
        }
        // Routes without an address of ours: a network behind a link (a VPN's, the DNS
        // server's), and the lower half of the default pool.
        let blocker = net::create_veth("route-a", "route-b", ns).unwrap();
        net::set_link_up(ns, "route-a").unwrap();
        net::set_link_up(ns, "route-b").unwrap();
        ip_here(&["route", "add", "10.99.0.0/16", "dev", "route-a"]);
        ip_here(&["route", "add", "10.200.0.0/17", "dev", "route-a"]);

        let cidr = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
        // A given subnet the host routes elsewhere: refused, naming the route.
        let e = Container::new("true")
            .namespaces(Namespaces::NET)
            .network(Net::Veth(
                VethConfig::new().container_address(cidr("10.99.1.2/30")),
            ))
            .spawn()
            .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
        assert!(e.to_string().contains("10.99.0.0/16"), "{e}");

        // The default pool skips the routed half.
        let mut child = Container::new("sleep")
            .arg("30")
            .namespaces(Namespaces::NET)
            .network(Net::veth())
            .spawn()
            .unwrap();
        let host = child.veth().unwrap().host_address().unwrap();
        assert!(!host.overlaps(&cidr("10.200.0.0/17")), "{host} is routed");
        child.kill(Signal::SIGKILL).unwrap();
        drop(child);
        blocker.delete().unwrap();
        let links = ip_here(&["-o", "link"]);
        assert!(
            !links.contains("ctn") && !links.contains("route-"),
            "left behind: {links}"
        );
    });
}
