// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_security: /dev/megapipe keeps the rules every other socket
 * obeys.  Who may open the device (kernel.megapipe_disabled and
 * kernel.megapipe_group, each value); RLIMIT_NOFILE bounds the handles
 * of a channel (lightweight sockets, registered sockets whose fd was
 * closed); a uid-based firewall rule (nft meta skuid, iptables -m owner)
 * refuses a CONNECT of the channel's owner as it refuses connect(2); every
 * request runs as its submitter, whichever thread runs it, and a thread
 * with another fd table is refused; the channel's fdinfo names the inode
 * of every socket it holds.  Each test runs in a netns of its own, on
 * loopback.
 */
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"

#define DISABLED	"/proc/sys/kernel/megapipe_disabled"
#define GROUP		"/proc/sys/kernel/megapipe_group"
#define NOBODY		65534

static int audit_req(int nl, int type, const void *data, size_t len);
static int audit_rule(int nl, int type);

FIXTURE(sec) {
	long disabled, group;	/* the sysctls before the test */
	int l;			/* listener on LIB_PORT */
	long base;		/* TCP inuse before the test */
	/* connect_writes_an_audit_record: what the teardown undoes */
	int audit_nl;
	bool audit_set, audit_rule;
	struct audit_status audit_old;
};

FIXTURE_SETUP(sec)
{
	self->audit_nl = -1;
	self->audit_set = self->audit_rule = false;
	self->l = -1;
	self->disabled = self->group = -2;
	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE " (CONFIG_MEGAPIPE)");
	ASSERT_EQ(0, access(GROUP, F_OK));
	self->disabled = lib_sysctl_read(DISABLED);
	self->group = lib_sysctl_read(GROUP);
	ASSERT_LE(0, self->disabled);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_raise_nofile(4096));
	self->base = lib_tcp_inuse();
	self->l = lib_listener(AF_INET, LIB_PORT, 1024, 0);
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN(sec)
{
	if (self->disabled >= 0)
		lib_sysctl_write(DISABLED, self->disabled);
	if (self->group != -2)
		lib_sysctl_write(GROUP, self->group);
	if (self->l >= 0)
		close(self->l);
	/* the audit test's rule and daemon, also when it failed midway */
	if (self->audit_rule)
		audit_rule(self->audit_nl, AUDIT_DEL_RULE);
	if (self->audit_set) {
		struct audit_status st = {
			.mask = AUDIT_STATUS_ENABLED | AUDIT_STATUS_PID,
			.enabled = self->audit_old.enabled,
		};

		audit_req(self->audit_nl, AUDIT_SET, &st, sizeof(st));
	}
	if (self->audit_nl >= 0)
		close(self->audit_nl);
}

/* Become nobody (groups: none; gid: @gid). */
static int drop_to_nobody(gid_t gid)
{
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	return 0;
}

/* In a child as nobody with group @gid: open()'s errno, 0 if it worked. */
static int open_as_nobody(gid_t gid)
{
	int st, fd;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		if (drop_to_nobody(gid))
			_exit(200);
		fd = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);
		_exit(fd >= 0 ? 0 : errno);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static int open_here(void)
{
	int fd = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* Each value of kernel.megapipe_disabled, with and without the group. */
TEST_F(sec, open_gate_each_value)
{
	ASSERT_EQ(0, lib_sysctl_write(DISABLED, 0));
	EXPECT_EQ(0, open_as_nobody(NOBODY));
	EXPECT_EQ(0, open_here());

	ASSERT_EQ(0, lib_sysctl_write(DISABLED, 1));
	ASSERT_EQ(0, lib_sysctl_write(GROUP, -1));
	EXPECT_EQ(EPERM, open_as_nobody(NOBODY));
	EXPECT_EQ(0, open_here());	/* CAP_SYS_ADMIN */
	ASSERT_EQ(0, lib_sysctl_write(GROUP, NOBODY));
	EXPECT_EQ(0, open_as_nobody(NOBODY));
	EXPECT_EQ(EPERM, open_as_nobody(NOBODY - 1));

	ASSERT_EQ(0, lib_sysctl_write(DISABLED, 2));
	EXPECT_EQ(EPERM, open_as_nobody(NOBODY));
	EXPECT_EQ(EPERM, open_here());

	/* out of range: refused, the value stays */
	EXPECT_NE(0, lib_sysctl_write(DISABLED, 3));
	EXPECT_EQ(2, lib_sysctl_read(DISABLED));
}

/*
 * A sandbox that denies socket(AF_INET) (systemd's
 * RestrictAddressFamilies=) around an unprivileged service: with the
 * default gate the service cannot open the device either, so cannot make
 * TCP sockets through CONNECT.
 */
TEST_F(sec, restricted_families_sandbox_cannot_open)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 1, 0),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO | EAFNOSUPPORT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(f), .filter = f };
	int st, fd;
	pid_t pid;

	ASSERT_EQ(0, lib_sysctl_write(DISABLED, 1));
	ASSERT_EQ(0, lib_sysctl_write(GROUP, -1));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (drop_to_nobody(NOBODY) ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(200);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0 || errno != EAFNOSUPPORT)
			_exit(201);
		fd = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);
		_exit(fd >= 0 ? 0 : errno);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(EPERM, WEXITSTATUS(st));
}

