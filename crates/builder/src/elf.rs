//! ELF header check for per-platform artifacts: an arm64 image must not get an x86-64 binary.

use crate::platform::Platform;

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const ET_CORE: u16 = 4;

/// Checks that `head` (the first bytes of a file, at least 20) is a 64-bit little-endian ELF for
/// the platform's architecture. The message names what was found.
pub(crate) fn check_platform(head: &[u8], platform: &Platform) -> Result<(), String> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Err("is not an ELF executable".into());
    }
    if head[4] != 2 {
        return Err("is a 32-bit ELF; a 64-bit build is needed".into());
    }
    if head[5] != 1 {
        return Err("is a big-endian ELF".into());
    }
    // e_type: an object file or a core dump has the right machine but cannot run. ET_DYN covers
    // static-pie and PIE executables (and shared libraries, which a header cannot tell apart).
    match u16::from_le_bytes([head[16], head[17]]) {
        ET_EXEC | ET_DYN => {}
        ET_REL => return Err("is an ELF object file (.o), not an executable".into()),
        ET_CORE => return Err("is an ELF core dump, not an executable".into()),
        other => return Err(format!("is an ELF of unknown type {other}, not an executable")),
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    let found = match machine {
        EM_X86_64 => "x86-64 (linux/amd64)".to_owned(),
        EM_AARCH64 => "aarch64 (linux/arm64)".to_owned(),
        other => format!("ELF machine {other}"),
    };
    let wanted = match platform.arch.as_str() {
        "amd64" => EM_X86_64,
        "arm64" => EM_AARCH64,
        other => return Err(format!("no ELF check is known for architecture `{other}`")),
    };
    if machine != wanted {
        return Err(format!("is an {found} executable, but it goes into the {platform} image"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        elf_typed(ET_EXEC, machine)
    }

    fn elf_typed(e_type: u16, machine: u16) -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        h.resize(16, 0);
        h.extend(e_type.to_le_bytes());
        h.extend(machine.to_le_bytes());
        h.resize(64, 0);
        h
    }

    #[test]
    fn every_refusal_names_what_the_file_is() {
        let arm = Platform::parse("linux/arm64").unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        let check = |head: &[u8], p: &Platform, want: &str| {
            let e = check_platform(head, p).unwrap_err();
            assert!(e.contains(want), "{e} (wanted `{want}`)");
        };
        // arm64 image with an x86-64 binary, and the reverse.
        check(&elf(EM_X86_64), &arm, "is an x86-64 (linux/amd64) executable, but it goes into the linux/arm64 image");
        check(&elf(EM_AARCH64), &amd, "is an aarch64 (linux/arm64) executable, but it goes into the linux/amd64 image");
        check(&elf(40), &arm, "ELF machine 40");
        check(&elf(EM_AARCH64)[..19], &arm, "not an ELF");
        check(b"", &arm, "not an ELF");
        let mut be = elf(EM_AARCH64);
        be[5] = 2;
        check(&be, &arm, "big-endian");
        check(&elf_typed(ET_REL, EM_AARCH64), &arm, "object file");
        check(&elf_typed(ET_CORE, EM_AARCH64), &arm, "core dump");
        check(&elf(EM_AARCH64), &Platform::parse("linux/riscv64").unwrap(), "no ELF check is known for architecture `riscv64`");
        // static-pie executables are ET_DYN; arm64/v8 is still arm64.
        assert!(check_platform(&elf_typed(ET_DYN, EM_AARCH64), &arm).is_ok());
        assert!(check_platform(&elf(EM_AARCH64), &Platform::parse("linux/arm64/v8").unwrap()).is_ok());
    }

    #[test]
    fn machine_must_match_platform() {
        let arm = Platform::parse("linux/arm64").unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(check_platform(&elf(EM_AARCH64), &arm).is_ok());
        assert!(check_platform(&elf(EM_X86_64), &amd).is_ok());
        let e = check_platform(&elf(EM_X86_64), &arm).unwrap_err();
        assert!(e.contains("x86-64") && e.contains("linux/arm64"), "{e}");
        assert!(check_platform(b"#!/bin/sh\necho hi\n....", &arm).unwrap_err().contains("not an ELF"));
        let mut b32 = elf(EM_X86_64);
        b32[4] = 1;
        assert!(check_platform(&b32, &amd).unwrap_err().contains("32-bit"));
    }

    #[test]
    fn the_running_test_binary_is_accepted_for_its_own_platform() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let p = if cfg!(target_arch = "x86_64") { "linux/amd64" } else { "linux/arm64" };
        assert!(check_platform(&exe[..64], &Platform::parse(p).unwrap()).is_ok());
    }
}
