// SPDX-License-Identifier: MIT
/*
 * A listener registered with its thread's CPU, exactly as the porting
 * guide (docs/channel.md) shows: a cpu_set_t with CPU_SET(my_cpu); an
 * array of uint64_t words (the ABI's layout) works too; an int is refused
 * with EINVAL, as documented.  Accepts work through the registration.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>

#include "helpers.h"

static void t_guide_example(void)
{
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr), my_cpu = sched_getcpu(), cfd;

	T_BEGIN("the guide's example: cpu_set_t with the thread's CPU, then an accept");
	T_ASSERT(my_cpu >= 0, "sched_getcpu");
	/* from docs/channel.md, "Porting an epoll server" */
	struct mp_channel *mp = mp_create(0, 0);		/* one per thread */
	cpu_set_t cpus;						/* this thread's CPU(s) */
	CPU_ZERO(&cpus);
	CPU_SET(my_cpu, &cpus);					/* my_cpu: an int, the CPU number */
	int lh = mp_register(mp, lfd, 0, &cpus, sizeof(cpus));
	/* end of the example */
	T_ASSERT(mp && lh >= 0, "register with cpu %d: %s", my_cpu, strerror(errno));
	T_CALL(mp_accept(mp, lh, 1, 0));
	cfd = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result >= 0, "accept");
	close(cfd);
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

static void t_forms(void)
{
	struct mp_channel *mp = t_channel(0);
	struct sockaddr_in addr;
	int lfd = t_listener(&addr), cpu = sched_getcpu(), lh;
	uint64_t words[MEGAPIPE_CPUMASK_MAX_BYTES / 8] = { 0 };
	unsigned long one[1] = { 0 };

	T_BEGIN("CPU sets: uint64_t words and unsigned long arrays work, an int is EINVAL");
	T_ASSERT(cpu >= 0, "sched_getcpu");
	T_ERRNO(mp_register(mp, lfd, 0, &cpu, sizeof(cpu)), EINVAL);	/* the old example's bug */
	words[cpu / 64] |= 1ULL << (cpu % 64);
	lh = mp_register(mp, lfd, 0, words, sizeof(words));
	T_ASSERT(lh >= 0, "uint64_t words: %s", strerror(errno));
	T_CALL(mp_unregister(mp, lh));
	if ((size_t)cpu < 8 * sizeof(one[0])) {
		one[0] = 1UL << cpu;
		lh = mp_register(mp, lfd, 0, one, sizeof(one));
		T_ASSERT(lh >= 0, "one unsigned long: %s", strerror(errno));
		T_CALL(mp_unregister(mp, lh));
	}
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

int main(void)
{
	t_guide_example();
	t_forms();
	return t_done();
}
