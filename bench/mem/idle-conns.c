// SPDX-License-Identifier: GPL-2.0
/*
 * idle-conns: kernel memory a server spends per idle established
 * connection, regular socket in an epoll set against a /dev/megapipe
 * lightweight socket (issue 8, "kernel memory per idle connection").
 *
 *   idle-conns epoll|megapipe|megapipe-ms N [PORT]
 *
 * The server runs in a memory cgroup of its own (the clients in another),
 * so that its cgroup's memory.stat counts exactly what the server's side
 * of N connections costs: the accepted socket is charged to its owner at
 * accept (inet_csk_accept(): kmem_cache_charge), the sockfs inode, file,
 * dentry, epoll item, fd table, channel handles and requests to whoever
 * allocates them.  Each connection waits the way an idle server waits: in
 * an epoll set for EPOLLIN (epoll), with a one-byte READ pending
 * (megapipe), or with a multishot READ armed on a buffer ring
 * (megapipe-ms: how the examples' servers wait).
 * Prints one line: bytes per connection of memory.stat's slab and kernel
 * (slab plus vmalloc, large kmalloc pages, ...), and the raw deltas.
 * Run as root on a kernel with CONFIG_MEMCG (cgroup2 is mounted if needed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/megapipe.h>

#define CG	"/sys/fs/cgroup"

static void die(const char *what)
{
	fprintf(stderr, "idle-conns: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, s, strlen(s)) < 0)
		die(path);
	close(fd);
}

static void join(const char *cg)
{
	char path[128], pid[32];

	snprintf(path, sizeof(path), CG "/%s", cg);
	if (mkdir(path, 0755) && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), CG "/%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	put(path, pid);
}

/* A field of our cgroup's memory.stat, in bytes. */
static long long stat_of(const char *field)
{
	char line[256], name[64];
	long long v, got = -1;
	FILE *f = fopen(CG "/mp-server/memory.stat", "re");

	if (!f)
		die("memory.stat");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", name, &v) == 2 && !strcmp(name, field))
			got = v;
	fclose(f);
	return got;
}

static int mp_sub(int ch, struct megapipe_req *r, unsigned int n,
		  struct megapipe_cqe *c, unsigned int max, unsigned int min)
{
	struct megapipe_submit s = {
		.reqs = (uintptr_t)r, .nr_reqs = n,
		.cqes = (uintptr_t)c, .max_cqes = max,
		.min_complete = min, .timeout_ns = 10000000000LL,
	};

	if (ioctl(ch, MEGAPIPE_IOC_SUBMIT, &s) || s.submitted != n)
		die("MEGAPIPE_IOC_SUBMIT");
	return s.completed;
}

#define BATCH	256
#define NCACHE	256

/* /proc/slabinfo: name, active objects, object size. */
struct slab_row {
	char name[64];
	long objs, size;
};

static int slab_read(struct slab_row *rows)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/slabinfo", "re");

	if (!f)
		return 0;
	while (n < NCACHE && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld %*d %ld", rows[n].name, &rows[n].objs,
			   &rows[n].size) == 3 && rows[n].name[0] != '#')
			n++;
	fclose(f);
	return n;
}

/*
 * The caches whose objects changed by at least N/4 between @a and @b (the
 * whole machine: the clients' sockets are in it too), in bytes per
 * connection: where the difference between the designs comes from.
 */
