//! `cargo xtask bench-peers`: what a container start costs here against the tools people
//! compare it with, in ONE hyperfine run (one run, so that the machine's drift between runs
//! does not enter the ratios): plain `/bin/true`, unshare(1), bubblewrap, crun, runc,
//! contain-oci and the run example (full isolation, no network namespace, no rootfs; and
//! linked as `cargo xtask build-oci` links contain-oci).
//!
//! Every command runs `/bin/true`: from a static busybox rootfs made here for the ones that
//! take a root, from the host's for the rest. The table of medians goes to stdout and into
//! the README between `<!-- bench-peers:begin -->` and `<!-- bench-peers:end -->`.
//!
//! On a hybrid host (v1 controllers, cgroup2 with some of them) crun 1.8 refuses to start
//! unless `unified/cgroup.controllers` reads empty; the timing runs in a private mount
//! namespace where that file is covered by an empty one, for every command alike. The
//! runtimes' cgroups are `/xtask-peers-PID/NAME`, removed at the end with the work dir.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::clients::{remove_cgroups, version_line, WorkDir};
use crate::cmd;
use crate::error::{bail, Context, Result};
use crate::json;

/// `cargo xtask bench-peers` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// hyperfine runs per command.
    pub runs: u32,
    /// Write the table into the README.
    pub readme: bool,
}

pub fn parse(args: &[OsString]) -> Result<Options> {
    let mut opts = Options {
        runs: 60,
        readme: true,
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].to_str() {
            Some("--runs") => {
                i += 1;
                let v = args.get(i).and_then(|v| v.to_str()).unwrap_or("");
                opts.runs = match v.parse::<u32>() {
                    Ok(n) if n >= 10 => n,
                    _ => bail!("--runs takes a number of at least 10, not {v:?}"),
                };
            }
            Some("--no-readme") => opts.readme = false,
            _ => bail!(
                "unknown argument {} (see `cargo xtask help`)",
                args[i].to_string_lossy()
            ),
        }
        i += 1;
    }
    Ok(opts)
}

/// One command of the run: its label in the table and its command line (split on
/// whitespace by hyperfine -N, so no argument has a space).
struct Row {
    label: &'static str,
    command: String,
}

/// A measured row.
struct Measured {
    label: String,
    median_ms: f64,
    cpu_ms: f64,
}

const BEGIN: &str = "<!-- bench-peers:begin -->";
const END: &str = "<!-- bench-peers:end -->";

pub fn run(opts: &Options) -> Result<u8> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench-peers runs crun, runc and namespaces of every kind: run it as root");
    }
    install_missing()?;
    let run_example = build_run_example()?;
    // The same example as contain-oci is shipped (static, not PIE, LTO): what the link
    // costs a process that starts containers.
    let run_static =
        crate::oci::build_static("contain", "example", "run", crate::oci::Link::Static)?;
    let contain_oci = crate::oci::build_contain_oci()?;
    let work = WorkDir::new("peers")?;
    let w = work.path();
    let cgroup = format!("xtask-peers-{}", std::process::id());
    let result = measure(opts, w, [&run_example, &run_static], &contain_oci, &cgroup);
    remove_cgroups(&cgroup);
    let table = result?;
    print!("{table}");
    if opts.readme {
        let readme = crate::cache::workspace_root().join("README.md");
        write_into_readme(&readme, &table)?;
        eprintln!("xtask: the table is in {}", readme.display());
    }
    Ok(0)
}

/// crun, runc, bubblewrap, hyperfine, jq and a static busybox, when missing.
fn install_missing() -> Result<()> {
    let mut missing = Vec::new();
    for (program, package) in [
        ("crun", "crun"),
        ("runc", "runc"),
        ("bwrap", "bubblewrap"),
        ("hyperfine", "hyperfine"),
        ("jq", "jq"),
        ("unshare", "util-linux"),
    ] {
        if !cmd::in_path(program) {
            missing.push(package);
        }
    }
    if !Path::new("/bin/busybox").is_file() {
        missing.push("busybox-static");
    }
    if missing.is_empty() {
        return Ok(());
    }
    crate::setup::install(&missing, "cargo xtask bench-peers times them")
}

