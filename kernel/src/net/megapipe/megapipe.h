/* SPDX-License-Identifier: GPL-2.0 */
/*
 * MegaPipe channels (/dev/megapipe): internal interfaces.
 *
 * A channel is an open file of the misc device.  Its owner (the address
 * space that opened it) registers sockets, which become handles, and
 * submits requests on them.  Everything but the socket callbacks runs in
 * the owner's context under mp_chan.lock: the callbacks (softirq) only
 * put the handle on the channel's ready list and wake the channel; the
 * I/O is done by MEGAPIPE_IOC_SUBMIT.  See include/uapi/linux/megapipe.h.
 */
#ifndef _NET_MEGAPIPE_MEGAPIPE_H
#define _NET_MEGAPIPE_MEGAPIPE_H

#include <linux/cpumask.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <uapi/linux/megapipe.h>

struct file;
struct sock;
struct socket;
struct sockaddr_storage;
struct mm_struct;

/* Limits reported by MEGAPIPE_IOC_INFO. */
#define MP_MAX_HANDLES		65536U
#define MP_MAX_BATCH		256U
#define MP_MAX_CQ_ENTRIES	32768U
#define MP_MAX_IOV		UIO_MAXIOV
#define MP_GEN_BITS		(31 - MEGAPIPE_HANDLE_INDEX_BITS)
#define MP_REQ_CACHE		256U	/* requests a channel keeps for reuse */
#define MP_HANDLE_CACHE		64U	/* connection handles, likewise */

#define MP_FEATURES		(MEGAPIPE_FEAT_LWSOCKET | MEGAPIPE_FEAT_ACCEPT_FD | \
				 MEGAPIPE_FEAT_CONNECT | MEGAPIPE_FEAT_CANCEL | \
				 MEGAPIPE_FEAT_EXPORT | MEGAPIPE_FEAT_WRITEV | \
				 MEGAPIPE_FEAT_USER_DATA | MEGAPIPE_FEAT_POLL | \
				 MEGAPIPE_FEAT_RING | MEGAPIPE_FEAT_BUFFERS | \
				 MEGAPIPE_FEAT_SOCKOPT | MEGAPIPE_FEAT_FILES | \
				 MEGAPIPE_FEAT_ACCEPT_ADDR | \
				 (IS_ENABLED(CONFIG_TCP_PERCORE_LISTEN) ? \
				  MEGAPIPE_FEAT_PERCORE_LISTEN : 0))

struct mp_slot {
	struct mp_handle *h;
	u32 gen;		/* of the current or the next handle here */
	u32 next_free;
};

struct mp_chan {
	struct mutex lock;		/* everything below but the ready list */
	struct mm_struct *mm;		/* owner */
	struct files_struct *files;	/* the owner's fd table (compared only) */
	bool set_up;

	/*
	 * Completions: posted ones wait in a ring, cq_n of them from cq_head
	 * on; owed counts reservations.  With copies the ring is the
	 * kernel's and SUBMIT copies them out; with rings (ring.c) it is the
	 * shared completion ring, cq_seen is the owner's head as the kernel
	 * last took it, and cq_seen + cq_n the tail it published.
	 */
	struct megapipe_cqe *cq;
	u32 cq_entries, cq_head, cq_n, cq_owed, cq_seen;
	bool ring;

	/* the shared rings (MEGAPIPE_SETUP_RING), set up once */
	struct megapipe_ring *sq_ring, *cq_ring;
	size_t sq_bytes, cq_bytes;
	struct megapipe_req *sqes;
	u32 sq_entries, sq_head;

	/* buffer rings for READs (kbuf.c), by group */
	struct mp_bufring *bufs[MEGAPIPE_MAX_BUF_GROUPS];

	/* handles */
	struct mp_slot *slots;
	/* free slots, oldest freed first (mp_slot_put()) */
	u32 nslots, nlive, free_head, free_tail;
	struct list_head listeners;	/* listener handles */

	/* completed requests kept for reuse (opdef.c), at most MP_REQ_CACHE */
	struct list_head req_cache;
	u32 nr_req_cache;
	/* freed connection handles kept for reuse, at most MP_HANDLE_CACHE */
	struct list_head handle_cache;
	u32 nr_handle_cache;

	/* ready handles, marked by the socket callbacks */
	spinlock_t ready_lock;
	struct list_head ready;
	wait_queue_head_t wait;		/* threads waiting in SUBMIT */
	wait_queue_head_t poll_wait;	/* poll()/epoll on the channel fd */
	u32 cq_tail;			/* rings: the tail published */
};

/*
 * An entry on a wait queue a socket's events are posted to, as epoll and
 * io_uring's poll use them: the socket's own queue (connections, and
 * listeners not in per-core mode), or a per-core listener's per-CPU and
 * shared exclusive queues (inet_pcl_wait_head()).  The wake function only
 * marks the handle ready.
 */
struct mp_wait {
	struct wait_queue_entry entry;
	struct wait_queue_head *head;
	struct mp_handle *h;
	bool mark_busy;		/* a listener's: marks a busy channel too */
};