/* CONNECT to 127.0.0.1:@port: the completion's result, or -1000 - errno. */
static int mp_connect_result(int ch, uint16_t port, uint32_t *handle)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct megapipe_req r = {
		.opcode = MEGAPIPE_OP_CONNECT, .handle = MEGAPIPE_NO_HANDLE,
		.addr = (uintptr_t)&sin, .len = sizeof(sin),
	};
	struct megapipe_submit out;
	struct megapipe_cqe c;

	if (mp_sub(ch, &r, 1, &c, 1, 1, 3000000000LL, &out))
		return -1000 - errno;
	if (out.error)
		return -1000 + out.error;
	if (out.completed != 1)
		return -2000;
	if (handle)
		*handle = c.new_handle;
	return c.result;
}

/*
 * RLIMIT_NOFILE 32: at most 32 handles per channel, whether lightweight
 * sockets of CONNECT or registered sockets whose fd was closed; TCP inuse
 * stays bounded.  Runs in a child, whose limit it is.
 */
TEST_F(sec, rlimit_nofile_bounds_handles)
{
	int st;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct rlimit rl = { 32, 32 };
		int ch, i, ok = 0, emfile = 0, fd, ret;
		long inuse;

		ch = mp_open(1024);
		if (ch < 0 || setrlimit(RLIMIT_NOFILE, &rl))
			_exit(200);
		for (i = 0; i < 200; i++) {
			ret = mp_connect_result(ch, LIB_PORT, NULL);
			if (!ret)
				ok++;
			else if (ret == -1000 - EMFILE || ret == -EMFILE)
				emfile++;
			else
				_exit(201);
		}
		if (ok > 32 || !emfile)
			_exit(202);
		inuse = lib_tcp_inuse();
		/* each CONNECT's socket and its accepted peer, and slack */
		if (inuse > 2 * 32 + 8 + 2)
			_exit(203);
		close(ch);
		/* registered, then the fd closed: the channel holds them */
		ch = mp_open(1024);
		if (ch < 0)
			_exit(204);
		ok = emfile = 0;
		for (i = 0; i < 200; i++) {
			fd = lib_connect(AF_INET, LIB_PORT, false);
			if (fd < 0)
				_exit(205);
			if (mp_reg(ch, fd, 0) >= 0)
				ok++;
			else if (errno == EMFILE)
				emfile++;
			else
				_exit(206);
			close(fd);
		}
		if (ok > 32 || !emfile)
			_exit(207);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	/* all of them go with the channels, their peers with the listener */
	close(self->l);
	self->l = -1;
	EXPECT_EQ(self->base, wait_inuse(self->base, 5000));
}

/*
 * A rule rejecting uid nobody's connections to a port: connect(2) of a
 * socket(2) socket and a channel's CONNECT, both as nobody, are refused
 * alike; root's CONNECT is not.  @cmd installs the rule for @port.
 */
