//! The process a container starts with, as docker users expect it: umask 0022, HOME from the
//! image's passwd, TERM with a tty, a working directory that is created, `--user NAME[:GROUP]`,
//! standard streams the container user can reopen, docker's network sysctls and `--sysctl`,
//! and set-uid binaries with `--security-opt no-new-privileges` off or on.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio as StdStdio;

use common::busybox::BusyboxRootfs;
use common::run::{code, run, run_example};
use common::{is_root, output, stdout, TempDir};
use contain::idmap::IdMap;
use contain::namespace::Namespaces;
use contain::process::{Container, Stdio};
use contain::rootfs::{Rootfs, RootfsMode};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\naudio:x:29:alice,bob\nstaff:x:50:\n\
    video:x:44:alice\nalice:x:1000:\nnogroup:x:65534:\n";

/// A busybox image with users (alice: 1000, groups audio and video), `nc`, and a set-uid
/// root copy of busybox as `/suid/whoami`, which `/etc/busybox.conf` lets keep euid 0 (it
/// prints the effective user: `root` when the set-uid bit took effect).
fn image(tag: &str) -> BusyboxRootfs {
    let image = BusyboxRootfs::new(tag);
    let root = image.root();
    std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(root.join("etc/group"), GROUP).unwrap();
    for applet in ["nc", "stat"] {
        let _ = symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::create_dir(root.join("suid")).unwrap();
    common::copy_executable(&root.join("bin/busybox"), &root.join("suid/busybox"));
    std::fs::set_permissions(
        root.join("suid/busybox"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    symlink("busybox", root.join("suid/whoami")).unwrap();
    image
}

/// Lets the set-uid busybox keep euid 0 for `whoami` (only in the set-uid test's image: with
/// this file, busybox's applets run from its shell crash as non-root).
fn allow_setuid_whoami(image: &BusyboxRootfs) {
    std::fs::write(
        image.root().join("etc/busybox.conf"),
        "[SUID]\nwhoami = ssx root.root\n",
    )
    .unwrap();
}

/// A container in all namespaces but the user one (root only) with `image` as its rootfs.
fn in_image(root: &Path, script: &str) -> Container {
    Container::new("/bin/sh")
        .args(["-c", script])
        .namespaces(Namespaces::all() - Namespaces::USER)
        .rootfs(Rootfs::new(root))
}

fn stderr(o: &contain::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---- umask ----

#[test]
fn the_callers_umask_does_not_leak_in() {
    // The run example started with umask 077, as from a user's shell.
    let mut cmd = run_example();
    cmd.args(["--", "sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"]);
    // SAFETY: umask(2) in the forked child, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0022\n644\n", "{o:?}");
}

#[test]
fn a_container_gets_the_umask_it_is_given() {
    let o = output(
        Container::new("sh")
            .args(["-c", "umask; touch f; stat -c %a f; rm f"])
            .current_dir(TempDir::new("umask").path())
            .umask(0o027),
    );
    assert_eq!(stdout(&o), "0027\n640", "{o:?}");
    let e = Container::new("true").umask(0o1000).spawn().unwrap_err();
    assert!(e.to_string().contains("umask"), "{e}");
}

// ---- HOME and TERM ----

#[test]
fn home_comes_from_the_images_passwd_as_runc_sets_it() {
    const TEST: &str = "home_comes_from_the_images_passwd_as_runc_sets_it";
    if !is_root(TEST) {
        return;
    }
    let image = image("home");
    let home = |c: Container| stdout(&output(c));
    assert_eq!(home(in_image(&image.root(), "echo $HOME")), "/root");
    assert_eq!(
        home(in_image(&image.root(), "echo $HOME").uid(1000)),
        "/home/alice"
    );
    // No entry: "/".
    assert_eq!(home(in_image(&image.root(), "echo $HOME").uid(4242)), "/");
    // The caller's own value wins, even an empty one.
    assert_eq!(
        home(in_image(&image.root(), "echo \"[$HOME]\"").env("HOME", "/x")),
        "[/x]"
    );
    assert_eq!(
        home(in_image(&image.root(), "echo \"[$HOME]\"").env("HOME", "")),
        "[]"
    );

    // A persistent upper's own passwd wins over the image's.
    let upper = image.dir().join("upper");
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(
        upper.join("etc/passwd"),
        "root:x:0:0:root:/from-upper:/bin/sh\n",
    )
    .unwrap();
    let c = in_image(&image.root(), "echo $HOME")
        .rootfs(Rootfs::new(image.root()).persistent_upper(&upper));
    assert_eq!(home(c), "/from-upper");
}

#[test]
fn the_images_passwd_is_resolved_inside_the_image() {
    const TEST: &str = "the_images_passwd_is_resolved_inside_the_image";
    if !is_root(TEST) {
        return;
    }
    // /etc/passwd is a symlink that climbs out: inside the root it leads to the image's own
    // /etc/passwd-decoy (the host has none), never to the host's.
    let image = image("passwd-link");
    let root = image.root();
    std::fs::remove_file(root.join("etc/passwd")).unwrap();
    symlink(
        "../../../../../../../../../../etc/passwd-decoy",
        root.join("etc/passwd"),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/passwd-decoy"),
        "root:x:0:0:root:/decoy:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    )
    .unwrap();
    assert!(!Path::new("/etc/passwd-decoy").exists());
    let c = in_image(&root, "echo $HOME");
    assert_eq!(stdout(&output(c)), "/decoy");
    let c = in_image(&root, "echo $(id -u) $HOME")
        .user("alice".parse().unwrap())
        .rootfs(Rootfs::new(&root).mode(RootfsMode::ReadOnly));
    assert_eq!(stdout(&output(c)), "1000 /home/alice");
}

#[test]
fn a_tty_gets_term_xterm_unless_the_caller_says() {
    // -t needs a terminal as stdin.
    let pty = nix::pty::openpty(None, None).unwrap();
    let terminal = || StdStdio::from(pty.slave.try_clone().unwrap());
    let o = run_example()
        .args(["-t", "--", "sh", "-c", "echo TERM=$TERM"])
        .stdin(terminal())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("TERM=xterm"),
        "{o:?}"
    );
    let o = run_example()
        .args([
            "-t",
            "-e",
            "TERM=vt100",
            "--",
            "sh",
            "-c",
            "echo TERM=$TERM",
        ])
        .stdin(terminal())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("TERM=vt100"),
        "{o:?}"
    );
    // Without a tty, no TERM.
    let o = run(&["--", "sh", "-c", "echo \"[${TERM-unset}]\""]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "[unset]\n", "{o:?}");
}

// ---- HOSTNAME ----

#[test]
fn hostname_is_in_the_environment_as_docker_sets_it() {
    if !is_root("hostname_is_in_the_environment_as_docker_sets_it") {
        return;
    }
    // The environment as `env` shows it: bash (the guest's sh) sets a HOSTNAME shell
    // variable of its own.
    let bb = common::busybox::busybox_path().display().to_string();
    let env_hostname = |mut c: Container| {
        c = c.args([
            "-c".to_string(),
            format!(
                "echo \"[$({bb} env | {bb} sed -n s/^HOSTNAME=//p)] $(cat /proc/sys/kernel/hostname)\""
            ),
        ]);
        let o = output(c);
        assert!(o.status.success(), "{o:?}");
        stdout(&o)
    };
    let c = Container::new("/bin/sh")
        .namespaces(Namespaces::UTS)
        .hostname("box");
    assert_eq!(env_hostname(c), "[box] box");
    // The caller's HOSTNAME wins.
    let c = Container::new("/bin/sh")
        .namespaces(Namespaces::UTS)
        .hostname("box")
        .env("HOSTNAME", "mine");
    assert_eq!(env_hostname(c), "[mine] box");
    // No hostname set: none in the environment (the process keeps its inherited name).
    let c = Container::new("/bin/sh")
        .namespaces(Namespaces::UTS)
        .env_remove("HOSTNAME");
    let got = env_hostname(c);
    assert!(got.starts_with("[] "), "{got}");

    // The run example: its default, --hostname, and with --net host the host's name (as
    // docker) in `hostname`, $HOSTNAME and /etc/hostname.
    let script =
        format!("echo $({bb} env | {bb} sed -n s/^HOSTNAME=//p) $(hostname) $(cat /etc/hostname)");
    let script = script.as_str();
    let o = run(&["--", "sh", "-c", script]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "contain contain contain\n",
        "{o:?}"
    );
    let o = run(&["--hostname", "web", "--", "sh", "-c", script]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "web web web\n", "{o:?}");
    let host = nix::unistd::gethostname().unwrap();
    let host = host.to_string_lossy();
    let o = run(&["--net", "host", "--", "sh", "-c", script]);
    assert_eq!(code(&o), 0, "{o:?}");
    if !host.is_empty() {
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("{host} {host} {host}\n"),
            "{o:?}"
        );
    }
    let o = run(&[
        "--net",
        "host",
        "--hostname",
        "web",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "web web web\n", "{o:?}");
}

// ---- the working directory ----

#[test]
fn a_missing_working_directory_is_created_for_the_container_user() {
    const TEST: &str = "a_missing_working_directory_is_created_for_the_container_user";
    if !is_root(TEST) {
        return;
    }
    let image = image("workdir");
    let c = in_image(&image.root(), "pwd; stat -c '%u:%g %a' . /none")
        .current_dir("/none/such")
        .uid(65534)
        .gid(65534);
    let o = output(c);
    assert_eq!(
        stdout(&o),
        "/none/such\n65534:65534 755\n65534:65534 755",
        "{o:?}"
    );
    // The image is untouched (the overlay took the new directories).
    assert!(!image.root().join("none").exists());

    // The input, through the run example.
    let o = run(&["-w", "/none/such", "--", "pwd"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "/none/such\n", "{o:?}");
}

#[test]
fn a_working_directory_in_a_read_only_root_is_refused_with_the_remedy() {
    const TEST: &str = "a_working_directory_in_a_read_only_root_is_refused_with_the_remedy";
    if !is_root(TEST) {
        return;
    }
    let image = image("workdir-ro");
    let c = in_image(&image.root(), "pwd")
        .current_dir("/none/such")
        .rootfs(Rootfs::new(image.root()).mode(RootfsMode::ReadOnly));
    let e = c.spawn().unwrap_err().to_string();
    assert!(
        e.contains("/none/such") && e.contains("EROFS") && e.contains("writable layer"),
        "{e}"
    );
    let o = run(&["--read-only", "-w", "/none/such", "--", "true"]);
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("create it in the image"),
        "{o:?}"
    );
}

#[test]
fn a_working_directory_never_leads_out_of_the_root_nor_is_made_on_the_host() {
    const TEST: &str = "a_working_directory_never_leads_out_of_the_root_nor_is_made_on_the_host";
    if !is_root(TEST) {
        return;
    }
    // The image's /out climbs to a host directory: whatever happens, nothing appears there.
    let host = TempDir::new("workdir-host");
    let image = image("workdir-escape");
    let target = format!("../../../../../../../../..{}", host.path().display());
    symlink(&target, image.root().join("out")).unwrap();
    let c = in_image(&image.root(), "pwd").current_dir("/out/new");
    let result = c
        .stdout(Stdio::Piped)
        .spawn()
        .and_then(|child| child.wait_with_output());
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "{result:?}"
    );
    // ... and the link is followed inside the root, where the directory is made (as runc).
    let out = result.expect("a workdir behind a climbing link");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), format!("{}/new", host.path().display()));
    // A dangling link on the way, absolute or relative: its target is made inside the root.
    symlink("/nowhere/x", image.root().join("dangl")).unwrap();
    symlink("../srv/real", image.root().join("etc/rel")).unwrap();
    for (cwd, made) in [("/dangl/sub", "nowhere/x/sub"), ("/etc/rel", "srv/real")] {
        let c = in_image(&image.root(), "pwd -P; stat -c %a .").current_dir(cwd);
        let o = output(c);
        assert!(o.status.success(), "{cwd}: {o:?}");
        assert_eq!(stdout(&o), format!("/{made}\n755"), "{cwd}");
        assert!(!image.root().join(made).exists(), "the image is unchanged");
    }
    // Without a rootfs the caller's filesystem is never changed: the chdir fails.
    let missing = host.path().join("no/such");
    let e = Container::new("true")
        .current_dir(&missing)
        .spawn()
        .unwrap_err();
    assert!(e.to_string().contains("ENOENT"), "{e}");
    assert!(!host.path().join("no").exists());
}

