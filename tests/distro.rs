//! A real distribution userland: Debian bookworm made with `debootstrap --variant=minbase`
//! (cached under the target directory; the first run takes minutes). apt and dpkg work
//! inside, a shell script with pipes runs, and a user created inside exists only there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{is_root, output, stdout};
use contain::idmap::IdMap;
use contain::namespace::Namespaces;
use contain::process::Container;
use contain::rootfs::Rootfs;

/// The cached Debian rootfs, made on first use.
fn debian_rootfs() -> PathBuf {
    // target/<profile>/deps/<test binary> -> target/debian-bookworm-minbase
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("debian-bookworm-minbase");
    if dir.join("usr/bin/apt-get").exists() {
        return dir;
    }
    let debootstrap = ["/usr/sbin/debootstrap", "/sbin/debootstrap"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
    let debootstrap =
        debootstrap.expect("debootstrap is missing: apt-get install debootstrap (.ci/run does)");
    let tmp = target.join(format!(
        "debian-bookworm-minbase.tmp-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!(
        "building {} with debootstrap (once; a few minutes)",
        dir.display()
    );
    let st = Command::new(debootstrap)
        .args(["--variant=minbase", "bookworm"])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian")
        .status()
        .unwrap();
    assert!(st.success(), "debootstrap failed: {st}");
    std::fs::rename(&tmp, &dir).unwrap();
    dir
}

fn debian(image: &Path) -> Container {
    // Ids 0-65535 kept as they are: the image's files (root:shadow /etc/gshadow ...) belong
    // to ids the user namespace must map for root inside to have power over them.
    Container::new("/bin/sh")
        .namespaces(Namespaces::all())
        .uid_map(&[IdMap::new(0, 0, 65_536)])
        .gid_map(&[IdMap::new(0, 0, 65_536)])
        .hostname("debian")
        .rootfs(Rootfs::new(image))
}

/// A listing of every file under `dir` with its size, mode and mtime, to prove it unchanged.
fn fingerprint(dir: &Path) -> String {
    let out = Command::new("find")
        .arg(dir)
        .args(["-xdev", "-printf", "%p %s %m %T@ %l\n"])
        .output()
        .unwrap();
    let mut lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

#[test]
fn debian_minbase_runs_apt_dpkg_pipes_and_users() {
    if !is_root("debian_minbase_runs_apt_dpkg_pipes_and_users") {
        return;
    }
    if std::env::var_os("CONTAIN_IN_VM").is_some() {
        eprintln!(
            "the Debian image (~300 MB) is not copied into the VM; this test runs on the host"
        );
        return;
    }
    let image = debian_rootfs();
    let before = fingerprint(&image);

    let o = output(debian(&image).args([
        "-c",
        "dpkg -l | grep -c '^ii'; apt-get --version | head -1; cat /etc/debian_version",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    let mut lines = text.lines();
    let installed: u32 = lines.next().unwrap().parse().unwrap();
    assert!(installed > 50, "dpkg lists {installed} packages");
    assert!(lines.next().unwrap().starts_with("apt "), "{text}");
    assert!(lines.next().unwrap().starts_with("12"), "{text}");

    let script = "set -e; seq 1 100 | awk '{s+=$1} END {print s}' | tr 0 o; echo $(hostname)";
    let o = output(debian(&image).args(["-c", script]));
    assert_eq!(stdout(&o), "5o5o\ndebian", "{o:?}");

    let o = output(debian(&image).args([
        "-c",
        "useradd -m tester && id -u tester && ls -d /home/tester",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).ends_with("/home/tester"), "{o:?}");
    // The user existed only in that container's throw-away layer.
    let o = output(debian(&image).args(["-c", "id tester"]));
    assert!(
        !o.status.success(),
        "tester must not survive the container: {o:?}"
    );
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!host_passwd.contains("tester:"));
    assert_eq!(fingerprint(&image), before, "the image directory changed");
}
