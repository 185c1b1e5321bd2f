//! `images`: the image store — import, list, inspect, remove, collect garbage.
//!
//! ```text
//! cargo run --release --example images -- [--store DIR] import [--sync] [--jobs N] REF [NAME[:TAG]]
//! cargo run --release --example images -- [--store DIR] ls
//! cargo run --release --example images -- [--store DIR] inspect REF
//! cargo run --release --example images -- [--store DIR] tag REF NAME[:TAG]
//! cargo run --release --example images -- [--store DIR] rm REF...
//! cargo run --release --example images -- [--store DIR] gc
//! ```
//!
//! REF for `import` is an OCI image layout directory with an optional `:TAG` (`DIR:TAG`, as
//! skopeo's `oci:` transport names it; `oci:DIR:TAG` also works), an `oci-archive` or
//! `docker save` tarball (`FILE[:TAG]`). Elsewhere REF is `NAME[:TAG]` (tag `latest` by
//! default; `docker.io/library/NAME` is `NAME`, and `NAME` also finds `localhost/NAME`, as
//! docker and podman name them) or an image id (`sha256:HEX` or at least 12 digits of HEX).
//! A directory or file given without `oci:` is a source only when it is one (a directory
//! with an `oci-layout` file, a tarball), so `./app` does not hide the image `app`. The store is
//! /var/lib/contain as root, else $XDG_DATA_HOME/contain (`--store` to choose).
//!
//! `import` shows a progress bar per layer on a terminal (nothing when stderr is not one)
//! and prints the image id. `rm` works as `docker rmi`: a name is untagged and the image
//! goes with its last name; layers stay until `gc`.
//!
//! Exit status: 0, or 125 with a message on stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::{Parser, Subcommand};
use contain::image::{ImageRef, Progress, Store};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Parser, Debug)]
#[command(about = "Import, list and remove images in contain's store")]
struct Args {
    /// The store directory (default /var/lib/contain as root, else $XDG_DATA_HOME/contain).
    #[arg(long, value_name = "DIR", global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import an OCI layout DIR[:TAG], or an oci-archive / docker-save FILE[:TAG], and name it.
    Import {
        /// What to import.
        reference: String,
        /// The name to give it (default: the name the source gives, if any).
        name: Option<String>,
        /// syncfs each layer before committing it.
        #[arg(long)]
        sync: bool,
        /// Layers unpacked at once (default: the CPUs, at most 8).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
    },
    /// List the images.
    #[command(alias = "list")]
    Ls,
    /// Print an image as one JSON document: id, names, manifest, layers, config.
    Inspect {
        /// NAME[:TAG] or id.
        reference: String,
    },
    /// Give an image another name, as docker tag (the name leaves the image that had it).
    Tag {
        /// NAME[:TAG] or id of the image.
        reference: String,
        /// The new NAME[:TAG].
        name: String,
    },
    /// Remove images (by name: untag; by id: the image and all its names).
    #[command(alias = "rmi")]
    Rm {
        /// NAME[:TAG] or id, one or more.
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Remove layers and blobs no image uses, and leftovers of killed imports.
    Gc,
}

/// The exit status of a refused input or a failed command: 125, as the run example's and
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
            eprintln!("images: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(args: &Args) -> contain::Result<()> {
    let store = match &args.store {
        Some(dir) => Store::open(dir)?,
        None => Store::open_default()?,
    };
    match &args.command {
        Command::Import {
            reference,
            name,
            sync,
            jobs,
        } => {
            let reference: ImageRef = reference.parse()?;
            let bars = Bars::new();
            let mut store = store.clone().sync(*sync);
            if let Some(n) = jobs {
                store = store.jobs(*n);
            }
            let image = store.import_with(&reference, name.as_deref(), &|p| bars.update(p))?;
            bars.finish();
            println!("{}", image.id());
        }
        Command::Ls => {
            println!(
                "{:<40} {:<14} {:>6} {:>10}  CREATED",
                "NAME", "IMAGE ID", "LAYERS", "SIZE"
            );
            for i in store.images()? {
                let id = &i.id.digest()[..12];
                let names = if i.names.is_empty() {
                    vec!["<none>".to_owned()]
                } else {
                    i.names.clone()
                };
                for n in names {
                    println!(
                        "{n:<40} {id:<14} {:>6} {:>10}  {}",
                        i.layers,
                        human(i.size),
                        // As docker: when the image was made, else when it came here.
                        ago(i.image_created.map_or(i.created, |t| t.max(0) as u64))
                    );
                }
            }
        }
        Command::Inspect { reference } => {
            // One JSON document, as `docker image inspect` prints (for jq).
            let image = store.image(reference)?;
            let layers: Vec<serde_json::Value> = image
                .layers()
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "DiffID": l.diff_id.to_string(),
                        "ChainID": l.chain_id.to_string(),
                        "Digest": l.digest.to_string(),
                        "MediaType": l.media_type,
                        "Size": l.size,
                        "Dir": l.dir,
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "Id": image.id().to_string(),
                "RepoTags": image.names(),
                "Manifest": image.manifest_digest().to_string(),
                "Layers": layers,
                "Config": image.configuration(),
            });
            let text = serde_json::to_string_pretty(&doc)
                .unwrap_or_else(|e| format!("{{\"error\": \"cannot show the image: {e}\"}}"));
            println!("{text}");
        }
        Command::Tag { reference, name } => {
            let image = store.image(reference)?;
            store.tag(&image, name)?;
        }
        Command::Rm { references } => {
            for r in references {
                let removed = store.remove(r)?;
                match removed.as_slice() {
                    [] => println!("Untagged: {r}"),
                    ids => {
                        for id in ids {
                            println!("Deleted: {id}");
                        }
                    }
                }
            }
        }
        Command::Gc => {
            let r = store.gc()?;
            println!(
                "removed {} layers, {} flattened stacks, {} blobs ({}), {} leftovers",
                r.layers,
                r.flattened,
                r.blobs,
                human(r.blob_bytes),
                r.temporaries
            );
        }
    }
    Ok(())
}

