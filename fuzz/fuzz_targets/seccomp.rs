//! Fuzzes the seccomp profile compiler (`SeccompProfile::compile`, what an OCI config's
//! `linux.seccomp` becomes): for profiles built from the input — default action and errno,
//! architectures, rules naming known and unknown syscalls with actions, errnos and argument
//! conditions — compiling must never panic, and for every call probed the compiled program's
//! decision (run by a classic BPF interpreter) must equal what the profile means, computed
//! from the profile directly (`contain::security::seccomp_reference`, the same reference the
//! crate's proptests use). Probes: each named syscall's number in each ABI, with argument
//! values at and around each condition's, and calls from the rest of the input.
#![no_main]

use contain::security::seccomp_reference::{
    meaning, numbers, run, syscall_names, ARCH_I386, ARCH_X86_64, X32_BIT,
};
use contain::security::{
    SeccompAction, SeccompArch, SeccompArg, SeccompOp, SeccompProfile, SeccompRule,
};
use libfuzzer_sys::fuzz_target;

/// The input as a stream of numbers; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    /// A value of interest to a comparison: small, around the 32-bit boundary, or any.
    fn value(&mut self) -> u64 {
        match self.u8() % 6 {
            0 => u64::from(self.u8()),
            1 => 0xffff_ffff - u64::from(self.u8() % 4),
            2 => 0x1_0000_0000 + u64::from(self.u8() % 4),
            3 => u64::MAX - u64::from(self.u8() % 4),
            4 => u64::from(self.u32()),
            _ => self.u64(),
        }
    }
}

const ACTIONS: [SeccompAction; 8] = [
    SeccompAction::KillThread,
    SeccompAction::KillProcess,
    SeccompAction::Trap,
    SeccompAction::Errno,
    SeccompAction::Trace,
    SeccompAction::Allow,
    SeccompAction::Log,
    SeccompAction::Notify,
];
const OPS: [SeccompOp; 7] = [
    SeccompOp::NotEqual,
    SeccompOp::LessThan,
    SeccompOp::LessOrEqual,
    SeccompOp::Equal,
    SeccompOp::GreaterOrEqual,
    SeccompOp::GreaterThan,
    SeccompOp::MaskedEqual,
];

fn profile(input: &mut Input, names: &[&'static str]) -> SeccompProfile {
    let mut p = SeccompProfile::new(ACTIONS[usize::from(input.u8()) % ACTIONS.len()]);
    // Unknown names (no_such_syscall below) are refused unless skipped: mostly skipped, so
    // that the program is compiled and checked; sometimes not, for the refusal. (This byte
    // follows the default action's: older corpus inputs are read shifted from here on.)
    p.skip_unknown_syscalls = input.u8() % 8 != 7;
    if input.u8() % 2 == 1 {
        p.default_errno_ret = Some(u32::from(input.u8()));
    }
    let arches = input.u8();
    for (bit, arch) in [SeccompArch::X86_64, SeccompArch::X86, SeccompArch::X32]
        .into_iter()
        .enumerate()
    {
        if arches & (1 << bit) != 0 {
            p.architectures.push(arch);
        }
    }
    for _ in 0..input.u8() % 12 {
        let mut rule_names = Vec::new();
        for _ in 0..1 + input.u8() % 3 {
            let pick = usize::from(input.u16());
            rule_names.push(match names.get(pick % (names.len() + 1)) {
                Some(name) => name.to_string(),
                None => "no_such_syscall".to_string(),
            });
        }
        let mut rule =
            SeccompRule::new(rule_names, ACTIONS[usize::from(input.u8()) % ACTIONS.len()]);
        if input.u8() % 2 == 1 {
            rule = rule.errno(u32::from(input.u8()));
        }
        for _ in 0..input.u8() % 4 {
            let index = u32::from(input.u8() % 7); // 6: out of range, refused
            let op = OPS[usize::from(input.u8()) % OPS.len()];
            let arg = SeccompArg {
                index,
                value: input.value(),
                value_two: input.value(),
                op,
            };
            rule = rule.arg(arg);
        }
        p.syscalls.push(rule);
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let names: Vec<&'static str> = syscall_names().collect();
    let mut input = Input(data);
    let p = profile(&mut input, &names);
    let compiled = p.compile();
    if !p.skip_unknown_syscalls && !p.unknown_names().is_empty() {
        // Refused, naming the first unknown name (unless another check refused it first).
        match &compiled {
            Err(contain::Error::Config { reason, .. })
                if reason.contains("unknown system call") =>
            {
                assert!(reason.contains(p.unknown_names()[0]), "{reason}");
            }
            Err(contain::Error::Config { .. } | contain::Error::Unsupported { .. }) => {}
            other => panic!(
                "unknown names {:?} not refused: {other:?}",
                p.unknown_names()
            ),
        }
        return;
    }
    let Ok(program) = compiled else { return };
    assert!(
        !program.is_empty() && program.len() <= 4096,
        "{} instructions",
        program.len()
    );
    let check = |arch: u32, nr: u32, args: [u64; 6]| {
        assert_eq!(
            run(&program, nr, arch, args),
            meaning(&p, arch, nr, args),
            "arch {arch:#x} nr {nr:#x} args {args:x?}\nprofile {p:?}"
        );
    };
    for rule in &p.syscalls {
        let Some(nrs) = rule.names.iter().find_map(|n| numbers(n)) else {
            continue;
        };
        let calls = [
            (ARCH_X86_64, nrs[0]),
            (ARCH_I386, nrs[1]),
            (ARCH_X86_64, nrs[2] | X32_BIT),
        ];
        for (arch, nr) in calls
            .into_iter()
            .filter(|(_, nr)| *nr != u32::MAX && *nr != u32::MAX | X32_BIT)
        {
            check(arch, nr, [0; 6]);
            for a in &rule.args {
                let Some(i) = (a.index < 6).then_some(a.index as usize) else {
                    continue;
                };
                for v in [
                    a.value,
                    a.value.wrapping_add(1),
                    a.value.wrapping_sub(1),
                    a.value_two,
                    a.value & a.value_two,
                ] {
                    let mut args = [0u64; 6];
                    args[i] = v;
                    check(arch, nr, args);
                    args.iter_mut().for_each(|x| *x = v);
                    check(arch, nr, args);
                }
            }
        }
    }
    // Calls from what is left: any arch of interest, any number, any arguments.
    while !input.0.is_empty() {
        let arch = match input.u8() % 4 {
            0 => ARCH_X86_64,
            1 => ARCH_I386,
            2 => 0xc000_00b7, // AUDIT_ARCH_AARCH64
            _ => input.u32(),
        };
        let nr = match input.u8() % 3 {
            0 => u32::from(input.u16() % 512),
            1 => X32_BIT | u32::from(input.u16() % 1024),
            _ => input.u32(),
        };
        let args = [
            input.value(),
            input.value(),
            input.value(),
            input.value(),
            input.value(),
            input.value(),
        ];
        check(arch, nr, args);
    }
});
