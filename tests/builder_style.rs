//! One builder style, one size type (issue 10, part 4): builders are values (`self -> Self`),
//! `Container::spawn` borrows so one configuration runs many times, `Resources` has a builder,
//! and every size is a `Bytes` that parses docker's and the kernel's forms.

mod common;

use common::busybox::BusyboxRootfs;
use common::{is_root, skip};
use contain::cgroup::{
    CgroupBuilder, Controller, CpuList, CpuMax, Device, HostCgroups, HugePageSize, IoMax,
    Resources, Weight,
};
use contain::mount::{parse_size, Mount};
use contain::namespace::Namespaces;
use contain::process::{Container, Stdio};
use contain::rootfs::{Rootfs, RootfsMode};
use contain::{Bytes, Error, Max};
use proptest::prelude::*;

fn in_vm() -> bool {
    std::env::var_os("CONTAIN_IN_VM").is_some_and(|v| v == "1")
}

fn text(o: &contain::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

// ---- Container: by value, spawned by reference ----

#[test]
fn one_configured_container_is_spawned_twice() {
    // Configured once, conditionally extended with `c = c.x(..)`, spawned twice: two
    // processes with the same settings.
    let extra = Some("from-builder");
    let mut c = Container::new("/bin/sh")
        .args(["-c", "echo $$ $GREETING"])
        .stdout(Stdio::Piped)
        .stderr(Stdio::Null);
    if let Some(v) = extra {
        c = c.env("GREETING", v);
    }
    let first = c.spawn().unwrap().wait_with_output().unwrap();
    let second = c.spawn().unwrap().wait_with_output().unwrap();
    assert!(first.status.success(), "{first:?}");
    assert!(second.status.success(), "{second:?}");
    let (pid1, g1) = text(&first)
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let (pid2, g2) = text(&second)
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    assert_eq!(g1, "from-builder");
    assert_eq!(g2, "from-builder");
    assert_ne!(pid1, pid2, "two spawns are two processes");

    // A later setting changes the next spawn only.
    let c = c.env("GREETING", "changed");
    let third = c.spawn().unwrap().wait_with_output().unwrap();
    assert!(text(&third).ends_with(" changed"), "{third:?}");
}

#[test]
fn a_nested_configuration_in_one_expression_runs() {
    const TEST: &str = "a_nested_configuration_in_one_expression_runs";
    if !is_root(TEST) {
        return;
    }
    let image = BusyboxRootfs::new("builder-nested");
    // Mount in Rootfs in Container, one expression; sizes are Bytes.
    let c = Container::new("/bin/sh")
        .args([
            "-c",
            "while read dev dir fs opts rest; do \
               case $dir in /data|/dev/shm) echo \"$dir $opts\";; esac; \
             done < /proc/mounts",
        ])
        .env("PATH", "/bin")
        .namespaces(
            Namespaces::MOUNT
                | Namespaces::PID
                | Namespaces::UTS
                | Namespaces::IPC
                | Namespaces::NET,
        )
        .rootfs(
            Rootfs::new(image.root())
                .mode(RootfsMode::ReadOnly)
                .shm_size(Bytes::mib(2))
                .mount(
                    Mount::tmpfs("/data")
                        .size("1.5m".parse().unwrap())
                        .mode(0o755),
                ),
        )
        .stdin(Stdio::Null)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped);
    // Spawned twice: the rootfs is assembled anew for each.
    for round in 0..2 {
        let o = c.spawn().unwrap().wait_with_output().unwrap();
        assert!(o.status.success(), "round {round}: {o:?}");
        // "DIR OPTS": keep the tmpfs size option, as the kernel shows it (in KiB).
        let mut lines: Vec<String> = text(&o)
            .lines()
            .map(|l| {
                let (dir, opts) = l.split_once(' ').unwrap();
                let size = opts
                    .split(',')
                    .find(|o| o.starts_with("size="))
                    .unwrap_or("");
                format!("{dir} {}", size.trim_start_matches("size="))
            })
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            ["/data 1536k", "/dev/shm 2048k"],
            "round {round}: {o:?}"
        );
    }
}

// ---- Resources: a builder, applied ----

