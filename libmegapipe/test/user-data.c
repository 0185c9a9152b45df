// SPDX-License-Identifier: MIT
/*
 * User data: each request's own 64 bits come back in each of its
 * completions (the cookie names the connection, the user data the request).
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "helpers.h"

static void t_per_request(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	struct sockaddr_in addr;
	char buf[8];
	struct sockaddr_in addr2;
	int lh, h, cfd, cfd2, lfd, lfd2, i;

	T_BEGIN("user data: two writes of one handle complete with their own");
	if (!t_has(MP_FEAT_USER_DATA, t_name)) {
		mp_destroy(mp);
		return;
	}
	lfd = t_listener(&addr);
	lh = mp_register(mp, lfd, 1000, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_CALL(mp_accept(mp, lh, 1, 0));
	cfd = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result == 0, "accept");
	h = c.new_handle;
	T_CALL(mp_set_cookie(mp, h, 5));
	T_CALL(mp_write(mp, h, "ab", 2));
	T_CALL(mp_set_user_data(mp, 0x1111));
	T_CALL(mp_write(mp, h, "cd", 2));
	T_CALL(mp_set_user_data(mp, UINT64_MAX));
	T_CALL(mp_write(mp, h, "ef", 2));	/* none set: 0 */
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.cookie == 5 &&
		 c.user_data == 0x1111, "first write: %llx", (unsigned long long)c.user_data);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.cookie == 5 &&
		 c.user_data == UINT64_MAX, "second write: %llx", (unsigned long long)c.user_data);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.user_data == 0,
		 "third write (none set): %llx", (unsigned long long)c.user_data);
	T_ASSERT(!t_read_full(cfd, buf, 6) && !memcmp(buf, "abcdef", 6), "stream");

	/* a read, a cancel, a disconnect */
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_CALL(mp_set_user_data(mp, 0x2222));
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_READ)));
	T_CALL(mp_set_user_data(mp, 0x3333));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED &&
		 c.user_data == 0x2222, "cancelled read: %llx", (unsigned long long)c.user_data);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 1 &&
		 c.user_data == 0x3333, "cancel: %llx", (unsigned long long)c.user_data);
	T_CALL(mp_disconnect(mp, h));
	T_CALL(mp_set_user_data(mp, 0x4444));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT && c.user_data == 0x4444,
		 "disconnect: %llx", (unsigned long long)c.user_data);
	close(cfd);
	T_OK();

	T_BEGIN("user data: every completion of an accept carries the accept's");
	T_CALL(mp_accept(mp, lh, 2, 0));
	T_CALL(mp_set_user_data(mp, 0xacce));
	T_CALL(mp_flush(mp));
	cfd = t_client(&addr);
	cfd2 = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && (c.flags & MP_F_MORE) &&
		 c.user_data == 0xacce, "first accept: %llx", (unsigned long long)c.user_data);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && !(c.flags & MP_F_MORE) &&
		 c.user_data == 0xacce, "second accept: %llx", (unsigned long long)c.user_data);
	close(cfd);
	close(cfd2);
	T_OK();

	T_BEGIN("user data: a connect's, and each of a batch's own");
	lfd2 = t_listener(&addr2);	/* not the channel's */
	T_CALL(mp_connect(mp, (struct sockaddr *)&addr2, sizeof(addr2), 77));
	T_CALL(mp_set_user_data(mp, 0xc0));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CONNECT && c.result == 0 &&
		 c.cookie == 77 && c.user_data == 0xc0, "connect: %d %llx", c.result,
		 (unsigned long long)c.user_data);
	h = c.new_handle;
	T_CALL(mp_write(mp, h, "x", 1));
	T_CALL(mp_set_user_data(mp, 0xbad));
	T_CALL(mp_disconnect(mp, h));
	T_CALL(mp_set_user_data(mp, 0xd15c));
	for (i = 0; i < 2; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
		T_ASSERT(c.user_data == (c.op == MP_OP_WRITE ? 0xbadULL : 0xd15cULL),
			 "op %d: %llx", c.op, (unsigned long long)c.user_data);
	}
	T_OK();

	T_BEGIN("mp_set_user_data: EINVAL with no request queued since the last submission");
	T_ERRNO(mp_set_user_data(mp, 1), EINVAL);
	T_CALL(mp_accept(mp, lh, 1, 0));
	T_CALL(mp_flush(mp));
	T_ERRNO(mp_set_user_data(mp, 1), EINVAL);
	/* a failed call queues nothing: the last queued one is still labelled */
	T_CALL(mp_cancel(mp, lh, 0));
	T_ERRNO(mp_read(mp, lh, buf, 1), EINVAL);
	T_CALL(mp_set_user_data(mp, 0xca));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result == -ECANCELED &&
		 c.user_data == 0, "the accept: %llx", (unsigned long long)c.user_data);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.user_data == 0xca,
		 "the cancel: %llx", (unsigned long long)c.user_data);
	T_OK();
	close(lfd);
	close(lfd2);
	mp_destroy(mp);
}

int main(void)
{
	t_per_request();
	return t_done();
}
