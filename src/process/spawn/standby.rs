//! A pool slot's standby process, the parent's side: a process made ahead of demand, already
//! in the slot and already set up as the slot's requests are (entered, identity,
//! capabilities, seccomp filter, rlimits), waiting in `contain-init`'s `standby` mode for one
//! request. Serving a request costs one `sendmsg` (the program's paths, argv, environment and
//! stdio, in the layout of `init/standby.rs`) and the standby's `execve`: no clone, no
//! `setns`, no setup on the request's path.

use std::ffi::CString;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{self, ControlMessage, MsgFlags};

use super::super::init::standby::{HEAD, MAX_MESSAGE, MAX_STRINGS};
use super::super::timing::{self, StartTiming};
use super::super::{Child, Container, Target};
use super::{child, hand_over_stdio, stdio_fds, Prepared};
use crate::{Error, Result};

/// A standby process and our end of its socket.
#[derive(Debug)]
pub(crate) struct Standby {
    child: Child,
    socket: OwnedFd,
}

/// How [`Standby::start`] did not start the request.
pub(crate) enum StandbyFailure {
    /// The request's preparation refused it (as [`Container::spawn`] would): nothing was sent,
    /// and the standby may serve another request.
    Refused(Error, Standby),
    /// The standby cannot take this request (its message is too large) or has ended: nothing
    /// ran. The request (given back) may be started another way.
    NotTaken(Standby, Box<Container>),
    /// The standby took the request and could not execute it (it has exited and been reaped).
    Failed(Error),
}

impl Standby {
    /// Spawns the standby for `template`'s requests in the running container `target` (see
    /// [`Container::standby_of`]).
    ///
    /// # Errors
    ///
    /// [`Error::Sys`] naming `socketpair`; those of [`Container::spawn`] with
    /// [`Container::enter`].
    pub(crate) fn spawn(template: &Container, target: Target) -> Result<Standby> {
        let (socket, theirs) = socket::socketpair(
            socket::AddressFamily::Unix,
            socket::SockType::SeqPacket,
            None,
            socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::sys("socketpair(standby)", e))?;
        // Dropped with the container once spawned: the standby's copy is the only one left,
        // so its exec (close-on-exec) is end-of-file here.
        let child = Container::standby_of(template, target, theirs).spawn()?;
        Ok(Standby { child, socket })
    }

