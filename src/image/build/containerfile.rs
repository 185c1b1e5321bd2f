//! The Containerfile (Dockerfile) subset: FROM, RUN, COPY, ENV, WORKDIR, USER, ENTRYPOINT,
//! CMD, LABEL, ARG; EXPOSE, VOLUME and STOPSIGNAL, recorded in the config.
//!
//! Two passes, as the build driver needs them:
//! 1. [`Containerfile::parse`] reads the text: parser directives (`# escape=`), comments,
//!    line continuations, instruction names in any case, shell and exec (JSON) forms, flags.
//!    Words keep their quotes and `$` references ([`Word`]); what cannot be substituted yet
//!    is still checked (an unterminated quote is an error at this stage).
//! 2. [`Containerfile::evaluate`] takes the base image's config and the build arguments and
//!    yields resolved [`Step`]s: variables substituted, WORKDIR and COPY destinations made
//!    absolute, the environment of each RUN computed. [`Containerfile::base`] resolves the
//!    FROM line first (it may use global ARGs), since the base image's config is needed
//!    before the steps can be evaluated.
//!
//! # Semantics followed
//! The Dockerfile reference (moby/buildkit `frontend/dockerfile/docs/reference.md`) and
//! `Containerfile(5)` of containers/common:
//! - Exec form is a JSON array of strings; anything else (invalid JSON included) is shell
//!   form, run as `/bin/sh -c TEXT`.
//! - Variable substitution (`$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`,
//!   `${v:?msg}`, `${v?msg}`, `\$` for a literal `$`, quotes removed as a shell would) applies
//!   to FROM, COPY, ENV, WORKDIR, USER, LABEL and ARG defaults, never to RUN, CMD or
//!   ENTRYPOINT (their shell does it). An unset variable expands to nothing. The values are
//!   those in effect *before* the instruction: `ENV a=b c=$a` gives `c` the old `a`.
//! - ENV of a name overrides an ARG of the same name. ARG values reach every later RUN as
//!   environment variables but are not stored in the image config. An ARG before FROM is
//!   usable in FROM only, or in the stage after an `ARG NAME` without a value.
//! - The predefined proxy ARGs (`HTTP_PROXY`, `https_proxy`, ...) reach RUN without an ARG
//!   line and stay out of the cache key unless declared.
//! - A relative WORKDIR is relative to the previous one; a relative COPY destination is
//!   relative to the WORKDIR. ENTRYPOINT clears a CMD that came from the base image.
//! - EXPOSE, VOLUME and STOPSIGNAL are recorded in the config (`ExposedPorts`, `Volumes`,
//!   `StopSignal`); nothing is published or mounted by them.
//! - Only the subset above: ADD, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER, a second FROM (multi-stage), `COPY --from`, `RUN --mount` and heredocs
//!   (`RUN <<EOF`) are refused with [`Error::Unsupported`] naming the line.
//!
//! Where this crate chooses: COPY's shell form is split into words as ENV's is (quotes
//! group, so `COPY "a b" /x/` copies one file named `a b`).

use std::collections::BTreeMap;

use serde_json::json;

use crate::image::ImageConfig;
use crate::{Error, Result};

/// The ARGs every build knows without an ARG line (Dockerfile reference, "Predefined ARGs").
pub const PREDEFINED_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The shell of the shell form on Linux (`SHELL` is not in the subset).
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A parsed Containerfile: one stage, its FROM and its instructions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// The escape character (`\`, or `` ` `` after `# escape=``).
    pub escape: char,
    /// ARG lines before FROM: usable in FROM, and inside the stage after a redeclaration.
    pub global_args: Vec<(usize, ArgDecl)>,
    /// The FROM line.
    pub from: From,
    /// The instructions after FROM, in order.
    pub steps: Vec<Instruction>,
}

/// The FROM line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// 1-based line number.
    pub line: usize,
    /// The image reference as written (`scratch`, `debian:12`, `$BASE`), substituted with the
    /// global ARGs by [`Containerfile::base`].
    pub image: Word,
    /// `AS NAME`, lowercased (accepted; one stage only).
    pub stage_name: Option<String>,
}

/// One instruction as written, with its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based number of the line the instruction starts on.
    pub line: usize,
    /// What it says.
    pub kind: InstructionKind,
}

/// The instructions of the subset, unevaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    /// `RUN`.
    Run(CommandForm),
    /// `COPY [--chown=U[:G]] SRC... DEST` or `COPY [--chown=..] ["SRC",... "DEST"]`.
    Copy(Copy),
    /// `ENV K=V ...` or `ENV K V` (legacy: one variable, the rest of the line its value).
    Env(Vec<KeyValue>),
    /// `WORKDIR PATH`.
    Workdir(Word),
    /// `USER USER[:GROUP]`.
    User(Word),
    /// `ENTRYPOINT`.
    Entrypoint(CommandForm),
    /// `CMD`.
    Cmd(CommandForm),
    /// `LABEL K=V ...` (or legacy `LABEL K V`).
    Label(Vec<KeyValue>),
    /// `EXPOSE PORT[/PROTO] ...`.
    Expose(Vec<Word>),
    /// `VOLUME PATH ...` or `VOLUME ["PATH", ...]`.
    Volume(Vec<Word>),
    /// `STOPSIGNAL SIGNAL`.
    StopSignal(Word),
    /// `ARG NAME[=DEFAULT] ...`.
    Arg(Vec<ArgDecl>),
}

/// Shell form (a command line for `/bin/sh -c`) or exec form (an argv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    /// The text after the instruction, continuation lines joined, not substituted.
    Shell(String),
    /// The JSON array's strings.
    Exec(Vec<String>),
}

impl CommandForm {
    /// The argv it runs: exec form as given, shell form as `/bin/sh -c TEXT`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandForm::Shell(text) => {
                let mut v: Vec<String> = DEFAULT_SHELL.iter().map(|s| s.to_string()).collect();
                v.push(text.clone());
                v
            }
            CommandForm::Exec(v) => v.clone(),
        }
    }
}

/// A word as written: quotes, escapes and `$` references are resolved by evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(pub String);

impl Word {
    /// The text as written.
    pub fn raw(&self) -> &str {
        &self.0
    }
}

/// `KEY=VALUE` of ENV and LABEL, both sides unevaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The name.
    pub key: Word,
    /// The value.
    pub value: Word,
}

/// One `NAME[=DEFAULT]` of an ARG line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name (not substituted).
    pub name: String,
    /// The default value, unevaluated.
    pub default: Option<Word>,
}

/// A COPY instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// `--chown=USER[:GROUP]`.
    pub chown: Option<Word>,
    /// Sources, relative to the build context.
    pub sources: Vec<Word>,
    /// The destination in the image.
    pub dest: Word,
}

/// What FROM names once substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: no layers, an empty config.
    Scratch,
    /// An image reference (`NAME[:TAG]`, as written after substitution).
    Image(String),
}

/// A resolved instruction: what the build driver runs or applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the instruction.
    pub line: usize,
    /// What to do.
    pub kind: StepKind,
}

