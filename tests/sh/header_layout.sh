#!/usr/bin/env bash
# For each target (x86_64, i386, x32, s390x, armhf, powerpc), every size,
# alignment, offset, signedness, type and constant of our include/libaio.h
# must equal the one of Debian's /usr/include/libaio.h (libaio 0.3.113) for
# that target. Compile-only, so cross targets need only their compiler:
#   1. a C file built with Debian's header turns each number into the size of
#      a global array (`char L_name[1 + (value)]`); readelf, which reads any
#      ELF class and byte order, gives the sizes back;
#   2. a C file built with our header asserts each number with _Static_assert
#      against Debian's, naming the target and the field when one differs;
#   3. step 1 is repeated with our header, so a failure also prints both values.
# A target whose compiler package is absent is reported, and the script then
# exits 77 (after checking every other target); one that is present but
# cannot compile fails the script.
set -eu
. "$(dirname "$0")/lib/common.sh"

OUR_HEADER=$ROOT/include/libaio.h
DEB_HEADER=/usr/include/libaio.h
[ -f "$OUR_HEADER" ] || fail "$OUR_HEADER is missing"
[ -f "$DEB_HEADER" ] || fail "$DEB_HEADER is missing: apt-get install libaio-dev"
require_cmd readelf binutils

# Each header in a directory of its own, so a cross compiler (which does not
# search /usr/include) finds it through -I.
mkdir -p "$TMP/ours" "$TMP/debian"
cp "$OUR_HEADER" "$TMP/ours/libaio.h"
cp "$DEB_HEADER" "$TMP/debian/libaio.h"

# --- What is compared: one "NAME|EXPR" line each (EXPR a constant >= 0).
CHECKS=$TMP/checks
: >"$CHECKS"
check() { printf '%s|%s\n' "$1" "$2" >>"$CHECKS"; }

