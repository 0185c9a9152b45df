// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_chan: the /dev/megapipe channel ABI below libmegapipe -- what
 * the library's own suite (libmegapipe/test, run by
 * tests/scripts/megapipe_lib.sh) cannot reach: bad user pointers
 * (EFAULT), reserved fields (EINVAL), a channel fd used by another
 * process (EPERM), registration refusals, and the release of every socket
 * when the owner is SIGKILLed or closes the channel with hundreds of
 * connections and requests outstanding (TCP inuse back to its start).
 * Each test runs in a netns of its own, on loopback.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/bpf.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"
#include "percore_lib.h"

FIXTURE(chan) {
	int ch;		/* a set-up channel */
	int l;		/* listener on LIB_PORT */
	int lh;		/* its handle */
	long base;	/* TCP inuse before the test */
};

FIXTURE_SETUP(chan)
{
	self->ch = self->l = -1;
	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE " (CONFIG_MEGAPIPE)");
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_raise_nofile(4096));
	self->base = lib_tcp_inuse();
	self->ch = mp_open(1024);
	ASSERT_LE(0, self->ch);
	self->l = lib_listener(AF_INET, LIB_PORT, 1024, 0);
	ASSERT_LE(0, self->l);
	self->lh = mp_reg(self->ch, self->l, 7);
	ASSERT_LE(0, self->lh);
}

FIXTURE_TEARDOWN(chan)
{
	if (self->ch >= 0)
		close(self->ch);
	if (self->l >= 0)
		close(self->l);
}

/* Accept one connection through the channel: its handle; *cfd the client. */
static int accept_one(struct __test_metadata *_metadata, int ch, int lh,
		      int *cfd)
{
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_ACCEPT, .handle = lh, .len = 1 };
	struct megapipe_submit out;
	struct megapipe_cqe c;

	*cfd = lib_connect(AF_INET, LIB_PORT, false);
	EXPECT_LE(0, *cfd);
	EXPECT_EQ(0, mp_sub(ch, &r, 1, &c, 1, 1, 5000000000LL, &out));
	EXPECT_EQ(1, out.completed);
	EXPECT_EQ(0, c.result);
	return c.new_handle;
}