#[test]
fn a_relative_working_directory_is_refused_with_a_rootfs_and_kept_without() {
    if !is_root("a_relative_working_directory_is_refused_with_a_rootfs_and_kept_without") {
        return;
    }
    let image = image("workdir-relative");
    let c = in_image(&image.root(), "pwd").current_dir("rel/dir");
    let e = c.spawn().unwrap_err().to_string();
    assert!(
        e.contains("rel/dir") && e.contains("needs to be an absolute path"),
        "{e}"
    );
    assert!(!image.root().join("rel").exists());
    // The run example, as docker: refused, nothing created.
    let o = run(&["-w", "rel/dir", "--", "pwd"]);
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs to be an absolute path"),
        "{o:?}"
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    // Without a rootfs it is relative to the caller's working directory: a temporary
    // directory reached from there with `..`s.
    let dir = TempDir::new("workdir-relative");
    let here = std::env::current_dir().unwrap();
    let mut rel = std::path::PathBuf::new();
    for _ in here.components().skip(1) {
        rel.push("..");
    }
    rel.push(dir.path().strip_prefix("/").unwrap());
    assert!(rel.is_relative());
    let c = Container::new("/bin/pwd").current_dir(&rel);
    let o = output(c);
    assert_eq!(stdout(&o), dir.path().display().to_string(), "{o:?}");
}

