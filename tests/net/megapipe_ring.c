// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_ring: the shared-memory ring transport of /dev/megapipe
 * (MEGAPIPE_SETUP_RING), through the raw ABI: setup and mmap() checks,
 * requests written into the submission ring and completions read from the
 * completion ring, reservations given back as the owner consumes,
 * a refused request consumed alone, indexes that claim too much, poll(),
 * the mappings outliving the fd and not inherited by a fork()ed child.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"

#define RING_PORT	(LIB_PORT + 40)

struct ring {
	int ch;
	struct megapipe_setup s;
	struct megapipe_ring *sq, *cq;
	struct megapipe_req *sqes;
	struct megapipe_cqe *cqes;
};

/* A ring channel: 0, or -errno of the step that failed. */
static int ring_open(struct ring *r, unsigned int sq, unsigned int cq)
{
	memset(r, 0, sizeof(*r));
	r->ch = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);
	if (r->ch < 0)
		return -errno;
	r->s.cq_entries = cq;
	r->s.sq_entries = sq;
	r->s.flags = MEGAPIPE_SETUP_RING;
	if (ioctl(r->ch, MEGAPIPE_IOC_SETUP, &r->s))
		return -errno;
	r->sq = mmap(NULL, r->s.sq_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     r->ch, MEGAPIPE_OFF_SQ_RING);
	if (r->sq == MAP_FAILED)
		return -errno;
	r->cq = mmap(NULL, r->s.cq_ring_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     r->ch, MEGAPIPE_OFF_CQ_RING);
	if (r->cq == MAP_FAILED)
		return -errno;
	r->sqes = (void *)((char *)r->sq + MEGAPIPE_RING_ENTRIES);
	r->cqes = (void *)((char *)r->cq + MEGAPIPE_RING_ENTRIES);
	return 0;
}

static void ring_close(struct ring *r)
{
	if (r->sq && r->sq != MAP_FAILED)
		munmap(r->sq, r->s.sq_ring_size);
	if (r->cq && r->cq != MAP_FAILED)
		munmap(r->cq, r->s.cq_ring_size);
	if (r->ch >= 0)
		close(r->ch);
	r->ch = -1;
}

/* Queue @q in the submission ring (not submitted yet). */
static void ring_push(struct ring *r, const struct megapipe_req *q)
{
	uint32_t t = r->sq->tail;

	r->sqes[t & r->sq->mask] = *q;
	__atomic_store_n(&r->sq->tail, t + 1, __ATOMIC_RELEASE);
}

/* One ring SUBMIT: the ioctl's result, the out fields in *out. */
static int ring_submit(struct ring *r, unsigned int nr, unsigned int min,
		       int64_t timeout_ns, struct megapipe_submit *out)
{
	struct megapipe_submit s = {
		.flags = MEGAPIPE_SUBMIT_RING, .nr_reqs = nr,
		.min_complete = min, .timeout_ns = timeout_ns,
	};
	int ret = ioctl(r->ch, MEGAPIPE_IOC_SUBMIT, &s);

	if (out)
		*out = s;
	return ret;
}

/* Read exactly @n bytes from blocking @fd within 2 s: 0 or -1. */
static int read_full(int fd, char *buf, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (poll(&p, 1, 2000) != 1)
			return -1;
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

/* Unconsumed completions in the ring. */
static unsigned int ring_ready(struct ring *r)
{
	return __atomic_load_n(&r->cq->tail, __ATOMIC_ACQUIRE) - r->cq->head;
}

/* Take the completion at the head into *c (and consume it). */
static void ring_pop(struct ring *r, struct megapipe_cqe *c)
{
	uint32_t h = r->cq->head;

	*c = r->cqes[h & r->cq->mask];
	__atomic_store_n(&r->cq->head, h + 1, __ATOMIC_RELEASE);
}

FIXTURE(ring) {
	struct ring r;
	int l, lh;
};

FIXTURE_SETUP(ring)
{
	struct megapipe_register reg = { 0 };

	self->r.ch = self->l = -1;
	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE " (CONFIG_MEGAPIPE)");
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, ring_open(&self->r, 5, 7));
	self->l = lib_listener(AF_INET, RING_PORT, 64, 0);
	ASSERT_LE(0, self->l);
	reg.fd = self->l;
	reg.cookie = 9;
	ASSERT_EQ(0, ioctl(self->r.ch, MEGAPIPE_IOC_REGISTER, &reg));
	self->lh = reg.handle;
}