/// `cargo build --release --example run`, returning the binary.
fn build_run_example() -> Result<PathBuf> {
    let mut build = crate::test::cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "contain",
        "--example",
        "run",
    ]);
    crate::oci::built_executable(build, "example", "run")
}

/// Makes the rootfs and bundles, runs the rows once each (those that fail are reported, not
/// timed), times the rest in one hyperfine run and returns the markdown.
fn measure(
    opts: &Options,
    w: &Path,
    [run_example, run_static]: [&Path; 2],
    contain_oci: &Path,
    cgroup: &str,
) -> Result<String> {
    let rootfs = w.join("rootfs");
    make_rootfs(&rootfs)?;
    let bundle = |name: &str, cgroups_path: Option<&str>| -> Result<PathBuf> {
        make_bundle(w, &rootfs, name, cgroups_path)
    };
    let nocg = bundle("nocg", None)?;
    let crun_cg = bundle("crun-cg", Some(&format!("/{cgroup}/crun")))?;
    let runc_cg = bundle("runc-cg", Some(&format!("/{cgroup}/runc")))?;
    let (r, s, run) = (rootfs.display(), w.join("state"), run_example.display());
    let (s, co, run_s) = (s.display(), contain_oci.display(), run_static.display());
    let (nocg, crun_cg, runc_cg) = (nocg.display(), crun_cg.display(), runc_cg.display());
    let rows = [
        Row {
            label: "plain /bin/true",
            command: "/bin/true".into(),
        },
        Row {
            label: "unshare(1) mnt,uts,ipc,pid,net + chroot",
            command: format!("unshare --mount --uts --ipc --pid --net --fork --root {r} /bin/true"),
        },
        Row {
            label: "bwrap --unshare-all",
            command: format!("bwrap --unshare-all --bind {r} / --proc /proc --dev /dev /bin/true"),
        },
        Row {
            label: "crun run (no cgroup)",
            command: format!(
                "crun --root {s}/crun --cgroup-manager=disabled run -b {nocg} peers-crun-n"
            ),
        },
        Row {
            label: "crun run (cgroupfs)",
            command: format!("crun --root {s}/crun run -b {crun_cg} peers-crun-c"),
        },
        Row {
            label: "runc run",
            command: format!("runc --root {s}/runc run -b {runc_cg} peers-runc"),
        },
        Row {
            label: "contain-oci run (no cgroup)",
            command: format!("{co} --root {s}/contain-oci run -b {nocg} peers-co"),
        },
        Row {
            label: "run --rootfs (all namespaces, overlay, net none)",
            command: format!("{run} --rootfs {r} /bin/true"),
        },
        Row {
            label: "run --rootfs, no net namespace",
            command: format!(
                "{run} --rootfs {r} --ns mount,pid,uts,ipc,cgroup --net host /bin/true"
            ),
        },
        Row {
            label: "run --no-rootfs",
            command: format!("{run} --no-rootfs /bin/true"),
        },
        Row {
            label: "run --rootfs, static build (as build-oci)",
            command: format!("{run_s} --rootfs {r} /bin/true"),
        },
        Row {
            label: "run --no-rootfs, static build (as build-oci)",
            command: format!("{run_s} --no-rootfs /bin/true"),
        },
    ];
    let script = timing_script(opts.runs, w, &rows);
    let script_path = w.join("time.sh");
    std::fs::write(&script_path, script)
        .with_context(|| format!("writing {}", script_path.display()))?;
    let status = cmd::status(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh"])
            .arg(&script_path),
    )?;
    if !status.success() {
        bail!("the timing script failed: {}", cmd::describe(status));
    }
    let probes = std::fs::read_to_string(w.join("probe.tsv")).context("reading probe.tsv")?;
    let json_text =
        std::fs::read_to_string(w.join("peers.json")).context("reading hyperfine's JSON")?;
    let measured = parse_hyperfine(&json_text)?;
    Ok(render(opts.runs, &measured, &probes, contain_oci))
}

