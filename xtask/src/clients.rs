//! What `cargo xtask podman` and `cargo xtask containerd` share: a private work directory
//! that is removed with everything mounted below it, the test images as `oci-archive`
//! tarballs, client commands run with a time limit, and the table of cases.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{bail, Context, Result};
use crate::setup;

/// A private directory under the system's temp dir, removed when dropped: first every mount
/// below it is lazily unmounted (deepest first), then the tree.
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// `$TMPDIR/xtask-WHAT-PID`, made empty (a leftover of a killed run with the same pid
    /// is cleaned first).
    pub fn new(what: &str) -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("xtask-{what}-{}", std::process::id()));
        let dir = WorkDir { path };
        dir.clean();
        std::fs::create_dir_all(&dir.path)
            .with_context(|| format!("mkdir {}", dir.path.display()))?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmount what is mounted at or below the directory (overlay layers, shm, netns
    /// files), then remove it; problems are printed, not returned.
    fn clean(&self) {
        for mount in mounts_below(&self.path) {
            let status = Command::new("umount")
                .arg("--lazy")
                .arg(&mount)
                .stderr(Stdio::null())
                .status();
            if !status.is_ok_and(|s| s.success()) {
                eprintln!("xtask: cannot unmount {}", mount.display());
            }
        }
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("xtask: cannot remove {}: {e}", self.path.display()),
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        self.clean();
    }
}

/// The mount points at or below `dir` in /proc/self/mountinfo, deepest (longest) first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.dedup();
    found
}

/// mountinfo's `\NNN` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(n) = u8::from_str_radix(digits, 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes the cgroup directories `relative` (e.g. `xtask-podman-PID`) in every mounted
/// hierarchy under /sys/fs/cgroup, children first; those still holding processes stay and
/// are printed.
pub fn remove_cgroups(relative: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = hierarchies
        .flatten()
        .map(|e| e.path().join(relative))
        .collect();
    // Pure cgroup v2: the group is right under /sys/fs/cgroup.
    roots.push(Path::new("/sys/fs/cgroup").join(relative));
    for root in roots {
        if !root.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&root, &mut dirs);
        dirs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for dir in dirs {
            if let Err(e) = std::fs::remove_dir(&dir) {
                eprintln!("xtask: cannot remove cgroup {}: {e}", dir.display());
            }
        }
    }
}

/// Whether `controller` is on the cgroup v2 hierarchy mounted at /sys/fs/cgroup (a pure v2
/// host); on a hybrid host /sys/fs/cgroup is a tmpfs of v1 hierarchies.
pub fn on_v2(controller: &str) -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|w| w == controller))
}

/// Whether the cgroup directory `relative` exists in any hierarchy under /sys/fs/cgroup.
pub fn cgroup_exists(relative: &str) -> bool {
    Path::new("/sys/fs/cgroup").join(relative).is_dir()
        || std::fs::read_dir("/sys/fs/cgroup").is_ok_and(|hierarchies| {
            hierarchies
                .flatten()
                .any(|e| e.path().join(relative).is_dir())
        })
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// The test images, made once per run into the work directory.
pub struct Images {
    /// busybox-static with its applets as links, `/etc/passwd`, CMD `sh`.
    pub busybox: PathBuf,
    /// The Debian bookworm minbase rootfs, CMD `bash`; `None` when not asked for.
    pub debian: Option<PathBuf>,
}

/// The name each archive gives its image (`org.opencontainers.image.ref.name`).
pub const BUSYBOX_TAG: &str = "busybox";
pub const DEBIAN_TAG: &str = "debian";

/// Makes the `oci-archive` tarballs (an OCI image layout in a tar, one gzipped layer) with
/// umoci: `umoci init`, `umoci new`, `umoci insert ROOTFS /`, `umoci config`, then `tar`.
pub fn make_images(work: &Path, debian_rootfs: Option<&Path>) -> Result<Images> {
    let busybox_bin = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| crate::error::Error::new("no busybox (package busybox-static)"))?;
    let tree = work.join("busybox-rootfs");
    for dir in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(tree.join(dir))
            .with_context(|| format!("mkdir in {}", tree.display()))?;
    }
    std::fs::copy(busybox_bin, tree.join("bin/busybox"))
        .with_context(|| format!("copy {}", busybox_bin.display()))?;
    let list = cmd::stdout(Command::new(tree.join("bin/busybox")).arg("--list"))?;
    for applet in list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let link = tree.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link)
            .with_context(|| format!("symlink {}", link.display()))?;
    }
    std::fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(tree.join("etc/group"), "root:x:0:\n")?;
    let busybox = work.join("busybox.oci.tar");
    oci_archive(work, &tree, BUSYBOX_TAG, "sh", &busybox)?;
    std::fs::remove_dir_all(&tree).with_context(|| format!("rm -r {}", tree.display()))?;
    let debian = match debian_rootfs {
        Some(rootfs) => {
            let out = work.join("debian.oci.tar");
            oci_archive(work, rootfs, DEBIAN_TAG, "bash", &out)?;
            Some(out)
        }
        None => None,
    };
    Ok(Images { busybox, debian })
}

