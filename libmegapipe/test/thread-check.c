// SPDX-License-Identifier: MIT
/*
 * One channel per thread: the debug build (libmegapipe-debug.a, -DMP_DEBUG)
 * aborts when a channel is used by a thread other than its creator.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static struct mp_channel *shared;

static void *other_thread(void *arg)
{
	struct mp_completion c;

	(void)arg;
	mp_dispatch(shared, &c, 0);
	return NULL;
}

static void t_owner(void)
{
	struct mp_completion c;
	pthread_t th;
	int st;
	pid_t pid;

	T_BEGIN("debug build: the creating thread may use its channel");
	shared = t_channel(16);
	T_ERRNO(mp_dispatch(shared, &c, 0), ENOENT);
	T_OK();

	T_BEGIN("debug build: another thread using the channel aborts");
	pid = fork();
	if (pid == 0) {
		/* a fresh channel in the child: created by this thread */
		shared = mp_create(0, 16);
		if (!shared)
			_exit(3);
		pthread_create(&th, NULL, other_thread, NULL);
		pthread_join(th, NULL);
		_exit(0);
	}
	T_ASSERT(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
	T_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x", st);
	mp_destroy(shared);
	T_OK();
}

int main(void)
{
	t_owner();
	return t_done();
}
