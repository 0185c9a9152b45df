/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CPU lists ("0-3", "0,2", "2-3,6") and thread pinning, shared by the
 * servers and by mp-load.
 */
#ifndef MP_CPULIST_H
#define MP_CPULIST_H

/*
 * Parse @s into a newly allocated array of CPU numbers, in the order they
 * are written.  Returns the number of CPUs, or -1 if @s is malformed.
 */
int cpulist_parse(const char *s, int **cpus);

/* Pin the calling thread to @cpu; returns 0 or an errno value. */
int cpulist_pin_self(int cpu);

#endif