/// The resolved instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Run a command in a container on the current layers; what it writes is a new layer.
    Run {
        /// Shell or exec form (not substituted: the shell does it).
        command: CommandForm,
        /// The environment, `KEY=VALUE`: the config's Env (base image and ENV so far), then
        /// the ARGs in scope that no ENV overrides, in declaration order. Part of the cache
        /// key.
        env: Vec<String>,
        /// Predefined proxy ARGs given as build arguments but not declared: passed to the
        /// command after `env`, kept out of the cache key and the history.
        proxy_env: Vec<String>,
        /// The user (`USER`, else the base image's; empty: root).
        user: String,
        /// The working directory, absolute.
        workdir: String,
    },
    /// Copy files from the build context into the image.
    Copy {
        /// `--chown` after substitution: the user and the group. Without a group the gid is
        /// the user's numeric id (Dockerfile reference, `COPY --chown`); names resolve
        /// through the image's `/etc/passwd` and `/etc/group`. `None`: files get 0:0.
        chown: Option<Chown>,
        /// Source paths relative to the context, substituted (globs and `..` are for the
        /// driver to resolve, inside the context).
        sources: Vec<String>,
        /// The destination, absolute (relative ones are joined to the WORKDIR); it ends in
        /// `/` when it names a directory (written so, or `.`).
        dest: String,
    },
    /// Set (or replace) environment variables in the config.
    Env(Vec<(String, String)>),
    /// Set the working directory (absolute, cleaned); the driver creates it if missing.
    Workdir(String),
    /// Set the user.
    User(String),
    /// Set the entrypoint.
    Entrypoint {
        /// The form written.
        command: CommandForm,
        /// True when no CMD was set earlier in this Containerfile: the base image's Cmd is
        /// cleared (Dockerfile reference, "Understand how CMD and ENTRYPOINT interact").
        reset_cmd: bool,
    },
    /// Set the default command.
    Cmd(CommandForm),
    /// Add labels (a later key replaces an earlier one).
    Label(Vec<(String, String)>),
    /// Add exposed ports, as `PORT/tcp` or `PORT/udp` (the config's `ExposedPorts`; only
    /// recorded: nothing is published).
    Expose(Vec<String>),
    /// Add volumes (the config's `Volumes`; only recorded: a container of this crate mounts
    /// what its caller asks for).
    Volume(Vec<String>),
    /// Set the stop signal (`StopSignal`; see [`Image::stop_signal`](crate::image::Image::stop_signal)).
    StopSignal(String),
    /// Declare build arguments (name, value when it has one). Changes nothing in the config;
    /// the values reach later RUN steps through their `env`.
    Arg(Vec<(String, Option<String>)>),
}

/// `--chown=USER[:GROUP]`, substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chown {
    /// A user name or a numeric uid.
    pub user: String,
    /// A group name or a numeric gid; `None` when only a user was given.
    pub group: Option<String>,
}

impl Step {
    /// True when the step writes files (RUN, COPY); the others only change the config and
    /// make `empty_layer` history entries.
    pub fn makes_layer(&self) -> bool {
        matches!(self.kind, StepKind::Run { .. } | StepKind::Copy { .. })
    }

    /// Stable text of the resolved instruction for the cache key (JSON with sorted keys and
    /// a version tag). The driver hashes it with the parent's chain id and, for COPY, the
    /// content digests of the sources. A RUN's key covers its command, environment (proxy
    /// arguments excepted), user and working directory.
    pub fn cache_key(&self) -> String {
        let v = match &self.kind {
            StepKind::Run {
                command,
                env,
                user,
                workdir,
                proxy_env: _,
            } => json!({"op": "RUN", "form": form_json(command), "env": env, "user": user,
                        "workdir": workdir}),
            StepKind::Copy {
                chown,
                sources,
                dest,
            } => json!({"op": "COPY", "chown": chown.as_ref().map(chown_text),
                        "sources": sources, "dest": dest}),
            StepKind::Env(kv) => json!({"op": "ENV", "vars": pairs_json(kv)}),
            StepKind::Workdir(w) => json!({"op": "WORKDIR", "path": w}),
            StepKind::User(u) => json!({"op": "USER", "user": u}),
            StepKind::Entrypoint { command, reset_cmd } => {
                json!({"op": "ENTRYPOINT", "form": form_json(command), "reset_cmd": reset_cmd})
            }
            StepKind::Cmd(c) => json!({"op": "CMD", "form": form_json(c)}),
            StepKind::Label(kv) => json!({"op": "LABEL", "labels": pairs_json(kv)}),
            StepKind::Expose(p) => json!({"op": "EXPOSE", "ports": p}),
            StepKind::Volume(v) => json!({"op": "VOLUME", "paths": v}),
            StepKind::StopSignal(sig) => json!({"op": "STOPSIGNAL", "signal": sig}),
            StepKind::Arg(a) => json!({"op": "ARG", "args": a}),
        };
        format!("contain-build-v1 {v}")
    }

    /// The history line docker shows for it (`created_by`), e.g. `RUN /bin/sh -c make`,
    /// `ENV A=b`, `COPY --chown=1:1 src /app/`.
    pub fn created_by(&self) -> String {
        match &self.kind {
            StepKind::Run { command, .. } => match command {
                CommandForm::Shell(t) => format!("RUN {} {t}", DEFAULT_SHELL.join(" ")),
                CommandForm::Exec(v) => format!("RUN {}", json!(v)),
            },
            StepKind::Copy {
                chown,
                sources,
                dest,
            } => {
                let mut s = String::from("COPY ");
                if let Some(c) = chown {
                    s.push_str("--chown=");
                    s.push_str(&chown_text(c));
                    s.push(' ');
                }
                for src in sources {
                    s.push_str(src);
                    s.push(' ');
                }
                s.push_str(dest);
                s
            }
            StepKind::Env(kv) => format!("ENV {}", pairs_text(kv)),
            StepKind::Workdir(w) => format!("WORKDIR {w}"),
            StepKind::User(u) => format!("USER {u}"),
            StepKind::Entrypoint { command, .. } => {
                format!("ENTRYPOINT {}", json!(command.argv()))
            }
            StepKind::Cmd(c) => format!("CMD {}", json!(c.argv())),
            StepKind::Label(kv) => format!("LABEL {}", pairs_text(kv)),
            StepKind::Expose(p) => format!("EXPOSE {}", p.join(" ")),
            StepKind::Volume(v) => format!("VOLUME {}", json!(v)),
            StepKind::StopSignal(sig) => format!("STOPSIGNAL {sig}"),
            StepKind::Arg(a) => {
                let parts: Vec<String> = a
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    })
                    .collect();
                format!("ARG {}", parts.join(" "))
            }
        }
    }

    /// Applies a config-changing step to `config` (ENV, WORKDIR, USER, ENTRYPOINT, CMD,
    /// LABEL); RUN, COPY and ARG leave it as it is. ENV replaces a variable of the same name
    /// in place or appends it; shell-form ENTRYPOINT and CMD are stored as
    /// `["/bin/sh", "-c", TEXT]`.
    pub fn apply_to(&self, config: &mut ImageConfig) {
        match &self.kind {
            StepKind::Env(kv) => {
                let mut env = config.env().clone().unwrap_or_default();
                for (k, v) in kv {
                    let entry = format!("{k}={v}");
                    match env.iter_mut().find(|e| env_key(e) == k) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                config.set_env(Some(env));
            }
            StepKind::Workdir(w) => {
                config.set_working_dir(Some(w.clone()));
            }
            StepKind::User(u) => {
                config.set_user(Some(u.clone()));
            }
            StepKind::Entrypoint { command, reset_cmd } => {
                config.set_entrypoint(Some(command.argv()));
                if *reset_cmd {
                    config.set_cmd(None);
                }
            }
            StepKind::Cmd(c) => {
                config.set_cmd(Some(c.argv()));
            }
            StepKind::Label(kv) => {
                let mut labels = config.labels().clone().unwrap_or_default();
                for (k, v) in kv {
                    labels.insert(k.clone(), v.clone());
                }
                config.set_labels(Some(labels));
            }
            StepKind::Expose(ports) => {
                let all = union(config.exposed_ports().as_deref(), ports);
                config.set_exposed_ports(Some(all));
            }
            StepKind::Volume(paths) => {
                let all = union(config.volumes().as_deref(), paths);
                config.set_volumes(Some(all));
            }
            StepKind::StopSignal(sig) => {
                config.set_stop_signal(Some(sig.clone()));
            }
            StepKind::Run { .. } | StepKind::Copy { .. } | StepKind::Arg(_) => {}
        }
    }
}

impl StepKind {
    /// For RUN: the whole environment of the command (`env`, then `proxy_env`).
    pub fn run_env(&self) -> Option<Vec<String>> {
        match self {
            StepKind::Run { env, proxy_env, .. } => {
                Some(env.iter().chain(proxy_env.iter()).cloned().collect())
            }
            _ => None,
        }
    }
}

fn form_json(c: &CommandForm) -> serde_json::Value {
    match c {
        CommandForm::Shell(t) => json!({"shell": t}),
        CommandForm::Exec(v) => json!({"exec": v}),
    }
}

fn pairs_json(kv: &[(String, String)]) -> serde_json::Value {
    json!(kv.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>())
}

