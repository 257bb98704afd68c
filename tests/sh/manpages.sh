#!/usr/bin/env bash
# The man pages in man/: complete, clean and installed.
#   1. every name exported by libaio.map has a page, or a .so link to the page
#      that documents it (and that page's NAME section lists it);
#   2. every page, once `make install`ed (so .so links resolve as they will
#      on a system), passes `mandoc -Tlint` with no message of level warning
#      or above (.so links: only mandoc's note that .so is "fragile"), is
#      parsed by lexgrog (the NAME section that whatis/apropos index), and
#      renders with `man --warnings -l` at 80 columns with nothing on stderr;
#   3. every full page has the sections a library page needs, and states the
#      environment variables the library reads;
#   4. the complete program in libaio(7)'s EXAMPLES compiles against our
#      header and reads a file with O_DIRECT through our library.
set -eu
. "$(dirname "$0")/lib/common.sh"

require_cmd mandoc mandoc
require_cmd man man-db
require_cmd lexgrog man-db
require_cmd groff groff-base
MAN=$ROOT/man
[ -d "$MAN" ] || fail "no man/ directory"

# Pages that are only ".so manN/target.N".
is_link() { grep -q '^\.so ' "$1"; }

# --- 1. Every exported name has a page.
names=$(sed -n 's/^[[:space:]]*\(io_[a-z0-9_]*\);/\1/p' "$ROOT/libaio.map" | sort -u)
[ -n "$names" ] || fail "no exported names found in libaio.map"
missing=()
for n in $names; do
	[ -f "$MAN/$n.3" ] || missing+=("$n")
done
[ ${#missing[@]} -eq 0 ] || fail "exported names without a page: ${missing[*]}"
[ -f "$MAN/libaio.7" ] || fail "the overview page man/libaio.7 is missing"
note "$(echo "$names" | wc -l) exported names, each with a page in man/"

# --- 2. Installed tree: lint, lexgrog, render.
install_ours "$TMP/inst"
MROOT=$TMP/inst/usr/share/man
want=$(cd "$MAN" && ls -1 ./*.[37] | wc -l)
got=$(cd "$MROOT" && ls -1 man3/*.3 man7/*.7 | wc -l)
[ "$want" -eq "$got" ] || fail "make install put $got pages in $MROOT, man/ has $want"

cd "$MROOT"
full=0 links=0
for p in man3/*.3 man7/*.7; do
	src=$MAN/${p#*/}
	cmp -s "$p" "$src" || fail "$p differs from $src after make install"
	if is_link "$p"; then
		links=$((links + 1))
		target=$(sed -n 's/^\.so //p' "$p")
		[ -f "$target" ] || fail "$p: .so target $target is not installed"
		is_link "$target" && fail "$p: .so target $target is itself a .so link"
		# The linked page must list this name in its NAME section.
		lexgrog "$target" >"$TMP/lexgrog.out" 2>&1 || fail_with_log "$TMP/lexgrog.out" "lexgrog cannot parse $target"
		stem=$(basename "$p" | sed 's/\.[0-9]$//')
		if [ "$stem" != io ]; then
			grep -q ": \"$stem - " "$TMP/lexgrog.out" ||
				fail_with_log "$TMP/lexgrog.out" "$target's NAME section does not list $stem (linked from $p)"
		fi
		lint_filter='fragile, better use ln'
	else
		full=$((full + 1))
		lint_filter='^$'
	fi
	mandoc -Tlint -Wwarning "$p" 2>&1 | grep -v "$lint_filter" >"$TMP/lint.out" || true
	[ ! -s "$TMP/lint.out" ] || fail_with_log "$TMP/lint.out" "mandoc -Tlint: $p"
	lexgrog "$p" >"$TMP/lexgrog.out" 2>&1 || fail_with_log "$TMP/lexgrog.out" "lexgrog cannot parse the NAME section of $p"
	MANWIDTH=80 man --warnings -l "$p" >"$TMP/render.out" 2>"$TMP/render.err" ||
		fail_with_log "$TMP/render.err" "man -l $p failed"
	[ ! -s "$TMP/render.err" ] || fail_with_log "$TMP/render.err" "man --warnings -l $p wrote warnings"
	[ -s "$TMP/render.out" ] || fail "man -l $p rendered nothing"
done
cd "$ROOT"
note "$full pages and $links .so links: mandoc -Tlint clean, lexgrog parses every NAME, man -l renders without warnings"

# man(1) finds every documented name through the installed tree.
for n in $names io libaio; do
	sec=3
	[ "$n" = libaio ] && sec=7
	MANPATH=$MROOT man -w "$sec" "$n" >/dev/null 2>&1 || fail "man -w $sec $n finds no page in $MROOT"
done

# --- 3. Sections and the facts every full page states.
for p in "$MAN"/*.[37]; do
	is_link "$p" && continue
	b=$(basename "$p")
	for s in NAME SYNOPSIS DESCRIPTION ENVIRONMENT 'SEE ALSO'; do
		grep -q "^\.SH \"\{0,1\}$s\"\{0,1\}\$" "$p" || fail "$b has no $s section"
	done
	case $b in libaio.7) ;; *) grep -q '^\.SH RETURN VALUE$' "$p" || fail "$b has no RETURN VALUE section" ;; esac
	grep -q 'LIBAIO_RS_DEBUG' "$p" || fail "$b does not mention LIBAIO_RS_DEBUG"
	grep -q 'LIBAIO_RS_REAP' "$p" || fail "$b does not mention LIBAIO_RS_REAP"
	grep -q 'errno' "$p" || fail "$b does not state what happens to errno"
done
# The overview states the facts the library rests on.
for fact in 'address at which the kernel' 'O_DIRECT' 'EINPROGRESS' 'EINTR' 'SA_RESTART' \
	'aio-max-nr' 'Partial submissions' 'never changed\|None of them sets or changes'; do
	grep -q -- "$fact" "$MAN/libaio.7" || fail "libaio.7 does not say: $fact"
done
grep -q 'Partial submission' "$MAN/io_submit.3" || fail "io_submit.3 does not explain partial submission"
grep -q 'EINPROGRESS' "$MAN/io_cancel.3" || fail "io_cancel.3 does not explain -EINPROGRESS"

# --- 4. libaio(7)'s example program works as printed.
awk '/^\.SH EXAMPLES/ {ex = 1} ex && /^\.EX/ {on = 1; next} on && /^\.EE/ {exit} on' "$MAN/libaio.7" |
	sed -e 's/\\e/\\/g' -e 's/\\-/-/g' >"$TMP/example.c"
grep -q 'int$' "$TMP/example.c" || fail "no example program found in libaio.7"
gcc -Wall -Wextra -Werror -I"$ROOT/include" "$TMP/example.c" -L"$BUILD" -laio -o "$TMP/example" 2>"$TMP/cc.log" ||
	fail_with_log "$TMP/cc.log" "libaio.7's example does not compile against include/libaio.h"
odirect_dir
dd if=/dev/urandom of="$ODIRECT_DIR/data" bs=4096 count=2 status=none
out=$(LD_LIBRARY_PATH=$BUILD "$TMP/example" "$ODIRECT_DIR/data" 2>&1) || fail "libaio.7's example failed: $out"
[ "$out" = "read 4096 bytes" ] || fail "libaio.7's example printed '$out', expected 'read 4096 bytes'"
note "libaio.7's example compiles and reads 4096 bytes with O_DIRECT"
note PASS
