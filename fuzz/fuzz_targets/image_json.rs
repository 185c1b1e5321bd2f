//! Fuzzes what an image archive or OCI layout holds before any of it is trusted: `index.json`
//! (with the platform and tag selection the importer then makes), manifests, image configs,
//! `sha256:` digests, docker-save `manifest.json` member paths and tar member names. Nothing
//! may panic; every descriptor accepted has a 64-digit lowercase hex digest; a member path
//! accepted is relative and never leads out of the archive (CVE-2014-9358); a member name
//! keyed is the same path normalized.
//!
//! The first byte picks the parser, the rest is its input.
#![no_main]

use contain::image::source_fuzzing as parse;
use libfuzzer_sys::fuzz_target;

fn is_hex64(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Relative, without empty, `.` or `..` components.
fn check_relative(p: &str) {
    assert!(!p.is_empty() && !p.starts_with('/'), "{p:?}");
    assert!(
        p.split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
        "{p:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            let tag = match rest.first().map(|b| b % 3) {
                Some(1) => Some("latest"),
                Some(2) => Some("@0"),
                _ => None,
            };
            if let Ok((all, chosen)) = parse::index(rest, tag) {
                assert!(all.iter().all(|(hex, _)| is_hex64(hex)));
                assert!(
                    all.contains(&chosen),
                    "the chosen entry is one of the index's"
                );
            }
        }
        1 => {
            if let Ok((config, layers)) = parse::manifest(rest) {
                assert!(is_hex64(&config.0));
                assert!(layers.iter().all(|(hex, _)| is_hex64(hex)));
            }
        }
        2 => {
            let _ = parse::config(rest);
        }
        3 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(hex) = parse::sha256(text) {
                    assert!(is_hex64(&hex), "{text:?} gave {hex:?}");
                }
            }
        }
        4 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(p) = parse::confined(text) {
                    check_relative(&p);
                    assert!(!p.contains('\0'), "{p:?}");
                    // Confining is idempotent.
                    assert_eq!(parse::confined(&p).ok().as_deref(), Some(p.as_str()));
                }
            }
        }
        _ => {
            // (A key may hold a NUL, from a PAX path: no confined path, which cannot, will
            // ever name it.)
            if let Some(key) = parse::member(rest) {
                check_relative(&key);
                assert_eq!(parse::member(key.as_bytes()).as_deref(), Some(key.as_str()));
            }
        }
    }
});
