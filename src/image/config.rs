//! The image config applied to a container: Entrypoint, Cmd, Env, WorkingDir, User,
//! StopSignal, as docker applies them.

use std::ffi::OsString;

/// What to run: the image's Entrypoint and Cmd as docker combines them with what the caller
/// gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCommand {
    /// `--entrypoint`: `None` keeps the image's; `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<OsString>>,
    /// Arguments: replace the image's Cmd when not empty.
    pub args: Vec<OsString>,
}
