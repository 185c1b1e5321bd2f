//! Fuzzes the mountinfo parser: it must never panic, and what it accepts must be consistent.
#![no_main]

use contain::mountinfo::{self, MountInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mounts) = mountinfo::parse(data) {
        // Every accepted line parses the same on its own.
        let lines = data
            .strip_suffix(b"\n")
            .unwrap_or(data)
            .split(|&b| b == b'\n');
        for (line, parsed) in lines.zip(&mounts) {
            let alone: MountInfo = mountinfo::parse_line(line).expect("a line of an accepted file");
            assert_eq!(&alone, parsed);
        }
        for m in &mounts {
            let _ = m.super_options().count();
        }
    }
    let _ = mountinfo::parse_line(data);
    // Decoding never grows the input.
    assert!(mountinfo::unescape(data).len() <= data.len());
});
