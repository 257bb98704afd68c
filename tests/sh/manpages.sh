#!/usr/bin/env bash
# The man pages in man/: complete, clean, readable in place and installed.
#   1. every name exported by libaio.map has a page, or an alias: a symbolic
#      link in man/ to the page that documents it (whose NAME section lists
#      it); no page is a ".so" request, which `man -l` could only resolve
#      from inside an installed tree;
#   2. from the repository, `man --warnings -l man/PAGE` renders every page,
#      aliases included, with nothing on stderr, from the repository root and
#      from another directory, an alias exactly as the page it names;
#   3. every page, once `make install`ed (an alias becomes a ".so manN/page.N"
#      page, resolved as it will be on a system), passes `mandoc -Tlint` with no message of level warning
#      or above (.so links: only mandoc's note that .so is "fragile"), is
#      parsed by lexgrog (the NAME section that whatis/apropos index), and
#      renders with `man --warnings -l` at 80 columns with nothing on stderr;
#   4. every full page has the sections a library page needs, and states the
#      environment variables the library reads; libaio(7) documents every
#      LIBAIO_RS_* variable the library reads (src/config.rs), the engines,
#      the fallback, the library run as a command and the engine query;
#   5. the complete program in libaio(7)'s EXAMPLES compiles against our
#      header and reads a file with O_DIRECT through our library.
set -eu
. "$(dirname "$0")/lib/common.sh"

require_cmd mandoc mandoc
require_cmd man man-db
require_cmd lexgrog man-db
require_cmd groff groff-base
MAN=$ROOT/man
[ -d "$MAN" ] || fail "no man/ directory"

# Installed alias pages: only ".so manN/target.N".
is_link() { grep -q '^\.so ' "$1"; }

# --- 1. Every exported name has a page; aliases are symbolic links.
names=$(sed -n 's/^[[:space:]]*\(\(io\|libaio_rs\)_[a-z0-9_]*\);/\1/p' "$ROOT/libaio.map" | sort -u)
[ -n "$names" ] || fail "no exported names found in libaio.map"
missing=()
for n in $names; do
	[ -f "$MAN/$n.3" ] || missing+=("$n")
done
[ ${#missing[@]} -eq 0 ] || fail "exported names without a page: ${missing[*]}"
[ -f "$MAN/libaio.7" ] || fail "the overview page man/libaio.7 is missing"
aliases=0
for p in "$MAN"/*.[37]; do
	b=$(basename "$p")
	if [ -L "$p" ]; then
		aliases=$((aliases + 1))
		t=$(readlink "$p")
		case $t in */*) fail "man/$b links to $t, outside man/" ;; esac
		[ -f "$MAN/$t" ] && [ ! -L "$MAN/$t" ] || fail "man/$b links to $t, which is not a page in man/"
		stem=${b%.[0-9]}
		if [ "$stem" != io ]; then
			lexgrog "$MAN/$t" >"$TMP/lexgrog.out" 2>&1 || fail_with_log "$TMP/lexgrog.out" "lexgrog cannot parse man/$t"
			grep -q ": \"$stem - " "$TMP/lexgrog.out" ||
				fail_with_log "$TMP/lexgrog.out" "man/$t's NAME section does not list $stem (man/$b links to it)"
		fi
	else
		! is_link "$p" || fail "man/$b is a .so request: make it a symbolic link (ln -s target $b), which man -l can read in place"
	fi
done
note "$(echo "$names" | wc -l) exported names, each with a page in man/; $aliases files there are alias links"

# --- 2. Readable in place: man -l on the repository's files.
rendered=0
for dir in "$ROOT" "$TMP"; do
	cd "$dir"
	for p in "$MAN"/*.[37]; do
		rel=$p
		[ "$dir" != "$ROOT" ] || rel=man/$(basename "$p")
		out=$TMP/inplace.out err=$TMP/inplace.err
		MANWIDTH=80 man --warnings -l "$rel" >"$out" 2>"$err" || fail_with_log "$err" "man -l $rel failed (in $dir)"
		[ ! -s "$err" ] || fail_with_log "$err" "man --warnings -l $rel wrote warnings (in $dir)"
		[ -s "$out" ] || fail "man -l $rel rendered nothing (in $dir)"
		if [ -L "$p" ]; then
			MANWIDTH=80 man -l "$MAN/$(readlink "$p")" 2>/dev/null | cmp -s - "$out" ||
				fail "man -l $rel does not render the page it links to"
		fi
		rendered=$((rendered + 1))
	done
done
cd "$ROOT"
note "man --warnings -l renders all $((rendered / 2)) files of man/ in place, from the repository root and from elsewhere"

# --- 3. Installed tree: lint, lexgrog, render.
install_ours "$TMP/inst"
MROOT=$TMP/inst/usr/share/man
want=$(cd "$MAN" && ls -1 ./*.[37] | wc -l)
got=$(cd "$MROOT" && ls -1 man3/*.3 man7/*.7 | wc -l)
[ "$want" -eq "$got" ] || fail "make install put $got pages in $MROOT, man/ has $want"

cd "$MROOT"
full=0 links=0
for p in man3/*.3 man7/*.7; do
	src=$MAN/${p#*/}
	if [ -L "$src" ]; then
		t=$(readlink "$src")
		[ "$(cat "$p")" = ".so man${t##*.}/$t" ] || fail "$p is '$(head -c 100 "$p")', want '.so man${t##*.}/$t' (man/${p#*/} links to $t)"
	else
		cmp -s "$p" "$src" || fail "$p differs from $src after make install"
	fi
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