# struct TYPE's size and alignment.
whole() { # TAG CTYPE
	check "$1__size" "sizeof($2)"
	check "$1__align" "__alignof__($2)"
}
# field STRUCT TAG MEMBER KIND DECLTYPE: offset, size, alignment, declared
# type (as Debian declares it) and, for integers, signedness.
field() {
	local s=$1 tag=$2 m=$3 kind=$4 type=$5
	local id=${tag}__${m//./_}
	local x="((struct $s *)0)->$m"
	check "${id}__off" "__builtin_offsetof(struct $s, $m)"
	check "${id}__size" "sizeof($x)"
	check "${id}__align" "__alignof__($x)"
	local t=${type// /_}
	t=${t//\*/ptr}
	[ -z "$type" ] || check "${id}__is_${t}" "__builtin_types_compatible_p(__typeof__($x), $type)"
	[ "$kind" != int ] || check "${id}__signed" "((__typeof__($x))-1 < 0)"
}
# Fields that exist only on ILP32 targets (libaio's 64-bit padding).
ilp32_field() {
	printf '#if __SIZEOF_LONG__ == 4\n' >>"$CHECKS"
	field "$@"
	printf '#endif\n' >>"$CHECKS"
}

whole iocb 'struct iocb'
whole iocb_u '((struct iocb *)0)->u'
whole io_event 'struct io_event'
whole io_iocb_common 'struct io_iocb_common'
whole io_iocb_vector 'struct io_iocb_vector'
whole io_iocb_poll 'struct io_iocb_poll'
whole io_iocb_sockaddr 'struct io_iocb_sockaddr'
whole io_sigset 'struct io_sigset'
whole io_sigset_compat 'struct io_sigset_compat'
whole io_context_t 'io_context_t'
whole io_callback_t 'io_callback_t'
whole io_iocb_cmd_t 'io_iocb_cmd_t'

field iocb iocb data ptr 'void *'
ilp32_field iocb iocb __pad1 int 'unsigned'
field iocb iocb key int 'unsigned'
field iocb iocb aio_rw_flags int 'unsigned'
field iocb iocb aio_lio_opcode int 'short'
field iocb iocb aio_reqprio int 'short'
field iocb iocb aio_fildes int 'int'
field iocb iocb u agg ''
field iocb iocb u.c agg 'struct io_iocb_common'
field iocb iocb u.v agg 'struct io_iocb_vector'
field iocb iocb u.poll agg 'struct io_iocb_poll'
field iocb iocb u.saddr agg 'struct io_iocb_sockaddr'
field iocb iocb u.c.buf ptr 'void *'
ilp32_field iocb iocb u.c.__pad1 int 'unsigned'
field iocb iocb u.c.nbytes int 'unsigned long'
ilp32_field iocb iocb u.c.__pad2 int 'unsigned'
field iocb iocb u.c.offset int 'long long'
field iocb iocb u.c.__pad3 int 'long long'
field iocb iocb u.c.flags int 'unsigned'
field iocb iocb u.c.resfd int 'unsigned'
field iocb iocb u.v.vec ptr 'const struct iovec *'
ilp32_field iocb iocb u.v.__pad1 int 'unsigned'
field iocb iocb u.v.nr int 'unsigned long'
ilp32_field iocb iocb u.v.__pad2 int 'unsigned'
field iocb iocb u.v.offset int 'long long'
field iocb iocb u.poll.events int 'int'
field iocb iocb u.poll.__pad1 int 'unsigned'
field iocb iocb u.saddr.addr ptr 'struct sockaddr *'
ilp32_field iocb iocb u.saddr.__pad1 int 'unsigned'
field iocb iocb u.saddr.len int 'unsigned long'
ilp32_field iocb iocb u.saddr.__pad2 int 'unsigned'

field io_event io_event data ptr 'void *'
ilp32_field io_event io_event __pad1 int 'unsigned'
field io_event io_event obj ptr 'struct iocb *'
ilp32_field io_event io_event __pad2 int 'unsigned'
field io_event io_event res int 'unsigned long'
ilp32_field io_event io_event __pad3 int 'unsigned'
field io_event io_event res2 int 'unsigned long'
ilp32_field io_event io_event __pad4 int 'unsigned'

field io_iocb_common io_iocb_common buf ptr 'void *'
ilp32_field io_iocb_common io_iocb_common __pad1 int 'unsigned'
field io_iocb_common io_iocb_common nbytes int 'unsigned long'
ilp32_field io_iocb_common io_iocb_common __pad2 int 'unsigned'
field io_iocb_common io_iocb_common offset int 'long long'
field io_iocb_common io_iocb_common __pad3 int 'long long'
field io_iocb_common io_iocb_common flags int 'unsigned'
field io_iocb_common io_iocb_common resfd int 'unsigned'

field io_iocb_vector io_iocb_vector vec ptr 'const struct iovec *'
ilp32_field io_iocb_vector io_iocb_vector __pad1 int 'unsigned'
field io_iocb_vector io_iocb_vector nr int 'unsigned long'
ilp32_field io_iocb_vector io_iocb_vector __pad2 int 'unsigned'
field io_iocb_vector io_iocb_vector offset int 'long long'

field io_iocb_poll io_iocb_poll events int 'int'
field io_iocb_poll io_iocb_poll __pad1 int 'unsigned'

field io_iocb_sockaddr io_iocb_sockaddr addr ptr 'struct sockaddr *'
ilp32_field io_iocb_sockaddr io_iocb_sockaddr __pad1 int 'unsigned'
field io_iocb_sockaddr io_iocb_sockaddr len int 'unsigned long'
ilp32_field io_iocb_sockaddr io_iocb_sockaddr __pad2 int 'unsigned'

field io_sigset io_sigset ss int 'unsigned long'
field io_sigset io_sigset ss_len int 'unsigned long'
ilp32_field io_sigset_compat io_sigset_compat __ss_pad int 'unsigned'
field io_sigset_compat io_sigset_compat ss int 'unsigned long'
field io_sigset_compat io_sigset_compat ss_len int 'unsigned long'

for c in PREAD PWRITE FSYNC FDSYNC POLL NOOP PREADV PWRITEV; do
	check "IO_CMD_$c" "IO_CMD_$c"
done
check io_iocb_cmd_t__signed '((io_iocb_cmd_t)-1 < 0)'

# Types and prototypes, against the types Debian's header declares.
types=(
	'io_context_t|struct io_context *'
	'io_iocb_cmd_t|enum io_iocb_cmd'
	'io_callback_t|void (*)(io_context_t, struct iocb *, long, long)'
	'&io_queue_init|int (*)(int, io_context_t *)'
	'&io_queue_release|int (*)(io_context_t)'
	'&io_queue_run|int (*)(io_context_t)'
	'&io_setup|int (*)(int, io_context_t *)'
	'&io_destroy|int (*)(io_context_t)'
	'&io_submit|int (*)(io_context_t, long, struct iocb **)'
	'&io_cancel|int (*)(io_context_t, struct iocb *, struct io_event *)'
	'&io_getevents|int (*)(io_context_t, long, long, struct io_event *, struct timespec *)'
	'&io_pgetevents|int (*)(io_context_t, long, long, struct io_event *, struct timespec *, sigset_t *)'
	'&io_set_callback|void (*)(struct iocb *, io_callback_t)'
	'&io_prep_pread|void (*)(struct iocb *, int, void *, size_t, long long)'
	'&io_prep_pwrite|void (*)(struct iocb *, int, void *, size_t, long long)'
	'&io_prep_preadv|void (*)(struct iocb *, int, const struct iovec *, int, long long)'
	'&io_prep_pwritev|void (*)(struct iocb *, int, const struct iovec *, int, long long)'
	'&io_prep_preadv2|void (*)(struct iocb *, int, const struct iovec *, int, long long, int)'
	'&io_prep_pwritev2|void (*)(struct iocb *, int, const struct iovec *, int, long long, int)'
	'&io_prep_poll|void (*)(struct iocb *, int, int)'
	'&io_poll|int (*)(io_context_t, struct iocb *, io_callback_t, int, int)'
	'&io_prep_fsync|void (*)(struct iocb *, int)'
	'&io_fsync|int (*)(io_context_t, struct iocb *, io_callback_t, int)'
	'&io_prep_fdsync|void (*)(struct iocb *, int)'
	'&io_fdsync|int (*)(io_context_t, struct iocb *, io_callback_t, int)'
	'&io_set_eventfd|void (*)(struct iocb *, int)'
)
for t in "${types[@]}"; do
	name=${t%%|*} name=${name#&}
	expr=${t%%|*}
	case $expr in
	'&'*) check "proto__$name" "__builtin_types_compatible_p(__typeof__($expr), ${t#*|})" ;;
	*) check "type__$name" "__builtin_types_compatible_p($expr, ${t#*|})" ;;
	esac
done

# Only headers that need no <asm/...> (Debian's gcc-12-multilib, unlike
# gcc-multilib, has no /usr/include/asm for -m32; it and the cross compilers
# conflict with gcc-multilib).
PRELUDE='#define _GNU_SOURCE
#include <stddef.h>
#include <time.h>
#include <signal.h>
#include <libaio.h>'

# numbers.c: each check as the size of a global array.
{
	printf '%s\n' "$PRELUDE"
	while IFS= read -r l; do
		case $l in '#'*) printf '%s\n' "$l" ;; *) printf 'char L_%s[1 + (%s)] = { 1 };\n' "${l%%|*}" "${l#*|}" ;; esac
	done <"$CHECKS"
} >"$TMP/numbers.c"

