//! [`Errno`]: an error number the kernel returned, with its name and description.

use std::fmt;

/// An error number (`errno`) the kernel returned: `ENOENT`, `EPERM`, ...
///
/// A plain `i32` underneath, so it is `Copy`, allocation-free and usable between `clone` and
/// `exec`. Every Linux error number has a constant named as in `errno(3)` and the kernel's
/// `<asm-generic/errno.h>` ([`Errno::ENOENT`], [`Errno::EACCES`], ...), so errors can be
/// matched on:
///
/// ```
/// use contain::Errno;
///
/// let e = Errno::from_raw(2);
/// assert_eq!(e, Errno::ENOENT);
/// assert_eq!(e.raw(), libc::ENOENT);
/// assert_eq!(e.name(), Some("ENOENT"));
/// assert_eq!(e.desc(), "No such file or directory");
/// assert_eq!(e.to_string(), "ENOENT: No such file or directory");
/// match e {
///     Errno::ENOENT | Errno::ENOTDIR => { /* missing */ }
///     _ => unreachable!(),
/// }
/// // std's error keeps the number
/// assert_eq!(std::io::Error::from(e).raw_os_error(), Some(libc::ENOENT));
/// ```
///
/// Display is `NAME: description` (`ENOENT: No such file or directory`), Debug the name
/// alone. The descriptions are the comments of the kernel's uapi headers (Linux 6.x), not
/// the C library's `strerror`, which words some differently (`EAGAIN` is "Try again" here,
/// "Resource temporarily unavailable" there; `ENOSYS` "Invalid system call number", not
/// "Function not implemented"). A number Linux does not define (`from_raw` keeps any value)
/// has no name: it prints as `errno 4095: Unknown error`.
///
/// The aliases `EWOULDBLOCK` (= `EAGAIN`), `EDEADLOCK` (= `EDEADLK`) and `ENOTSUP`
/// (= `EOPNOTSUPP`) are the same value, and print as the name they alias.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($name:ident, $num:literal, $desc:literal;)*) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($num),
                    " on x86_64 and aarch64): ", $desc, ".")]
                pub const $name: Errno = Errno(libc::$name);
            )*
        }

        /// The name and description of `n`, from the kernel's uapi headers.
        fn lookup(n: i32) -> Option<(&'static str, &'static str)> {
            #[allow(unreachable_patterns)] // on no Linux target do two of them share a value
            match n {
                $(libc::$name => Some((stringify!($name), $desc)),)*
                _ => None,
            }
        }

        /// Every errno with its number in `<asm-generic/errno*.h>`.
        #[cfg(test)]
        const TABLE: &[(Errno, i32, &str)] = &[$((Errno::$name, $num, stringify!($name)),)*];
    };
}

