// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_semantics: how a /dev/megapipe channel shares its sockets with
 * the rest of the kernel and with other channels, as the uapi header
 * describes it (include/uapi/linux/megapipe.h):
 *  - a new connection of a per-core listener goes to a channel of its CPU
 *    when one is idle, else to an idle channel of another CPU: a busy
 *    (stalled) channel does not hold it back;
 *  - a listener that stops listening (shutdown) ends the pending ACCEPTs
 *    with accept()'s error, plain or per-core;
 *  - CANCEL of the WRITEs only, one of them partly queued, also cancels
 *    the writes behind it: the stream has no hole;
 *  - kTLS enabled on a registered socket: READs get what recvmsg gives,
 *    also what kTLS holds decrypted outside TCP's receive queue;
 *  - a socket in a BPF sockmap may be registered, and a registered one
 *    may enter a sockmap;
 *  - a connection may be registered in two channels (a listener is still
 *    in a channel at most once).
 * Each test runs in a netns of its own, on loopback, with deadlines of a
 * few hundred milliseconds where the kernel owes an answer at once.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/bpf.h>
#include <linux/tls.h>

#include <sys/epoll.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"
#include "percore_lib.h"

#ifndef SOL_TLS
#define SOL_TLS		282
#endif
#ifndef TCP_ULP
#define TCP_ULP		31
#endif

#define MS		1000000LL	/* ns */

FIXTURE(sem) {
	int ch;		/* a set-up channel */
	int l;		/* a listener on LIB_PORT (not registered) */
};

FIXTURE_SETUP(sem)
{
	self->ch = self->l = -1;
	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE " (CONFIG_MEGAPIPE)");
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	self->ch = mp_open(64);
	ASSERT_LE(0, self->ch);
	self->l = lib_listener(AF_INET, LIB_PORT, 64, 0);
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN(sem)
{
	if (self->ch >= 0)
		close(self->ch);
	if (self->l >= 0)
		close(self->l);
}

/* A connected pair on @l (port @port): *c the client, the accepted fd. */
static int pair(int l, uint16_t port, int *c)
{
	*c = lib_connect(AF_INET, port, false);
	if (*c < 0)
		return -1;
	return accept4(l, NULL, NULL, SOCK_CLOEXEC);
}

static int mp_unreg(int ch, int h)
{
	struct megapipe_unregister u = { .handle = h };

	return ioctl(ch, MEGAPIPE_IOC_UNREGISTER, &u);
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
 * Submit one READ of @len bytes on @h and wait up to @ms for its
 * completion; its result, or -ETIMEDOUT (-1000 - errno when the ioctl
 * failed, -2000 - error when it was refused).
 */
static int read_within(int ch, int h, void *buf, uint32_t len, int ms)
{
	struct megapipe_req r = {
		.opcode = MEGAPIPE_OP_READ, .handle = h,
		.addr = (uintptr_t)buf, .len = len,
	};
	struct megapipe_submit out;
	struct megapipe_cqe c;

	if (mp_sub(ch, &r, 1, &c, 1, 1, ms * MS, &out))
		return -1000 - errno;
	if (out.submitted != 1)
		return -2000 + out.error;
	if (out.completed != 1)
		return -ETIMEDOUT;
	if (c.opcode != MEGAPIPE_OP_READ || c.handle != (uint32_t)h)
		return -3000;
	return c.result;
}

/* ---- 1. a stalled channel hands a new connection off ------------------- */

/* A thread waiting in one SUBMIT for one completion of channel @ch. */
struct waiter {
	int ch, cpu;
	int64_t timeout_ns;
	pthread_t thr;
	pid_t tid;		/* set once it runs */
	int ret, err;
	struct megapipe_submit out;
	struct megapipe_cqe cqe;
	uint64_t end_ms;
};

static void *waiter_fn(void *arg)
{
	struct waiter *w = arg;

	if (w->cpu >= 0)
		lib_pin(w->cpu);
	__atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	w->ret = mp_sub(w->ch, NULL, 0, &w->cqe, 1, 1, w->timeout_ns, &w->out);
	w->err = errno;
	w->end_ms = lib_now_ms();
	return NULL;
}

/* Start @w and return once it sleeps in its SUBMIT; 0 or -1. */
static int waiter_start(struct waiter *w)
{
	uint64_t end = lib_now_ms() + 2000;
	pid_t tid;

	if (pthread_create(&w->thr, NULL, waiter_fn, w))
		return -1;
	while (!(tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE))) {
		if (lib_now_ms() >= end)
			return -1;
		lib_tick();
	}
	return lib_wait_blocked(tid, SYS_ioctl, SYS_ioctl, 2000);
}