    /// Whether the standby still waits: it ends only when killed (with its slot's PID 1, by
    /// the kernel, as it ends the PID namespace: which cannot finish until the standby, our
    /// child, is reaped, as this does).
    pub(crate) fn waiting(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Has the standby run `request`, which must [`enter`](Container::enter) the standby's
    /// container and be one the standby [serves](Container::standby_serves); the returned
    /// [`Child`] is the standby, now running the request's program.
    ///
    /// `request` is prepared as [`Container::enter`] prepares it (the program looked up, the
    /// environment with `HOME`, the user checked), then sent with its stdio; the standby
    /// answers with end-of-file once its `execve` succeeded, or with the report of the failure
    /// (as a spawned child's). A standby killed between the message and its exec (its slot's
    /// PID 1 killed meanwhile) also reads as end-of-file, as a spawned child killed before its
    /// exec does: the `Child`'s status then says SIGKILL.
    pub(crate) fn start(
        self,
        request: Container,
    ) -> std::result::Result<Child, Box<StandbyFailure>> {
        let prepared = match Prepared::new(&request) {
            Ok(p) => p,
            Err(e) => return Err(Box::new(StandbyFailure::Refused(e, self))),
        };
        let Some((message, counts)) = message(&prepared) else {
            return Err(Box::new(StandbyFailure::NotTaken(self, Box::new(request))));
        };
        let mut moves = Vec::new();
        let parent_ends = match stdio_fds(&request, 3, false, &mut moves) {
            Ok(ends) => ends,
            Err(e) => return Err(Box::new(StandbyFailure::Refused(e, self))),
        };
        let (streams, fds) = streams(&moves);
        if !give_streams_to_user(&prepared, &fds) {
            drop(fds);
            return Err(Box::new(StandbyFailure::NotTaken(self, Box::new(request))));
        }
        let mut head = [0u8; HEAD];
        for (i, n) in [counts[0], counts[1], counts[2], streams]
            .iter()
            .enumerate()
        {
            head[i * 4..i * 4 + 4].copy_from_slice(&n.to_ne_bytes());
        }
        let sending = prepared.started.map(|_| timing::now());
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let rights = [ControlMessage::ScmRights(&raw)];
        let control = match raw.is_empty() {
            true => &rights[..0],
            false => &rights[..],
        };
        let sent = socket::sendmsg::<()>(
            self.socket.as_raw_fd(),
            &[IoSlice::new(&head), IoSlice::new(&message)],
            control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        // The standby holds its copies now (or has ended).
        drop(moves);
        if sent.is_err() {
            return Err(Box::new(StandbyFailure::NotTaken(self, Box::new(request))));
        }
        let Standby { mut child, socket } = self;
        let mut report = [0u8; child::REPORT_SIZE];
        let got = loop {
            match nix::sys::socket::recv(socket.as_raw_fd(), &mut report, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        match got {
            Ok(0) => {
                child.start_timing = prepared.started.zip(sending).map(|(started, sending)| {
                    let parent = timing::ParentStamps {
                        started,
                        cloning: sending,
                    };
                    StartTiming::new(parent, None, timing::now())
                });
                hand_over_stdio(&mut child, parent_ends);
                Ok(child)
            }
            // The standby reported its failure and exits with 127 (or the read failed: then
            // it is killed): reap it, then say what failed.
            Ok(n) => {
                let _ = child.wait();
                Err(Box::new(StandbyFailure::Failed(
                    prepared.reported(&report[..n], "recv(standby)"),
                )))
            }
            Err(e) => {
                drop(child);
                Err(Box::new(StandbyFailure::Failed(Error::sys(
                    "recv(standby)",
                    e,
                ))))
            }
        }
    }
}

/// The request's strings, `[paths, argv, environment]` NUL-terminated one after another, and
/// how many of each; `None` when they exceed what the standby takes.
fn message(prepared: &Prepared) -> Option<(Vec<u8>, [u32; 3])> {
    let groups: [&[CString]; 3] = [&prepared.exec_paths, &prepared.argv, &prepared.envp];
    let strings: usize = groups.iter().map(|g| g.len()).sum();
    let bytes: usize = groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|s| s.as_bytes_with_nul().len())
        .sum();
    if strings > MAX_STRINGS || HEAD + bytes > MAX_MESSAGE {
        return None;
    }
    let mut message = Vec::with_capacity(bytes);
    for s in groups.iter().flat_map(|g| g.iter()) {
        message.extend_from_slice(s.as_bytes_with_nul());
    }
    // Each count is at most MAX_STRINGS.
    Some((message, groups.map(|g| g.len() as u32)))
}

/// Gives the streams that are pipes or sockets to the request's user, as an entered child
/// does before it switches to that user (`child::give_stdio_to_user`: so that the user can
/// reopen them through `/proc/self/fd`), here in the caller. The ids are the slot's: in a
/// slot with a user namespace of its own they are translated through its maps (read from
/// `/proc`, only then). `false` when that cannot be done: the request is entered instead.
fn give_streams_to_user(prepared: &Prepared, fds: &[BorrowedFd<'_>]) -> bool {
    let Some((uid, gid)) = prepared.stdio_owner else {
        return true;
    };
    let userns_holder = (prepared.entered.as_ref())
        .filter(|e| e.namespaces.contains(crate::namespace::Namespaces::USER))
        .map(|e| e.pid);
    let mut host: Option<(u32, u32)> = None;
    for fd in fds {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        let kind = st.st_mode & libc::S_IFMT;
        if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
            continue;
        }
        let (uid, gid) = match (host, userns_holder) {
            (Some(ids), _) => ids,
            (None, None) => *host.insert((uid, gid)),
            (None, Some(pid)) => {
                let map = |file: &str, id: u32| match id {
                    u32::MAX => Some(u32::MAX),
                    id => std::fs::read_to_string(format!("/proc/{}/{file}", pid.raw()))
                        .ok()
                        .and_then(|text| to_host(&text, id)),
                };
                match (map("uid_map", uid), map("gid_map", gid)) {
                    (Some(u), Some(g)) => *host.insert((u, g)),
                    _ => return false,
                }
            }
        };
        let same = (uid == u32::MAX || st.st_uid == uid) && (gid == u32::MAX || st.st_gid == gid);
        if same {
            continue;
        }
        let id = |id: u32| (id != u32::MAX).then_some(id);
        match nix::unistd::fchown(
            fd,
            id(uid).map(nix::unistd::Uid::from_raw),
            id(gid).map(nix::unistd::Gid::from_raw),
        ) {
            // As the child: a stream on a read-only filesystem, or an id the kernel refuses,
            // is left as it is (runc does the same).
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => {}
            Err(nix::errno::Errno::EROFS) => {}
            Err(_) => return false,
        }
    }
    true
}

/// `id` of a user namespace in the namespace that reads `map` (a `uid_map` or `gid_map`:
/// lines of `inside outside count`); `None` when unmapped or unreadable.
fn to_host(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut n = line.split_whitespace().map(|f| f.parse::<u32>().ok());
        let (inside, outside, count) = (n.next()??, n.next()??, n.next()??);
        let offset = id.checked_sub(inside).filter(|o| *o < count)?;
        outside.checked_add(offset)
    })
}

/// The streams the standby gets, as the head's bitmask (stdin bit 0), and their descriptors
/// in stream order: the moves `stdio_fds` made (null, pipes, the caller's `Stdio::Fd`) and,
/// for a stream left at `Stdio::Inherit`, the caller's own descriptor when it is open (a
/// closed one stays closed in the container, as a spawned child inherits it).
fn streams(moves: &[(OwnedFd, RawFd)]) -> (u32, Vec<BorrowedFd<'_>>) {
    let mut bits = 0;
    let mut fds = Vec::with_capacity(3);
    for stream in 0..3 {
        let fd = match moves.iter().find(|(_, target)| *target == stream) {
            Some((fd, _)) => fd.as_fd(),
            None => {
                // SAFETY: 0, 1 and 2 are checked open right here, and borrowed only until
                // the message is sent, within this call's caller.
                let fd = unsafe { BorrowedFd::borrow_raw(stream) };
                if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
                    continue;
                }
                fd
            }
        };
        bits |= 1 << stream;
        fds.push(fd);
    }
    (bits, fds)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_map_to_the_host_through_the_first_range_that_holds_them() {
        let map = "         0     100000      65536\n     65536       1000          1\n";
        assert_eq!(super::to_host(map, 0), Some(100_000));
        assert_eq!(super::to_host(map, 65_535), Some(165_535));
        assert_eq!(super::to_host(map, 65_536), Some(1000));
        assert_eq!(super::to_host(map, 65_537), None);
        assert_eq!(super::to_host("", 0), None);
        assert_eq!(super::to_host("0 4294967295 1\n", 0), Some(u32::MAX));
        assert_eq!(super::to_host("garbage\n0 1 1\n", 0), Some(1));
    }
}
