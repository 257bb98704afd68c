#!/usr/bin/env bash
# LIBAIO_RS_DEBUG: failures explained in words on stderr when it is on, and
# not a byte written (nor a file opened to explain) when it is off; errno
# untouched either way (tests/c/diag_probe.c checks errno around every call
# and exits 1 if a call changed it or returned something unexpected).
#   1. off (unset, "", 0, off, no): every failing call is silent;
#   2. on: each failure of every entry point gets its line, with the kernel's
#      real reason (EINVAL, EBADF, partial submission, io_cancel's EINVAL and
#      EINPROGRESS, EINTR), and successful calls get none;
#   3. io_setup -EAGAIN names /proc/sys/fs/aio-nr and aio-max-nr with their
#      values: once by asking for more than aio-max-nr, and (as root) once by
#      really exhausting the limit: fs.aio-max-nr is lowered to fs.aio-nr for
#      a moment and restored by a trap whatever happens;
#   4. io_setup -ENOSYS where kernel AIO is unavailable (a seccomp filter,
#      tests/c/seccomp_noaio.c, makes the io_* calls fail with ENOSYS) says
#      so and names the seccomp filter, and -EPERM from such a filter too;
#   with it on, the first line says which library was loaded from where, and
#   whether it reaps completions in user space (and why not), and each
#   io_setup which engine the context got (kernel, or threads and why: under
#   the ENOSYS/EPERM filter the default engine falls back, and says so);
#   5. failed completions (misaligned O_DIRECT, an unmapped buffer) explained
#      once per cause, on every engine; under a seccomp filter found at load,
#      not explained (it would take calls libaio never makes), and said so;
#   6. with strace, proof that nothing is opened or written when it is off.
set -eu
. "$(dirname "$0")/lib/common.sh"

require_cmd gcc gcc
[ -e "$BUILD/libaio.so.1" ] || fail "$BUILD/libaio.so.1 is missing: run make first"
OURS=$(readlink -f "$BUILD/libaio.so.1")

gcc -Wall -Wextra -Werror -O1 -I"$ROOT/include" "$ROOT/tests/c/diag_probe.c" \
	-L"$BUILD" -laio -o "$TMP/diag_probe" 2>"$TMP/cc.log" || fail_with_log "$TMP/cc.log" "cannot build diag_probe"
gcc -Wall -Wextra -Werror -O1 "$ROOT/tests/c/seccomp_noaio.c" -o "$TMP/seccomp_noaio" 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "cannot build seccomp_noaio"

# probe TAG DEBUG_VALUE|unset [WRAPPER...] -- MODE: runs diag_probe MODE with
# our library; stdout in $TMP/TAG.out, stderr in $TMP/TAG.err; fails unless it
# exits 0 (every result as expected, errno untouched) and loaded ours.
probe() {
	local tag=$1 debug=$2
	shift 2
	local wrap=()
	while [ "$1" != -- ]; do wrap+=("$1"); shift; done
	shift
	local rc=0
	(
		unset LIBAIO_RS_DEBUG LD_PRELOAD
		[ "$debug" = unset ] || export LIBAIO_RS_DEBUG=$debug
		export LD_LIBRARY_PATH=$BUILD
		exec "${wrap[@]}" "$TMP/diag_probe" "$@"
	) >"$TMP/$tag.out" 2>"$TMP/$tag.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		cat "$TMP/$tag.out" "$TMP/$tag.err" >"$TMP/$tag.log"
		fail_with_log "$TMP/$tag.log" "$tag: diag_probe $* exited $rc"
	fi
	# On, the library's first line says what it found at load; it is moved
	# to TAG.load, so TAG.err holds the failures only.
	case $debug in unset | "" | 0 | off | no) return ;; esac
	head -n 1 "$TMP/$tag.err" >"$TMP/$tag.load"
	grep -Eq "^libaio: libaio-rs [0-9.]+ in diag_probe\[[0-9]+\], loaded from ($BUILD/libaio.so.1|$OURS): new contexts: " "$TMP/$tag.load" ||
		fail_with_log "$TMP/$tag.err" "$tag: the first line does not say which library was loaded"
	sed -i 1d "$TMP/$tag.err"
	# Each successful io_setup says which engine the context got, and why an
	# engine it tried first could not serve: to TAG.engine.
	grep -E '^libaio: io_setup: (engine |io_uring unavailable: )' "$TMP/$tag.err" >"$TMP/$tag.engine" || true
	sed -i -E '/^libaio: io_setup: (engine |io_uring unavailable: )/d' "$TMP/$tag.err"
}