// ---- --user NAME[:GROUP] ----

#[test]
fn user_names_resolve_in_the_image_with_their_groups() {
    const TEST: &str = "user_names_resolve_in_the_image_with_their_groups";
    if !is_root(TEST) {
        return;
    }
    let image = image("user");
    let root = image.root();
    let ids = |user: &str| {
        let c = in_image(
            &root,
            "echo $(id -u) $(id -g) $(sed -n 's/^Groups:\\t*//p' /proc/self/status) $HOME",
        )
        .user(user.parse().unwrap());
        let o = output(c);
        assert!(o.status.success(), "{user}: {o:?}");
        stdout(&o)
    };
    assert_eq!(ids("alice"), "1000 1000 29 44 /home/alice");
    // A number with an entry gets its groups too, as runc.
    assert_eq!(ids("1000"), "1000 1000 29 44 /home/alice");
    // An explicit group: exactly that group.
    assert_eq!(ids("alice:staff"), "1000 50 /home/alice");
    assert_eq!(ids("alice:7"), "1000 7 /home/alice");
    assert_eq!(ids("4242:audio"), "4242 29 /");
    assert_eq!(ids("nobody"), "65534 65534 /nonexistent");

    let c = in_image(&root, "true").user("mallory".parse().unwrap());
    let e = c.spawn().unwrap_err().to_string();
    assert!(
        e.contains("unable to find user mallory: no matching entries in passwd file"),
        "{e}"
    );
    let c = in_image(&root, "true").user("alice:wheel".parse().unwrap());
    let e = c.spawn().unwrap_err().to_string();
    assert!(e.contains("unable to find group wheel"), "{e}");

    // Explicit ids win over the resolved ones.
    let c = in_image(&root, "echo $(id -u) $(id -g)")
        .user("alice".parse().unwrap())
        .uid(7);
    assert_eq!(stdout(&output(c)), "7 1000");
}