static void owner_rule_applies(struct __test_metadata *_metadata,
			       const char *cmd, uint16_t port)
{
	int st, l, ch, ret;
	pid_t pid;

	l = lib_listener(AF_INET, port, 16, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, lib_sysctl_write(DISABLED, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd, as_socket;

		if (drop_to_nobody(NOBODY))
			_exit(200);
		fd = lib_connect(AF_INET, port, false);
		as_socket = fd >= 0 ? 0 : errno;
		if (as_socket != ECONNREFUSED)
			_exit(201);
		ch = mp_open(16);
		if (ch < 0)
			_exit(202);
		ret = mp_connect_result(ch, port, NULL);
		_exit(ret == -ECONNREFUSED ? 0 : 100 + (ret < 0 ? -ret % 100 : 99));
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st)) {
		TH_LOG("rule: %s", cmd);
	}
	/* the rule is nobody's: root's CONNECT goes through */
	ch = mp_open(16);
	ASSERT_LE(0, ch);
	EXPECT_EQ(0, mp_connect_result(ch, port, NULL));
	close(ch);
	close(l);
}

static bool have(const char *path)
{
	return !access(path, X_OK);
}

TEST_F(sec, nft_meta_skuid_applies)
{
	char cmd[512];

	if (!have("/usr/sbin/nft"))
		SKIP(return, "no nft (make deps installs nftables)");
	snprintf(cmd, sizeof(cmd),
		 "/usr/sbin/nft 'add table inet mp; "
		 "add chain inet mp out { type filter hook output priority 0; }; "
		 "add rule inet mp out meta skuid %d tcp dport %d reject with tcp reset'",
		 NOBODY, LIB_PORT + 1);
	if (system(cmd))
		SKIP(return, "nft failed (CONFIG_NF_TABLES?)");
	owner_rule_applies(_metadata, cmd, LIB_PORT + 1);
}

TEST_F(sec, iptables_owner_match_applies)
{
	char cmd[512];

	if (!have("/usr/sbin/iptables-legacy"))
		SKIP(return, "no iptables-legacy (make deps installs iptables)");
	snprintf(cmd, sizeof(cmd),
		 "/usr/sbin/iptables-legacy -A OUTPUT -p tcp --dport %d "
		 "-m owner --uid-owner %d -j REJECT --reject-with tcp-reset",
		 LIB_PORT + 2, NOBODY);
	if (system(cmd))
		SKIP(return, "iptables failed (CONFIG_NETFILTER_XT_MATCH_OWNER?)");
	owner_rule_applies(_metadata, cmd, LIB_PORT + 2);
}

/* The uid column of /proc/net/tcp for socket inode @ino, or -1. */
static long tcp_uid_of_inode(unsigned long ino)
{
	unsigned long i;
	char line[512];
	long uid, ret = -1;
	FILE *f = fopen("/proc/net/tcp", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*d: %*x:%*x %*x:%*x %*x %*x:%*x %*x:%*x %*x %ld %*d %lu",
			   &uid, &i) == 2 && i == ino) {
			ret = uid;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* The socket inodes the channel's fdinfo lists, up to @max. */
static int fdinfo_inodes(int ch, unsigned long *ino, int max)
{
	char path[64], line[256];
	unsigned int h;
	unsigned long i;
	char kind[32];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ch);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "handle: %x ino: %lu %31s", &h, &i, kind) == 3 &&
		    n < max)
			ino[n++] = i;
	fclose(f);
	return n;
}

struct other_thread {
	int ch;
	int lh;			/* a listener handle: submit an ACCEPT */
	int unshare;		/* unshare(CLONE_FILES) first */
	int ret, err;		/* of its SUBMIT */
	uint32_t handle;	/* of its CONNECT */
};

