#!/usr/bin/env bash
# The automatic fallback where kernel AIO is refused (io_* -> ENOSYS/EPERM by a seccomp filter): auto must land on io_uring,
# through tests/sh/lib/engine_suites.sh: the probe, the C suite, the seeds,
# libaio's harness, fio verify and QEMU, each against Debian's libaio over
# kernel AIO in the same run.
# shellcheck disable=SC2034 # read by engine_suites.sh
MODE=noaio
# shellcheck source=lib/engine_suites.sh
. "$(dirname "$0")/lib/engine_suites.sh"
