#!/bin/sh
# Rebuild the line/inline fixtures of tests/test_debuginfo.py and record the truth they are
# checked against (needs Debian's gcc-s390x-linux-gnu and binutils-s390x-linux-gnu):
#   lines_mock.elf        -O2 -g (DWARF 5, gcc 12's default), linked like a vmlinux (ET_EXEC)
#   lines_mock_dwarf4.elf the same with -gdwarf-4
#   lines_mock*.addr2line `s390x-linux-gnu-addr2line -a -f -i` at every instruction start and
#                         every instruction start minus one (where return addresses - 1 land)
# The sources are copied to /tmp so the DWARF names the build directory /build/lines, like
# a kernel built in its own tree, whatever the checkout's path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/lines_mock.c" "$here/lines_mock.h" "$work/"
cd "$work"
for variant in "lines_mock:-gdwarf-5" "lines_mock_dwarf4:-gdwarf-4"; do
	name=${variant%%:*}
	dwarf=${variant#*:}
	s390x-linux-gnu-gcc -O2 -g "$dwarf" -mbackchain -nostdlib -static -Wl,--build-id \
		-fdebug-prefix-map="$work"=/build/lines -o "$name.elf" lines_mock.c
	addresses=$(s390x-linux-gnu-objdump -d "$name.elf" |
		sed -n 's/^ *\([0-9a-f][0-9a-f]*\):\t.*/\1/p' |
		while read -r a; do
			printf '0x%x\n0x%x\n' $((0x$a - 1)) $((0x$a))
		done | sort -u)
	# shellcheck disable=SC2086 # one argument per address
	s390x-linux-gnu-addr2line -a -f -i -e "$name.elf" $addresses >"$name.addr2line"
	cp "$name.elf" "$name.addr2line" "$here/"
done