TEST_F(chan, bad_pointers_efault)
{
	struct megapipe_req r[2] = { { 0 } };
	struct megapipe_submit out;
	struct megapipe_cqe c[4];
	struct iovec iov = { BAD_PTR, 4 };
	struct megapipe_submit *ro;
	int cfd, h;

	/* the ioctl arguments themselves */
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_INFO, BAD_PTR));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_SETUP, BAD_PTR));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_REGISTER, BAD_PTR));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_UNREGISTER, BAD_PTR));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_EXPORT, BAD_PTR));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_SUBMIT, BAD_PTR));
	EXPECT_EQ(EFAULT, errno);
	/* the arrays: nothing taken */
	EXPECT_EQ(-1, mp_sub(self->ch, BAD_PTR, 1, c, 1, 0, 0, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, mp_sub(self->ch, (void *)-4096L, 1, c, 1, 0, 0, NULL));
	EXPECT_EQ(EFAULT, errno);

	h = accept_one(_metadata, self->ch, self->lh, &cfd);
	ASSERT_LE(0, h);
	/* a buffer outside the address space: refused at submission */
	r[0].opcode = MEGAPIPE_OP_READ;
	r[0].handle = h;
	r[0].addr = (uintptr_t)-4096L;
	r[0].len = 16;
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 0, 0, &out));
	EXPECT_EQ(0, out.submitted);
	EXPECT_EQ(-EFAULT, out.error);
	/* an unmapped user buffer: the read completes with -EFAULT */
	r[0].addr = (uintptr_t)BAD_PTR;
	ASSERT_EQ(4, write(cfd, "abcd", 4));
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 1, 2000000000LL, &out));
	EXPECT_EQ(1, out.submitted);
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(-EFAULT, c[0].result);
	/* the same for a write */
	r[0].opcode = MEGAPIPE_OP_WRITE;
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 1, 2000000000LL, &out));
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(-EFAULT, c[0].result);
	/* WRITEV: the iovec array is read at submission */
	r[0].opcode = MEGAPIPE_OP_WRITEV;
	r[0].addr = (uintptr_t)BAD_PTR;
	r[0].len = 1;
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 0, 0, &out));
	EXPECT_EQ(0, out.submitted);
	EXPECT_EQ(-EFAULT, out.error);
	r[0].addr = (uintptr_t)&iov;
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 1, 2000000000LL, &out));
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(-EFAULT, c[0].result);
	/*
	 * Completions copied to a bad array stay queued: the call fails
	 * when it took nothing, else it reports what it took.
	 */
	r[0].opcode = MEGAPIPE_OP_CANCEL;
	r[0].addr = 0;
	r[0].len = 0;
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, BAD_PTR, 4, 0, 0, &out));
	EXPECT_EQ(1, out.submitted);
	EXPECT_EQ(0, out.completed);
	EXPECT_EQ(-1, mp_sub(self->ch, NULL, 0, BAD_PTR, 4, 0, 0, &out));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, mp_sub(self->ch, NULL, 0, c, 4, 1, 0, &out));
	EXPECT_EQ(1, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_CANCEL, c[0].opcode);
	EXPECT_EQ(0, c[0].result);
	/* a read-only argument: refused before anything is taken */
	ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	memset(ro, 0, sizeof(*ro));
	ro->reqs = (uintptr_t)r;
	ro->nr_reqs = 1;
	ro->cqes = (uintptr_t)c;
	ro->max_cqes = 4;
	ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
	memset(c, 0xff, sizeof(c));
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_SUBMIT, ro));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0xffffffffU, c[0].handle);
	EXPECT_EQ(0, mp_sub(self->ch, NULL, 0, c, 4, 0, 0, &out));
	EXPECT_EQ(0, out.completed);
	munmap(ro, 4096);
	close(cfd);
}

/*
 * A DISCONNECT behind a write the peer never takes (it does not read):
 * CANCEL still reaches the closing handle, and the DISCONNECT then runs.
 */
TEST_F(chan, cancel_unblocks_disconnect)
{
	const size_t big = 64 << 20;
	struct megapipe_req r[2] = { { 0 } };
	struct megapipe_submit out;
	struct megapipe_cqe c[4];
	int cfd, h;
	void *buf;

	buf = mmap(NULL, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	h = accept_one(_metadata, self->ch, self->lh, &cfd);
	ASSERT_LE(0, h);
	r[0].opcode = MEGAPIPE_OP_WRITE;
	r[0].handle = h;
	r[0].addr = (uintptr_t)buf;
	r[0].len = big;
	r[1].opcode = MEGAPIPE_OP_DISCONNECT;
	r[1].handle = h;
	EXPECT_EQ(0, mp_sub(self->ch, r, 2, c, 4, 0, 0, &out));
	EXPECT_EQ(2, out.submitted);
	EXPECT_EQ(0, out.completed);
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_CANCEL;
	r[0].handle = h;
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 3, 2000000000LL, &out));
	EXPECT_EQ(1, out.submitted);
	EXPECT_EQ(0, out.error);
	ASSERT_EQ(3, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_WRITE, c[0].opcode);
	EXPECT_LT(0, c[0].result);
	EXPECT_EQ(MEGAPIPE_OP_CANCEL, c[1].opcode);
	EXPECT_EQ(1, c[1].result);
	EXPECT_EQ(MEGAPIPE_OP_DISCONNECT, c[2].opcode);
	EXPECT_EQ(0, c[2].result);
	/* gone now */
	EXPECT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 0, 0, &out));
	EXPECT_EQ(0, out.submitted);
	EXPECT_EQ(-EBADF, out.error);
	munmap(buf, big);
	close(cfd);
}

