//! The image config applied to a container: Entrypoint, Cmd, Env, WorkingDir, User,
//! StopSignal, as docker applies them (image-spec config.md; moby's `getEntrypointAndArgs`).

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::store::Image;
use crate::process::Container;
use crate::rootfs::Rootfs;
use crate::sys::fs as sysfs;
use crate::{Errno, Error, ImageErrorKind, Result, Signal};

/// What to run in an image: its Entrypoint and Cmd, as docker combines them with what the
/// caller gives (`docker run --entrypoint E IMAGE ARGS...`).
///
/// | caller | runs |
/// |---|---|
/// | nothing | image Entrypoint ++ image Cmd |
/// | `args` | image Entrypoint ++ `args` |
/// | `entrypoint` | `entrypoint` (the image's Cmd is dropped, as docker) |
/// | `entrypoint` and `args` | `entrypoint` ++ `args` |
///
/// `entrypoint: Some(vec![])` clears the image's Entrypoint (`--entrypoint ""`). An empty
/// result is refused: "no command specified".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCommand {
    /// `--entrypoint`: `None` keeps the image's; `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<OsString>>,
    /// Arguments: replace the image's Cmd when not empty.
    pub args: Vec<OsString>,
}

impl ImageCommand {
    /// Runs the image's own Entrypoint and Cmd.
    pub fn image_default() -> ImageCommand {
        ImageCommand::default()
    }

    /// Replaces the image's Cmd with `args` (the image's Entrypoint stays).
    pub fn args<I, S>(args: I) -> ImageCommand
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        ImageCommand {
            entrypoint: None,
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The argv, from the image's Entrypoint and Cmd.
    fn argv(&self, entrypoint: &[String], cmd: &[String]) -> Vec<OsString> {
        let own = |v: &[String]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let mut argv = match &self.entrypoint {
            Some(e) => e.clone(),
            None => own(entrypoint),
        };
        if !self.args.is_empty() {
            argv.extend(self.args.iter().cloned());
        } else if self.entrypoint.is_none() {
            argv.extend(own(cmd));
        }
        argv
    }
}

impl Image {
    /// The image's layers as the root of a container, with a throw-away layer on top
    /// ([`Rootfs::from_layers`]); the bottom layers are flattened into one cached directory
    /// when the stack is deeper than this kernel mounts ([`crate::rootfs::max_lowers`]).
    /// Layers made without privilege ([`OverlayFlavour::User`](super::OverlayFlavour)) are
    /// mounted with `userxattr`.
    ///
    /// # Errors
    /// [`Error::Sys`] when flattening fails, [`Error::Image`] when a kept blob no longer
    /// matches its digest. A container on it with a user namespace fails at spawn with
    /// [`Error::Unsupported`] when the layers are of the `Trusted` flavour on a filesystem
    /// without `user.*` xattrs (tmpfs before Linux 6.6) and have an opaque directory: its
    /// marker is then in `trusted.overlay.*` only, which such a mount does not read.
    pub fn rootfs(&self) -> Result<Rootfs> {
        self.rootfs_with_lowers(crate::rootfs::max_lowers()?)
    }

    /// As [`Image::rootfs`], with at most `max` lower layers (at least 2): the bottom ones
    /// are flattened into one directory, cached in the store under the chain id of the top
    /// one flattened (`flat/FLAVOUR/CHAINHEX`) and built once. Fewer lowers make path
    /// lookups in a deep image cheaper, at the cost of the flattened copy's disk space.
    ///
    /// # Errors
    /// As [`Image::rootfs`].
    pub fn rootfs_with_lowers(&self, max: usize) -> Result<Rootfs> {
        let dirs = self.lower_dirs(max)?;
        let rootfs = Rootfs::from_layers(dirs.iter().cloned());
        Ok(match self.store().overlay_flavour() {
            super::OverlayFlavour::User => rootfs.userxattr(true),
            super::OverlayFlavour::Trusted => match trusted_only_opaque(&dirs)? {
                Some(dir) => rootfs.refuse_userns(format!(
                    "the layer {} has opaque directories marked in trusted.overlay.* only: the \
                     store {} is on a filesystem without user.* xattrs (tmpfs before Linux \
                     6.6), and an overlay in a user namespace reads user.overlay.* only (it \
                     would show what those directories hide). Run without a user namespace, \
                     or keep the store on a filesystem with user xattrs (ext4, xfs, btrfs, \
                     tmpfs from 6.6) and import again",
                    dir.display(),
                    self.store().root().display()
                )),
                None => rootfs,
            },
        })
    }