/*
 * Channels A (mask {cpu0}) and B ({cpu1}) with an ACCEPT each on one
 * per-core listener; a client on cpu0 connects, so its connection is on
 * clone 0, A's.  @a_idle false: A has no thread in a SUBMIT (it is busy
 * elsewhere), B has one: B takes the connection at once.  @a_idle true:
 * both wait, A takes it and B is not woken (the routing holds).
 */
static void stall_case(struct __test_metadata *_metadata, int ch0, bool a_idle)
{
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_ACCEPT, .len = 1 };
	struct megapipe_info info = { 0 };
	struct waiter wa = { 0 }, wb = { 0 };
	struct megapipe_submit out;
	struct megapipe_cqe cqe;
	int l, ch[2], h[2], i, cl, cpus[2];
	uint64_t t0;

	ASSERT_EQ(0, ioctl(ch0, MEGAPIPE_IOC_INFO, &info));
	if (!(info.features & MEGAPIPE_FEAT_PERCORE_LISTEN))
		SKIP(return, "no MEGAPIPE_FEAT_PERCORE_LISTEN");
	if (lib_cpus(cpus, 2) < 2)
		SKIP(return, "needs two CPUs");
	l = pcl_listener(AF_INET, false, LIB_PORT + 3, 64, 1);
	if (l < 0 && errno == ENOPROTOOPT)
		SKIP(return, "no TCP_PERCORE_LISTEN");
	ASSERT_LE(0, l);
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
	/* B idle: a thread of B (on cpu1) sleeps in a SUBMIT */
	wb.ch = ch[1];
	wb.cpu = cpus[1];
	wb.timeout_ns = 500 * MS;
	if (a_idle) {
		wa.ch = ch[0];
		wa.cpu = cpus[0];
		wa.timeout_ns = 1000 * MS;
		ASSERT_EQ(0, waiter_start(&wa));
	}
	ASSERT_EQ(0, waiter_start(&wb));
	/* a client on cpu0: its connection lands on clone 0 */
	ASSERT_EQ(0, lib_pin(cpus[0]));
	t0 = lib_now_ms();
	cl = lib_connect(AF_INET, LIB_PORT + 3, false);
	ASSERT_LE(0, cl);
	ASSERT_EQ(0, pthread_join(wb.thr, NULL));
	if (a_idle)
		ASSERT_EQ(0, pthread_join(wa.thr, NULL));
	ASSERT_EQ(0, wb.ret);
	if (!a_idle) {
		/* B took it, within 500 ms: A's stall did not hold it */
		ASSERT_EQ(1, wb.out.completed);
		EXPECT_EQ(MEGAPIPE_OP_ACCEPT, wb.cqe.opcode);
		EXPECT_EQ(h[1], (int)wb.cqe.handle);
		EXPECT_EQ(0, wb.cqe.result);
		EXPECT_NE(MEGAPIPE_NO_HANDLE, wb.cqe.new_handle);
		EXPECT_GT(500, (int64_t)(wb.end_ms - t0));
		TH_LOG("B accepted %llu ms after the connect",
		       (unsigned long long)(wb.end_ms - t0));
		/* exactly one: A, when it looks again, finds nothing */
		ASSERT_EQ(0, mp_sub(ch[0], NULL, 0, &cqe, 1, 0, 0, &out));
		EXPECT_EQ(0, out.completed);
	} else {
		/* A took it, B got nothing for 100 ms and more */
		ASSERT_EQ(0, wa.ret);
		ASSERT_EQ(1, wa.out.completed);
		EXPECT_EQ(MEGAPIPE_OP_ACCEPT, wa.cqe.opcode);
		EXPECT_EQ(h[0], (int)wa.cqe.handle);
		EXPECT_EQ(0, wa.cqe.result);
		EXPECT_GT(500, (int64_t)(wa.end_ms - t0));
		EXPECT_EQ(0, wb.out.completed);
		EXPECT_LE(100, (int64_t)(wb.end_ms - t0));
		ASSERT_EQ(0, mp_sub(ch[1], NULL, 0, &cqe, 1, 0, 0, &out));
		EXPECT_EQ(0, out.completed);
	}
	close(cl);
	close(ch[0]);
	close(ch[1]);
	close(l);
}

