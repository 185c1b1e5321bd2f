//! The generated `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` (see `contain::rootfs`):
//! what a container sees with each network mode, the caller's entries and resolver settings,
//! a caller's own mount winning, the size bound, read-only images, and that nothing reaches
//! the host. Library tests first, then the run example's `--dns`, `--add-host`, `--hostname`.

mod common;

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::busybox::BusyboxRootfs;
use common::run::{code, run, run_example, run_in_own_netns};
use common::{is_root, output, role, TempDir};
use contain::idmap::IdMap;
use contain::mount::Mount;
use contain::namespace::{Namespace, Namespaces};
use contain::net::{HostAddr, Net};
use contain::process::{Container, Stdio};
use contain::rootfs::{Rootfs, RootfsMode, ETC_FILES_MIN_SIZE};
use contain::Error;

const HEADER: &[&str] = &[
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
];

/// `sh -c script` in a busybox container with its own namespaces (network: only `lo`).
fn sh(rootfs: Rootfs, script: &str) -> Container {
    Container::new("/bin/sh")
        .args(["-c", script])
        .env("PATH", "/bin:/usr/bin:/sbin:/usr/sbin")
        .namespaces(
            Namespaces::MOUNT
                | Namespaces::PID
                | Namespaces::UTS
                | Namespaces::IPC
                | Namespaces::NET,
        )
        .hostname("box")
        .rootfs(rootfs)
        .stdin(Stdio::Null)
}

