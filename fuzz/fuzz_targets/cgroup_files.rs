//! Fuzzes the cgroup v2 interface-file parsers: flat-keyed (memory.stat, cpu.stat,
//! memory.events), nested-keyed (io.stat, io.max) and the value types. None may panic, and
//! what the value parsers accept must print back to something that parses to the same value.
#![no_main]

use contain::cgroup::parse;
use contain::cgroup::{
    Bytes, CpuList, CpuMax, CpuStat, IoMax, Max, MemoryEvents, MemoryStat, Weight,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse::flat_keyed(text);
    let _ = parse::nested_keyed(text);
    let _ = parse::io_stat(text);
    let _ = parse::io_max(text);
    let _ = text.parse::<MemoryStat>();
    let _ = text.parse::<MemoryEvents>();
    let _ = text.parse::<CpuStat>();
    if let Ok(v) = text.parse::<Bytes>() {
        assert_eq!(v.to_string().parse::<Bytes>().ok(), Some(v));
    }
    if let Ok(v) = text.parse::<Max<u64>>() {
        assert_eq!(v.to_string().parse::<Max<u64>>().ok(), Some(v));
    }
    if let Ok(v) = text.parse::<Weight>() {
        assert_eq!(v.to_string().parse::<Weight>().ok(), Some(v));
    }
    if let Ok(v) = text.parse::<CpuMax>() {
        assert_eq!(v.to_string().parse::<CpuMax>().ok(), Some(v));
    }
    if let Ok(v) = text.parse::<CpuList>() {
        assert_eq!(v.to_string().parse::<CpuList>().ok(), Some(v));
    }
    if let Ok(v) = text.parse::<IoMax>() {
        assert_eq!(v.to_string().parse::<IoMax>().ok(), Some(v));
    }
});