TEST_F(sem, stalled_channel_hands_off)
{
	stall_case(_metadata, self->ch, false);
}

TEST_F(sem, idle_channels_keep_routing)
{
	stall_case(_metadata, self->ch, true);
}

/* ---- 2. a listener shut down ends its pending ACCEPTs ------------------- */

static void shutdown_case(struct __test_metadata *_metadata, int ch, bool pcl)
{
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_ACCEPT, .len = 1 };
	struct megapipe_submit out;
	struct megapipe_cqe c[2];
	uint64_t t0, dt;
	int l, lh;

	if (pcl) {
		l = pcl_listener(AF_INET, false, LIB_PORT + 4, 64, 1);
		if (l < 0 && errno == ENOPROTOOPT)
			SKIP(return, "no TCP_PERCORE_LISTEN");
		ASSERT_EQ(1, pcl_get(l));
	} else {
		l = lib_listener(AF_INET, LIB_PORT + 4, 64, 0);
	}
	ASSERT_LE(0, l);
	lh = mp_reg(ch, l, 3);
	ASSERT_LE(0, lh);
	r.handle = lh;
	ASSERT_EQ(0, mp_sub(ch, &r, 1, c, 2, 0, 0, &out));
	ASSERT_EQ(1, out.submitted);
	ASSERT_EQ(0, out.completed);
	ASSERT_EQ(0, shutdown(l, SHUT_RDWR));
	t0 = lib_now_ms();
	ASSERT_EQ(0, mp_sub(ch, NULL, 0, c, 2, 1, 1000 * MS, &out));
	dt = lib_now_ms() - t0;
	TH_LOG("ACCEPT ended %llu ms after the shutdown", (unsigned long long)dt);
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_ACCEPT, c[0].opcode);
	EXPECT_EQ(lh, (int)c[0].handle);
	EXPECT_EQ(-EINVAL, c[0].result);
	EXPECT_EQ(MEGAPIPE_NO_HANDLE, c[0].new_handle);
	EXPECT_EQ(0, c[0].flags & MEGAPIPE_CQE_F_MORE);
	EXPECT_GT(500, (int64_t)dt);
	/* the handle is idle now: it leaves */
	EXPECT_EQ(0, mp_unreg(ch, lh));
	close(l);
}

TEST_F(sem, listener_shutdown_completes_accept)
{
	shutdown_case(_metadata, self->ch, false);
}

TEST_F(sem, percore_listener_shutdown_completes_accept)
{
	shutdown_case(_metadata, self->ch, true);
}

/* ---- 3. CANCEL of a partly queued WRITE leaves no hole ------------------ */

#define BIG		(4 << 20)

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 13) + 1);
}

/* A listener on @port whose children have a small send buffer. */
static int small_listener(uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(AF_INET, port, &ss);
	int fd, one = 1, small = 4096;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16)) {
		close(fd);
		return -1;
	}
	return fd;
}