/// Runs `c`, which must succeed; its stdout.
fn ok(c: Container) -> String {
    let o = output(c);
    assert!(
        o.status.success(),
        "container failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every entry under `dir` with size, mode, mtime and link target, sorted.
fn fingerprint(dir: &Path) -> String {
    let out = Command::new("find")
        .arg(dir)
        .args(["-printf", "%p %s %m %T@ %l\n"])
        .output()
        .unwrap();
    let mut lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// This process's mount table, as text.
fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// Library

#[test]
fn an_image_without_etc_hosts_gets_localhost_and_its_hostname() {
    if !is_root("an_image_without_etc_hosts_gets_localhost_and_its_hostname") {
        return;
    }
    let image = BusyboxRootfs::new("etc-nohosts");
    assert!(!image.root().join("etc/hosts").exists());
    let before = fingerprint(image.dir());
    let mounts_before = mountinfo();
    let out = ok(sh(
        Rootfs::new(image.root()),
        "cat /etc/hosts; echo --; cat /etc/hostname /proc/sys/kernel/hostname; echo --; \
         test -e /etc/resolv.conf && echo resolv || echo no-resolv",
    )
    .domainname("example.org"));
    let mut parts = out.split("--\n");
    let hosts: Vec<&str> = parts.next().unwrap().lines().collect();
    assert_eq!(&hosts[..HEADER.len()], HEADER, "{out}");
    // docker's names: the FQDN, then the short name; on loopback without an address (podman).
    assert_eq!(
        &hosts[HEADER.len()..],
        ["127.0.0.1\tbox.example.org box"],
        "{out}"
    );
    assert_eq!(parts.next().unwrap(), "box\nbox\n", "{out}");
    // Net::None without resolver settings: nothing to resolve with, the image's (none) stays.
    assert_eq!(parts.next().unwrap().trim(), "no-resolv", "{out}");
    assert_eq!(fingerprint(image.dir()), before, "the image changed");
    assert_eq!(mountinfo(), mounts_before, "the host's mount table changed");
}

#[test]
fn a_hostname_that_would_inject_lines_into_etc_hosts_is_refused() {
    if !is_root("a_hostname_that_would_inject_lines_into_etc_hosts_is_refused") {
        return;
    }
    let image = BusyboxRootfs::new("etc-badname");
    let before = fingerprint(image.dir());
    let mounts_before = mountinfo();
    let long = "a".repeat(65);
    for (host, domain) in [
        ("web\n6.6.6.6 example.com", None),
        ("web #comment", None),
        ("web\tx", None),
        ("-web", None),
        ("web..x", None),
        (long.as_str(), None),
        ("box", Some("example.org\n6.6.6.6 example.com")),
    ] {
        let mut c = sh(Rootfs::new(image.root()), "cat /etc/hosts").hostname(host);
        if let Some(d) = domain {
            c = c.domainname(d);
        }
        match c.spawn() {
            Err(Error::Config { what, reason }) => {
                let name = domain.unwrap_or(host);
                let expected = if domain.is_some() {
                    "domain name"
                } else {
                    "hostname"
                };
                assert_eq!(what, expected, "{host:?} {domain:?}: {reason}");
                assert!(
                    reason.contains(&format!("{name:?}")) && reason.contains("RFC 1123"),
                    "{reason}"
                );
            }
            Err(e) => panic!("{host:?} {domain:?}: not a config error: {e}"),
            Ok(mut child) => {
                let _ = child.wait();
                panic!("{host:?} {domain:?}: accepted");
            }
        }
    }
    assert_eq!(fingerprint(image.dir()), before, "the image changed");
    assert_eq!(mountinfo(), mounts_before, "the host's mount table changed");
    // A normal FQDN (and an underscore, which glibc accepts) still works.
    let out =
        ok(sh(Rootfs::new(image.root()), "cat /etc/hosts; hostname").hostname("web_1.example.org"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[HEADER.len()..],
        ["127.0.0.1\tweb_1.example.org web_1", "web_1.example.org"],
        "{out}"
    );
}

#[test]
fn a_uts_namespace_name_that_would_break_etc_hosts_is_refused() {
    if !is_root("a_uts_namespace_name_that_would_break_etc_hosts_is_refused") {
        return;
    }
    let image = BusyboxRootfs::new("etc-badnode");
    // The parent cannot check a name it does not set (the caller's own UTS namespace, or one
    // joined): the child checks what uname gives before writing it into /etc/hosts.
    let e = std::thread::scope(|s| {
        s.spawn(|| {
            contain::namespace::unshare(Namespaces::UTS).unwrap();
            nix::unistd::sethostname("web\n6.6.6.6 example.com").unwrap();
            Container::new("/bin/true")
                .namespaces(Namespaces::MOUNT | Namespaces::PID | Namespaces::NET)
                .rootfs(Rootfs::new(image.root()))
                .stdin(Stdio::Null)
                .spawn()
                .map(drop)
        })
        .join()
        .unwrap()
    })
    .unwrap_err();
    match e {
        Error::Config { what, reason } => {
            assert_eq!(what, "hostname", "{reason}");
            assert!(reason.contains("would break /etc/hosts"), "{reason}");
        }
        other => panic!("not a config error: {other}"),
    }
}

/// The Debian minbase image under the target directory (see tests/distro.rs), if built.
fn debian_image() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.ancestors().nth(3)?.join("debian-bookworm-minbase");
    dir.join("usr/bin/getent").exists().then_some(dir)
}

#[test]
fn debian_resolves_localhost_and_its_hostname_with_getent() {
    if !is_root("debian_resolves_localhost_and_its_hostname_with_getent") {
        return;
    }
    let Some(image) = debian_image() else {
        common::skip(
            "debian_resolves_localhost_and_its_hostname_with_getent",
            "no Debian minbase image (tests/distro.rs builds it)",
        );
        return;
    };
    assert!(
        !image.join("etc/hosts").exists(),
        "the minbase image has no /etc/hosts"
    );
    let before = fingerprint(&image);
    let debian = |mode: RootfsMode, script: &str| {
        let c = Container::new("/bin/sh")
            .args(["-c", script])
            .namespaces(Namespaces::all())
            .uid_map(&[IdMap::new(0, 0, 65_536)])
            .gid_map(&[IdMap::new(0, 0, 65_536)])
            .hostname("web")
            .stdin(Stdio::Null)
            .rootfs(Rootfs::new(&image).mode(mode));
        ok(c)
    };
    // Overlay: /etc/hosts is made in the throw-away layer, then mounted over.
    let out = debian(
        RootfsMode::Overlay,
        "getent hosts localhost; getent hosts web; hostname; cat /etc/hostname",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("localhost"), "{out}");
    assert!(
        lines[0].starts_with("::1") || lines[0].starts_with("127.0.0.1"),
        "{out}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["127.0.0.1", "web"],
        "{out}"
    );
    assert_eq!(&lines[2..], ["web", "web"], "{out}");
    // ReadOnly: the image's /etc/hostname is replaced; its missing /etc/hosts cannot be
    // created, so that file is skipped, and the container still runs.
    let out = debian(
        RootfsMode::ReadOnly,
        "hostname; cat /etc/hostname; test -e /etc/hosts && echo hosts || echo no-hosts",
    );
    assert_eq!(out, "web\nweb\nno-hosts\n");
    assert_eq!(fingerprint(&image), before, "the image directory changed");
}

#[test]
fn host_network_gets_the_hosts_resolv_conf_and_hosts() {
    if !is_root("host_network_gets_the_hosts_resolv_conf_and_hosts") {
        return;
    }
    let image = BusyboxRootfs::new("etc-hostnet");
    let c = sh(
        Rootfs::new(image.root()),
        "cat /etc/resolv.conf 2>/dev/null; echo --; cat /etc/hosts",
    )
    .namespaces(Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS)
    .network(Net::Host)
    .hostname("elsewhere");
    let out = ok(c);
    let (resolv, hosts) = out.split_once("--\n").unwrap();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(resolv, host_resolv);
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert!(hosts.starts_with(host_hosts.trim_end()), "{hosts}");
    // The host's file does not know the container's name: the line is added.
    assert!(hosts.ends_with("127.0.0.1\telsewhere\n"), "{hosts}");
}

/// Runs `f` on a thread inside a network namespace of its own, which plays the host for a
/// veth pair (nothing appears in the real host's namespace).
fn in_private_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            contain::namespace::unshare(Namespaces::NET).expect("unshare(CLONE_NEWNET)");
            let ns = Namespace::current(Namespaces::NET).unwrap();
            contain::net::set_link_up(&ns, "lo").unwrap();
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[test]
fn veth_hosts_name_the_eth0_address_and_the_gateway() {
    if !is_root("veth_hosts_name_the_eth0_address_and_the_gateway") {
        return;
    }
    let image = BusyboxRootfs::new("etc-veth");
    in_private_netns(|| {
        // Default addresses: chosen after clone, sent to the child behind the go-ahead.
        let c = sh(Rootfs::new(image.root()), "cat /etc/hosts")
            .network(Net::veth())
            .add_host("gw", HostAddr::HostGateway)
            .add_host("db", "10.1.2.3".parse::<std::net::IpAddr>().unwrap())
            .stdout(Stdio::Piped)
            .stderr(Stdio::Piped);
        let mut child = c.spawn().unwrap();
        let veth = child.veth().unwrap();
        let (eth0, host) = (
            veth.container_address().unwrap().address(),
            veth.host_address().unwrap().address(),
        );
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        assert!(child.wait().unwrap().success());
        let tail: Vec<&str> = stdout.lines().skip(HEADER.len()).collect();
        assert_eq!(
            tail,
            [
                format!("{host}\tgw"),
                "10.1.2.3\tdb".to_string(),
                format!("{eth0}\tbox")
            ],
            "{stdout}"
        );
    });
}

#[test]
fn host_gateway_without_a_way_to_the_host_is_refused() {
    let image = BusyboxRootfs::new("etc-nogw");
    let e = sh(Rootfs::new(image.root()), "true")
        .add_host("gw", HostAddr::HostGateway)
        .spawn()
        .unwrap_err();
    assert!(matches!(e, contain::Error::Config { .. }), "{e}");
    assert!(e.to_string().contains("host-gateway"), "{e}");
    // Entries with nowhere to go are refused too.
    let e = Container::new("true")
        .add_host("db", "10.0.0.1".parse::<std::net::IpAddr>().unwrap())
        .spawn()
        .unwrap_err();
    assert!(e.to_string().contains("rootfs"), "{e}");
    let e = sh(Rootfs::new(image.root()).etc_files(false), "true")
        .dns("192.0.2.1".parse().unwrap())
        .spawn()
        .unwrap_err();
    assert!(e.to_string().contains("etc_files(false)"), "{e}");
    let e = sh(Rootfs::new(image.root()), "true")
        .add_host("bad name", "10.0.0.1".parse::<std::net::IpAddr>().unwrap())
        .spawn()
        .unwrap_err();
    assert!(matches!(e, contain::Error::Config { .. }), "{e}");
}

#[test]
fn resolver_settings_replace_the_hosts_parts() {
    if !is_root("resolver_settings_replace_the_hosts_parts") {
        return;
    }
    let image = BusyboxRootfs::new("etc-dns");
    let c = sh(Rootfs::new(image.root()), "cat /etc/resolv.conf")
        .dns("192.0.2.53".parse().unwrap())
        .dns_search("corp.example")
        .dns_option("ndots:2");
    let out = ok(c);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"search corp.example"), "{out}");
    assert!(lines.contains(&"nameserver 192.0.2.53"), "{out}");
    assert!(lines.contains(&"options ndots:2"), "{out}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nameserver")).count(),
        1,
        "{out}"
    );
}

