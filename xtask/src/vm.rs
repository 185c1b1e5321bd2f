//! Booting the guest under qemu: accelerator choice, the qemu command line, and reading the
//! serial console for the command's output and its nonce-tagged exit status.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::cache::{self, Cache};
use crate::cmd;
use crate::error::{bail, Context, Result};
use crate::guest::{self, Base, Payload};
use crate::sys;

const QEMU: &str = "qemu-system-x86_64";

/// Settings shared by `cargo xtask vm` and `cargo xtask test`.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// Guest RAM in MiB; `None`: 1024, or more when the payload is large.
    pub mem: Option<u32>,
    pub smp: u32,
    pub timeout: Duration,
    pub files: Vec<PathBuf>,
    pub env: Vec<(String, OsString)>,
    pub accel: AccelChoice,
    pub cgroup_opts: String,
    /// Show firmware and kernel output too, not only the command's.
    pub verbose: bool,
    /// Leave the host's tools (`ip`, newuidmap/newgidmap, /etc/subuid, /etc/subgid) out of
    /// the guest, and busybox's `ip` applet too: a host without them.
    pub bare: bool,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            mem: None,
            smp: 2,
            timeout: Duration::from_secs(600),
            files: Vec::new(),
            env: Vec::new(),
            accel: AccelChoice::Auto,
            // What systemd mounts on a modern host.
            cgroup_opts: "nsdelegate,memory_recursiveprot".to_string(),
            verbose: false,
            bare: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    Auto,
    Kvm,
    Tcg,
}

impl AccelChoice {
    pub fn parse(s: &str) -> Option<AccelChoice> {
        match s {
            "auto" => Some(AccelChoice::Auto),
            "kvm" => Some(AccelChoice::Kvm),
            "tcg" => Some(AccelChoice::Tcg),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    fn qemu_args(self) -> Vec<String> {
        let (accel, cpu) = match self {
            Accel::Kvm => ("kvm", "host".to_string()),
            // `max` gives the guest every feature TCG emulates (AVX2 and more), so binaries
            // built with target-cpu=native on a modern host still run; it boots as fast as
            // qemu64 here (~3.5 s). CONTAIN_VM_CPU overrides it.
            Accel::Tcg => (
                "tcg,thread=multi",
                std::env::var("CONTAIN_VM_CPU").unwrap_or_else(|_| "max".to_string()),
            ),
        };
        ["-accel", accel, "-cpu", &cpu].map(String::from).to_vec()
    }

    fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// How a guest run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The command's exit status as the guest shell reports it (128+N: killed by signal N).
    Exited(i32),
    TimedOut,
    /// qemu ended without the exit marker: boot failure, kernel panic, ...
    Unreported,
}

#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    /// From starting qemu to the guest starting the command.
    pub boot: Option<Duration>,
    /// From starting qemu to its end.
    pub total: Duration,
    /// For a run without status: what qemu and the console said last.
    pub diagnostics: String,
    /// The lines the command printed between [`QUIET_BEGIN`] and [`QUIET_END`] (not shown),
    /// each with its newline: how a guest hands files back (e.g. a base64 archive).
    pub captured: Vec<u8>,
    /// Tests the harness reported as running for over 60 s and never reported done: for a run
    /// that timed out, the ones that hung.
    pub slow_tests: Vec<String>,
}

/// A line the guest command prints alone to start a region of its output that is captured
/// ([`Outcome::captured`]) instead of shown.
pub const QUIET_BEGIN: &str = "@@XTASK_QUIET_BEGIN@@";
/// The line that ends it.
pub const QUIET_END: &str = "@@XTASK_QUIET_END@@";

/// A prepared guest: kernel, base image and accelerator known; runs commands one VM each.
pub struct Vm {
    cache: Cache,
    kernel: PathBuf,
    base: Base,
    accel: Accel,
    options: VmOptions,
}

impl Vm {
    /// Check qemu, fetch what is missing into the cache, choose the accelerator.
    pub fn prepare(options: VmOptions) -> Result<Vm> {
        if !cmd::in_path(QEMU) {
            bail!(
                "{QEMU} not found in PATH: install it (`apt-get install qemu-system-x86`, \
                 or `cargo xtask setup` installs everything the tests need), or pass --host-only"
            );
        }
        let cache = Cache::open()?;
        let (kernel, base) = {
            let _lock = cache.lock()?;
            let kernel = cache.kernel().context("getting the guest kernel")?;
            let busybox = cache.busybox().context("getting busybox")?;
            let base = guest::base(cache.dir(), &busybox, &kernel.modules)
                .context("building the initramfs")?;
            (kernel.image, base)
        };
        let mut vm = Vm {
            cache,
            kernel,
            base,
            accel: Accel::Tcg,
            options,
        };
        vm.accel = vm.choose_accel()?;
        Ok(vm)
    }