static void *submit_thread(void *arg)
{
	struct other_thread *t = arg;
	struct megapipe_req r = { .opcode = MEGAPIPE_OP_ACCEPT, .len = 1 };
	struct megapipe_submit out;
	struct megapipe_cqe c;

	if (t->unshare) {
		if (unshare(CLONE_FILES)) {
			t->ret = -2;
			return NULL;
		}
		t->ret = mp_sub(t->ch, NULL, 0, NULL, 0, 0, 0, &out);
		t->err = errno;
		return NULL;
	}
	/* this thread only: the raw syscall changes one thread's creds */
	if (syscall(SYS_setresuid, NOBODY, NOBODY, NOBODY)) {
		t->ret = -3;
		return NULL;
	}
	if (t->lh >= 0) {
		/* queued, no connection yet: the main thread's SUBMIT runs it */
		r.handle = t->lh;
		t->ret = mp_sub(t->ch, &r, 1, &c, 1, 0, 0, &out);
		if (!t->ret && (out.submitted != 1 || out.completed))
			t->ret = -4;
		return NULL;
	}
	t->ret = mp_connect_result(t->ch, LIB_PORT, &t->handle);
	return NULL;
}

/*
 * Whose identity: a thread that unshared its fd table is refused (EPERM);
 * a thread that changed its uid to nobody submits a CONNECT, and an
 * ACCEPT that root's SUBMIT runs later: both sockets are nobody's, as
 * socket(2) and accept(2) in that thread would make them (the uid column
 * of /proc/net/tcp, found through the channel's fdinfo).
 */
TEST_F(sec, requests_run_as_their_submitter)
{
	struct other_thread t = { .lh = -1 };
	struct megapipe_submit out;
	struct megapipe_cqe c;
	unsigned long ino[4];
	pthread_t th;
	int cl, l2;

	t.ch = mp_open(16);
	ASSERT_LE(0, t.ch);
	t.unshare = 1;
	ASSERT_EQ(0, pthread_create(&th, NULL, submit_thread, &t));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(-1, t.ret);
	EXPECT_EQ(EPERM, t.err);

	t.unshare = 0;
	ASSERT_EQ(0, pthread_create(&th, NULL, submit_thread, &t));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, t.ret);
	ASSERT_EQ(1, fdinfo_inodes(t.ch, ino, 4));
	EXPECT_EQ(NOBODY, tcp_uid_of_inode(ino[0]));
	close(t.ch);

	/* an ACCEPT of nobody's, run by root's SUBMIT, on a fresh listener */
	l2 = lib_listener(AF_INET, LIB_PORT + 5, 16, 0);
	ASSERT_LE(0, l2);
	t.ch = mp_open(16);
	ASSERT_LE(0, t.ch);
	t.lh = mp_reg(t.ch, l2, 0);
	ASSERT_LE(0, t.lh);
	ASSERT_EQ(0, pthread_create(&th, NULL, submit_thread, &t));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, t.ret);
	cl = lib_connect(AF_INET, LIB_PORT + 5, false);
	ASSERT_LE(0, cl);
	ASSERT_EQ(0, mp_sub(t.ch, NULL, 0, &c, 1, 1, 3000000000LL, &out));
	ASSERT_EQ(1, out.completed);
	ASSERT_EQ(0, c.result);
	/* the listener (root's fd) and the accepted socket (nobody's) */
	ASSERT_EQ(2, fdinfo_inodes(t.ch, ino, 4));
	EXPECT_EQ(0, tcp_uid_of_inode(ino[0]));
	EXPECT_EQ(NOBODY, tcp_uid_of_inode(ino[1]));
	close(t.ch);
	close(cl);
	close(l2);
}

/* A lightweight socket has no fd, but the channel's fdinfo names it. */
TEST_F(sec, fdinfo_names_lightweight_sockets)
{
	unsigned long ino[4];
	uint32_t h;
	int ch;

	ch = mp_open(16);
	ASSERT_LE(0, ch);
	ASSERT_EQ(0, mp_connect_result(ch, LIB_PORT, &h));
	ASSERT_EQ(1, fdinfo_inodes(ch, ino, 4));
	EXPECT_EQ(0, tcp_uid_of_inode(ino[0]));
	close(ch);
}

