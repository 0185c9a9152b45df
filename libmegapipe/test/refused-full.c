// SPDX-License-Identifier: MIT
/*
 * Requests the backend refuses while a multishot READ fills the completion
 * queue: the library makes their completions itself, and holds them until
 * they are handed out, while the backend, which never reserved room for
 * them, lets the READ post into that room.  Every completion must still be
 * handed out, in order, with nothing dropped and no abort (an earlier
 * library overflowed its own queue here).  Refused: on the kernel backend
 * WRITEs of an address outside user space (EFAULT at submission); on the
 * epoll backend POLLs that find no descriptor left for their registration
 * (EMFILE).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "helpers.h"

#define G	1
#define NBUF	256
#define BUFSZ	4
#define TOTAL	1024

static char bufs[NBUF][BUFSZ];

static void t_refused_full(void)
{
	struct mp_channel *mp = t_channel(16);
	unsigned char sent[TOTAL], got[TOTAL];
	int lh, h, cfd, p[2] = { -1, -1 }, f1 = -1, f2 = -1, i, fd, lowest = -1;
	unsigned int refused = 0, reads = 0, len = 0;
	struct mp_completion c;
	struct mp_info info;
	struct rlimit rl, old;
	int want;

	T_BEGIN("refused requests while a multishot READ fills the queue: all handed out, in order");
	if (!t_has(MP_FEAT_BUFFERS, t_name)) {
		mp_destroy(mp);
		return;
	}
	T_CALL(mp_features(mp, &info));
	T_CALL(mp_provide_buffers(mp, G, bufs, BUFSZ, NBUF));
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	if (info.backend == MP_BACKEND_EPOLL) {
		T_ASSERT(!pipe(p), "pipe");
		f1 = mp_register_file(mp, p[0], 1);
		f2 = mp_register_file(mp, p[0], 2);
		T_ASSERT(f1 >= 0 && f2 >= 0, "register_file: %s", strerror(errno));
	}
	T_CALL(mp_read_multishot(mp, h, G));
	T_CALL(mp_flush(mp));
	for (i = 0; i < TOTAL; i++)
		sent[i] = (unsigned char)(i % 251);
	T_ASSERT(write(cfd, sent, TOTAL) == TOTAL, "write");
	usleep(100000);

	/* two requests the library takes and the backend refuses */
	if (info.backend == MP_BACKEND_EPOLL) {
		T_CALL(mp_poll(mp, f1, EPOLLIN, 0));
		T_CALL(mp_poll(mp, f2, EPOLLOUT, 0));
		want = -EMFILE;
		T_ASSERT(!getrlimit(RLIMIT_NOFILE, &old), "getrlimit");
		rl = old;
		rl.rlim_cur = 64;
		T_ASSERT(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit");
		while ((fd = dup(0)) >= 0)
			if (lowest < 0)
				lowest = fd;
	} else {
		T_CALL(mp_write(mp, h, (void *)0xffff800000000000UL, 16));
		T_CALL(mp_write(mp, h, (void *)0xffff800000000000UL, 16));
		want = -EFAULT;
	}
	i = mp_flush(mp);
	if (lowest >= 0) {
		for (fd = lowest; fd < 64; fd++)
			if (fd != p[0] && fd != p[1] && fd != cfd && fd != mp_fd(mp))
				close(fd);
		setrlimit(RLIMIT_NOFILE, &old);
	}
	T_ASSERT(i >= 0, "mp_flush: %s", strerror(errno));

	while (len < TOTAL || refused < 2) {
		T_ASSERT(t_next(mp, &c, 2000), "completion (%u bytes, %u refused)", len, refused);
		if (c.result == want) {
			refused++;
			continue;
		}
		T_ASSERT(c.op == MP_OP_READ, "op %d result %d", c.op, c.result);
		if (c.flags & MP_F_BUFFER) {
			T_ASSERT(c.result > 0 && len + c.result <= TOTAL, "read %d", c.result);
			memcpy(got + len, mp_buffer(mp, G, c.new_handle), c.result);
			len += c.result;
			reads++;
			T_CALL(mp_buffer_release(mp, G, c.new_handle));
		} else {
			T_ASSERT(c.result == -ENOBUFS || c.result > 0,
				 "read ended: %d", c.result);
		}
		if (!(c.flags & MP_F_MORE))	/* ended for want of room: again */
			T_CALL(mp_read_multishot(mp, h, G));
	}
	T_ASSERT(!memcmp(got, sent, TOTAL), "the stream, in order (%u reads)", reads);
	T_OK();
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	close(cfd);
	mp_destroy(mp);
}

