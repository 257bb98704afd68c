#!/usr/bin/env bash
# What the library tells its user about its settings and itself:
#   1. every LIBAIO_RS_* variable: each accepted value is silent; each
#      malformed one (wrong case, near misses, the empty string where it is
#      not a value) gives exactly one line on stderr, without
#      LIBAIO_RS_DEBUG, naming the variable, the value and the accepted
#      values, and the library goes on as documented (LIBAIO_RS_ENGINE:
#      auto; DEBUG: on; REAP: on; FALLBACK_EAGAIN: off), checked by what the
#      program gets (io_context_engine, the banner); an unknown LIBAIO_RS_
#      name gets its line too;
#   2. the debug banner names the program and pid and what new contexts get
#      for each engine setting, and io_context_engine agrees with it;
#      libaio_rs_version is the crate's version; io_context_engine is NULL
#      for a destroyed or invented handle; errno untouched; the warnings
#      come even when a program's constructor calls into libaio.a before the
#      library's runs; io_context_engine racing two user-space reapers
#      delivers every completion once;
#   3. the Rust API: Engine::Auto follows LIBAIO_RS_ENGINE, as io_setup does
#      (copy_direct prints the engine it got);
#   4. the doctor: running build/libaio.so.1 prints the version, the three
#      engines, what auto picks, the settings in force; under a seccomp
#      filter refusing kernel AIO (and io_uring), it says so and picks the
#      next engine, as io_setup then does;
#   5. `make help` lists the targets.
set -eu
. "$(dirname "$0")/lib/common.sh"

require_cmd gcc gcc
[ -e "$BUILD/libaio.so.1" ] || fail "$BUILD/libaio.so.1 is missing: run make first"
gcc -Wall -Wextra -Werror -O1 -I"$ROOT/include" "$ROOT/tests/c/engine_of.c" \
	-L"$BUILD" -laio -o "$TMP/engine_of" 2>"$TMP/cc.log" || fail_with_log "$TMP/cc.log" "cannot build engine_of"
gcc -Wall -Wextra -Werror -O1 "$ROOT/tests/c/seccomp_noaio.c" -o "$TMP/seccomp_noaio" 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "cannot build seccomp_noaio"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)

# run TAG VAR=VALUE...: engine_of with exactly those LIBAIO_RS_* variables;
# stdout in TAG.out, stderr in TAG.err.
run() {
	local tag=$1
	shift
	env -u LIBAIO_RS_ENGINE -u LIBAIO_RS_DEBUG -u LIBAIO_RS_REAP -u LIBAIO_RS_FALLBACK_EAGAIN \
		LD_LIBRARY_PATH="$BUILD" "$@" "$TMP/engine_of" >"$TMP/$tag.out" 2>"$TMP/$tag.err" ||
		fail_with_log "$TMP/$tag.err" "$tag: engine_of failed"
	grep -qx "version $VERSION" "$TMP/$tag.out" || fail_with_log "$TMP/$tag.out" "$tag: libaio_rs_version is not $VERSION"
	grep -qx "destroyed (null)" "$TMP/$tag.out" || fail_with_log "$TMP/$tag.out" "$tag: a destroyed context still has an engine"
	grep -qx "bogus (null)" "$TMP/$tag.out" || fail_with_log "$TMP/$tag.out" "$tag: an invented handle has an engine"
}
engine_is() { grep -qx "engine $2" "$TMP/$1.out" || fail_with_log "$TMP/$1.out" "$1: the context's engine is not $2"; }
silent() { [ ! -s "$TMP/$1.err" ] || fail_with_log "$TMP/$1.err" "$1: a valid setting was reported"; }
# one_warning TAG VAR VALUE ACCEPTED: exactly one line, naming all three.
one_warning() {
	local tag=$1 var=$2 value=$3 accepted=$4
	local want="libaio: $var=$value: not a value of this variable (it takes $accepted); going on as if it were "
	[ "$(grep -c '' "$TMP/$tag.err")" -eq 1 ] || fail_with_log "$TMP/$tag.err" "$tag: expected exactly one line on stderr"
	grep -qF -- "$want" "$TMP/$tag.err" || fail_with_log "$TMP/$tag.err" "$tag: the line does not name $var, '$value' and the accepted values"
}

# --- 1. The variables.
ENGINES="auto, kernel, io_uring, threads"
for v in auto kernel io_uring threads; do
	run "engine-$v" LIBAIO_RS_ENGINE=$v
	silent "engine-$v"
	case $v in auto) engine_is "engine-$v" kernel ;; *) engine_is "engine-$v" "$v" ;; esac
