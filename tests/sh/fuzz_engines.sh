#!/usr/bin/env bash
# The differential fuzzer (tests/sh/fuzz.sh) with ours on each user-space
# engine (LIBAIO_RS_ENGINE=threads, then io_uring), against Debian's libaio
# over kernel AIO on the same seeds: every call must answer as kernel AIO
# does. 100 seeds each here (FUZZ_SEEDS to change); `make fuzz
# FUZZ_OURS_ENV=LIBAIO_RS_ENGINE=io_uring` runs a long round.
set -u
here=$(dirname "$0")
rc=0
for engine in threads io_uring; do
	FUZZ_SEEDS=${FUZZ_SEEDS:-100} FUZZ_OURS_ENV="LIBAIO_RS_ENGINE=$engine" bash "$here/fuzz.sh" || rc=1
done
exit $rc