TEST_F(chan, reserved_fields_einval)
{
	struct megapipe_info info = { 0 };
	struct megapipe_setup s = { .cq_entries = 4 };
	struct megapipe_register reg = { .fd = self->l };
	struct megapipe_unregister ur = { .handle = self->lh };
	struct megapipe_export ex = { .handle = self->lh };
	struct megapipe_submit sub = { 0 };
	int i, fresh = mp_open(0);

	ASSERT_LE(0, fresh);
	for (i = 0; i < 4; i++) {
		info.resv[i] = 0;
		info.flags = 1;
		EXPECT_EQ(-1, ioctl(fresh, MEGAPIPE_IOC_INFO, &info));
		EXPECT_EQ(EINVAL, errno);
		info.flags = 0;
		/* reserved, out-only or (without a ring) unused fields */
		s = (struct megapipe_setup){ .cq_entries = 4 };
		*(i == 0 ? &s.resv0 : &s.sq_entries) = 1;
		if (i >= 2)
			*(i == 2 ? &s.sq_ring_size : &s.resv) = 1;
		if (i >= 2)
			s.sq_entries = 0;
		EXPECT_EQ(-1, ioctl(fresh, MEGAPIPE_IOC_SETUP, &s));
		EXPECT_EQ(EINVAL, errno);
		s = (struct megapipe_setup){ .cq_entries = 4 };
	}
	/* a ring needs its submission ring's size, at most the maximum */
	s.flags = MEGAPIPE_SETUP_RING;
	EXPECT_EQ(-1, ioctl(fresh, MEGAPIPE_IOC_SETUP, &s));
	EXPECT_EQ(EINVAL, errno);
	s.sq_entries = MEGAPIPE_MAX_SQ_ENTRIES + 1;
	EXPECT_EQ(-1, ioctl(fresh, MEGAPIPE_IOC_SETUP, &s));
	EXPECT_EQ(EINVAL, errno);
	s = (struct megapipe_setup){ .cq_entries = 4 };
	/* before SETUP: EBADFD, after a failed one too */
	EXPECT_EQ(-1, ioctl(fresh, MEGAPIPE_IOC_REGISTER, &reg));
	EXPECT_EQ(EBADFD, errno);
	close(fresh);

	for (i = 0; i < 2; i++) {
		reg.resv[i] = 1;
		EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_REGISTER, &reg));
		EXPECT_EQ(EINVAL, errno);
		reg.resv[i] = 0;
	}
	ur.resv = 1;
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_UNREGISTER, &ur));
	EXPECT_EQ(EINVAL, errno);
	ur.resv = 0;
	ur.flags = 1;
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_UNREGISTER, &ur));
	EXPECT_EQ(EINVAL, errno);
	ex.resv = 1;
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_EXPORT, &ex));
	EXPECT_EQ(EINVAL, errno);
	for (i = 0; i < 3; i++) {
		sub.resv[i] = 1;
		EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_SUBMIT, &sub));
		EXPECT_EQ(EINVAL, errno);
		sub.resv[i] = 0;
	}
	sub.flags = 1;
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_SUBMIT, &sub));
	EXPECT_EQ(EINVAL, errno);
	/* an unknown ioctl */
	EXPECT_EQ(-1, ioctl(self->ch, _IO(MEGAPIPE_IOC_MAGIC, 0x1f), 0));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(chan, register_refusals)
{
	int u, other, cfd, h, c2;

	u = socket(AF_UNIX, SOCK_STREAM, 0);
	EXPECT_EQ(-1, mp_reg(self->ch, u, 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	close(u);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	EXPECT_EQ(-1, mp_reg(self->ch, u, 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	close(u);
	other = mp_open(4);
	ASSERT_LE(0, other);
	EXPECT_EQ(-1, mp_reg(self->ch, other, 0));	/* a channel */
	EXPECT_EQ(ENOTSOCK, errno);
	EXPECT_EQ(-1, mp_reg(self->ch, self->ch, 0));	/* itself */
	EXPECT_EQ(ENOTSOCK, errno);
	/* a listener in a second channel, not twice in one */
	EXPECT_LE(0, mp_reg(other, self->l, 0));
	EXPECT_EQ(-1, mp_reg(self->ch, self->l, 0));
	EXPECT_EQ(EEXIST, errno);
	h = accept_one(_metadata, self->ch, self->lh, &cfd);
	ASSERT_LE(0, h);
	c2 = lib_connect(AF_INET, LIB_PORT, false);
	ASSERT_LE(0, c2);
	/* a connection may be in two channels, as an fd in two epolls */
	EXPECT_LE(0, mp_reg(self->ch, c2, 0));
	EXPECT_LE(0, mp_reg(other, c2, 0));
	/* but once per channel */
	EXPECT_EQ(-1, mp_reg(self->ch, c2, 0));
	EXPECT_EQ(EEXIST, errno);
	close(other);		/* its listener handle goes, ours stays */
	h = accept_one(_metadata, self->ch, self->lh, &u);
	EXPECT_LE(0, h);
	close(u);
	close(c2);
	close(cfd);
}

/* Register @l in @ch with a mask of @cpu alone; the handle. */
static int reg_on_cpu(int ch, int l, int cpu)
{
	uint64_t mask[MEGAPIPE_CPUMASK_MAX_BYTES / 8] = { 0 };
	struct megapipe_register r = {
		.fd = l, .cpumask = (uintptr_t)mask, .cpumask_len = sizeof(mask),
	};

	mask[cpu / 64] = 1ULL << (cpu % 64);
	if (ioctl(ch, MEGAPIPE_IOC_REGISTER, &r))
		return -1;
	return r.handle;
}

/*
 * Listener CPU masks: a new connection on the listen clone of CPU c (a
 * per-core listener; loopback queues it on the CPU its client sends from)
 * wakes the channel whose mask has c and not the other: the other's
 * pending ACCEPT does not run.  A mask naming no existing CPU is EINVAL.
 */
TEST_F(chan, listener_cpumask_routes_new_connections)
{
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_ACCEPT, .len = 1 };
	uint64_t none[MEGAPIPE_CPUMASK_MAX_BYTES / 8] = { 0 };
	struct megapipe_register reg = { 0 };
	struct megapipe_info info = { 0 };
	struct megapipe_submit out;
	int l, ch[2], h[2], i, c, cl;
	struct megapipe_cqe cqe;
	int cpus[2];

	ASSERT_EQ(0, ioctl(self->ch, MEGAPIPE_IOC_INFO, &info));
	ASSERT_TRUE(info.features & MEGAPIPE_FEAT_PERCORE_LISTEN);
	if (lib_cpus(cpus, 2) < 2)
		SKIP(return, "needs two CPUs");
	l = pcl_listener(AF_INET, false, LIB_PORT + 3, 64, 1);
	if (l < 0 && errno == ENOPROTOOPT)
		SKIP(return, "no TCP_PERCORE_LISTEN");
	ASSERT_LE(0, l);
	reg.fd = l;
	reg.cpumask = (uintptr_t)none;
	reg.cpumask_len = sizeof(none);
	none[MEGAPIPE_CPUMASK_MAX_BYTES / 8 - 1] = 1ULL << 63;
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_REGISTER, &reg));
	EXPECT_EQ(EINVAL, errno);
	for (i = 0; i < 2; i++) {
		ch[i] = mp_open(16);
		ASSERT_LE(0, ch[i]);
		h[i] = reg_on_cpu(ch[i], l, cpus[i]);
		ASSERT_LE(0, h[i]);
		r.handle = h[i];
		ASSERT_EQ(0, mp_sub(ch[i], &r, 1, &cqe, 1, 0, 0, &out));
		ASSERT_EQ(1, out.submitted);
		ASSERT_EQ(0, out.completed);
	}
	for (c = 0; c < 2; c++) {
		/* a client on CPU cpus[c]: its connection on clone cpus[c] */
		ASSERT_EQ(0, lib_pin(cpus[c]));
		cl = lib_connect(AF_INET, LIB_PORT + 3, false);
		ASSERT_LE(0, cl);
		ASSERT_EQ(1, lib_wait_queued(l, 1, LIB_DEADLINE_MS));
		/* the other channel was not woken: its ACCEPT did not run */
		ASSERT_EQ(0, mp_sub(ch[!c], NULL, 0, &cqe, 1, 0, 0, &out));
		EXPECT_EQ(0, out.completed);
		/* this one was */
		ASSERT_EQ(0, mp_sub(ch[c], NULL, 0, &cqe, 1, 1,
				    5000000000LL, &out));
		ASSERT_EQ(1, out.completed);
		EXPECT_EQ(MEGAPIPE_OP_ACCEPT, cqe.opcode);
		EXPECT_EQ(0, cqe.result);
		close(cl);
		/* wait for the next one again */
		r.handle = h[c];
		ASSERT_EQ(0, mp_sub(ch[c], &r, 1, &cqe, 1, 0, 0, &out));
		ASSERT_EQ(1, out.submitted);
	}
	close(ch[0]);
	close(ch[1]);
	close(l);
}

/*
 * A child of a registered listener taken by accept(2) owes the channel
 * nothing: in a sockmap, data flows both ways.
 */
TEST_F(chan, accepted_child_in_sockmap)
{
	union bpf_attr attr;
	int map, c, a;
	char buf[4];

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_SOCKMAP;
	attr.key_size = sizeof(__u32);
	attr.value_size = sizeof(__u64);
	attr.max_entries = 1;
	map = bpf_sys(BPF_MAP_CREATE, &attr);
	if (map < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
		SKIP(return, "no sockmap here: %s", strerror(errno));
	ASSERT_LE(0, map);
	c = lib_connect(AF_INET, LIB_PORT, false);
	ASSERT_LE(0, c);
	a = accept(self->l, NULL, NULL);
	ASSERT_LE(0, a);
	ASSERT_EQ(0, sockmap_set(map, 0, a));
	ASSERT_EQ(3, write(c, "abc", 3));
	EXPECT_EQ(3, read(a, buf, sizeof(buf)));
	ASSERT_EQ(3, write(a, "def", 3));
	EXPECT_EQ(3, read(c, buf, sizeof(buf)));
	close(map);
	close(a);
	close(c);
}

/* The channel fd in another process: EPERM for every ioctl. */
static int use_foreign(int ch)
{
	struct megapipe_info info = { 0 };
	struct megapipe_submit s = { 0 };
	int bad = 0;

	if (ioctl(ch, MEGAPIPE_IOC_INFO, &info) != -1 || errno != EPERM)
		bad |= 1;
	if (ioctl(ch, MEGAPIPE_IOC_SUBMIT, &s) != -1 || errno != EPERM)
		bad |= 2;
	return bad;
}

TEST_F(chan, other_process_eperm)
{
	struct megapipe_info info = { 0 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = { 0 };
	struct iovec iov;
	struct cmsghdr *cm;
	int sp[2], st, fd;
	pid_t pid;
	char x = 0;

	/* inherited through fork() */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(use_foreign(self->ch));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));

	/*
	 * SCM_RIGHTS refuses a channel, as it refuses an io_uring: a channel
	 * holding the Unix socket it is in flight on could never be freed.
	 */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	iov.iov_base = &x;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &self->ch, sizeof(int));
	EXPECT_EQ(-1, sendmsg(sp[0], &msg, 0));
	EXPECT_EQ(EINVAL, errno);
	/* any other fd still goes */
	fd = dup(sp[1]);
	ASSERT_LE(0, fd);
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	EXPECT_EQ(1, sendmsg(sp[0], &msg, 0));
	close(fd);
	close(sp[0]);
	close(sp[1]);
	/* and the owner's channel still works */
	EXPECT_EQ(0, ioctl(self->ch, MEGAPIPE_IOC_INFO, &info));
	EXPECT_EQ(MEGAPIPE_ABI_VERSION, info.abi_version);
}