fn pairs_text(kv: &[(String, String)]) -> String {
    kv.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn chown_text(c: &Chown) -> String {
    match &c.group {
        Some(g) => format!("{}:{g}", c.user),
        None => c.user.clone(),
    }
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

// ---------------------------------------------------------------------------------------
// Parsing

/// An error of line `line` in instruction `instr`.
fn perr(line: usize, instr: &str, reason: impl Into<String>) -> Error {
    Error::parse(format!("Containerfile line {line} ({instr})"), reason)
}

fn unsupported(line: usize, instr: &str, what: &str, reason: impl Into<String>) -> Error {
    Error::unsupported(
        format!("Containerfile {what} (line {line}, {instr})"),
        reason,
    )
}

/// A logical line: the instruction text with continuations joined.
struct Logical {
    line: usize,
    text: String,
}

impl Containerfile {
    /// Parses a Containerfile.
    ///
    /// # Errors
    /// [`Error::Parse`] naming the line and the instruction (`Containerfile line 3 (ENV)`)
    /// for text that is not a Containerfile: an unknown instruction, a missing argument, an
    /// unterminated quote, a bad `${...}`, instructions before FROM, no FROM.
    /// [`Error::Unsupported`] for what is valid but outside the subset (see the [module
    /// documentation](self)).
    pub fn parse(text: &str) -> Result<Containerfile> {
        let (escape, lines) = logical_lines(text)?;
        let mut global_args = Vec::new();
        let mut from: Option<From> = None;
        let mut steps = Vec::new();
        for l in lines {
            let body = l.text.trim_start();
            let (name, rest) = match body.find(|c: char| c.is_whitespace()) {
                Some(i) => (&body[..i], body[i..].trim()),
                None => (body, ""),
            };
            let upper = name.to_ascii_uppercase();
            let instr = upper.as_str();
            let line = l.line;
            match instr {
                "FROM" => {
                    if from.is_some() {
                        return Err(unsupported(
                            line,
                            instr,
                            "multi-stage builds",
                            "only one FROM is supported",
                        ));
                    }
                    from = Some(parse_from(line, rest, escape)?);
                    continue;
                }
                "ARG" if from.is_none() => {
                    global_args.extend(
                        parse_arg(line, rest, escape)?
                            .into_iter()
                            .map(|a| (line, a)),
                    );
                    continue;
                }
                "RUN" | "COPY" | "ENV" | "WORKDIR" | "USER" | "ENTRYPOINT" | "CMD" | "LABEL"
                | "ARG" | "EXPOSE" | "VOLUME" | "STOPSIGNAL" => {
                    if from.is_none() {
                        return Err(perr(line, instr, "only ARG may come before the first FROM"));
                    }
                }
                "ADD" | "SHELL" | "HEALTHCHECK" | "ONBUILD" | "MAINTAINER" => {
                    return Err(unsupported(
                        line,
                        instr,
                        "instruction",
                        "not in the supported subset (FROM, RUN, COPY, ENV, WORKDIR, USER, \
                         ENTRYPOINT, CMD, LABEL, ARG, EXPOSE, VOLUME, STOPSIGNAL)",
                    ))
                }
                _ => return Err(perr(line, &printable(name), "unknown instruction")),
            }
            let kind = match instr {
                "RUN" => {
                    let (flags, rest) = split_flags(rest);
                    if let Some(f) = flags.first() {
                        return Err(unsupported(
                            line,
                            instr,
                            "RUN flags",
                            format!("{} is not supported", flag_name(f)),
                        ));
                    }
                    let form = parse_command(line, instr, rest)?;
                    if let CommandForm::Shell(text) = &form {
                        check_heredoc(line, instr, text)?;
                    }
                    InstructionKind::Run(form)
                }
                "CMD" => InstructionKind::Cmd(parse_command(line, instr, rest)?),
                "ENTRYPOINT" => InstructionKind::Entrypoint(parse_command(line, instr, rest)?),
                "COPY" => InstructionKind::Copy(parse_copy(line, rest, escape)?),
                "ENV" => InstructionKind::Env(parse_key_values(line, instr, rest, escape)?),
                "LABEL" => InstructionKind::Label(parse_key_values(line, instr, rest, escape)?),
                "EXPOSE" | "VOLUME" => {
                    let words: Vec<Word> = match json_array(line, instr, rest)? {
                        Some(v) if instr == "VOLUME" => v.into_iter().map(Word).collect(),
                        _ => split_words(line, instr, rest, escape)?
                            .into_iter()
                            .map(Word)
                            .collect(),
                    };
                    if words.is_empty() {
                        return Err(perr(line, instr, "needs an argument"));
                    }
                    for w in &words {
                        validate(line, instr, w, escape)?;
                    }
                    if instr == "EXPOSE" {
                        InstructionKind::Expose(words)
                    } else {
                        InstructionKind::Volume(words)
                    }
                }
                "STOPSIGNAL" => {
                    if rest.is_empty() {
                        return Err(perr(line, instr, "needs a signal"));
                    }
                    let w = Word(rest.to_string());
                    validate(line, instr, &w, escape)?;
                    InstructionKind::StopSignal(w)
                }
                "WORKDIR" | "USER" => {
                    if rest.is_empty() {
                        return Err(perr(line, instr, "needs an argument"));
                    }
                    let w = Word(rest.to_string());
                    validate(line, instr, &w, escape)?;
                    if instr == "USER" {
                        InstructionKind::User(w)
                    } else {
                        InstructionKind::Workdir(w)
                    }
                }
                _ => InstructionKind::Arg(parse_arg(line, rest, escape)?),
            };
            steps.push(Instruction { line, kind });
        }
        let Some(from) = from else {
            return Err(Error::parse(
                "Containerfile",
                "no FROM instruction (a build starts FROM an image or FROM scratch)",
            ));
        };
        Ok(Containerfile {
            escape,
            global_args,
            from,
            steps,
        })
    }

    /// The global ARGs with their values: a build argument of the same name, else the
    /// default (substituted with the global ARGs before it).
    fn globals(&self, build_args: &BTreeMap<String, String>) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (line, a) in &self.global_args {
            let value = match build_args.get(&a.name) {
                Some(v) => Some(v.clone()),
                None => match &a.default {
                    Some(d) => Some(expand(*line, "ARG", d, self.escape, &|n| lookup(&out, n))?),
                    None => None,
                },
            };
            out.retain(|(k, _)| k != &a.name);
            if let Some(v) = value {
                out.push((a.name.clone(), v));
            }
        }
        Ok(out)
    }

    /// The FROM line substituted with the global ARGs (and the build arguments that set
    /// them).
    ///
    /// # Errors
    /// [`Error::Parse`] when the substitution fails (`${V:?}` of an unset V) or gives an
    /// empty name.
    pub fn base(&self, build_args: &BTreeMap<String, String>) -> Result<Base> {
        let globals = self.globals(build_args)?;
        let image = expand(
            self.from.line,
            "FROM",
            &self.from.image,
            self.escape,
            &|n| lookup(&globals, n),
        )?;
        if image.is_empty() {
            return Err(perr(self.from.line, "FROM", "the image name is empty"));
        }
        if image == "scratch" {
            Ok(Base::Scratch)
        } else {
            Ok(Base::Image(image))
        }
    }

    /// Build arguments that no ARG line declares and that are not predefined: docker warns
    /// about them ("were not consumed").
    pub fn unused_build_args(&self, build_args: &BTreeMap<String, String>) -> Vec<String> {
        build_args
            .keys()
            .filter(|k| {
                !PREDEFINED_ARGS.contains(&k.as_str())
                    && !self.global_args.iter().any(|(_, a)| &a.name == *k)
                    && !self.steps.iter().any(|s| match &s.kind {
                        InstructionKind::Arg(v) => v.iter().any(|a| &a.name == *k),
                        _ => false,
                    })
            })
            .cloned()
            .collect()
    }

    /// Resolves the instructions against the base image's config (`Env`, `WorkingDir`,
    /// `User`; the default config for `scratch`) and the build arguments (`--build-arg
    /// K=V`).
    ///
    /// # Errors
    /// [`Error::Parse`] naming the line and instruction when a substitution fails (`${V:?msg}`
    /// with V unset), gives an empty name or value where one is needed (an ENV name, a USER),
    /// or when COPY of several sources has a destination without a trailing `/`.
    pub fn evaluate(
        &self,
        base: &ImageConfig,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Vec<Step>> {
        let globals = self.globals(build_args)?;
        let esc = self.escape;
        // The config's Env, in order.
        let mut env: Vec<(String, String)> = base
            .env()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect();
        // ARGs in scope: name and value (None: declared without one).
        let mut args: Vec<(String, Option<String>)> = Vec::new();
        let mut workdir = match base.working_dir().as_deref() {
            Some(w) if !w.is_empty() => clean_abs("/", w),
            _ => "/".to_string(),
        };
        let mut user = base.user().clone().unwrap_or_default();
        let mut cmd_set = false;
        let mut out = Vec::with_capacity(self.steps.len());
        for ins in &self.steps {
            let line = ins.line;
            // ENV wins over ARG of the same name.
            let scope = |n: &str| -> Option<String> {
                lookup(&env, n).or_else(|| args.iter().find(|(k, _)| k == n)?.1.clone())
            };
            let kind = match &ins.kind {
                InstructionKind::Run(command) => {
                    let mut run_env: Vec<String> =
                        env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    for (k, v) in &args {
                        if let Some(v) = v {
                            if !env.iter().any(|(ek, _)| ek == k) {
                                run_env.push(format!("{k}={v}"));
                            }
                        }
                    }
                    let proxy_env = PREDEFINED_ARGS
                        .iter()
                        .filter(|p| {
                            !args.iter().any(|(k, _)| k == *p) && !env.iter().any(|(k, _)| k == *p)
                        })
                        .filter_map(|p| build_args.get(*p).map(|v| format!("{p}={v}")))
                        .collect();
                    StepKind::Run {
                        command: command.clone(),
                        env: run_env,
                        proxy_env,
                        user: user.clone(),
                        workdir: workdir.clone(),
                    }
                }
                InstructionKind::Copy(c) => {
                    let chown = match &c.chown {
                        Some(w) => {
                            let s = expand(line, "COPY", w, esc, &scope)?;
                            Some(parse_chown(line, &s)?)
                        }
                        None => None,
                    };
                    let sources = c
                        .sources
                        .iter()
                        .map(|w| expand(line, "COPY", w, esc, &scope))
                        .collect::<Result<Vec<_>>>()?;
                    if sources.iter().any(|s| s.is_empty()) {
                        return Err(perr(line, "COPY", "a source is empty"));
                    }
                    let d = expand(line, "COPY", &c.dest, esc, &scope)?;
                    if d.is_empty() {
                        return Err(perr(line, "COPY", "the destination is empty"));
                    }
                    let is_dir = d.ends_with('/') || d == "." || d.ends_with("/.");
                    if sources.len() > 1 && !is_dir {
                        return Err(perr(
                            line,
                            "COPY",
                            "with more than one source the destination must be a directory \
                             and end with a /",
                        ));
                    }
                    let mut dest = clean_abs(&workdir, &d);
                    if is_dir && !dest.ends_with('/') {
                        dest.push('/');
                    }
                    StepKind::Copy {
                        chown,
                        sources,
                        dest,
                    }
                }
                InstructionKind::Env(kvs) => {
                    let mut set = Vec::with_capacity(kvs.len());
                    for kv in kvs {
                        let k = expand(line, "ENV", &kv.key, esc, &scope)?;
                        if k.is_empty() || k.contains('=') {
                            return Err(perr(line, "ENV", format!("bad variable name {k:?}")));
                        }
                        let v = expand(line, "ENV", &kv.value, esc, &scope)?;
                        set.push((k, v));
                    }
                    for (k, v) in &set {
                        match env.iter_mut().find(|(ek, _)| ek == k) {
                            Some(e) => e.1 = v.clone(),
                            None => env.push((k.clone(), v.clone())),
                        }
                    }
                    StepKind::Env(set)
                }
                InstructionKind::Label(kvs) => {
                    let mut set = Vec::with_capacity(kvs.len());
                    for kv in kvs {
                        let k = expand(line, "LABEL", &kv.key, esc, &scope)?;
                        if k.is_empty() {
                            return Err(perr(line, "LABEL", "a label name is empty"));
                        }
                        set.push((k, expand(line, "LABEL", &kv.value, esc, &scope)?));
                    }
                    StepKind::Label(set)
                }
                InstructionKind::Workdir(w) => {
                    let p = expand(line, "WORKDIR", w, esc, &scope)?;
                    if p.is_empty() {
                        return Err(perr(line, "WORKDIR", "the path is empty"));
                    }
                    workdir = clean_abs(&workdir, &p);
                    StepKind::Workdir(workdir.clone())
                }
                InstructionKind::User(w) => {
                    let u = expand(line, "USER", w, esc, &scope)?;
                    if u.is_empty() {
                        return Err(perr(line, "USER", "the user is empty"));
                    }
                    user = u.clone();
                    StepKind::User(u)
                }
                InstructionKind::Entrypoint(c) => StepKind::Entrypoint {
                    command: c.clone(),
                    reset_cmd: !cmd_set,
                },
                InstructionKind::Cmd(c) => {
                    cmd_set = true;
                    StepKind::Cmd(c.clone())
                }
                InstructionKind::Expose(words) => {
                    let mut ports = Vec::with_capacity(words.len());
                    for w in words {
                        ports.push(exposed_port(
                            line,
                            &expand(line, "EXPOSE", w, esc, &scope)?,
                        )?);
                    }
                    StepKind::Expose(ports)
                }
                InstructionKind::Volume(words) => {
                    let mut paths = Vec::with_capacity(words.len());
                    for w in words {
                        let p = expand(line, "VOLUME", w, esc, &scope)?;
                        if p.is_empty() {
                            return Err(perr(line, "VOLUME", "an empty path"));
                        }
                        paths.push(clean_abs(&workdir, &p));
                    }
                    StepKind::Volume(paths)
                }
                InstructionKind::StopSignal(w) => {
                    let sig = expand(line, "STOPSIGNAL", w, esc, &scope)?;
                    if sig.parse::<crate::Signal>().is_err() {
                        return Err(perr(line, "STOPSIGNAL", format!("{sig:?} is no signal")));
                    }
                    StepKind::StopSignal(sig)
                }
                InstructionKind::Arg(decls) => {
                    let mut set = Vec::with_capacity(decls.len());
                    for a in decls {
                        let value = match build_args.get(&a.name) {
                            Some(v) => Some(v.clone()),
                            None => match &a.default {
                                Some(d) => Some(expand(line, "ARG", d, esc, &scope)?),
                                None => lookup(&globals, &a.name),
                            },
                        };
                        set.push((a.name.clone(), value));
                    }
                    for (k, v) in &set {
                        args.retain(|(ak, _)| ak != k);
                        args.push((k.clone(), v.clone()));
                    }
                    StepKind::Arg(set)
                }
            };
            out.push(Step { line, kind });
        }
        Ok(out)
    }
}

/// `old` (if any) with the items of `new` it lacks appended, in order.
fn union(old: Option<&[String]>, new: &[String]) -> Vec<String> {
    let mut all = old.map(<[String]>::to_vec).unwrap_or_default();
    for item in new {
        if !all.contains(item) {
            all.push(item.clone());
        }
    }
    all
}

/// `80` as `80/tcp`; `53/udp` as it is; a range or anything else that is no port is refused.
fn exposed_port(line: usize, p: &str) -> Result<String> {
    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let ok_port = port.parse::<u16>().is_ok_and(|n| n > 0);
    if !ok_port || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(perr(
            line,
            "EXPOSE",
            format!("{p:?} is not PORT[/tcp|udp|sctp]"),
        ));
    }
    Ok(format!("{port}/{proto}"))
}

fn lookup(vars: &[(String, String)], name: &str) -> Option<String> {
    vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// A name for messages: at most 40 characters, control characters escaped.
fn printable(s: &str) -> String {
    let mut o: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().count() > 40 {
        o.push_str("...");
    }
    o
}

/// Splits into logical lines: directives read, comments and blank lines dropped,
/// continuations joined.
fn logical_lines(text: &str) -> Result<(char, Vec<Logical>)> {
    let mut escape = '\\';
    let mut escape_seen = false;
    let mut directives = true;
    let mut out = Vec::new();
    let mut cur: Option<Logical> = None;
    // A UTF-8 byte order mark is no part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if directives {
            if let Some((k, v)) = directive(line) {
                if k.eq_ignore_ascii_case("escape") {
                    if escape_seen {
                        return Err(perr(
                            n,
                            "# escape",
                            "only one escape directive may be given",
                        ));
                    }
                    escape_seen = true;
                    escape = match v {
                        "\\" => '\\',
                        "`" => '`',
                        _ => {
                            return Err(perr(
                                n,
                                "# escape",
                                format!("the escape character must be \\ or `, not {v:?}"),
                            ))
                        }
                    };
                    continue;
                }
                // `syntax`, `check` and unknown directives: comments.
                continue;
            }
            directives = false;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let content = line.trim_end_matches([' ', '\t']);
        let continued = content.ends_with(escape);
        let piece = if continued {
            &content[..content.len() - escape.len_utf8()]
        } else {
            line
        };
        match cur.as_mut() {
            Some(l) => l.text.push_str(piece),
            None => {
                cur = Some(Logical {
                    line: n,
                    text: piece.trim_start().to_string(),
                })
            }
        }
        if !continued {
            if let Some(l) = cur.take() {
                out.push(l);
            }
        }
    }
    if let Some(l) = cur.take() {
        out.push(l);
    }
    Ok((escape, out))
}

/// `# key=value` at the top of the file: the key and the value, trimmed.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k, v.trim()))
}