done
for v in uring io-uring iouring IO_URING THREADS thread Kernel bogus ""; do
	run "engine-bad-$v" "LIBAIO_RS_ENGINE=$v"
	one_warning "engine-bad-$v" LIBAIO_RS_ENGINE "$v" "$ENGINES"
	grep -q "going on as if it were auto" "$TMP/engine-bad-$v.err" || fail "LIBAIO_RS_ENGINE=$v: not auto"
	engine_is "engine-bad-$v" kernel
done
grep -qF "(did you mean io_uring?)" "$TMP/engine-bad-uring.err" || fail_with_log "$TMP/engine-bad-uring.err" "uring: no suggestion"
grep -qF "(did you mean threads?)" "$TMP/engine-bad-thread.err" || fail_with_log "$TMP/engine-bad-thread.err" "thread: no suggestion"
note "LIBAIO_RS_ENGINE: 4 values silent; 9 mistakes, one line each, auto used:"
sed 's/^/    /' "$TMP/engine-bad-uring.err" "$TMP/engine-bad-.err"

for v in 1 on yes 0 off no ""; do
	run "debug-$v" "LIBAIO_RS_DEBUG=$v"
	case $v in
	1 | on | yes) grep -q "^libaio: libaio-rs $VERSION in engine_of\[" "$TMP/debug-$v.err" || fail "LIBAIO_RS_DEBUG=$v: no banner" ;;
	*) silent "debug-$v" ;;
	esac
done
for v in 2 true verbose ON; do
	run "debug-bad-$v" "LIBAIO_RS_DEBUG=$v"
	# Debugging is on: the banner follows the warning; one_warning judges the warning.
	mv "$TMP/debug-bad-$v.err" "$TMP/debug-bad-$v.all"
	grep -F "LIBAIO_RS_DEBUG=" "$TMP/debug-bad-$v.all" >"$TMP/debug-bad-$v.err" || true
	one_warning "debug-bad-$v" LIBAIO_RS_DEBUG "$v" "1, on, yes; 0, off, no or empty"
	grep -q "^libaio: libaio-rs $VERSION in engine_of\[" "$TMP/debug-bad-$v.all" || fail "LIBAIO_RS_DEBUG=$v: debugging not on"
done
note "LIBAIO_RS_DEBUG: 7 values as documented; 4 mistakes, one line each, debugging on"

for v in 1 on yes 0 off no; do
	run "reap-$v" "LIBAIO_RS_REAP=$v" LIBAIO_RS_DEBUG=1
	case $v in
	1 | on | yes) grep -q "kernel AIO completions reaped from the ring in user space when ready$" "$TMP/reap-$v.err" ;;
	*) grep -q "kernel AIO completions reaped through the kernel (LIBAIO_RS_REAP=0)$" "$TMP/reap-$v.err" ;;
	esac || fail_with_log "$TMP/reap-$v.err" "LIBAIO_RS_REAP=$v: the banner does not say what it should"
	[ "$(grep -c 'not a value' "$TMP/reap-$v.err")" -eq 0 ] || fail "LIBAIO_RS_REAP=$v reported"
done
for v in "" maybe NO 2; do
	run "reap-bad-$v" "LIBAIO_RS_REAP=$v"
	one_warning "reap-bad-$v" LIBAIO_RS_REAP "$v" "1, on, yes; 0, off, no"
	run "reap-bad-dbg-$v" "LIBAIO_RS_REAP=$v" LIBAIO_RS_DEBUG=1
	grep -q "kernel AIO completions reaped from the ring in user space when ready$" "$TMP/reap-bad-dbg-$v.err" ||
		fail_with_log "$TMP/reap-bad-dbg-$v.err" "LIBAIO_RS_REAP=$v: not on"
done
note "LIBAIO_RS_REAP: 6 values as documented; 4 mistakes, one line each, reaping on"

for v in 1 on yes 0 off no ""; do
	run "eagain-$v" "LIBAIO_RS_FALLBACK_EAGAIN=$v" LIBAIO_RS_DEBUG=1
	case $v in
	1 | on | yes) grep -q "or EAGAIN (LIBAIO_RS_FALLBACK_EAGAIN=1)" "$TMP/eagain-$v.err" ;;
	*) ! grep -q "EAGAIN" "$TMP/eagain-$v.err" ;;
	esac || fail_with_log "$TMP/eagain-$v.err" "LIBAIO_RS_FALLBACK_EAGAIN=$v: the banner does not say what it should"
