# Builds libaio.so.1.0.2 and libaio.a from the Rust crate, installs them the
# way libaio 0.3.113's `make install` does, and runs the tests.
#
# Why a final link of our own: rustc gives a cdylib its own version script,
# which cannot be combined with libaio's. So cargo builds a staticlib
# (cshim/) and $(CC) links the shared object with libaio.map, whichever linker
# rustc itself uses.

PREFIX ?= /usr
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

soname = libaio.so.1
libname = $(soname).0.2
t64soname = libaio.so.1t64
t64name = $(t64soname).0.2
B = build
CARGO_TARGET_DIR ?= target
STATICLIB = $(CARGO_TARGET_DIR)/release/libaio_so.a
SRCS = $(wildcard src/*.rs src/capi/*.rs cshim/src/*.rs) Cargo.toml cshim/Cargo.toml build.rs cbindgen.toml

# Every exported name, for -u (pull it from the archive) and for libaio.a.
EXPORTS = $(shell sed -n 's/^[[:space:]]*\(io_[a-z0-9_]*\);/\1/p' libaio.map | sort -u)
VERSIONED = io_getevents@@LIBAIO_0.4 io_cancel@@LIBAIO_0.4 io_queue_wait@@LIBAIO_0.4 \
	io_getevents@LIBAIO_0.1 io_cancel@LIBAIO_0.1 io_queue_wait@LIBAIO_0.1

.PHONY: all install uninstall check deps demo bench header clean

all: $(B)/$(libname) $(B)/libaio.a $(B)/libaio.pc

$(STATICLIB): $(SRCS)
	LIBAIO_RS_NO_CTESTS=1 $(CARGO) build --release -p libaio-so

# $(call link_so,SONAME): the final link of the shared object named $@.
link_so = $(CC) $(CFLAGS) -shared -fPIC -o $@ -Wl,-soname,$(1) \
		-Wl,--version-script=libaio.map -Wl,--gc-sections -Wl,-z,relro -Wl,-z,now \
		$(addprefix -Wl$(comma)-u$(comma),$(EXPORTS) $(VERSIONED)) \
		$(STATICLIB) $(LDFLAGS)

$(B)/$(libname): $(STATICLIB) libaio.map
	@mkdir -p $(B)
	$(call link_so,$(soname))
	ln -sf $(libname) $(B)/$(soname)
	ln -sf $(libname) $(B)/libaio.so

# The same library under the soname that Debian 13 and Ubuntu 24.04 and later
# give libaio (package libaio1t64): programs built there need libaio.so.1t64.
# Same code and symbol versions; only DT_SONAME differs. Not part of `all`.
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

install: all
	install -D -m 644 include/libaio.h $(DESTDIR)$(includedir)/libaio.h
	install -D -m 644 $(B)/libaio.a $(DESTDIR)$(libdir)/libaio.a
	install -D -m 755 $(B)/$(libname) $(DESTDIR)$(libdir)/$(libname)
	ln -sf $(libname) $(DESTDIR)$(libdir)/$(soname)
	ln -sf $(libname) $(DESTDIR)$(libdir)/libaio.so
	install -D -m 644 $(B)/libaio.pc $(DESTDIR)$(pkgconfigdir)/libaio.pc
	if [ -d man ]; then for p in man/*.[37]; do \
		s=$${p##*.}; install -D -m 644 $$p $(DESTDIR)$(mandir)/man$$s/$${p##*/}; done; fi

# The libaio.so.1t64 twin, beside the libaio.so.1 that `install` puts there.
install-t64: t64
	install -D -m 755 $(B)/$(t64name) $(DESTDIR)$(libdir)/$(t64name)
	ln -sf $(t64name) $(DESTDIR)$(libdir)/$(t64soname)

uninstall:
	rm -f $(DESTDIR)$(includedir)/libaio.h $(DESTDIR)$(libdir)/libaio.a \
	      $(DESTDIR)$(libdir)/$(libname) $(DESTDIR)$(libdir)/$(soname) \
	      $(DESTDIR)$(libdir)/libaio.so $(DESTDIR)$(pkgconfigdir)/libaio.pc \
	      $(DESTDIR)$(libdir)/$(t64name) $(DESTDIR)$(libdir)/$(t64soname)
	if [ -d man ]; then for p in man/*.[37]; do \
		s=$${p##*.}; rm -f $(DESTDIR)$(mandir)/man$$s/$${p##*/}; done; fi

# Regenerates include/libaio.h from the Rust definitions (a test fails while it is stale).
header:
	LIBAIO_RS_WRITE_HEADER=1 $(CARGO) build -p libaio

# Quick start, step 1: build, install into ./build/demo-root, build a sample
# program there with plain `gcc demo.c -laio`, and run it on our library.
DEMO = $(CURDIR)/$(B)/demo-root
demo: all
	rm -rf $(DEMO) && $(MAKE) --no-print-directory install DESTDIR=$(DEMO) PREFIX=/usr >/dev/null
	$(CC) -o $(B)/demo examples/demo.c -I$(DEMO)/usr/include -L$(DEMO)/usr/lib -laio
	LD_LIBRARY_PATH=$(DEMO)/usr/lib $(B)/demo $(B)/demo.data
	@echo "installed tree: $(DEMO)"; find $(DEMO) -type f -o -type l | sed 's|$(DEMO)|  |' | sort

# Quick start, step 2: every test (installs the Debian packages they need when run as root).
check: all
	tools/deps.sh
	tools/check.sh

bench: all
	bench/run.sh

clean:
	$(CARGO) clean
	rm -rf $(B)
