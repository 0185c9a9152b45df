// SPDX-License-Identifier: GPL-2.0
/*
 * sharing-pingpong ROUNDS [CPU_A CPU_B]: the guest half of
 * sharing-selftest.sh.  Two threads, pinned to CPU_A and CPU_B (default 0
 * and 1), pass a flag back and forth ROUNDS times inside one marker window.
 * On its turn each thread also adds 1 to a shared token with one locked
 * read-modify-write instruction, and increments a counter of its own.
 *
 * In sharing.so's model each round trip is exactly 4 transfers of the flag's
 * line: A's store (B holds the line), B's load (A wrote it last), B's store
 * (A holds it), A's load.  A spin loop's further loads hit the local copy.
 * The token moves twice per round trip, each time with one instruction that
 * loads and stores it: 2 transfers (the load's; the same instruction's store
 * adds none), not 4.  The window opens in A right after its load of round
 * WARMUP succeeded, and closes in A after the load of round WARMUP+ROUNDS,
 * so it holds exactly ROUNDS round trips: 6*ROUNDS user transfers, 4*ROUNDS
 * on the flag's line, 2*ROUNDS on the token's, none on the counters (each on
 * a line of its own, touched by one CPU only).  Prints the user addresses
 * of the flag, the token and the counters for the checker.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "marker.h"

#define WARMUP 16

struct padded {
	volatile long v;
	char pad[64 - sizeof(long)];
} __attribute__((aligned(64)));

static struct padded flag;
static struct padded token;
static struct padded counter[2];
static long rounds;
static int cpu[2] = { 0, 1 };

static void pin(int c)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(c, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		exit(1);
	}
}

/* Wait until the flag is @want; one load per iteration, then pause (which
 * also ends the vCPU's turn under round-robin TCG). */
static inline void wait_for(long want)
{
	while (__atomic_load_n(&flag.v, __ATOMIC_ACQUIRE) != want)
		__builtin_ia32_pause();
}

static void *side_b(void *arg)
{
	long i;

	(void)arg;
	pin(cpu[1]);
	for (i = 0; i < WARMUP + rounds + 1; i++) {
		wait_for(2 * i + 1);
		__atomic_fetch_add(&token.v, 1, __ATOMIC_RELAXED);
		counter[1].v++;
		__atomic_store_n(&flag.v, 2 * i + 2, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * "contend": both threads add 1 to one shared counter ROUNDS times each with
 * lock xadd, no handoff, inside the window.  On hardware nearly every add
 * would move the line; the model under round-robin TCG counts one transfer
 * per vCPU switch (the blind spot, see README.md).  Not an exact test.
 */
static pthread_barrier_t barrier;
static struct padded shared;

static void *contend(void *arg)
{
	long side = (long)arg, i;

	pin(cpu[side]);
	pthread_barrier_wait(&barrier);
	if (side == 0)
		mp_mark_start();
	for (i = 0; i < rounds; i++)
		__atomic_fetch_add(&shared.v, 1, __ATOMIC_SEQ_CST);
	pthread_barrier_wait(&barrier);
	if (side == 0)
		mp_mark_stop();
	return NULL;
}

static int run_contend(void)
{
	pthread_t t;

	pthread_barrier_init(&barrier, NULL, 2);
	if (pthread_create(&t, NULL, contend, (void *)1L)) {
		perror("pthread_create");
		return 1;
	}
	contend((void *)0L);
	pthread_join(t, NULL);
	printf("contend rounds %ld shared %p sum %ld\n", rounds,
	       (void *)&shared.v, shared.v);
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t t;
	long i;

	if (argc == 3 && !strcmp(argv[1], "contend")) {
		rounds = atol(argv[2]);
		return rounds < 1 ? 2 : run_contend();
	}
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: sharing-pingpong ROUNDS [CPU_A CPU_B]\n"
			"       sharing-pingpong contend ROUNDS\n");
		return 2;
	}
	rounds = atol(argv[1]);
	if (argc == 4) {
		cpu[0] = atoi(argv[2]);
		cpu[1] = atoi(argv[3]);
	}
	if (rounds < 1)
		return 2;
	pin(cpu[0]);
	if (pthread_create(&t, NULL, side_b, NULL)) {
		perror("pthread_create");
		return 1;
	}
	for (i = 0; i <= WARMUP + rounds; i++) {
		wait_for(2 * i);
		if (i == WARMUP)
			mp_mark_start();
		if (i == WARMUP + rounds) {
			mp_mark_stop();
			break;
		}
		__atomic_fetch_add(&token.v, 1, __ATOMIC_RELAXED);
		counter[0].v++;
		__atomic_store_n(&flag.v, 2 * i + 1, __ATOMIC_RELEASE);
	}
	/* let B finish its last round */
	__atomic_store_n(&flag.v, 2 * i + 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	printf("pingpong rounds %ld flag %p token %p counter0 %p counter1 %p "
	       "count0 %ld count1 %ld tokens %ld\n", rounds, (void *)&flag.v,
	       (void *)&token.v, (void *)&counter[0].v, (void *)&counter[1].v,
	       counter[0].v, counter[1].v, token.v);
	return 0;
}
