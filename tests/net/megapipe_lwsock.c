// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_lwsock: lightweight sockets of /dev/megapipe channels.
 *
 * A connection accepted (without MEGAPIPE_ACCEPT_FD) or connected through
 * a channel has no fd and no file, yet is a socket like any other to
 * sockstat and /proc/net/tcp (inode, owner uid); EXPORT turns it into a
 * working fd; CONNECT completes with a new handle, or with the error and
 * no handle; pending CONNECTs are cancelled (CANCEL of MEGAPIPE_NO_HANDLE)
 * and released with the channel.  Each test runs in a netns of its own.
 */
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"

#define NCONN	32
#define SEC	1000000000LL

/* Entries of /proc/self/fd, or -1. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the DIR's own */
}

/* Whether one of our fds is the socket of inode @ino. */
static bool have_fd_of(unsigned long ino)
{
	char want[64], path[300], link[64];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	bool found = false;
	ssize_t n;

	if (!d)
		return false;
	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	while ((e = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (!strcmp(link, want))
			found = true;
	}
	closedir(d);
	return found;
}

/*
 * The /proc/net/tcp row of the connection from local port @lport to
 * remote port @rport: its uid and inode; 0 if found, else -1.
 */
static int tcp_row(int lport, int rport, unsigned int *uid, unsigned long *ino)
{
	char line[512];
	unsigned int lp, rp, st, u;
	unsigned long i;
	FILE *f = fopen("/proc/net/tcp", "re");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*d: %*x:%x %*x:%x %x %*x:%*x %*x:%*x %*x %u %*d %lu",
			   &lp, &rp, &st, &u, &i) != 5)
			continue;
		if ((int)lp == lport && (int)rp == rport) {
			*uid = u;
			*ino = i;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

FIXTURE(lw) {
	int ch;
	int l;		/* listener on LIB_PORT, registered */
	int lh;
	long inuse;	/* TCP inuse before the test */
	long used;	/* sockets used before the test */
};

FIXTURE_SETUP(lw)
{
	struct megapipe_info info = { 0 };

	self->ch = self->l = -1;
	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE " (CONFIG_MEGAPIPE)");
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_raise_nofile(4096));
	self->inuse = lib_tcp_inuse();
	self->used = lib_sockets_used();
	ASSERT_LE(0, self->used);
	self->ch = mp_open(1024);
	ASSERT_LE(0, self->ch);
	ASSERT_EQ(0, ioctl(self->ch, MEGAPIPE_IOC_INFO, &info));
	ASSERT_TRUE(info.features & MEGAPIPE_FEAT_LWSOCKET);
	ASSERT_TRUE(info.features & MEGAPIPE_FEAT_CONNECT);
	self->l = lib_listener(AF_INET, LIB_PORT, 1024, 0);
	ASSERT_LE(0, self->l);
	self->lh = mp_reg(self->ch, self->l, 7);
	ASSERT_LE(0, self->lh);
}

FIXTURE_TEARDOWN(lw)
{
	if (self->ch >= 0)
		close(self->ch);
	if (self->l >= 0)
		close(self->l);
}

/* Accept @n lightweight connections into @h[]. */
static void accept_n(struct __test_metadata *_metadata, int ch, int lh,
		     int *h, int n)
{
	struct megapipe_req r = {
		.opcode = MEGAPIPE_OP_ACCEPT, .handle = lh, .len = n,
	};
	struct megapipe_cqe c[NCONN];
	struct megapipe_submit out;
	int got = 0, i;

	ASSERT_EQ(0, mp_sub(ch, &r, 1, NULL, 0, 0, 0, &out));
	ASSERT_EQ(1, out.submitted);
	while (got < n) {
		ASSERT_EQ(0, mp_sub(ch, NULL, 0, c, NCONN, 1, 5 * SEC, &out));
		ASSERT_LT(0, out.completed);
		for (i = 0; i < (int)out.completed; i++) {
			ASSERT_EQ(MEGAPIPE_OP_ACCEPT, c[i].opcode);
			ASSERT_EQ(0, c[i].result);
			ASSERT_FALSE(c[i].flags & MEGAPIPE_CQE_F_FD);
			h[got++] = c[i].new_handle;
		}
	}
}

/* Submit one request and wait for its (first) completion into *c. */
static void one(struct __test_metadata *_metadata, int ch,
		struct megapipe_req *r, struct megapipe_cqe *c)
{
	struct megapipe_submit out;

	ASSERT_EQ(0, mp_sub(ch, r, 1, c, 1, 1, 5 * SEC, &out));
	ASSERT_EQ(1, out.submitted);
	ASSERT_EQ(1, out.completed);
	ASSERT_EQ(r->opcode, c->opcode);
}