#[test]
fn the_run_example_takes_docker_s_user_spellings() {
    const TEST: &str = "the_run_example_takes_docker_s_user_spellings";
    if !is_root(TEST) {
        return;
    }
    let image = image("user-run");
    let root = image.root().display().to_string();
    let ids = |user: &str| {
        let o = run(&[
            "--rootfs",
            &root,
            "-u",
            user,
            "--",
            "sh",
            "-c",
            "echo $(id -u) $(id -g) $(id -G)",
        ]);
        assert_eq!(code(&o), 0, "{user}: {o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(ids("alice"), "1000 1000 1000 29 44");
    assert_eq!(ids("alice:staff"), "1000 50 50");
    assert_eq!(ids("65534:65534"), "65534 65534 65534");
    let o = run(&["--rootfs", &root, "-u", "mallory", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("unable to find user mallory: no matching entries in passwd file"),
        "{o:?}"
    );
}

// ---- the standard streams ----

#[test]
fn a_container_user_can_reopen_its_stdout_pipe() {
    // The input: `-u 65534:65534 sh -c 'echo x >/dev/stdout' | cat` (the test's
    // pipe is the `| cat`).
    let o = run(&[
        "-u",
        "65534:65534",
        "--",
        "sh",
        "-c",
        "echo x >/dev/stdout; echo y >/dev/stderr",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "x\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "y\n");
}

#[test]
fn stdio_files_and_dev_null_keep_their_owner() {
    const TEST: &str = "stdio_files_and_dev_null_keep_their_owner";
    if !is_root(TEST) {
        return;
    }
    let dir = TempDir::new("stdio-owner");
    let file = dir.path().join("out");
    let f = std::fs::File::create(&file).unwrap();
    let null_before = std::fs::metadata("/dev/null").unwrap();
    let status = Container::new("sh")
        .args(["-c", "echo to-file; cat /dev/stdin"])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::Null)
        .stdout(f)
        .stderr(Stdio::Null)
        .spawn()
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "to-file\n");
    let null_after = std::fs::metadata("/dev/null").unwrap();
    assert_eq!(
        (null_after.uid(), null_after.gid(), null_after.mode()),
        (null_before.uid(), null_before.gid(), null_before.mode())
    );
    // A pipe is given to the user (it can reopen it).
    let o = output(
        Container::new("sh")
            .args(["-c", "echo x >/proc/self/fd/1"])
            .uid(65534)
            .gid(65534),
    );
    assert_eq!(stdout(&o), "x", "{o:?}");
}

// ---- sysctls ----

#[test]
fn a_non_root_user_binds_port_80() {
    const TEST: &str = "a_non_root_user_binds_port_80";
    if !is_root(TEST) {
        return;
    }
    // busybox nc: bound, it waits 1 s for a client and says "timed out"; refused, it says
    // "Permission denied" at once.
    let image = image("port80");
    let c = in_image(&image.root(), "nc -l -p 80 -w 1")
        .uid(65534)
        .gid(65534);
    let o = output(c);
    let err = stderr(&o);
    assert!(
        err.contains("timed out") && !err.contains("denied"),
        "{o:?}"
    );
    // The caller's own value wins over docker's default.
    let c = in_image(&image.root(), "nc -l -p 80 -w 1")
        .uid(65534)
        .gid(65534)
        .sysctl("net.ipv4.ip_unprivileged_port_start", "1024");
    let o = output(c);
    assert!(stderr(&o).contains("denied"), "{o:?}");
    // And through the run example, in a user namespace.
    let root = image.root().display().to_string();
    let o = run(&[
        "--rootfs", &root, "-u", "65534", "--", "nc", "-l", "-p", "80", "-w", "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("timed out") && !err.contains("denied"),
        "{o:?}"
    );
}

#[test]
fn ping_sockets_work_for_any_group() {
    const TEST: &str = "ping_sockets_work_for_any_group";
    if !is_root(TEST) {
        return;
    }
    let range = |mut c: Container| {
        c = c.args(["/proc/sys/net/ipv4/ping_group_range"]);
        stdout(&output(c)).replace('\t', " ")
    };
    let c = Container::new("cat").namespaces(Namespaces::NET);
    assert_eq!(range(c), "0 2147483647");
    // In a user namespace: the mapped gids.
    let c = Container::new("cat")
        .namespaces(Namespaces::NET | Namespaces::USER)
        .uid_map(&[IdMap::new(0, 0, 65_536)])
        .gid_map(&[IdMap::new(0, 0, 65_536)]);
    assert_eq!(range(c), "0 65535");
    // Mapping every id: capped at the sysctl's own bound, 2^31 - 1.
    let c = Container::new("cat")
        .namespaces(Namespaces::NET | Namespaces::USER)
        .uid_map(&[IdMap::new(0, 0, u32::MAX)])
        .gid_map(&[IdMap::new(0, 0, u32::MAX)]);
    assert_eq!(range(c), "0 2147483647");

    // socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) as uid/gid 65534 in a container's network
    // namespace: a process that joins it (before: EACCES).
    let mut holder = Container::new("cat")
        .namespaces(Namespaces::NET)
        .stdin(Stdio::Piped)
        .spawn()
        .unwrap();
    let netns = std::fs::File::open(format!("/proc/{}/ns/net", holder.id())).unwrap();
    let netns_fd = netns.as_raw_fd();
    let mut probe = std::process::Command::new("true");
    // SAFETY: setns, setgroups, setresgid, setresuid and socket in the forked child, all
    // async-signal-safe; an error ends the spawn with it.
    unsafe {
        probe.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(r)
                }
            };
            check(libc::setns(netns_fd, libc::CLONE_NEWNET))?;
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setresgid(65534, 65534, 65534))?;
            check(libc::setresuid(65534, 65534, 65534))?;
            let fd = check(libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMP,
            ))?;
            libc::close(fd);
            Ok(())
        });
    }
    let result = probe.status();
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert!(result.is_ok_and(|s| s.success()), "ping socket as 65534");
}