TEST_F(sem, partial_mask_cancel_no_hole)
{
	struct megapipe_req r[2];
	struct megapipe_submit out;
	struct megapipe_cqe c[4];
	struct sockaddr_storage ss;
	struct iovec iov = { .iov_base = "XYZ", .iov_len = 3 };
	struct timeval tv = { .tv_sec = 2 };
	int l, lh, cl, h, small = 4096, d, n, bad = -1;
	unsigned char *buf, rb[65536];
	uint64_t end;
	long got = 0;
	size_t i;

	buf = malloc(BIG);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < BIG; i++)
		buf[i] = pat(i);
	l = small_listener(LIB_PORT + 5);
	ASSERT_LE(0, l);
	lh = mp_reg(self->ch, l, 0);
	ASSERT_LE(0, lh);
	/* a peer with a small receive buffer that does not read yet */
	cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, cl);
	ASSERT_EQ(0, setsockopt(cl, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)));
	ASSERT_EQ(0, setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	ASSERT_EQ(0, connect(cl, (struct sockaddr *)&ss,
			     lib_lo_addr(AF_INET, LIB_PORT + 5, &ss)));
	/* taken by the channel: a lightweight socket */
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_ACCEPT;
	r[0].handle = lh;
	r[0].len = 1;
	ASSERT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 1, 1000 * MS, &out));
	ASSERT_EQ(1, out.completed);
	ASSERT_EQ(0, c[0].result);
	h = c[0].new_handle;
	/* 4 MiB: part of it is queued, the rest waits; "XYZ" behind it */
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_WRITE;
	r[0].handle = h;
	r[0].addr = (uintptr_t)buf;
	r[0].len = BIG;
	r[1].opcode = MEGAPIPE_OP_WRITEV;
	r[1].handle = h;
	r[1].addr = (uintptr_t)&iov;
	r[1].len = 1;
	ASSERT_EQ(0, mp_sub(self->ch, r, 2, c, 4, 0, 0, &out));
	ASSERT_EQ(2, out.submitted);
	ASSERT_EQ(0, out.completed);
	/* cancel the WRITEs only: the WRITEV behind the partial one goes too */
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_CANCEL;
	r[0].handle = h;
	r[0].op_flags = MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_WRITE);
	ASSERT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 3, 1000 * MS, &out));
	ASSERT_EQ(1, out.submitted);
	for (i = 0; out.completed != 3 && i < out.completed; i++)
		TH_LOG("completion %zu: opcode %u result %d", i,
		       c[i].opcode, c[i].result);
	ASSERT_EQ(3, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_WRITE, c[0].opcode);
	d = c[0].result;
	EXPECT_LT(0, d);
	EXPECT_GT(BIG, d);
	EXPECT_EQ(MEGAPIPE_OP_WRITEV, c[1].opcode);
	EXPECT_EQ(-ECANCELED, c[1].result);
	EXPECT_EQ(MEGAPIPE_OP_CANCEL, c[2].opcode);
	EXPECT_EQ(2, c[2].result);
	TH_LOG("partial write: %d bytes queued", d);
	/* close it: the peer gets the D bytes, then the end */
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_DISCONNECT;
	r[0].handle = h;
	ASSERT_EQ(0, mp_sub(self->ch, r, 1, c, 4, 1, 1000 * MS, &out));
	ASSERT_EQ(1, out.submitted);
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_DISCONNECT, c[0].opcode);
	EXPECT_EQ(0, c[0].result);
	end = lib_now_ms() + 3000;
	for (;;) {
		n = read(cl, rb, sizeof(rb));
		if (n <= 0)
			break;
		for (i = 0; i < (size_t)n && bad < 0; i++)
			if (got + (long)i >= BIG || rb[i] != pat(got + i))
				bad = got + i;
		got += n;
		if (lib_now_ms() >= end) {
			n = -1;
			errno = ETIMEDOUT;
			break;
		}
	}
	if (n < 0)
		EXPECT_EQ(ECONNRESET, errno);
	EXPECT_EQ(d, got);
	EXPECT_EQ(-1, bad) {
		TH_LOG("byte %d differs from the WRITE's", bad);
	}
	close(cl);
	close(l);
	free(buf);
}

/* ---- 4. kTLS enabled on a registered socket ---------------------------- */

static void tls_info(struct tls12_crypto_info_aes_gcm_128 *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->info.version = TLS_1_2_VERSION;
	ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memset(ci->key, 0x11, sizeof(ci->key));
	memset(ci->iv, 0x22, sizeof(ci->iv));
	memset(ci->salt, 0x33, sizeof(ci->salt));
	memset(ci->rec_seq, 0, sizeof(ci->rec_seq));
}

