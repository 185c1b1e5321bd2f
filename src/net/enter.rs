//! Opening a `NETLINK_ROUTE` socket inside another network namespace, without moving the
//! caller.
//!
//! A socket belongs for its whole life to the network namespace its creator was in, so the
//! socket is made by a short-lived helper that enters the namespace, and then used from here.
//! The helper is a process, not a thread: in a rootless setup the target namespace is owned by
//! the container's user namespace, `setns` into a network namespace needs `CAP_SYS_ADMIN` over
//! its owner, and only a single-threaded process may enter a user namespace. So the helper is
//! cloned like `vfork`: `CLONE_VM | CLONE_VFORK` (no page tables copied; the caller's thread
//! waits until it exits), `CLONE_FILES` (the socket it makes is already in our descriptor
//! table), on its own small stack, with every signal blocked. Like the spawn child it makes
//! raw system calls only: `setns` (user namespace first, when it is not ours), `setns`
//! (network), `socket`, and `exit`.

use crate::sys::Stack;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use libc::c_void;

use crate::namespace::{Namespace, Namespaces};
use crate::{sys, Errno, Error, Result};

/// `ioctl(NS_GET_USERNS)`: the user namespace that owns a namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701; // _IO(0xb7, 0x1)

/// Opens a `NETLINK_ROUTE` socket (close-on-exec) in `netns`.
pub(crate) fn route_socket_in(netns: &Namespace) -> Result<OwnedFd> {
    if netns.kind() != Namespaces::NET {
        return Err(Error::config(
            "network namespace",
            format!("expected a network namespace, got {:?}", netns.kind()),
        ));
    }
    let target = netns.id()?;
    if Namespace::current(Namespaces::NET)?.id()? == target {
        // SAFETY: socket(2) with constant arguments; the result is a new descriptor or -1.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Error::sys("socket(AF_NETLINK)", Errno::last()));
        }
        // SAFETY: socket just returned this descriptor to us.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let owner = owning_user_namespace(netns)?;
    let mine = Namespace::current(Namespaces::USER)?.id()?;
    let join_user = match owner {
        Some(owner) if owner.id()? != mine => Some(owner),
        _ => None,
    };
    open_with_helper(join_user.as_ref(), netns)
}

/// The user namespace that owns `ns`, or `None` when it is outside ours (an ancestor), which
/// we could not enter anyway.
fn owning_user_namespace(ns: &Namespace) -> Result<Option<Namespace>> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new descriptor or -1.
    let fd = unsafe { libc::ioctl(ns.as_fd().as_raw_fd(), NS_GET_USERNS as _) };
    if fd < 0 {
        return match Errno::last() {
            Errno::EPERM => Ok(None),
            e => Err(Error::sys("ioctl(NS_GET_USERNS)", e)),
        };
    }
    // SAFETY: the ioctl just returned this descriptor to us (close-on-exec, per nsfs).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Namespace::from_fd(fd).map(Some)
}

/// What the helper needs, and where it leaves its result: read back after it exited.
#[repr(C)]
struct HelperPlan {
    /// A user namespace to enter first, or -1.
    userns: RawFd,
    /// The network namespace to enter.
    netns: RawFd,
    /// The new socket (≥ 0), or the negated errno of the failed step.
    result: isize,
    /// Which step failed: 1 setns(user), 2 setns(net), 3 socket.
    step: u32,
}

