//! Fuzzes the Containerfile parser and the evaluation of its steps: nothing may panic,
//! whatever the text (unterminated quotes, `${` nests, escape directives, continuations at
//! the end), and an evaluated file gives stable cache keys.
#![no_main]

use std::collections::BTreeMap;

use contain::image::build::containerfile::Containerfile;
use contain::image::ImageConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = Containerfile::parse(text) else {
        return;
    };
    let args: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
    let _ = c.base(&args);
    let _ = c.unused_build_args(&args);
    if let Ok(steps) = c.evaluate(&ImageConfig::default(), &args) {
        let again = c
            .evaluate(&ImageConfig::default(), &args)
            .expect("evaluates twice");
        for (a, b) in steps.iter().zip(&again) {
            assert_eq!(a.cache_key(), b.cache_key());
            let mut cfg = ImageConfig::default();
            a.apply_to(&mut cfg);
            let _ = a.created_by();
        }
    }
});
