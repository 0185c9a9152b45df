// SPDX-License-Identifier: GPL-2.0
/*
 * Per-core listen: delay knobs that widen race windows, for tests only.
 *
 * /sys/kernel/debug/tcp_percore_listen/<point>_delay_us holds a delay in
 * microseconds (0: off, at most PCL_DBG_MAX_US) that the code at <point>
 * waits for:
 *
 *   queue_add_delay_us  softirq: a new child's clone is locked and the
 *                       listener was seen listening; the child is not yet
 *                       linked (busy-waits, clone lock held)
 *   accept_delay_us     accept() saw a listener not in per-core mode and
 *                       has not yet taken its socket lock (sleeps)
 *   listen_delay_us     listen() stored TCP_LISTEN and has not yet bound
 *                       the port (sleeps, socket lock held)
 *
 * Built only with CONFIG_TCP_PERCORE_LISTEN_DEBUG, which is for test
 * kernels: production kernels have no such knob and no such call.
 */

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/init.h>
#include <net/inet_percore_listen.h>

#define PCL_DBG_MAX_US	100000

static u32 pcl_dbg_delay_us[INET_PCL_DBG_NR];

static const char * const pcl_dbg_names[INET_PCL_DBG_NR] = {
	[INET_PCL_DBG_QUEUE_ADD]	= "queue_add_delay_us",
	[INET_PCL_DBG_ACCEPT]		= "accept_delay_us",
	[INET_PCL_DBG_LISTEN]		= "listen_delay_us",
};

void inet_pcl_debug_delay(enum inet_pcl_dbg point)
{
	u32 us = READ_ONCE(pcl_dbg_delay_us[point]);

	if (likely(!us))
		return;
	if (point != INET_PCL_DBG_QUEUE_ADD) {
		fsleep(us);
		return;
	}
	for (; us >= 1000; us -= 1000)
		mdelay(1);
	udelay(us);
}

static int pcl_dbg_get(void *data, u64 *val)
{
	*val = READ_ONCE(*(u32 *)data);
	return 0;
}

static int pcl_dbg_set(void *data, u64 val)
{
	if (val > PCL_DBG_MAX_US)
		return -EINVAL;
	WRITE_ONCE(*(u32 *)data, val);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(pcl_dbg_fops, pcl_dbg_get, pcl_dbg_set, "%llu\n");

static int __init inet_pcl_debug_init(void)
{
	struct dentry *dir = debugfs_create_dir("tcp_percore_listen", NULL);
	int i;

	for (i = 0; i < INET_PCL_DBG_NR; i++)
		debugfs_create_file_unsafe(pcl_dbg_names[i], 0600, dir,
					   &pcl_dbg_delay_us[i], &pcl_dbg_fops);
	return 0;
}
late_initcall(inet_pcl_debug_init);
