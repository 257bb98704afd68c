# Builds libaio.so.1.0.2 and libaio.a from the Rust crate, installs them the
# way libaio 0.3.113's `make install` does (same variables), and runs the tests.
#
# Why a final link of our own: rustc gives a cdylib its own version script,
# which cannot be combined with libaio's. So cargo builds a staticlib
# (cshim/) and $(CC) links the shared object with libaio.map, whichever linker
# rustc itself uses.
#
# The default prefix is /usr/local, not libaio's /usr: under /usr, `make
# install` would overwrite files that Debian's libaio1 and libaio-dev own
# (dpkg does not know, and the next upgrade puts them back). To replace the
# system's libaio use the Debian packages (tools/build-debs.sh), or knowingly
# `make install prefix=/usr libdir=/usr/lib/x86_64-linux-gnu`.

PREFIX ?= /usr/local
prefix ?= $(PREFIX)
LIBDIR ?= $(prefix)/lib
libdir ?= $(LIBDIR)
INCLUDEDIR ?= $(prefix)/include
includedir ?= $(INCLUDEDIR)
MANDIR ?= $(prefix)/share/man
mandir ?= $(MANDIR)
pkgconfigdir ?= $(libdir)/pkgconfig

CC ?= cc
CFLAGS ?= -O2 -g
LDFLAGS ?=
CARGO ?= cargo
AR ?= ar
OBJCOPY ?= objcopy
NM ?= nm
LDCONFIG ?= ldconfig

# TARGET=<rust target triple>: the library for another architecture, built
# into build/<triple>/ with Debian's cross toolchain for it (apt-get install
# gcc-<gnu triple>; tools/deps.sh installs them), or with gcc -m32 for i686,
# which an x86_64 machine also runs. CC, AR, OBJCOPY and NM given on the
# command line or in the environment win.
TARGET ?=
TOOLPREFIX_aarch64-unknown-linux-gnu = aarch64-linux-gnu-
TOOLPREFIX_armv7-unknown-linux-gnueabihf = arm-linux-gnueabihf-
TOOLPREFIX_s390x-unknown-linux-gnu = s390x-linux-gnu-
TOOLPREFIX_powerpc64le-unknown-linux-gnu = powerpc64le-linux-gnu-
TOOLPREFIX_riscv64gc-unknown-linux-gnu = riscv64-linux-gnu-
TOOLPREFIX_i686-unknown-linux-gnu =
TARGETCFLAGS_i686-unknown-linux-gnu = -m32
ifneq ($(TARGET),)
tp = $(TOOLPREFIX_$(TARGET))
ifeq ($(origin CC),default)
CC = $(tp)gcc $(TARGETCFLAGS_$(TARGET))
endif
ifeq ($(origin AR),default)
AR = $(tp)ar
endif
ifeq ($(origin OBJCOPY),file)
OBJCOPY = $(tp)objcopy
endif
ifeq ($(origin NM),file)
NM = $(tp)nm
endif
endif

soname = libaio.so.1
libname = $(soname).0.2
t64soname = libaio.so.1t64
t64name = $(t64soname).0.2
CARGO_TARGET_DIR ?= target
ifeq ($(TARGET),)
B = build
STATICLIB = $(CARGO_TARGET_DIR)/release/libaio_so.a
else
B = build/$(TARGET)
STATICLIB = $(CARGO_TARGET_DIR)/$(TARGET)/release/libaio_so.a
CARGO_TARGET_FLAGS = --target $(TARGET)
endif
SRCS = $(shell find src cshim/src -name "*.rs") Makefile Cargo.toml cshim/Cargo.toml build.rs cbindgen.toml

# Every exported name, for -u (pull it from the archive) and for libaio.a.
EXPORTS = $(shell sed -n 's/^[[:space:]]*\(\(io\|libaio_rs\)_[a-z0-9_]*\);/\1/p' libaio.map | sort -u)
# The project's version (libaio's, 0.3.113, stays the ABI's and pkg-config's).
VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
VERSIONED = io_getevents@@LIBAIO_0.4 io_cancel@@LIBAIO_0.4 io_queue_wait@@LIBAIO_0.4 \
	io_getevents@LIBAIO_0.1 io_cancel@LIBAIO_0.1 io_queue_wait@LIBAIO_0.1