done
for v in 2 true maybe; do
	run "eagain-bad-$v" "LIBAIO_RS_FALLBACK_EAGAIN=$v"
	one_warning "eagain-bad-$v" LIBAIO_RS_FALLBACK_EAGAIN "$v" "1, on, yes; 0, off, no or empty"
	grep -q "going on as if it were off" "$TMP/eagain-bad-$v.err" || fail "LIBAIO_RS_FALLBACK_EAGAIN=$v: not off"
done
note "LIBAIO_RS_FALLBACK_EAGAIN: 7 values as documented; 3 mistakes, one line each, off"

run unknown LIBAIO_RS_ENGNIE=threads LIBAIO_RS_ENGINE=threads
[ "$(grep -c '' "$TMP/unknown.err")" -eq 1 ] &&
	grep -qx "libaio: LIBAIO_RS_ENGNIE: not a variable of this library, ignored (did you mean LIBAIO_RS_ENGINE?)" "$TMP/unknown.err" ||
	fail_with_log "$TMP/unknown.err" "a misspelled LIBAIO_RS_ name is not reported in one line"
engine_is unknown threads
note "a misspelled name: $(cat "$TMP/unknown.err")"
# Other LIBAIO_RS_ names (this project's own build and test variables) are
# not the library's business: no line.
run others LIBAIO_RS_ROOT=/x LIBAIO_RS_REFERENCE=/y LIBAIO_RS_ENGINE_SUITES=fio
silent others

# --- 2. The banner, for each setting, and the engine the context got.
banner_is() {
	local tag=$1 want=$2
	head -n 1 "$TMP/$tag.err" >"$TMP/$tag.banner"
	grep -Eq "^libaio: libaio-rs $VERSION in engine_of\[[0-9]+\], loaded from $BUILD/libaio.so.1: new contexts: " "$TMP/$tag.banner" ||
		fail_with_log "$TMP/$tag.banner" "$tag: the banner does not name version, program, pid and library"
	grep -qF -- "$want" "$TMP/$tag.banner" || fail_with_log "$TMP/$tag.banner" "$tag: the banner does not say '$want'"
}
run b-unset LIBAIO_RS_DEBUG=1
banner_is b-unset "new contexts: kernel AIO (LIBAIO_RS_ENGINE unset: auto); where io_setup is refused with ENOSYS or EPERM, the io_uring engine, or the thread engine where io_uring is refused too (this program reaps through the library)"
engine_is b-unset kernel
run b-kernel LIBAIO_RS_DEBUG=1 LIBAIO_RS_ENGINE=kernel
banner_is b-kernel "new contexts: kernel AIO only, with libaio's answers and no fallback (LIBAIO_RS_ENGINE=kernel)"
engine_is b-kernel kernel
run b-threads LIBAIO_RS_DEBUG=1 LIBAIO_RS_ENGINE=threads
banner_is b-threads "new contexts: the thread engine (LIBAIO_RS_ENGINE=threads)"
engine_is b-threads threads
run b-uring LIBAIO_RS_DEBUG=1 LIBAIO_RS_ENGINE=io_uring
banner_is b-uring "new contexts: the io_uring engine (LIBAIO_RS_ENGINE=io_uring)"
engine_is b-uring io_uring
run b-bad LIBAIO_RS_DEBUG=1 LIBAIO_RS_ENGINE=uring
sed -i '/not a value of this variable/d' "$TMP/b-bad.err"
banner_is b-bad "new contexts: kernel AIO (LIBAIO_RS_ENGINE malformed: auto)"
# Under a filter refusing kernel AIO, auto falls back, and the context says so.
LD_LIBRARY_PATH=$BUILD "$TMP/seccomp_noaio" "$TMP/engine_of" >"$TMP/f.out" 2>"$TMP/f.err" || fail_with_log "$TMP/f.err" "engine_of under the filter"
grep -qx "engine io_uring" "$TMP/f.out" || fail_with_log "$TMP/f.out" "under the no-AIO filter auto did not give io_uring"
LD_LIBRARY_PATH=$BUILD "$TMP/seccomp_noaio" --no-io-uring "$TMP/engine_of" >"$TMP/f2.out" 2>"$TMP/f2.err" || fail "engine_of under the filter"
grep -qx "engine threads" "$TMP/f2.out" || fail_with_log "$TMP/f2.out" "with io_uring refused too auto did not give threads"
note "banners, one per setting, and io_context_engine agreeing (auto under the no-AIO filter: io_uring, then threads):"
sed 's/^/    /' "$TMP"/b-*.banner