fn parse_from(line: usize, rest: &str, escape: char) -> Result<From> {
    let (flags, rest) = split_flags(rest);
    if let Some(f) = flags.first() {
        return Err(unsupported(
            line,
            "FROM",
            "FROM flags",
            format!("{} is not supported", flag_name(f)),
        ));
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (image, stage_name) = match words.as_slice() {
        [image] => (*image, None),
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(perr(
                    line,
                    "FROM",
                    format!("invalid stage name {:?}", printable(name)),
                ));
            }
            (*image, Some(name.to_ascii_lowercase()))
        }
        [] => return Err(perr(line, "FROM", "needs an image name (or scratch)")),
        _ => {
            return Err(perr(
                line,
                "FROM",
                "expected FROM IMAGE or FROM IMAGE AS NAME",
            ))
        }
    };
    let image = Word(image.to_string());
    validate(line, "FROM", &image, escape)?;
    Ok(From {
        line,
        image,
        stage_name,
    })
}

/// Leading `--flag[=value]` words, and the rest.
fn split_flags(mut rest: &str) -> (Vec<&str>, &str) {
    let mut flags = Vec::new();
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        flags.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    (flags, rest)
}

fn flag_name(f: &str) -> String {
    printable(f.split_once('=').map_or(f, |(k, _)| k))
}