FIXTURE_TEARDOWN(ring)
{
	ring_close(&self->r);
	if (self->l >= 0)
		close(self->l);
}

/* Accept one connection through the rings: its handle; *cfd the client. */
static int ring_accept(struct __test_metadata *_metadata, struct ring *r,
		       int lh, int *cfd)
{
	struct megapipe_req q = { .opcode = MEGAPIPE_OP_ACCEPT, .handle = lh,
				  .len = 1, .user_data = 0xacce };
	struct megapipe_submit out;
	struct megapipe_cqe c;

	ring_push(r, &q);
	EXPECT_EQ(0, ring_submit(r, 1, 0, 0, &out));
	EXPECT_EQ(1, out.submitted);
	*cfd = lib_connect(AF_INET, RING_PORT, false);
	EXPECT_LE(0, *cfd);
	EXPECT_EQ(0, ring_submit(r, 0, 1, 2000000000LL, &out));
	EXPECT_EQ(1, out.completed);
	EXPECT_EQ(1, ring_ready(r));
	ring_pop(r, &c);
	EXPECT_EQ(MEGAPIPE_OP_ACCEPT, c.opcode);
	EXPECT_EQ(0, c.result);
	EXPECT_EQ(9, c.cookie);
	EXPECT_EQ(0xacce, c.user_data);
	return c.new_handle;
}

TEST_F(ring, setup_and_mmap_checks)
{
	struct megapipe_submit s = { 0 };
	struct ring bad;
	void *p;
	int fresh;

	/* rounded up to powers of two, page-sized mappings */
	EXPECT_EQ(8, self->r.s.sq_entries);
	EXPECT_EQ(8, self->r.s.cq_entries);
	EXPECT_EQ(8, self->r.sq->entries);
	EXPECT_EQ(7, self->r.sq->mask);
	EXPECT_EQ(8, self->r.cq->entries);
	EXPECT_EQ(7, self->r.cq->mask);
	EXPECT_EQ(0, self->r.s.sq_ring_size % getpagesize());
	EXPECT_LE(MEGAPIPE_RING_ENTRIES + 8 * sizeof(struct megapipe_req),
		  self->r.s.sq_ring_size);
	EXPECT_EQ(0, self->r.sq->head | self->r.sq->tail | self->r.cq->head | self->r.cq->tail);
	/* a ring channel takes ring SUBMITs only, and those without arrays */
	EXPECT_EQ(-1, ioctl(self->r.ch, MEGAPIPE_IOC_SUBMIT, &s));
	EXPECT_EQ(EINVAL, errno);
	s.flags = MEGAPIPE_SUBMIT_RING;
	s.max_cqes = 1;
	EXPECT_EQ(-1, ioctl(self->r.ch, MEGAPIPE_IOC_SUBMIT, &s));
	EXPECT_EQ(EINVAL, errno);
	s.max_cqes = 0;
	s.min_complete = 9;		/* over cq_entries */
	EXPECT_EQ(-1, ioctl(self->r.ch, MEGAPIPE_IOC_SUBMIT, &s));
	EXPECT_EQ(EINVAL, errno);
	s.min_complete = 0;
	s.nr_reqs = 257;
	EXPECT_EQ(-1, ioctl(self->r.ch, MEGAPIPE_IOC_SUBMIT, &s));
	EXPECT_EQ(E2BIG, errno);
	/* mmap: unknown offset, more than the ring, the reserved SQES offset */
	p = mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, self->r.ch, 4096);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, self->r.s.cq_ring_size + getpagesize(), PROT_READ, MAP_SHARED,
		 self->r.ch, MEGAPIPE_OFF_CQ_RING);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, self->r.ch, MEGAPIPE_OFF_SQES);
	EXPECT_EQ(MAP_FAILED, p);
	/* a copy channel: no rings to map, no ring SUBMIT */
	fresh = mp_open(4);
	ASSERT_LE(0, fresh);
	p = mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, fresh, MEGAPIPE_OFF_SQ_RING);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	s = (struct megapipe_submit){ .flags = MEGAPIPE_SUBMIT_RING };
	EXPECT_EQ(-1, ioctl(fresh, MEGAPIPE_IOC_SUBMIT, &s));
	EXPECT_EQ(EINVAL, errno);
	close(fresh);
	/* not set up: nothing to map */
	fresh = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fresh);
	p = mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED, fresh, MEGAPIPE_OFF_SQ_RING);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	close(fresh);
	/* sizes: sq_entries 0 or over the maximum */
	EXPECT_EQ(-EINVAL, ring_open(&bad, 0, 4));
	ring_close(&bad);
	EXPECT_EQ(-EINVAL, ring_open(&bad, MEGAPIPE_MAX_SQ_ENTRIES + 1, 4));
	ring_close(&bad);
}