# numbers TARGET HEADERDIR CC FLAGS...: prints "name value" lines, sorted.
numbers() {
	local target=$1 hdr=$2 obj
	obj=$TMP/$1-$(basename "$2").o
	shift 2
	"$@" -std=gnu11 -c -I"$hdr" -o "$obj" "$TMP/numbers.c" >"$obj.log" 2>&1 ||
		fail_with_log "$obj.log" "$target: compiling the layout probe with $hdr/libaio.h failed: $* -c numbers.c"
	readelf -sW "$obj" | awk '$8 ~ /^L_/ { sub(/^L_/, "", $8); print $8, $3 - 1 }' | sort
}

# asserts.c for one target: our header against Debian's numbers.
write_asserts() { # TARGET DEBIAN_NUMBERS
	local target=$1 nums=$2 l name expr want
	printf '%s\n' "$PRELUDE"
	while IFS= read -r l; do
		case $l in '#'*)
			printf '%s\n' "$l"
			continue
			;;
		esac
		name=${l%%|*} expr=${l#*|}
		want=$(awk -v n="$name" '$1 == n { print $2 }' "$nums")
		printf '_Static_assert((%s) == %s, "%s: %s is %s in Debian'\''s libaio.h but differs in ours");\n' \
			"$expr" "${want:-0}" "$target" "$name" "${want:-?}"
	done <"$CHECKS"
}

