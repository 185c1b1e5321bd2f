//! [`Signal`]: a signal number, with the names docker, `kill(1)` and the man pages use.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A signal: a number from 1 to `SIGRTMAX` (64 on Linux).
///
/// The standard signals have constants named as in `signal(7)` ([`Signal::SIGTERM`],
/// [`Signal::SIGKILL`], ...); the real-time ones are [`Signal::rt`]`(n)`, `SIGRTMIN+n`. It
/// parses from what `docker kill -s`, `docker run --stop-signal` and `kill(1)` accept: a name
/// with or without `SIG`, in any case (`TERM`, `SIGTERM`, `sigterm`), a number (`15`), or a
/// real-time signal relative to either end (`RTMIN+3`, `SIGRTMAX-2`, `RTMIN`).
///
/// ```
/// use contain::Signal;
///
/// let s: Signal = "term".parse()?;
/// assert_eq!(s, Signal::SIGTERM);
/// assert_eq!(s.raw(), libc::SIGTERM);
/// assert_eq!(s.to_string(), "SIGTERM");
/// assert_eq!("15".parse::<Signal>()?, Signal::SIGTERM);
///
/// let rt: Signal = "RTMIN+3".parse()?;
/// assert_eq!(Some(rt), Signal::rt(3));
/// assert_eq!(rt.name(), "SIGRTMIN+3");
/// assert_eq!(rt.raw(), libc::SIGRTMIN() + 3);
///
/// assert!("SIGFOO".parse::<Signal>().is_err());
/// assert_eq!(Signal::from_raw(0), None);
/// # Ok::<(), contain::Error>(())
/// ```
///
/// Real-time signals count from the C library's `SIGRTMIN` (34 with glibc, which keeps 32
/// and 33 for its threads; 35 with musl), as `kill(1)` and docker do. 32 and 33 are still
/// signals ([`from_raw`](Signal::from_raw) takes them; their names are `SIG32` and `SIG33`),
/// but no program should send them.
///
/// Docker differs in one point: it takes any number (`docker kill -s 99`) and leaves the
/// refusal to the kernel (`EINVAL` from `kill`); here a number past `SIGRTMAX` is refused
/// when it is parsed, before anything runs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

macro_rules! signals {
    ($($name:ident,)*) => {
        impl Signal {
            $(
                #[doc = concat!("`", stringify!($name), "`, see `signal(7)`.")]
                pub const $name: Signal = Signal(libc::$name);
            )*
        }

        /// The standard signals and their names.
        const STANDARD: &[(&str, Signal)] = &[$((stringify!($name), Signal::$name),)*];
    };
}

signals! {
    SIGHUP,
    SIGINT,
    SIGQUIT,
    SIGILL,
    SIGTRAP,
    SIGABRT,
    SIGBUS,
    SIGFPE,
    SIGKILL,
    SIGUSR1,
    SIGSEGV,
    SIGUSR2,
    SIGPIPE,
    SIGALRM,
    SIGTERM,
    SIGSTKFLT,
    SIGCHLD,
    SIGCONT,
    SIGSTOP,
    SIGTSTP,
    SIGTTIN,
    SIGTTOU,
    SIGURG,
    SIGXCPU,
    SIGXFSZ,
    SIGVTALRM,
    SIGPROF,
    SIGWINCH,
    SIGIO,
    SIGPWR,
    SIGSYS,
}

/// Other names of standard signals that docker and `kill(1)` accept.
const ALIASES: &[(&str, Signal)] = &[
    ("SIGIOT", Signal::SIGABRT),
    ("SIGPOLL", Signal::SIGIO),
    ("SIGCLD", Signal::SIGCHLD),
];

// With SIGRTMAX 64 and SIGRTMIN at least 32 (every Linux target this crate builds for), a
// real-time signal is at most 16 from the nearer end.
const RTMIN_NAMES: [&str; 17] = [
    "SIGRTMIN",
    "SIGRTMIN+1",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMIN+16",
];
const RTMAX_NAMES: [&str; 17] = [
    "SIGRTMAX",
    "SIGRTMAX-1",
    "SIGRTMAX-2",
    "SIGRTMAX-3",
    "SIGRTMAX-4",
    "SIGRTMAX-5",
    "SIGRTMAX-6",
    "SIGRTMAX-7",
    "SIGRTMAX-8",
    "SIGRTMAX-9",
    "SIGRTMAX-10",
    "SIGRTMAX-11",
    "SIGRTMAX-12",
    "SIGRTMAX-13",
    "SIGRTMAX-14",
    "SIGRTMAX-15",
    "SIGRTMAX-16",
];
/// The kernel's real-time signals below the C library's `SIGRTMIN`.
const LOW_RT_NAMES: [&str; 4] = ["SIG32", "SIG33", "SIG34", "SIG35"];

impl Signal {
    /// The signal with number `n`: `None` unless `1 <= n <= SIGRTMAX`.
    pub fn from_raw(n: i32) -> Option<Signal> {
        (1..=libc::SIGRTMAX()).contains(&n).then_some(Signal(n))
    }