TEST_F(ring, echo_through_the_rings)
{
	struct megapipe_req q[3] = {
		{ .opcode = MEGAPIPE_OP_WRITE, .len = 5, .user_data = 1 },
		{ .opcode = MEGAPIPE_OP_WRITE, .len = 3, .user_data = 2 },
		{ .opcode = MEGAPIPE_OP_READ, .len = 64, .user_data = 3 },
	};
	struct megapipe_submit out;
	struct megapipe_cqe c;
	char in[64], got[8];
	int h, cfd, i;

	h = ring_accept(_metadata, &self->r, self->lh, &cfd);
	ASSERT_LE(0, h);
	q[0].addr = (uintptr_t)"hello";
	q[1].addr = (uintptr_t)"abc";
	q[2].addr = (uintptr_t)in;
	for (i = 0; i < 3; i++) {
		q[i].handle = h;
		ring_push(&self->r, &q[i]);
	}
	ASSERT_EQ(0, ring_submit(&self->r, 8, 2, 2000000000LL, &out));
	EXPECT_EQ(3, out.submitted);
	EXPECT_EQ(0, out.error);
	EXPECT_EQ(4, self->r.sq->head);		/* the accept's, then these */
	EXPECT_EQ(2, out.completed);
	/* the writes, in order, each with its own user data */
	ring_pop(&self->r, &c);
	EXPECT_EQ(MEGAPIPE_OP_WRITE, c.opcode);
	EXPECT_EQ(5, c.result);
	EXPECT_EQ(1, c.user_data);
	ring_pop(&self->r, &c);
	EXPECT_EQ(3, c.result);
	EXPECT_EQ(2, c.user_data);
	ASSERT_EQ(0, read_full(cfd, got, 8));
	EXPECT_EQ(0, memcmp(got, "helloabc", 8));
	/* the read completes when the client writes; no system call to see it */
	EXPECT_EQ(0, ring_ready(&self->r));
	ASSERT_EQ(4, write(cfd, "ping", 4));
	ASSERT_EQ(0, ring_submit(&self->r, 0, 1, 2000000000LL, &out));
	EXPECT_EQ(1, out.completed);
	ring_pop(&self->r, &c);
	EXPECT_EQ(MEGAPIPE_OP_READ, c.opcode);
	EXPECT_EQ(4, c.result);
	EXPECT_EQ(3, c.user_data);
	EXPECT_EQ(0, memcmp(in, "ping", 4));
	close(cfd);
}

