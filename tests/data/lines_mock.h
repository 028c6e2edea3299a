/* Inline helpers of lines_mock.c, in a header like the kernel's: their lines belong to this file. */
#ifndef LINES_MOCK_H
#define LINES_MOCK_H

extern volatile long sink;
void consume(long value);

static inline __attribute__((always_inline)) long scale(long x)
{
	sink += x;
	return x * 3 + sink;
}

static inline __attribute__((always_inline)) long twice_scaled(long x)
{
	long a = scale(x);

	consume(a);
	return scale(a + 1);
}

#endif