/// A heredoc (`<<EOF`, `<<-"EOF"`) as BuildKit reads them in RUN and COPY.
fn check_heredoc(line: usize, instr: &str, rest: &str) -> Result<()> {
    for w in rest.split_whitespace() {
        if let Some(t) = w.strip_prefix("<<") {
            let t = t.strip_prefix('-').unwrap_or(t);
            let t = t.trim_start_matches(['"', '\'']);
            if t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                return Err(unsupported(
                    line,
                    instr,
                    "heredocs",
                    "here-documents (<<WORD) are not supported; use a script file and COPY it",
                ));
            }
        }
    }
    Ok(())
}

/// Exec form when the text is a JSON array of strings, else shell form.
fn parse_command(line: usize, instr: &str, rest: &str) -> Result<CommandForm> {
    if let Some(v) = json_array(line, instr, rest)? {
        return Ok(CommandForm::Exec(v));
    }
    if rest.is_empty() {
        return Err(perr(line, instr, "needs a command"));
    }
    Ok(CommandForm::Shell(rest.to_string()))
}

/// The strings of a JSON array; `None` when the text is no JSON array (shell form). A
/// JSON array with other values than strings is an error, as BuildKit makes it.
fn json_array(line: usize, instr: &str, rest: &str) -> Result<Option<Vec<String>>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            other => Err(perr(
                line,
                instr,
                format!("the exec form takes strings only, not {other}"),
            )),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn parse_copy(line: usize, rest: &str, escape: char) -> Result<Copy> {
    let (flags, rest) = split_flags(rest);
    let mut chown = None;
    for f in flags {
        match f.split_once('=') {
            Some(("--chown", v)) if !v.is_empty() => chown = Some(Word(v.to_string())),
            Some(("--chown", _)) | None if f == "--chown" || f == "--chown=" => {
                return Err(perr(line, "COPY", "--chown needs a value"));
            }
            _ => {
                return Err(unsupported(
                    line,
                    "COPY",
                    "COPY flags",
                    format!("{} is not supported (only --chown)", flag_name(f)),
                ))
            }
        }
    }
    check_heredoc(line, "COPY", rest)?;
    let mut words: Vec<Word> = match json_array(line, "COPY", rest)? {
        Some(v) => v.into_iter().map(Word).collect(),
        None => split_words(line, "COPY", rest, escape)?
            .into_iter()
            .map(Word)
            .collect(),
    };
    if words.len() < 2 {
        return Err(perr(
            line,
            "COPY",
            "needs at least one source and a destination",
        ));
    }
    for w in &words {
        validate(line, "COPY", w, escape)?;
    }
    if let Some(c) = &chown {
        validate(line, "COPY", c, escape)?;
    }
    let dest = words.pop().unwrap_or_else(|| Word(String::new()));
    Ok(Copy {
        chown,
        sources: words,
        dest,
    })
}

fn parse_chown(line: usize, s: &str) -> Result<Chown> {
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(perr(
            line,
            "COPY",
            format!("--chown={s:?}: expected USER[:GROUP]"),
        ));
    }
    Ok(Chown {
        user: user.to_string(),
        group: group.map(str::to_string),
    })
}

/// ENV and LABEL: `K=V ...`, or the legacy `K V` (one pair, the value the rest of the line).
fn parse_key_values(line: usize, instr: &str, rest: &str, escape: char) -> Result<Vec<KeyValue>> {
    if rest.is_empty() {
        return Err(perr(line, instr, "needs at least one NAME=VALUE"));
    }
    let words = split_words(line, instr, rest, escape)?;
    let first_has_eq = words.first().is_some_and(|w| w.contains('='));
    let mut out = Vec::new();
    if !first_has_eq {
        // Legacy form: the first word is the name, the rest of the line the value.
        let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (k, v) = (&rest[..name_end], rest[name_end..].trim());
        if v.is_empty() {
            return Err(perr(
                line,
                instr,
                format!(
                    "{:?} has no value ({instr} NAME=VALUE or {instr} NAME VALUE)",
                    printable(k)
                ),
            ));
        }
        out.push(KeyValue {
            key: Word(k.to_string()),
            value: Word(v.to_string()),
        });
    } else {
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(perr(
                    line,
                    instr,
                    format!("{:?} is not NAME=VALUE", printable(&w)),
                ));
            };
            if k.is_empty() {
                return Err(perr(line, instr, "a name is empty"));
            }
            out.push(KeyValue {
                key: Word(k.to_string()),
                value: Word(v.to_string()),
            });
        }
    }
    for kv in &out {
        validate(line, instr, &kv.key, escape)?;
        validate(line, instr, &kv.value, escape)?;
    }
    Ok(out)
}

fn parse_arg(line: usize, rest: &str, escape: char) -> Result<Vec<ArgDecl>> {
    if rest.is_empty() {
        return Err(perr(line, "ARG", "needs a name"));
    }
    let mut out = Vec::new();
    for w in split_words(line, "ARG", rest, escape)? {
        let (name, default) = match w.split_once('=') {
            Some((n, d)) => (n, Some(Word(d.to_string()))),
            None => (w.as_str(), None),
        };
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(perr(
                line,
                "ARG",
                format!("invalid name {:?}", printable(name)),
            ));
        }
        if let Some(d) = &default {
            validate(line, "ARG", d, escape)?;
        }
        out.push(ArgDecl {
            name: name.to_string(),
            default,
        });
    }
    Ok(out)
}