.PHONY: all install uninstall check test deps demo bench header clean fuzz help

all: $(B)/$(libname) $(B)/$(t64name) $(B)/libaio.a $(B)/libaio.pc

$(STATICLIB): $(SRCS)
	LIBAIO_RS_NO_CTESTS=1 $(CARGO) build --release -p libaio-so $(CARGO_TARGET_FLAGS)

# $(call link_so,SONAME): the final link of the shared object named $@. With
# a program interpreter and an entry point (on the architectures where the
# staticlib has one: src/capi/mod.rs), running the object itself shows the
# doctor (`./libaio.so.1`, as glibc's libc.so.6 shows its version).
link_so = i=$$(cat $(B)/interp); $(NM) $(STATICLIB) 2>/dev/null | grep -q ' T libaio_rs_entry$$' || i=; $(CC) $(CFLAGS) -shared -fPIC -o $@ -Wl,-soname,$(1) \
		-Wl,--version-script=libaio.map -Wl,--gc-sections -Wl,-z,relro -Wl,-z,now -Wl,-z,nodelete \
		$(addprefix -Wl$(comma)-u$(comma),$(EXPORTS) $(VERSIONED)) \
		$${i:+$(B)/interp.o -Wl,-e,libaio_rs_entry} $(STATICLIB) $(LDFLAGS)

# The program interpreter a program linked by $(CC) gets, in an object of
# its own holding only the .interp section (never in libaio.a, where it
# would end up in programs). Empty where $(CC) links no dynamic program:
# the library is then built without the doctor.
$(B)/interp: Makefile
	@mkdir -p $(B)
	@printf 'int main(void) { return 0; }\n' >$(B)/interp-probe.c
	@if $(CC) $(CFLAGS) -o $(B)/interp-probe $(B)/interp-probe.c $(LDFLAGS) 2>/dev/null && \
	    $(OBJCOPY) -O binary --only-section=.interp $(B)/interp-probe $(B)/interp.bin 2>/dev/null && \
	    [ -s $(B)/interp.bin ]; then tr -d '\000' <$(B)/interp.bin >$@; else : >$@; fi
	@rm -f $(B)/interp-probe $(B)/interp-probe.c $(B)/interp.bin
	@if [ -s $@ ]; then \
	    printf 'const char libaio_rs_interp[] __attribute__((section(".interp"), used, retain)) = "%s";\n' \
	        "$$(cat $@)" >$(B)/interp.c && $(CC) $(CFLAGS) -fPIC -c -o $(B)/interp.o $(B)/interp.c; fi

$(B)/$(libname): $(STATICLIB) libaio.map $(B)/interp
	@mkdir -p $(B)
	$(call link_so,$(soname))
	ln -sf $(libname) $(B)/$(soname)
	ln -sf $(libname) $(B)/libaio.so

# The same library under the soname that Debian 13 and Ubuntu 24.04 and later
# give libaio (package libaio1t64): programs built there need libaio.so.1t64.
# Same code and symbol versions; only DT_SONAME differs. Part of `all`
# (so two installs at once never link it at the same time);
# `make install` builds and installs it.
t64: $(B)/$(t64name)

$(B)/$(t64name): $(STATICLIB) libaio.map $(B)/interp
	@mkdir -p $(B)
	$(call link_so,$(t64soname))
	ln -sf $(t64name) $(B)/$(t64soname)

# One relocatable object holding only what the exports need, with every other
# symbol made local, so a static link sees libaio's names and nothing of Rust's.
$(B)/libaio.a: $(STATICLIB) libaio.map
	@mkdir -p $(B)
	$(CC) -r -nostdlib -Wl,--gc-sections $(addprefix -Wl$(comma)-u$(comma),$(EXPORTS) $(VERSIONED)) \
		-o $(B)/libaio.o $(STATICLIB)
	printf '%s\n' $(EXPORTS) $(VERSIONED) > $(B)/exports.txt
	$(OBJCOPY) --keep-global-symbols=$(B)/exports.txt $(B)/libaio.o
	rm -f $@ && $(AR) rcs $@ $(B)/libaio.o