    pub fn accel_name(&self) -> &'static str {
        self.accel.name()
    }

    pub fn kernel(&self) -> &Path {
        &self.kernel
    }

    /// Whether the guest itself provides `path` (a busybox applet such as /bin/sh).
    pub fn provides(&self, path: &Path) -> bool {
        self.base.applets.contains(path)
    }

    /// Boot a guest that runs `argv` (argv[0]: absolute guest path) in `cwd`, with the host
    /// `executables` (and their libraries) copied in, streaming the command's output.
    pub fn run(
        &self,
        executables: Vec<PathBuf>,
        argv: Vec<OsString>,
        cwd: &Path,
        extra_env: &[(String, OsString)],
    ) -> Result<Outcome> {
        let mut env: Vec<(String, OsString)> = guest::FORWARDED_ENV
            .iter()
            .filter_map(|name| std::env::var_os(name).map(|v| (name.to_string(), v)))
            .collect();
        env.push(("CONTAIN_IN_VM".into(), "1".into()));
        env.extend(extra_env.iter().cloned());
        env.extend(self.options.env.iter().cloned());
        let payload = Payload {
            executables,
            files: &self.options.files,
            argv,
            env,
            cwd: cwd.to_path_buf(),
            cgroup_opts: &self.options.cgroup_opts,
            bare: self.options.bare,
            watchdog: watchdog(self.options.timeout),
        };
        let outcome = self.boot(
            self.accel,
            &payload,
            self.options.timeout,
            self.options.verbose,
        )?;
        match outcome.status {
            Status::Exited(_) => {}
            Status::TimedOut => eprintln!(
                "xtask: the VM ran longer than {} s and was killed (--timeout)",
                self.options.timeout.as_secs()
            ),
            Status::Unreported => eprintln!(
                "xtask: the guest ended without reporting an exit status\n{}",
                outcome.diagnostics
            ),
        }
        Ok(outcome)
    }

