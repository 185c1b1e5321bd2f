//! `build`: build an image from a Containerfile, as `docker build` and `buildah bud` do.
//!
//! ```text
//! cargo run --release --example build -- [-f Containerfile] -t NAME[:TAG]... [--build-arg K=V]...
//!     [--no-cache] [--output DIR | --output oci-archive:FILE] [--store DIR] CONTEXT
//! ```
//!
//! Each RUN runs in a container of `contain` (every namespace, no network, as root) on the
//! image so far, and what it writes becomes a new layer; COPY takes files from CONTEXT. A step
//! whose parent, instruction (and COPY sources) are unchanged reuses its cached layer and does
//! not run. The Containerfile subset: FROM (an image in the store, see the `images` example,
//! or `scratch`), RUN, COPY [--chown], ENV, WORKDIR, USER, ENTRYPOINT, CMD, LABEL, ARG, EXPOSE, VOLUME, STOPSIGNAL.
//! `SOURCE_DATE_EPOCH` in the environment fixes the times, so that the same input gives the
//! same image id.
//!
//! A `.dockerignore` or `.containerignore` in CONTEXT is not supported: the build stops
//! (COPY would take what it excludes).
//!
//! The image goes into the store, named by `-t`; `--output DIR` also writes it as an OCI image
//! layout (skopeo's `oci:DIR:TAG` reads it), `--output oci-archive:FILE` as an archive.
//! The RUN steps' output goes to stdout and stderr; the steps are listed on stderr. Prints the
//! image id. Exit status: 0, or 125 with a message (a bad argument, a refused Containerfile,
//! a failed step).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use contain::image::build::{BuildEvent, BuildOptions};
use contain::image::Store;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Parser, Debug)]
#[command(about = "Build an image from a Containerfile into contain's store")]
struct Args {
    /// The Containerfile (default CONTEXT/Containerfile, else CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Name the image (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// A build argument (repeatable).
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// Run every step, using no cached layer.
    #[arg(long)]
    no_cache: bool,
    /// Also write the image as an OCI layout DIR, or oci-archive:FILE.
    #[arg(long, value_name = "DIR|oci-archive:FILE")]
    output: Option<String>,
    /// The store (default /var/lib/contain as root, else $XDG_DATA_HOME/contain).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// The build context.
    context: PathBuf,
}

/// The exit status of a refused input or a failed build: 125, as the run example's and
/// docker's own errors (not a command's).
const EXIT_FAILED: u8 = 125;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(args: &Args) -> contain::Result<()> {
    // docker and buildah leave out of COPY what these list; this build would take it all
    // (keys, .git, .env), so it stops rather than put into the image what was left out.
    for ignore in [".containerignore", ".dockerignore"] {
        let path = args.context.join(ignore);
        if path.exists() {
            return Err(contain::Error::Unsupported {
                feature: ignore.to_owned(),
                reason: format!(
                    "{} would be ignored, and COPY take the files it excludes: move them \
                     out of the context (or the file away) and build again",
                    path.display()
                ),
            });
        }
    }
    // Where the image also goes, checked before anything is built.
    let output = match args.output.as_deref() {
        None => None,
        Some(out) => {
            let (archive, path) = match out.strip_prefix("oci-archive:") {
                Some(file) => (true, file),
                None => (false, out),
            };
            if path.is_empty() {
                return Err(contain::Error::Config {
                    what: "--output",
                    reason: format!("{out:?}: no path (DIR, or oci-archive:FILE)"),
                });
            }
            Some((archive, std::path::PathBuf::from(path)))
        }
    };
    let store = match &args.store {
        Some(dir) => Store::open(dir)?,
        None => Store::open_default()?,
    };
    let mut build_args = BTreeMap::new();
    for kv in &args.build_args {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| contain::Error::Config {
                what: "--build-arg",
                reason: format!("{kv:?} is not K=V with a name K"),
            })?;
        build_args.insert(k.to_owned(), v.to_owned());
    }
    let mut opts = BuildOptions::new(&args.context).no_cache(args.no_cache);
    opts.build_args = build_args;
    opts.file = args.file.clone();
    for t in &args.tags {
        opts = opts.tag(t);
    }
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        opts = opts.source_date_epoch(epoch);
    }
    // One line per step; a spinner while it runs, on a terminal only.
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let image = store.build(&opts, &|e| match e {
        BuildEvent::Step {
            number,
            total,
            instruction,
        } => {
            let line = format!("STEP {number}/{total}: {instruction}");
            if spinner.is_hidden() {
                eprintln!("{line}");
            } else {
                spinner.println(&line);
                spinner.set_message(line);
            }
        }
        BuildEvent::Cached { .. } => {
            if spinner.is_hidden() {
                eprintln!("--> Using cache");
            } else {
                spinner.println("--> Using cache");
            }
        }
        _ => {}
    })?;
    spinner.finish_and_clear();
    if let Some((archive, path)) = &output {
        let name = args.tags.first().map(String::as_str);
        match archive {
            true => image.write_archive(path, name)?,
            false => image.write_layout(path, name)?,
        };
    }
    println!("{}", image.id());
    Ok(())
}
