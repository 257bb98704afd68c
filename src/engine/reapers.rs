//! Whether the program reaps through the library: the rule that keeps the
//! fallback from making a program worse than Debian's libaio.
//!
//! A user-space context is a ring of ours that the kernel does not know. A
//! program that reaps with `io_getevents`/`io_pgetevents` from the library,
//! or reads the ring itself (QEMU, fio's `userspace_reap`), works on it. A
//! program that calls the kernel's `io_getevents` system call itself (as
//! MariaDB's InnoDB did, reaping in a thread of its own) gets `-EINVAL`, or
//! `-ENOSYS` where kernel AIO is refused, and aborts; with Debian's libaio it
//! would have been refused at `io_setup` and fallen back to its own I/O.
//!
//! What the library can know is which of its entry points the program's
//! objects import. The rule:
//! - some loaded object imports a reaping entry point (`io_getevents`,
//!   `io_pgetevents`, `io_queue_run`, `io_queue_wait`), or the library is
//!   linked statically into the program (then it cannot tell): the program
//!   reaps through the library, and `auto` falls back to a user-space engine;
//! - none does: the program reaps on its own, by reading the ring or by the
//!   system call, which imports cannot tell apart. `auto` then answers what
//!   Debian's libaio answers (the kernel's refusal), so the program's own
//!   fallback runs. A ring reader can still have a user-space engine by
//!   asking for it (`LIBAIO_RS_ENGINE=io_uring` or `threads`); the library
//!   then says on stderr, once, that a program calling the system call
//!   itself cannot work so.
//!
//! Objects are read as the loader mapped them (`dl_iterate_phdr`): their
//! dynamic section, relocations, symbol and string tables, each access
//! checked to lie inside one of the object's loaded segments.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::mem::size_of;

/// The entry points through which a program reaps.
const REAPERS: [&[u8]; 4] = [
    b"io_getevents",
    b"io_pgetevents",
    b"io_queue_run",
    b"io_queue_wait",
];

#[cfg(target_pointer_width = "64")]
mod elf {
    pub(super) type Phdr = libc::Elf64_Phdr;
    pub(super) type Word = u64;
    pub(super) const SYM_SIZE: usize = 24;
    pub(super) const SHNDX_AT: usize = 6;
    pub(super) fn rel_sym(info: u64) -> usize {
        (info >> 32) as usize
    }
}
#[cfg(target_pointer_width = "32")]
mod elf {
    pub(super) type Phdr = libc::Elf32_Phdr;
    pub(super) type Word = u32;
    pub(super) const SYM_SIZE: usize = 16;
    pub(super) const SHNDX_AT: usize = 14;
    pub(super) fn rel_sym(info: u32) -> usize {
        (info >> 8) as usize
    }
}

const W: usize = size_of::<elf::Word>();

const DT_NULL: usize = 0;
const DT_PLTRELSZ: usize = 2;
const DT_STRTAB: usize = 5;
const DT_SYMTAB: usize = 6;
const DT_RELA: usize = 7;
const DT_RELASZ: usize = 8;
const DT_STRSZ: usize = 10;
const DT_REL: usize = 17;
const DT_RELSZ: usize = 18;
const DT_PLTREL: usize = 20;
const DT_JMPREL: usize = 23;

/// One loaded object, as `dl_iterate_phdr` describes it.
struct Object {
    base: usize,
    phdrs: *const elf::Phdr,
    n: usize,
}

impl Object {
    fn phdr(&self, i: usize) -> elf::Phdr {
        let p = self.phdrs.wrapping_add(i);
        // SAFETY: i < n, an entry of the loader's program-header table of
        // this object.
        unsafe { p.read() }
    }

    /// Whether `len` bytes at `addr` lie inside one loaded segment.
    fn mapped(&self, addr: usize, len: usize) -> bool {
        (0..self.n).map(|i| self.phdr(i)).any(|p| {
            let start = self.base.wrapping_add(p.p_vaddr as usize);
            p.p_type == libc::PT_LOAD
                && addr >= start
                && addr
                    .checked_add(len)
                    .is_some_and(|end| end <= start.wrapping_add(p.p_memsz as usize))
        })
    }

    fn word(&self, addr: usize) -> Option<usize> {
        if !self.mapped(addr, W) {
            return None;
        }
        // SAFETY: inside a loaded segment (checked); unaligned-safe read.
        Some(unsafe { (addr as *const elf::Word).read_unaligned() } as usize)
    }