    fn boot(
        &self,
        accel: Accel,
        payload: &Payload,
        timeout: Duration,
        verbose: bool,
    ) -> Result<Outcome> {
        let scratch = self.cache.scratch("run")?;
        let nonce = format!("{:016x}", cache::random_u64());
        // The cached base, then the run's archive: the kernel unpacks both, in order.
        let initrd = scratch.path().join("initrd.cpio");
        fs::copy(&self.base.image, &initrd).with_context(|| {
            format!("copy {} to {}", self.base.image.display(), initrd.display())
        })?;
        let appended = OpenOptions::new()
            .append(true)
            .open(&initrd)
            .with_context(|| format!("open {}", initrd.display()))?;
        guest::write_payload(BufWriter::new(appended), &self.base, payload, &nonce)
            .context("building the per-run initramfs")?;
        let initrd_mib = fs::metadata(&initrd)?.len().div_ceil(1 << 20);
        // The image sits in RAM twice while the kernel unpacks it; keep room for the tests.
        let mem = self
            .options
            .mem
            .unwrap_or_else(|| 1024.max(512 + 3 * initrd_mib as u32));

        let mut append = String::from("console=ttyS0 panic=-1 oops=panic rdinit=/init");
        if !verbose {
            append.push_str(" quiet");
        }
        let mut qemu = Command::new(QEMU);
        qemu.args(accel.qemu_args())
            .args([
                "-m",
                &mem.to_string(),
                "-smp",
                &self.options.smp.to_string(),
            ])
            .args(["-no-user-config", "-nodefaults", "-no-reboot"])
            .args(["-display", "none", "-serial", "stdio"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", &append])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        sys::kill_with_parent(&mut qemu);
        if verbose {
            eprintln!("xtask: {}", cmd::display(&qemu));
        }
        let start = Instant::now();
        let child = qemu
            .spawn()
            .with_context(|| format!("cannot start `{}`", cmd::display(&qemu)))?;
        let result = watch(child, &nonce, start, timeout, verbose);
        drop(scratch);
        result
    }

    /// KVM if it was asked for, or (auto) if a trivial guest boots with it; the auto result is
    /// cached per host kernel and guest kernel because a failing probe costs seconds.
    fn choose_accel(&self) -> Result<Accel> {
        let usable = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        match self.options.accel {
            AccelChoice::Tcg => return Ok(Accel::Tcg),
            AccelChoice::Kvm if !usable => bail!("--accel kvm: /dev/kvm is missing or not usable"),
            AccelChoice::Kvm => return Ok(Accel::Kvm),
            AccelChoice::Auto if !usable => return Ok(Accel::Tcg),
            AccelChoice::Auto => {}
        }
        let record = self.cache.accel_record(&self.kernel);
        match fs::read_to_string(&record).as_deref().map(str::trim) {
            Ok("kvm") => return Ok(Accel::Kvm),
            Ok("tcg") => return Ok(Accel::Tcg),
            _ => {}
        }
        eprintln!(
            "xtask: probing KVM with a trivial guest (once; cached in {})",
            record.display()
        );
        let payload = Payload {
            executables: Vec::new(),
            files: &[],
            argv: vec!["/bin/true".into()],
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            cgroup_opts: "",
            bare: false,
            watchdog: None,
        };
        let probe = self.boot(Accel::Kvm, &payload, Duration::from_secs(10), false);
        sys::check_interrupted()?;
        let accel = match probe {
            Ok(Outcome {
                status: Status::Exited(0),
                ..
            }) => Accel::Kvm,
            _ => Accel::Tcg,
        };
        eprintln!("xtask: accelerator: {}", accel.name());
        fs::write(&record, accel.name()).with_context(|| format!("write {}", record.display()))?;
        Ok(accel)
    }
}

/// When the guest lists its processes for a command that is still running
/// ([`Payload::watchdog`]): early enough that the list reaches the console before `timeout`
/// kills the VM (a quarter of it, at most 45 s, before); none for runs under a minute.
fn watchdog(timeout: Duration) -> Option<Duration> {
    (timeout >= Duration::from_secs(60))
        .then(|| timeout - (timeout / 4).min(Duration::from_secs(45)))
}

/// Stream qemu's console until it exits, the deadline passes or we are interrupted; qemu is
/// killed in the last two cases (and by PR_SET_PDEATHSIG if xtask itself dies).
fn watch(
    mut child: Child,
    nonce: &str,
    start: Instant,
    timeout: Duration,
    verbose: bool,
) -> Result<Outcome> {
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("qemu's output pipes are missing");
    };
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let errors = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });

    let mut console = Console::new(nonce, verbose);
    let out = io::stdout();
    let deadline = start + timeout;
    let mut finished_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut interrupted = None;
    loop {
        let now = Instant::now();
        // After the exit marker the guest powers off at once; give qemu a moment, not more.
        let grace_over = finished_at.is_some_and(|t| now > t + Duration::from_secs(10));
        if now >= deadline || grace_over {
            timed_out = !grace_over;
            break;
        }
        if let Some(signal) = sys::interrupted() {
            interrupted = Some(signal);
            break;
        }
        match rx.recv_timeout(Duration::from_millis(100).min(deadline - now)) {
            Ok(chunk) => {
                let mut out = out.lock();
                console.feed(&chunk, &mut out);
                let _ = out.flush();
                if console.status.is_some() && finished_at.is_none() {
                    finished_at = Some(Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Kill unconditionally: harmless when qemu has exited already, necessary otherwise.
    let _ = child.kill();
    let qemu_status = child.wait().context("waiting for qemu")?;
    let _ = reader.join();
    let qemu_errors = errors.join().unwrap_or_default();
    let total = start.elapsed();
    {
        let mut out = out.lock();
        console.finish(&mut out);
        let _ = out.flush();
    }

    if let Some(signal) = interrupted {
        bail!("interrupted by signal {signal}; qemu killed");
    }
    let status = match console.status {
        Some(code) => Status::Exited(code),
        None if timed_out => Status::TimedOut,
        None => Status::Unreported,
    };
    let mut diagnostics = format!("qemu: {}", cmd::describe(qemu_status));
    let stderr = String::from_utf8_lossy(&qemu_errors);
    if !stderr.trim().is_empty() {
        diagnostics.push_str(&format!("\nqemu's stderr:\n{}", stderr.trim_end()));
    }
    // Once the command started, its output and any panic were streamed already.
    if !verbose && console.started.is_none() {
        diagnostics.push_str(&format!("\nlast console output:\n{}", console.tail()));
    }
    Ok(Outcome {
        status,
        boot: console.started.map(|t| t.duration_since(start)),
        total,
        diagnostics,
        captured: console.captured,
        slow_tests: console.slow_tests,
    })
}

/// Splits the serial console into boot noise (hidden unless verbose), the command's output
/// (streamed as it comes) and the exit marker. Markers carry a per-run nonce so that nothing
/// the command prints can fake them.
struct Console {
    start_marker: Vec<u8>,
    exit_marker: Vec<u8>,
    verbose: bool,
    /// The current, incomplete line.
    line: Vec<u8>,
    /// How much of `line` was printed already (partial lines are streamed).
    printed: usize,
    started: Option<Instant>,
    status: Option<i32>,
    /// The last lines of everything, for diagnosing a guest that never reported.
    log: Vec<u8>,
    /// Inside a [`QUIET_BEGIN`] .. [`QUIET_END`] region.
    quiet: bool,
    captured: Vec<u8>,
    /// See [`Outcome::slow_tests`].
    slow_tests: Vec<String>,
}

const LOG_KEEP: usize = 16 * 1024;

impl Console {
    fn new(nonce: &str, verbose: bool) -> Console {
        Console {
            start_marker: format!("@@XTASK_START_{nonce}@@").into_bytes(),
            exit_marker: format!("@@XTASK_EXIT_{nonce}=").into_bytes(),
            verbose,
            line: Vec::new(),
            printed: 0,
            started: None,
            status: None,
            log: Vec::new(),
            quiet: false,
            captured: Vec::new(),
            slow_tests: Vec::new(),
        }
    }

    /// Follows libtest's `test NAME has been running for over 60 seconds` and its later
    /// `test NAME ... ok` (or `test NAME - should panic ... ok`, FAILED, ignored) for
    /// [`Outcome::slow_tests`]. A test's name has no spaces (a Rust path). Not for `-q`,
    /// whose results are dots.
    fn note_test_progress(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let Some(rest) = text.trim_end().strip_prefix("test ") else {
            return;
        };
        let name = rest.split(' ').next().unwrap_or_default();
        if rest.ends_with(" has been running for over 60 seconds") {
            if !self.slow_tests.iter().any(|t| t == name) {
                self.slow_tests.push(name.to_string());
            }
        } else if rest.contains(" ... ") {
            self.slow_tests.retain(|t| t != name);
        }
    }

    fn running(&self) -> bool {
        self.started.is_some() && self.status.is_none()
    }

    fn feed(&mut self, data: &[u8], out: &mut impl Write) {
        self.log.extend_from_slice(data);
        if self.log.len() > 2 * LOG_KEEP {
            self.log.drain(..self.log.len() - LOG_KEEP);
        }
        self.line.extend_from_slice(data);
        while let Some(nl) = self.line.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.line.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.complete_line(&line, out);
            self.printed = 0;
        }
        // Stream a partial line (a test's "test x ... " before its "ok") up to the first
        // '@', where a marker could begin, and short of a trailing '\r'.
        if self.running() && !self.quiet {
            let mut safe = self
                .line
                .iter()
                .position(|&b| b == b'@')
                .unwrap_or(self.line.len());
            if safe > 0 && safe == self.line.len() && self.line[safe - 1] == b'\r' {
                safe -= 1;
            }
            if safe > self.printed {
                let _ = out.write_all(&self.line[self.printed..safe]);
                self.printed = safe;
            }
        }
    }

    fn complete_line(&mut self, line: &[u8], out: &mut impl Write) {
        if self.started.is_none() {
            if find(line, &self.start_marker).is_some() {
                self.started = Some(Instant::now());
            } else if self.verbose {
                let _ = out.write_all(line);
                let _ = out.write_all(b"\n");
            }
            return;
        }
        if self.status.is_some() {
            if self.verbose {
                let _ = out.write_all(line);
                let _ = out.write_all(b"\n");
            }
            return;
        }
        if line == QUIET_BEGIN.as_bytes() {
            self.quiet = true;
            return;
        }
        if self.quiet {
            if line == QUIET_END.as_bytes() {
                self.quiet = false;
                return;
            }
            if find(line, &self.exit_marker).is_none() {
                self.captured.extend_from_slice(line);
                self.captured.push(b'\n');
                return;
            }
            // An exit marker ends the region too (the command died inside it).
            self.quiet = false;
        }
        self.note_test_progress(line);
        let printed = self.printed.min(line.len());
        if let Some(at) = find(line, &self.exit_marker) {
            let rest = &line[at + self.exit_marker.len()..];
            let digits: Vec<u8> = rest
                .iter()
                .copied()
                .take_while(u8::is_ascii_digit)
                .collect();
            let code = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse().ok());
            if let Some(code) = code {
                // Output the command left without a final newline.
                if at > printed {
                    let _ = out.write_all(&line[printed..at]);
                }
                if at > 0 {
                    let _ = out.write_all(b"\n");
                }
                self.status = Some(code);
                return;
            }
        }
        let _ = out.write_all(&line[printed..]);
        let _ = out.write_all(b"\n");
    }

    /// Print a trailing partial line of the command's output, if any.
    fn finish(&mut self, out: &mut impl Write) {
        if self.running() && self.line.len() > self.printed {
            let _ = out.write_all(&self.line[self.printed..]);
            let _ = out.write_all(b"\n");
        }
    }

    fn tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.log).replace('\r', "");
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (String, Option<i32>) {
        let (out, status, _) = run_capturing(chunks);
        (out, status)
    }

    fn run_capturing(chunks: &[&[u8]]) -> (String, Option<i32>, String) {
        let mut console = Console::new("42", false);
        let mut out = Vec::new();
        for chunk in chunks {
            console.feed(chunk, &mut out);
        }
        console.finish(&mut out);
        (
            String::from_utf8(out).unwrap(),
            console.status,
            String::from_utf8(console.captured).unwrap(),
        )
    }

    #[test]
    fn captures_the_quiet_region_instead_of_showing_it() {
        let (out, status, captured) = run_capturing(&[
            b"@@XTASK_START_42@@\r\nbefore\r\n@@XTASK_QUIET_BEGIN@@\r\nSGVs",
            b"bG8=\r\nd29y\r\n@@XTASK_QUIET_END@@\r\nafter\r\n",
            b"@@XTASK_QUIET_BEGIN@@\r\ncut\r\n@@XTASK_EXIT_42=1@@\r\n",
        ]);
        assert_eq!(out, "before\nafter\n");
        assert_eq!(captured, "SGVsbG8=\nd29y\ncut\n");
        assert_eq!(status, Some(1));
    }

    #[test]
    fn hides_boot_noise_and_reads_the_status() {
        let (out, status) = run(&[
            b"[    0.1] kernel\r\n@@XTASK_START_42@@\r\nhello\r\n",
            b"world\r\n@@XTASK_EXIT_42=3@@\r\n[    5.0] reboot: Power down\r\n",
        ]);
        assert_eq!(out, "hello\nworld\n");
        assert_eq!(status, Some(3));
    }

    #[test]
    fn streams_partial_lines_and_splits_a_marker_glued_to_output() {
        let (out, status) = run(&[
            b"@@XTASK_START_42@@\r\ntest a ... ",
            b"ok\r\nno newline@",
            b"@XTASK_EXIT_42=0@@\r\n",
        ]);
        assert_eq!(out, "test a ... ok\nno newline\n");
        assert_eq!(status, Some(0));
    }

    #[test]
    fn ignores_markers_with_another_nonce() {
        let (out, status) = run(&[b"@@XTASK_START_42@@\n@@XTASK_EXIT_41=0@@\nx@y\n"]);
        assert_eq!(out, "@@XTASK_EXIT_41=0@@\nx@y\n");
        assert_eq!(status, None);
    }

    #[test]
    fn names_the_slow_tests_that_never_finished() {
        let mut console = Console::new("42", false);
        let mut out = Vec::new();
        console.feed(
            b"@@XTASK_START_42@@\r\ntest a has been running for over 60 seconds\r\n\
              test b has been running for over 60 seconds\r\ntest a ... ok\r\n\
              test c ... ok\r\ntest d::e has been running for over 60 seconds\r\n\
              test d::e - should panic ... ok\r\n",
            &mut out,
        );
        assert_eq!(console.slow_tests, ["b"]);
    }
}