static void write_h(struct __test_metadata *_metadata, int ch, int h,
		    const char *s)
{
	struct megapipe_req r = {
		.opcode = MEGAPIPE_OP_WRITE, .handle = h,
		.addr = (uintptr_t)s, .len = strlen(s),
	};
	struct megapipe_cqe c;

	one(_metadata, ch, &r, &c);
	ASSERT_EQ((int)strlen(s), c.result);
}

static void read_h(struct __test_metadata *_metadata, int ch, int h,
		   const char *want)
{
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_READ, .handle = h };
	struct megapipe_cqe c;
	char buf[64] = { 0 };

	r.addr = (uintptr_t)buf;
	r.len = sizeof(buf) - 1;
	one(_metadata, ch, &r, &c);
	ASSERT_EQ((int)strlen(want), c.result);
	ASSERT_STREQ(want, buf);
}

TEST_F(lw, accepted_socket_has_no_fd)
{
	struct megapipe_req r[NCONN];
	struct megapipe_cqe c[NCONN];
	struct megapipe_submit out;
	int cl[NCONN], h[NCONN], fds, i, peer, done = 0;
	struct pollfd pfd[NCONN];
	unsigned long ino;
	unsigned int uid;
	char buf[8];

	for (i = 0; i < NCONN; i++) {
		cl[i] = lib_connect(AF_INET, LIB_PORT, false);
		ASSERT_LE(0, cl[i]);
	}
	fds = count_fds();
	accept_n(_metadata, self->ch, self->lh, h, NCONN);
	/* no fd for any of them ... */
	EXPECT_EQ(fds, count_fds());
	/* ... yet sockets: the listener, the clients and the accepted ones */
	EXPECT_EQ(self->used + 1 + 2 * NCONN, lib_sockets_used());
	for (i = 0; i < NCONN; i++) {
		ASSERT_EQ(0, tcp_row(LIB_PORT, lib_sock_port(cl[i]), &uid, &ino));
		EXPECT_NE(0, ino);
		EXPECT_EQ(getuid(), uid);
		EXPECT_FALSE(have_fd_of(ino));
	}
	/*
	 * h[0]'s peer: accepts need not come in connect order (a per-core
	 * listener takes its own CPU's clone first), so find who gets it.
	 */
	write_h(_metadata, self->ch, h[0], "ping");
	for (i = 0; i < NCONN; i++) {
		pfd[i].fd = cl[i];
		pfd[i].events = POLLIN;
	}
	ASSERT_EQ(1, poll(pfd, NCONN, LIB_DEADLINE_MS));
	for (peer = 0; peer < NCONN && !pfd[peer].revents; peer++)
		;
	ASSERT_LT(peer, NCONN);
	ASSERT_EQ(4, recv(cl[peer], buf, sizeof(buf), 0));
	ASSERT_EQ(4, send(cl[peer], "pong", 4, 0));
	read_h(_metadata, self->ch, h[0], "pong");

	/* disconnect all: the clients see EOF, the sockets go away */
	memset(r, 0, sizeof(r));
	for (i = 0; i < NCONN; i++) {
		r[i].opcode = MEGAPIPE_OP_DISCONNECT;
		r[i].handle = h[i];
	}
	ASSERT_EQ(0, mp_sub(self->ch, r, NCONN, NULL, 0, 0, 0, &out));
	ASSERT_EQ(NCONN, out.submitted);
	while (done < NCONN) {
		ASSERT_EQ(0, mp_sub(self->ch, NULL, 0, c, NCONN, 1, 5 * SEC, &out));
		ASSERT_LT(0, out.completed);
		for (i = 0; i < (int)out.completed; i++)
			EXPECT_EQ(0, c[i].result);
		done += out.completed;
	}
	for (i = 0; i < NCONN; i++) {
		EXPECT_EQ(0, recv(cl[i], buf, sizeof(buf), 0));
		close(cl[i]);
	}
	EXPECT_EQ(self->used + 1,
		  lib_wait_count(lib_sockets_used, self->used + 1, LIB_DEADLINE_MS));
}