static void slab_diff(struct slab_row *a, int na, struct slab_row *b, int nb,
		      int n)
{
	int i, j;

	printf("slabinfo (whole machine, bytes/conn):");
	for (j = 0; j < nb; j++) {
		long before = 0;

		for (i = 0; i < na; i++)
			if (!strcmp(a[i].name, b[j].name))
				before = a[i].objs;
		if (labs(b[j].objs - before) >= n / 4)
			printf(" %s=%.0f", b[j].name,
			       (double)(b[j].objs - before) * b[j].size / n);
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	static struct megapipe_cqe c[BATCH];
	static struct megapipe_req r[BATCH];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	long long slab0, kern0, slab1, kern1;
	int n, port, l, i, got = 0, p[2], ch = -1, ep = -1;
	static struct megapipe_buf bring[16];
	static char bmem[16][64];
	static __u32 btail;
	bool mp, ms;
	static struct slab_row s0[NCACHE], s1[NCACHE];
	int ns0 = 0, ns1;
	struct rlimit rl;
	char x, *buf;
	pid_t pid;

	if (argc < 3 || (strcmp(argv[1], "epoll") && strcmp(argv[1], "megapipe") &&
			 strcmp(argv[1], "megapipe-ms"))) {
		fprintf(stderr, "usage: idle-conns epoll|megapipe|megapipe-ms N [PORT]\n");
		return 2;
	}
	mp = strcmp(argv[1], "epoll");
	ms = !strcmp(argv[1], "megapipe-ms");
	n = atoi(argv[2]);
	port = argc > 3 ? atoi(argv[3]) : 7000;
	if (n <= 0 || n > 30000)
		return 2;
	rl.rlim_cur = rl.rlim_max = 2 * n + 64;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("RLIMIT_NOFILE");
	if (access(CG "/cgroup.subtree_control", F_OK) &&
	    mount("cgroup2", CG, "cgroup2", 0, NULL))
		die("mount cgroup2");
	put(CG "/cgroup.subtree_control", "+memory");
	put("/proc/sys/net/core/somaxconn", "65535");

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) ||
	    bind(l, (void *)&sin, sizeof(sin)) || listen(l, n))
		die("listener");
	if (pipe(p))
		die("pipe");
	ns0 = slab_read(s0);	/* before any connection */
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		join("mp-client");
		for (i = 0; i < n; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);

			if (fd < 0 || connect(fd, (void *)&sin, sizeof(sin)))
				die("client connect");
		}
		if (write(p[1], "c", 1) != 1)
			die("pipe");
		pause();
		_exit(0);
	}
	join("mp-server");
	buf = malloc(n);	/* one byte each: what a pending READ reads into */
	if (read(p[0], &x, 1) != 1)
		die("clients");
	/*
	 * Every connection is in the accept queue, none is the server's yet;
	 * the channel (its completion queue: one entry per pending READ) and
	 * the epoll set are counted in.
	 */
	slab0 = stat_of("slab");
	kern0 = stat_of("kernel");
	if (mp) {
		struct megapipe_setup s = { .cq_entries = n + 2 * BATCH };
		struct megapipe_register reg = { .fd = l };

		ch = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);
		if (ch < 0 || ioctl(ch, MEGAPIPE_IOC_SETUP, &s) ||
		    ioctl(ch, MEGAPIPE_IOC_REGISTER, &reg))
			die(MEGAPIPE_DEVICE);
		if (ms) {
			struct megapipe_buffers b = {
				.ring = (uintptr_t)bring, .tail = (uintptr_t)&btail,
				.entries = 16,
			};

			for (i = 0; i < 16; i++) {
				bring[i].addr = (uintptr_t)bmem[i];
				bring[i].len = sizeof(bmem[i]);
				bring[i].bid = i;
			}
			btail = 16;
			if (ioctl(ch, MEGAPIPE_IOC_BUFFERS, &b))
				die("MEGAPIPE_IOC_BUFFERS");
		}
		r[0].opcode = MEGAPIPE_OP_ACCEPT;
		r[0].handle = reg.handle;
	} else {
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0)
			die("epoll_create1");
	}
	while (got < n) {
		if (!mp) {
			struct epoll_event ev = { .events = EPOLLIN };
			int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd < 0)
				die("accept4");
			ev.data.fd = fd;
			if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
				die("epoll_ctl");
			got++;
			continue;
		}
		/* accept a batch, then queue a READ on each */
		r[0].len = n - got < BATCH ? n - got : BATCH;
		int k = mp_sub(ch, r, 1, NULL, 0, 0), done = 0;

		while (done < (int)r[0].len) {
			struct megapipe_req rd[BATCH];

			k = mp_sub(ch, NULL, 0, c, BATCH, 1);
			memset(rd, 0, sizeof(rd));
			for (i = 0; i < k; i++) {
				if (c[i].opcode != MEGAPIPE_OP_ACCEPT || c[i].result) {
					errno = -c[i].result;
					die("ACCEPT");
				}
				rd[i].opcode = MEGAPIPE_OP_READ;
				rd[i].handle = c[i].new_handle;
				if (ms) {
					rd[i].op_flags = MEGAPIPE_READ_BUFFER |
							 MEGAPIPE_READ_MULTISHOT;
					continue;
				}
				rd[i].addr = (uintptr_t)&buf[got + done + i];
				rd[i].len = 1;
			}
			if (k)
				mp_sub(ch, rd, k, NULL, 0, 0);
			done += k;
		}
		got += done;
	}
	slab1 = stat_of("slab");
	kern1 = stat_of("kernel");
	ns1 = slab_read(s1);
	printf("mode=%s conns=%d slab_per_conn=%.1f kernel_per_conn=%.1f "
	       "slab_delta=%lld kernel_delta=%lld\n", argv[1], n,
	       (double)(slab1 - slab0) / n, (double)(kern1 - kern0) / n,
	       slab1 - slab0, kern1 - kern0);
	slab_diff(s0, ns0, s1, ns1, n);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}
