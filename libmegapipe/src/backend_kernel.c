// SPDX-License-Identifier: MIT
/*
 * The kernel backend: the channel ABI is /dev/megapipe's, so each op is one
 * ioctl on the channel's fd.
 *
 * On a kernel with MEGAPIPE_FEAT_RING the library sets the channel up with
 * shared-memory rings (unless MEGAPIPE_RING=0): submit then writes the
 * batch into the submission ring, and makes no system call at all when it
 * has nothing to submit and completions are already there.  The
 * completion ring is the library's to read in place (mp->kcq): submit
 * fetches nothing, and mp_dispatch() hands each completion out from the
 * ring and moves its head.  The requests behind a refused one are taken
 * back out of the submission ring (the tail is ours to move back), so
 * that they go again from the library's queue, as with copies.
 *
 * The device is kernel/src/net/megapipe/ (CONFIG_MEGAPIPE).  The library's
 * test suite runs against it with MEGAPIPE_BACKEND=kernel in the test VM
 * (tests/scripts/megapipe_lib.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

struct k_chan {
	int fd;
	bool ring;
	struct megapipe_ring *sq, *cq;	/* mapped; NULL without rings */
	size_t sq_size, cq_size;
	struct megapipe_req *sqes;
	struct megapipe_cqe *cqes;
};

static struct k_chan *kch(struct mp_channel *mp)
{
	return mp->be;
}

static int kfd(struct mp_channel *mp)
{
	return kch(mp)->fd;
}

static int k_ioctl(struct mp_channel *mp, unsigned long req, void *arg)
{
	int ret;

	do {
		ret = ioctl(kfd(mp), req, arg);
	} while (ret < 0 && errno == EINTR && req != MEGAPIPE_IOC_SUBMIT);
	return ret < 0 ? -errno : 0;
}

static int k_open(struct mp_channel *mp)
{
	struct k_chan *k;
	int fd = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	k = calloc(1, sizeof(*k));
	if (!k) {
		close(fd);
		return -ENOMEM;
	}
	k->fd = fd;
	mp->be = k;
	return 0;
}

static int k_info(struct mp_channel *mp, struct megapipe_info *info)
{
	return k_ioctl(mp, MEGAPIPE_IOC_INFO, info);
}

static void *k_map(int fd, size_t size, off_t off)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);

	if (p == MAP_FAILED)
		return NULL;
	/* a fork()ed child cannot use the channel: it gets no rings either */
	madvise(p, size, MADV_DONTFORK);
	return p;
}

static void k_unmap(struct k_chan *k)
{
	if (k->sq)
		munmap(k->sq, k->sq_size);
	if (k->cq)
		munmap(k->cq, k->cq_size);
	k->sq = k->cq = NULL;
}

static int k_setup(struct mp_channel *mp, struct megapipe_setup *s)
{
	struct k_chan *k = kch(mp);
	int ret = k_ioctl(mp, MEGAPIPE_IOC_SETUP, s);

	if (ret || !(s->flags & MEGAPIPE_SETUP_RING))
		return ret;
	k->sq_size = s->sq_ring_size;
	k->cq_size = s->cq_ring_size;
	k->sq = k_map(k->fd, k->sq_size, MEGAPIPE_OFF_SQ_RING);
	k->cq = k_map(k->fd, k->cq_size, MEGAPIPE_OFF_CQ_RING);
	if (!k->sq || !k->cq) {
		ret = -errno;
		k_unmap(k);
		return ret;	/* set up but unusable: mp_create() fails */
	}
	k->sqes = (void *)((char *)k->sq + MEGAPIPE_RING_ENTRIES);
	k->cqes = (void *)((char *)k->cq + MEGAPIPE_RING_ENTRIES);
	k->ring = true;
	mp->kcq = k->cq;
	mp->kcqes = (struct mp_completion *)k->cqes;
	mp->kc_mask = k->cq->mask;
	mp->kc_seen = mp->kc_stop = k->cq->head;
	return 0;
}

static int k_reg(struct mp_channel *mp, struct megapipe_register *r)
{
	return k_ioctl(mp, MEGAPIPE_IOC_REGISTER, r);
}