struct mp_handle {
	struct mp_chan *ch;
	u32 id;				/* the full handle value */
	/* a file's: the events its wakeups carried since its POLLs last ran */
	atomic_t poll_woken;
	u64 cookie;
	struct file *file;		/* the channel's reference, or NULL: */
	struct socket *sock;		/* a lightweight socket, the handle's */
	struct sock *sk;
	/* sk_prot when hooked: a ULP or sockmap since may hold data elsewhere */
	const struct proto *prot;
	struct mp_wait wait;		/* a connection's; a listener's first */
	/* a per-core listener's others; a file's queues (poll.c) */
	struct mp_wait *waits;
	u32 nwaits;
	u32 poll_events;		/* a file's: what its POLLs wait for */
	u32 naccepts;			/* ACCEPTs pending (read by the waker) */
	bool listener;
	bool is_file;			/* MEGAPIPE_REGISTER_FILE: POLLs only */
	bool fd_backed;			/* the caller has an fd of it */
	bool closing;			/* DISCONNECT submitted */
	bool connecting;		/* its CONNECT runs: no request names it */
	/*
	 * A multishot READ armed when no READ was queued is kept here, not
	 * in a request object (rw.c): it heads the reads, and an idle
	 * connection holds no request.
	 */
	bool ms_armed;
	u16 ms_group;
	u64 ms_user_data;
	cpumask_var_t cpus;		/* listeners */
	struct list_head sock_node;	/* in mp_chan.listeners, or cached */
	struct list_head ready_node;	/* in mp_chan.ready */
	struct list_head accepts, reads, writes;	/* a file's POLLs: reads */
	u32 pending;			/* requests not completed */
};

struct mp_req {
	struct list_head node;
	struct mp_handle *h;
	u8 opcode;
	u32 op_flags;
	u64 addr;
	u64 user_data;		/* returned in each of its completions */
	u16 buf_group;		/* READ with MEGAPIPE_READ_BUFFER */
	u32 len;		/* bytes; ACCEPT: connections still to take */
	u32 done;		/* bytes written so far */
	u32 accepted;		/* ACCEPT: connections taken so far */
	struct iovec *iov;	/* WRITEV: the kernel's copy */
	u32 nr_iov;
	const struct cred *cred;	/* ACCEPT: its submitter's */
};

/* The kinds of handle (mp_opdef.takes). */
#define MP_H_CONN	0x1
#define MP_H_LISTENER	0x2
#define MP_H_FILE	0x4

static inline u8 mp_handle_kind(const struct mp_handle *h)
{
	return h->is_file ? MP_H_FILE : h->listener ? MP_H_LISTENER : MP_H_CONN;
}

/* The opcode table (opdef.c), as io_uring's. */
struct mp_opdef {
	const char *name;
	bool needs_handle;	/* else MEGAPIPE_NO_HANDLE allowed */
	u8 takes;		/* MP_H_*: the handles it is for */
	bool set_cookie;	/* MEGAPIPE_REQ_F_SET_COOKIE allowed */
	/* check the opcode's fields: the completions it reserves, or -errno */
	int (*prep)(struct mp_chan *ch, const struct megapipe_req *r);
	/*
	 * Optional: run what the handle owes from before the request, once
	 * its completions are reserved and before its cookie is set.
	 */
	void (*pre_submit)(struct mp_handle *h);
	/* take the request: 0 (it is queued or done) or -errno (refused) */
	int (*submit)(struct mp_chan *ch, struct mp_handle *h,
		      const struct megapipe_req *r);
};

const struct mp_opdef *mp_opdef(u8 opcode);

/* cq.c */
int mp_cq_init(struct mp_chan *ch, u32 entries);
void mp_cq_free(struct mp_chan *ch);
bool mp_cq_reserve_slow(struct mp_chan *ch, u32 n);
void mp_cq_unreserve(struct mp_chan *ch, u32 n);
void mp_cq_post(struct mp_chan *ch, u64 cookie, u32 handle, u32 new_handle,
		s32 result, u8 opcode, u16 flags, u64 user_data);
bool mp_cq_pending(struct mp_chan *ch, u32 target);
void mp_cq_reap(struct mp_chan *ch);
u32 mp_cq_avail(struct mp_chan *ch);
int mp_cq_copy_out(struct mp_chan *ch, struct megapipe_cqe __user *ucqe,
		   u32 max, u32 __user *ucount, u32 base);

/*
 * Reserve @n completions: false when the queue has no room for them even
 * after taking back those the owner consumed.
 */
static inline bool mp_cq_reserve(struct mp_chan *ch, u32 n)
{
	if (unlikely(n > ch->cq_entries - ch->cq_owed))
		return mp_cq_reserve_slow(ch, n);
	ch->cq_owed += n;
	return true;
}

