#!/usr/bin/env bash
# The core's unit tests under Miri (nightly): the reaping protocol on fake
# rings (gates, peekers, destroy, the model of the kernel's reader racing
# user-space copies), the futex waits, and the cache of writable arrays, all
# checked by Miri's data-race detector and weak-memory emulation; and the
# safe API's buffer and in-flight table (feature std). Tests that
# fork or use the real kernel's AIO calls are left to the native run (Miri
# models neither). Skips when the nightly toolchain or its miri component is
# missing and cannot be added.
set -eu
. "$(dirname "$0")/lib/common.sh"

command -v rustup >/dev/null 2>&1 || skip "rustup not found (Miri comes with the nightly toolchain)"
rustup toolchain list | grep -q '^nightly' || skip "no nightly toolchain (rustup toolchain install nightly)"
if ! cargo +nightly miri --version >/dev/null 2>&1; then
	rustup component add --toolchain nightly miri >/dev/null 2>&1 ||
		skip "the nightly toolchain has no miri component and it could not be added"
fi

cd "$ROOT"
log=$TMP/miri.log
# Isolation off: the library's load-time code reads /proc/self/status.
if ! MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-preemption-rate=0.3" \
	CARGO_TARGET_DIR=$ROOT/target cargo +nightly miri test -q --lib -- \
	--skip fork --skip exactly_once_against_the_kernel --skip this_process_is_read >"$log" 2>&1; then
	fail_with_log "$log" "cargo miri test failed"
fi
grep -E '^test result' "$log"
grep -q '^test result: ok' "$log" || fail_with_log "$log" "no test ran under Miri"
# The safe API's parts that make no system call (feature std): the aligned
# buffer and the in-flight table (tokens, generations, iocb filling).
slog=$TMP/miri-safe.log
if ! MIRIFLAGS="-Zmiri-disable-isolation" CARGO_TARGET_DIR=$ROOT/target \
	cargo +nightly miri test -q --features std --lib safe:: >"$slog" 2>&1; then
	fail_with_log "$slog" "cargo miri test (safe API) failed"
fi
grep -E '^test result' "$slog"
grep -q '^test result: ok. [1-9]' "$slog" || fail_with_log "$slog" "no safe API test ran under Miri"
note "PASS"