dup=$(grep -v '^#' "$CHECKS" | cut -d'|' -f1 | sort | uniq -d)
[ -z "$dup" ] || fail "internal: duplicate check names: $dup"

# --- The targets: name, what must be installed, compiler and flags, and
# the expected data model (long size and byte order) as a sanity check.
targets=(
	'x86_64|gcc|gcc -m64|8 little'
	'i386|gcc-12-multilib|gcc -m32|4 little'
	'x32|gcc-12-multilib|gcc -mx32|4 little'
	's390x|gcc-s390x-linux-gnu|s390x-linux-gnu-gcc|8 big'
	'armhf|gcc-arm-linux-gnueabihf|arm-linux-gnueabihf-gcc|4 little'
	'powerpc|gcc-powerpc-linux-gnu|powerpc-linux-gnu-gcc|4 big'
)

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

missing=() failed=() summary=()
for t in "${targets[@]}"; do
	IFS='|' read -r target pkg ccline model <<<"$t"
	read -r -a cc <<<"$ccline"
	if ! command -v "${cc[0]}" >/dev/null 2>&1 || ! pkg_installed "$pkg"; then
		missing+=("$pkg")
		summary+=("$(printf '%-8s %-10s %s' "$target" MISSING "apt-get install $pkg")")
		continue
	fi
	# The compiler really targets what we think.
	got_model=$(printf '%s\n' '__SIZEOF_LONG__' '#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__' big '#else' little '#endif' |
		"${cc[@]}" -E -P -x c - 2>/dev/null | tr '\n' ' ' | sed 's/ *$//') ||
		fail "$target: '${cc[*]}' cannot preprocess"
	[ "$got_model" = "$model" ] || fail "$target: '${cc[*]}' has long size and byte order '$got_model', expected '$model'"

	deb_nums=$TMP/$target.debian
	our_nums=$TMP/$target.ours
	numbers "$target" "$TMP/debian" "${cc[@]}" >"$deb_nums"
	numbers "$target" "$TMP/ours" "${cc[@]}" >"$our_nums"
	# Every active check came back as a symbol (the ILP32-only ones on ILP32).
	lp64=0
	[ "${model% *}" != 8 ] || lp64=1
	want_count=$(awk -v lp64=$lp64 '
		/^#if/ { in_if = 1; next } /^#endif/ { in_if = 0; next }
		!(in_if && lp64) { n++ } END { print n }' "$CHECKS")
	[ "$(wc -l <"$deb_nums")" = "$want_count" ] ||
		fail "$target: read $(wc -l <"$deb_nums") numbers back from the object, expected $want_count"
	machine=$(readelf -h "$TMP/$target-debian.o" | sed -n 's/^ *Machine: *//p')

	write_asserts "$target" "$deb_nums" >"$TMP/$target-asserts.c"
	ok=1
	if ! "${cc[@]}" -std=gnu11 -c -I"$TMP/ours" -o "$TMP/$target-asserts.o" "$TMP/$target-asserts.c" >"$TMP/$target-asserts.log" 2>&1; then
		ok=0
		grep -E 'error' "$TMP/$target-asserts.log" | sed 's/^/    /' | head -n 40 >&2
	fi
	if ! diff "$deb_nums" "$our_nums" >/dev/null; then
		ok=0
		printf '    %-40s %8s %8s\n' "$target: name" Debian ours >&2
		join -a1 -a2 -e '-' -o 0,1.2,2.2 "$deb_nums" "$our_nums" | awk '$2 != $3' |
			while read -r n d o; do printf '    %-40s %8s %8s\n' "$n" "$d" "$o" >&2; done
	fi
	n=$(wc -l <"$deb_nums")
	if [ $ok = 1 ]; then
		summary+=("$(printf '%-8s %-10s %3d values equal (%s, long=%s bytes, %s endian)' "$target" PASS "$n" "$machine" "${model% *}" "${model#* }")")
	else
		failed+=("$target")
		summary+=("$(printf '%-8s %-10s layout differs from Debian'\''s (%s)' "$target" FAIL "$machine")")
	fi
done

printf '%s\n' "${summary[@]}"
[ ${#failed[@]} = 0 ] || fail "our libaio.h differs from Debian's on: ${failed[*]}"
[ ${#missing[@]} = 0 ] || skip "compiler packages absent, those targets were not checked: apt-get install ${missing[*]}"
note "our libaio.h matches Debian's on every target"