// Made from /usr/include/asm-generic/errno-base.h and errno.h (Linux 6.x uapi): name,
// number, comment. The value itself is libc's, so that an architecture with other numbers
// (mips, sparc, alpha, parisc) still gets the right one.
errnos! {
    EPERM, 1, "Operation not permitted";
    ENOENT, 2, "No such file or directory";
    ESRCH, 3, "No such process";
    EINTR, 4, "Interrupted system call";
    EIO, 5, "I/O error";
    ENXIO, 6, "No such device or address";
    E2BIG, 7, "Argument list too long";
    ENOEXEC, 8, "Exec format error";
    EBADF, 9, "Bad file number";
    ECHILD, 10, "No child processes";
    EAGAIN, 11, "Try again";
    ENOMEM, 12, "Out of memory";
    EACCES, 13, "Permission denied";
    EFAULT, 14, "Bad address";
    ENOTBLK, 15, "Block device required";
    EBUSY, 16, "Device or resource busy";
    EEXIST, 17, "File exists";
    EXDEV, 18, "Cross-device link";
    ENODEV, 19, "No such device";
    ENOTDIR, 20, "Not a directory";
    EISDIR, 21, "Is a directory";
    EINVAL, 22, "Invalid argument";
    ENFILE, 23, "File table overflow";
    EMFILE, 24, "Too many open files";
    ENOTTY, 25, "Not a typewriter";
    ETXTBSY, 26, "Text file busy";
    EFBIG, 27, "File too large";
    ENOSPC, 28, "No space left on device";
    ESPIPE, 29, "Illegal seek";
    EROFS, 30, "Read-only file system";
    EMLINK, 31, "Too many links";
    EPIPE, 32, "Broken pipe";
    EDOM, 33, "Math argument out of domain of func";
    ERANGE, 34, "Math result not representable";
    EDEADLK, 35, "Resource deadlock would occur";
    ENAMETOOLONG, 36, "File name too long";
    ENOLCK, 37, "No record locks available";
    ENOSYS, 38, "Invalid system call number";
    ENOTEMPTY, 39, "Directory not empty";
    ELOOP, 40, "Too many symbolic links encountered";
    ENOMSG, 42, "No message of desired type";
    EIDRM, 43, "Identifier removed";
    ECHRNG, 44, "Channel number out of range";
    EL2NSYNC, 45, "Level 2 not synchronized";
    EL3HLT, 46, "Level 3 halted";
    EL3RST, 47, "Level 3 reset";
    ELNRNG, 48, "Link number out of range";
    EUNATCH, 49, "Protocol driver not attached";
    ENOCSI, 50, "No CSI structure available";
    EL2HLT, 51, "Level 2 halted";
    EBADE, 52, "Invalid exchange";
    EBADR, 53, "Invalid request descriptor";
    EXFULL, 54, "Exchange full";
    ENOANO, 55, "No anode";
    EBADRQC, 56, "Invalid request code";
    EBADSLT, 57, "Invalid slot";
    EBFONT, 59, "Bad font file format";
    ENOSTR, 60, "Device not a stream";
    ENODATA, 61, "No data available";
    ETIME, 62, "Timer expired";
    ENOSR, 63, "Out of streams resources";
    ENONET, 64, "Machine is not on the network";
    ENOPKG, 65, "Package not installed";
    EREMOTE, 66, "Object is remote";
    ENOLINK, 67, "Link has been severed";
    EADV, 68, "Advertise error";
    ESRMNT, 69, "Srmount error";
    ECOMM, 70, "Communication error on send";
    EPROTO, 71, "Protocol error";
    EMULTIHOP, 72, "Multihop attempted";
    EDOTDOT, 73, "RFS specific error";
    EBADMSG, 74, "Not a data message";
    EOVERFLOW, 75, "Value too large for defined data type";
    ENOTUNIQ, 76, "Name not unique on network";
    EBADFD, 77, "File descriptor in bad state";
    EREMCHG, 78, "Remote address changed";
    ELIBACC, 79, "Can not access a needed shared library";
    ELIBBAD, 80, "Accessing a corrupted shared library";
    ELIBSCN, 81, ".lib section in a.out corrupted";
    ELIBMAX, 82, "Attempting to link in too many shared libraries";
    ELIBEXEC, 83, "Cannot exec a shared library directly";
    EILSEQ, 84, "Illegal byte sequence";
    ERESTART, 85, "Interrupted system call should be restarted";
    ESTRPIPE, 86, "Streams pipe error";
    EUSERS, 87, "Too many users";
    ENOTSOCK, 88, "Socket operation on non-socket";
    EDESTADDRREQ, 89, "Destination address required";
    EMSGSIZE, 90, "Message too long";
    EPROTOTYPE, 91, "Protocol wrong type for socket";
    ENOPROTOOPT, 92, "Protocol not available";
    EPROTONOSUPPORT, 93, "Protocol not supported";
    ESOCKTNOSUPPORT, 94, "Socket type not supported";
    EOPNOTSUPP, 95, "Operation not supported on transport endpoint";
    EPFNOSUPPORT, 96, "Protocol family not supported";
    EAFNOSUPPORT, 97, "Address family not supported by protocol";
    EADDRINUSE, 98, "Address already in use";
    EADDRNOTAVAIL, 99, "Cannot assign requested address";
    ENETDOWN, 100, "Network is down";
    ENETUNREACH, 101, "Network is unreachable";
    ENETRESET, 102, "Network dropped connection because of reset";
    ECONNABORTED, 103, "Software caused connection abort";
    ECONNRESET, 104, "Connection reset by peer";
    ENOBUFS, 105, "No buffer space available";
    EISCONN, 106, "Transport endpoint is already connected";
    ENOTCONN, 107, "Transport endpoint is not connected";
    ESHUTDOWN, 108, "Cannot send after transport endpoint shutdown";
    ETOOMANYREFS, 109, "Too many references: cannot splice";
    ETIMEDOUT, 110, "Connection timed out";
    ECONNREFUSED, 111, "Connection refused";
    EHOSTDOWN, 112, "Host is down";
    EHOSTUNREACH, 113, "No route to host";
    EALREADY, 114, "Operation already in progress";
    EINPROGRESS, 115, "Operation now in progress";
    ESTALE, 116, "Stale file handle";
    EUCLEAN, 117, "Structure needs cleaning";
    ENOTNAM, 118, "Not a XENIX named type file";
    ENAVAIL, 119, "No XENIX semaphores available";
    EISNAM, 120, "Is a named type file";
    EREMOTEIO, 121, "Remote I/O error";
    EDQUOT, 122, "Quota exceeded";
    ENOMEDIUM, 123, "No medium found";
    EMEDIUMTYPE, 124, "Wrong medium type";
    ECANCELED, 125, "Operation Canceled";
    ENOKEY, 126, "Required key not available";
    EKEYEXPIRED, 127, "Key has expired";
    EKEYREVOKED, 128, "Key has been revoked";
    EKEYREJECTED, 129, "Key was rejected by service";
    EOWNERDEAD, 130, "Owner died";
    ENOTRECOVERABLE, 131, "State not recoverable";
    ERFKILL, 132, "Operation not possible due to RF-kill";
    EHWPOISON, 133, "Memory page has hardware error";
}