TEST_F(sem, ktls_after_register)
{
	struct tls12_crypto_info_aes_gcm_128 ci;
	unsigned char out[4096], in[4096];
	int c, s, h, ret;
	size_t i;

	s = pair(self->l, LIB_PORT, &c);
	ASSERT_LE(0, s);
	h = mp_reg(self->ch, s, 9);
	ASSERT_LE(0, h);
	ret = setsockopt(s, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
	if (ret && (errno == ENOENT || errno == ENOPROTOOPT))
		SKIP(goto out, "no kTLS (CONFIG_TLS): %s", strerror(errno));
	ASSERT_EQ(0, ret) {
		TH_LOG("TCP_ULP tls on a registered socket: %s", strerror(errno));
	}
	tls_info(&ci);
	ASSERT_EQ(0, setsockopt(s, SOL_TLS, TLS_RX, &ci, sizeof(ci))) {
		TH_LOG("TLS_RX: %s", strerror(errno));
	}
	ASSERT_EQ(0, setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")));
	ASSERT_EQ(0, setsockopt(c, SOL_TLS, TLS_TX, &ci, sizeof(ci)));
	for (i = 0; i < sizeof(out); i++)
		out[i] = pat(i);
	/* one record */
	ASSERT_EQ(sizeof(out), write(c, out, sizeof(out)));
	memset(in, 0, sizeof(in));
	EXPECT_EQ(1, read_within(self->ch, h, in, 1, 1000));
	EXPECT_EQ(out[0], in[0]);
	/* the rest of the record: kTLS holds it, not TCP's receive queue */
	EXPECT_EQ(sizeof(out) - 1,
		  read_within(self->ch, h, in + 1, sizeof(in), 1000));
	EXPECT_EQ(0, memcmp(in, out, sizeof(out)));
	EXPECT_EQ(0, mp_unreg(self->ch, h));
out:
	close(c);
	close(s);
}

/* ---- 5. BPF sockmap ------------------------------------------------------ */

/* A READ pending on @h completes with what the peer @c writes next. */
static void read_wakes(struct __test_metadata *_metadata, int ch, int h,
		       int c, const char *what)
{
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_READ, .handle = h };
	struct megapipe_submit out;
	struct megapipe_cqe cqe;
	char buf[16] = "";

	r.addr = (uintptr_t)buf;
	r.len = sizeof(buf);
	ASSERT_EQ(0, mp_sub(ch, &r, 1, &cqe, 1, 0, 0, &out));
	ASSERT_EQ(1, out.submitted);
	ASSERT_EQ(0, out.completed);
	ASSERT_EQ(3, write(c, what, 3));
	ASSERT_EQ(0, mp_sub(ch, NULL, 0, &cqe, 1, 1, 1000 * MS, &out));
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_READ, cqe.opcode);
	EXPECT_EQ(3, cqe.result);
	EXPECT_EQ(0, memcmp(buf, what, 3));
}

TEST_F(sem, sockmap_coexists)
{
	union bpf_attr attr;
	int map, c1, s1, c2, s2, h1, h2;
	char buf[4];

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_SOCKMAP;
	attr.key_size = sizeof(__u32);
	attr.value_size = sizeof(__u64);
	attr.max_entries = 2;
	map = bpf_sys(BPF_MAP_CREATE, &attr);
	if (map < 0)
		SKIP(return, "no sockmap here: %s", strerror(errno));
	/* registered first, then in the sockmap */
	s1 = pair(self->l, LIB_PORT, &c1);
	ASSERT_LE(0, s1);
	h1 = mp_reg(self->ch, s1, 1);
	ASSERT_LE(0, h1);
	EXPECT_EQ(0, sockmap_set(map, 0, s1)) {
		TH_LOG("a registered socket into a sockmap: %s", strerror(errno));
	}
	read_wakes(_metadata, self->ch, h1, c1, "abc");
	EXPECT_EQ(0, mp_unreg(self->ch, h1));
	/* still a working socket */
	ASSERT_EQ(3, write(c1, "def", 3));
	EXPECT_EQ(3, read(s1, buf, sizeof(buf)));
	/* in the sockmap first, then registered */
	s2 = pair(self->l, LIB_PORT, &c2);
	ASSERT_LE(0, s2);
	ASSERT_EQ(0, sockmap_set(map, 1, s2));
	h2 = mp_reg(self->ch, s2, 2);
	ASSERT_LE(0, h2) {
		TH_LOG("a socket of a sockmap registered: %s", strerror(errno));
	}
	read_wakes(_metadata, self->ch, h2, c2, "ghi");
	EXPECT_EQ(0, mp_unreg(self->ch, h2));
	ASSERT_EQ(3, write(c2, "jkl", 3));
	EXPECT_EQ(3, read(s2, buf, sizeof(buf)));
	close(map);
	close(c1);
	close(s1);
	close(c2);
	close(s2);
}

