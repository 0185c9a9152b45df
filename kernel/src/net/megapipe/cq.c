// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: the completion queue.
 *
 * Every request reserves the completions it will post when it is
 * submitted (one, or the count of an ACCEPT) and a reservation is given
 * back when its completion is copied out (or when an ACCEPT ends early),
 * so posting never finds the ring full and no completion is dropped.
 * Owner context, under mp_chan.lock.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "megapipe.h"

int mp_cq_init(struct mp_chan *ch, u32 entries)
{
	/* sized by the user: a failure is its ENOMEM, not a warning */
	ch->cq = kvcalloc(entries, sizeof(*ch->cq),
			  GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!ch->cq)
		return -ENOMEM;
	ch->cq_entries = entries;
	return 0;
}

void mp_cq_free(struct mp_chan *ch)
{
	if (ch->ring) {
		mp_ring_free(ch);
		return;
	}
	kvfree(ch->cq);
	ch->cq = NULL;
}

/*
 * Rings: the completions the owner consumed since the last look give back
 * their reservations.  A head that claims more than was posted is ignored.
 */
void mp_cq_reap(struct mp_chan *ch)
{
	u32 n;

	lockdep_assert_held(&ch->lock);
	if (!ch->ring)
		return;
	/* the owner read the entries before it stored the head (release) */
	n = smp_load_acquire(&ch->cq_ring->head) - ch->cq_seen;
	if (!n || n > ch->cq_n)
		return;
	WRITE_ONCE(ch->cq_seen, ch->cq_seen + n);
	ch->cq_head = (ch->cq_head + n) & (ch->cq_entries - 1);
	WRITE_ONCE(ch->cq_n, ch->cq_n - n);
	mp_cq_unreserve(ch, n);
}

/*
 * Rings: completions in the ring the owner has not consumed (without the
 * lock): the tail published against the owner's head, or, for a head
 * that claims more than was posted, against the head last taken.
 */
u32 mp_cq_avail(struct mp_chan *ch)
{
	u32 tail = READ_ONCE(ch->cq_tail);
	u32 n = tail - READ_ONCE(ch->cq_ring->head);

	return n > ch->cq_entries ? tail - READ_ONCE(ch->cq_seen) : n;
}

/* mp_cq_reserve() without room at first sight */
bool mp_cq_reserve_slow(struct mp_chan *ch, u32 n)
{
	mp_cq_reap(ch);
	if (n > ch->cq_entries - ch->cq_owed)
		return false;
	ch->cq_owed += n;
	return true;
}

void mp_cq_unreserve(struct mp_chan *ch, u32 n)
{
	if (WARN_ON_ONCE(n > ch->cq_owed))
		n = ch->cq_owed;
	ch->cq_owed -= n;
}

/* Post one completion; its entry was reserved at submission. */
void mp_cq_post(struct mp_chan *ch, u64 cookie, u32 handle, u32 new_handle,
		s32 result, u8 opcode, u16 flags, u64 user_data)
{
	u32 n = ch->cq_n, at = ch->cq_head + n;
	struct megapipe_cqe *c;

	lockdep_assert_held(&ch->lock);
	if (WARN_ON_ONCE(n >= ch->cq_entries))
		return;
	if (at >= ch->cq_entries)
		at -= ch->cq_entries;
	/* every field written, resv0 too: no memset first */
	c = &ch->cq[at];
	c->cookie = cookie;
	c->handle = handle;
	c->new_handle = new_handle;
	c->result = result;
	c->opcode = opcode;
	c->resv0 = 0;
	c->flags = flags;
	c->user_data = user_data;
	if (ch->ring) {
		u32 tail = ch->cq_seen + n + 1;

		WRITE_ONCE(ch->cq_tail, tail);
		smp_store_release(&ch->cq_ring->tail, tail); /* entry first */
	}
	WRITE_ONCE(ch->cq_n, n + 1);
	/* another thread waiting in SUBMIT; poll()/epoll on the channel */
	if (wq_has_sleeper(&ch->wait))
		wake_up(&ch->wait);
	if (wq_has_sleeper(&ch->poll_wait))
		wake_up(&ch->poll_wait);
}

/*
 * Completions for the owner (read without the lock): with copies, any
 * posted and not copied out; with rings, at least @target unconsumed.
 */
bool mp_cq_pending(struct mp_chan *ch, u32 target)
{
	if (ch->ring)
		return mp_cq_avail(ch) >= max(target, 1U);
	return READ_ONCE(ch->cq_n);
}

/*
 * Copy out up to @max completions, oldest first, store @base plus their
 * number in *@ucount, and only then consume them and give back their
 * reservations: a fault loses nothing.  Returns how many, or -EFAULT with
 * nothing consumed.
 */
int mp_cq_copy_out(struct mp_chan *ch, struct megapipe_cqe __user *ucqe,
		   u32 max, u32 __user *ucount, u32 base)
{
	u32 n = min(max, ch->cq_n), i, w, at = ch->cq_head;
	u64 __user *uw = (u64 __user *)ucqe;
	const u64 *kw;

	BUILD_BUG_ON(sizeof(*ucqe) % sizeof(u64));
	if (!n)
		return 0;
	/*
	 * Word by word in one user-access section: a few completions are
	 * cheaper so than through copy_to_user() (no call, no usercopy
	 * hardening walk of the heap object, no string copy).
	 */
	if (!user_access_begin(ucqe, n * sizeof(*ucqe)))
		return -EFAULT;
	for (i = 0; i < n; i++) {
		kw = (const u64 *)&ch->cq[at];
		for (w = 0; w < sizeof(*ucqe) / sizeof(u64); w++)
			unsafe_put_user(kw[w], uw++, efault);
		if (++at == ch->cq_entries)
			at = 0;
	}
	user_access_end();
	if (put_user(base + n, ucount))
		return -EFAULT;
	ch->cq_head = at;
	WRITE_ONCE(ch->cq_n, ch->cq_n - n);
	mp_cq_unreserve(ch, n);
	return n;
efault:
	/* some entries may be written: nothing is consumed */
	user_access_end();
	return -EFAULT;
}