#[test]
fn resources_setters_fill_the_fields() {
    let two_mb = HugePageSize::from_bytes(Bytes::mib(2)).unwrap();
    let sda = IoMax::new(Device::new(8, 0));
    let r = Resources::new()
        .memory_max(Bytes::mib(128))
        .memory_high(Max::Unlimited)
        .memory_low(Bytes::mib(16))
        .memory_min(Bytes(0))
        .memory_swap_max(Bytes(0))
        .memory_oom_group(true)
        .cpu_max(CpuMax::cpus(0.5).unwrap())
        .cpu_weight(Weight::new(200).unwrap())
        .pids_max(64)
        .io_max(sda.rbps(Bytes(1)))
        .io_max(sda.wbps(Bytes(2))) // the same device: replaces
        .io_weight(Weight::MIN)
        .cpuset_cpus(CpuList::from_ids([0]))
        .cpuset_mems(CpuList::from_ids([0]))
        .hugetlb_max(two_mb, Bytes::mib(4))
        .hugetlb_max(two_mb, Max::Unlimited); // the same size: replaces
    assert_eq!(r.memory_max, Some(Max::Limit(Bytes::mib(128))));
    assert_eq!(r.memory_high, Some(Max::Unlimited));
    assert_eq!(r.memory_low, Some(Max::Limit(Bytes::mib(16))));
    assert_eq!(r.memory_min, Some(Max::Limit(Bytes(0))));
    assert_eq!(r.memory_swap_max, Some(Max::Limit(Bytes(0))));
    assert_eq!(r.memory_oom_group, Some(true));
    assert_eq!(r.cpu_max, Some(CpuMax::cpus(0.5).unwrap()));
    assert_eq!(r.cpu_weight, Some(Weight::new(200).unwrap()));
    assert_eq!(r.pids_max, Some(Max::Limit(64)));
    assert_eq!(r.io_max, vec![sda.wbps(Bytes(2))]);
    assert_eq!(r.io_weight, Some(Weight::MIN));
    assert_eq!(r.cpuset_cpus, Some(CpuList::from_ids([0])));
    assert_eq!(r.cpuset_mems, Some(CpuList::from_ids([0])));
    assert_eq!(r.hugetlb_max, vec![(two_mb, Max::Unlimited)]);
    assert_eq!(r.controllers().len(), 6);
    assert_eq!(Resources::new(), Resources::default());
}

