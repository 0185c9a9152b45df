// SPDX-License-Identifier: MIT
/*
 * The kernel backend: the channel ABI is /dev/megapipe's, so each op is one
 * ioctl on the channel's fd.
 *
 * The device is kernel/src/net/megapipe/ (CONFIG_MEGAPIPE).  The library's
 * test suite runs against it with MEGAPIPE_BACKEND=kernel in the test VM
 * (tests/scripts/megapipe_lib.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

/* The channel's fd, kept in mp->be as fd + 1 (NULL: none). */
static int kfd(struct mp_channel *mp)
{
	return (int)(intptr_t)mp->be - 1;
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
	int fd = open(MEGAPIPE_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	mp->be = (void *)(intptr_t)(fd + 1);
	return 0;
}

static int k_info(struct mp_channel *mp, struct megapipe_info *info)
{
	return k_ioctl(mp, MEGAPIPE_IOC_INFO, info);
}

static int k_setup(struct mp_channel *mp, struct megapipe_setup *s)
{
	return k_ioctl(mp, MEGAPIPE_IOC_SETUP, s);
}

static int k_reg(struct mp_channel *mp, struct megapipe_register *r)
{
	return k_ioctl(mp, MEGAPIPE_IOC_REGISTER, r);
}

static int k_unreg(struct mp_channel *mp, struct megapipe_unregister *u)
{
	return k_ioctl(mp, MEGAPIPE_IOC_UNREGISTER, u);
}

static int k_export(struct mp_channel *mp, struct megapipe_export *e)
{
	return k_ioctl(mp, MEGAPIPE_IOC_EXPORT, e);
}

static int k_submit(struct mp_channel *mp, struct megapipe_submit *s)
{
	return k_ioctl(mp, MEGAPIPE_IOC_SUBMIT, s);
}

/* Closing the channel cancels and releases everything in the kernel. */
static void k_close(struct mp_channel *mp, bool foreign)
{
	(void)foreign;
	if (mp->be)
		close(kfd(mp));
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
	.submit		= k_submit,
	.poll_fd	= k_poll_fd,
	.close		= k_close,
};
