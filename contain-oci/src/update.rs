//! `update`: new limits on a container's cgroup (runc's `update`), from an OCI
//! `linux.resources` object (`--resources FILE`, `-` for stdin) and runc's flags.
//!
//! Only the limits given change: they are mapped as `create` maps them
//! ([`contain_oci::spec::resource_limits`]) and written to the container's cgroup
//! ([`Cgroup::apply`]); the config saved at create (ROOT/ID/config.json) gets them merged
//! into its `linux.resources`, so that a later `update` builds on them.

use std::io::Read;
use std::path::Path;

use contain::cgroup::Cgroup;
use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value};

use crate::cli::Update;
use crate::commands::Ctx;
use crate::state::{Locked, Status};
use crate::{log, Error};

/// `update`.
///
/// # Errors
///
/// A stopped container ("container not running"), one without a cgroup of its own, an
/// unreadable or malformed `--resources`, a flag value that is not a number (or a size), the
/// realtime CPU knobs (cgroup v1 only), what the mapping refuses and the library's errors
/// writing the cgroup (a controller not enabled for the group names itself).
pub fn update(ctx: &Ctx, args: &Update) -> Result<(), Error> {
    let asked = asked(args)?;
    let locked = Locked::existing(&ctx.root, &args.id)?;
    let st = locked.load()?;
    if st.status() == Status::Stopped {
        return Err(Error::msg(format!(
            "cannot update container {}: container not running (it has stopped)",
            args.id
        )));
    }
    let cgroup = st.cgroup.as_ref().ok_or_else(|| {
        Error::msg(format!(
            "cannot update container {}: it has no cgroup of its own (it was created without \
             linux.resources)",
            args.id
        ))
    })?;
    let path = locked.dir.join("config.json");
    let mut spec = crate::load_spec(&path)?;
    let saved = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut merged = serde_json::to_value(&saved).map_err(|e| Error::msg(e.to_string()))?;
    merge(&mut merged, &asked);
    let partial = with_context(&asked, &merged);
    let partial: LinuxResources =
        serde_json::from_value(partial).map_err(|e| Error::msg(format!("linux.resources: {e}")))?;
    if partial.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        log::warn(
            "linux.resources.devices: not changed by update (the device filter is set at create)",
        );
    }
    let (res, warnings) = contain_oci::spec::resource_limits(&partial)?;
    for w in warnings {
        log::warn(&w);
    }
    let cg = Cgroup::open(cgroup)?;
    enable_for(&cg, &res)?;
    cg.apply(&res)?;

    let merged: LinuxResources =
        serde_json::from_value(merged).map_err(|e| Error::msg(format!("linux.resources: {e}")))?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_resources(Some(merged));
    spec.set_linux(Some(linux));
    spec.save(&path)
        .map_err(|e| Error::msg(format!("saving {}: {e}", path.display())))?;
    Ok(())
}

/// Enables in `cg`'s parent the controllers `res` needs that `cg` lacks: `create` enabled
/// only those its own limits needed. A controller the host cannot give (bound to a cgroup v1
/// hierarchy, not built) is the library's [`contain::Error::Unsupported`], which says so.
fn enable_for(cg: &Cgroup, res: &contain::cgroup::Resources) -> Result<(), Error> {
    let have = cg.controllers()?;
    let missing: Vec<_> = res
        .controllers()
        .into_iter()
        .filter(|c| !have.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let Some(parent) = cg.parent()? else {
        return Ok(());
    };
    if !parent.procs()?.is_empty() {
        let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        return Err(Error::msg(format!(
            "cannot update: {} not enabled for the container's cgroup {}, and its parent {} \
             holds processes, so cgroup v2's \"no internal processes\" rule keeps it from \
             enabling them (the container was created without limits on them; give such limits \
             in linux.resources, or a cgroupsPath, at create)",
            names.join(", "),
            cg.path().display(),
            parent.path().display()
        )));
    }
    Ok(parent.enable_controllers(&missing)?)
}

/// The `linux.resources` object the command line asks for: `--resources` (a file, `-` for
/// stdin), then each flag over it.
fn asked(args: &Update) -> Result<Value, Error> {
    let mut v = match &args.resources {
        Some(p) => read_resources(p)?,
        None => Value::Object(Map::new()),
    };
    if !v.is_object() {
        return Err(Error::msg(
            "--resources: not a JSON object (linux.resources)",
        ));
    }
    if args.cpu_rt_period.is_some() || args.cpu_rt_runtime.is_some() {
        return Err(rt_refusal("--cpu-rt-period/--cpu-rt-runtime"));
    }
    if let Some(cpu) = v.get("cpu") {
        if ["realtimeRuntime", "realtimePeriod"]
            .iter()
            .any(|k| cpu.get(k).is_some_and(|x| !x.is_null()))
        {
            return Err(rt_refusal(
                "linux.resources.cpu.realtimeRuntime/realtimePeriod",
            ));
        }
    }
    let mut set = |section: &str, key: &str, value: Value| {
        let obj = v.as_object_mut().expect("checked above");
        let s = obj
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        if !s.is_object() {
            *s = Value::Object(Map::new());
        }
        s.as_object_mut()
            .expect("just made an object")
            .insert(key.into(), value);
    };
    for (flag, value, key) in [
        ("--memory", &args.memory, "limit"),
        (
            "--memory-reservation",
            &args.memory_reservation,
            "reservation",
        ),
        ("--memory-swap", &args.memory_swap, "swap"),
    ] {
        if let Some(text) = value {
            set("memory", key, parse_size(flag, text)?.into());
        }
    }
    if let Some(n) = args.cpu_shares {
        set("cpu", "shares", n.into());
    }
    if let Some(n) = args.cpu_quota {
        set("cpu", "quota", n.into());
    }
    if let Some(n) = args.cpu_period {
        set("cpu", "period", n.into());
    }
    if let Some(s) = &args.cpuset_cpus {
        set("cpu", "cpus", s.as_str().into());
    }
    if let Some(s) = &args.cpuset_mems {
        set("cpu", "mems", s.as_str().into());
    }
    if let Some(n) = args.pids_limit {
        set("pids", "limit", n.into());
    }
    if let Some(n) = args.blkio_weight {
        set("blockIO", "weight", n.into());
    }
    Ok(v)
}

fn rt_refusal(what: &str) -> Error {
    Error::msg(format!(
        "{what}: not supported: cgroup v2 has no realtime CPU bandwidth files (cpu.rt_period_us \
         and cpu.rt_runtime_us are cgroup v1 only), and contain-oci uses cgroup v2"
    ))
}

/// `--resources`' JSON: the file, or stdin for `-`.
fn read_resources(path: &Path) -> Result<Value, Error> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("read", "stdin", e))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?
    };
    serde_json::from_str(&text).map_err(|e| Error::msg(format!("--resources: {e}")))
}