TEST_F(ring, reservations_come_back_as_the_owner_consumes)
{
	struct megapipe_req rd = { .opcode = MEGAPIPE_OP_READ, .len = 1 };
	struct megapipe_submit out;
	struct megapipe_cqe c;
	char buf[8][1];
	int h, cfd, i;

	h = ring_accept(_metadata, &self->r, self->lh, &cfd);
	ASSERT_LE(0, h);
	rd.handle = h;
	/* 8 reads owe the whole completion ring */
	for (i = 0; i < 8; i++) {
		rd.addr = (uintptr_t)buf[i];
		ring_push(&self->r, &rd);
	}
	ASSERT_EQ(0, ring_submit(&self->r, 8, 0, 0, &out));
	EXPECT_EQ(8, out.submitted);
	ring_push(&self->r, &rd);
	ASSERT_EQ(0, ring_submit(&self->r, 8, 0, 0, &out));
	EXPECT_EQ(0, out.submitted);
	EXPECT_EQ(-EBUSY, out.error);
	EXPECT_EQ(10, self->r.sq->head);	/* the refused one consumed */
	/* all complete, unconsumed: still no room */
	ASSERT_EQ(8, write(cfd, "abcdefgh", 8));
	ASSERT_EQ(0, ring_submit(&self->r, 0, 8, 2000000000LL, &out));
	EXPECT_EQ(8, out.completed);
	ring_push(&self->r, &rd);
	ASSERT_EQ(0, ring_submit(&self->r, 8, 0, 0, &out));
	EXPECT_EQ(-EBUSY, out.error);
	/* a head past the tail is ignored: no room either */
	self->r.cq->head += 9;
	ring_push(&self->r, &rd);
	ASSERT_EQ(0, ring_submit(&self->r, 8, 0, 0, &out));
	EXPECT_EQ(-EBUSY, out.error);
	EXPECT_EQ(8, out.completed);
	self->r.cq->head -= 9;
	/* consume two: two more fit, the third does not */
	for (i = 0; i < 2; i++) {
		ring_pop(&self->r, &c);
		EXPECT_EQ(1, c.result);
		EXPECT_EQ("abcdefgh"[i], buf[i][0]);
	}
	for (i = 0; i < 3; i++)
		ring_push(&self->r, &rd);
	ASSERT_EQ(0, ring_submit(&self->r, 8, 0, 0, &out));
	EXPECT_EQ(2, out.submitted);
	EXPECT_EQ(-EBUSY, out.error);
	close(cfd);
}

TEST_F(ring, a_refused_request_is_consumed_alone)
{
	struct megapipe_req bad = { .opcode = 0 };
	struct megapipe_req cancel = { .opcode = MEGAPIPE_OP_CANCEL,
				       .handle = MEGAPIPE_NO_HANDLE, .user_data = 5 };
	struct megapipe_submit out;
	struct megapipe_cqe c;
	uint32_t t;

	ring_push(&self->r, &cancel);
	ring_push(&self->r, &bad);
	cancel.user_data = 6;
	ring_push(&self->r, &cancel);
	ASSERT_EQ(0, ring_submit(&self->r, 8, 1, 1000000000LL, &out));
	EXPECT_EQ(1, out.submitted);
	EXPECT_EQ(-EINVAL, out.error);
	EXPECT_EQ(2, self->r.sq->head);
	ASSERT_EQ(0, ring_submit(&self->r, 8, 2, 1000000000LL, &out));
	EXPECT_EQ(1, out.submitted);
	EXPECT_EQ(0, out.error);
	EXPECT_EQ(3, self->r.sq->head);
	ring_pop(&self->r, &c);
	EXPECT_EQ(5, c.user_data);
	ring_pop(&self->r, &c);
	EXPECT_EQ(6, c.user_data);
	/* a tail claiming more than the ring holds: EINVAL, nothing taken */
	t = self->r.sq->tail;
	self->r.sq->tail = t + 9;
	EXPECT_EQ(-1, ring_submit(&self->r, 8, 0, 0, &out));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(3, self->r.sq->head);
	self->r.sq->tail = t;
	EXPECT_EQ(0, ring_submit(&self->r, 8, 0, 0, &out));
	EXPECT_EQ(0, out.submitted);
}