#[test]
fn a_callers_bind_over_etc_hosts_wins() {
    if !is_root("a_callers_bind_over_etc_hosts_wins") {
        return;
    }
    let image = BusyboxRootfs::new("etc-callers");
    let mine = image.dir().join("my-hosts");
    std::fs::write(&mine, "10.9.9.9 mine\n").unwrap();
    let out = ok(sh(
        Rootfs::new(image.root()).mount(Mount::bind(&mine, "/etc/hosts").read_only()),
        "cat /etc/hosts; cat /etc/hostname",
    ));
    assert_eq!(out, "10.9.9.9 mine\nbox\n");
    // The opt-out: nothing generated at all.
    let out = ok(sh(Rootfs::new(image.root()).etc_files(false), "ls /etc"));
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["group", "image", "passwd"]
    );
}

#[test]
fn etc_hosts_is_writable_up_to_a_bound() {
    if !is_root("etc_hosts_is_writable_up_to_a_bound") {
        return;
    }
    let image = BusyboxRootfs::new("etc-bound");
    let mounts_before = mountinfo();
    let out = ok(sh(
        Rootfs::new(image.root()),
        "echo '10.3.3.3 added' >> /etc/hosts && grep added /etc/hosts; \
         head -c 16777216 /dev/zero >> /etc/hosts 2>/dev/null && echo unbounded || echo bounded; \
         wc -c < /etc/hosts",
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "10.3.3.3 added", "{out}");
    assert_eq!(lines[1], "bounded", "{out}");
    let size: u64 = lines[2].trim().parse().unwrap();
    assert!(
        size <= ETC_FILES_MIN_SIZE,
        "{size} bytes landed in /etc/hosts"
    );
    assert_eq!(mountinfo(), mounts_before);
}

#[test]
fn a_read_only_image_without_etc_still_runs() {
    if !is_root("a_read_only_image_without_etc_still_runs") {
        return;
    }
    let image = BusyboxRootfs::new("etc-ro");
    std::fs::remove_dir_all(image.root().join("etc")).unwrap();
    let out = ok(sh(
        Rootfs::new(image.root()).mode(RootfsMode::ReadOnly),
        "cat /proc/sys/kernel/hostname; test -e /etc && echo etc || echo no-etc",
    ));
    assert_eq!(out, "box\nno-etc\n");
    // With /etc but no hosts: hostname is skipped too (no target), still runs; a file the
    // image has is replaced even read-only.
    std::fs::create_dir(image.root().join("etc")).unwrap();
    std::fs::write(image.root().join("etc/hostname"), "image-name\n").unwrap();
    let out = ok(sh(
        Rootfs::new(image.root()).mode(RootfsMode::ReadOnly),
        "cat /etc/hostname; test -e /etc/hosts && echo hosts || echo no-hosts",
    ));
    assert_eq!(out, "box\nno-hosts\n");
    assert_eq!(
        std::fs::read_to_string(image.root().join("etc/hostname")).unwrap(),
        "image-name\n"
    );
}

#[test]
fn rootless_containers_get_the_files_too() {
    match role().as_deref() {
        Some("nobody") => {}
        Some(_) => return,
        None => {
            if is_root("rootless_containers_get_the_files_too") {
                common::assert_passes_as_nobody(
                    "rootless_containers_get_the_files_too",
                    "nobody",
                    false,
                );
            }
            return;
        }
    }
    let image = BusyboxRootfs::new("etc-rootless");
    let c = sh(
        Rootfs::new(image.root()),
        "cat /etc/hostname; grep box /etc/hosts",
    )
    .namespaces(
        Namespaces::USER
            | Namespaces::MOUNT
            | Namespaces::PID
            | Namespaces::UTS
            | Namespaces::IPC
            | Namespaces::NET,
    );
    assert_eq!(ok(c), "box\n127.0.0.1\tbox\n");
}

#[test]
fn nothing_is_left_on_the_host_even_when_the_parent_is_killed() {
    const NAME: &str = "nothing_is_left_on_the_host_even_when_the_parent_is_killed";
    if role().as_deref() == Some("killed-parent") {
        let image = std::env::var("CONTAIN_TEST_IMAGE").unwrap();
        let c = sh(Rootfs::new(image), "echo started; exec sleep 60")
            .stdout(Stdio::Inherit)
            .add_host("db", "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
        let _child = c.spawn().unwrap();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        return;
    }
    if role().is_some() || !is_root(NAME) {
        return;
    }
    let image = BusyboxRootfs::new("etc-killed");
    // The parent's own temp dir (the shared one sees other runs come and go).
    let tmp = TempDir::new("etc-killed-tmp");
    let (mounts, before) = (mountinfo(), fingerprint(image.dir()));
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONTAIN_TEST_ROLE", "killed-parent")
        .env("TMPDIR", tmp.path())
        .env("CONTAIN_TEST_IMAGE", image.root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _hold = parent.stdin.take();
    let out = parent.stdout.take().unwrap();
    let text = common::run::read_until(&out, "started");
    assert!(text.contains("started"), "{text}");
    parent.kill().unwrap();
    parent.wait().unwrap();
    // The container dies with its parent (SIGKILL as parent-death signal): its stdout, the
    // pipe we read, reaches EOF then.
    let rest = common::run::read_until(&out, "never printed");
    assert!(!rest.contains("never"), "{rest}");
    assert_eq!(mountinfo(), mounts, "the host's mount table changed");
    assert_eq!(
        entries(tmp.path()),
        Vec::<String>::new(),
        "left in the temp dir"
    );
    assert_eq!(fingerprint(image.dir()), before, "the image changed");
}

// ---------------------------------------------------------------------------------------------
// The run example

/// `--rootfs root` and then `rest`.
fn busybox_args<'a>(root: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--rootfs", root];
    v.extend_from_slice(rest);
    v
}

#[test]
fn run_dns_and_add_host_show_up() {
    if !is_root("run_dns_and_add_host_show_up") {
        return;
    }
    let image = BusyboxRootfs::new("etc-run-dns");
    let root = image.root().to_string_lossy().into_owned();
    let o = run(&busybox_args(
        &root,
        &[
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "corp.example",
            "--dns-option",
            "ndots:3",
            "--add-host",
            "db:10.1.2.3",
            "--add-host",
            "v6:::1",
            "--",
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts",
        ],
    ));
    assert_eq!(code(&o), 0, "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    for line in [
        "nameserver 192.0.2.53",
        "search corp.example",
        "options ndots:3",
        "10.1.2.3\tdb",
        "::1\tv6",
        "127.0.0.1\tcontain",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing: {out}");
    }
    let o = run(&["--add-host", "nocolon", "--", "true"]);
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NAME:IP"),
        "{o:?}"
    );
}

/// The run example in its own network and mount namespaces where the host's resolver files
/// are `resolv` (and `systemd`, if given, as systemd-resolved's upstream file).
fn run_with_host_resolver(
    args: &[&str],
    resolv: &str,
    systemd: Option<&str>,
) -> std::process::Output {
    let dir = TempDir::new("etc-resolver");
    let resolv_path = dir.path().join("resolv.conf");
    std::fs::write(&resolv_path, resolv).unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(run_dir.join("systemd/resolve")).unwrap();
    if let Some(text) = systemd {
        std::fs::write(run_dir.join("systemd/resolve/resolv.conf"), text).unwrap();
    }
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let (src, run_src) = (c(&resolv_path), c(&run_dir));
    let mut cmd = run_example();
    cmd.args(args);
    // SAFETY: pre_exec runs in the forked child; it only makes system calls with strings
    // prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::CLONE_NEWNET | libc::CLONE_NEWNS;
            let check = |r: libc::c_int| {
                if r == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::unshare(flags))?;
            let null = std::ptr::null();
            check(libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                null.cast(),
            ))?;
            check(libc::mount(
                src.as_ptr(),
                c"/etc/resolv.conf".as_ptr(),
                null,
                libc::MS_BIND,
                null.cast(),
            ))?;
            check(libc::mount(
                run_src.as_ptr(),
                c"/run".as_ptr(),
                null,
                libc::MS_BIND,
                null.cast(),
            ))
        });
    }
    common::run::output_of(&mut cmd)
}

