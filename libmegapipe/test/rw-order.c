// SPDX-License-Identifier: MIT
/* Per-handle FIFO order of reads and of writes, interleaved. */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define NW	16
#define WSZ	3000

static void t_write_order(void)
{
	static unsigned char bufs[NW][WSZ], got[NW * WSZ];
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	int lh, h, cfd, i, j;

	T_BEGIN("16 writes in one batch arrive in order; completions in order");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < NW; i++) {
		for (j = 0; j < WSZ; j++)
			bufs[i][j] = t_pat(1, (size_t)i * WSZ + j);
		T_CALL(mp_write(mp, h, bufs[i], WSZ));
	}
	T_ASSERT(mp_flush(mp) == NW, "flush");
	for (i = 0; i < NW; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
		T_ASSERT(c.op == MP_OP_WRITE && c.handle == h && c.result == WSZ,
			 "%d: op %d result %d", i, c.op, c.result);
	}
	T_ASSERT(!t_read_full(cfd, got, sizeof(got)), "client reads all");
	for (i = 0; i < NW * WSZ; i++)
		T_ASSERT(got[i] == t_pat(1, i), "byte %d", i);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_read_order(void)
{
	static const int sizes[8] = { 1, 7, 100, 3, 500, 1, 2000, 4096 };
	static unsigned char out[8000], in[8][4096];
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	int lh, h, cfd, i, k, total = 0, pos = 0;

	T_BEGIN("8 reads queued before the data complete in order: read i holds the next bytes");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < 8; i++) {
		T_CALL(mp_read(mp, h, in[i], sizes[i]));
		total += sizes[i];
	}
	T_ASSERT(mp_flush(mp) == 8, "flush");
	for (i = 0; i < total; i++)
		out[i] = t_pat(2, i);
	/* in three pieces, so that reads meet segment boundaries */
	T_ASSERT(write(cfd, out, 5) == 5, "client write");
	usleep(20000);
	T_ASSERT(write(cfd, out + 5, 600) == 600, "client write");
	usleep(20000);
	T_ASSERT(write(cfd, out + 605, total - 605) == total - 605, "client write");
	for (i = 0; i < 8; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
		T_ASSERT(c.op == MP_OP_READ && c.handle == h && c.result > 0 &&
			 c.result <= sizes[i], "%d: op %d result %d", i, c.op, c.result);
		for (k = 0; k < c.result; k++)
			T_ASSERT(in[i][k] == out[pos + k], "read %d byte %d", i, k);
		pos += c.result;
	}
	/* whatever the reads did not take is still in the socket, in order */
	while (pos < total) {
		T_CALL(mp_read(mp, h, in[0], sizeof(in[0])));
		T_ASSERT(t_next(mp, &c, 2000) && c.result > 0, "tail read");
		T_ASSERT(!memcmp(in[0], out + pos, c.result), "tail bytes");
		pos += c.result;
	}
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_interleaved(void)
{
	static unsigned char src[65536], dst[65536], echo[65536];
	struct mp_channel *mp = t_channel(256);
	struct mp_completion c;
	int lh, h, cfd, i, rpos = 0, wq = 0, done_w = 0, rd = 0, wr = 0;
	size_t cpos = 0;

	T_BEGIN("interleaved reads and writes on one handle: both streams intact");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < (int)sizeof(src); i++)
		src[i] = t_pat(3, i);
	/* the client sends src; the server echoes through the channel */
	T_ASSERT(write(cfd, src, 16384) == 16384, "client write");
	T_CALL(mp_read(mp, h, dst, 1000));
	rd++;
	while (rpos < (int)sizeof(src) || done_w < wq) {
		T_ASSERT(t_next(mp, &c, 3000), "completion");
		if (c.op == MP_OP_READ) {
			rd--;
			T_ASSERT(c.result > 0, "read %d", c.result);
			T_CALL(mp_write(mp, h, dst + rpos, c.result));
			wq++;
			rpos += c.result;
			if (rpos < (int)sizeof(src)) {
				int n = 1 + (rpos * 7) % 3000;

				if (n > (int)sizeof(src) - rpos)
					n = sizeof(src) - rpos;
				T_CALL(mp_read(mp, h, dst + rpos, n));
				rd++;
			}
			if (cpos < sizeof(src) && rpos > (int)cpos - 8192) {
				size_t n = sizeof(src) - cpos < 16384 ? sizeof(src) - cpos : 16384;

				if (cpos == 0)
					cpos = 16384;
				else {
					T_ASSERT(write(cfd, src + cpos, n) == (ssize_t)n, "client write");
					cpos += n;
				}
			}
		} else {
			T_ASSERT(c.op == MP_OP_WRITE && c.result > 0, "write %d", c.result);
			done_w++;
			wr += c.result;
		}
	}
	T_ASSERT(rd == 0 && wr == (int)sizeof(src), "all echoed (%d)", wr);
	T_ASSERT(!t_read_full(cfd, echo, sizeof(echo)), "client reads the echo");
	T_ASSERT(!memcmp(echo, src, sizeof(src)), "echo intact");
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_write_order();
	t_read_order();
	t_interleaved();
	return t_done();
}
