//! Fuzzes contain-oci's reading of an OCI bundle's `config.json` (runtime spec 1.x): the JSON
//! as oci-spec parses it, then `contain_oci::spec::container`, which maps every field onto a
//! `Container` (process, user, capabilities, rlimits, mounts, namespaces, masked and
//! read-only paths, sysctls, devices, seccomp, resources), and `exec_process` for the process
//! alone (`contain-oci exec --process`). Nothing may panic; what is refused is an error.
//!
//! The bundle is a path that does not exist: nothing of the host is read but namespace paths
//! a config names (opened to be joined, never written).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<Spec>(data) else {
        return;
    };
    let bundle = Path::new("/nonexistent/contain-fuzz-bundle");
    let _ = contain_oci::spec::container(bundle, &spec);
    if let Some(process) = spec.process() {
        let _ = contain_oci::spec::exec_process(process, spec.linux().as_ref());
    }
});
