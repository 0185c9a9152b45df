// SPDX-License-Identifier: MIT
/*
 * One listener registered in several channels (one channel per thread, as
 * the guide recommends): a channel that unregisters it or is destroyed
 * leaves the others working (the epoll backend needs the listener
 * non-blocking while any channel has it: it must not block in accept4()),
 * and the listener's own file status flags come back when the last
 * registration goes, whichever goes last.  Registrations from several
 * threads at once are counted right.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "helpers.h"

/* A backend blocked in accept4() never comes back: fail instead of hanging. */
static void on_alarm(int sig)
{
	static const char msg[] = "not ok - hung (blocked in accept4()?)\n";

	(void)sig;
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* Two connections through @mp's listener handle @lh, one accept of 2. */
static int accept_two(struct mp_channel *mp, int lh, const struct sockaddr_in *addr)
{
	struct mp_completion c;
	int cfd[2], i, got = 0;

	if (mp_accept(mp, lh, 2, 0))
		return -1;
	for (i = 0; i < 2; i++) {
		cfd[i] = t_client(addr);
		if (!t_next(mp, &c, 5000) || c.op != MP_OP_ACCEPT || c.result < 0)
			break;
		got++;
		/* accepted connections are lightweight or the channel's: disconnect */
		if (mp_disconnect(mp, c.new_handle) || !t_next(mp, &c, 5000) ||
		    c.op != MP_OP_DISCONNECT)
			break;
	}
	for (int k = 0; k < i && k < 2; k++)
		close(cfd[k]);
	if (i < 2)
		close(cfd[i]);
	return got == 2 ? 0 : -1;
}

static void t_destroy_first(void)
{
	struct mp_channel *a = t_channel(64), *b = t_channel(64);
	struct sockaddr_in addr;
	int lfd = t_listener(&addr), fl, la, lb;

	T_BEGIN("two channels, the first registrant destroyed: the second still accepts, never blocks");
	fl = fcntl(lfd, F_GETFL);
	T_ASSERT(fl >= 0 && !(fl & O_NONBLOCK), "listener starts blocking");
	la = mp_register(a, lfd, 1, NULL, 0);
	lb = mp_register(b, lfd, 2, NULL, 0);
	T_ASSERT(la >= 0 && lb >= 0, "register in both: %s", strerror(errno));
	mp_destroy(a);
	alarm(20);
	T_ASSERT(!accept_two(b, lb, &addr), "accepts through the second channel");
	alarm(0);
	T_CALL(mp_unregister(b, lb));
	T_ASSERT(fcntl(lfd, F_GETFL) == fl, "flags back after the last unregistration: %#x, want %#x",
		 fcntl(lfd, F_GETFL), fl);
	mp_destroy(b);
	close(lfd);
	T_OK();
}

static void t_unregister_orders(void)
{
	struct sockaddr_in addr;
	int lfd = t_listener(&addr), fl, order;

	T_BEGIN("three channels, unregistered/destroyed in every order: the others accept, flags back at the end");
	fl = fcntl(lfd, F_GETFL);
	for (order = 0; order < 6; order++) {
		static const int perm[6][3] = {
			{ 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 }, { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 },
		};
		struct mp_channel *mp[3];
		int lh[3], k, j;

		for (k = 0; k < 3; k++) {
			mp[k] = t_channel(64);
			lh[k] = mp_register(mp[k], lfd, k, NULL, 0);
			T_ASSERT(lh[k] >= 0, "register %d: %s", k, strerror(errno));
		}
		for (k = 0; k < 3; k++) {
			int gone = perm[order][k];

			/* odd orders unregister, even ones destroy the channel */
			if (order & 1) {
				T_CALL(mp_unregister(mp[gone], lh[gone]));
			} else {
				mp_destroy(mp[gone]);
				mp[gone] = NULL;
			}
			if (k < 2) {
				T_ASSERT(fcntl(lfd, F_GETFL) >= 0, "fd");
				alarm(20);
				for (j = 0; j < 3; j++) {
					int alive = perm[order][j];

					if (j > k)
						T_ASSERT(!accept_two(mp[alive], lh[alive], &addr),
							 "order %d step %d: channel %d accepts", order, k, alive);
				}
				alarm(0);
			}
		}
		T_ASSERT(fcntl(lfd, F_GETFL) == fl, "order %d: flags %#x, want %#x", order,
			 fcntl(lfd, F_GETFL), fl);
		for (k = 0; k < 3; k++)
			mp_destroy(mp[k]);
	}
	close(lfd);
	T_OK();
}

static void t_nonblocking_listener(void)
{
	struct mp_channel *a = t_channel(64), *b = t_channel(64);
	struct sockaddr_in addr;
	int lfd = t_listener(&addr), fl, la, lb;

	T_BEGIN("a listener that was non-blocking stays so after every unregistration");
	fl = fcntl(lfd, F_GETFL) | O_NONBLOCK;
	T_ASSERT(!fcntl(lfd, F_SETFL, fl), "set O_NONBLOCK");
	la = mp_register(a, lfd, 1, NULL, 0);
	lb = mp_register(b, lfd, 2, NULL, 0);
	T_ASSERT(la >= 0 && lb >= 0, "register");
	T_CALL(mp_unregister(a, la));
	mp_destroy(b);
	T_ASSERT(fcntl(lfd, F_GETFL) == fl, "flags %#x, want %#x", fcntl(lfd, F_GETFL), fl);
	mp_destroy(a);
	close(lfd);
	T_OK();
}

#define NTHREADS	8
#define ROUNDS		200

static int shared_lfd;
static pthread_barrier_t barrier;

static void *reg_thread(void *arg)
{
	struct mp_channel *mp = mp_create(0, 16);
	struct mp_info info;
	long bad = 0;
	int i, lh;
	bool epoll;

	(void)arg;
	if (!mp || mp_features(mp, &info))
		return (void *)1L;
	epoll = info.backend == MP_BACKEND_EPOLL;
	pthread_barrier_wait(&barrier);
	for (i = 0; i < ROUNDS; i++) {
		lh = mp_register(mp, shared_lfd, 0, NULL, 0);
		if (lh < 0) {
			bad++;
			continue;
		}
		/* while this thread has it registered, epoll must not block in accept4() */
		if (epoll && !(fcntl(shared_lfd, F_GETFL) & O_NONBLOCK))
			bad++;
		if (mp_unregister(mp, lh))
			bad++;
	}
	mp_destroy(mp);
	return (void *)bad;
}

static void t_threads(void)
{
	pthread_t th[NTHREADS];
	struct sockaddr_in addr;
	int fl, i;
	long bad = 0;

	T_BEGIN("8 threads registering and unregistering one listener at once: flags back at the end");
	shared_lfd = t_listener(&addr);
	fl = fcntl(shared_lfd, F_GETFL);
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++)
		T_ASSERT(!pthread_create(&th[i], NULL, reg_thread, NULL), "thread");
	for (i = 0; i < NTHREADS; i++) {
		void *r;

		pthread_join(th[i], &r);
		bad += (long)r;
	}
	pthread_barrier_destroy(&barrier);
	T_ASSERT(!bad, "%ld failed registrations or blocking listeners", bad);
	T_ASSERT(fcntl(shared_lfd, F_GETFL) == fl, "flags %#x, want %#x",
		 fcntl(shared_lfd, F_GETFL), fl);
	close(shared_lfd);
	T_OK();
}

int main(void)
{
	signal(SIGALRM, on_alarm);
	t_destroy_first();
	t_unregister_orders();
	t_nonblocking_listener();
	t_threads();
	return t_done();
}