#[test]
fn resources_built_with_the_builder_are_applied() {
    const TEST: &str = "resources_built_with_the_builder_are_applied";
    if !is_root(TEST) {
        return;
    }
    let host = HostCgroups::detect().unwrap();
    let needs = [Controller::Memory, Controller::Pids, Controller::Cpu];
    if let Some(c) = needs.iter().find(|&&c| host.check(c).is_err()) {
        assert!(!in_vm(), "the VM's cgroup v2 lacks {c}");
        return skip(TEST, &format!("cgroup v2 lacks the {c} controller here"));
    }
    let limits = Resources::new()
        .memory_max(Bytes::mib(64))
        .memory_high(Max::Unlimited)
        .pids_max(16)
        .cpu_max(CpuMax::cpus(0.5).unwrap());
    let name = format!("contain-test-builder-{}", std::process::id());
    let cg = match CgroupBuilder::new(&name)
        .resources(limits.clone())
        .create_in_default()
    {
        Ok(cg) => cg,
        Err(e @ Error::Unsupported { .. }) => {
            assert!(!in_vm(), "{e}");
            return skip(TEST, &format!("no cgroup with these controllers here: {e}"));
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        cg.memory().unwrap().max().unwrap(),
        Max::Limit(Bytes::mib(64))
    );
    assert_eq!(cg.memory().unwrap().high().unwrap(), Max::Unlimited);
    assert_eq!(cg.pids().unwrap().max().unwrap(), Max::Limit(16));
    assert_eq!(cg.cpu().unwrap().max().unwrap(), CpuMax::cpus(0.5).unwrap());
    let path = cg.path().to_owned();
    drop(cg);
    assert!(!path.exists(), "{} left behind", path.display());

    // The same builder through Container::resources: the child's own cgroup has them.
    // `cat` runs until its stdin closes, and then exits 0.
    let c = Container::new("cat")
        .stdin(Stdio::Piped)
        .resources(Resources::new().pids_max(8).memory_max(Bytes::mib(32)));
    let mut child = c.spawn().unwrap();
    let cg = child.cgroup().expect("spawn made a cgroup");
    assert_eq!(cg.pids().unwrap().max().unwrap(), Max::Limit(8));
    assert_eq!(
        cg.memory().unwrap().max().unwrap(),
        Max::Limit(Bytes::mib(32))
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

// ---- Bytes: one parser for docker's and the kernel's sizes ----

#[test]
fn bytes_parse_docker_and_kernel_forms() {
    for (s, n) in [
        // The kernel's (memory.max, memparse).
        ("0", 0),
        ("4096", 4096),
        ("512K", 512 << 10),
        ("512k", 512 << 10),
        ("64M", 64 << 20),
        ("2G", 2 << 30),
        ("1T", 1 << 40),
        ("1P", 1 << 50),
        // docker's (--memory, --shm-size, --tmpfs size=): units.RAMInBytes, powers of 1024.
        ("1b", 1),
        ("1kb", 1024),
        ("1KiB", 1024),
        ("64m", 64 << 20),
        ("64mb", 64 << 20),
        ("64 MB", 64 << 20),
        ("64MiB", 64 << 20),
        ("1.5g", 3 << 29),
        ("1.5k", 1536),
        ("0.5m", 512 << 10),
        (" 8m ", 8 << 20),
        ("18446744073709551615", u64::MAX),
    ] {
        assert_eq!(s.parse::<Bytes>().unwrap(), Bytes(n), "{s:?}");
        assert_eq!(parse_size(s, "--shm-size").unwrap(), Bytes(n), "{s:?}");
    }
}

#[test]
fn bad_sizes_are_refused_with_what_is_wanted() {
    const NOT_A_SIZE: &str = "is not a size: want a number";
    const TOO_LARGE: &str = "is too large: at most 18446744073709551615 bytes";
    let not_sizes = [
        "", " ", "k", "-1", "+1", "1x", "1.2.3", ".5m", "5.m", "1kk", "1ib", "1kibb", "1e3",
        "0x10", "1 k b", "١٢",
    ];
    let too_large = [
        "99999999999p",
        "18446744073709551616",
        "16777216t",
        "17179869184.5g",
    ];
    let cases = (not_sizes.iter().map(|s| (*s, NOT_A_SIZE)))
        .chain(too_large.iter().map(|s| (*s, TOO_LARGE)));
    for (s, wanted) in cases {
        let e = s.parse::<Bytes>().unwrap_err();
        assert!(
            matches!(&e, Error::Parse { what, .. } if what == "byte size"),
            "{s:?}: {e:?}"
        );
        assert!(e.to_string().contains(wanted), "{s:?}: {e}");
        // The flag-naming form says the same, as a configuration error.
        let e = parse_size(s, "--memory").unwrap_err();
        assert!(
            matches!(&e, Error::Config { what: "--memory", reason } if reason.contains(wanted)),
            "{s:?}: {e:?}"
        );
    }
}

fn unit(shift: u32) -> char {
    match shift {
        10 => 'k',
        20 => 'm',
        30 => 'g',
        40 => 't',
        _ => 'p',
    }
}

proptest! {
    #[test]
    fn parsing_never_panics(s in "\\PC{0,24}") {
        let _ = s.parse::<Bytes>();
        let _ = parse_size(&s, "--shm-size");
    }

    #[test]
    fn parsing_near_misses_never_panics(s in "[ 0-9.+-]{0,22}[kKmMgGtTpPiIbBxe ]{0,4}") {
        if let Ok(b) = s.parse::<Bytes>() {
            // Whatever is taken, the kernel's form of it parses back the same.
            prop_assert_eq!(b.to_string().parse::<Bytes>().unwrap(), b);
        }
    }

    #[test]
    fn the_kernels_display_parses_back(n in any::<u64>()) {
        prop_assert_eq!(Bytes(n).to_string().parse::<Bytes>().unwrap(), Bytes(n));
        prop_assert_eq!(Bytes(n).human().to_string().parse::<Bytes>().unwrap(), Bytes(n));
    }

    #[test]
    fn every_unit_spelling_is_a_power_of_1024(
        n in 0u64..(1 << 13),
        shift in prop::sample::select(vec![10u32, 20, 30, 40, 50]),
        form in 0usize..6,
    ) {
        let u = unit(shift);
        let s = match form {
            0 => format!("{n}{u}"),
            1 => format!("{n}{}", u.to_ascii_uppercase()),
            2 => format!("{n}{u}b"),
            3 => format!("{n}{}iB", u.to_ascii_uppercase()),
            4 => format!("{n} {}B", u.to_ascii_uppercase()),
            _ => format!("{n}.0{u}"),
        };
        prop_assert_eq!(s.parse::<Bytes>().unwrap(), Bytes(n << shift), "{}", s);
    }

    #[test]
    fn fractions_round_down_to_whole_bytes(
        int in 0u64..(1 << 20),
        frac in 0u64..1000,
        digits in 1u32..4,
        shift in prop::sample::select(vec![0u32, 10, 20, 30]),
    ) {
        let frac = frac % 10u64.pow(digits);
        let s = format!("{int}.{frac:0width$}{}", if shift == 0 { String::new() } else { unit(shift).to_string() }, width = digits as usize);
        let scale = 10u128.pow(digits);
        let exact = ((int as u128 * scale + frac as u128) << shift) / scale;
        prop_assert_eq!(s.parse::<Bytes>().unwrap(), Bytes(exact as u64), "{}", s);
    }
}