# Rewritten on every run: it holds prefix/libdir/includedir, and `make` then
# `make install prefix=...` must not install the first run's paths. Written
# aside and renamed: make check runs two installs at once.
$(B)/libaio.pc: pkgconfig/libaio.pc.in Makefile FORCE
	@mkdir -p $(B)
	sed -e 's|@prefix@|$(prefix)|g' -e 's|@libdir@|$(libdir)|g' \
	    -e 's|@includedir@|$(includedir)|g' -e 's|@version@|0.3.113|g' \
	    -e 's|@rs_version@|$(VERSION)|g' $< > $@.$$$$ && mv $@.$$$$ $@

comma := ,

FORCE:

# Also installs the libaio.so.1t64 twin, and the man pages: an alias page,
# a symbolic link in man/ (so that `man -l man/io_prep_pwrite.3` works in the
# repository), becomes a ".so manN/page.N" page, the form man(1) resolves in
# an installed tree.
install: all t64
	install -D -m 644 include/libaio.h $(DESTDIR)$(includedir)/libaio.h
	install -D -m 644 $(B)/libaio.a $(DESTDIR)$(libdir)/libaio.a
	install -D -m 755 $(B)/$(libname) $(DESTDIR)$(libdir)/$(libname)
	ln -sf $(libname) $(DESTDIR)$(libdir)/$(soname)
	ln -sf $(libname) $(DESTDIR)$(libdir)/libaio.so
	$(install_t64)
	install -D -m 644 $(B)/libaio.pc $(DESTDIR)$(pkgconfigdir)/libaio.pc
	if [ -d man ]; then for p in man/*.[37]; do \
		s=$${p##*.}; d=$(DESTDIR)$(mandir)/man$$s/$${p##*/}; \
		install -d $(DESTDIR)$(mandir)/man$$s && rm -f $$d || exit 1; \
		if [ -L $$p ]; then t=$$(readlink $$p); t=$${t##*/}; \
			printf '.so man%s/%s\n' $${t##*.} $$t >$$d && chmod 644 $$d || exit 1; \
		else install -m 644 $$p $$d || exit 1; fi; done; fi
	$(ldconfig_live)

install_t64 = install -D -m 755 $(B)/$(t64name) $(DESTDIR)$(libdir)/$(t64name) && \
	ln -sf $(t64name) $(DESTDIR)$(libdir)/$(t64soname)

# Kept for debian/rules; `install` does it too.
install-t64: t64
	$(install_t64)

# Installing into the live system (no DESTDIR) as root, into a directory the
# loader's cache already covers (/usr/local/lib on Debian, listed in
# ld.so.conf ahead of the multiarch directory): refresh the cache now, so
# programs load the new libaio.so.1 at once, not after whatever runs
# ldconfig next. A private prefix is left alone: the system's cache is not
# rewritten for a tree it does not serve. LDCONFIG=: skips it; libaio's own
# `make install` leaves this to the user. `make uninstall` does the same.
# The directories come from the system's ldconfig itself (-N -X: it lists
# them and writes nothing), whatever LDCONFIG names.
ldconfig_live = if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && \
	{ PATH=$$PATH:/sbin:/usr/sbin ldconfig -v -N -X 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p' | \
	while read -r d; do readlink -f "$$d"; done | grep -qxF "$$(readlink -f $(libdir))"; }; then $(LDCONFIG); fi

uninstall:
	rm -f $(DESTDIR)$(includedir)/libaio.h $(DESTDIR)$(libdir)/libaio.a \
	      $(DESTDIR)$(libdir)/$(libname) $(DESTDIR)$(libdir)/$(soname) \
	      $(DESTDIR)$(libdir)/libaio.so $(DESTDIR)$(pkgconfigdir)/libaio.pc \
	      $(DESTDIR)$(libdir)/$(t64name) $(DESTDIR)$(libdir)/$(t64soname)
	if [ -d man ]; then for p in man/*.[37]; do \
		s=$${p##*.}; rm -f $(DESTDIR)$(mandir)/man$$s/$${p##*/}; done; fi
	$(ldconfig_live)

# Regenerates include/libaio.h from the Rust definitions (a test fails while it is stale).
header:
	LIBAIO_RS_WRITE_HEADER=1 $(CARGO) build -p libaio

# Quick start, step 1: build, `make install` into ./build/demo-root (as
# DESTDIR: nothing is installed on the system; cargo writes its target/ and
# its cache under ~/.cargo, the rest stays in build/), build a sample program against
# that tree with plain -laio and an rpath, as the README shows, and run it: it
# prints the libaio.so.1 that served it, and ldd says the same.
DEMO = $(CURDIR)/$(B)/demo-root
demo: all
	rm -rf $(DEMO) && $(MAKE) --no-print-directory install DESTDIR=$(DEMO) >/dev/null
	$(CC) -o $(B)/demo examples/demo.c -I$(DEMO)$(includedir) \
		-L$(DEMO)$(libdir) -Wl,-rpath,$(DEMO)$(libdir) -laio
	$(B)/demo $(B)/demo.data
	@echo "ldd $(B)/demo:"; ldd $(B)/demo | grep libaio
	@echo "installed tree: $(DEMO)"; find $(DEMO) -type f -o -type l | sed 's|$(DEMO)|  |' | sort

# Quick start, step 2: every test. As root, tools/deps.sh first apt-installs
# the Debian packages the tests need (and enables deb-src for libaio's
# sources); tests/sh/z_deb_install.sh swaps the system's libaio packages for
# ours and back. See the README's Quick start.
check: all
	tools/deps.sh
	tools/check.sh

# The quick tier: unit tests, the header, the safe API, the library's
# settings as programs see them. No root, no network, no Debian libaio.
test: all
	tools/test.sh

bench: all
	bench/run.sh

# Differential fuzzing at length (make check runs a short round of the same
# tests/sh/fuzz.sh): FUZZ_SEEDS seeds from FUZZ_START, FUZZ_OPS calls each.
fuzz: all
	FUZZ_SEEDS=$${FUZZ_SEEDS:-5000} LIBAIO_RS_ROOT=$(CURDIR) LIBAIO_RS_BUILD_DIR=$(B) bash tests/sh/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf $(B)

help:
	@echo 'make [all]        build build/libaio.so.1.0.2, build/libaio.a and build/libaio.pc'
	@echo '                  (cargo writes target/ and fills ~/.cargo; nothing else outside build/)'
	@echo 'make demo         build, install into build/demo-root, run examples/demo.c against it'
	@echo 'make install      install under PREFIX (default /usr/local; DESTDIR, libdir, includedir,'
	@echo '                  mandir as libaio'"'"'s Makefile); as root with no DESTDIR, runs ldconfig'
	@echo '                  when libdir is a directory the loader cache covers (LDCONFIG=: never)'
	@echo 'make uninstall    remove what install put there (same variables)'
	@echo 'make test         the quick tier, under a minute: no root, no network, no Debian libaio'
	@echo 'make check        every test (as root, tools/deps.sh installs what they need first)'
	@echo 'make bench        benchmarks against Debian'"'"'s libaio and the anchors, as ratios'
	@echo 'make fuzz         differential fuzzing at length (FUZZ_SEEDS, FUZZ_START, FUZZ_OPS)'
	@echo 'make header       regenerate include/libaio.h from the Rust sources'
	@echo 'make t64          also build the libaio.so.1t64 twin (Debian 13, Ubuntu 24.04)'
	@echo 'make clean        remove target/ and build/'
	@echo 'Variables: CC, CFLAGS, LDFLAGS, CARGO, AR, OBJCOPY, LDCONFIG, PREFIX/prefix, DESTDIR, B'
	@echo 'Running build/libaio.so.1 itself shows the version, the engines here and the settings.'

