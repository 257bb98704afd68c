#!/usr/bin/env bash
# Completion latency of the user-space engines against Debian's libaio over
# kernel AIO (tests/sh/lib/engine_suites.sh, fio_latency_step): threads each
# waiting on a context of their own with idle gaps, paced, O_DIRECT and
# buffered; no I/O over 500 ms, p99 within 5x Debian's or 10 ms. The bound is
# on time, so make check runs this alone, with nothing else loading the
# machine (the engine suites skip the step there: LIBAIO_RS_SKIP_LATENCY).
set -eu
here=$(dirname "$0")
rc=0
for engine in threads uring; do
	LIBAIO_RS_ENGINE_SUITES=latency LIBAIO_RS_SKIP_LATENCY=0 bash "$here/engine_$engine.sh" || rc=1
done
exit $rc
