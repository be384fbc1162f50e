//! ELF header check for per-platform artifacts: an arm64 image must not get an x86-64 binary.

use crate::platform::Platform;

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// Checks that `head` (the first bytes of a file, at least 20) is a 64-bit little-endian ELF for
/// the platform's architecture. The message names what was found.
pub fn check_platform(head: &[u8], platform: &Platform) -> Result<(), String> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Err("is not an ELF executable".into());
    }
    if head[4] != 2 {
        return Err("is a 32-bit ELF; a 64-bit build is needed".into());
    }
    if head[5] != 1 {
        return Err("is a big-endian ELF".into());
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
        let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        h.resize(18, 0);
        h.extend(machine.to_le_bytes());
        h.resize(64, 0);
        h
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