# expect_line TAG REGEX: some stderr line of TAG matches REGEX (grep -E).
expect_line() {
	grep -Eq -- "$2" "$TMP/$1.err" || fail_with_log "$TMP/$1.err" "$1: no line on stderr matches /$2/"
}

expect_silent() {
	[ ! -s "$TMP/$1.err" ] || fail_with_log "$TMP/$1.err" "$1: the library wrote on stderr with LIBAIO_RS_DEBUG ${2:-unset}"
}

# The probe really runs on our library (the loader's own list).
LD_LIBRARY_PATH=$BUILD LD_TRACE_LOADED_OBJECTS=1 "$TMP/diag_probe" >"$TMP/ldd.out" 2>&1 || true
grep -q "libaio.so.1 => $BUILD/libaio.so.1\|libaio.so.1 => $OURS" "$TMP/ldd.out" ||
	fail_with_log "$TMP/ldd.out" "diag_probe does not load $BUILD/libaio.so.1"

# --- 1. Off: silent.
probe off unset -- basic
expect_silent off
for v in "" 0 off no; do
	probe "off-$v" "$v" -- basic
	expect_silent "off-$v" "='$v'"
done
cmp -s "$TMP/off.out" "$TMP/off-0.out" || fail "results differ between LIBAIO_RS_DEBUG unset and =0"
note "off (unset, '', 0, off, no): silent, errno untouched"

# --- 2. On: one line per failure, in words; nothing for successes.
probe on 1 -- basic
cmp -s "$TMP/off.out" "$TMP/on.out" || fail "results differ between LIBAIO_RS_DEBUG off and on"
bad=$(grep -vc '^libaio: ' "$TMP/on.err" || true)
[ "$bad" -eq 0 ] || fail_with_log "$TMP/on.err" "stderr lines without the 'libaio: ' prefix"
while IFS= read -r re; do
	expect_line on "$re"
done <<'EOF'
^libaio: io_setup: -EINVAL: maxevents 0 is out of range: it must be between 1 and about 4 million
^libaio: io_setup: -EINVAL: \*ctxp must be 0 on entry, and holds 0x1 
^libaio: io_destroy: -EINVAL: ctx is not a live context of this process
^libaio: io_submit: -EBADF: aio_fildes 1000 is not an open file descriptor$
^libaio: io_submit: -EINVAL: .*aio_lio_opcode is not one the kernel implements
^libaio: io_submit: submitted 1 of 3 iocbs; the kernel stopped at index 1
^libaio: io_getevents: -EINVAL: .*min_nr > nr
^libaio: io_cancel: -EINVAL: .*only IO_CMD_POLL requests
^libaio: io_cancel: -EINPROGRESS: not a failure
^libaio: io_getevents: -EINTR: a signal handler ran .*SA_RESTART
EOF
# Failing calls in diag_probe's basic mode: 12 lines, no more (successes are silent).
n=$(wc -l <"$TMP/on.err")
[ "$n" -eq 12 ] || fail_with_log "$TMP/on.err" "expected 12 lines on stderr (one per failure), got $n"
probe on-ok 1 -- ok
expect_silent on-ok "=1 (successful calls only)"
grep -q '^libaio: io_setup: engine kernel$' "$TMP/on-ok.engine" ||
	fail_with_log "$TMP/on-ok.engine" "io_setup does not say which engine the context got"
grep -q 'new contexts: kernel AIO (LIBAIO_RS_ENGINE unset: auto); where io_setup is refused with ENOSYS or EPERM, the io_uring engine, or the thread engine where io_uring is refused too (this program reaps through the library); kernel AIO completions reaped from the ring in user space when ready$' "$TMP/on-ok.load" ||
	fail_with_log "$TMP/on-ok.load" "the load line does not say that user-space reaping is on"
