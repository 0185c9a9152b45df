// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: buffer rings for READs (MEGAPIPE_IOC_BUFFERS).
 *
 * A process provides a ring of buffers per group in its own memory: an
 * array of struct megapipe_buf and a tail it advances.  A READ with
 * MEGAPIPE_READ_BUFFER takes a buffer when its data is there, not before,
 * so that an idle connection holds none; a multishot READ takes one per
 * completion.  The kernel keeps its head to itself and reads each entry
 * once as it takes it, in the owner's context (SUBMIT), under the channel
 * lock.  It reads the process's tail only when it has taken every entry
 * the tail it read last had published.
 */
#include <linux/log2.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "megapipe.h"

struct mp_bufring {
	u64 ring;		/* user pointer to the entries */
	u64 tail;		/* user pointer to the process's tail */
	u32 entries;
	u32 head;		/* the kernel's */
	u32 tail_seen;		/* the process's tail as last read */
};

long mp_buffers(struct mp_chan *ch, struct megapipe_buffers __user *arg)
{
	struct megapipe_buffers b;
	struct mp_bufring *br;

	lockdep_assert_held(&ch->lock);
	if (copy_from_user(&b, arg, sizeof(b)))
		return -EFAULT;
	if (b.flags || b.resv[0] || b.resv[1] ||
	    b.group >= MEGAPIPE_MAX_BUF_GROUPS)
		return -EINVAL;
	b.group = array_index_nospec(b.group, MEGAPIPE_MAX_BUF_GROUPS);
	if (!b.ring) {
		if (b.tail || b.entries)
			return -EINVAL;
		if (!ch->bufs[b.group])
			return -ENOENT;
		kfree(ch->bufs[b.group]);
		ch->bufs[b.group] = NULL;
		return 0;
	}
	if (ch->bufs[b.group])
		return -EEXIST;
	if (!b.entries || !is_power_of_2(b.entries) ||
	    b.entries > MEGAPIPE_MAX_BUF_ENTRIES || (b.tail & 3))
		return -EINVAL;
	if (!access_ok(u64_to_user_ptr(b.ring),
		       (size_t)b.entries * sizeof(struct megapipe_buf)) ||
	    !access_ok(u64_to_user_ptr(b.tail), sizeof(u32)))
		return -EFAULT;
	br = kzalloc(sizeof(*br), GFP_KERNEL_ACCOUNT);
	if (!br)
		return -ENOMEM;
	br->ring = b.ring;
	br->tail = b.tail;
	br->entries = b.entries;
	ch->bufs[b.group] = br;
	return 0;
}

/*
 * Take the next buffer of @group into *@b: 0, -ENOBUFS (none, or no such
 * group), or -EFAULT / -EINVAL for an entry that cannot be read or is not
 * a buffer (length 0 or over INT_MAX, reserved bits): that entry is
 * consumed all the same, so that one bad entry does not stop the group.
 * mp_buf_put_back() returns a buffer that was not used.
 */
int mp_buf_take(struct mp_chan *ch, u16 group, struct megapipe_buf *b)
{
	const u64 __user *ub;
	struct mp_bufring *br;
	u64 w[2] __uninitialized;
	u32 tail;

	lockdep_assert_held(&ch->lock);
	if (group >= MEGAPIPE_MAX_BUF_GROUPS)
		return -ENOBUFS;
	br = ch->bufs[array_index_nospec(group, MEGAPIPE_MAX_BUF_GROUPS)];
	if (!br)
		return -ENOBUFS;
	if (br->head == br->tail_seen) {
		if (get_user(tail, (u32 __user *)u64_to_user_ptr(br->tail)))
			return -EFAULT;
		/* the entries the process wrote before it moved the tail */
		smp_rmb();
		if (tail == br->head || tail - br->head > br->entries)
			return -ENOBUFS;
		br->tail_seen = tail;
	}
	ub = u64_to_user_ptr(br->ring) +
	     (br->head & (br->entries - 1)) * sizeof(*b);
	BUILD_BUG_ON(sizeof(*b) != 2 * sizeof(u64));
	br->head++;
	/*
	 * The entry, word by word in one user-access section: cheaper for
	 * 16 bytes than copy_from_user() and its object checks.
	 */
	if (!user_access_begin(ub, sizeof(*b)))
		return -EFAULT;
	unsafe_get_user(w[0], ub, efault);
	unsafe_get_user(w[1], ub + 1, efault);
	user_access_end();
	memcpy(b, w, sizeof(*b));
	if (!b->len || b->len > INT_MAX || b->resv)
		return -EINVAL;
	return 0;
efault:
	user_access_end();
	return -EFAULT;
}

void mp_buf_put_back(struct mp_chan *ch, u16 group)
{
	ch->bufs[group]->head--;
}

void mp_bufs_free(struct mp_chan *ch)
{
	unsigned int i;

	for (i = 0; i < MEGAPIPE_MAX_BUF_GROUPS; i++) {
		kfree(ch->bufs[i]);
		ch->bufs[i] = NULL;
	}
}
