// SPDX-License-Identifier: MIT
/*
 * MEGAPIPE_BACKEND set to a bad value: mp_create() fails with EINVAL and
 * says why on stderr, once per process (not once per call).
 */
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static void t_bad_env(void)
{
	char out[4096] = "", *p;
	int pfd[2], st, lines = 0;
	ssize_t n, got = 0;
	pid_t pid;

	T_BEGIN("MEGAPIPE_BACKEND=bogus: EINVAL from every mp_create, one clear message on stderr");
	T_ASSERT(!pipe(pfd), "pipe");
	pid = fork();
	if (pid == 0) {
		int bad = 0, i;

		dup2(pfd[1], 2);
		close(pfd[0]);
		setenv("MEGAPIPE_BACKEND", "bogus", 1);
		for (i = 0; i < 3; i++) {
			errno = 0;
			if (mp_create(0, 0) || errno != EINVAL)
				bad++;
		}
		/* a flag still wins over the environment */
		struct mp_channel *mp = mp_create(MP_CREATE_EPOLL, 0);

		if (!mp)
			bad++;
		mp_destroy(mp);
		_exit(bad);
	}
	T_ASSERT(pid > 0, "fork");
	close(pfd[1]);
	while (got < (ssize_t)sizeof(out) - 1 &&
	       (n = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = 0;
	close(pfd[0]);
	T_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
		 "child: %d calls went wrong", WEXITSTATUS(st));
	for (p = out; *p; p++)
		lines += *p == '\n';
	T_ASSERT(lines == 1, "%d lines on stderr, want 1: \"%s\"", lines, out);
	T_ASSERT(strstr(out, "MEGAPIPE_BACKEND") && strstr(out, "bogus") &&
		 strstr(out, "kernel") && strstr(out, "epoll"),
		 "the message names the variable, its value and the choices: \"%s\"", out);
	T_OK();
}

static void t_dispatch_nothing(void)
{
	struct mp_channel *mp = t_channel(0);
	struct mp_completion c;
	long long t0 = t_ms();

	T_BEGIN("mp_dispatch with nothing queued or in flight: ENOENT at once, whatever the timeout");
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);
	T_ERRNO(mp_dispatch(mp, &c, 100), ENOENT);
	T_ERRNO(mp_dispatch(mp, &c, -1), ENOENT);	/* would wait forever */
	T_ASSERT(t_ms() - t0 < 50, "took %lld ms", t_ms() - t0);
	T_ASSERT(mp_flush(mp) == 0, "flush of nothing");
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_bad_env();
	t_dispatch_nothing();
	return t_done();
}