/* One audit netlink request; 0, or the kernel's -errno. */
static int audit_req(int nl, int type, const void *data, size_t len)
{
	struct {
		struct nlmsghdr h;
		char data[2048];
	} m = { 0 };
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	char buf[8192];
	struct nlmsghdr *h = (void *)buf;
	ssize_t r;

	m.h.nlmsg_len = NLMSG_LENGTH(len);
	m.h.nlmsg_type = type;
	m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	m.h.nlmsg_seq = type;
	memcpy(m.data, data, len);
	if (sendto(nl, &m, m.h.nlmsg_len, 0, (void *)&to, sizeof(to)) < 0)
		return -errno;
	/* the ack (records may come first once we are the daemon) */
	for (;;) {
		r = recv(nl, buf, sizeof(buf), 0);
		if (r < 0)
			return -errno;
		if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == (unsigned int)type)
			return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
}

/* AUDIT_GET: the status (its answer comes before any ack). */
static int audit_get(int nl, struct audit_status *st)
{
	struct nlmsghdr q = {
		.nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = AUDIT_GET,
		.nlmsg_flags = NLM_F_REQUEST,
	};
	char buf[1024];
	struct nlmsghdr *h = (void *)buf;

	if (send(nl, &q, q.nlmsg_len, 0) < 0 || recv(nl, buf, sizeof(buf), 0) <= 0)
		return -1;
	if (h->nlmsg_type != AUDIT_GET)
		return -1;
	memcpy(st, NLMSG_DATA(h), sizeof(*st));
	return 0;
}

/* An exit rule: every ioctl(2) and connect(2) of x86-64 code. */
static int audit_rule(int nl, int type)
{
	struct {
		struct audit_rule_data d;
		char buf[0];
	} r = { 0 };

	r.d.flags = AUDIT_FILTER_EXIT;
	r.d.action = AUDIT_ALWAYS;
	r.d.mask[AUDIT_WORD(__NR_ioctl)] |= AUDIT_BIT(__NR_ioctl);
	r.d.mask[AUDIT_WORD(__NR_connect)] |= AUDIT_BIT(__NR_connect);
	r.d.field_count = 1;
	r.d.fields[0] = AUDIT_ARCH;
	r.d.fieldflags[0] = AUDIT_EQUAL;
	r.d.values[0] = AUDIT_ARCH_X86_64;
	return audit_req(nl, type, &r.d, sizeof(r.d));
}

/* The records of one event: its SYSCALL and SOCKADDR lines. */
struct audit_event {
	char id[48];		/* "audit(T:S)" */
	char syscall[1024];
	char sockaddr[256];
};

/*
 * Read records for up to @ms and find the event of syscall @nr by @pid with
 * a SOCKADDR record; 0 if found (in @ev), -1 if not.
 */
static int audit_find(int nl, pid_t pid, int nr, struct audit_event *ev, int ms)
{
	struct audit_event evs[64] = { 0 };
	int nev = 0, i;
	char want_pid[32], want_nr[32], buf[8192];
	struct nlmsghdr *h = (void *)buf;
	struct timeval tv = { .tv_usec = 100000 };
	uint64_t end = lib_now_ms() + ms;

	snprintf(want_pid, sizeof(want_pid), " pid=%d ", pid);
	snprintf(want_nr, sizeof(want_nr), " syscall=%d ", nr);
	setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (lib_now_ms() < end) {
		ssize_t r = recv(nl, buf, sizeof(buf) - 1, 0);
		char *text, *e;
		size_t idlen;

		if (r <= 0)
			continue;
		buf[r] = 0;
		if (h->nlmsg_type != AUDIT_SYSCALL && h->nlmsg_type != AUDIT_SOCKADDR)
			continue;
		text = NLMSG_DATA(h);
		e = strchr(text, ' ');
		if (!e || e - text >= (long)sizeof(evs[0].id))
			continue;
		idlen = e - text;
		for (i = 0; i < nev && strncmp(evs[i].id, text, idlen); i++)
			;
		if (i == nev) {
			if (nev == 64)
				continue;
			memcpy(evs[nev].id, text, idlen);
			nev++;
		}
		/* a trailing blank, so that " pid=N " matches at the end too */
		if (h->nlmsg_type == AUDIT_SYSCALL)
			snprintf(evs[i].syscall, sizeof(evs[i].syscall), "%.1000s ", text);
		else
			snprintf(evs[i].sockaddr, sizeof(evs[i].sockaddr), "%.250s", text);
		if (evs[i].sockaddr[0] && strstr(evs[i].syscall, want_pid) &&
		    strstr(evs[i].syscall, want_nr)) {
			*ev = evs[i];
			return 0;
		}
	}
	return -1;
}