/* ---- 6. one connection in two channels ----------------------------------- */

TEST_F(sem, connection_in_two_channels)
{
	struct megapipe_submit out;
	struct megapipe_cqe cqe;
	int ch2, c, s, h1, h2, lh1, lh2;
	char buf[8];

	ch2 = mp_open(16);
	ASSERT_LE(0, ch2);
	s = pair(self->l, LIB_PORT, &c);
	ASSERT_LE(0, s);
	h1 = mp_reg(self->ch, s, 1);
	ASSERT_LE(0, h1);
	h2 = mp_reg(ch2, s, 2);
	ASSERT_LE(0, h2) {
		TH_LOG("a connection in a second channel: %s", strerror(errno));
	}
	/* both work: each READ gets its turn at the stream */
	ASSERT_EQ(3, write(c, "one", 3));
	EXPECT_EQ(3, read_within(ch2, h2, buf, sizeof(buf), 1000));
	EXPECT_EQ(0, memcmp(buf, "one", 3));
	ASSERT_EQ(3, write(c, "two", 3));
	EXPECT_EQ(3, read_within(self->ch, h1, buf, sizeof(buf), 1000));
	EXPECT_EQ(0, memcmp(buf, "two", 3));
	/* nothing left for the other */
	EXPECT_EQ(0, mp_sub(ch2, NULL, 0, &cqe, 1, 0, 0, &out));
	EXPECT_EQ(0, out.completed);
	EXPECT_EQ(0, mp_unreg(ch2, h2));
	EXPECT_EQ(0, mp_unreg(self->ch, h1));
	/* a listener: in each channel, but once in one */
	lh1 = mp_reg(self->ch, self->l, 0);
	ASSERT_LE(0, lh1);
	EXPECT_EQ(-1, mp_reg(self->ch, self->l, 0));
	EXPECT_EQ(EEXIST, errno);
	lh2 = mp_reg(ch2, self->l, 0);
	EXPECT_LE(0, lh2);
	close(ch2);
	close(c);
	close(s);
}

/*
 * A channel whose fd is in an epoll set, its thread busy elsewhere (not
 * in epoll_wait), registered first on a listener: a new connection must
 * still wake channel B waiting in SUBMIT (work conservation), and A's
 * epoll set hears of it (it is marked and its pollers woken).
 */
TEST_F(sem, polled_channel_does_not_take_an_idle_waiters_connection)
{
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_ACCEPT, .len = 1 };
	struct epoll_event ev = { .events = EPOLLIN }, got;
	struct megapipe_submit out;
	struct waiter w = { .cpu = -1, .timeout_ns = 3000 * MS };
	int b, ha, hb, ep, c;
	uint64_t t0;

	ha = mp_reg(self->ch, self->l, 1);
	ASSERT_LE(0, ha);
	b = mp_open(64);
	ASSERT_LE(0, b);
	hb = mp_reg(b, self->l, 2);
	ASSERT_LE(0, hb);
	r.handle = ha;
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	ASSERT_EQ(1, out.submitted);
	r.handle = hb;
	ASSERT_EQ(0, mp_sub(b, &r, 1, NULL, 0, 0, 0, &out));
	ASSERT_EQ(1, out.submitted);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->ch, &ev));
	w.ch = b;
	ASSERT_EQ(0, waiter_start(&w));
	t0 = lib_now_ms();
	c = lib_connect(AF_INET, LIB_PORT, false);
	ASSERT_LE(0, c);
	pthread_join(w.thr, NULL);
	EXPECT_EQ(0, w.ret);
	ASSERT_EQ(1, w.out.completed);
	EXPECT_EQ(MEGAPIPE_OP_ACCEPT, w.cqe.opcode);
	EXPECT_EQ(0, w.cqe.result);
	EXPECT_EQ(2, w.cqe.cookie);
	EXPECT_GT(1000, lib_now_ms() - t0);	/* at once, not at the timeout */
	/* A's epoll set was told (its ACCEPT then finds nothing, and waits) */
	EXPECT_EQ(1, epoll_wait(ep, &got, 1, 1000));
	ASSERT_EQ(0, mp_sub(self->ch, NULL, 0, NULL, 0, 0, 0, &out));
	close(c);
	close(ep);
	close(b);
}

TEST_HARNESS_MAIN
