//! What this process can learn about itself from `/proc` (and `/sys`): its
//! seccomp mode, the system-wide AIO limits, a device's block size.
//!
//! Read at two moments only: once when the library is loaded (the seccomp
//! mode, see `config`), and when `LIBAIO_RS_DEBUG` explains a failure. Never
//! on a call's normal path. Each reader keeps `errno` as it was.

use core::ffi::CStr;

use crate::sys::process::read_file as read;

/// Parses a decimal number, ignoring surrounding ASCII white space (by hand:
/// `str::parse` would bring UTF-8 checks and Unicode tables into the library).
fn parse_number(bytes: &[u8]) -> Option<u64> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace())?;
    let digits = &bytes[start..=end];
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A small decimal number from a /proc file (a sysctl).
pub(crate) fn number(path: &CStr) -> Option<u64> {
    let mut buf = [0u8; 32];
    parse_number(read(path, &mut buf)?)
}

/// The value of the `Seccomp:` line of a /proc/PID/status text (0 none,
/// 1 strict, 2 filter).
fn seccomp_mode(status: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"Seccomp:";
    status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(KEY))
        .and_then(parse_number)
}

/// This process's seccomp mode (0: none, 1: strict, 2: filter), or None when
/// /proc/self/status cannot be read.
pub(crate) fn seccomp_mode_of_self() -> Option<u64> {
    let mut buf = [0u8; 4096];
    read(c"/proc/self/status", &mut buf).and_then(seccomp_mode)
}

/// Whether this kernel has AIO at all: the fs.aio-* sysctls exist exactly
/// when it was built with CONFIG_AIO. None when /proc is not mounted.
pub(crate) fn kernel_has_aio() -> Option<bool> {
    if number(c"/proc/sys/fs/aio-max-nr").is_some() {
        return Some(true);
    }
    crate::sys::process::exists(c"/proc/self").then_some(false)
}

/// The logical block size of block device `major:minor` (for a partition,
/// its disk's), from sysfs.
pub(crate) fn logical_block_size(major: u32, minor: u32) -> Option<u64> {
    let mut path = [0u8; 96];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        let end = (n + b.len()).min(path.len() - 1);
        path[n..end].copy_from_slice(&b[..end - n]);
        n = end;
    };
    put(b"/sys/dev/block/");
    let mut digits = [0u8; 10];
    put(decimal(major, &mut digits));
    put(b":");
    put(decimal(minor, &mut digits));
    let stem = n;
    for tail in [&b"/queue/logical_block_size"[..], b"/../queue/logical_block_size"] {
        path[stem..].fill(0);
        path[stem..stem + tail.len()].copy_from_slice(tail);
        let p = CStr::from_bytes_until_nul(&path).ok()?;
        if let Some(size) = number(p) {
            return Some(size);
        }
    }
    None
}

/// `v` in decimal, written into the end of `buf`: the digits' slice. For
/// the paths of /proc and /sys files the library builds by hand.
pub(crate) fn decimal(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        let mut b = [0u8; 10];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(259, &mut b), b"259");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }

    #[test]
    fn seccomp_line_is_parsed() {
        let status = b"Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        assert_eq!(seccomp_mode(status), Some(2));
        assert_eq!(seccomp_mode(b"Name:\tx\n"), None);
    }

    #[test]
    fn this_process_is_read() {
        assert!(seccomp_mode_of_self().is_some());
        assert_eq!(kernel_has_aio(), Some(true));
        assert_eq!(parse_number(b" 42\n"), Some(42));
    }

    #[test]
    fn numbers_are_parsed_strictly() {
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"\t65536\n"), Some(65536));
        assert_eq!(parse_number(b"18446744073709551615\n"), Some(u64::MAX));
        assert_eq!(parse_number(b"18446744073709551616"), None);
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b" \n"), None);
        assert_eq!(parse_number(b"-1"), None);
        assert_eq!(parse_number(b"4 2"), None);
        assert_eq!(parse_number(b"42x"), None);
    }
}
