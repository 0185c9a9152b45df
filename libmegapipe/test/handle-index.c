// SPDX-License-Identifier: MIT
/*
 * Handles and MP_HANDLE_INDEX(): handles are ints >= 0 (not small ones);
 * their indexes are below max_handles, unique among live handles, usable
 * for an array of connections, and reused after a release while the
 * handle value is not (the stale one gets EBADF); released indexes are
 * reused oldest first.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "helpers.h"

#define N	32

static void t_index(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	struct mp_info info;
	int lfd = t_listener(&addr), lh, h[N], cfd[N], i, j, old, nh;
	static char seen[1 << MP_HANDLE_INDEX_BITS];

	T_BEGIN("MP_HANDLE_INDEX: below max_handles, unique, reused with a new handle value");
	T_ASSERT(MP_HANDLE_INDEX_BITS == MEGAPIPE_HANDLE_INDEX_BITS, "bits");
	T_ASSERT(MP_HANDLE_INDEX(0x7fffffff) == (1 << MP_HANDLE_INDEX_BITS) - 1 &&
		 MP_HANDLE_INDEX(3 << MP_HANDLE_INDEX_BITS | 5) == 5, "the macro");
	T_CALL(mp_features(mp, &info));
	lh = mp_register(mp, lfd, 0, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_ASSERT((unsigned int)MP_HANDLE_INDEX(lh) < info.max_handles, "listener index");
	seen[MP_HANDLE_INDEX(lh)] = 1;
	T_CALL(mp_accept(mp, lh, N, 0));
	for (i = 0; i < N; i++) {
		cfd[i] = t_client(&addr);
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result >= 0, "accept %d", i);
		h[i] = c.new_handle;
		T_ASSERT(h[i] >= 0, "handle %d", h[i]);
		T_ASSERT((unsigned int)MP_HANDLE_INDEX(h[i]) < info.max_handles, "index of %d", h[i]);
		T_ASSERT(!seen[MP_HANDLE_INDEX(h[i])], "index %d twice", MP_HANDLE_INDEX(h[i]));
		seen[MP_HANDLE_INDEX(h[i])] = 1;
	}
	if (info.backend == MP_BACKEND_EPOLL)
		T_ASSERT(lh >= 1 << MP_HANDLE_INDEX_BITS, "epoll handles start at 2^20: %d", lh);
	/* release one: its index comes back with another handle value */
	old = h[7];
	T_CALL(mp_disconnect(mp, old));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT, "disconnect");
	for (j = 0, nh = -1; j < 8 * N && nh < 0; j++) {
		T_CALL(mp_accept(mp, lh, 1, 0));
		cfd[7] = t_client(&addr);
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result >= 0, "accept");
		if (MP_HANDLE_INDEX(c.new_handle) == MP_HANDLE_INDEX(old))
			nh = c.new_handle;
		else
			T_ASSERT(!seen[MP_HANDLE_INDEX(c.new_handle)], "index in use handed out");
		seen[MP_HANDLE_INDEX(c.new_handle)] = 1;
	}
	if (nh >= 0) {
		T_ASSERT(nh != old, "same handle value %d after reuse", nh);
		T_ERRNO(mp_set_cookie(mp, old, 1), EBADF);	/* stale */
		T_CALL(mp_set_cookie(mp, nh, 1));
	} else {
		t_skip("index reuse", "the backend did not reuse the index in 256 accepts");
	}
	for (i = 0; i < N; i++)
		close(cfd[i]);
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

/*
 * A released index is reused only after the indexes released before it
 * (oldest first; indexes never used come before any released one), on
 * both backends: the value of a handle gone comes back only after its
 * index was reused 2047 times, not after 2047 handles.
 */
static void t_fifo(void)
{
	struct mp_channel *mp = t_channel(64);
	static char seen[1 << MP_HANDLE_INDEX_BITS];
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr), lh, h[8], cfd[9], i, x;

	T_BEGIN("released indexes are reused oldest first");
	lh = mp_register(mp, lfd, 0, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	seen[MP_HANDLE_INDEX(lh)] = 1;
	T_CALL(mp_accept(mp, lh, 8, 0));
	for (i = 0; i < 8; i++) {
		cfd[i] = t_client(&addr);
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result >= 0, "accept %d", i);
		h[i] = c.new_handle;
		seen[MP_HANDLE_INDEX(h[i])] = 1;
	}
	/* released: 2, then 5 */
	T_CALL(mp_disconnect(mp, h[2]));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT, "disconnect 2");
	T_CALL(mp_disconnect(mp, h[5]));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT, "disconnect 5");
	T_CALL(mp_accept(mp, lh, 1, 0));
	cfd[8] = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result >= 0, "accept");
	x = MP_HANDLE_INDEX(c.new_handle);
	T_ASSERT(x != MP_HANDLE_INDEX(h[5]), "the index released last (%d) reused first", x);
	T_ASSERT(!seen[x] || x == MP_HANDLE_INDEX(h[2]),
		 "index %d: neither a new one nor the one released first", x);
	for (i = 0; i < 9; i++)
		close(cfd[i]);
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

int main(void)
{
	t_index();
	t_fifo();
	return t_done();
}