/*
 * Kernel backend: a WRITE refused behind a WRITE of the same handle that
 * the kernel completed, while more than max_batch READ completions wait
 * to be fetched (copy transport) or handed out (rings): the refused one's
 * error comes after the first one's completion.  The kernel reads a
 * connection at most 16 times per run of it: NPAIR connections make each
 * SUBMIT post more than max_batch.
 */
#define NPAIR	24
#define PER	160	/* bytes per connection: 40 buffers */

static char bufs2[1024][4];

static void t_refused_order(void)
{
	struct mp_channel *mp = t_channel(1024);
	int lh[NPAIR], h[NPAIR], cfd[NPAIR], first = -1, second = -1, i;
	unsigned int reads = 0, n = 0;
	struct mp_completion c;
	struct mp_info info;
	char data[PER];

	T_BEGIN("a refused write's error comes after its handle's write completed before it");
	T_CALL(mp_features(mp, &info));
	if (info.backend != MP_BACKEND_KERNEL || !(info.features & MP_FEAT_BUFFERS)) {
		printf("# skip: the kernel backend refuses a kernel address; epoll does not\n");
		mp_destroy(mp);
		T_OK();
		return;
	}
	T_CALL(mp_provide_buffers(mp, G, bufs2, BUFSZ, 1024));
	memset(data, 'x', sizeof(data));
	for (i = 0; i < NPAIR; i++) {
		T_ASSERT(!t_pair(mp, &lh[i], &h[i], &cfd[i], 0), "pair %d", i);
		T_CALL(mp_read_multishot(mp, h[i], G));
	}
	T_CALL(mp_flush(mp));
	for (i = 0; i < NPAIR; i++)
		T_ASSERT(write(cfd[i], data, PER) == PER, "write %d", i);
	usleep(200000);
	/* two runs of every connection: 768 READ completions, 256 fetched by each call */
	T_CALL(mp_flush(mp));
	T_CALL(mp_flush(mp));
	T_CALL(mp_write(mp, h[0], "hello", 5));
	T_CALL(mp_set_user_data(mp, 1));
	T_CALL(mp_write(mp, h[0], (void *)0xffff800000000000UL, 13));
	T_CALL(mp_set_user_data(mp, 2));
	T_CALL(mp_flush(mp));
	while (second < 0) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %u (%u reads)", n, reads);
		if (c.op == MP_OP_READ) {
			reads++;
			if (c.flags & MP_F_BUFFER)
				T_CALL(mp_buffer_release(mp, G, c.new_handle));
		} else if (c.op == MP_OP_WRITE && c.user_data == 1) {
			T_ASSERT(c.result == 5, "first write: %d", c.result);
			first = (int)n;
		} else if (c.op == MP_OP_WRITE && c.user_data == 2) {
			T_ASSERT(c.result == -EFAULT, "refused write: %d", c.result);
			second = (int)n;
		}
		n++;
	}
	T_ASSERT(first >= 0 && first < second, "first write at %d, the refused one at %d (%u reads before)",
		 first, second, reads);
	printf("# first write at %d, the refused one at %d, %u reads before it\n", first, second, reads);
	for (i = 0; i < NPAIR; i++)
		close(cfd[i]);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_refused_full();
	t_refused_order();
	return t_done();
}