/// One progress bar per layer, on stderr when it is a terminal.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(Vec::new()),
        }
    }

    fn update(&self, p: &Progress) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Progress::Resolved {
                layers, platform, ..
            } => {
                if let Some(note) = platform {
                    let _ = self.multi.println(note);
                }
                for i in 0..*layers {
                    let bar = self.multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("layer {}", i + 1));
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bars.push(bar);
                }
            }
            Progress::Layer { index, read, size } => {
                if let Some(bar) = bars.get(*index) {
                    if let Some(size) = size {
                        bar.set_length(*size);
                    }
                    bar.set_position(*read);
                }
            }
            Progress::LayerDone {
                index,
                cached,
                stats,
            } => {
                if let Some(bar) = bars.get(*index) {
                    let msg = match (cached, stats.devices_skipped) {
                        (true, _) => "cached".to_owned(),
                        (false, 0) => "done".to_owned(),
                        // Rootless: the kernel lets no one but root make device nodes.
                        (false, n) => format!("done ({n} device nodes skipped: not root)"),
                    };
                    bar.finish_with_message(msg);
                }
                if stats.devices_skipped > 0 && self.multi.is_hidden() {
                    eprintln!(
                        "layer {}: {} device nodes skipped (not root)",
                        index + 1,
                        stats.devices_skipped
                    );
                }
            }
            _ => {}
        }
    }

    fn finish(&self) {
        for bar in self.bars.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// `1.5 MB` as docker shows sizes (powers of 1000).
fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", units[u])
    }
}

/// `3 minutes ago`.
fn ago(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // docker's wording (go-units HumanDuration).
    let d = now.saturating_sub(secs);
    let (m, day) = (d / 60, d / 86400);
    match d {
        0 => "Less than a second ago".to_owned(),
        1..=59 => format!("{d} seconds ago"),
        60..=119 => "About a minute ago".to_owned(),
        120..=2699 => format!("{m} minutes ago"),
        2700..=5399 => "About an hour ago".to_owned(),
        5400..=172_799 => format!("{} hours ago", (d + 1800) / 3600),
        _ if day < 14 => format!("{day} days ago"),
        _ if day < 60 => format!("{} weeks ago", day / 7),
        _ if day < 730 => format!("{} months ago", day / 30),
        _ => format!("{} years ago", day / 365),
    }
}