static int k_unreg(struct mp_channel *mp, struct megapipe_unregister *u)
{
	return k_ioctl(mp, MEGAPIPE_IOC_UNREGISTER, u);
}

static int k_buffers(struct mp_channel *mp, struct megapipe_buffers *b)
{
	return k_ioctl(mp, MEGAPIPE_IOC_BUFFERS, b);
}

static int k_export(struct mp_channel *mp, struct megapipe_export *e)
{
	return k_ioctl(mp, MEGAPIPE_IOC_EXPORT, e);
}

static int k_sockopt(struct mp_channel *mp, struct megapipe_sockopt *o)
{
	return k_ioctl(mp, MEGAPIPE_IOC_SOCKOPT, o);
}

/*
 * The copy transport's SUBMIT, on the rings.  @s comes from the library
 * (its own arrays, checked sizes); @s->cqes and @s->max_cqes are unused:
 * completions stay in the ring, for mp_dispatch().
 */
static int k_submit_ring(struct k_chan *k, struct megapipe_submit *s)
{
	const struct megapipe_req *reqs = (const void *)(uintptr_t)s->reqs;
	struct megapipe_submit rs = {
		.flags = MEGAPIPE_SUBMIT_RING,
		.nr_reqs = s->nr_reqs,
		.min_complete = s->min_complete,
		.timeout_ns = s->timeout_ns,
	};
	uint32_t tail = k->sq->tail, mask = k->sq->mask, i, ready;
	int ret = 0;

	if (s->flags)
		return -EINVAL;
	if (s->nr_reqs > k->sq->entries)
		return -E2BIG;
	s->submitted = s->completed = 0;
	s->error = 0;
	/* nothing to submit, and what the caller waits for is there: no call */
	ready = __atomic_load_n(&k->cq->tail, __ATOMIC_ACQUIRE) - k->cq->head;
	if (!s->nr_reqs && ready && ready >= s->min_complete)
		return 0;
	for (i = 0; i < s->nr_reqs; i++)
		k->sqes[(tail + i) & mask] = reqs[i];
	__atomic_store_n(&k->sq->tail, tail + s->nr_reqs, __ATOMIC_RELEASE);
	if (ioctl(k->fd, MEGAPIPE_IOC_SUBMIT, &rs))
		ret = -errno;
	/*
	 * What the kernel did not take (behind a refused request, or all of
	 * it when the call failed) leaves the ring: the library sends it
	 * again from its queue, as with copies.
	 */
	__atomic_store_n(&k->sq->tail,
			 __atomic_load_n(&k->sq->head, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	if (ret)
		return ret;
	s->submitted = rs.submitted;
	s->error = rs.error;
	return 0;
}

static int k_submit(struct mp_channel *mp, struct megapipe_submit *s)
{
	if (kch(mp)->ring)
		return k_submit_ring(kch(mp), s);
	return k_ioctl(mp, MEGAPIPE_IOC_SUBMIT, s);
}

/* Closing the channel cancels and releases everything in the kernel. */
static void k_close(struct mp_channel *mp, bool foreign)
{
	struct k_chan *k = kch(mp);

	if (!k)
		return;
	/* a child has no rings (MADV_DONTFORK): the addresses may be reused */
	if (!foreign)
		k_unmap(k);
	mp->kcq = NULL;
	mp->kcqes = NULL;
	close(k->fd);
	free(k);
	mp->be = NULL;
}

static int k_poll_fd(struct mp_channel *mp)
{
	return kfd(mp);
}

const struct mp_backend_ops mp_kernel_ops = {
	.name		= "kernel",
	.id		= MP_BACKEND_KERNEL,
	.open		= k_open,
	.info		= k_info,
	.setup		= k_setup,
	.reg		= k_reg,
	.unreg		= k_unreg,
	.export_fd	= k_export,
	.sockopt	= k_sockopt,
	.buffers	= k_buffers,
	.submit		= k_submit,
	.poll_fd	= k_poll_fd,
	.close		= k_close,
};
