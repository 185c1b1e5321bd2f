//! The execution domain of the container's process: personality(2), as the OCI runtime spec's
//! `linux.personality` (config-linux.md#personality) asks for it.

/// An execution domain of personality(2) (the low byte of the persona value,
/// `PER_MASK` in the kernel's `include/uapi/linux/personality.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonalityDomain {
    /// `PER_LINUX` (0): the native domain.
    Linux,
    /// `PER_LINUX32` (8): `uname -m` reports the 32-bit machine of the architecture (`i686`
    /// on x86_64, `armv8l` on aarch64), as `linux32`/`setarch` do.
    Linux32,
}

impl PersonalityDomain {
    /// The kernel's number of the domain.
    pub fn raw(self) -> u32 {
        match self {
            PersonalityDomain::Linux => 0x0000,
            PersonalityDomain::Linux32 => 0x0008,
        }
    }
}

bitflags::bitflags! {
    /// The flags of personality(2) above the domain byte (the kernel's
    /// `include/uapi/linux/personality.h`, unchanged since Linux 2.6.x); bitflags'
    /// `from_name` takes the kernel's names (`ADDR_NO_RANDOMIZE`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PersonalityFlags: u32 {
        /// `UNAME26`: `uname` reports a 2.6.x release.
        const UNAME26 = 0x0020000;
        /// `ADDR_NO_RANDOMIZE`: no address space layout randomization for the program.
        const ADDR_NO_RANDOMIZE = 0x0040000;
        /// `FDPIC_FUNCPTRS`: function pointers point to descriptors (FDPIC ABIs).
        const FDPIC_FUNCPTRS = 0x0080000;
        /// `MMAP_PAGE_ZERO`: page 0 is mapped read-only (SVr4 compatibility).
        const MMAP_PAGE_ZERO = 0x0100000;
        /// `ADDR_COMPAT_LAYOUT`: the old (bottom-up) mmap layout.
        const ADDR_COMPAT_LAYOUT = 0x0200000;
        /// `READ_IMPLIES_EXEC`: readable mappings are executable too.
        const READ_IMPLIES_EXEC = 0x0400000;
        /// `ADDR_LIMIT_32BIT`: addresses below 4 GiB.
        const ADDR_LIMIT_32BIT = 0x0800000;
        /// `SHORT_INODE`: (unused by Linux).
        const SHORT_INODE = 0x1000000;
        /// `WHOLE_SECONDS`: (unused by Linux).
        const WHOLE_SECONDS = 0x2000000;
        /// `STICKY_TIMEOUTS`: `select` does not modify its timeout.
        const STICKY_TIMEOUTS = 0x4000000;
        /// `ADDR_LIMIT_3GB`: addresses below 3 GiB.
        const ADDR_LIMIT_3GB = 0x8000000;
    }
}

/// What [`Container::personality`](super::Container::personality) sets: a domain and flags,
/// applied with one personality(2) call in the container's process before it execs (the
/// kernel keeps the persona across execve, minus `PER_CLEAR_ON_SETID` flags for a set-id
/// program).
///
/// ```
/// use contain::process::{Personality, PersonalityDomain, PersonalityFlags};
/// let p = Personality::new(PersonalityDomain::Linux32).flags(PersonalityFlags::ADDR_NO_RANDOMIZE);
/// assert_eq!(p.raw(), 0x0040008);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Personality {
    /// The execution domain.
    pub domain: PersonalityDomain,
    /// The flags.
    pub flags: PersonalityFlags,
}

impl Personality {
    /// `domain` without flags.
    pub fn new(domain: PersonalityDomain) -> Personality {
        Personality {
            domain,
            flags: PersonalityFlags::empty(),
        }
    }

    /// The same domain with `flags` added.
    #[must_use]
    pub fn flags(mut self, flags: PersonalityFlags) -> Personality {
        self.flags |= flags;
        self
    }

    /// The persona value personality(2) takes: domain | flags.
    pub fn raw(self) -> u32 {
        self.domain.raw() | self.flags.bits()
    }
}