    /// A container that runs `command` in this image as docker runs it: the argv from
    /// [`ImageCommand`], the image's `Env` (over the default `PATH`), `WorkingDir`, `User`
    /// (resolved in the image's `/etc/passwd` at spawn), on [`Image::rootfs`]. Namespaces,
    /// limits and the rest are the caller's to add; a later [`Container::user`],
    /// [`Container::env`] or [`Container::current_dir`] overrides the image's, as `docker run
    /// --user`, `-e` and `-w` do.
    ///
    /// # Errors
    /// [`Error::Config`] when there is no command (neither the image nor `command` gives one)
    /// or the image's `User` is malformed; [`Error::Image`] (`Malformed`) for an `Env` entry
    /// without `=` or a relative `WorkingDir`; as [`Image::rootfs`].
    pub fn container(&self, command: &ImageCommand) -> Result<Container> {
        let cfg = self.configuration().config().clone().unwrap_or_default();
        let object = format!("image {}", self.id());
        let argv = command.argv(
            cfg.entrypoint().as_deref().unwrap_or_default(),
            cfg.cmd().as_deref().unwrap_or_default(),
        );
        let Some((program, args)) = argv.split_first() else {
            return Err(Error::config(
                "command",
                format!("no command specified: {object} has no Entrypoint or Cmd; give one"),
            ));
        };
        let mut c = Container::new(program).args(args).rootfs(self.rootfs()?);
        for kv in cfg.env().as_deref().unwrap_or_default() {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(Error::image(
                    ImageErrorKind::Malformed,
                    object,
                    format!("Env entry {kv:?} is not KEY=VALUE"),
                ));
            };
            if k.is_empty() {
                return Err(Error::image(
                    ImageErrorKind::Malformed,
                    object,
                    format!("Env entry {kv:?} has an empty name"),
                ));
            }
            c = c.env(k, v);
        }
        if let Some(dir) = cfg.working_dir().as_deref().filter(|d| !d.is_empty()) {
            if !dir.starts_with('/') {
                return Err(Error::image(
                    ImageErrorKind::Malformed,
                    object,
                    format!("WorkingDir {dir:?} is not an absolute path"),
                ));
            }
            c = c.current_dir(dir);
        }
        if let Some(user) = cfg.user().as_deref().filter(|u| !u.is_empty()) {
            c = c.user(user.parse()?);
        }
        Ok(c)
    }

    /// The signal that stops a container of this image (`StopSignal`: a name such as
    /// `SIGQUIT` or `SIGRTMIN+3`, or a number), [`Signal::SIGTERM`] when unset (as docker).
    ///
    /// # Errors
    /// [`Error::Image`] (`Malformed`) when `StopSignal` names no signal.
    pub fn stop_signal(&self) -> Result<Signal> {
        let cfg = self.configuration().config().clone().unwrap_or_default();
        match cfg.stop_signal().as_deref().filter(|s| !s.is_empty()) {
            None => Ok(Signal::SIGTERM),
            Some(s) => s.parse().map_err(|_| {
                Error::image(
                    ImageErrorKind::Malformed,
                    format!("image {}", self.id()),
                    format!("StopSignal {s:?} is no signal"),
                )
            }),
        }
    }
}