#[test]
fn sysctls_show_up_and_host_wide_ones_are_refused() {
    // (net.core.somaxconn would do as well, but before Linux 6.x the kernel hides it in a
    // network namespace owned by a user namespace, as the run example's is.)
    const KEY: &str = "/proc/sys/net/ipv4/tcp_keepalive_time";
    let host_before = std::fs::read_to_string(KEY).unwrap();
    let o = run(&[
        "--sysctl",
        "net.ipv4.tcp_keepalive_time=1234",
        "--",
        "cat",
        KEY,
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1234\n");
    assert_eq!(std::fs::read_to_string(KEY).unwrap(), host_before);
    let o = run(&["--sysctl", "kernel.pid_max=1234", "--", "true"]);
    assert_eq!(code(&o), 125);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("kernel.pid_max") && err.contains("not a namespaced sysctl"),
        "{o:?}"
    );
    // A network sysctl with the host's network is refused too.
    let o = run(&[
        "--net",
        "host",
        "--sysctl",
        "net.core.somaxconn=1",
        "--",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("network namespace"),
        "{o:?}"
    );
    // IPC ones in the container's own IPC namespace.
    let o = run(&[
        "--sysctl",
        "kernel.shmmni=123",
        "--",
        "cat",
        "/proc/sys/kernel/shmmni",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "123\n", "{o:?}");
    // One the kernel does not have: the error names it and the errno.
    let e = Container::new("true")
        .namespaces(Namespaces::NET)
        .sysctl("net.ipv4.no_such_sysctl", "1")
        .spawn()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/proc/sys/net/ipv4/no_such_sysctl") && e.contains("ENOENT"),
        "{e}"
    );
    // docker's own ping_group_range: fine where every gid is mapped (the run example as root)...
    let o = run(&[
        "--sysctl",
        "net.ipv4.ping_group_range=0 2147483647",
        "--",
        "cat",
        "/proc/sys/net/ipv4/ping_group_range",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0\t2147483647");
    // ... refused before clone, with the mapped range, where the user namespace does not map
    // them (--rootless maps only the caller).
    let o = run(&[
        "--rootless",
        "--sysctl",
        "net.ipv4.ping_group_range=0 2147483647",
        "--",
        "echo",
        "ran",
    ]);
    assert_eq!(code(&o), 125, "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ping_group_range") && err.contains("maps gids 0 to"),
        "{err}"
    );
    let o = run(&[
        "--sysctl",
        "net.ipv4.ping_group_range=10 20",
        "--",
        "cat",
        "/proc/sys/net/ipv4/ping_group_range",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["10", "20"],
        "{o:?}"
    );
}

// ---- no_new_privs ----

#[test]
fn setuid_binaries_gain_privileges_only_without_no_new_privileges() {
    const TEST: &str = "setuid_binaries_gain_privileges_only_without_no_new_privileges";
    if !is_root(TEST) {
        return;
    }
    let image = image("suid");
    allow_setuid_whoami(&image);
    let root = image.root().display().to_string();
    let euid = |opts: &[&str]| {
        let mut args = vec!["--rootfs", root.as_str(), "-u", "65534:65534"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["--", "/suid/whoami"]);
        let o = run(&args);
        (
            code(&o),
            String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
    };
    // docker's default: off, the set-uid binary runs as root.
    assert_eq!(euid(&[]), (0, "root".into()));
    for opt in ["no-new-privileges=false", "no-new-privileges:false"] {
        assert_eq!(euid(&["--security-opt", opt]), (0, "root".into()), "{opt}");
    }
    for opt in [
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:true",
    ] {
        // busybox cannot become root and says so.
        let (code, out) = euid(&["--security-opt", opt]);
        assert!(code != 0 && out.is_empty(), "{opt}: {code} {out:?}");
    }
    let o = run(&["--security-opt", "apparmor=x", "--", "true"]);
    assert_eq!(code(&o), 125);
    // seccomp=unconfined is --no-seccomp: no filter (mode 0 in /proc/self/status).
    let mode = |opts: &[&str]| {
        let mut args = opts.to_vec();
        args.extend_from_slice(&["--", "grep", "^Seccomp:", "/proc/self/status"]);
        let o = run(&args);
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .last()
            .map(str::to_owned)
    };
    assert_eq!(
        mode(&["--security-opt", "seccomp=unconfined"]).as_deref(),
        Some("0")
    );
    assert_eq!(mode(&[]).as_deref(), Some("2"));

    // The library keeps it on by default.
    let whoami = || {
        in_image(&image.root(), "/suid/whoami")
            .uid(65534)
            .gid(65534)
    };
    let o = output(whoami());
    assert!(!o.status.success(), "{o:?}");
    assert_eq!(stdout(&output(whoami().no_new_privs(false))), "root");
}

// ---- rootless ----

#[test]
fn rootless_defaults() {
    if !is_root("rootless_defaults") {
        return;
    }
    // The example as uid 65534, from a copy nobody can reach: a user namespace mapping it to
    // 0, no_new_privs off (the filter goes in before the identity switch, as the namespace's
    // root), HOME of root, the one mapped gid for ping, the umask.
    let dir = TempDir::new("defaults-nobody");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("run");
    common::copy_executable(Path::new(run_example().get_program()), &exe);
    let mut cmd = std::process::Command::new(&exe);
    cmd.args([
        "--",
        "sh",
        "-c",
        "umask; echo $HOME; cat /proc/sys/net/ipv4/ping_group_range \
         /proc/sys/net/ipv4/ip_unprivileged_port_start",
    ])
    .current_dir("/")
    .uid(65534)
    .gid(65534);
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).replace('\t', " "),
        "0022\n/root\n0 0\n0\n",
        "{o:?}"
    );
}
