// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/megapipe: files registered with MEGAPIPE_REGISTER_FILE and their
 * POLL requests, at the ABI level (the library's test, poll-file, covers
 * the calls).  What only the kernel can get wrong:
 *  - a wait queue that dies before its file (signalfd's, in the sighand of
 *    the thread that registered it): POLLFREE takes the channel's entry
 *    off, the pending POLL ends with -ECANCELED, and unregistering or
 *    closing the channel later touches nothing freed (KASAN watches);
 *  - what may not be held: the channel itself, another channel, an
 *    io_uring, an epoll set (EINVAL), a file without poll (EPERM), and a channel fd in
 *    SCM_RIGHTS on a Unix socket a channel holds (EINVAL: no cycle);
 *  - a file handle takes POLLs only; sockets' opcodes and SOCKOPT refuse
 *    it; fdinfo names its file;
 *  - many file handles, each with a multishot POLL, released with the
 *    channel: their files are closed (no reference left behind).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"

static int mp_reg_file(int ch, int fd, uint64_t cookie)
{
	struct megapipe_register r = {
		.fd = fd, .flags = MEGAPIPE_REGISTER_FILE, .cookie = cookie,
	};

	if (ioctl(ch, MEGAPIPE_IOC_REGISTER, &r))
		return -1;
	return r.handle;
}

static int mp_unreg(int ch, int h)
{
	struct megapipe_unregister u = { .handle = h };

	return ioctl(ch, MEGAPIPE_IOC_UNREGISTER, &u);
}

static void poll_req(struct megapipe_req *r, int h, __u32 events, __u32 flags)
{
	memset(r, 0, sizeof(*r));
	r->opcode = MEGAPIPE_OP_POLL;
	r->handle = h;
	r->len = events;
	r->op_flags = flags;
}

FIXTURE(poll)
{
	int ch;
};

FIXTURE_SETUP(poll)
{
	struct megapipe_info info = { 0 };

	self->ch = mp_open(64);
	ASSERT_LE(0, self->ch);
	ASSERT_EQ(0, ioctl(self->ch, MEGAPIPE_IOC_INFO, &info));
	if (!(info.features & MEGAPIPE_FEAT_FILES))
		SKIP(return, "kernel without MEGAPIPE_FEAT_FILES");
}

FIXTURE_TEARDOWN(poll)
{
	close(self->ch);
}

/* The thread of its own sighand that registers a signalfd, then exits. */
struct sfd_arg {
	int ch, sfd, handle;
};

static int sfd_thread(void *p)
{
	struct sfd_arg *a = p;

	/* signalfd's queue is the sighand of whoever polls it first: ours */
	a->handle = mp_reg_file(a->ch, a->sfd, 9);
	return a->handle < 0 ? 1 : 0;
}

/*
 * A signalfd registered in @ch by a thread of its own sighand (same
 * address space and fd table, which the channel takes), which has exited:
 * its queue is gone.  The handle, or < 0.
 */
static int sfd_orphan(int ch, int *sfd)
{
	struct sfd_arg a = { .ch = ch, .handle = -1 };
	sigset_t set;
	char *stack;
	pid_t pid;
	int st, ret = -1;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	a.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	*sfd = a.sfd;
	if (a.sfd < 0)
		return -1;
	stack = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	pid = clone(sfd_thread, stack + (1 << 16), CLONE_VM | CLONE_FILES | SIGCHLD,
		    &a);
	if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    !WEXITSTATUS(st))
		ret = a.handle;
	munmap(stack, 1 << 16);
	return ret;
}

TEST_F(poll, pollfree_signalfd)
{
	struct megapipe_cqe c[4];
	struct megapipe_req r;
	struct megapipe_submit out;
	int h, sfd;

	h = sfd_orphan(self->ch, &sfd);
	ASSERT_LE(0, h);
	/* its sighand is gone: POLLFREE took the entry off; a POLL ends */
	poll_req(&r, h, EPOLLIN, 0);
	r.user_data = 42;
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 1, 2000000000LL, &out));
	ASSERT_EQ(1, out.submitted);
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_POLL, c[0].opcode);
	EXPECT_EQ(-ECANCELED, c[0].result);
	EXPECT_EQ(42, c[0].user_data);
	EXPECT_EQ(9, c[0].cookie);
	/* and the handle leaves without touching the freed queue */
	EXPECT_EQ(0, mp_unreg(self->ch, h));
	close(sfd);
}