TEST_F(ring, poll_sees_unconsumed_completions)
{
	struct megapipe_req cancel = { .opcode = MEGAPIPE_OP_CANCEL,
				       .handle = MEGAPIPE_NO_HANDLE };
	struct pollfd p = { .fd = self->r.ch, .events = POLLIN };
	struct megapipe_cqe c;

	/* whatever the registration left ready runs first */
	ASSERT_EQ(0, ring_submit(&self->r, 0, 0, 0, NULL));
	EXPECT_EQ(0, poll(&p, 1, 0));
	ring_push(&self->r, &cancel);
	ASSERT_EQ(0, ring_submit(&self->r, 1, 0, 0, NULL));
	EXPECT_EQ(1, poll(&p, 1, 0));
	EXPECT_TRUE(p.revents & POLLIN);
	ring_pop(&self->r, &c);
	EXPECT_EQ(0, poll(&p, 1, 0));
}

TEST_F(ring, mappings_outlive_the_fd_and_other_processes_get_neither)
{
	struct megapipe_req cancel = { .opcode = MEGAPIPE_OP_CANCEL,
				       .handle = MEGAPIPE_NO_HANDLE, .user_data = 77 };
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		void *p = mmap(NULL, getpagesize(), PROT_READ, MAP_SHARED,
			       self->r.ch, MEGAPIPE_OFF_SQ_RING);
		unsigned char vec;

		if (p != MAP_FAILED || errno != EPERM)
			_exit(1);
		/* nor does it inherit the owner's mappings of the rings */
		if (!mincore(self->r.sq, getpagesize(), &vec) ||
		    errno != ENOMEM)
			_exit(2);
		if (!mincore(self->r.cq, getpagesize(), &vec) ||
		    errno != ENOMEM)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ring_push(&self->r, &cancel);
	ASSERT_EQ(0, ring_submit(&self->r, 1, 1, 1000000000LL, NULL));
	/* the channel lives on while mapped: its completion is still readable */
	close(self->r.ch);
	self->r.ch = -1;
	close(self->l);
	self->l = -1;
	EXPECT_EQ(1, ring_ready(&self->r));
	EXPECT_EQ(77, self->r.cqes[0].user_data);
	self->r.sqes[1].opcode = MEGAPIPE_OP_READ;	/* still writable */
	/* teardown unmaps: the channel goes then (KASAN watches) */
}

/*
 * A multishot READ from a buffer ring: armed (MORE) while it can reserve
 * its next completion; the completion that finds no room is its last.
 */
