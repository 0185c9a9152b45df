// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_release: closing a channel that holds many sockets releases
 * every one of them and does not hold its CPU meanwhile.
 *
 * A channel CONNECTs MP_RELEASE_SOCKETS lightweight sockets (default 1024;
 * the channel's maximum is 65,536) to listeners nobody accepts from, then
 * is closed.  The test checks that every CONNECT completed, how long the
 * close took, and that TCP inuse returns to its start once the listeners
 * are closed too (nothing leaked).
 *
 * The release loop must reschedule: on a kernel booted with preempt=none
 * nothing else would let another task run on that CPU until the last
 * socket is gone.  MP_RELEASE_WATCHDOG=1 sets kernel.watchdog_thresh to 1
 * for the close (a soft lockup is reported after 2 s without a reschedule,
 * which fails the VM run), e.g. in the test VM:
 *
 *   tests/vm/vm-run -k build/kbuild-test/arch/x86/boot/bzImage -c 2 \
 *	-a preempt=none -- env MP_RELEASE_SOCKETS=4096 \
 *	MP_RELEASE_WATCHDOG=1 build/tests/net/megapipe_release
 *
 * (closing 4,096 sockets takes seconds in the emulated VM, so a release
 * loop that never reschedules is reported there).
 *
 * Not set by default: a starved vCPU of an emulated VM can look like a
 * soft lockup at so short a threshold.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"

#define PER_LISTENER	30000	/* ephemeral ports per destination */
#define MAX_LISTENERS	4
#define THRESH		"/proc/sys/kernel/watchdog_thresh"

static int write_str(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, v, strlen(v)) == (ssize_t)strlen(v);
	close(fd);
	return ok ? 0 : -1;
}

FIXTURE(rel) {
	int l[MAX_LISTENERS], nl;
	long base;
	long thresh;
};

FIXTURE_SETUP(rel)
{
	int i;

	self->nl = 0;
	self->thresh = -1;
	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE " (CONFIG_MEGAPIPE)");
	if (lib_netns_enter() < 0) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_raise_nofile(70000));
	/* the netns's own: a port range and accept queues for them all */
	ASSERT_EQ(0, write_str("/proc/sys/net/ipv4/ip_local_port_range", "1024 65000"));
	ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/core/somaxconn", 65535));
	self->base = lib_tcp_inuse();
	for (i = 0; i < MAX_LISTENERS; i++) {
		self->l[i] = lib_listener(AF_INET, LIB_PORT + i, 65535, 0);
		ASSERT_LE(0, self->l[i]);
		self->nl++;
	}
}

FIXTURE_TEARDOWN(rel)
{
	int i;

	if (self->thresh >= 0)
		lib_sysctl_write(THRESH, self->thresh);
	for (i = 0; i < self->nl; i++)
		close(self->l[i]);
}

TEST_F_TIMEOUT(rel, close_channel_with_many_sockets, 1800)
{
	const char *e = getenv("MP_RELEASE_SOCKETS");
	int n = e ? atoi(e) : 1024, done = 0, failed = 0, ch, i;
	bool watchdog = getenv("MP_RELEASE_WATCHDOG") &&
			atoi(getenv("MP_RELEASE_WATCHDOG"));
	struct sockaddr_in sin[MAX_LISTENERS];
	static struct megapipe_req r[256];
	static struct megapipe_cqe c[256];
	uint64_t t0, t1;
	int first_err = 0;

	ASSERT_LT(0, n);
	ASSERT_GE(65536, n) TH_LOG("a channel holds at most 65,536 handles");
	for (i = 0; i < MAX_LISTENERS; i++) {
		sin[i] = (struct sockaddr_in){
			.sin_family = AF_INET,
			.sin_port = htons(LIB_PORT + i),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		};
	}
	ch = mp_open(256);
	ASSERT_LE(0, ch);
	t0 = lib_now_ms();
	while (done + failed < n) {
		struct megapipe_submit out;
		int b = n - done - failed, k;

		if (b > 256)
			b = 256;
		for (k = 0; k < b; k++) {
			int li = (done + failed + k) / PER_LISTENER;

			r[k] = (struct megapipe_req){
				.opcode = MEGAPIPE_OP_CONNECT,
				.handle = MEGAPIPE_NO_HANDLE,
				.addr = (uintptr_t)&sin[li], .len = sizeof(sin[li]),
			};
		}
		ASSERT_EQ(0, mp_sub(ch, r, b, c, 256, b, 30000000000LL, &out));
		ASSERT_EQ(0, out.error) TH_LOG("CONNECT %d refused: %d", done + failed, out.error);
		ASSERT_EQ(b, out.submitted);
		ASSERT_EQ(b, out.completed) TH_LOG("%d of %d CONNECTs completed in 30 s",
						   out.completed, b);
		for (k = 0; k < b; k++) {
			if (c[k].result == 0) {
				done++;
			} else {
				failed++;
				if (!first_err)
					first_err = c[k].result;
			}
		}
	}
	t1 = lib_now_ms();
	printf("# %d CONNECTs in %llu ms, %d failed (first: %d)\n", n,
	       (unsigned long long)(t1 - t0), failed, first_err);
	EXPECT_EQ(0, failed);
	/* both ends of each, and the listeners */
	EXPECT_LE(self->base + 2 * done, lib_tcp_inuse());

	if (watchdog) {
		self->thresh = lib_sysctl_read(THRESH);
		ASSERT_LE(0, self->thresh);
		ASSERT_EQ(0, lib_sysctl_write(THRESH, 1));
	}
	t0 = lib_now_ms();
	close(ch);
	t1 = lib_now_ms();
	if (watchdog) {
		lib_sysctl_write(THRESH, self->thresh);
		self->thresh = -1;
	}
	printf("# the channel with %d sockets closed in %llu ms%s\n", done,
	       (unsigned long long)(t1 - t0),
	       watchdog ? " (watchdog_thresh 1: a soft lockup after 2 s)" : "");

	for (i = 0; i < self->nl; i++)
		close(self->l[i]);
	self->nl = 0;
	EXPECT_EQ(self->base, wait_inuse(self->base, 120000))
		TH_LOG("TCP sockets left after the channel and the listeners closed");
}

TEST_HARNESS_MAIN