#[test]
fn run_veth_gets_no_loopback_nameserver() {
    if !is_root("run_veth_gets_no_loopback_nameserver") {
        return;
    }
    if !Path::new("/etc/resolv.conf").exists() {
        common::skip(
            "run_veth_gets_no_loopback_nameserver",
            "no /etc/resolv.conf to bind over",
        );
        return;
    }
    let image = BusyboxRootfs::new("etc-run-veth");
    let root = image.root().to_string_lossy().into_owned();
    let args = busybox_args(&root, &["--net", "veth", "--", "cat", "/etc/resolv.conf"]);
    let cases = [
        (
            "nameserver 127.0.0.1\nnameserver 192.0.2.7\nsearch lan\n",
            None,
            "nameserver 192.0.2.7\nsearch lan\n",
        ),
        (
            "nameserver 127.0.0.53\noptions edns0\n",
            None,
            "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n",
        ),
        (
            "nameserver 127.0.0.53\n",
            Some("nameserver 192.0.2.9\nsearch corp\n"),
            "nameserver 192.0.2.9\nsearch corp\n",
        ),
    ];
    for (host, systemd, want) in cases {
        let o = run_with_host_resolver(&args, host, systemd);
        assert_eq!(code(&o), 0, "{o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), want, "host {host:?}");
    }
    // With the host's network the loopback resolver answers: kept as it is.
    let args = busybox_args(&root, &["--net", "host", "--", "cat", "/etc/resolv.conf"]);
    let o = run_with_host_resolver(&args, "nameserver 127.0.0.53\n", None);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "nameserver 127.0.0.53\n",
        "{o:?}"
    );
}

