//! What the tests need on the host, installed with apt-get when something is missing, so that
//! `cargo xtask test` works on a fresh Debian/Ubuntu machine. Nothing is run when everything
//! is there: each need is one lookup in PATH (or a look at a file), so repeated runs cost
//! nothing. Not root, it installs nothing: it says which command to run, and fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::error::{bail, Result};

/// What a run needs: the host test suite, the guests, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub host: bool,
    pub vm: bool,
}

/// How a need is recognised as met.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// A program found like `command -v` finds it (PATH, plus the sbin directories, which a
    /// non-root PATH often lacks).
    Program(&'static str),
    /// A statically linked busybox at /bin/busybox or /usr/bin/busybox (Debian's `busybox`
    /// package is dynamic; the tests copy busybox into images without libraries).
    StaticBusybox,
}

struct Need {
    check: Check,
    package: &'static str,
    host: bool,
    vm: bool,
    why: &'static str,
}

/// Keep in step with the package list in `.ci/run` (a unit test checks it).
const NEEDS: [Need; 10] = [
    Need {
        check: Check::Program("qemu-system-x86_64"),
        package: "qemu-system-x86",
        host: false,
        vm: true,
        why: "the guest with a pure cgroup v2 tree",
    },
    Need {
        check: Check::Program("ldd"),
        package: "libc-bin",
        host: false,
        vm: true,
        why: "the test binaries' libraries go into the guest",
    },
    Need {
        check: Check::StaticBusybox,
        package: "busybox-static",
        host: true,
        vm: false,
        why: "minimal rootfs images in the tests",
    },
    Need {
        check: Check::Program("newuidmap"),
        package: "uidmap",
        host: true,
        vm: true,
        why: "rootless id maps with several ranges (also copied into the guest)",
    },
    Need {
        check: Check::Program("newgidmap"),
        package: "uidmap",
        host: true,
        vm: true,
        why: "rootless id maps with several ranges (also copied into the guest)",
    },
    Need {
        check: Check::Program("ip"),
        package: "iproute2",
        host: true,
        vm: true,
        why: "veth checks (also copied into the guest)",
    },
    Need {
        check: Check::Program("debootstrap"),
        package: "debootstrap",
        host: true,
        vm: false,
        why: "tests/distro.rs: a Debian minbase rootfs",
    },
    Need {
        check: Check::Program("umoci"),
        package: "umoci",
        host: true,
        vm: false,
        why: "image tests: OCI layouts made by another tool, and reading ours",
    },
    Need {
        check: Check::Program("skopeo"),
        package: "skopeo",
        host: true,
        vm: false,
        why: "image tests: oci-archive and docker-archive tarballs, and reading ours",
    },
    Need {
        check: Check::Program("buildah"),
        package: "buildah",
        host: true,
        vm: false,
        why: "image tests: an image built from a Containerfile by another tool",
    },
];

/// Directories searched besides $PATH.
const EXTRA_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The packages to install for `scope`, each once, in [`NEEDS`] order, with what is missing.
fn missing(scope: Scope) -> Vec<(&'static Need, String)> {
    NEEDS
        .iter()
        .filter(|n| (scope.host && n.host) || (scope.vm && n.vm))
        .filter_map(|n| match n.check {
            Check::Program(name) => find_program(name).is_none().then(|| (n, name.to_string())),
            Check::StaticBusybox => (!["/bin/busybox", "/usr/bin/busybox"]
                .iter()
                .any(|p| is_static_elf(Path::new(p))))
            .then(|| (n, "a static busybox".to_string())),
        })
        .collect()
}

fn packages(missing: &[(&Need, String)]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for (need, _) in missing {
        if !packages.contains(&need.package) {
            packages.push(need.package);
        }
    }
    packages
}