TEST_F(poll, pollfree_pending)
{
	struct megapipe_cqe c[4];
	struct megapipe_req r;
	struct megapipe_submit out;
	int h, sfd;

	h = sfd_orphan(self->ch, &sfd);
	ASSERT_LE(0, h);
	/* a multishot POLL armed after POLLFREE: it ends at once, no MORE */
	poll_req(&r, h, EPOLLIN, MEGAPIPE_POLL_MULTISHOT);
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 1, 2000000000LL, &out));
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(-ECANCELED, c[0].result);
	EXPECT_EQ(0, c[0].flags & MEGAPIPE_CQE_F_MORE);
	/* closing the channel with the handle still there: nothing freed is touched */
	close(sfd);
}

/* Send @fd over Unix socket @sock with SCM_RIGHTS: sendmsg()'s result. */
static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0);
}

TEST_F(poll, refused_files)
{
	struct io_uring_params p = { 0 };
	int other, ring, fd, sp[2], h;
	char path[] = "/tmp/mp-poll-XXXXXX";

	EXPECT_EQ(-1, mp_reg_file(self->ch, self->ch, 0));
	EXPECT_EQ(EINVAL, errno);
	other = mp_open(8);
	ASSERT_LE(0, other);
	EXPECT_EQ(-1, mp_reg_file(self->ch, other, 0));
	EXPECT_EQ(EINVAL, errno);
	close(other);
	ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring >= 0) {
		EXPECT_EQ(-1, mp_reg_file(self->ch, ring, 0));
		EXPECT_EQ(EINVAL, errno);
		close(ring);
	}
	/* an epoll set may watch the channel: a wakeup loop */
	fd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, mp_reg_file(self->ch, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	unlink(path);
	EXPECT_EQ(-1, mp_reg_file(self->ch, fd, 0));
	EXPECT_EQ(EPERM, errno);
	close(fd);
	EXPECT_EQ(-1, mp_reg_file(self->ch, -1, 0));
	EXPECT_EQ(EBADF, errno);
	/* a Unix socket may be held, and a channel cannot travel on it */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	h = mp_reg_file(self->ch, sp[1], 0);
	ASSERT_LE(0, h);
	EXPECT_EQ(-1, send_fd(sp[0], self->ch));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, mp_unreg(self->ch, h));
	close(sp[0]);
	close(sp[1]);
}

TEST_F(poll, file_handle_takes_polls_only)
{
	struct megapipe_sockopt so = { 0 };
	struct megapipe_cqe c[4];
	struct megapipe_req r;
	struct megapipe_submit out;
	int efd, h, one = 1, n;
	char buf[4096], path[64];
	FILE *f;

	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ASSERT_LE(0, efd);
	h = mp_reg_file(self->ch, efd, 3);
	ASSERT_LE(0, h);
	memset(&r, 0, sizeof(r));
	r.handle = h;
	r.addr = (uintptr_t)buf;
	r.len = 8;
	for (r.opcode = MEGAPIPE_OP_ACCEPT; r.opcode <= MEGAPIPE_OP_DISCONNECT;
	     r.opcode++) {
		if (r.opcode == MEGAPIPE_OP_DISCONNECT) {
			r.addr = 0;
			r.len = 0;
		}
		ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 0, 0, &out));
		EXPECT_EQ(0, out.submitted);
		EXPECT_EQ(-EINVAL, out.error);
	}
	/* bad POLLs */
	poll_req(&r, h, 0, 0);
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	poll_req(&r, h, EPOLLIN | EPOLLET, 0);
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	poll_req(&r, h, EPOLLIN, 2);
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	poll_req(&r, h, EPOLLIN, 0);
	r.addr = 1;
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	so.handle = h;
	so.cmd = MEGAPIPE_SOCKOPT_SET;
	so.level = SOL_SOCKET;
	so.optname = SO_KEEPALIVE;
	so.optval = (uintptr_t)&one;
	so.optlen = sizeof(one);
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_SOCKOPT, &so));
	EXPECT_EQ(EOPNOTSUPP, errno);
	/* fdinfo names the file */
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", self->ch);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = 0;
	EXPECT_NE(NULL, strstr(buf, "eventfd")) TH_LOG("fdinfo: %s", buf);
	EXPECT_EQ(0, mp_unreg(self->ch, h));
	close(efd);
}

