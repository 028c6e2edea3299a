/*
 * Source lines and inline chains for tests/test_debuginfo.py: a tiny s390x program built with
 * -O2 -g, where always_inline helpers (lines_mock.h) nest two deep inside callers, and a
 * static function is inlined into two callers. build_lines_mock.sh builds lines_mock.elf and
 * records s390x-linux-gnu-addr2line -f -i at every instruction in lines_mock.addr2line.
 */
#include "lines_mock.h"

volatile long sink;

__attribute__((noinline)) void consume(long value)
{
	sink = value;
}

static inline __attribute__((always_inline)) long step(long v)
{
	if (v & 1)
		consume(v);
	return v + twice_scaled(v);
}

__attribute__((noinline)) long leaf(long v)
{
	long total = 0;

	for (long i = 0; i < v; i++)
		total += scale(i);
	return total;
}

__attribute__((noinline)) long middle(long v)
{
	long r = step(v);

	consume(r);
	return leaf(r) + step(r + 2);
}

__attribute__((noinline)) long outer(long v)
{
	long r = middle(v) + 1;

	consume(r);
	return r;
}

void _start(void)
{
	for (;;)
		consume(outer(sink));
}