# A program whose own constructor calls io_setup, linked with libaio.a:
# the settings are settled before the library's constructor, and the
# warning must still come, once.
gcc -O1 -I"$ROOT/include" "$ROOT/tests/c/early_ctor.c" "$BUILD/libaio.a" -lpthread -o "$TMP/early_ctor" 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "cannot build early_ctor with libaio.a"
LIBAIO_RS_ENGINE=bogus "$TMP/early_ctor" >"$TMP/early.out" 2>"$TMP/early.err" || fail "early_ctor failed"
grep -qx "early io_setup 0" "$TMP/early.out" || fail_with_log "$TMP/early.out" "early_ctor: io_setup failed"
[ "$(grep -c '' "$TMP/early.err")" -eq 1 ] && grep -q '^libaio: LIBAIO_RS_ENGINE=bogus: not a value' "$TMP/early.err" ||
	fail_with_log "$TMP/early.err" "libaio.a with an io_setup before the library's constructor: the warning is not said once"
note "libaio.a, io_setup in the program's constructor: the warning still said once"

# io_context_engine asked in a loop while two threads reap a kernel context
# in user space: every completion delivered once (the query must not enter
# the kernel's reaping behind the reapers' backs).
gcc -O2 -Wall -Wextra -Werror -I"$ROOT/include" "$ROOT/tests/c/engine_probe_race.c" -L"$BUILD" -laio -lpthread \
	-o "$TMP/engine_probe_race" 2>"$TMP/cc.log" || fail_with_log "$TMP/cc.log" "cannot build engine_probe_race"
LD_LIBRARY_PATH=$BUILD "$TMP/engine_probe_race" 3 >"$TMP/race.out" 2>&1 ||
	fail_with_log "$TMP/race.out" "io_context_engine racing user-space reapers: completions delivered twice or lost"
note "io_context_engine against two user-space reapers for 3 s: $(cat "$TMP/race.out")"