    /// A table address from the dynamic section: relocated in place by the
    /// loader on most architectures, not on others.
    fn at(&self, d_ptr: usize) -> usize {
        if d_ptr < self.base {
            d_ptr.wrapping_add(self.base)
        } else {
            d_ptr
        }
    }

    fn contains_code(&self, addr: usize) -> bool {
        self.mapped(addr, 1)
    }

    /// Whether the object imports one of [`REAPERS`] (an undefined symbol of
    /// that name used by a relocation).
    fn imports_a_reaper(&self) -> bool {
        let Some(dynamic) = (0..self.n)
            .map(|i| self.phdr(i))
            .find(|p| p.p_type == libc::PT_DYNAMIC)
        else {
            return false;
        };
        let mut d = [0usize; 24];
        let mut at = self.base.wrapping_add(dynamic.p_vaddr as usize);
        for _ in 0..4096 {
            let (Some(tag), Some(val)) = (self.word(at), self.word(at + W)) else {
                return false;
            };
            if tag == DT_NULL {
                break;
            }
            if tag < d.len() {
                d[tag] = val;
            }
            at += 2 * W;
        }
        let (symtab, strtab, strsz) = (self.at(d[DT_SYMTAB]), self.at(d[DT_STRTAB]), d[DT_STRSZ]);
        if d[DT_SYMTAB] == 0 || d[DT_STRTAB] == 0 {
            return false;
        }
        let plt_entry = if d[DT_PLTREL] == DT_RELA { 3 * W } else { 2 * W };
        let tables = [
            (d[DT_JMPREL], d[DT_PLTRELSZ], plt_entry),
            (d[DT_RELA], d[DT_RELASZ], 3 * W),
            (d[DT_REL], d[DT_RELSZ], 2 * W),
        ];
        tables.iter().any(|&(ptr, size, entry)| {
            ptr != 0
                && (0..size / entry).any(|i| {
                    let Some(info) = self.word(self.at(ptr) + i * entry + W) else {
                        return false;
                    };
                    let sym = elf::rel_sym(info as elf::Word);
                    sym != 0 && self.undefined_reaper(symtab + sym * elf::SYM_SIZE, strtab, strsz)
                })
        })
    }

    fn undefined_reaper(&self, sym: usize, strtab: usize, strsz: usize) -> bool {
        if !self.mapped(sym, elf::SYM_SIZE) {
            return false;
        }
        // SAFETY: inside a loaded segment (checked).
        let name_off = unsafe { (sym as *const u32).read_unaligned() } as usize;
        // SAFETY: as above.
        let shndx = unsafe { ((sym + elf::SHNDX_AT) as *const u16).read_unaligned() };
        if shndx != 0 || name_off >= strsz {
            return false; // defined here, or a name out of the table
        }
        REAPERS.iter().any(|r| {
            let at = strtab + name_off;
            self.mapped(at, r.len() + 1) && {
                // SAFETY: r.len() + 1 bytes inside a loaded segment (checked).
                let s = unsafe { core::slice::from_raw_parts(at as *const u8, r.len() + 1) };
                s[..r.len()] == **r && s[r.len()] == 0
            }
        })
    }
}

struct Search {
    me: usize,
    found: bool,
    statically: bool,
}

unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut c_void) -> c_int {
    // SAFETY: the loader's description of one object, valid for this call.
    let info = unsafe { &*info };
    // SAFETY: our Search, passed through dl_iterate_phdr.
    let s = unsafe { &mut *data.cast::<Search>() };
    let obj = Object {
        base: info.dlpi_addr as usize,
        phdrs: info.dlpi_phdr,
        n: info.dlpi_phnum as usize,
    };
    let name: &[u8] = if info.dlpi_name.is_null() {
        b""
    } else {
        // SAFETY: the loader's NUL-terminated name.
        unsafe { CStr::from_ptr(info.dlpi_name as *const c_char) }.to_bytes()
    };
    if obj.contains_code(s.me) {
        // The library itself: linked into the program when that is the
        // main program (no name).
        s.statically |= name.is_empty();
        return 0;
    }
    if obj.imports_a_reaper() {
        s.found = true;
        return 1;
    }
    0
}

/// Whether the program reaps through the library (see the module's rule).
pub(crate) fn through_library() -> bool {
    let mut s = Search {
        me: through_library as *const () as usize,
        found: false,
        statically: false,
    };
    // SAFETY: our callback and its data, alive for the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut s).cast()) };
    s.found || s.statically
}