TEST(multishot_read_ends_when_the_queue_is_full)
{
	struct megapipe_buf bufs[4];
	char mem[4][8];
	uint32_t tail = 4;
	struct megapipe_buffers b = {
		.ring = (uintptr_t)bufs, .tail = (uintptr_t)&tail, .entries = 4,
	};
	struct megapipe_req q = { .opcode = MEGAPIPE_OP_READ,
				  .op_flags = MEGAPIPE_READ_BUFFER | MEGAPIPE_READ_MULTISHOT };
	struct megapipe_register reg = { 0 };
	struct megapipe_submit out;
	struct megapipe_cqe c[2];
	struct ring r;
	int l, h, cfd, i;

	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE);
	ASSERT_EQ(0, lib_netns_enter());
	ASSERT_EQ(0, ring_open(&r, 4, 2));
	for (i = 0; i < 4; i++)
		bufs[i] = (struct megapipe_buf){ .addr = (uintptr_t)mem[i], .len = 8, .bid = 10 + i };
	/* registration checks */
	b.entries = 3;
	EXPECT_EQ(-1, ioctl(r.ch, MEGAPIPE_IOC_BUFFERS, &b));
	EXPECT_EQ(EINVAL, errno);
	b.entries = 4;
	b.group = MEGAPIPE_MAX_BUF_GROUPS;
	EXPECT_EQ(-1, ioctl(r.ch, MEGAPIPE_IOC_BUFFERS, &b));
	EXPECT_EQ(EINVAL, errno);
	b.group = 0;
	b.tail += 1;
	EXPECT_EQ(-1, ioctl(r.ch, MEGAPIPE_IOC_BUFFERS, &b));
	EXPECT_EQ(EINVAL, errno);
	b.tail -= 1;
	ASSERT_EQ(0, ioctl(r.ch, MEGAPIPE_IOC_BUFFERS, &b));
	EXPECT_EQ(-1, ioctl(r.ch, MEGAPIPE_IOC_BUFFERS, &b));
	EXPECT_EQ(EEXIST, errno);
	b = (struct megapipe_buffers){ .group = 1 };
	EXPECT_EQ(-1, ioctl(r.ch, MEGAPIPE_IOC_BUFFERS, &b));
	EXPECT_EQ(ENOENT, errno);
	/* a buffer READ names no buffer of its own */
	q.len = 8;
	ring_push(&r, &q);
	ASSERT_EQ(0, ring_submit(&r, 1, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	q.len = 0;

	l = lib_listener(AF_INET, RING_PORT + 1, 8, 0);
	ASSERT_LE(0, l);
	reg.fd = l;
	ASSERT_EQ(0, ioctl(r.ch, MEGAPIPE_IOC_REGISTER, &reg));
	q.handle = reg.handle;
	q.opcode = MEGAPIPE_OP_ACCEPT;
	q.op_flags = 0;
	q.len = 1;
	ring_push(&r, &q);
	cfd = lib_connect(AF_INET, RING_PORT + 1, false);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, ring_submit(&r, 1, 1, 2000000000LL, &out));
	ring_pop(&r, &c[0]);
	ASSERT_EQ(0, c[0].result);
	h = c[0].new_handle;

	q = (struct megapipe_req){ .opcode = MEGAPIPE_OP_READ, .handle = h,
				   .op_flags = MEGAPIPE_READ_BUFFER | MEGAPIPE_READ_MULTISHOT };
	ring_push(&r, &q);
	ASSERT_EQ(0, ring_submit(&r, 1, 0, 0, &out));
	EXPECT_EQ(1, out.submitted);
	EXPECT_EQ(0, ring_ready(&r));		/* no data: no buffer taken */
	ASSERT_EQ(2, write(cfd, "aa", 2));
	ASSERT_EQ(0, ring_submit(&r, 0, 1, 2000000000LL, &out));
	ASSERT_EQ(2, write(cfd, "bb", 2));
	ASSERT_EQ(0, ring_submit(&r, 0, 2, 2000000000LL, &out));
	EXPECT_EQ(2, out.completed);
	ASSERT_EQ(2, write(cfd, "cc", 2));
	ASSERT_EQ(0, ring_submit(&r, 0, 0, 0, &out));
	EXPECT_EQ(2, out.completed);		/* the READ is over */
	ring_pop(&r, &c[0]);
	ring_pop(&r, &c[1]);
	EXPECT_EQ(2, c[0].result);
	EXPECT_EQ(MEGAPIPE_CQE_F_BUFFER | MEGAPIPE_CQE_F_MORE, c[0].flags);
	EXPECT_EQ(10, c[0].new_handle);
	EXPECT_EQ(0, memcmp(mem[0], "aa", 2));
	EXPECT_EQ(2, c[1].result);
	EXPECT_EQ(MEGAPIPE_CQE_F_BUFFER, c[1].flags);	/* no room for a next one */
	EXPECT_EQ(11, c[1].new_handle);
	EXPECT_EQ(0, memcmp(mem[1], "bb", 2));
	/* "cc" waits in the socket for the next READ */
	ring_push(&r, &q);
	ASSERT_EQ(0, ring_submit(&r, 1, 1, 2000000000LL, &out));
	ring_pop(&r, &c[0]);
	EXPECT_EQ(2, c[0].result);
	EXPECT_EQ(12, c[0].new_handle);
	EXPECT_EQ(0, memcmp(mem[2], "cc", 2));
	close(cfd);
	close(l);
	ring_close(&r);
}

TEST_HARNESS_MAIN
