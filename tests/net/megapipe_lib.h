/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the /dev/megapipe tests: a channel, registration, one
 * MEGAPIPE_IOC_SUBMIT, and waits for the per-netns socket counts that the
 * tests assert return to their start.  Nothing here asserts itself.
 */
#ifndef MEGAPIPE_LIB_H
#define MEGAPIPE_LIB_H

#include <linux/bpf.h>
#include <linux/megapipe.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "listen_lib.h"

#define BAD_PTR		((void *)0x10)	/* below mmap_min_addr: never mapped */

/* A channel with @entries completion entries (0: not set up), or -1. */
static inline int mp_open(unsigned int entries)
{
	struct megapipe_setup s = { .cq_entries = entries };
	int fd = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (entries && ioctl(fd, MEGAPIPE_IOC_SETUP, &s)) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline int mp_reg(int ch, int fd, uint64_t cookie)
{
	struct megapipe_register r = { .fd = fd, .cookie = cookie };

	if (ioctl(ch, MEGAPIPE_IOC_REGISTER, &r))
		return -1;
	return r.handle;
}

/* Submit @n requests, reap up to @max completions; the ioctl's result. */
static inline int mp_sub(int ch, struct megapipe_req *r, unsigned int n,
			 struct megapipe_cqe *c, unsigned int max,
			 unsigned int min, int64_t timeout_ns,
			 struct megapipe_submit *out)
{
	struct megapipe_submit s = {
		.reqs = (uintptr_t)r, .nr_reqs = n,
		.cqes = (uintptr_t)c, .max_cqes = max,
		.min_complete = min, .timeout_ns = timeout_ns,
	};
	int ret = ioctl(ch, MEGAPIPE_IOC_SUBMIT, &s);

	if (out)
		*out = s;
	return ret;
}

static inline int bpf_sys(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* Put socket @fd in sockmap @map at @key: 0, or -1 with errno. */
static inline int sockmap_set(int map, __u32 key, int fd)
{
	union bpf_attr attr;
	__u64 val = fd;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = map;
	attr.key = (__u64)(uintptr_t)&key;
	attr.value = (__u64)(uintptr_t)&val;
	attr.flags = BPF_ANY;
	return bpf_sys(BPF_MAP_UPDATE_ELEM, &attr);
}

static inline long wait_inuse(long want, int timeout_ms)
{
	return lib_wait_count(lib_tcp_inuse, want, timeout_ms);
}

#endif /* MEGAPIPE_LIB_H */
