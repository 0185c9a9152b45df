// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "cpulist.h"

static int parse_cpu(const char *s, char **end)
{
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, end, 10);
	if (errno || v >= CPU_SETSIZE)
		return -1;
	return v;
}

int cpulist_parse(const char *s, int **cpus)
{
	int *out = NULL, n = 0, lo, hi;
	char *end;

	do {
		lo = parse_cpu(s, &end);
		hi = lo;
		if (lo >= 0 && *end == '-')
			hi = parse_cpu(end + 1, &end);
		if (lo < 0 || hi < lo || (*end && *end != ','))
			goto bad;
		for (; lo <= hi; lo++) {
			int *p = realloc(out, (n + 1) * sizeof(*out));

			if (!p)
				goto bad;
			out = p;
			out[n++] = lo;
		}
		s = end + 1;
	} while (*end);

	*cpus = out;
	return n;
bad:
	free(out);
	return -1;
}

int cpulist_pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}