/// `command -v NAME`, also looking in the sbin directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `path` is a 64-bit little-endian ELF file without a program interpreter.
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let at = |o: usize, n: usize| bytes.get(o..o + n);
    let u16_at = |o| at(o, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o| at(o, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o| at(o, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    if at(0, 6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..count).all(|i| {
        usize::try_from(phoff)
            .ok()
            .and_then(|off| u32_at(off + i * size))
            .is_some_and(|p_type| p_type != PT_INTERP)
    })
}

/// The one command a user who is not root runs to install `packages`.
fn install_hint(packages: &[&str]) -> String {
    format!(
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// Make sure what `scope` needs is there: nothing happens when it is; as root, the missing
/// packages are installed with apt-get; otherwise the command to run is printed and this
/// fails.
pub fn ensure(scope: Scope) -> Result<()> {
    let missing = missing(scope);
    if missing.is_empty() {
        return Ok(());
    }
    let packages = packages(&missing);
    eprintln!("xtask: the tests need what this host lacks:");
    for (need, what) in &missing {
        eprintln!("xtask:   {what} (package {}): {}", need.package, need.why);
    }
    apt_install(
        &packages,
        "run this again (--host-only skips the guest's needs)",
    )?;
    let still: Vec<String> = self::missing(scope).into_iter().map(|(_, w)| w).collect();
    if !still.is_empty() {
        bail!(
            "still missing after installing {}: {}",
            packages.join(" "),
            still.join(", ")
        );
    }
    Ok(())
}

/// Install `packages`, which another xtask command needs (`why`), as [`ensure`] does:
/// as root with apt-get; otherwise the command to run is printed and this fails.
pub fn install(packages: &[&str], why: &str) -> Result<()> {
    eprintln!("xtask: installing {}: {why}", packages.join(" "));
    apt_install(packages, "run this again")
}

/// `apt-get update` and `apt-get install` of `packages` as root; not root, or without
/// apt-get, an error saying what to install (`then`: what to do after that).
fn apt_install(packages: &[&str], then: &str) -> Result<()> {
    if find_program("apt-get").is_none() {
        bail!(
            "no apt-get here: install the equivalents of the Debian packages {} and {then}",
            packages.join(" ")
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("xtask: not root, so nothing was installed; run this, then try again:");
        eprintln!("    {}", install_hint(packages));
        bail!("missing packages: {}", packages.join(" "));
    }
    apt_get_update()?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    eprintln!("xtask: {}", cmd::display(&install));
    let status = cmd::status(&mut install)?;
    if !status.success() {
        bail!(
            "`{}` failed ({})",
            cmd::display(&install),
            cmd::describe(status)
        );
    }
    Ok(())
}

/// `apt-get update`, tried three times: package mirrors hiccup now and then.
fn apt_get_update() -> Result<()> {
    let mut update = Command::new("apt-get");
    update
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    eprintln!("xtask: {}", cmd::display(&update));
    let mut last = String::new();
    for attempt in 1..=3 {
        let status = cmd::status(&mut update)?;
        if status.success() {
            return Ok(());
        }
        last = cmd::describe(status);
        if attempt < 3 {
            eprintln!("xtask: apt-get update failed ({last}); trying again in 10 s");
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
    }
    bail!("apt-get update failed three times ({last})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_run_installs_every_package_the_xtask_needs() {
        let ci = std::fs::read_to_string(crate::cache::workspace_root().join(".ci/run")).unwrap();
        for need in &NEEDS {
            assert!(
                ci.lines()
                    .any(|l| l.split_whitespace().any(|w| w == need.package)),
                ".ci/run does not list {}",
                need.package
            );
        }
    }

    #[test]
    fn scope_picks_the_needs_and_packages_come_once() {
        let all: Vec<(&Need, String)> = NEEDS.iter().map(|n| (n, String::new())).collect();
        assert_eq!(
            packages(&all),
            [
                "qemu-system-x86",
                "libc-bin",
                "busybox-static",
                "uidmap",
                "iproute2",
                "debootstrap",
                "umoci",
                "skopeo",
                "buildah"
            ]
        );
        assert!(NEEDS.iter().all(|n| n.host || n.vm));
        assert!(NEEDS
            .iter()
            .filter(|n| n.package == "qemu-system-x86")
            .all(|n| n.vm && !n.host));
    }

    #[test]
    fn finds_programs_like_command_v() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-xtask").is_none());
        assert_eq!(
            install_hint(&["a", "b"]),
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends a b"
        );
    }

    #[test]
    fn tells_static_from_dynamic_elf() {
        // The test binary itself is dynamic (it has an interpreter); a text file is no ELF.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
    }
}