impl Errno {
    /// `EWOULDBLOCK`: the same number as [`Errno::EAGAIN`] on Linux.
    pub const EWOULDBLOCK: Errno = Errno(libc::EWOULDBLOCK);
    /// `EDEADLOCK`: the same number as [`Errno::EDEADLK`] on x86_64 and aarch64.
    pub const EDEADLOCK: Errno = Errno(libc::EDEADLOCK);
    /// `ENOTSUP` (the C library's name): the same number as [`Errno::EOPNOTSUPP`] on Linux.
    pub const ENOTSUP: Errno = Errno(libc::ENOTSUP);

    /// The errno with number `n`, as the kernel returns it (a positive number; a raw syscall
    /// returns `-n`). Any value is kept, even one Linux does not define: such an errno has
    /// no [`name`](Errno::name) and prints as "Unknown error".
    pub const fn from_raw(n: i32) -> Errno {
        Errno(n)
    }

    /// The number, as `errno` holds it and `std::io::Error::from_raw_os_error` takes it.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The calling thread's `errno` now, as a C library call that failed left it.
    ///
    /// Async-signal-safe: it reads a thread-local through the C library's
    /// `__errno_location` (glibc, musl), which neither allocates nor locks, so it may be
    /// called in a signal handler or between `clone` and `exec`.
    pub fn last() -> Errno {
        // SAFETY: __errno_location returns a valid pointer to this thread's errno.
        Errno(unsafe { *libc::__errno_location() })
    }

    /// Sets the calling thread's `errno` to 0, for calls (`readdir`) whose only sign of
    /// failure is an `errno` that changed.
    pub(crate) fn clear() {
        // SAFETY: __errno_location returns a valid pointer to this thread's errno.
        unsafe { *libc::__errno_location() = 0 }
    }