/* handle.c */
extern struct kmem_cache *mp_handle_cachep, *mp_req_cachep;
int mp_caches_init(void);
int mp_handles_init(struct mp_chan *ch);
void mp_handles_release(struct mp_chan *ch);
void mp_handle_cache_free(struct mp_chan *ch);
struct mp_handle *mp_handle_lookup(struct mp_chan *ch, u32 id);
struct mp_handle *mp_handle_get(struct mp_chan *ch, u32 id);
struct mp_handle *mp_handle_new(struct mp_chan *ch, struct file *file,
				struct socket *sock, bool listener,
				bool fd_backed, int *err);
int mp_handle_attach(struct mp_handle *h);
void mp_handle_free(struct mp_handle *h);
bool mp_handle_mark(struct mp_handle *h);
bool mp_handle_room(struct mp_chan *ch);
void mp_run_ready(struct mp_chan *ch);
bool mp_listeners_recheck(struct mp_chan *ch);
bool mp_ready_pending(struct mp_chan *ch);
void mp_handle_run(struct mp_handle *h);
long mp_register(struct mp_chan *ch, struct megapipe_register __user *arg);
long mp_unregister(struct mp_chan *ch, struct megapipe_unregister __user *arg);
long mp_export(struct mp_chan *ch, struct megapipe_export __user *arg);
long mp_sockopt(struct mp_chan *ch, struct megapipe_sockopt __user *arg);

/* requests (accept.c, rw.c, disconnect.c, cancel.c) */
struct mp_req *mp_req_alloc(struct mp_handle *h, const struct megapipe_req *r);
void mp_req_free(struct mp_req *req);
int mp_req_cache_fill(struct mp_chan *ch);
void mp_req_done(struct mp_req *req);
void mp_req_cache_free(struct mp_chan *ch);
void mp_req_complete(struct mp_req *req, s32 result, u32 new_handle,
		     u16 flags);
u32 mp_handle_cancel(struct mp_handle *h, u32 ops, bool post);
void mp_handle_cancel_all(struct mp_handle *h, bool post);

int mp_accept_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_accept_submit(struct mp_chan *ch, struct mp_handle *h,
		     const struct megapipe_req *r);
void mp_accept_run(struct mp_handle *h);

int mp_rw_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_read_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_writev_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_read_submit(struct mp_chan *ch, struct mp_handle *h,
		   const struct megapipe_req *r);
int mp_write_submit(struct mp_chan *ch, struct mp_handle *h,
		    const struct megapipe_req *r);
void mp_read_run(struct mp_handle *h);
u32 mp_read_ms_cancel(struct mp_handle *h, u32 ops, bool post);
bool mp_write_ready(struct mp_handle *h);
bool mp_write_run(struct mp_handle *h);

int mp_disconnect_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_disconnect_submit(struct mp_chan *ch, struct mp_handle *h,
			 const struct megapipe_req *r);
void mp_disconnect_run(struct mp_handle *h, struct mp_req *req);

int mp_connect_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_connect_submit(struct mp_chan *ch, struct mp_handle *h,
		      const struct megapipe_req *r);
void mp_connect_run(struct mp_handle *h);
void mp_connect_finish(struct mp_handle *h, int result);
u32 mp_connect_cancel_all(struct mp_chan *ch);

int mp_cancel_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_cancel_submit(struct mp_chan *ch, struct mp_handle *h,
		     const struct megapipe_req *r);

/* poll.c */
bool mp_file_allowed(struct file *file, int *err);
int mp_file_attach(struct mp_handle *h);
void mp_file_detach(struct mp_handle *h);
int mp_poll_prep(struct mp_chan *ch, const struct megapipe_req *r);
int mp_poll_submit(struct mp_chan *ch, struct mp_handle *h,
		   const struct megapipe_req *r);
void mp_poll_run(struct mp_handle *h);
void mp_poll_flush(struct mp_handle *h);

/* main.c */
#include <linux/megapipe.h>	/* megapipe_is_channel() */

/* kbuf.c */
struct mp_bufring;
long mp_buffers(struct mp_chan *ch, struct megapipe_buffers __user *arg);
int mp_buf_take(struct mp_chan *ch, u16 group, struct megapipe_buf *b);
void mp_buf_put_back(struct mp_chan *ch, u16 group);
void mp_bufs_free(struct mp_chan *ch);

/* ring.c */
struct vm_area_struct;
int mp_ring_init(struct mp_chan *ch, struct megapipe_setup *s);
void mp_ring_free(struct mp_chan *ch);
int mp_ring_sq_ready(struct mp_chan *ch);
void mp_ring_sq_take(struct mp_chan *ch, struct megapipe_req *r);
void mp_ring_sq_done(struct mp_chan *ch);
int mp_ring_mmap(struct mp_chan *ch, struct vm_area_struct *vma);

/* lwsocket.c */
struct socket *mp_lw_accept(struct mp_chan *ch, struct socket *lsock);
struct socket *mp_lw_create(struct mp_chan *ch, int family);
int mp_lw_connect(struct socket *sock, struct sockaddr_storage *addr, int len);
struct file *mp_lw_file(struct socket *sock, bool nonblock);
void mp_lw_release(struct socket *sock);
void mp_lw_exported(struct socket *sock);

#endif /* _NET_MEGAPIPE_MEGAPIPE_H */