LIBAIO_RS_REAP=0 probe reap-off 1 -- ok
grep -q 'kernel AIO completions reaped through the kernel (LIBAIO_RS_REAP=0)$' "$TMP/reap-off.load" ||
	fail_with_log "$TMP/reap-off.load" "the load line does not say why user-space reaping is off"
sed 's/^/    /' "$TMP/on-ok.load" "$TMP/reap-off.load"
note "on: $n failures explained, successes silent, errno untouched"
sed 's/^/    /' "$TMP/on.err"

# --- 3. io_setup -EAGAIN with the numbers.
probe eagain 1 -- eagain
limit=$(sed -n 's/^limit = //p' "$TMP/eagain.out")
expect_line eagain "^libaio: io_setup: -EAGAIN: .*/proc/sys/fs/aio-nr = [0-9]+ .*/proc/sys/fs/aio-max-nr = $limit "
probe eagain-off unset -- eagain
expect_silent eagain-off
sed 's/^/    /' "$TMP/eagain.err"

MAXF=/proc/sys/fs/aio-max-nr
if [ "$(id -u)" -eq 0 ] && [ -w "$MAXF" ] && saved=$(cat "$MAXF") && echo "$saved" >"$MAXF" 2>/dev/null; then
	restore_max() {
		echo "$saved" >"$MAXF"
		[ "$(cat "$MAXF")" = "$saved" ] || echo "diagnostics: could not restore fs.aio-max-nr to $saved" >&2
	}
	at_exit restore_max
	probe exhaust 1 -- exhaust
	restore_max
	[ "$(cat "$MAXF")" = "$saved" ] || fail "fs.aio-max-nr not restored to $saved"
	limit=$(sed -n 's/^limit = //p' "$TMP/exhaust.out")
	expect_line exhaust "^libaio: io_setup: -EAGAIN: .*/proc/sys/fs/aio-nr = [0-9]+ .*/proc/sys/fs/aio-max-nr = $limit "
	expect_line exhaust "^libaio: io_setup: -EAGAIN: .*one limit for the whole host.*set LIBAIO_RS_FALLBACK_EAGAIN=1 to have auto fall back"
	note "fs.aio-max-nr lowered to fs.aio-nr = $limit for one io_setup, restored to $saved"
	sed 's/^/    /' "$TMP/exhaust.err"
	# The doctor at the limit: kernel AIO refused with EAGAIN, and the way out named.
	cat /proc/sys/fs/aio-nr >"$MAXF"
	rc=0
	env -u LIBAIO_RS_ENGINE -u LIBAIO_RS_FALLBACK_EAGAIN "$BUILD/libaio.so.1" >"$TMP/doctor-eagain.out" 2>&1 || rc=$?
	restore_max
	[ "$(cat "$MAXF")" = "$saved" ] || fail "fs.aio-max-nr not restored to $saved"
	[ "$rc" -eq 0 ] || fail_with_log "$TMP/doctor-eagain.out" "the doctor exited $rc"
	grep -q '^  kernel AIO: refused, io_setup answers -EAGAIN' "$TMP/doctor-eagain.out" &&
		grep -q 'fs.aio-max-nr is one limit for the whole host.*LIBAIO_RS_FALLBACK_EAGAIN=1' "$TMP/doctor-eagain.out" ||
		fail_with_log "$TMP/doctor-eagain.out" "the doctor at the fs.aio-max-nr limit does not point at LIBAIO_RS_FALLBACK_EAGAIN"
	note "the doctor with fs.aio-max-nr used up:"
	grep -A1 '^  kernel AIO' "$TMP/doctor-eagain.out" | sed 's/^/    /'
else
	note "not root or $MAXF not writable: the exhausted-limit case is not run (the oversized case above was)"
fi

