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
LDCONFIG ?= ldconfig

soname = libaio.so.1
libname = $(soname).0.2
t64soname = libaio.so.1t64
t64name = $(t64soname).0.2
B = build
CARGO_TARGET_DIR ?= target
STATICLIB = $(CARGO_TARGET_DIR)/release/libaio_so.a
SRCS = $(shell find src cshim/src -name "*.rs") Makefile Cargo.toml cshim/Cargo.toml build.rs cbindgen.toml

# Every exported name, for -u (pull it from the archive) and for libaio.a.
EXPORTS = $(shell sed -n 's/^[[:space:]]*\(io_[a-z0-9_]*\);/\1/p' libaio.map | sort -u)
VERSIONED = io_getevents@@LIBAIO_0.4 io_cancel@@LIBAIO_0.4 io_queue_wait@@LIBAIO_0.4 \
	io_getevents@LIBAIO_0.1 io_cancel@LIBAIO_0.1 io_queue_wait@LIBAIO_0.1

.PHONY: all install uninstall check deps demo bench header clean fuzz

all: $(B)/$(libname) $(B)/libaio.a $(B)/libaio.pc

$(STATICLIB): $(SRCS)
	LIBAIO_RS_NO_CTESTS=1 $(CARGO) build --release -p libaio-so

# $(call link_so,SONAME): the final link of the shared object named $@.
link_so = $(CC) $(CFLAGS) -shared -fPIC -o $@ -Wl,-soname,$(1) \
		-Wl,--version-script=libaio.map -Wl,--gc-sections -Wl,-z,relro -Wl,-z,now -Wl,-z,nodelete \
		$(addprefix -Wl$(comma)-u$(comma),$(EXPORTS) $(VERSIONED)) \
		$(STATICLIB) $(LDFLAGS)

$(B)/$(libname): $(STATICLIB) libaio.map
	@mkdir -p $(B)
	$(call link_so,$(soname))
	ln -sf $(libname) $(B)/$(soname)
	ln -sf $(libname) $(B)/libaio.so

# The same library under the soname that Debian 13 and Ubuntu 24.04 and later
# give libaio (package libaio1t64): programs built there need libaio.so.1t64.
# Same code and symbol versions; only DT_SONAME differs. Not part of `all`;
# `make install` builds and installs it.
t64: $(B)/$(t64name)

$(B)/$(t64name): $(STATICLIB) libaio.map
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
# `make install prefix=...` must not install the first run's paths.
$(B)/libaio.pc: pkgconfig/libaio.pc.in Makefile FORCE
	@mkdir -p $(B)
	sed -e 's|@prefix@|$(prefix)|g' -e 's|@libdir@|$(libdir)|g' \
	    -e 's|@includedir@|$(includedir)|g' -e 's|@version@|0.3.113|g' $< > $@

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

# Installing into the live system (no DESTDIR) as root: refresh the loader's
# cache now, so that programs load the new libaio.so.1 from a directory that
# ld.so.conf lists (/usr/local/lib on Debian, ahead of the multiarch
# directory) at once, not after whatever runs ldconfig next. libaio's own
# `make install` leaves this to the user. `make uninstall` refreshes it too.
ldconfig_live = if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then $(LDCONFIG); fi

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
# DESTDIR, so nothing outside build/ changes), build a sample program against
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

bench: all
	bench/run.sh

# Differential fuzzing at length (make check runs a short round of the same
# tests/sh/fuzz.sh): FUZZ_SEEDS seeds from FUZZ_START, FUZZ_OPS calls each.
fuzz: all
	FUZZ_SEEDS=$${FUZZ_SEEDS:-5000} LIBAIO_RS_ROOT=$(CURDIR) LIBAIO_RS_BUILD_DIR=$(B) bash tests/sh/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf $(B)
