// SPDX-License-Identifier: MIT
/* Export: a lightweight handle becomes the caller's fd and leaves the channel. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "helpers.h"

static void t_export(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char buf[8];
	int lh, h, cfd, fd, fl;

	T_BEGIN("export: data before through the channel, after through the fd; handle gone");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_write(mp, h, "one", 3));
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 3, "write");
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_ERRNO(mp_export(mp, h, 0), EBUSY);		/* queued read */
	T_ASSERT(mp_flush(mp) == 1, "flush");
	T_ERRNO(mp_export(mp, h, 0), EBUSY);		/* read in flight */
	T_CALL(mp_cancel(mp, h, 0));
	T_ASSERT(t_next(mp, &c, 2000) && c.result == -ECANCELED, "cancelled read");
	T_ERRNO(mp_export(mp, h, 0), EBUSY);		/* the cancel's completion is owed */
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL, "cancel");
	T_ERRNO(mp_export(mp, h, 1U << 5), EINVAL);
	fd = mp_export(mp, h, 0);
	T_ASSERT(fd >= 0, "export: %s", strerror(errno));
	fl = fcntl(fd, F_GETFL);
	T_ASSERT(fl >= 0 && !(fl & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "flags");
	T_ERRNO(mp_read(mp, h, buf, 1), EBADF);
	T_ERRNO(mp_export(mp, h, 0), EBADF);
	T_ASSERT(!t_read_full(cfd, buf, 3) && !memcmp(buf, "one", 3), "client got one");
	T_ASSERT(write(fd, "two", 3) == 3 && !t_read_full(cfd, buf, 3) &&
		 !memcmp(buf, "two", 3), "fd writes");
	T_ASSERT(write(cfd, "tri", 3) == 3 && !t_read_full(fd, buf, 3) &&
		 !memcmp(buf, "tri", 3), "fd reads");
	close(fd);
	T_ASSERT(read(cfd, buf, 1) == 0, "client sees the close");
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_export_nonblock(void)
{
	struct mp_channel *mp = t_channel(64);
	int lh, h, cfd, fd;

	T_BEGIN("export MP_EXPORT_NONBLOCK; a registered fd cannot be exported (EINVAL)");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	fd = mp_export(mp, h, MP_EXPORT_NONBLOCK);
	T_ASSERT(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK), "nonblocking fd");
	T_ERRNO(mp_export(mp, lh, 0), EINVAL);
	close(fd);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_export();
	t_export_nonblock();
	return t_done();
}
