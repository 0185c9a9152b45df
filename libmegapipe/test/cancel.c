// SPDX-License-Identifier: MIT
/* Cancel: by opcode mask, accepts, connects, nothing to cancel, bad input. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <unistd.h>

#include "helpers.h"

static void t_reads(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char buf[2][16];
	int lh, h, cfd;

	T_BEGIN("cancel reads: both -ECANCELED in order, then the cancel with 2; writes untouched");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_read(mp, h, buf[0], 16));
	T_CALL(mp_read(mp, h, buf[1], 16));
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_WRITE)));	/* no writes: 0 */
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_READ)));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 0, "cancel writes: %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED, "read 1: %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED, "read 2: %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 2 && c.handle == h,
		 "cancel: %d", c.result);
	/* the handle still works */
	T_CALL(mp_read(mp, h, buf[0], 16));
	T_ASSERT(write(cfd, "z", 1) == 1, "client write");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == 1, "read after: %d", c.result);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_accepts(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr), lh, cl;

	T_BEGIN("cancel an accept of 10 after one connection: 1 completion with MORE, then -ECANCELED");
	lh = mp_register(mp, lfd, 3, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_CALL(mp_accept(mp, lh, 10, 0));
	cl = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result == 0 &&
		 (c.flags & MP_F_MORE), "accept");
	T_CALL(mp_cancel(mp, lh, 0));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result == -ECANCELED &&
		 !(c.flags & MP_F_MORE), "cancelled accept: %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 1, "cancel: %d", c.result);
	/* the 9 reserved completions are back: 64 reads' worth fit again */
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);
	T_CALL(mp_unregister(mp, lh));	/* nothing in flight any more */
	close(cl);
	close(lfd);
	mp_destroy(mp);
	T_OK();
}

static void t_connects(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr), n = 0, cancelled = 0, ok = 0, i;

	T_BEGIN("cancel connects (MP_NO_HANDLE): each connect completes once, cancel counts them");
	for (i = 0; i < 4; i++)
		T_CALL(mp_connect(mp, (struct sockaddr *)&addr, sizeof(addr), 100 + i));
	T_CALL(mp_cancel(mp, MP_NO_HANDLE, MP_CANCEL_OP(MP_OP_CONNECT)));
	while (n < 5) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", n);
		n++;
		if (c.op == MP_OP_CANCEL) {
			T_ASSERT(c.result == cancelled, "cancel %d, saw %d cancelled", c.result, cancelled);
			continue;
		}
		T_ASSERT(c.op == MP_OP_CONNECT && c.cookie >= 100 && c.cookie < 104, "connect");
		if (c.result == -ECANCELED) {
			T_ASSERT(c.new_handle == MP_NO_HANDLE, "no handle");
			cancelled++;
		} else {
			T_ASSERT(c.result == 0 && c.new_handle >= 0, "connect %d", c.result);
			ok++;
		}
	}
	T_ASSERT(ok + cancelled == 4, "%d connected, %d cancelled", ok, cancelled);
	printf("#   %d connected before the cancel, %d cancelled\n", ok, cancelled);
	close(lfd);
	mp_destroy(mp);
	T_OK();
}

static void t_bad(void)
{
	struct mp_channel *mp = t_channel(64);
	int lh, h, cfd;

	T_BEGIN("cancel: unknown handle EBADF, bad mask EINVAL");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_ERRNO(mp_cancel(mp, h + 1, 0), EBADF);
	T_ERRNO(mp_cancel(mp, -5, 0), EBADF);
	T_ERRNO(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_DISCONNECT)), EINVAL);
	T_ERRNO(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_CANCEL)), EINVAL);
	T_ERRNO(mp_cancel(mp, h, 1U << 30), EINVAL);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_reads();
	t_accepts();
	if (t_has(MP_FEAT_CONNECT, "cancel connects"))
		t_connects();
	t_bad();
	return t_done();
}