# --- 4. Sections and the facts every full page states.
errors_of() { awk '/^\.SH ERRORS$/ {on = 1; next} on && /^\.SH / {exit} on' "$1"; }
eperm=0
for p in "$MAN"/*.[37]; do
	[ -L "$p" ] && continue
	b=$(basename "$p")
	for s in NAME SYNOPSIS DESCRIPTION ENVIRONMENT 'SEE ALSO'; do
		grep -q "^\.SH \"\{0,1\}$s\"\{0,1\}\$" "$p" || fail "$b has no $s section"
	done
	case $b in libaio.7) ;; *) grep -q '^\.SH RETURN VALUE$' "$p" || fail "$b has no RETURN VALUE section" ;; esac
	grep -q 'LIBAIO_RS_DEBUG' "$p" || fail "$b does not mention LIBAIO_RS_DEBUG"
	grep -q 'LIBAIO_RS_REAP' "$p" || fail "$b does not mention LIBAIO_RS_REAP"
	grep -q 'LIBAIO_RS_ENGINE' "$p" || fail "$b does not mention LIBAIO_RS_ENGINE"
	grep -q 'errno' "$p" || fail "$b does not state what happens to errno"
	# A call that can meet ENOSYS can meet a seccomp filter answering EPERM.
	if errors_of "$p" | grep -q '^\.B ENOSYS$'; then
		errors_of "$p" | awk '/^\.B EPERM$/ {e = 1; next} e && /^\.(TP|PP)/ {exit} e' | grep -q 'seccomp' ||
			fail "$b lists ENOSYS in ERRORS but no EPERM from a seccomp filter"
		((++eperm))
	fi
done
[ "$eperm" -ge 10 ] || fail "only $eperm pages list EPERM from a seccomp filter"
# The overview states the facts the library rests on.
for fact in 'address at which the kernel' 'O_DIRECT' 'EINPROGRESS' 'EINTR' 'SA_RESTART' \
	'aio-max-nr' 'Partial submissions' 'never changed\|None of them sets or changes'; do
	grep -q -- "$fact" "$MAN/libaio.7" || fail "libaio.7 does not say: $fact"
done
grep -q 'Partial submission' "$MAN/io_submit.3" || fail "io_submit.3 does not explain partial submission"
grep -q 'EINPROGRESS' "$MAN/io_cancel.3" || fail "io_cancel.3 does not explain -EINPROGRESS"

# libaio(7): every variable the library reads (the names config.rs lists),
# the engines, the fallback, the library as a command, the engine query.
vars=$(grep -o 'c"LIBAIO_RS_[A-Z_]*"' "$ROOT/src/config.rs" | tr -d 'c"' | sort -u)
[ "$(echo "$vars" | wc -l)" -ge 4 ] || fail "fewer than 4 LIBAIO_RS_ variables found in src/config.rs"
for v in $vars; do
	grep -q "^\.B $v\$" "$MAN/libaio.7" || fail "libaio.7's ENVIRONMENT has no entry for $v"
done
for w in '^\.SS Engines$' '^\.SS The library as a command$' 'io_context_engine (3)' 'LIBAIO_RS_2'; do
	grep -q "$w" "$MAN/libaio.7" || fail "libaio.7 lacks /$w/"
done
note "libaio.7 documents $(echo $vars), the engines, the library as a command and io_context_engine(3)"

# --- 5. libaio(7)'s example program works as printed.
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
