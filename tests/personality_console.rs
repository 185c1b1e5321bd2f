//! `Container::personality` (the OCI spec's `linux.personality`) and
//! `Container::console_size` (`process.consoleSize`) in real containers. The runs that need
//! a rootfs or namespaces need root.

mod common;

use std::io::Read;
use std::os::unix::fs::symlink;

use common::busybox::BusyboxRootfs;
use common::{in_path, is_root, output, stdout};
use contain::namespace::Namespaces;
use contain::process::{Container, Personality, PersonalityDomain, PersonalityFlags, WindowSize};
use contain::rootfs::Rootfs;

#[test]
#[cfg(target_arch = "x86_64")]
fn linux32_makes_uname_say_i686() {
    let Some(uname) = in_path("uname") else {
        return common::skip("linux32_makes_uname_say_i686", "no uname in PATH");
    };
    let o = output(
        Container::new(&uname)
            .arg("-m")
            .personality(Personality::new(PersonalityDomain::Linux32)),
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "i686");
    // The native domain, and the flags reach /proc/self/personality.
    let o = output(
        Container::new(&uname)
            .arg("-m")
            .personality(Personality::new(PersonalityDomain::Linux)),
    );
    assert_eq!(stdout(&o), "x86_64", "{o:?}");
    let o = output(
        Container::new("cat")
            .arg("/proc/self/personality")
            .personality(
                Personality::new(PersonalityDomain::Linux32)
                    .flags(PersonalityFlags::ADDR_NO_RANDOMIZE),
            ),
    );
    assert_eq!(stdout(&o), "00040008", "{o:?}");
}

#[test]
fn flag_names_are_the_kernels() {
    assert_eq!(
        PersonalityFlags::from_name("ADDR_NO_RANDOMIZE"),
        Some(PersonalityFlags::ADDR_NO_RANDOMIZE)
    );
    assert_eq!(PersonalityFlags::from_name("NO_SUCH_FLAG"), None);
    assert_eq!(Personality::new(PersonalityDomain::Linux32).raw(), 8);
}

/// Everything the container wrote to its terminal, read from the master until the slave is
/// gone (EIO), then its exit code.
fn tty_output(c: Container) -> (String, Option<i32>) {
    let mut child = c.tty(true).spawn().expect("spawn");
    let master = child.take_tty().expect("a pty master");
    let mut f = std::fs::File::from(master);
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().expect("wait");
    (
        String::from_utf8_lossy(&text).trim().to_string(),
        status.code(),
    )
}

#[test]
fn console_size_is_the_ptys_first_size() {
    let Some(stty) = in_path("stty") else {
        return common::skip("console_size_is_the_ptys_first_size", "no stty in PATH");
    };
    // The pty opened by the caller (no rootfs).
    let (text, code) = tty_output(Container::new(&stty).arg("size").console_size(WindowSize {
        rows: 41,
        cols: 123,
    }));
    assert_eq!((text.as_str(), code), ("41 123", Some(0)));
    if !is_root("console_size_is_the_ptys_first_size (rootfs part)") {
        return;
    }
    // The pty opened by the child in the container's devpts (with a rootfs).
    let image = BusyboxRootfs::new("console-size");
    symlink("busybox", image.root().join("bin/stty")).unwrap();
    let (text, code) = tty_output(
        Container::new("/bin/stty")
            .arg("size")
            .env("PATH", "/bin")
            .namespaces(Namespaces::MOUNT | Namespaces::PID)
            .rootfs(Rootfs::new(image.root()))
            .console_size(WindowSize { rows: 24, cols: 80 }),
    );
    assert_eq!((text.as_str(), code), ("24 80", Some(0)));
}
