//! What is at a path whose `execve` failed, in words both the library's child and
//! `contain-init` (a `no_std` program that includes this file as its own module) use: the
//! report's wire codes and the reading of a file's first bytes. `core` only, no allocation.

/// `ExecTarget` wire codes (see `crate::error::ExecTarget::from_wire`), in the low byte of
/// the report's `step`.
pub const EXEC_UNKNOWN: u32 = 0;
pub const EXEC_MISSING: u32 = 1;
pub const EXEC_SCRIPT: u32 = 2;
pub const EXEC_ELF: u32 = 3;
pub const EXEC_OTHER: u32 = 4;
/// In `step`: `index` names the candidate path (a report of the init's own failures, before
/// it tried any, has neither).
pub const EXEC_INDEXED: u32 = 0x100;
/// In `step`: the interpreter field holds only the start of a longer name.
pub const EXEC_INTERP_TRUNCATED: u32 = 0x200;
/// In `step`: the interpreter exists (so what is missing is *its* interpreter or loader).
pub const EXEC_INTERP_EXISTS: u32 = 0x400;

/// Size of the interpreter field that follows the 16-byte head of a report, and of the
/// buffer a file's first bytes are read into: the `#!` interpreter of the script whose exec
/// failed, NUL-padded (all NUL in other reports). A name that does not fit is cut, and the
/// report's `step` has [`EXEC_INTERP_TRUNCATED`].
pub const INTERP_SIZE: usize = 128;

/// `newfstatat(2)`, the one call that says what a path is without opening it: the probe
/// opens and reads only regular files. Opening a FIFO would release a writer blocked in its
/// `open` and eat its data; opening a device can have effects of its own (a tty's input, a
/// serial line's DTR, a watchdog). execve refuses those with `EACCES` before opening them
/// (Linux 5.8), and the probe must not bring the opening back. (A process of the container
/// that swaps the path for a FIFO between the stat and the open can still have it opened,
/// non-blocking, for one read: its own FIFO, in its own container.)
#[cfg(target_arch = "x86_64")]
pub const NR_NEWFSTATAT: usize = 262;
/// See the x86_64 one.
#[cfg(target_arch = "aarch64")]
pub const NR_NEWFSTATAT: usize = 79;

/// `struct stat` as `newfstatat` fills it, as 8-byte words (x86_64: 144 bytes; aarch64, the
/// generic layout: 128).
pub const STAT_WORDS: usize = 18;

/// Whether the `struct stat` in `st` is of a regular file: `st_mode` is at byte 24 on
/// x86_64 (after st_dev, st_ino and a 64-bit st_nlink) and at byte 16 in the generic layout
/// of aarch64 (after st_dev and st_ino).
pub fn is_regular(st: &[u64; STAT_WORDS]) -> bool {
    #[cfg(target_arch = "x86_64")]
    let mode = st[3] as u32;
    #[cfg(target_arch = "aarch64")]
    let mode = st[2] as u32;
    mode & 0o170000 == 0o100000
}

/// Whether a probe that found `step` should check that the interpreter in `out` exists: a
/// script with a whole name.
pub fn check_interpreter(step: u32, out: &[u8; INTERP_SIZE]) -> bool {
    step & 0xff == EXEC_SCRIPT && step & EXEC_INTERP_TRUNCATED == 0 && out[0] != 0
}

/// What the first `got` bytes of a file (read into `head`) say it is: [`EXEC_SCRIPT`],
/// [`EXEC_ELF`] or [`EXEC_OTHER`]. For a script, its interpreter is copied to `out` (see
/// [`shebang`]) and [`EXEC_INTERP_TRUNCATED`] may be set. `out` is cleared first.
pub fn classify(head: &[u8; INTERP_SIZE], got: usize, out: &mut [u8; INTERP_SIZE]) -> u32 {
    *out = [0; INTERP_SIZE];
    let got = if got < INTERP_SIZE { got } else { INTERP_SIZE };
    let head = &head[..got];
    if head.len() >= 2 && head[0] == b'#' && head[1] == b'!' {
        EXEC_SCRIPT | shebang(head, got == INTERP_SIZE, out)
    } else if head.len() >= 4 && head[..4] == *b"\x7fELF" {
        EXEC_ELF
    } else {
        EXEC_OTHER
    }
}