/*
 * Pipes whose read ends only the channel holds: a write succeeds while it
 * holds them, and fails with EPIPE once the channel is closed: it left no
 * reference behind.
 */
TEST_F(poll, release_many)
{
	struct megapipe_cqe c[64];
	struct megapipe_req r[64];
	struct megapipe_submit out;
	int i, p[64][2], h, ch2;

	signal(SIGPIPE, SIG_IGN);
	ch2 = mp_open(256);
	ASSERT_LE(0, ch2);
	for (i = 0; i < 64; i++) {
		ASSERT_EQ(0, pipe2(p[i], O_NONBLOCK | O_CLOEXEC));
		h = mp_reg_file(ch2, p[i][0], i);
		ASSERT_LE(0, h);
		close(p[i][0]);
		poll_req(&r[i], h, EPOLLIN, i % 2 ? MEGAPIPE_POLL_MULTISHOT : 0);
	}
	ASSERT_EQ(0, mp_sub(ch2, r, 64, c, 64, 0, 0, &out));
	ASSERT_EQ(64, out.submitted);
	EXPECT_EQ(0, out.completed);
	/* half of them fire */
	for (i = 0; i < 64; i += 2)
		ASSERT_EQ(1, write(p[i][1], "x", 1));
	ASSERT_EQ(0, mp_sub(ch2, NULL, 0, c, 64, 32, 2000000000LL, &out));
	EXPECT_EQ(32, out.completed);
	for (i = 0; i < out.completed; i++) {
		EXPECT_EQ(EPOLLIN, c[i].result);
		EXPECT_EQ(0, c[i].cookie % 2);
	}
	/* every read end is the channel's alone, and it goes with it */
	close(ch2);
	for (i = 0; i < 64; i++) {
		EXPECT_EQ(-1, write(p[i][1], "x", 1));
		EXPECT_EQ(EPIPE, errno);
		close(p[i][1]);
	}
}

/*
 * A multishot POLL holds one reservation at a time: with a queue of 4 and
 * nothing reaped, wakeups 1-3 post with MORE, the 4th finds no room for a
 * next one and posts the last, later ones nothing.
 */
TEST_F(poll, multishot_queue_full)
{
	struct megapipe_cqe c[16];
	struct megapipe_req r;
	struct megapipe_submit out;
	int ch4, efd, h, i;
	__u64 one = 1;

	ch4 = mp_open(4);
	ASSERT_LE(0, ch4);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ASSERT_LE(0, efd);
	h = mp_reg_file(ch4, efd, 5);
	ASSERT_LE(0, h);
	poll_req(&r, h, EPOLLIN, MEGAPIPE_POLL_MULTISHOT);
	ASSERT_EQ(0, mp_sub(ch4, &r, 1, NULL, 0, 0, 0, &out));
	ASSERT_EQ(1, out.submitted);
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(8, write(efd, &one, 8));
		/* runs the marked handle, takes no completion */
		ASSERT_EQ(0, mp_sub(ch4, NULL, 0, NULL, 0, 0, 0, &out));
	}
	ASSERT_EQ(0, mp_sub(ch4, NULL, 0, c, 16, 0, 0, &out));
	ASSERT_EQ(4, out.completed);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(MEGAPIPE_OP_POLL, c[i].opcode);
		EXPECT_EQ(EPOLLIN, c[i].result);
		EXPECT_EQ(i < 3 ? MEGAPIPE_CQE_F_MORE : 0, c[i].flags) TH_LOG("completion %d", i);
	}
	/* over: more wakeups post nothing, and the handle can leave */
	ASSERT_EQ(8, write(efd, &one, 8));
	ASSERT_EQ(0, mp_sub(ch4, NULL, 0, c, 16, 0, 0, &out));
	EXPECT_EQ(0, out.completed);
	EXPECT_EQ(0, mp_unreg(ch4, h));
	close(efd);
	close(ch4);
}

/*
 * Churn: POLLs (one-shot and multishot, IN and OUT), CANCELs, reads,
 * unregisters and re-registers of 16 eventfds, with a thread writing to
 * them all the while, so that wakeups race with every step.  Each
 * request must end exactly once (a completion without MORE), none may
 * complete after it ended, and at the end every handle must leave the
 * channel (UNREGISTER refuses one with requests in flight).
 */
#define CH_FILES	16

static int churn_efd[CH_FILES];
static volatile int churn_stop;

