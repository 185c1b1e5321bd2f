//! From an OCI bundle's config.json (runtime spec v1.0-1.2, config.md and config-linux.md) to
//! a `contain::process::Container`.

use std::path::Path;

use contain::process::Container;
use oci_spec::runtime::Spec;

/// What the spec asks that this runtime does not do but goes on without (AppArmor, SELinux,
/// intelRdt, ...): one line each, warned once, as crun does.
pub type Warnings = Vec<String>;

/// The container `spec` describes, its root and relative paths taken from `bundle`.
///
/// # Errors
///
/// `contain::Error::Config` naming the field for what the spec asks and cannot be done.
#[allow(dead_code)]
pub fn container(bundle: &Path, spec: &Spec) -> contain::Result<(Container, Warnings)> {
    let _ = (bundle, spec);
    Err(contain::Error::Unsupported {
        feature: "config.json".into(),
        reason: "not mapped yet".into(),
    })
}