/// `/bin/busybox` and its applets, and the directories the runtimes mount on.
fn make_rootfs(rootfs: &Path) -> Result<()> {
    for dir in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(dir))
            .with_context(|| format!("mkdir {}", rootfs.join(dir).display()))?;
    }
    let busybox = rootfs.join("bin/busybox");
    std::fs::copy("/bin/busybox", &busybox).context("copying /bin/busybox")?;
    let list = cmd::stdout(Command::new("/bin/busybox").arg("--list"))?;
    for applet in list.split_whitespace() {
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)
                .with_context(|| format!("symlink {}", link.display()))?;
        }
    }
    Ok(())
}

/// `crun spec` (pid, net, ipc, uts and mount namespaces, /proc, /dev, /sys, masked and
/// read-only paths, no seccomp) running `/bin/true` from `rootfs`, read-only, no terminal.
fn make_bundle(w: &Path, rootfs: &Path, name: &str, cgroups_path: Option<&str>) -> Result<PathBuf> {
    let spec_dir = w.join("spec");
    if !spec_dir.join("config.json").is_file() {
        std::fs::create_dir_all(&spec_dir).context("mkdir spec")?;
        let status = cmd::status(Command::new("crun").arg("spec").current_dir(&spec_dir))?;
        if !status.success() {
            bail!("crun spec failed: {}", cmd::describe(status));
        }
    }
    let mut filter = format!(
        ".process.terminal=false | .process.args=[\"/bin/true\"] | .root.path=\"{}\" | \
         .root.readonly=true",
        rootfs.display()
    );
    if let Some(path) = cgroups_path {
        let _ = write!(filter, " | .linux.cgroupsPath=\"{path}\"");
    }
    let config = cmd::stdout(
        Command::new("jq")
            .arg(&filter)
            .arg(spec_dir.join("config.json")),
    )?;
    let dir = w.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    std::fs::write(dir.join("config.json"), config).context("writing a config.json")?;
    Ok(dir)
}

/// The script run in a private mount namespace: covers a non-empty
/// `unified/cgroup.controllers` (crun), runs each row once (label, exit status, first error
/// line into probe.tsv), then hyperfine over the rows that worked.
fn timing_script(runs: u32, w: &Path, rows: &[Row]) -> String {
    let w = w.display();
    let mut s = format!(
        "set -u\n\
         f=/sys/fs/cgroup/unified/cgroup.controllers\n\
         if [ -n \"$(cat $f 2>/dev/null)\" ]; then : > {w}/empty; mount --bind -o ro {w}/empty $f; fi\n\
         : > {w}/probe.tsv\n\
         set --\n"
    );
    for row in rows {
        let _ = write!(
            s,
            "err=$(timeout -k 2 20 {cmd} 2>&1 >/dev/null); rc=$?\n\
             printf '%s\\t%s\\t%s\\n' '{label}' $rc \"$(echo \"$err\" | head -n 1 | tr '\\t' ' ')\" >> {w}/probe.tsv\n\
             [ $rc = 0 ] && set -- \"$@\" -n '{label}' '{cmd}'\n",
            cmd = row.command,
            label = row.label,
        );
    }
    let _ = writeln!(
        s,
        "exec hyperfine -N --style basic --warmup 3 --runs {runs} --export-json {w}/peers.json \"$@\" >&2"
    );
    s
}

/// Each result's name, median and user+system time, in milliseconds.
fn parse_hyperfine(text: &str) -> Result<Vec<Measured>> {
    let doc =
        json::parse(text).map_err(|e| crate::error::Error::new(format!("hyperfine JSON: {e}")))?;
    let number = |v: Option<&json::Value>| match v {
        Some(json::Value::Number(n)) => n.parse::<f64>().ok(),
        _ => None,
    };
    let mut out = Vec::new();
    for r in doc.get("results").and_then(|r| r.as_array()).unwrap_or(&[]) {
        let (Some(label), Some(median), Some(user), Some(system)) = (
            r.get("command").and_then(|c| c.as_str()),
            number(r.get("median")),
            number(r.get("user")),
            number(r.get("system")),
        ) else {
            bail!("a hyperfine result without command, median, user or system");
        };
        out.push(Measured {
            label: label.to_owned(),
            median_ms: median * 1000.0,
            cpu_ms: (user + system) * 1000.0,
        });
    }
    if out.is_empty() {
        bail!("hyperfine reported no results");
    }
    Ok(out)
}

