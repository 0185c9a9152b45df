/* SPDX-License-Identifier: MIT */
/*
 * libmegapipe internals: the channel, and the one interface its two
 * backends implement.
 *
 * The backend interface is the channel ABI of <linux/megapipe.h> itself:
 * each op takes the ABI structure of one ioctl and returns 0 or -errno.
 * The kernel backend passes them to /dev/megapipe; the epoll backend
 * implements the same checks and semantics in user space.  Everything
 * above (queueing, batching, completion reservations, the handle table
 * that turns a bad handle into EBADF at the call) is common.
 */
#ifndef LIBMEGAPIPE_INTERNAL_H
#define LIBMEGAPIPE_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "megapipe.h"

#define MP_EXPORT	__attribute__((visibility("default")))
/* Small helpers of the per-request paths: no call, no register spills. */
#define MP_INLINE	static inline __attribute__((always_inline))
#define mp_unlikely(x)	__builtin_expect(!!(x), 0)

/* The ABI's layouts are fixed: if one of these fails, the ABI changed. */
static_assert(sizeof(struct megapipe_info) == 64, "megapipe_info size");
static_assert(sizeof(struct megapipe_setup) == 40, "megapipe_setup size");
static_assert(sizeof(struct megapipe_register) == 48, "megapipe_register size");
static_assert(sizeof(struct megapipe_unregister) == 16, "megapipe_unregister size");
static_assert(sizeof(struct megapipe_export) == 16, "megapipe_export size");
static_assert(sizeof(struct megapipe_req) == 64, "megapipe_req size");
static_assert(sizeof(struct megapipe_cqe) == 32, "megapipe_cqe size");
static_assert(sizeof(struct megapipe_submit) == 64, "megapipe_submit size");
static_assert(sizeof(struct megapipe_sockopt) == 32, "megapipe_sockopt size");
static_assert(sizeof(struct mp_completion) == sizeof(struct megapipe_cqe),
	      "mp_completion is megapipe_cqe");

struct mp_channel;

struct mp_backend_ops {
	const char *name;
	unsigned int id;			/* MP_BACKEND_* */
	/* Create the backend's channel in mp->be; 0 or -errno. */
	int (*open)(struct mp_channel *mp);
	int (*info)(struct mp_channel *mp, struct megapipe_info *info);
	int (*setup)(struct mp_channel *mp, struct megapipe_setup *s);
	int (*reg)(struct mp_channel *mp, struct megapipe_register *r);
	int (*unreg)(struct mp_channel *mp, struct megapipe_unregister *u);
	int (*export_fd)(struct mp_channel *mp, struct megapipe_export *e);
	int (*submit)(struct mp_channel *mp, struct megapipe_submit *s);
	int (*buffers)(struct mp_channel *mp, struct megapipe_buffers *b);
	int (*sockopt)(struct mp_channel *mp, struct megapipe_sockopt *o);
	/* The fd to poll for work (MEGAPIPE_FEAT_POLL). */
	int (*poll_fd)(struct mp_channel *mp);
	/*
	 * Release everything.  @foreign: called in another process than the
	 * creator (after fork): close descriptors, touch no shared state.
	 */
	void (*close)(struct mp_channel *mp, bool foreign);
};

extern const struct mp_backend_ops mp_kernel_ops;
extern const struct mp_backend_ops mp_epoll_ops;

/* The library's view of one handle (indexed by MEGAPIPE_HANDLE_INDEX). */
struct mp_hslot {
	uint32_t handle;	/* full value; MEGAPIPE_NO_HANDLE: free slot */
	uint8_t listener;
	uint8_t file;		/* mp_register_file(): polls only */
	uint8_t lw;		/* lightweight: no fd of the caller's */
	uint8_t closing;	/* disconnect queued: no more requests */
	uint8_t cookie_dirty;	/* next request carries SET_COOKIE */
	uint8_t buf_group;	/* of its multishot READs; MP_NO_GROUP: none yet */
	uint64_t cookie;
	uint32_t busy;		/* requests queued or in flight */
	uint32_t writes;	/* writes queued or in flight, to their dispatch */
	/* listeners: remaining counts of pending accepts, oldest first */
	uint32_t *acc;
	uint32_t acc_head, acc_n, acc_cap;
	uint32_t acc_sub;	/* how many of them reached the backend */
};

#define MP_NO_GROUP	0xff

struct mp_bufgroup;

struct mp_channel {
	const struct mp_backend_ops *ops;
	void *be;			/* backend state */
	struct megapipe_info info;
	unsigned int cq_entries;	/* room for I/O requests (mp_features) */
	unsigned int cq_total;		/* the backend's: cq_entries + the reserve */
	unsigned int fork_gen;		/* mp_fork_gen at creation */
#ifdef MP_DEBUG
	pthread_t owner;
#endif
	/*
	 * Completions owed or held: reservations of queued and in-flight
	 * requests plus completions fetched (or made) but not dispatched.  A
	 * request is queued only while this leaves it at most cq_entries
	 * (I/O) or cq_total (cleanup: the rest, the reserve, is for
	 * mp_disconnect() and mp_cancel(), which never fail for lack of
	 * room).  It may pass cq_total afterwards: the backend does not know
	 * of the requests still queued here, nor of those it refused (whose
	 * completions the library makes), and lets a multishot request
	 * reserve its next completion in their room.  The backend never
	 * drops a completion, and cq has room for what it can hold (see
	 * cq_cap).
	 */
	unsigned int owed;
	unsigned int connects;		/* CONNECTs queued or in flight */

	/* requests queued in user space, not yet submitted, in order */
	struct megapipe_req *sq;
	void **sq_aux;			/* copies (iovecs, sockaddr) to free */
	uint8_t *sq_flags;		/* SQ_F_* */
	unsigned int sq_n, sq_cap;
	unsigned int sq_held;		/* entries with SQ_F_HELD */
	/* the request queued last, for mp_set_user_data(); UINT_MAX: none */
	unsigned int sq_last;
	/* one backend call's worth of requests, and their places in sq */
	struct megapipe_req *batch;
	unsigned int *batch_idx;

	/*
	 * Completions fetched (or synthesized), not yet dispatched, in a ring
	 * of cq_cap = 3 * cq_total: a fetch takes at most cq_total - cq_n,
	 * or, before a completion the library makes for a refused request
	 * (fetch_all()), 2 * cq_total - cq_n; and those it makes, each for a
	 * request that held a reservation, are at most cq_total more.  With a
	 * kernel completion ring (kcq), cq holds only those the library made,
	 * each after the kernel's completions before cq_at[] (the ring's
	 * tail when it was made).
	 */
	struct mp_completion *cq;
	uint32_t *cq_at;
	unsigned int cq_head, cq_n, cq_cap;
	struct mp_completion *fetch;	/* max_batch, one call's worth */

	/*
	 * The kernel's completion ring (MEGAPIPE_SETUP_RING), set by the
	 * backend; NULL without one.  mp_dispatch() hands out its entries
	 * where they are and moves its head.  The entries before kc_seen
	 * have been looked at for the reservations they carry (owed); those
	 * before kc_stop are the batch being handed out without a look.
	 */
	struct megapipe_ring *kcq;
	struct mp_completion *kcqes;
	uint32_t kc_mask, kc_seen, kc_stop;

	struct mp_hslot *slots;
	unsigned int nslots;

	struct mp_bufgroup *groups[MEGAPIPE_MAX_BUF_GROUPS];
};

/* Incremented in every child after fork(). */
extern unsigned int mp_fork_gen;

#endif /* LIBMEGAPIPE_INTERNAL_H */