# --- 4. -ENOSYS: kernel AIO unavailable (a seccomp filter refuses it).
"$TMP/seccomp_noaio" true || skip "seccomp filters cannot be installed here"
# LIBAIO_RS_ENGINE=kernel: errors as libaio returns them (auto would fall back).
LIBAIO_RS_ENGINE=kernel probe enosys 1 "$TMP/seccomp_noaio" -- enosys
expect_line enosys '^libaio: io_setup: -ENOSYS: kernel AIO is not available here: .*seccomp filter'
[ "$(wc -l <"$TMP/enosys.err")" -eq 2 ] || fail_with_log "$TMP/enosys.err" "expected 2 lines (io_setup, io_queue_init)"
grep -q 'new contexts: kernel AIO only, with libaio.s answers and no fallback (LIBAIO_RS_ENGINE=kernel); kernel AIO completions reaped through the kernel (a seccomp filter was installed before the library was loaded' "$TMP/enosys.load" ||
	fail_with_log "$TMP/enosys.load" "the load line does not name the seccomp filter"
LIBAIO_RS_ENGINE=kernel probe enosys-off unset "$TMP/seccomp_noaio" -- enosys
expect_silent enosys-off
sed 's/^/    /' "$TMP/enosys.load" "$TMP/enosys.err"
# The same filter answering EPERM (a systemd unit's SystemCallErrorNumber=EPERM).
LIBAIO_RS_ENGINE=kernel probe eperm 1 "$TMP/seccomp_noaio" --errno=EPERM -- eperm
expect_line eperm '^libaio: io_setup: -EPERM: refused by the seccomp filter this process runs under'
sed 's/^/    /' "$TMP/eperm.err"
# Auto (the default): the same calls succeed on io_uring, and say why; with
# io_uring refused too (as Docker's default profile does), on the thread
# engine, saying why each engine before it could not serve.
for e in ENOSYS EPERM; do
	probe "fallback-$e" 1 "$TMP/seccomp_noaio" --errno=$e -- ok
	grep -q "^libaio: io_setup: engine io_uring: kernel AIO answered -$e\$" "$TMP/fallback-$e.engine" ||
		fail_with_log "$TMP/fallback-$e.engine" "no fallback to io_uring under a filter answering $e"
	expect_silent "fallback-$e" "=1 (successful calls only)"
	sed 's/^/    /' "$TMP/fallback-$e.engine" | head -n 1
	probe "fallback-nouring-$e" 1 "$TMP/seccomp_noaio" --errno=$e --no-io-uring -- ok
	grep -q "^libaio: io_setup: io_uring unavailable: io_uring_setup answered -$e " "$TMP/fallback-nouring-$e.engine" ||
		fail_with_log "$TMP/fallback-nouring-$e.engine" "io_uring refused with $e: the reason is not given"
	grep -q "^libaio: io_setup: engine threads: kernel AIO answered -$e\$" "$TMP/fallback-nouring-$e.engine" ||
		fail_with_log "$TMP/fallback-nouring-$e.engine" "no fallback to the thread engine with io_uring refused too ($e)"
	expect_silent "fallback-nouring-$e" "=1 (successful calls only)"
	sed 's/^/    /' "$TMP/fallback-nouring-$e.engine" | head -n 2
done
# LIBAIO_RS_ENGINE=io_uring where io_uring is refused: io_setup fails with
# io_uring's own error, and says why.
LIBAIO_RS_ENGINE=io_uring probe uring-refused 1 "$TMP/seccomp_noaio" --errno=EPERM --no-io-uring -- eperm
grep -q '^libaio: io_setup: io_uring unavailable: io_uring_setup answered -EPERM (kernel.io_uring_disabled, or a seccomp filter)$' "$TMP/uring-refused.engine" ||
	fail_with_log "$TMP/uring-refused.engine" "LIBAIO_RS_ENGINE=io_uring refused: no reason given"
expect_line uring-refused '^libaio: io_setup: -EPERM: the io_uring engine \(LIBAIO_RS_ENGINE=io_uring\) cannot be used here'
sed 's/^/    /' "$TMP/uring-refused.engine" "$TMP/uring-refused.err" | head -n 3

