//! Fuzzes the `--user` spec and its resolution against passwd and group files: nothing may
//! panic, whatever the bytes (long lines, missing fields, non-UTF-8), and a spec that parses
//! prints back to itself.
#![no_main]

use contain::process::User;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // spec \0 passwd \0 group
    let mut parts = data.splitn(3, |&b| b == 0);
    let spec = parts.next().unwrap_or_default();
    let passwd = parts.next();
    let group = parts.next();
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    let Ok(user) = spec.parse::<User>() else {
        return;
    };
    assert_eq!(user.to_string().parse::<User>().ok(), Some(user.clone()));
    if let Ok(r) = user.resolve(passwd, group) {
        assert!(r.groups.windows(2).all(|w| w[0] < w[1]));
        assert!(!r.home.is_empty());
    }
});
