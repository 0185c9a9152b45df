// SPDX-License-Identifier: MIT
/* Cookies: from registration, 0 for accepted handles until set, set per handle. */
#define _GNU_SOURCE
#include <unistd.h>

#include "helpers.h"

static void t_cookies(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	char buf[4];
	int lfd = t_listener(&addr), lh, h, cfd, h2;

	T_BEGIN("cookie: listener's on accepts, 0 on a new handle, then what mp_set_cookie set");
	lh = mp_register(mp, lfd, 0xfeedfacecafeULL, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_CALL(mp_accept(mp, lh, 1, 0));
	cfd = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.cookie == 0xfeedfacecafeULL, "accept cookie");
	h = c.new_handle;
	T_CALL(mp_write(mp, h, "a", 1));
	T_ASSERT(t_next(mp, &c, 2000) && c.cookie == 0, "new handle's cookie is 0: %llu",
		 (unsigned long long)c.cookie);
	T_CALL(mp_set_cookie(mp, h, 0x1234));
	T_CALL(mp_write(mp, h, "b", 1));
	T_CALL(mp_read(mp, h, buf, 1));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.cookie == 0x1234, "after set");
	T_ASSERT(write(cfd, "r", 1) == 1, "client write");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.cookie == 0x1234, "read too");
	T_CALL(mp_set_cookie(mp, h, UINT64_MAX));
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT && c.cookie == UINT64_MAX,
		 "disconnect carries the last cookie");
	T_ERRNO(mp_set_cookie(mp, h, 1), EBADF);
	/* cookies are per handle */
	T_CALL(mp_accept(mp, lh, 1, 0));
	close(cfd);
	cfd = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.cookie == 0xfeedfacecafeULL, "listener kept its cookie");
	h2 = c.new_handle;
	T_CALL(mp_set_cookie(mp, h2, 7));
	T_CALL(mp_set_cookie(mp, lh, 8));
	T_CALL(mp_accept(mp, lh, 1, 0));
	T_CALL(mp_write(mp, h2, "c", 1));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.cookie == 7, "h2 cookie");
	close(cfd);
	cfd = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.cookie == 8, "listener cookie changed");
	close(cfd);
	close(lfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_cookies();
	return t_done();
}