#define NCONN	256

/*
 * In a child: a channel with NCONN accepted connections, each with a
 * pending read, every fourth also with a write that cannot complete (1 MB
 * the client never reads), plus accepts still waiting; the clients are the
 * child's too.  Reports readiness on @ready, then waits for its end.
 * With @close_it the child closes the channel itself and exits once the
 * parent, having counted its sockets, writes a byte to @go.
 */
static void busy_child(int ready, int go, bool close_it)
{
	static char big[1 << 20];
	struct megapipe_req r[8];
	struct megapipe_cqe c[256];
	struct megapipe_submit out;
	int ch, l, lh, i, got = 0, cl[NCONN];
	int h[NCONN];
	char buf[NCONN][8];

	ch = mp_open(8192);
	l = lib_listener(AF_INET, LIB_PORT + 1, 1024, 0);
	if (ch < 0 || l < 0)
		_exit(10);
	lh = mp_reg(ch, l, 1);
	if (lh < 0)
		_exit(11);
	for (i = 0; i < NCONN; i++) {
		cl[i] = lib_connect(AF_INET, LIB_PORT + 1, false);
		if (cl[i] < 0)
			_exit(12);
	}
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_ACCEPT;
	r[0].handle = lh;
	r[0].len = NCONN + 16;	/* 16 stay pending */
	if (mp_sub(ch, r, 1, NULL, 0, 0, 0, &out) || out.submitted != 1)
		_exit(13);
	while (got < NCONN) {
		if (mp_sub(ch, NULL, 0, c, 256, 1, 5000000000LL, &out) || !out.completed)
			_exit(14);
		for (i = 0; i < (int)out.completed; i++) {
			if (c[i].result)
				_exit(15);
			h[got++] = c[i].new_handle;
		}
	}
	for (i = 0; i < NCONN; i++) {
		memset(r, 0, sizeof(r));
		r[0].opcode = MEGAPIPE_OP_READ;
		r[0].handle = h[i];
		r[0].addr = (uintptr_t)buf[i];
		r[0].len = sizeof(buf[i]);
		r[1].opcode = MEGAPIPE_OP_WRITE;
		r[1].handle = h[i];
		r[1].addr = (uintptr_t)big;
		r[1].len = sizeof(big);
		if (mp_sub(ch, r, i % 4 ? 1 : 2, NULL, 0, 0, 0, &out) || out.error)
			_exit(16);
	}
	if (write(ready, "r", 1) != 1)
		_exit(17);
	if (close_it) {
		if (read(go, buf[0], 1) != 1)
			_exit(18);
		close(ch);
		close(l);
		for (i = 0; i < NCONN; i++)
			close(cl[i]);
		_exit(0);
	}
	for (;;)
		pause();
}