TEST_F(lw, export_gives_a_working_fd)
{
	struct megapipe_export e = { 0 };
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_READ };
	struct megapipe_submit out;
	unsigned long ino;
	unsigned int uid;
	int cl, h, fds;
	char buf[8];
	struct stat st;

	cl = lib_connect(AF_INET, LIB_PORT, false);
	ASSERT_LE(0, cl);
	accept_n(_metadata, self->ch, self->lh, &h, 1);
	ASSERT_EQ(0, tcp_row(LIB_PORT, lib_sock_port(cl), &uid, &ino));
	fds = count_fds();
	e.handle = h;
	ASSERT_EQ(0, ioctl(self->ch, MEGAPIPE_IOC_EXPORT, &e));
	ASSERT_LE(0, e.fd);
	EXPECT_EQ(fds + 1, count_fds());
	/* the same socket, now behind an fd */
	ASSERT_EQ(0, fstat(e.fd, &st));
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(ino, st.st_ino);
	EXPECT_TRUE(have_fd_of(ino));
	EXPECT_EQ(LIB_PORT, lib_sock_port(e.fd));
	ASSERT_EQ(3, send(e.fd, "abc", 3, 0));
	ASSERT_EQ(3, recv(cl, buf, sizeof(buf), 0));
	ASSERT_EQ(2, send(cl, "xy", 2, 0));
	ASSERT_EQ(2, recv(e.fd, buf, sizeof(buf), 0));
	/* and no longer a handle */
	r.handle = h;
	r.addr = (uintptr_t)buf;
	r.len = sizeof(buf);
	EXPECT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	EXPECT_EQ(0, out.submitted);
	EXPECT_EQ(-EBADF, out.error);
	EXPECT_EQ(-1, ioctl(self->ch, MEGAPIPE_IOC_EXPORT, &e));
	EXPECT_EQ(EBADF, errno);
	close(e.fd);
	EXPECT_EQ(0, recv(cl, buf, sizeof(buf), 0));
	close(cl);
}

static void connect_req(struct megapipe_req *r, struct sockaddr_storage *ss,
			int port, uint64_t cookie)
{
	memset(r, 0, sizeof(*r));
	r->opcode = MEGAPIPE_OP_CONNECT;
	r->handle = MEGAPIPE_NO_HANDLE;
	r->len = lib_lo_addr(AF_INET, port, ss);
	r->addr = (uintptr_t)ss;
	r->cookie = cookie;
}

TEST_F(lw, connect_completes_with_new_handle)
{
	struct sockaddr_storage ss;
	struct megapipe_req r;
	struct megapipe_cqe c;
	int l2, fds, a;
	char buf[8];

	l2 = lib_listener(AF_INET, LIB_PORT + 1, 16, 0);
	ASSERT_LE(0, l2);
	fds = count_fds();
	connect_req(&r, &ss, LIB_PORT + 1, 99);
	one(_metadata, self->ch, &r, &c);
	ASSERT_EQ(0, c.result);
	EXPECT_EQ(99, c.cookie);
	EXPECT_EQ(MEGAPIPE_NO_HANDLE, c.handle);
	ASSERT_NE(MEGAPIPE_NO_HANDLE, c.new_handle);
	EXPECT_EQ(fds, count_fds());
	a = accept(l2, NULL, NULL);
	ASSERT_LE(0, a);
	write_h(_metadata, self->ch, c.new_handle, "hello");
	ASSERT_EQ(5, recv(a, buf, sizeof(buf), 0));
	ASSERT_EQ(3, send(a, "hey", 3, 0));
	read_h(_metadata, self->ch, c.new_handle, "hey");
	/* the handle carries the CONNECT's cookie */
	r.opcode = MEGAPIPE_OP_READ;
	r.handle = c.new_handle;
	r.addr = (uintptr_t)buf;
	r.len = sizeof(buf);
	r.cookie = 0;
	close(a);
	one(_metadata, self->ch, &r, &c);
	EXPECT_EQ(0, c.result);		/* EOF */
	EXPECT_EQ(99, c.cookie);
	close(l2);
}

TEST_F(lw, connect_refused)
{
	struct sockaddr_storage ss;
	struct megapipe_req r;
	struct megapipe_cqe c;

	connect_req(&r, &ss, LIB_PORT + 2, 5);
	one(_metadata, self->ch, &r, &c);
	EXPECT_EQ(-ECONNREFUSED, c.result);
	EXPECT_EQ(MEGAPIPE_NO_HANDLE, c.new_handle);
	EXPECT_EQ(5, c.cookie);
	/* the listener only */
	EXPECT_EQ(self->used + 1,
		  lib_wait_count(lib_sockets_used, self->used + 1, LIB_DEADLINE_MS));
}

TEST_F(lw, connect_bad_arguments)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct megapipe_submit out;
	struct megapipe_req r;

	connect_req(&r, &ss, LIB_PORT, 0);
	r.addr = (uintptr_t)BAD_PTR;
	EXPECT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	EXPECT_EQ(-EFAULT, out.error);
	r.addr = 0;
	EXPECT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	EXPECT_EQ(-EFAULT, out.error);
	connect_req(&r, &ss, LIB_PORT, 0);
	r.len = 8;
	EXPECT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	connect_req(&r, &ss, LIB_PORT, 0);
	r.handle = self->lh;
	EXPECT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	connect_req(&r, &ss, LIB_PORT, 0);
	r.op_flags = 1;
	EXPECT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	EXPECT_EQ(-EINVAL, out.error);
	connect_req(&r, &ss, LIB_PORT, 0);
	r.addr = (uintptr_t)&un;
	r.len = sizeof(struct sockaddr_in);
	EXPECT_EQ(0, mp_sub(self->ch, &r, 1, NULL, 0, 0, 0, &out));
	EXPECT_EQ(-EAFNOSUPPORT, out.error);
	/* nothing was created */
	EXPECT_EQ(self->used + 1, lib_sockets_used());
}