static void *churn_writer(void *arg)
{
	__u64 one = 1;
	unsigned int i = 0;

	while (!churn_stop) {
		if (write(churn_efd[i++ % CH_FILES], &one, 8) < 0)
			break;
		if (i % 64 == 0)
			usleep(100);
	}
	return NULL;
}

TEST_F(poll, churn)
{
	int h[CH_FILES], pending[CH_FILES] = { 0 }, i, k, n, idx;
	struct megapipe_cqe c[64];
	struct megapipe_req r;
	struct megapipe_submit out;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	pthread_t t;
	__u64 v;

	for (i = 0; i < CH_FILES; i++) {
		churn_efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ASSERT_LE(0, churn_efd[i]);
		h[i] = mp_reg_file(self->ch, churn_efd[i], i);
		ASSERT_LE(0, h[i]);
	}
	ASSERT_EQ(0, pthread_create(&t, NULL, churn_writer, NULL));
	for (k = 0; k < 20000; k++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		i = seed % CH_FILES;
		switch ((seed >> 8) % 6) {
		case 0:
		case 1:
			poll_req(&r, h[i], (seed >> 16) & 1 ? EPOLLIN : EPOLLIN | EPOLLOUT,
				 (seed >> 17) & 1 ? MEGAPIPE_POLL_MULTISHOT : 0);
			r.user_data = i;
			ASSERT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
			if (out.submitted)
				pending[i]++;
			else
				ASSERT_EQ(-EBUSY, out.error);
			break;
		case 2:
			memset(&r, 0, sizeof(r));
			r.opcode = MEGAPIPE_OP_CANCEL;
			r.handle = h[i];
			r.user_data = 1000;
			ASSERT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
			break;
		case 3:
			if (read(churn_efd[i], &v, 8) < 0)
				ASSERT_EQ(EAGAIN, errno);
			break;
		case 4:
			if (pending[i])
				break;
			ASSERT_EQ(0, mp_unreg(self->ch, h[i]));
			h[i] = mp_reg_file(self->ch, churn_efd[i], i);
			ASSERT_LE(0, h[i]);
			break;
		case 5:
			ASSERT_EQ(0, mp_sub(self->ch, NULL, 0, c, 64, 0, 0, &out));
			for (n = 0; n < (int)out.completed; n++) {
				if (c[n].opcode == MEGAPIPE_OP_CANCEL)
					continue;
				ASSERT_EQ(MEGAPIPE_OP_POLL, c[n].opcode);
				idx = c[n].user_data;
				ASSERT_GT(pending[idx], 0);
				ASSERT_EQ(h[idx], (int)c[n].handle);
				if (!(c[n].flags & MEGAPIPE_CQE_F_MORE))
					pending[idx]--;
			}
			break;
		}
	}
	churn_stop = 1;
	pthread_join(t, NULL);
	/* end everything, reap everything */
	for (i = 0; i < CH_FILES; i++) {
		memset(&r, 0, sizeof(r));
		r.opcode = MEGAPIPE_OP_CANCEL;
		r.handle = h[i];
		r.user_data = 1000;
		do {
			ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 64, 0, 0, &out));
			for (n = 0; n < (int)out.completed; n++) {
				if (c[n].opcode == MEGAPIPE_OP_CANCEL)
					continue;
				idx = c[n].user_data;
				ASSERT_GT(pending[idx], 0);
				if (!(c[n].flags & MEGAPIPE_CQE_F_MORE))
					pending[idx]--;
			}
		} while (!out.submitted);
	}
	for (k = 0; k < 100; k++) {
		ASSERT_EQ(0, mp_sub(self->ch, NULL, 0, c, 64, 0, 0, &out));
		for (n = 0; n < (int)out.completed; n++) {
			if (c[n].opcode == MEGAPIPE_OP_CANCEL)
				continue;
			idx = c[n].user_data;
			ASSERT_GT(pending[idx], 0);
			if (!(c[n].flags & MEGAPIPE_CQE_F_MORE))
				pending[idx]--;
		}
		if (!out.completed)
			break;
	}
	for (i = 0; i < CH_FILES; i++) {
		EXPECT_EQ(0, pending[i]) TH_LOG("file %d", i);
		EXPECT_EQ(0, mp_unreg(self->ch, h[i])) TH_LOG("file %d: %s", i,
							      strerror(errno));
		close(churn_efd[i]);
	}
}

TEST_HARNESS_MAIN