#[test]
fn run_veth_address_and_host_gateway_in_etc_hosts() {
    if !is_root("run_veth_address_and_host_gateway_in_etc_hosts") {
        return;
    }
    let image = BusyboxRootfs::new("etc-run-gw");
    let root = image.root().to_string_lossy().into_owned();
    let o = run_in_own_netns(&busybox_args(
        &root,
        &[
            "--net",
            "veth",
            "--veth-addr",
            "10.88.0.6/30",
            "--hostname",
            "web.corp",
            "--add-host",
            "host.docker.internal:host-gateway",
            "--",
            "cat",
            "/etc/hosts",
        ],
    ));
    assert_eq!(code(&o), 0, "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    let tail: Vec<&str> = out.lines().skip(HEADER.len()).collect();
    assert_eq!(
        tail,
        ["10.88.0.5\thost.docker.internal", "10.88.0.6\tweb.corp web"],
        "{out}"
    );
}

#[test]
fn run_hostname_needs_a_uts_namespace_and_agrees_everywhere() {
    if !is_root("run_hostname_needs_a_uts_namespace_and_agrees_everywhere") {
        return;
    }
    let o = run(&["--ns", "mount,pid,net", "--hostname", "web", "--", "true"]);
    assert_eq!(code(&o), 125, "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--hostname") && err.contains("uts"), "{err}");
    // Without --hostname and without a UTS namespace: the host's name, consistently.
    let o = run(&["--ns", "mount,pid,net", "--", "cat", "/etc/hostname"]);
    assert_eq!(code(&o), 0, "{o:?}");
    let host = nix::unistd::gethostname().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        host.to_string_lossy()
    );
    // The host view: `hostname`, /etc/hostname and getent (glibc, /etc/hosts) agree.
    let o = run(&[
        "--hostname",
        "web",
        "--",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; \
         if command -v getent >/dev/null; then getent hosts web; else grep -w web /etc/hosts; fi",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["web", "web"], "{out}");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["127.0.0.1", "web"],
        "{out}"
    );
    // The injection: refused before anything runs, naming the flag.
    let o = run(&["--hostname", "web\n6.6.6.6 example.com", "--", "true"]);
    assert_eq!(code(&o), 125, "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("hostname") && err.contains("not a valid host name"),
        "{err}"
    );
}