/// Copies the interpreter of a `#!` line (`head` starts with `#!`) to `out`: after optional
/// blanks, up to a blank, newline or NUL, as the kernel's binfmt_script reads it. Returns
/// [`EXEC_INTERP_TRUNCATED`] when the name runs to the end of `head` and `more` says the
/// file may go on (the name is then cut), else 0. Never reads past `head` or writes past
/// `out`, and leaves `out` NUL-ended (the name is at most `out.len() - 1` bytes).
pub fn shebang(head: &[u8], more: bool, out: &mut [u8; INTERP_SIZE]) -> u32 {
    let blank = |b: u8| b == b' ' || b == b'\t';
    let mut i = 2;
    while i < head.len() && blank(head[i]) {
        i += 1;
    }
    let mut len = 0;
    while i < head.len() && !blank(head[i]) && head[i] != b'\n' && head[i] != 0 {
        if len < out.len() - 1 {
            out[len] = head[i];
            len += 1;
        }
        i += 1;
    }
    if i == head.len() && more && len > 0 {
        EXEC_INTERP_TRUNCATED
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The syscall number and the `st_mode` offset agree with the C library's, on a regular
    /// file, a directory and a FIFO.
    #[test]
    fn newfstatat_tells_a_regular_file_from_the_rest() {
        assert_eq!(NR_NEWFSTATAT as libc::c_long, libc::SYS_newfstatat);
        let dir = std::env::temp_dir().join(format!("contain-probe-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"#!/bin/sh\n").unwrap();
        let fifo = dir.join("fifo");
        let c =
            |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o755) }, 0);
        let regular = |p: &std::path::Path| {
            let mut st = [0u64; STAT_WORDS];
            // SAFETY: newfstatat into a buffer at least the size of the kernel's struct stat.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_newfstatat,
                    libc::AT_FDCWD,
                    c(p).as_ptr(),
                    st.as_mut_ptr(),
                    0,
                )
            };
            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
            is_regular(&st)
        };
        let seen = (regular(&file), regular(&dir), regular(&fifo));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(seen, (true, false, false));
    }

    fn interp(head: &[u8], more: bool) -> (Vec<u8>, u32) {
        let mut out = [0u8; INTERP_SIZE];
        let flags = shebang(head, more, &mut out);
        let len = out.iter().position(|&b| b == 0).unwrap();
        (out[..len].to_vec(), flags)
    }

    #[test]
    fn a_shebang_names_its_interpreter_within_bounds() {
        assert_eq!(
            interp(b"#!/usr/bin/python3\nprint()", false).0,
            b"/usr/bin/python3"
        );
        assert_eq!(interp(b"#! \t/bin/sh -e\n", false).0, b"/bin/sh");
        assert_eq!(
            interp(b"#!/usr/bin/env python3\n", false).0,
            b"/usr/bin/env"
        );
        assert_eq!(interp(b"#!/bin/sh", false), (b"/bin/sh".to_vec(), 0));
        assert_eq!(interp(b"#!\n", false).0, b"");
        assert_eq!(interp(b"#!/a\0b", false).0, b"/a");
        // A name that fills the buffer read: cut, and said so.
        let mut long = b"#!/".to_vec();
        long.resize(INTERP_SIZE, b'x');
        let (name, flags) = interp(&long, true);
        assert_eq!(name.len(), INTERP_SIZE - 2);
        assert_eq!(flags, EXEC_INTERP_TRUNCATED);
        // The same bytes as the whole file: complete.
        assert_eq!(interp(&long, false).1, 0);
    }

    #[test]
    fn classify_reads_only_what_came() {
        let mut head = [0u8; INTERP_SIZE];
        let mut out = [1u8; INTERP_SIZE];
        head[..4].copy_from_slice(b"\x7fELF");
        assert_eq!(classify(&head, 4, &mut out), EXEC_ELF);
        assert_eq!(out, [0; INTERP_SIZE]);
        assert_eq!(classify(&head, 3, &mut out), EXEC_OTHER);
        head[..7].copy_from_slice(b"#!/x/y\n");
        assert_eq!(classify(&head, 7, &mut out), EXEC_SCRIPT);
        assert_eq!(&out[..5], b"/x/y\0");
        head = [b'x'; INTERP_SIZE];
        head[..3].copy_from_slice(b"#!/");
        let step = classify(&head, INTERP_SIZE, &mut out);
        assert_eq!(step, EXEC_SCRIPT | EXEC_INTERP_TRUNCATED);
        assert_eq!(out[INTERP_SIZE - 1], 0);
    }
}