    /// The name, as in `errno(3)`: `Some("ENOENT")`; `None` for a number Linux does not
    /// define. For an alias, the name it aliases (`EWOULDBLOCK` is `"EAGAIN"`).
    pub fn name(self) -> Option<&'static str> {
        lookup(self.0).map(|(name, _)| name)
    }

    /// What it means, as the kernel's headers say: `"No such file or directory"`;
    /// `"Unknown error"` for a number Linux does not define.
    pub fn desc(self) -> &'static str {
        lookup(self.0).map_or("Unknown error", |(_, desc)| desc)
    }

    /// nix's errno as ours (crate-private: no nix type in the API).
    pub(crate) fn from_nix(e: nix::errno::Errno) -> Errno {
        Errno(e as i32)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}: {}", self.desc()),
            None => write!(f, "errno {}: {}", self.0, self.desc()),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    /// An `io::Error` with the same [`raw_os_error`](std::io::Error::raw_os_error).
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// Anything the crate's internals hold an errno as: [`Errno`] and nix's (which nix calls
/// return). Crate-private, so that nix's type never becomes part of the API.
pub(crate) trait IntoErrno {
    fn into_errno(self) -> Errno;
}

impl IntoErrno for Errno {
    fn into_errno(self) -> Errno {
        self
    }
}

impl IntoErrno for nix::errno::Errno {
    fn into_errno(self) -> Errno {
        Errno::from_nix(self)
    }
}

/// `.ours()` on a nix result: the same result with [`Errno`] as its error, so that it can
/// be matched on `Err(Errno::EINTR)`.
pub(crate) trait NixResultExt<T> {
    fn ours(self) -> Result<T, Errno>;
}

impl<T> NixResultExt<T> for nix::Result<T> {
    fn ours(self) -> Result<T, Errno> {
        self.map_err(Errno::from_nix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constant_has_the_header_number_name_and_a_description() {
        for &(e, num, name) in TABLE {
            if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
                assert_eq!(e.raw(), num, "{name}");
            }
            assert_eq!(e.name(), Some(name));
            assert!(
                !e.desc().is_empty() && e.desc() != "Unknown error",
                "{name}"
            );
            assert_eq!(Errno::from_raw(e.raw()), e);
        }
        assert_eq!(TABLE.len(), 131, "1 to 133 but 41 and 58 (unused)");
    }

    #[test]
    fn aliases_print_as_what_they_alias() {
        assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
        assert_eq!(Errno::ENOTSUP, Errno::EOPNOTSUPP);
        assert_eq!(Errno::EDEADLOCK, Errno::EDEADLK);
        assert_eq!(format!("{:?}", Errno::EWOULDBLOCK), "EAGAIN");
        assert_eq!(Errno::EAGAIN.to_string(), "EAGAIN: Try again");
    }

    #[test]
    fn unknown_numbers_neither_panic_nor_get_a_name() {
        for n in [0, 41, 58, 134, 4095, -1, i32::MIN, i32::MAX] {
            let e = Errno::from_raw(n);
            assert_eq!(e.raw(), n);
            assert_eq!(e.name(), None);
            assert_eq!(e.desc(), "Unknown error");
            assert_eq!(e.to_string(), format!("errno {n}: Unknown error"));
            assert_eq!(format!("{e:?}"), format!("Errno({n})"));
        }
    }

    #[test]
    fn last_reads_and_clear_resets_errno() {
        // SAFETY: close of an fd that is not open only sets errno.
        assert_eq!(unsafe { libc::close(-1) }, -1);
        assert_eq!(Errno::last(), Errno::EBADF);
        Errno::clear();
        assert_eq!(Errno::last().raw(), 0);
    }

    #[test]
    fn names_match_nix_for_every_number() {
        // The names are nix's (what `contain::Errno` was before); the descriptions are the
        // kernel's comments, which nix words differently for a few (ENOSYS).
        for n in 0..200 {
            let ours = Errno::from_raw(n);
            let theirs = nix::errno::Errno::from_raw(n);
            if theirs != nix::errno::Errno::UnknownErrno {
                assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{n}");
                assert_eq!(Errno::from_nix(theirs), ours);
            } else {
                assert_eq!(ours.name(), None, "{n}");
            }
        }
    }
}
