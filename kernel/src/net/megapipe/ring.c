// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: the shared-memory ring transport (MEGAPIPE_SETUP_RING).
 *
 * Two rings, each one vmalloc area mapped into the owner with mmap(): a
 * struct megapipe_ring header, then the entries.  The owner writes
 * requests into the submission ring and advances its tail; SUBMIT takes
 * them, each read once into the kernel's own copy, and advances the head.
 * Completions are posted straight into the completion ring (cq.c, with the
 * ring as its array), published by a store-release of the tail, and the
 * owner consumes them by advancing the head.  The kernel keeps the indexes
 * it owns (the submission head, the completion tail) to itself and reads
 * the owner's with a load-acquire, refusing one that claims more entries
 * than the ring holds.  Reservations work as with copies: a completion's
 * is given back once the owner's head has moved past it (mp_cq_reap()), so
 * posting never finds the ring full.
 */
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>

#include "megapipe.h"

static size_t mp_ring_bytes(u32 entries, size_t esize)
{
	return PAGE_ALIGN(MEGAPIPE_RING_ENTRIES + (size_t)entries * esize);
}

/* Zeroed, charged to the owner's memcg, mappable to user space. */
static struct megapipe_ring *mp_ring_alloc(size_t bytes, u32 entries)
{
	struct megapipe_ring *ring;

	ring = __vmalloc_node_range(bytes, SHMLBA, VMALLOC_START, VMALLOC_END,
				    GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN,
				    PAGE_KERNEL,
				    VM_USERMAP, NUMA_NO_NODE,
				    __builtin_return_address(0));
	if (!ring)
		return NULL;
	ring->entries = entries;
	ring->mask = entries - 1;
	return ring;
}

/* Size and allocate both rings; @s's out fields are set.  0 or -errno. */
int mp_ring_init(struct mp_chan *ch, struct megapipe_setup *s)
{
	u32 sq = roundup_pow_of_two(s->sq_entries);
	u32 cq = roundup_pow_of_two(s->cq_entries);

	BUILD_BUG_ON(sizeof(struct megapipe_ring) != MEGAPIPE_RING_ENTRIES);
	BUILD_BUG_ON(!is_power_of_2(MP_MAX_CQ_ENTRIES));
	ch->sq_bytes = mp_ring_bytes(sq, sizeof(struct megapipe_req));
	ch->cq_bytes = mp_ring_bytes(cq, sizeof(struct megapipe_cqe));
	ch->sq_ring = mp_ring_alloc(ch->sq_bytes, sq);
	ch->cq_ring = mp_ring_alloc(ch->cq_bytes, cq);
	if (!ch->sq_ring || !ch->cq_ring) {
		mp_ring_free(ch);
		return -ENOMEM;
	}
	ch->sqes = (void *)ch->sq_ring + MEGAPIPE_RING_ENTRIES;
	ch->sq_entries = sq;
	ch->cq = (void *)ch->cq_ring + MEGAPIPE_RING_ENTRIES;
	ch->cq_entries = cq;
	ch->ring = true;
	s->sq_entries = sq;
	s->cq_entries = cq;
	s->sq_ring_size = ch->sq_bytes;
	s->cq_ring_size = ch->cq_bytes;
	return 0;
}

void mp_ring_free(struct mp_chan *ch)
{
	vfree(ch->sq_ring);
	vfree(ch->cq_ring);
	ch->sq_ring = NULL;
	ch->cq_ring = NULL;
	ch->cq = NULL;
}

/*
 * Requests the owner has queued in the submission ring, or -EINVAL when
 * its tail claims more than the ring holds.
 */
int mp_ring_sq_ready(struct mp_chan *ch)
{
	/* pairs with the owner's store-release of the tail: entries first */
	u32 n = smp_load_acquire(&ch->sq_ring->tail) - ch->sq_head;

	return n > ch->sq_entries ? -EINVAL : n;
}

/*
 * Take the request at the submission head into @r and move past it.  The
 * owner may be writing the entry meanwhile: what counts is this copy, the
 * only read of the entry (every check and use after it reads @r).
 */
void mp_ring_sq_take(struct mp_chan *ch, struct megapipe_req *r)
{
	memcpy(r, &ch->sqes[ch->sq_head & (ch->sq_entries - 1)], sizeof(*r));
	ch->sq_head++;
}

/* Publish the submission head: the owner may reuse the slots taken. */
void mp_ring_sq_done(struct mp_chan *ch)
{
	/* the entries were read before the owner may overwrite them */
	smp_store_release(&ch->sq_ring->head, ch->sq_head);
}

/* mmap() of a ring channel's rings, by the owner. */
int mp_ring_mmap(struct mp_chan *ch, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	struct megapipe_ring *ring;
	size_t bytes;

	if (off == MEGAPIPE_OFF_SQ_RING) {
		ring = ch->sq_ring;
		bytes = ch->sq_bytes;
	} else if (off == MEGAPIPE_OFF_CQ_RING) {
		ring = ch->cq_ring;
		bytes = ch->cq_bytes;
	} else {
		return -EINVAL;
	}
	/* private copies would never reach the kernel; rings are not code */
	if (len > bytes || !(vma->vm_flags & VM_SHARED) ||
	    (vma->vm_flags & VM_EXEC))
		return -EINVAL;
	vm_flags_clear(vma, VM_MAYEXEC);
	/*
	 * Not copied into a fork()ed child: the rings are the owner's way
	 * in, and requests taken from them run as the owner, so a child
	 * that kept them would drive the owner's channel (in its memory,
	 * with its credentials) without the ioctl's owner check.
	 */
	vm_flags_set(vma, VM_DONTCOPY);
	return remap_vmalloc_range(vma, ring, 0);
}