/// Overlays `patch` on `base`: objects key by key (recursively), anything else replaced;
/// a `null` in `patch` changes nothing.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) if !p.is_null() => *b = p.clone(),
        _ => {}
    }
}

/// `asked` with what its values are relative to, from `merged` (the saved resources with
/// `asked` over them): the memory limit when only swap is asked (swap is memory plus swap),
/// the CPU period when only the quota is asked and the quota when only the period is.
fn with_context(asked: &Value, merged: &Value) -> Value {
    let mut out = asked.clone();
    let pairs = [
        ("memory", "swap", "limit"),
        ("cpu", "quota", "period"),
        ("cpu", "period", "quota"),
    ];
    for (section, given, needed) in pairs {
        let has = |v: &Value, k: &str| {
            v.get(section)
                .and_then(|s| s.get(k))
                .is_some_and(|x| !x.is_null())
        };
        if has(&out, given) && !has(&out, needed) {
            if let Some(x) = merged.get(section).and_then(|s| s.get(needed)) {
                if !x.is_null() {
                    if let Some(obj) = out.get_mut(section).and_then(Value::as_object_mut) {
                        obj.insert(needed.into(), x.clone());
                    }
                }
            }
        }
    }
    out
}

/// A byte count as runc's flags take it: `-1` (no limit), or a number with an optional
/// binary unit `k`, `m`, `g`, `t` (1024-based; a trailing `b` or `ib` is allowed: `512m`,
/// `1GiB`).
fn parse_size(flag: &str, text: &str) -> Result<i64, Error> {
    let bad = || {
        Error::msg(format!(
            "{flag}: {text:?} is not a size (bytes, or a number with k, m, g or t; -1 for no limit)"
        ))
    };
    let t = text.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let stripped = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, shift) = match stripped.chars().last() {
        Some('k') => (&stripped[..stripped.len() - 1], 10),
        Some('m') => (&stripped[..stripped.len() - 1], 20),
        Some('g') => (&stripped[..stripped.len() - 1], 30),
        Some('t') => (&stripped[..stripped.len() - 1], 40),
        _ => (stripped, 0),
    };
    let n: i64 = digits.trim().parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    n.checked_mul(1i64 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("--memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("--memory", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("--memory", "4096").unwrap(), 4096);
        assert_eq!(parse_size("--memory", "-1").unwrap(), -1);
        for bad in ["", "x", "-5", "12q", "99999999999t"] {
            let e = parse_size("--memory", bad).unwrap_err().to_string();
            assert!(e.starts_with("--memory:"), "{bad}: {e}");
        }
    }

    #[test]
    fn merge_overlays_objects_and_skips_nulls() {
        let mut base = serde_json::json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(
            &mut base,
            &serde_json::json!({"memory": {"limit": 3, "swap": null}, "cpu": {"shares": 7}}),
        );
        assert_eq!(
            base,
            serde_json::json!({"memory": {"limit": 3, "swap": 2}, "pids": {"limit": 5},
                               "cpu": {"shares": 7}})
        );
    }

    #[test]
    fn swap_and_quota_get_their_context() {
        let asked = serde_json::json!({"memory": {"swap": 300}, "cpu": {"quota": 5000}});
        let merged = serde_json::json!({"memory": {"limit": 100, "swap": 300},
                                        "cpu": {"quota": 5000, "period": 20000}});
        assert_eq!(
            with_context(&asked, &merged),
            serde_json::json!({"memory": {"swap": 300, "limit": 100},
                               "cpu": {"quota": 5000, "period": 20000}})
        );
        // What is asked stays as asked.
        let asked = serde_json::json!({"memory": {"limit": 50}});
        assert_eq!(with_context(&asked, &merged), asked);
    }
}