/// The helper's entry point, on its own stack.
///
/// # Safety
/// `arg` points to a live [`HelperPlan`]; the caller's thread is suspended (`CLONE_VFORK`)
/// until this process exits, and the memory is shared (`CLONE_VM`): only raw system calls.
unsafe extern "C" fn helper_main(arg: *mut c_void) -> ! {
    let plan = arg as *mut HelperPlan;
    // SAFETY: see above; plain reads of data the parent wrote before clone.
    let (userns, netns) = unsafe { ((*plan).userns, (*plan).netns) };
    let steps = [(userns, libc::CLONE_NEWUSER), (netns, libc::CLONE_NEWNET)];
    let mut outcome: (isize, u32) = (0, 0);
    for (step, (fd, kind)) in steps.into_iter().enumerate() {
        if fd < 0 {
            continue;
        }
        // SAFETY: setns on a descriptor the parent keeps open until we exit.
        if let Err(e) = unsafe { sys::syscall3(libc::SYS_setns, fd as usize, kind as usize, 0) } {
            outcome = (-(e.raw() as isize), step as u32 + 1);
            break;
        }
    }
    if outcome.1 == 0 {
        // SAFETY: socket(2) with constant arguments.
        outcome = match unsafe {
            sys::syscall3(
                libc::SYS_socket,
                libc::AF_NETLINK as usize,
                (libc::SOCK_RAW | libc::SOCK_CLOEXEC) as usize,
                libc::NETLINK_ROUTE as usize,
            )
        } {
            Ok(fd) => (fd as isize, 0),
            Err(e) => (-(e.raw() as isize), 3),
        };
    }
    // SAFETY: the plan outlives us (the parent is suspended until we exit); volatile so that
    // the stores happen before exit whatever the optimiser thinks of this diverging function.
    unsafe {
        std::ptr::write_volatile(&mut (*plan).result, outcome.0);
        std::ptr::write_volatile(&mut (*plan).step, outcome.1);
        let _ = sys::syscall3(libc::SYS_exit, 0, 0, 0);
    }
    // exit does not return; if it somehow did, spin rather than run on.
    #[allow(clippy::empty_loop)]
    loop {}
}

fn open_with_helper(userns: Option<&Namespace>, netns: &Namespace) -> Result<OwnedFd> {
    let mut plan = HelperPlan {
        userns: userns.map_or(-1, |u| u.as_fd().as_raw_fd()),
        netns: netns.as_fd().as_raw_fd(),
        result: -(libc::ECHILD as isize),
        step: 0,
    };
    let stack = Stack::new(64 * 1024, "mmap(netns helper stack)")?;
    let blocked = sys::AllSignalsBlocked::new()?;
    let mut pidfd: libc::c_int = -1;
    // No exit signal (the low byte is 0): nothing disturbs the caller's SIGCHLD handling; the
    // helper is reaped through its pidfd below.
    let flags = (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES) as u64 | sys::CLONE_PIDFD;
    // SAFETY: the stack is a live mapping whose top is 16-byte aligned; `plan` and `pidfd`
    // live on this frame, which the vfork semantics keep in place until the helper has exited;
    // helper_main makes raw system calls only.
    let cloned = unsafe {
        sys::clone_legacy(
            flags,
            stack.top(),
            &mut pidfd,
            helper_main,
            &mut plan as *mut HelperPlan as *mut c_void,
        )
    };
    drop(blocked);
    cloned.map_err(|e| Error::sys("clone(netns helper)", e))?;
    // SAFETY: CLONE_PIDFD made the kernel store a new descriptor in `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // The helper has exited (CLONE_VFORK); reap it. __WALL: it has no exit signal.
    let _ = sys::waitid_pidfd(pidfd.as_fd(), libc::__WALL);
    drop(stack);

    // SAFETY: the helper wrote these before it exited; nothing else touches them.
    let (result, step) = unsafe {
        (
            std::ptr::read_volatile(&plan.result),
            std::ptr::read_volatile(&plan.step),
        )
    };
    if result >= 0 && step == 0 {
        // SAFETY: the helper created this descriptor in our shared table (CLONE_FILES) and
        // nothing else knows about it.
        return Ok(unsafe { OwnedFd::from_raw_fd(result as RawFd) });
    }
    let errno = Errno::from_raw(-result as i32);
    Err(match step {
        1 => Error::sys("setns(user namespace owning the network namespace)", errno),
        2 => Error::sys("setns(network namespace)", errno),
        3 => Error::sys("socket(AF_NETLINK) in the network namespace", errno),
        _ => Error::sys("clone(netns helper)", errno),
    })
}