    /// The number, as `kill(2)` takes it.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The real-time signal `SIGRTMIN+n`: `None` past `SIGRTMAX` (`n` from 0 to 30 with
    /// glibc).
    pub fn rt(n: u32) -> Option<Signal> {
        let n = i32::try_from(n).ok()?;
        let s = libc::SIGRTMIN().checked_add(n)?;
        (s <= libc::SIGRTMAX()).then_some(Signal(s))
    }

    /// Whether it is a real-time signal a program may use (`SIGRTMIN` to `SIGRTMAX`).
    pub fn is_real_time(self) -> bool {
        (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&self.0)
    }

    /// The name, as `kill -l` prints it with `SIG`: `"SIGTERM"`; a real-time signal counts
    /// from the nearer end, `"SIGRTMIN+3"` or `"SIGRTMAX-2"` (bash's and docker's names).
    pub fn name(self) -> &'static str {
        if let Some(&(name, _)) = STANDARD.iter().find(|(_, s)| *s == self) {
            return name;
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        if self.0 < min {
            return LOW_RT_NAMES
                .get((self.0 - 32) as usize)
                .copied()
                .unwrap_or("SIGRT");
        }
        let (from_min, from_max) = ((self.0 - min) as usize, (max - self.0) as usize);
        if from_min <= (max - min) as usize / 2 {
            RTMIN_NAMES.get(from_min)
        } else {
            RTMAX_NAMES.get(from_max)
        }
        .copied()
        .unwrap_or("SIGRT")
    }
}

impl fmt::Display for Signal {
    /// The [`name`](Signal::name): `SIGTERM`, `SIGRTMIN+3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Signal {
    type Err = Error;

    /// Parses what `docker kill -s` and `kill(1)` accept: `TERM`, `SIGTERM`, `sigterm`,
    /// `15`, `RTMIN`, `RTMIN+3`, `SIGRTMAX-2`; and every [`name`](Signal::name) (`SIG32`).
    ///
    /// Errors: [`Error::Config`] naming the input, for an unknown name, 0, a number past
    /// `SIGRTMAX`, or a real-time offset past the other end.
    fn from_str(input: &str) -> Result<Signal, Error> {
        parse(input).ok_or_else(|| {
            Error::config(
                "signal",
                format!(
                    "{input:?} is not a signal: give a name (TERM or SIGTERM), a number from 1 \
                     to {}, or a real-time signal as RTMIN+n or RTMAX-n (n from 0 to {})",
                    libc::SIGRTMAX(),
                    libc::SIGRTMAX() - libc::SIGRTMIN()
                ),
            )
        })
    }
}

fn parse(input: &str) -> Option<Signal> {
    let upper = input.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    // A number: `15`, or `SIG32` (the name of a signal below SIGRTMIN).
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return Signal::from_raw(name.parse().ok()?);
    }
    if let Some(&(_, s)) = STANDARD
        .iter()
        .chain(ALIASES)
        .find(|(n, _)| n[3..] == *name)
    {
        return Some(s);
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse::<i32>().ok().filter(|n| *n <= max - min)
    };
    let raw = if let Some(rest) = name.strip_prefix("RTMIN") {
        match rest.strip_prefix('+') {
            Some(n) => min + offset(n)?,
            None if rest.is_empty() => min,
            None => return None,
        }
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        match rest.strip_prefix('-') {
            Some(n) => max - offset(n)?,
            None if rest.is_empty() => max,
            None => return None,
        }
    } else {
        return None;
    };
    Signal::from_raw(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_has_a_name_that_parses_back() {
        for n in 1..=libc::SIGRTMAX() {
            let s = Signal::from_raw(n).unwrap();
            let name = s.name();
            assert!(name.starts_with("SIG") && name != "SIGRT", "{n}: {name}");
            assert_eq!(name.parse::<Signal>().unwrap(), s, "{name}");
            assert_eq!(name[3..].to_lowercase().parse::<Signal>().unwrap(), s);
            assert_eq!(n.to_string().parse::<Signal>().unwrap(), s);
        }
    }

    #[test]
    fn standard_and_real_time_names() {
        for &(name, s) in STANDARD {
            assert_eq!(s.name(), name);
            assert!(s.raw() < 32);
        }
        assert_eq!(Signal::rt(0).unwrap().name(), "SIGRTMIN");
        assert_eq!(
            Signal::from_raw(libc::SIGRTMAX()).unwrap().name(),
            "SIGRTMAX"
        );
        assert_eq!(
            Signal::from_raw(libc::SIGRTMAX() - 2).unwrap().name(),
            "SIGRTMAX-2"
        );
        assert_eq!(Signal::from_raw(32).unwrap().name(), "SIG32");
    }

    #[test]
    fn rt_is_bounded() {
        let span = (libc::SIGRTMAX() - libc::SIGRTMIN()) as u32;
        assert!(Signal::rt(span).is_some());
        assert_eq!(Signal::rt(span + 1), None);
        assert_eq!(Signal::rt(u32::MAX), None);
    }
}