fn oci_archive(work: &Path, rootfs: &Path, tag: &str, cmd_: &str, out: &Path) -> Result<()> {
    let layout = work.join(format!("{tag}-layout"));
    let image = format!("{}:{tag}", layout.display());
    let umoci = |args: &[&OsStr]| -> Result<()> {
        cmd::output(Command::new("umoci").args(args)).map(|_| ())
    };
    umoci(&["init".as_ref(), "--layout".as_ref(), layout.as_os_str()])?;
    umoci(&["new".as_ref(), "--image".as_ref(), image.as_ref()])?;
    umoci(&[
        "insert".as_ref(),
        "--image".as_ref(),
        image.as_ref(),
        rootfs.as_os_str(),
        "/".as_ref(),
    ])?;
    umoci(&[
        "config".as_ref(),
        "--image".as_ref(),
        image.as_ref(),
        "--config.cmd".as_ref(),
        cmd_.as_ref(),
        "--config.env".as_ref(),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".as_ref(),
    ])?;
    umoci(&["gc".as_ref(), "--layout".as_ref(), layout.as_os_str()])?;
    cmd::output(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(out)
            .arg("."),
    )?;
    std::fs::remove_dir_all(&layout).with_context(|| format!("rm -r {}", layout.display()))?;
    Ok(())
}

/// The Debian rootfs the project's tests use: `DIR` when given, else
/// `$CARGO_TARGET_DIR/debian-bookworm-minbase`, made with debootstrap (minutes, once) when
/// missing, as tests/distro.rs makes it.
pub fn debian_rootfs(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = given {
        if !dir.join("usr/bin/apt-get").exists() {
            bail!(
                "{}: not a Debian rootfs (no usr/bin/apt-get)",
                dir.display()
            );
        }
        return Ok(dir.to_path_buf());
    }
    let target = crate::cache::target_dir();
    let dir = target.join("debian-bookworm-minbase");
    if dir.join("usr/bin/apt-get").exists() {
        return Ok(dir);
    }
    if setup::find_program("debootstrap").is_none() {
        setup::install(
            &["debootstrap"],
            "the Debian image is made with debootstrap",
        )?;
    }
    let tmp = target.join(format!(
        "debian-bookworm-minbase.tmp-{}",
        std::process::id()
    ));
    eprintln!(
        "xtask: building {} with debootstrap (once; a few minutes)",
        dir.display()
    );
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .args(["--variant=minbase", "bookworm"])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian");
    cmd::output(&mut debootstrap)?;
    std::fs::rename(&tmp, &dir).with_context(|| format!("rename to {}", dir.display()))?;
    Ok(dir)
}

/// What a client command did.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The exit code; `None` when killed by a signal (the time limit included).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// `exit 3`, or the signal, for the table.
    pub fn exit(&self) -> String {
        match self.code {
            Some(c) => format!("exit {c}"),
            None => "killed (time limit)".into(),
        }
    }

    /// The last non-empty line of stderr (where clients put the reason), quoted for the table.
    pub fn last_error(&self) -> String {
        self.stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string()
    }
}

/// Runs `program args` with stdin from /dev/null, output captured, killed after `limit`
/// (coreutils `timeout -k 5`).
pub fn run_limited(
    program: &OsStr,
    args: &[OsString],
    env: &[(&str, &OsStr)],
    limit: Duration,
) -> Result<Ran> {
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5", &limit.as_secs().max(1).to_string()])
        .arg(program)
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let t0 = Instant::now();
    let out = command
        .output()
        .with_context(|| format!("cannot run {}", cmd::display(&command)))?;
    let code = match out.status.code() {
        Some(124 | 137) => None,
        c => c,
    };
    Ok(Ran {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: t0.elapsed(),
    })
}

/// The outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run, with the reason in `got` (e.g. the runtime has no `exec` yet).
    Skip,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub expected: String,
    pub got: String,
    pub verdict: Verdict,
}

/// The cases of one run, printed as a table at the end.
#[derive(Debug, Default)]
pub struct Table {
    pub cases: Vec<Case>,
}

