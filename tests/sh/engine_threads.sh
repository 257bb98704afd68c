#!/usr/bin/env bash
# The thread engine (LIBAIO_RS_ENGINE=threads),
# through tests/sh/lib/engine_suites.sh: the probe, the C suite, the seeds,
# libaio's harness, fio verify and QEMU, each against Debian's libaio over
# kernel AIO in the same run.
# shellcheck disable=SC2034 # read by engine_suites.sh
MODE=threads
# shellcheck source=lib/engine_suites.sh
. "$(dirname "$0")/lib/engine_suites.sh"
