//! Fuzzes the small parsers and validators of what users type: namespace lists, CIDRs,
//! `--add-host` entries, `USER[:GROUP]`, signals, image references, capability names and
//! sets, rlimits (`NAME=SOFT[:HARD]`), sizes (`64m`), `--tmpfs` and `--volume` specs, seccomp
//! names, cgroup devices, huge page sizes, unified keys and controller names, and id maps
//! (`idmap::validate`). None may panic; what a parser accepts must print back to text that
//! parses to the same value; an id map that validates must say what the kernel is given.
//!
//! The first byte picks the parser (so that each sees whole inputs of its own), the rest is
//! the text; for id maps the rest is read as (inside, outside, count) triples of u32.
#![no_main]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use contain::cgroup::{Controller, Device, HugePageSize, UnifiedKey};
use contain::idmap::{self, IdMap};
use contain::image::ImageRef;
use contain::mount::{parse_size, Mount};
use contain::namespace::Namespaces;
use contain::net::{ExtraHost, HostAddr, Ipv4Cidr};
use contain::process::User;
use contain::security::{
    CapSet, Capability, Rlimit, SeccompAction, SeccompArch, SeccompFlag, SeccompOp,
};
use contain::Signal;
use libfuzzer_sys::fuzz_target;

/// `text` parses to a value that prints to text that parses to the same value.
fn round_trip<T>(text: &str)
where
    T: FromStr + Display + PartialEq + Debug,
{
    if let Ok(v) = text.parse::<T>() {
        let printed = v.to_string();
        match printed.parse::<T>() {
            Ok(again) => assert_eq!(again, v, "{text:?} printed as {printed:?}"),
            Err(_) => panic!("{text:?} parsed, but its printed form {printed:?} does not"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 20 == 19 {
        id_maps(rest);
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 20 {
        0 => {
            if let Ok(ns) = text.parse::<Namespaces>() {
                // Each kind in the list is one namespace.
                assert!(ns.kinds().all(|k| k.bits().count_ones() == 1), "{text:?}");
            }
        }
        1 => round_trip::<Ipv4Cidr>(text),
        2 => round_trip::<HostAddr>(text),
        3 => {
            let _ = text.parse::<ExtraHost>();
        }
        4 => round_trip::<User>(text),
        5 => round_trip::<Signal>(text),
        6 => round_trip::<ImageRef>(text),
        7 => round_trip::<Capability>(text),
        8 => {
            if let Ok(set) = text.parse::<CapSet>() {
                for cap in set.iter() {
                    assert_eq!(cap.to_string().parse::<Capability>().ok(), Some(cap));
                }
            }
        }
        9 => {
            if let Ok(r) = Rlimit::parse(text) {
                assert!(r.soft <= r.hard, "{text:?}: soft above hard: {r:?}");
            }
        }
        10 => {
            if let Ok(size) = parse_size(text, "size") {
                assert_eq!(parse_size(&size.to_string(), "size").ok(), Some(size));
            }
        }
        11 => {
            if let Ok(m) = Mount::parse_tmpfs(text) {
                assert!(m.target().is_absolute(), "{text:?}");
                assert_ne!(m.target(), std::path::Path::new("/"), "{text:?}");
            }
        }
        12 => {
            if let Ok(m) = Mount::parse_volume(text) {
                // The target is an absolute path inside the container, not its root.
                let target = m.target();
                assert!(target.is_absolute(), "{text:?}: target {target:?}");
                let depth = target.components().fold(0usize, |d, c| match c {
                    std::path::Component::Normal(_) => d + 1,
                    std::path::Component::ParentDir => d.saturating_sub(1),
                    _ => d,
                });
                assert!(depth > 0, "{text:?}: target {target:?} is the root");
            }
        }
        13 => round_trip::<SeccompAction>(text),
        14 => round_trip::<SeccompArch>(text),
        15 => round_trip::<SeccompFlag>(text),
        16 => round_trip::<SeccompOp>(text),
        17 => {
            round_trip::<Device>(text);
            round_trip::<HugePageSize>(text);
        }
        _ => {
            round_trip::<UnifiedKey>(text);
            round_trip::<Controller>(text);
        }
    }
});

/// Id maps from (inside, outside, count) triples: `validate` must refuse what the kernel
/// would (an empty or too long list, a zero count, ranges that wrap or overlap) and
/// `map_file_text` must write one line per map.
fn id_maps(bytes: &[u8]) {
    let maps: Vec<IdMap> = bytes
        .chunks_exact(12)
        .map(|c| {
            let u = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
            IdMap::new(u(0), u(4), u(8))
        })
        .collect();
    if idmap::validate(&maps, "uid map").is_err() {
        return;
    }
    assert!(
        !maps.is_empty() && maps.len() <= idmap::MAX_LINES,
        "{maps:?}"
    );
    for (i, a) in maps.iter().enumerate() {
        assert!(a.count > 0, "{maps:?}");
        // The last id of a range is below u32::MAX ((uid_t)-1 means "no id").
        let fits = |start: u32| {
            start
                .checked_add(a.count - 1)
                .is_some_and(|end| end < u32::MAX)
        };
        assert!(fits(a.inside) && fits(a.outside), "{maps:?}");
        for b in &maps[i + 1..] {
            let apart = |x: u32, xn: u32, y: u32, yn: u32| {
                u64::from(x) + u64::from(xn) <= u64::from(y)
                    || u64::from(y) + u64::from(yn) <= u64::from(x)
            };
            assert!(apart(a.inside, a.count, b.inside, b.count), "{maps:?}");
            assert!(apart(a.outside, a.count, b.outside, b.count), "{maps:?}");
        }
    }
    let text = idmap::map_file_text(&maps);
    assert_eq!(text.lines().count(), maps.len(), "{text:?}");
}
