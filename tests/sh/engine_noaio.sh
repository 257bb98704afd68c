#!/usr/bin/env bash
# The automatic fallback where kernel AIO is missing: engine_threads.sh's
# suites with LIBAIO_RS_ENGINE unset (auto) under tests/c/seccomp_noaio, whose
# seccomp filter answers ENOSYS to every io_* call (EPERM too for the probe,
# the C suite, fio and QEMU). Ours must print what Debian's libaio prints over
# kernel AIO; Debian's libaio under the same filter is shown failing.
# shellcheck disable=SC2034 # read by engine_threads.sh
MODE=noaio
# shellcheck source=engine_threads.sh
. "$(dirname "$0")/engine_threads.sh"