/*
 * A CONNECT writes connect(2)'s audit record: with an exit rule on ioctl
 * and connect, the SUBMIT ioctl's event carries a SOCKADDR record naming
 * the address, as connect(2)'s does (checked first, in the same child:
 * the harness can see records).  The test becomes the audit daemon for
 * its duration (there is none in the test VM) and restores the state.
 */
TEST_F(sec, connect_writes_an_audit_record)
{
	struct audit_status st = { 0 };
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(LIB_PORT),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct audit_event ev;
	char want[64];
	int nl, go[2], status, found, rc;
	pid_t pid;

	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (nl < 0)
		SKIP(return, "no audit netlink (CONFIG_AUDIT)");
	self->audit_nl = nl;
	ASSERT_EQ(0, bind(nl, (void *)&me, sizeof(me)));
	ASSERT_EQ(0, audit_get(nl, &self->audit_old));
	if (self->audit_old.pid)
		SKIP(return, "an audit daemon runs (pid %u)", self->audit_old.pid);
	/* the teardown restores both, whatever fails below */
	st.mask = AUDIT_STATUS_ENABLED | AUDIT_STATUS_PID;
	st.enabled = 1;
	st.pid = getpid();
	ASSERT_EQ(0, audit_req(nl, AUDIT_SET, &st, sizeof(st)));
	self->audit_set = true;
	rc = audit_rule(nl, AUDIT_ADD_RULE);
	if (rc == -EEXIST) {	/* left by a run killed midway */
		audit_rule(nl, AUDIT_DEL_RULE);
		rc = audit_rule(nl, AUDIT_ADD_RULE);
	}
	ASSERT_EQ(0, rc);
	self->audit_rule = true;

	/* forked after audit is on: the child has an audit context */
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int s, ch;
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || connect(s, (void *)&sin, sizeof(sin)))
			_exit(2);
		close(s);
		ch = mp_open(16);
		if (ch < 0)
			_exit(3);
		_exit(mp_connect_result(ch, LIB_PORT, NULL) ? 4 : 0);
	}
	close(go[0]);
	EXPECT_EQ(1, write(go[1], "g", 1));
	close(go[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the child's connect(2) or CONNECT failed (%d)", status);

	/* saddr= the sockaddr_in in hex: family, port, address */
	snprintf(want, sizeof(want), "saddr=0200%02X%02X7F000001",
		 LIB_PORT >> 8, LIB_PORT & 0xff);
	found = audit_find(nl, pid, __NR_connect, &ev, 3000);
	EXPECT_EQ(0, found)
		TH_LOG("no SOCKADDR record for connect(2): the harness sees no records");
	if (!found)
		EXPECT_NE(NULL, strstr(ev.sockaddr, want)) TH_LOG("%s", ev.sockaddr);
	found = audit_find(nl, pid, __NR_ioctl, &ev, 3000);
	EXPECT_EQ(0, found)
		TH_LOG("no SOCKADDR record in the event of the CONNECT's SUBMIT ioctl");
	if (!found) {
		EXPECT_NE(NULL, strstr(ev.sockaddr, want)) TH_LOG("%s", ev.sockaddr);
		printf("# %.120s...\n# %s\n", ev.syscall, ev.sockaddr);
	}
	/*
	 * The teardown deletes the rule and restores the daemon and enabled
	 * state.  Tasks forked from now on still get an audit context
	 * (audit_ever_enabled stays set until reboot): later tests in this
	 * boot take the audited syscall path, with no rule to match.
	 */
}

TEST_HARNESS_MAIN
