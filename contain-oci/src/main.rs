//! `contain-oci`: an OCI runtime with runc's command line, built on the `contain` crate.

mod spec;

fn main() -> std::process::ExitCode {
    eprintln!("contain-oci: not implemented yet");
    std::process::ExitCode::from(1)
}