impl Table {
    /// Records a case and prints it as it happens.
    pub fn add(&mut self, name: &str, expected: &str, got: String, pass: bool) {
        let verdict = if pass { Verdict::Pass } else { Verdict::Fail };
        self.push(name, expected, got, verdict);
    }

    /// A case that passes when `left` (what a run left behind) is empty.
    pub fn nothing_left(&mut self, name: &str, expected: &str, left: &[String]) {
        let got = match left.is_empty() {
            true => "none".into(),
            false => left.join(", "),
        };
        self.add(name, expected, got, left.is_empty());
    }

    pub fn skip(&mut self, name: &str, expected: &str, why: String) {
        self.push(name, expected, why, Verdict::Skip);
    }

    fn push(&mut self, name: &str, expected: &str, got: String, verdict: Verdict) {
        let got = got.replace('\n', "\\n");
        eprintln!("xtask: {:?} {name}: {got}", verdict);
        self.cases.push(Case {
            name: name.into(),
            expected: expected.into(),
            got,
            verdict,
        });
    }

    pub fn failed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
    }

    /// The table: case, expected, got, PASS/FAIL/SKIP; then the counts.
    pub fn render(&self) -> String {
        let w0 = self
            .cases
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let w1 = self
            .cases
            .iter()
            .map(|c| c.expected.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let mut out = String::new();
        let _ = writeln!(out, "{:<w0$}  {:<w1$}  {:<4}  GOT", "CASE", "EXPECTED", "");
        for c in &self.cases {
            let v = match c.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "SKIP",
            };
            let _ = writeln!(out, "{:<w0$}  {:<w1$}  {v}  {}", c.name, c.expected, c.got);
        }
        let count = |v| self.cases.iter().filter(|c| c.verdict == v).count();
        let _ = writeln!(
            out,
            "cases: {} passed, {} failed, {} skipped",
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Skip)
        );
        out
    }
}

/// Boots the project's qemu guest (pure cgroup v2, Debian's kernel) and runs this xtask
/// there again: `xtask COMMAND --runtime RUNTIME FLAG ARCHIVE`, with the runtime, the
/// archive and `files` (programs with their libraries, config files) copied in at the same
/// paths. The guest's output streams through; returns the outcome for a table row
/// (`guest exit 0` passes).
pub fn in_vm(
    command: &str,
    runtime: &Path,
    archive: &Path,
    mut files: Vec<PathBuf>,
    flag: &str,
) -> Result<(String, bool)> {
    files.push(archive.to_path_buf());
    let options = crate::vm::VmOptions {
        mem: Some(2048),
        timeout: Duration::from_secs(300),
        files,
        ..crate::vm::VmOptions::default()
    };
    let vm = crate::vm::Vm::prepare(options)?;
    let me = std::env::current_exe().context("the path of this xtask binary")?;
    let argv = vec![
        me.clone().into_os_string(),
        command.into(),
        "--runtime".into(),
        runtime.as_os_str().to_owned(),
        flag.into(),
        archive.as_os_str().to_owned(),
    ];
    eprintln!("xtask: booting the guest for the cgroup v2 cases");
    let outcome = vm.run(vec![me, runtime.to_path_buf()], argv, Path::new("/"), &[])?;
    Ok(match outcome.status {
        crate::vm::Status::Exited(0) => ("guest exit 0".to_string(), true),
        crate::vm::Status::Exited(c) => (format!("guest exit {c}"), false),
        crate::vm::Status::TimedOut => ("the guest timed out".to_string(), false),
        crate::vm::Status::Unreported => ("the guest reported no status".to_string(), false),
    })
}

/// Whether `runtime` has the command `name` (its `NAME --help` succeeds).
pub fn runtime_has_command(runtime: &Path, name: &str) -> bool {
    Command::new(runtime)
        .args([name, "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first line of `PROGRAM --version` (or `version`), for the header.
pub fn version_line(program: &Path, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), "/end\\");
    }

    #[test]
    fn table_counts_and_aligns() {
        let mut t = Table::default();
        t.add("exit code", "exit 3", "exit 3".into(), true);
        t.add("tty", "a tty", "no tty\nat all".into(), false);
        t.skip("exec", "exit 0", "no exec".into());
        assert_eq!(t.failed(), 1);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[1].starts_with("exit code  exit 3    PASS  exit 3"),
            "{text}"
        );
        assert!(lines[2].contains("FAIL  no tty\\nat all"), "{text}");
        assert!(lines[3].contains("SKIP  no exec"), "{text}");
        assert_eq!(lines[4], "cases: 1 passed, 1 failed, 1 skipped");
    }
}