static void run_busy(struct __test_metadata *_metadata, long base, bool kill_it)
{
	int p[2], g[2], st;
	long used;
	pid_t pid;
	char x;

	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, pipe(g));
	used = lib_sockets_used();
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p[0]);
		close(g[1]);
		busy_child(p[1], g[0], !kill_it);
	}
	close(p[1]);
	close(g[0]);
	ASSERT_EQ(1, read(p[0], &x, 1));
	close(p[0]);
	/* the child's listener, NCONN clients and NCONN server sockets */
	EXPECT_LE(base + 1 + 2 * NCONN, lib_tcp_inuse());
	if (kill_it) {
		ASSERT_EQ(0, kill(pid, SIGKILL));
	} else {
		ASSERT_EQ(1, write(g[1], "g", 1));
	}
	close(g[1]);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	if (kill_it) {
		EXPECT_TRUE(WIFSIGNALED(st));
	} else {
		EXPECT_TRUE(WIFEXITED(st));
		EXPECT_EQ(0, WEXITSTATUS(st));
	}
	EXPECT_EQ(base, wait_inuse(base, 4 * LIB_DEADLINE_MS));
	/* every socket released, lightweight ones (no fd) included */
	EXPECT_EQ(used, lib_wait_count(lib_sockets_used, used, LIB_DEADLINE_MS));
}

TEST_F(chan, sigkill_with_requests_outstanding)
{
	/* our listener: base + 1 */
	run_busy(_metadata, self->base + 1, true);
}

TEST_F(chan, close_with_requests_outstanding)
{
	run_busy(_metadata, self->base + 1, false);
}

TEST_HARNESS_MAIN