/*
 * A CONNECT that stays pending: 10.77.0.2 is reached through a veth whose
 * peer takes the frames (a permanent neighbour entry, no ARP) and drops
 * them, so the SYN is never answered.
 */
static int blackhole(void)
{
	return system("ip link add mpv0 type veth peer name mpv1 && "
		      "ip addr add 10.77.0.1/24 dev mpv0 && "
		      "ip link set mpv0 up && ip link set mpv1 up && "
		      "ip neigh replace 10.77.0.2 lladdr 02:00:00:00:77:02 "
		      "nud permanent dev mpv0");
}

static void pending_connect(struct __test_metadata *_metadata, int ch,
			    struct sockaddr_in *sin, uint64_t cookie)
{
	struct megapipe_req r = {
		.opcode = MEGAPIPE_OP_CONNECT, .handle = MEGAPIPE_NO_HANDLE,
		.addr = (uintptr_t)sin, .len = sizeof(*sin), .cookie = cookie,
	};
	struct megapipe_submit out;
	struct megapipe_cqe c;

	ASSERT_EQ(0, mp_sub(ch, &r, 1, &c, 1, 0, 0, &out));
	ASSERT_EQ(1, out.submitted);
	ASSERT_EQ(0, out.completed);
}

TEST_F(lw, pending_connect_cancelled_and_released)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(80),
		.sin_addr.s_addr = htonl(0x0a4d0002),
	};
	struct megapipe_req r = {
		.opcode = MEGAPIPE_OP_CANCEL, .handle = MEGAPIPE_NO_HANDLE,
		.op_flags = MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_READ),
	};
	struct megapipe_cqe c[4];
	struct megapipe_submit out;
	int ch2;

	if (blackhole())
		SKIP(return, "no veth (ip link add ... type veth)");
	/* ip's netlink sockets are freed after an RCU grace period */
	EXPECT_EQ(self->used + 1,
		  lib_wait_count(lib_sockets_used, self->used + 1, LIB_DEADLINE_MS));
	pending_connect(_metadata, self->ch, &sin, 41);
	pending_connect(_metadata, self->ch, &sin, 42);
	EXPECT_EQ(self->used + 3, lib_sockets_used());
	/* a mask without CONNECT leaves them */
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 1, SEC, &out));
	ASSERT_EQ(1, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_CANCEL, c[0].opcode);
	EXPECT_EQ(0, c[0].result);
	/* all of them: both CONNECTs complete, cancelled, before the CANCEL */
	r.op_flags = 0;
	ASSERT_EQ(0, mp_sub(self->ch, &r, 1, c, 4, 3, SEC, &out));
	ASSERT_EQ(3, out.completed);
	EXPECT_EQ(MEGAPIPE_OP_CONNECT, c[0].opcode);
	EXPECT_EQ(-ECANCELED, c[0].result);
	EXPECT_EQ(MEGAPIPE_NO_HANDLE, c[0].new_handle);
	EXPECT_EQ(MEGAPIPE_OP_CONNECT, c[1].opcode);
	EXPECT_EQ(-ECANCELED, c[1].result);
	EXPECT_EQ(41 + 42, c[0].cookie + c[1].cookie);
	EXPECT_EQ(MEGAPIPE_OP_CANCEL, c[2].opcode);
	EXPECT_EQ(2, c[2].result);
	EXPECT_EQ(self->used + 1,
		  lib_wait_count(lib_sockets_used, self->used + 1, LIB_DEADLINE_MS));

	/* a channel closed with CONNECTs pending releases their sockets */
	ch2 = mp_open(64);
	ASSERT_LE(0, ch2);
	pending_connect(_metadata, ch2, &sin, 1);
	pending_connect(_metadata, ch2, &sin, 2);
	EXPECT_EQ(self->used + 3, lib_sockets_used());
	close(ch2);
	EXPECT_EQ(self->used + 1,
		  lib_wait_count(lib_sockets_used, self->used + 1, LIB_DEADLINE_MS));
	EXPECT_EQ(self->inuse + 1, wait_inuse(self->inuse + 1, LIB_DEADLINE_MS));
}

TEST_HARNESS_MAIN