/// Splits on whitespace outside quotes; quotes and escapes stay in the words.
fn split_words(line: usize, instr: &str, s: &str, escape: char) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut w = String::new();
    let mut quote: Option<char> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match quote {
            Some(q) => {
                w.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = it.next() {
                        w.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c.is_whitespace() {
                    if !w.is_empty() {
                        words.push(std::mem::take(&mut w));
                    }
                    continue;
                }
                w.push(c);
                if c == escape {
                    if let Some(n) = it.next() {
                        w.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(perr(line, instr, format!("unterminated {q} quote")));
    }
    if !w.is_empty() {
        words.push(w);
    }
    Ok(words)
}

/// Checks a word's syntax now, with every variable unset.
fn validate(line: usize, instr: &str, w: &Word, escape: char) -> Result<()> {
    let mut lx = Lexer {
        chars: w.0.chars().collect(),
        pos: 0,
        escape,
        lookup: &|_| None,
        validating: true,
        depth: 0,
    };
    lx.word(None)
        .map(drop)
        .map_err(|reason| perr(line, instr, reason))
}

/// Substitutes variables in `w` and removes its quotes and escapes.
fn expand(
    line: usize,
    instr: &str,
    w: &Word,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let mut lx = Lexer {
        chars: w.0.chars().collect(),
        pos: 0,
        escape,
        lookup,
        validating: false,
        depth: 0,
    };
    lx.word(None).map_err(|reason| perr(line, instr, reason))
}

/// The word processor: quotes, escapes and `$` references as BuildKit's shell lexer reads
/// them in the instructions that get substitution.
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Parse-time check: unset variables never fail (`${V:?}`).
    validating: bool,
    depth: usize,
}

/// Nesting of `${a:-${b:-...}}` beyond this is refused (bounded recursion).
const MAX_DEPTH: usize = 32;

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Up to `stop` (consumed) or the end.
    fn word(&mut self, stop: Option<char>) -> std::result::Result<String, String> {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return match stop {
                    Some(s) => Err(format!("missing {s} in a ${{...}} substitution")),
                    None => Ok(out),
                };
            };
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' => {
                    self.pos += 1;
                    loop {
                        match self.next() {
                            None => return Err("unterminated ' quote".into()),
                            Some('\'') => break,
                            Some(c) => out.push(c),
                        }
                    }
                }
                '"' => {
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => return Err("unterminated \" quote".into()),
                            Some('"') => {
                                self.pos += 1;
                                break;
                            }
                            Some('$') => out.push_str(&self.dollar()?),
                            Some(c) => {
                                self.pos += 1;
                                if c == self.escape {
                                    match self.peek() {
                                        Some(n) if n == '"' || n == '$' || n == self.escape => {
                                            self.pos += 1;
                                            out.push(n);
                                        }
                                        _ => out.push(c),
                                    }
                                } else {
                                    out.push(c);
                                }
                            }
                        }
                    }
                }
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => {
                    self.pos += 1;
                    // A trailing escape is dropped.
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                c => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    /// At a `$`.
    fn dollar(&mut self) -> std::result::Result<String, String> {
        self.pos += 1;
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: ${ without a variable name".into());
                }
                let value = (self.lookup)(&name);
                let (colon, op) = match self.next() {
                    Some('}') => return Ok(value.unwrap_or_default()),
                    Some(':') => (true, self.next()),
                    other => (false, other),
                };
                if !matches!(op, Some('-' | '+' | '?')) {
                    let shown = op.map_or(String::from("end of text"), |c| format!("{c:?}"));
                    return Err(format!(
                        "unsupported modifier {shown} in ${{{name}...}}: only :-, -, :+, +, :? \
                         and ? are supported"
                    ));
                }
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err("substitutions nested too deeply".into());
                }
                let word = self.word(Some('}'))?;
                self.depth -= 1;
                let set = if colon {
                    value.as_deref().is_some_and(|v| !v.is_empty())
                } else {
                    value.is_some()
                };
                match op {
                    Some('-') => Ok(if set { value.unwrap_or_default() } else { word }),
                    Some('+') => Ok(if set { word } else { String::new() }),
                    _ => {
                        if set || self.validating {
                            Ok(value.unwrap_or_default())
                        } else if word.is_empty() {
                            Err(format!("{name} is not set"))
                        } else {
                            Err(format!("{name}: {word}"))
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }
}

/// `p` made absolute against `base` (itself absolute) and cleaned (`.`, `..` and repeated
/// slashes resolved lexically, never above `/`).
fn clean_abs(base: &str, p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined_base = if p.starts_with('/') { "" } else { base };
    for c in joined_base.split('/').chain(p.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = String::with_capacity(p.len() + base.len() + 1);
    for c in parts {
        s.push('/');
        s.push_str(c);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn eval(text: &str) -> Vec<Step> {
        Containerfile::parse(text)
            .unwrap()
            .evaluate(&ImageConfig::default(), &BTreeMap::new())
            .unwrap()
    }

    fn parse_err(text: &str) -> String {
        Containerfile::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn from_scratch_and_image_with_stage_name() {
        let c = Containerfile::parse("\u{feff}FROM scratch\r\n").unwrap();
        assert_eq!(c.base(&BTreeMap::new()).unwrap(), Base::Scratch);
        let c = Containerfile::parse("from debian:12 As Build\n").unwrap();
        assert_eq!(c.from.stage_name.as_deref(), Some("build"));
        assert_eq!(
            c.base(&BTreeMap::new()).unwrap(),
            Base::Image("debian:12".into())
        );
    }

    #[test]
    fn multi_stage_and_out_of_subset_are_unsupported() {
        let e = Containerfile::parse("FROM a\nRUN x\nFROM b\n").unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains("line 3"), "{e}");
        for text in [
            "FROM a\nADD x /y\n",
            "FROM a\nCOPY --from=b /x /y\n",
            "FROM a\nRUN --mount=type=cache,target=/x true\n",
            "FROM a\nRUN <<EOF\necho hi\nEOF\n",
            "FROM a\nRUN cat <<-'END' > f\n",
            "FROM a\nCOPY <<EOF /x\n",
            "FROM --platform=linux/arm64 a\n",
            "FROM a\nHEALTHCHECK CMD true\n",
        ] {
            let e = Containerfile::parse(text).unwrap_err();
            assert!(matches!(e, Error::Unsupported { .. }), "{text:?}: {e}");
            assert!(
                e.to_string().contains("line 2") || text.starts_with("FROM --"),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_name_line_and_instruction() {
        let e = parse_err("# comment\nFROM a\n\nENV \"unterminated\n");
        assert!(e.contains("line 4 (ENV)"), "{e}");
        assert!(e.contains("unterminated"), "{e}");
        let e = parse_err("FROM a\nFROBNICATE x\n");
        assert!(
            e.contains("line 2 (FROBNICATE)") && e.contains("unknown"),
            "{e}"
        );
        let e = parse_err("RUN x\nFROM a\n");
        assert!(e.contains("line 1 (RUN)"), "{e}");
        let e = parse_err("ARG x=1\n");
        assert!(e.contains("no FROM"), "{e}");
        let e = parse_err("FROM a\nENV a=${b\n");
        assert!(e.contains("line 2 (ENV)"), "{e}");
        let e = parse_err("FROM a\nENV a=${b#x}\n");
        assert!(e.contains("modifier"), "{e}");
        let e = parse_err("FROM a\nCOPY onlyone\n");
        assert!(e.contains("line 2 (COPY)"), "{e}");
        let e = parse_err("FROM a\nRUN\n");
        assert!(e.contains("line 2 (RUN)"), "{e}");
        let e = parse_err("FROM a\nENV novalue\n");
        assert!(e.contains("line 2 (ENV)"), "{e}");
        let e = parse_err("FROM a\nLABEL novalue\n");
        assert!(
            e.contains("line 2 (LABEL)") && e.contains("no value"),
            "{e}"
        );
        assert!(matches!(
            Containerfile::parse("FROM a\nWORKDIR\n"),
            Err(Error::Parse { .. })
        ));
    }

    #[test]
    fn run_shell_and_exec_forms() {
        let s = eval("FROM scratch\nRUN echo $HOME\nRUN [\"echo\", \"$HOME\"]\nRUN [\"x\" \"y\"]\nRUN [not json\n");
        let forms: Vec<_> = s
            .iter()
            .map(|s| match &s.kind {
                StepKind::Run { command, .. } => command.clone(),
                _ => panic!("not RUN"),
            })
            .collect();
        assert_eq!(forms[0], CommandForm::Shell("echo $HOME".into()));
        assert_eq!(
            forms[1],
            CommandForm::Exec(vec!["echo".into(), "$HOME".into()])
        );
        assert_eq!(forms[2], CommandForm::Shell("[\"x\" \"y\"]".into()));
        assert_eq!(forms[3], CommandForm::Shell("[not json".into()));
        let e = parse_err("FROM scratch\nCMD [\"bad\", 1]\n");
        assert!(
            e.contains("line 2 (CMD)") && e.contains("strings only"),
            "{e}"
        );
        assert_eq!(
            forms[0].argv(),
            vec!["/bin/sh".to_string(), "-c".into(), "echo $HOME".into()]
        );
    }

    #[test]
    fn continuations_comments_and_escape_directive() {
        let s = eval(
            "FROM scratch\nRUN apt-get update && \\\n# a comment inside\n\n    apt-get install x \\  \n  y\nrun   true\n",
        );
        assert_eq!(s[0].line, 2);
        match &s[0].kind {
            StepKind::Run { command, .. } => assert_eq!(
                command,
                &CommandForm::Shell("apt-get update &&     apt-get install x   y".into())
            ),
            k => panic!("{k:?}"),
        }
        assert_eq!(s[1].line, 7);
        // With the backtick escape, a backslash is an ordinary character.
        let s = eval("# escape=`\nFROM scratch\nWORKDIR C:\\dir\nRUN a `\n b\nENV x=a`$b\n");
        assert_eq!(s[0].kind, StepKind::Workdir("/C:\\dir".into()));
        assert_eq!(
            s[1].kind.run_env().unwrap(),
            Vec::<String>::new(),
            "no env yet"
        );
        match &s[1].kind {
            StepKind::Run { command, .. } => {
                assert_eq!(command, &CommandForm::Shell("a  b".into()))
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(s[2].kind, StepKind::Env(vec![("x".into(), "a$b".into())]));
        // A directive after an instruction is a comment.
        let c = Containerfile::parse("FROM scratch\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(c.escape, '\\');
        let e = parse_err("# escape=x\nFROM a\n");
        assert!(e.contains("escape"), "{e}");
    }

    #[test]
    fn env_forms_quotes_and_the_before_rule() {
        let s = eval(
            "FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n\
             ENV q=\"a b\" s='$abc' e=x\\ y d=\"\\$abc\"\nENV legacy some value \"quoted\"\n",
        );
        assert_eq!(
            s[1].kind,
            StepKind::Env(vec![
                ("abc".into(), "bye".into()),
                ("def".into(), "hello".into())
            ])
        );
        assert_eq!(s[2].kind, StepKind::Env(vec![("ghi".into(), "bye".into())]));
        assert_eq!(
            s[3].kind,
            StepKind::Env(vec![
                ("q".into(), "a b".into()),
                ("s".into(), "$abc".into()),
                ("e".into(), "x y".into()),
                ("d".into(), "$abc".into()),
            ])
        );
        assert_eq!(
            s[4].kind,
            StepKind::Env(vec![("legacy".into(), "some value quoted".into())])
        );
        let mut cfg = ImageConfig::default();
        cfg.set_env(Some(vec!["abc=old".into(), "PATH=/bin".into()]));
        for st in &s {
            st.apply_to(&mut cfg);
        }
        let env = cfg.env().clone().unwrap();
        assert_eq!(env[0], "abc=bye");
        assert_eq!(env[1], "PATH=/bin");
        assert!(env.contains(&"legacy=some value quoted".to_string()));
    }

    #[test]
    fn substitution_modifiers() {
        let s = eval(
            "FROM scratch\nENV set=v empty=\nLABEL a=${set:-w} b=${unset:-w} c=${empty:-w} \
             d=${empty-w} e=${unset-w} f=${set:+w} g=${empty:+w} h=${empty+w} i=${unset+w} \
             j=${unset:-${set}x} k=$set/${set}y l=\\$set m=$ n=${set:?boom}\n",
        );
        let want = [
            ("a", "v"),
            ("b", "w"),
            ("c", "w"),
            ("d", ""),
            ("e", "w"),
            ("f", "w"),
            ("g", ""),
            ("h", "w"),
            ("i", ""),
            ("j", "vx"),
            ("k", "v/vy"),
            ("l", "$set"),
            ("m", "$"),
            ("n", "v"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(s[1].kind, StepKind::Label(want));
        let c = Containerfile::parse("FROM scratch\nLABEL x=${nope:?must_be_set}\n").unwrap();
        let e = c
            .evaluate(&ImageConfig::default(), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2 (LABEL)") && e.contains("must_be_set"),
            "{e}"
        );
    }

    #[test]
    fn no_substitution_in_run_cmd_entrypoint() {
        let s = eval("FROM scratch\nENV x=1\nRUN echo $x\nCMD echo $x\nENTRYPOINT [\"$x\"]\n");
        assert!(
            matches!(&s[1].kind, StepKind::Run { command: CommandForm::Shell(t), .. } if t == "echo $x")
        );
        assert_eq!(
            s[2].kind,
            StepKind::Cmd(CommandForm::Shell("echo $x".into()))
        );
    }

    #[test]
    fn arg_scoping_env_override_and_run_env() {
        let text = "ARG BASE=debian\nARG TAG=12\nFROM ${BASE}:$TAG\nARG TAG\nARG v=1 w\n\
                    ENV v=env\nRUN true\nLABEL t=$TAG base=$BASE v=$v\n";
        let c = Containerfile::parse(text).unwrap();
        assert_eq!(
            c.base(&BTreeMap::new()).unwrap(),
            Base::Image("debian:12".into())
        );
        assert_eq!(
            c.base(&args(&[("TAG", "13")])).unwrap(),
            Base::Image("debian:13".into())
        );
        let s = c
            .evaluate(
                &ImageConfig::default(),
                &args(&[("w", "given"), ("http_proxy", "p")]),
            )
            .unwrap();
        match &s[3].kind {
            StepKind::Run { env, proxy_env, .. } => {
                // ENV v wins over ARG v; TAG inherited from the global default; w given.
                assert_eq!(
                    env,
                    &vec!["v=env".to_string(), "TAG=12".into(), "w=given".into()]
                );
                assert_eq!(proxy_env, &vec!["http_proxy=p".to_string()]);
            }
            k => panic!("{k:?}"),
        }
        // The global BASE was not redeclared: empty inside the stage.
        assert_eq!(
            s[4].kind,
            StepKind::Label(vec![
                ("t".into(), "12".into()),
                ("base".into(), "".into()),
                ("v".into(), "env".into())
            ])
        );
        // The proxy arg is not in the cache key; a declared arg is.
        let k1 = s[3].cache_key();
        let s2 = c
            .evaluate(&ImageConfig::default(), &args(&[("w", "given")]))
            .unwrap();
        assert_eq!(k1, s2[3].cache_key());
        let s3 = c
            .evaluate(&ImageConfig::default(), &args(&[("w", "other")]))
            .unwrap();
        assert_ne!(k1, s3[3].cache_key());
        assert_eq!(
            c.unused_build_args(&args(&[("w", "1"), ("zzz", "2"), ("no_proxy", "x")])),
            vec!["zzz".to_string()]
        );
        // ARGs never reach the config.
        let mut cfg = ImageConfig::default();
        for st in &s {
            st.apply_to(&mut cfg);
        }
        assert_eq!(cfg.env().clone().unwrap(), vec!["v=env".to_string()]);
    }

    #[test]
    fn arg_before_its_declaration_is_empty() {
        let s = Containerfile::parse("FROM scratch\nLABEL a=x$v\nARG v=1\nLABEL b=x$v\n")
            .unwrap()
            .evaluate(&ImageConfig::default(), &args(&[("v", "2")]))
            .unwrap();
        assert_eq!(s[0].kind, StepKind::Label(vec![("a".into(), "x".into())]));
        assert_eq!(s[2].kind, StepKind::Label(vec![("b".into(), "x2".into())]));
    }

    #[test]
    fn workdir_user_copy_resolution() {
        let mut base = ImageConfig::default();
        base.set_working_dir(Some("/srv".into()));
        base.set_user(Some("daemon".into()));
        base.set_env(Some(vec!["D=data".into()]));
        let c = Containerfile::parse(
            "FROM img\nRUN pwd\nWORKDIR a\nWORKDIR ../b/./c/\nWORKDIR $D\nUSER 1000:${D}\n\
             COPY --chown=1:2 x y/ ./\nCOPY [\"s p\", \"rel\"]\nCOPY \"a b\" /abs/../dst\n\
             COPY --chown=$D f .\nRUN pwd\n",
        )
        .unwrap();
        let s = c.evaluate(&base, &BTreeMap::new()).unwrap();
        assert!(
            matches!(&s[0].kind, StepKind::Run { user, workdir, .. } if user == "daemon" && workdir == "/srv")
        );
        assert_eq!(s[1].kind, StepKind::Workdir("/srv/a".into()));
        assert_eq!(s[2].kind, StepKind::Workdir("/srv/b/c".into()));
        assert_eq!(s[3].kind, StepKind::Workdir("/srv/b/c/data".into()));
        assert_eq!(s[4].kind, StepKind::User("1000:data".into()));
        assert_eq!(
            s[5].kind,
            StepKind::Copy {
                chown: Some(Chown {
                    user: "1".into(),
                    group: Some("2".into())
                }),
                sources: vec!["x".into(), "y/".into()],
                dest: "/srv/b/c/data/".into(),
            }
        );
        assert_eq!(
            s[6].kind,
            StepKind::Copy {
                chown: None,
                sources: vec!["s p".into()],
                dest: "/srv/b/c/data/rel".into()
            }
        );
        assert_eq!(
            s[7].kind,
            StepKind::Copy {
                chown: None,
                sources: vec!["a b".into()],
                dest: "/dst".into()
            }
        );
        assert!(
            matches!(&s[8].kind, StepKind::Copy { chown: Some(Chown { user, group: None }), .. } if user == "data")
        );
        assert!(
            matches!(&s[9].kind, StepKind::Run { user, workdir, .. } if user == "1000:data" && workdir == "/srv/b/c/data")
        );
        let e = Containerfile::parse("FROM a\nCOPY a b c\n")
            .unwrap()
            .evaluate(&base, &BTreeMap::new())
            .unwrap_err();
        assert!(e.to_string().contains("line 2 (COPY)"), "{e}");
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut base = ImageConfig::default();
        base.set_cmd(Some(vec!["bash".into()]));
        let s = Containerfile::parse("FROM img\nENTRYPOINT [\"/app\"]\n")
            .unwrap()
            .evaluate(&base, &BTreeMap::new())
            .unwrap();
        let mut cfg = base.clone();
        s[0].apply_to(&mut cfg);
        assert_eq!(cfg.entrypoint().clone().unwrap(), vec!["/app".to_string()]);
        assert_eq!(cfg.cmd(), &None);
        let s = Containerfile::parse("FROM img\nCMD [\"-v\"]\nENTRYPOINT run it\n")
            .unwrap()
            .evaluate(&base, &BTreeMap::new())
            .unwrap();
        let mut cfg = base.clone();
        for st in &s {
            st.apply_to(&mut cfg);
        }
        assert_eq!(cfg.cmd().clone().unwrap(), vec!["-v".to_string()]);
        assert_eq!(
            cfg.entrypoint().clone().unwrap(),
            vec!["/bin/sh".to_string(), "-c".into(), "run it".into()]
        );
    }

    #[test]
    fn labels_add_and_override() {
        let mut base = ImageConfig::default();
        base.set_labels(Some([("a".to_string(), "1".to_string())].into()));
        let s = Containerfile::parse(
            "FROM img\nLABEL b=2 \"c d\"=\"e f\"\nLABEL a=3\nLABEL legacy value here\n",
        )
        .unwrap()
        .evaluate(&base, &BTreeMap::new())
        .unwrap();
        let mut cfg = base.clone();
        for st in &s {
            st.apply_to(&mut cfg);
        }
        let l = cfg.labels().clone().unwrap();
        assert_eq!(l["a"], "3");
        assert_eq!(l["b"], "2");
        assert_eq!(l["c d"], "e f");
        assert_eq!(l["legacy"], "value here");
    }

    #[test]
    fn cache_keys_are_stable_and_distinguish() {
        let a = eval("FROM scratch\nRUN make\n");
        let b = eval("FROM scratch\nRUN make\n");
        let c = eval("FROM scratch\nRUN [\"make\"]\n");
        let d = eval("FROM scratch\nWORKDIR /x\nRUN make\n");
        assert_eq!(a[0].cache_key(), b[0].cache_key());
        assert_ne!(a[0].cache_key(), c[0].cache_key());
        assert_ne!(a[0].cache_key(), d[1].cache_key());
        assert!(a[0].cache_key().starts_with("contain-build-v1 {"));
        assert_eq!(a[0].created_by(), "RUN /bin/sh -c make");
        assert!(a[0].makes_layer());
        assert!(!d[0].makes_layer());
    }

    #[test]
    fn words_and_names_are_checked() {
        assert!(parse_err("FROM a\nARG 1x=2\n").contains("invalid name"));
        assert!(parse_err("FROM a AS 9x\n").contains("stage name"));
        assert!(parse_err("FROM a b\n").contains("FROM IMAGE"));
        assert!(parse_err("FROM a\nCOPY --chown= a b\n").contains("--chown"));
        assert!(parse_err("FROM a\nLABEL =x\n").contains("empty"));
    }

    proptest! {
        #[test]
        fn parse_and_evaluate_never_panic(text in "(?s)[ -~\\t\\n\\\\`\"'$#{}:+\\-=\\[\\]é]{0,300}") {
            if let Ok(c) = Containerfile::parse(&text) {
                let _ = c.base(&BTreeMap::new());
                if let Ok(steps) = c.evaluate(&ImageConfig::default(), &BTreeMap::new()) {
                    for s in steps {
                        let _ = s.cache_key();
                        let _ = s.created_by();
                    }
                }
            }
        }

        #[test]
        fn instruction_lines_never_panic(
            instr in prop::sample::select(vec!["FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER",
                "ENTRYPOINT", "CMD", "LABEL", "ARG"]),
            rest in "[ -~\\\\`\"'${}:+\\-=]{0,60}",
        ) {
            let text = format!("FROM scratch\n{instr} {rest}\n");
            if let Ok(c) = Containerfile::parse(&text) {
                let _ = c.evaluate(&ImageConfig::default(), &BTreeMap::new());
            }
        }
    }

    #[test]
    fn expose_volume_and_stopsignal_are_recorded_in_the_config() {
        let f = Containerfile::parse(
            "FROM a\nARG P=8080\nWORKDIR /srv\nEXPOSE 80 $P/udp 80\nVOLUME [\"/data\", \"cache\"]\n\
             VOLUME /logs\nSTOPSIGNAL SIGQUIT\n",
        )
        .unwrap();
        let steps = f
            .evaluate(&ImageConfig::default(), &BTreeMap::new())
            .unwrap();
        let mut config = ImageConfig::default();
        for s in &steps {
            assert!(!s.makes_layer() || matches!(s.kind, StepKind::Workdir(_)));
            s.apply_to(&mut config);
        }
        assert_eq!(
            config.exposed_ports().clone().unwrap(),
            ["80/tcp", "8080/udp"]
        );
        assert_eq!(
            config.volumes().clone().unwrap(),
            ["/data", "/srv/cache", "/logs"]
        );
        assert_eq!(config.stop_signal().as_deref(), Some("SIGQUIT"));
        assert_eq!(steps[2].created_by(), "EXPOSE 80/tcp 8080/udp 80/tcp");
        for bad in [
            "FROM a\nEXPOSE 0\n",
            "FROM a\nEXPOSE 80-90\n",
            "FROM a\nEXPOSE 80/icmp\n",
            "FROM a\nSTOPSIGNAL SIGNOPE\n",
            "FROM a\nVOLUME\n",
        ] {
            let r = Containerfile::parse(bad)
                .and_then(|f| f.evaluate(&ImageConfig::default(), &BTreeMap::new()));
            assert!(matches!(r, Err(Error::Parse { .. })), "{bad:?}: {r:?}");
        }
    }
}