/// The first of `dirs` (layers of a root store, bottom first) holding an opaque directory
/// without `user.overlay.opaque`, when their filesystem has no `user.*` xattrs at all (the
/// store then kept only `trusted.overlay.opaque`); `None` otherwise. Only there is the tree
/// walked (a filesystem with user xattrs answers `ENODATA` to the first probe).
fn trusted_only_opaque(dirs: &[PathBuf]) -> Result<Option<PathBuf>> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let open = |p: &Path| {
        let c = CString::new(p.as_os_str().as_bytes())
            .map_err(|_| Error::config("image layer", format!("{} has a NUL byte", p.display())))?;
        sysfs::openat(libc::AT_FDCWD, &c, flags, 0).map_err(|e| Error::sys_path("open", p, e))
    };
    let mut buf = [0u8; 4];
    let Some(top) = dirs.last() else {
        return Ok(None);
    };
    let fd = open(top)?;
    if sysfs::fgetxattr(fd.as_raw_fd(), c"user.overlay.opaque", &mut buf) != Err(Errno::EOPNOTSUPP)
    {
        return Ok(None);
    }
    for dir in dirs {
        // Depth first, with a stack of (parent, name): the open descriptors are those of the
        // directories on the current path only.
        let root = std::rc::Rc::new(open(dir)?);
        let mut stack: Vec<(std::rc::Rc<OwnedFd>, Option<CString>)> = vec![(root.clone(), None)];
        while let Some((parent, name)) = stack.pop() {
            let fd = match name {
                None => parent,
                // Not a directory (ENOTDIR) or a symlink (ELOOP): nothing to look into.
                Some(name) => match sysfs::openat(parent.as_raw_fd(), &name, flags, 0) {
                    Ok(sub) => std::rc::Rc::new(sub),
                    Err(Errno::ENOTDIR | Errno::ELOOP) => continue,
                    Err(e) => return Err(Error::sys_path("openat", dir, e)),
                },
            };
            // The marker of a layer's root is ignored by the mount (its root merges every
            // layer).
            let opaque = matches!(
                sysfs::fgetxattr(fd.as_raw_fd(), c"trusted.overlay.opaque", &mut buf),
                Ok(1) if buf[0] == b'y'
            );
            if opaque && !std::rc::Rc::ptr_eq(&fd, &root) {
                return Ok(Some(dir.clone()));
            }
            let names = sysfs::read_dir_names(fd.as_raw_fd())
                .map_err(|e| Error::sys_path("readdir", dir, e))?;
            stack.extend(names.into_iter().map(|n| (fd.clone(), Some(n))));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    fn o(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_run() {
        let (e, c) = (s(&["/ep", "-x"]), s(&["cmd", "arg"]));
        let none = ImageCommand::default();
        assert_eq!(none.argv(&e, &c), o(&["/ep", "-x", "cmd", "arg"]));
        assert_eq!(none.argv(&[], &c), o(&["cmd", "arg"]));
        assert_eq!(none.argv(&e, &[]), o(&["/ep", "-x"]));
        assert!(none.argv(&[], &[]).is_empty());
        // Explicit args replace Cmd, keep Entrypoint.
        assert_eq!(
            ImageCommand::args(["a"]).argv(&e, &c),
            o(&["/ep", "-x", "a"])
        );
        // --entrypoint drops the image's Cmd too.
        let ep = ImageCommand {
            entrypoint: Some(o(&["/bin/sh"])),
            args: Vec::new(),
        };
        assert_eq!(ep.argv(&e, &c), o(&["/bin/sh"]));
        let ep_args = ImageCommand {
            entrypoint: Some(o(&["/bin/sh"])),
            args: o(&["-c", "true"]),
        };
        assert_eq!(ep_args.argv(&e, &c), o(&["/bin/sh", "-c", "true"]));
        // --entrypoint "" clears it: args alone (or nothing).
        let cleared = ImageCommand {
            entrypoint: Some(Vec::new()),
            args: o(&["ls"]),
        };
        assert_eq!(cleared.argv(&e, &c), o(&["ls"]));
    }
}