# --- 5. Failed completions explained: O_DIRECT reads with the buffer, the
# length and the offset misaligned (each twice) and a buffered read into an
# unmapped page, on every engine. Each cause once, naming the value and
# what the file needs; nothing with debugging off. /tmp may be tmpfs, which
# takes any alignment: the directory is one on the disk.
DDIR=$(mktemp -d /var/tmp/libaio-rs-diag.XXXXXX)
at_exit "rm -rf $DDIR"
for e in kernel threads io_uring; do
	LIBAIO_RS_ENGINE=$e probe "completions-$e" 1 -- completions "$DDIR"
	if grep -qx skip "$TMP/completions-$e.out"; then
		note "$DDIR takes no O_DIRECT: the misaligned-completion case is not run"
		break
	fi
	while IFS= read -r re; do
		expect_line "completions-$e" "$re"
	done <<'EOF'
^libaio: io_getevents: a completed read \(iocb 0x[0-9a-f]+ as it reads now, fd [0-9]+\) has res -EINVAL: the buffer address 0x[0-9a-f]+ is not a multiple of [0-9]+ \(1 over\): O_DIRECT on fd [0-9]+ needs buffers aligned to [0-9]+ bytes in memory, and offsets and lengths to multiples of [0-9]+ \((statx STATX_DIOALIGN|the device's logical block size, from sysfs)\)$
^libaio: io_getevents: a completed read .* has res -EINVAL: the length 65537 is not a multiple of [0-9]+ \(1 over\): O_DIRECT on fd
^libaio: io_getevents: a completed read .* has res -EINVAL: the offset 1 is not a multiple of [0-9]+ \(1 over\): O_DIRECT on fd
^libaio: io_getevents: a completed read .* has res -EFAULT: buffer 0x[0-9a-f]+ \(4096 bytes\) is not all mapped memory of this process$
EOF
	n=$(wc -l <"$TMP/completions-$e.err")
	[ "$n" -eq 4 ] || fail_with_log "$TMP/completions-$e.err" "$e: expected 4 lines (each cause once), got $n"
	LIBAIO_RS_ENGINE=$e probe "completions-$e-off" unset -- completions "$DDIR"
	expect_silent "completions-$e-off"
	cmp -s "$TMP/completions-$e.out" "$TMP/completions-$e-off.out" || fail "$e: results differ with debugging on"
	note "$e: failed completions explained once per cause"
done
sed 's/^/    /' "$TMP/completions-kernel.err"
# Under a filter installed before load that kills on calls libaio never makes
# (process_vm_readv, process_vm_writev, statx), debugging must not make them:
# the same results, and one line saying why nothing is explained.
gcc -Wall -Wextra -Werror -O1 "$ROOT/tests/c/seccomp_kill.c" -o "$TMP/seccomp_kill" 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "cannot build seccomp_kill"
probe completions-filtered 1 "$TMP/seccomp_kill" -- completions "$DDIR"
cmp -s "$TMP/completions-kernel.out" "$TMP/completions-filtered.out" ||
	fail "under the filter the results differ from those without it"
expect_line completions-filtered '^libaio: io_getevents: failed completions are not explained in this process: a seccomp filter was installed before the library was loaded'
[ "$(wc -l <"$TMP/completions-filtered.err")" -eq 1 ] || fail_with_log "$TMP/completions-filtered.err" "expected one line under the filter"
note "under a filter killing process_vm_readv and statx: not explained, not killed, same results"

# --- 6. Off means none of the diagnostics' files opened and no write to stderr
# (strace's own view). /proc/self/status is read either way, once, at load:
# the library checks whether it runs under a seccomp filter (config.rs).
if command -v strace >/dev/null 2>&1; then
	probe strace-off unset strace -f -qq -o "$TMP/strace.log" -e trace=open,openat,write -- basic
	if grep -E 'open(at)?\(.*"/proc/sys/fs' "$TMP/strace.log" >"$TMP/strace.bad" ||
		grep -E '^[0-9]+ +write\(2,' "$TMP/strace.log" >>"$TMP/strace.bad"; then
		fail_with_log "$TMP/strace.bad" "with LIBAIO_RS_DEBUG unset the library opened or wrote something"
	fi
	note "strace: no diagnostics file opened and nothing written with LIBAIO_RS_DEBUG unset"
else
	note "strace not installed: the syscall-level check is not run"
fi
note "PASS"
