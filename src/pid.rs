//! [`Pid`]: a process id.

use std::fmt;

/// A process id: always greater than 0 (0 and negative numbers mean "the caller's process
/// group" and "a process group" to `kill(2)`, never one process).
///
/// As the kernel gives it: in the pid namespace of whoever read it. Prefer a pidfd (a
/// [`Child`](crate::process::Child)'s) to signal or wait: a pid may be reused once its
/// process is reaped.
///
/// ```
/// use contain::Pid;
///
/// let me = Pid::from_raw(std::process::id() as i32).unwrap();
/// assert_eq!(me.raw() as u32, std::process::id());
/// assert_eq!(Pid::from_raw(0), None);
/// assert_eq!(Pid::from_raw(-1), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(i32);

impl Pid {
    /// The pid `n`: `None` unless `n > 0`.
    pub const fn from_raw(n: i32) -> Option<Pid> {
        if n > 0 {
            Some(Pid(n))
        } else {
            None
        }
    }

    /// The number, as `pid_t`.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The number as std's [`Child::id`](std::process::Child::id) and
    /// [`std::process::id`] give it.
    pub const fn as_u32(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for Pid {
    /// The number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