/// The markdown: what ran where, then one row per command with its ratio to plain
/// `/bin/true`, then the rows that could not run and why.
fn render(runs: u32, measured: &[Measured], probes: &str, contain_oci: &Path) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = cmd::stdout(Command::new("date").arg("+%Y-%m-%d")).unwrap_or_default();
    let versions = [
        ("crun", version_line(Path::new("crun"), "--version")),
        ("runc", version_line(Path::new("runc"), "--version")),
        ("bwrap", version_line(Path::new("bwrap"), "--version")),
        ("unshare", version_line(Path::new("unshare"), "--version")),
        ("contain-oci", version_line(contain_oci, "--version")),
        (
            "hyperfine",
            version_line(Path::new("hyperfine"), "--version"),
        ),
    ];
    let mut md = format!(
        "`cargo xtask bench-peers`, {}: kernel {}, {cpus} CPUs; one hyperfine run (-N, 3 \
         warmups, {runs} runs each), medians; every command runs `/bin/true`.\n\n",
        date.trim(),
        kernel.trim(),
    );
    md.push_str("| command | median ms | user+sys ms | x plain |\n|---|---|---|---|\n");
    let plain = measured.first().map_or(0.0, |m| m.median_ms);
    for m in measured {
        let ratio = if plain > 0.0 {
            m.median_ms / plain
        } else {
            0.0
        };
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.2} | {ratio:.1} |",
            m.label, m.median_ms, m.cpu_ms
        );
    }
    for line in probes.lines() {
        let mut f = line.splitn(3, '\t');
        let (label, rc, err) = (
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
        );
        if rc != "0" {
            let _ = writeln!(md, "| {label} | fails (exit {rc}): {err} | | |");
        }
    }
    md.push('\n');
    let shown: Vec<String> = versions
        .iter()
        .map(|(name, v)| format!("{name}: {v}"))
        .collect();
    let _ = writeln!(md, "Versions: {}.", shown.join("; "));
    md
}

/// Replaces what is between the markers in the README with `table`.
fn write_into_readme(readme: &Path, table: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) else {
        bail!(
            "{} has no {BEGIN} ... {END} section to put the table in",
            readme.display()
        );
    };
    if b < a {
        bail!("{}: {END} comes before {BEGIN}", readme.display());
    }
    let new = format!("{}{BEGIN}\n{table}{}", &text[..a], &text[b..]);
    std::fs::write(readme, new).with_context(|| format!("writing {}", readme.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hyperfine_json_and_renders_ratios_and_failures() {
        let json = r#"{"results":[
            {"command":"plain /bin/true","median":0.0005,"user":0.0003,"system":0.0001,"mean":1},
            {"command":"runc run","median":0.02,"user":0.005,"system":0.01}]}"#;
        let m = parse_hyperfine(json).unwrap();
        assert_eq!(m.len(), 2);
        assert!((m[1].median_ms - 20.0).abs() < 1e-9);
        assert!((m[1].cpu_ms - 15.0).abs() < 1e-9);
        let md = render(
            60,
            &m,
            "bwrap --unshare-all\t1\tbwrap: setting up uid map: Permission denied\n",
            Path::new("/nonexistent"),
        );
        assert!(md.contains("| runc run | 20.00 | 15.00 | 40.0 |"), "{md}");
        assert!(
            md.contains("| plain /bin/true | 0.50 | 0.40 | 1.0 |"),
            "{md}"
        );
        assert!(
            md.contains("| bwrap --unshare-all | fails (exit 1): bwrap: setting up uid map"),
            "{md}"
        );
        assert!(parse_hyperfine(r#"{"results":[]}"#).is_err());
        assert!(parse_hyperfine(r#"{"results":[{"command":"x"}]}"#).is_err());
    }

    #[test]
    fn the_table_goes_between_the_markers_only() {
        let dir = std::env::temp_dir().join(format!("xtask-peers-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let readme = dir.join("README.md");
        std::fs::write(&readme, format!("# A\n{BEGIN}\nold\n{END}\nafter\n")).unwrap();
        write_into_readme(&readme, "| new |\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&readme).unwrap(),
            format!("# A\n{BEGIN}\n| new |\n{END}\nafter\n")
        );
        std::fs::write(&readme, "no markers\n").unwrap();
        assert!(write_into_readme(&readme, "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