# --- 3. The Rust API: Engine::Auto means what LIBAIO_RS_ENGINE says.
if command -v cargo >/dev/null 2>&1; then
	(cd "$ROOT" && cargo build -q --features std --example copy_direct) 2>"$TMP/cargo.log" ||
		fail_with_log "$TMP/cargo.log" "cannot build copy_direct"
	ex=$(cd "$ROOT" && cargo metadata -q --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/examples/copy_direct
	for v in kernel threads io_uring; do
		LIBAIO_RS_ENGINE=$v "$ex" >"$TMP/rust-$v.out" 2>&1 || fail_with_log "$TMP/rust-$v.out" "copy_direct with LIBAIO_RS_ENGINE=$v"
		grep -q "on engine $v (asked: auto): verified" "$TMP/rust-$v.out" ||
			fail_with_log "$TMP/rust-$v.out" "Engine::Auto with LIBAIO_RS_ENGINE=$v did not give $v"
	done
	"$ex" --help | grep -q '^usage: copy_direct' || fail "copy_direct --help"
	"$ex" "$TMP/missing" "$TMP/x" >"$TMP/rust-missing.out" 2>&1 && fail "copy_direct copied a missing file"
	grep -qF "copy_direct: $TMP/missing: cannot open for O_DIRECT reading: No such file or directory" "$TMP/rust-missing.out" ||
		fail_with_log "$TMP/rust-missing.out" "copy_direct does not name the missing file"
	"$ex" a b bogus >"$TMP/rust-bogus.out" 2>&1 && fail "copy_direct took engine bogus"
	grep -qF 'no engine "bogus": the engines are auto, kernel, threads and io_uring' "$TMP/rust-bogus.out" ||
		fail_with_log "$TMP/rust-bogus.out" "copy_direct does not list the engines"
	note "Rust: Engine::Auto follows LIBAIO_RS_ENGINE (kernel, threads, io_uring); copy_direct: $(cat "$TMP/rust-threads.out")"
else
	note "cargo not installed: the Rust API case is not run"
fi

# --- 4. The doctor.
doctor() {
	local tag=$1
	shift
	env -u LIBAIO_RS_ENGINE -u LIBAIO_RS_DEBUG "$@" "$BUILD/libaio.so.1" >"$TMP/$tag.out" 2>"$TMP/$tag.err" ||
		fail_with_log "$TMP/$tag.err" "$tag: running libaio.so.1 failed"
	[ ! -s "$TMP/$tag.err" ] || fail_with_log "$TMP/$tag.err" "$tag: the doctor wrote on stderr"
	grep -q "^libaio-rs $VERSION: a drop-in for libaio 0.3.113" "$TMP/$tag.out" || fail_with_log "$TMP/$tag.out" "$tag: no version line"
	for l in "  kernel AIO: " "  io_uring:   " "  threads:    available" "auto picks here: " "new contexts get: " "Settings (LIBAIO_RS_"; do
		grep -q "^$l" "$TMP/$tag.out" || fail_with_log "$TMP/$tag.out" "$tag: no line '$l'"
	done
}
doctor plain
grep -q "^  kernel AIO: available; fs.aio-nr [0-9]* of fs.aio-max-nr [0-9]* events in use ([0-9]* left)$" "$TMP/plain.out" &&
	grep -q "^auto picks here: kernel AIO$" "$TMP/plain.out" &&
	grep -q "^  none set: " "$TMP/plain.out" || fail_with_log "$TMP/plain.out" "doctor: kernel AIO here, yet not said so"
doctor filtered "$TMP/seccomp_noaio"
grep -q "^  kernel AIO: refused, io_setup answers -ENOSYS" "$TMP/filtered.out" &&
	grep -q "^    a seccomp filter is installed" "$TMP/filtered.out" &&
	grep -q "^  io_uring:   available" "$TMP/filtered.out" &&
	grep -q "^auto picks here: io_uring for a program that reaps through io_getevents" "$TMP/filtered.out" ||
	fail_with_log "$TMP/filtered.out" "doctor under the no-AIO filter"
doctor nouring "$TMP/seccomp_noaio" --errno=EPERM --no-io-uring
grep -q "^  kernel AIO: refused, io_setup answers -EPERM" "$TMP/nouring.out" &&
	grep -q "^  io_uring:   refused (-EPERM): .*seccomp filter is installed; kernel " "$TMP/nouring.out" &&
	grep -q "^auto picks here: threads for a program" "$TMP/nouring.out" ||
	fail_with_log "$TMP/nouring.out" "doctor under a filter refusing both"
doctor set LIBAIO_RS_ENGINE=uring LIBAIO_RS_FALLBACK_EAGAIN=1
grep -qx "  LIBAIO_RS_ENGINE=uring" "$TMP/set.out" &&
	grep -q "^LIBAIO_RS_ENGINE=uring: not a value of this variable" "$TMP/set.out" &&
	grep -q "or EAGAIN (LIBAIO_RS_FALLBACK_EAGAIN=1)" "$TMP/set.out" ||
	fail_with_log "$TMP/set.out" "doctor: the settings in force are not shown"
note "the doctor ($BUILD/libaio.so.1 run), here and under the no-AIO filter with io_uring refused too:"
sed 's/^/    /' "$TMP/plain.out" "$TMP/nouring.out"

# Debian's side of the two differences (doc/differences.md): its library,
# run, has no entry point and dies; a program on it writes nothing whatever
# the LIBAIO_RS_* settings.
DEB=/usr/lib/x86_64-linux-gnu/libaio.so.1
if [ -e "$DEB" ]; then
	rc=0
	install -m 755 "$DEB" "$TMP/debian-libaio.so.1" # Debian installs it without x
	"$TMP/debian-libaio.so.1" >/dev/null 2>&1 || rc=$?
	[ "$rc" -ge 128 ] || fail "Debian's libaio.so.1, run, exited $rc: the difference documented is gone"
	mkdir -p "$TMP/deb" && ln -sf "$(readlink -f "$DEB")" "$TMP/deb/libaio.so.1"
	gcc -O1 -I"$ROOT/include" "$ROOT/tests/c/roundtrip.c" -L"$BUILD" -laio -o "$TMP/roundtrip" 2>"$TMP/cc.log" ||
		fail_with_log "$TMP/cc.log" "cannot build roundtrip"
	LD_LIBRARY_PATH=$TMP/deb LIBAIO_RS_ENGINE=uring LIBAIO_RS_DEBUG=verbose LIBAIO_RS_ENGNIE=x \
		"$TMP/roundtrip" "$TMP/rt.data" >/dev/null 2>"$TMP/deb.err" || fail_with_log "$TMP/deb.err" "roundtrip on Debian's libaio"
	[ ! -s "$TMP/deb.err" ] || fail_with_log "$TMP/deb.err" "Debian's libaio wrote on stderr"
	note "Debian's libaio.so.1 run: killed by signal $((rc - 128)); with the same mistaken settings it writes nothing"
fi

# --- 5. make help.
make -s -C "$ROOT" help >"$TMP/help.out" || fail "make help failed"
for t in all demo install uninstall check bench fuzz header clean; do
	grep -q "^make $t\|^make \[$t\]" "$TMP/help.out" || fail_with_log "$TMP/help.out" "make help does not list $t"
done
note "make help lists every target"
note "PASS"
