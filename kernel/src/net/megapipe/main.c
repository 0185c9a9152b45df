// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: the /dev/megapipe misc device and a channel's life.
 *
 * Who may open it: kernel.megapipe_disabled (0 everyone, 1 CAP_SYS_ADMIN
 * or the group kernel.megapipe_group, 2 nobody), as io_uring_disabled and
 * io_uring_group do for io_uring.
 *
 * open() creates a channel owned by the caller's address space and fd
 * table: every ioctl from another process, or from a thread with another
 * fd table (unshare(CLONE_FILES)), fails with EPERM.  A request that
 * makes a socket runs with the credentials of the thread that submitted
 * it, captured with it when another thread may run it (ACCEPT), as
 * io_uring's requests do: the sockets a channel makes are its
 * submitter's, and the LSM sees the submitter, sandboxed since the open
 * or not.  A READ, WRITE or DISCONNECT that waits for its socket runs in
 * the thread of the owner whose SUBMIT finds it ready, as a read(2) or
 * write(2) on a shared fd runs in whichever thread calls it.  MEGAPIPE_IOC_SETUP
 * sizes it once; MEGAPIPE_IOC_SUBMIT takes requests, runs what is ready
 * and copies completions out, waiting for some if asked to.  The last
 * close cancels every request and releases every socket, also when the
 * owner dies with requests outstanding.  See include/uapi/linux/megapipe.h
 * and Documentation/userspace-api/ioctl/ioctl-number.rst ('J').
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/init.h>
#include <linux/miscdevice.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <net/sock.h>

#include "megapipe.h"

/* kernel.megapipe_disabled: 0 everyone, 1 privileged or the group, 2 nobody */
static int mp_disabled = 1;
/* kernel.megapipe_group: the group of 1, -1 none */
static int mp_group = -1;

static struct ctl_table mp_sysctls[] = {
	{
		.procname	= "megapipe_disabled",
		.data		= &mp_disabled,
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= proc_dointvec_minmax,
		.extra1		= SYSCTL_ZERO,
		.extra2		= SYSCTL_TWO,
	},
	{
		.procname	= "megapipe_group",
		.data		= &mp_group,
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= proc_dointvec,
	},
};

static bool mp_allowed(void)
{
	int disabled = READ_ONCE(mp_disabled);
	kgid_t group;

	if (disabled == 0)
		return true;
	if (disabled == 2)
		return false;
	group = make_kgid(&init_user_ns, READ_ONCE(mp_group));
	return (gid_valid(group) && in_group_p(group)) ||
	       capable(CAP_SYS_ADMIN);
}

static int mp_open(struct inode *inode, struct file *file)
{
	struct mp_chan *ch;

	if (!mp_allowed())
		return -EPERM;
	ch = kzalloc(sizeof(*ch), GFP_KERNEL_ACCOUNT);
	if (!ch)
		return -ENOMEM;
	mutex_init(&ch->lock);
	spin_lock_init(&ch->ready_lock);
	INIT_LIST_HEAD(&ch->ready);
	INIT_LIST_HEAD(&ch->req_cache);
	INIT_LIST_HEAD(&ch->handle_cache);
	init_waitqueue_head(&ch->wait);
	init_waitqueue_head(&ch->poll_wait);
	INIT_LIST_HEAD(&ch->listeners);
	mp_handles_init(ch);
	ch->mm = current->mm;
	mmgrab(ch->mm);
	/* no reference: a table holding the channel must not be held by it */
	ch->files = current->files;
	file->private_data = ch;
	return nonseekable_open(inode, file);
}

static int mp_release(struct inode *inode, struct file *file)
{
	struct mp_chan *ch = file->private_data;

	mutex_lock(&ch->lock);
	mp_handles_release(ch);
	mp_bufs_free(ch);
	mp_req_cache_free(ch);
	mp_handle_cache_free(ch);
	mp_cq_free(ch);
	mutex_unlock(&ch->lock);
	mmdrop(ch->mm);
	mutex_destroy(&ch->lock);
	kfree(ch);
	return 0;
}

static long mp_info(struct megapipe_info __user *arg)
{
	struct megapipe_info info;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.flags)
		return -EINVAL;
	memset(&info, 0, sizeof(info));
	info.abi_version = MEGAPIPE_ABI_VERSION;
	info.features = MP_FEATURES;
	info.max_handles = MP_MAX_HANDLES;
	info.max_batch = MP_MAX_BATCH;
	info.max_cq_entries = MP_MAX_CQ_ENTRIES;
	info.max_iov = MP_MAX_IOV;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long mp_setup(struct mp_chan *ch, struct megapipe_setup __user *arg)
{
	struct megapipe_setup s;
	int err;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if (ch->set_up)
		return -EBUSY;
	if ((s.flags & ~MEGAPIPE_SETUP_RING) || s.resv0 || s.resv ||
	    s.sq_ring_size || s.cq_ring_size ||
	    !s.cq_entries || s.cq_entries > MP_MAX_CQ_ENTRIES)
		return -EINVAL;
	if (s.flags & MEGAPIPE_SETUP_RING) {
		if (!s.sq_entries || s.sq_entries > MEGAPIPE_MAX_SQ_ENTRIES)
			return -EINVAL;
		err = mp_ring_init(ch, &s);
	} else {
		if (s.sq_entries)
			return -EINVAL;
		err = mp_cq_init(ch, s.cq_entries);
	}
	if (err)
		return err;
	if (copy_to_user(arg, &s, sizeof(s))) {
		mp_cq_free(ch);
		ch->ring = false;
		return -EFAULT;
	}
	/* the rings are set before mmap() may see set_up */
	smp_store_release(&ch->set_up, true);
	return 0;
}

static bool mp_req_resv_clear(const struct megapipe_req *r)
{
	return !r->resv0 && !r->resv1 && !r->resv2 && !r->resv[0] &&
	       !r->resv[1] &&
	       (!r->buf_group || r->opcode == MEGAPIPE_OP_READ);
}

/* Check and take one request: 0, or the -errno it is refused with. */
static int mp_submit_one(struct mp_chan *ch, const struct megapipe_req *r)
{
	const struct mp_opdef *def = mp_opdef(r->opcode);
	struct mp_handle *h = NULL;
	bool set_cookie;
	u64 old_cookie = 0;
	int err, need;

	if (!def || !mp_req_resv_clear(r))
		return -EINVAL;
	if (def->set_cookie) {
		if (r->flags & ~MEGAPIPE_REQ_F_SET_COOKIE)
			return -EINVAL;
		if (r->cookie && !(r->flags & MEGAPIPE_REQ_F_SET_COOKIE))
			return -EINVAL;
	} else if (r->flags) {
		return -EINVAL;
	}
	need = def->prep(ch, r);
	if (need < 0)
		return need;
	if (def->needs_handle || r->handle != MEGAPIPE_NO_HANDLE) {
		/* a CANCEL also reaches the writes a DISCONNECT waits for */
		if (r->opcode == MEGAPIPE_OP_CANCEL)
			h = mp_handle_lookup(ch, r->handle);
		else
			h = mp_handle_get(ch, r->handle);
		if (!h)
			return -EBADF;
		if (def->needs_handle && !(def->takes & mp_handle_kind(h)))
			return -EINVAL;
	}
	if (!mp_cq_reserve(ch, need))
		return -EBUSY;
	if (def->pre_submit)
		def->pre_submit(h);
	/* set before submit() may complete the request, kept if it is taken */
	set_cookie = h && (r->flags & MEGAPIPE_REQ_F_SET_COOKIE);
	if (set_cookie) {
		old_cookie = h->cookie;
		h->cookie = r->cookie;
	}
	/* the handle may be gone once submit() returns 0 (DISCONNECT, CANCEL) */
	err = def->submit(ch, h, r);
	if (err) {
		if (set_cookie)
			h->cookie = old_cookie;
		mp_cq_unreserve(ch, need);
	}
	return err;
}

/*
 * Something to do: a ready handle, or completions another thread's
 * SUBMIT posted and did not take (with rings: @target of them unconsumed).
 */
static bool mp_wake_cond(struct mp_chan *ch, u32 target)
{
	return mp_ready_pending(ch) || mp_cq_pending(ch, target);
}

/*
 * Wait for something to do, or until @deadline; called with the channel
 * locked, returns with it locked again: 0, -ETIMEDOUT, -ERESTARTSYS (a
 * signal), or -EINTR (killed while taking the lock back: not held).
 *
 * The channel is on its wait queue, and so idle for the listeners'
 * wakers (mp_listener_wake()), before it looks at its listeners a last
 * time (mp_listeners_recheck()): a connection queued before that is seen
 * there, one queued after wakes it.  The deadline is checked here, not
 * only by the timer: a handle marked ready again and again (a zero
 * window's probes, say) would otherwise keep the wait returning 0 and
 * the caller looping past its timeout.
 */
static int mp_wait(struct mp_chan *ch, ktime_t deadline, bool forever,
		   u32 target)
{
	DEFINE_WAIT(wait);
	int ret = 0;

	prepare_to_wait(&ch->wait, &wait, TASK_INTERRUPTIBLE);
	mp_listeners_recheck(ch);
	mutex_unlock(&ch->lock);
	for (;;) {
		if (mp_wake_cond(ch, target))
			break;
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		if (forever) {
			schedule();
		} else if (ktime_compare(ktime_get(), deadline) >= 0 ||
			   !schedule_hrtimeout_range(&deadline,
						     current->timer_slack_ns,
						     HRTIMER_MODE_ABS)) {
			ret = -ETIMEDOUT;
		}
		/*
		 * Woken (maybe for what a sibling thread took) or timed out:
		 * back to the caller, which runs what is ready and waits
		 * again through here, its listeners looked at again.
		 */
		break;
	}
	finish_wait(&ch->wait, &wait);
	/* killable: a sibling may hold the lock across a slow fault */
	if (mutex_lock_killable(&ch->lock))
		return -EINTR;
	return ret;
}

/*
 * Read one request word by word in one user-access section (cheaper for
 * 64 bytes than copy_from_user()).  0 or -EFAULT.
 */
static int mp_get_req(struct megapipe_req *r,
		      const struct megapipe_req __user *ureq)
{
	const u64 __user *uw = (const u64 __user *)ureq;
	u64 *kw = (u64 *)r;
	unsigned int w;

	BUILD_BUG_ON(sizeof(*r) % sizeof(u64));
	if (!user_access_begin(ureq, sizeof(*ureq)))
		return -EFAULT;
	for (w = 0; w < sizeof(*r) / sizeof(u64); w++)
		unsafe_get_user(kw[w], uw + w, efault);
	user_access_end();
	return 0;
efault:
	user_access_end();
	return -EFAULT;
}

/*
 * SUBMIT of a ring channel: take up to @nr_reqs requests from the
 * submission ring, run what is ready, and wait until @min_complete
 * completions are in the completion ring unconsumed (or the timeout, or
 * a signal).  Nothing is copied but the submit structure's out fields.
 */
static long mp_submit_ring(struct mp_chan *ch, struct megapipe_submit *s,
			   struct megapipe_submit __user *arg)
{
	ktime_t deadline = 0;
	/* every byte is read in before use: no stack initialisation */
	struct megapipe_req r __uninitialized;
	int err = 0, ret, n;

	if (s->reqs || s->cqes || s->max_cqes)
		return -EINVAL;
	if (s->nr_reqs > MP_MAX_BATCH)
		return -E2BIG;
	if (s->timeout_ns > 0)
		deadline = ktime_add_safe(ktime_get(), ns_to_ktime(s->timeout_ns));
	s->submitted = 0;
	s->completed = 0;
	s->error = 0;
	if (put_user(0, &arg->submitted) || put_user(0, &arg->error) ||
	    put_user(0, &arg->completed))
		return -EFAULT;
	if (mutex_lock_interruptible(&ch->lock))
		return -EINTR;
	if (!ch->set_up || !ch->ring) {
		mutex_unlock(&ch->lock);
		return ch->set_up ? -EINVAL : -EBADFD;
	}
	if (s->min_complete > ch->cq_entries) {
		mutex_unlock(&ch->lock);
		return -EINVAL;
	}
	n = mp_ring_sq_ready(ch);
	if (n < 0) {
		mutex_unlock(&ch->lock);
		return n;
	}
	/* room for the new requests' completions, from those consumed */
	mp_cq_reap(ch);
	for (; s->submitted < min_t(u32, n, s->nr_reqs); s->submitted++) {
		mp_ring_sq_take(ch, &r);
		err = mp_submit_one(ch, &r);
		if (err)
			break;
	}
	mp_ring_sq_done(ch);
	s->error = err;
	/* reported before waiting: a fault later loses no request */
	if (put_user(s->submitted, &arg->submitted) ||
	    put_user(s->error, &arg->error)) {
		mutex_unlock(&ch->lock);
		return -EFAULT;
	}
	for (;;) {
		mp_run_ready(ch);
		if (mp_cq_avail(ch) >= s->min_complete || err || !s->timeout_ns)
			break;
		ret = mp_wait(ch, deadline, s->timeout_ns < 0, s->min_complete);
		if (ret == -EINTR)
			return s->submitted ? 0 : -EINTR;
		if (ret == -ERESTARTSYS) {
			mp_run_ready(ch);
			if (!s->submitted) {
				mutex_unlock(&ch->lock);
				return -EINTR;
			}
			break;
		}
		if (ret == -ETIMEDOUT) {
			mp_run_ready(ch);
			break;
		}
	}
	s->completed = mp_cq_avail(ch);
	mutex_unlock(&ch->lock);
	return put_user(s->completed, &arg->completed) ? -EFAULT : 0;
}

static long mp_submit(struct mp_chan *ch, struct megapipe_submit __user *arg)
{
	struct megapipe_cqe __user *ucqe;
	struct megapipe_req __user *ureq;
	struct megapipe_submit s;
	/* every byte is read in before use: no stack initialisation */
	struct megapipe_req r __uninitialized;
	ktime_t deadline = 0;
	int err = 0, ret;
	u32 i;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if ((s.flags & ~MEGAPIPE_SUBMIT_RING) || s.resv[0] || s.resv[1] ||
	    s.resv[2])
		return -EINVAL;
	if (s.flags & MEGAPIPE_SUBMIT_RING)
		return mp_submit_ring(ch, &s, arg);
	if (s.min_complete > s.max_cqes)
		return -EINVAL;
	if (s.nr_reqs > MP_MAX_BATCH || s.max_cqes > MP_MAX_BATCH)
		return -E2BIG;
	ureq = u64_to_user_ptr(s.reqs);
	ucqe = u64_to_user_ptr(s.cqes);
	if (!access_ok(ureq, (size_t)s.nr_reqs * sizeof(r)) ||
	    !access_ok(ucqe, (size_t)s.max_cqes * sizeof(*ucqe)))
		return -EFAULT;
	if (s.timeout_ns > 0)
		deadline = ktime_add_safe(ktime_get(), ns_to_ktime(s.timeout_ns));

	s.submitted = 0;
	s.completed = 0;
	s.error = 0;
	/* writable before any request is taken or completion consumed */
	if (put_user(s.submitted, &arg->submitted) ||
	    put_user(s.completed, &arg->completed) ||
	    put_user(s.error, &arg->error))
		return -EFAULT;
	if (mutex_lock_interruptible(&ch->lock))
		return -EINTR;
	if (!ch->set_up || ch->ring) {
		mutex_unlock(&ch->lock);
		return ch->set_up ? -EINVAL : -EBADFD;
	}
	for (i = 0; i < s.nr_reqs; i++) {
		if (mp_get_req(&r, &ureq[i])) {
			/* an unreadable array fails the call if nothing was taken */
			if (!i) {
				mutex_unlock(&ch->lock);
				return -EFAULT;
			}
			err = -EFAULT;
			break;
		}
		err = mp_submit_one(ch, &r);
		if (err)
			break;
		s.submitted++;
	}
	s.error = err;
	/*
	 * Reported before any completion is consumed, and each completion
	 * count before its completions are (mp_cq_copy_out()): a fault (only
	 * another thread unmapping @arg during the call) loses no completion.
	 */
	if (s.submitted || s.error) {
		if (put_user(s.submitted, &arg->submitted) ||
		    put_user(s.error, &arg->error)) {
			mutex_unlock(&ch->lock);
			return -EFAULT;
		}
	}
	for (;;) {
		mp_run_ready(ch);
		ret = mp_cq_copy_out(ch, ucqe + s.completed,
				     s.max_cqes - s.completed,
				     &arg->completed, s.completed);
		if (ret < 0) {
			if (!s.submitted && !s.completed) {
				mutex_unlock(&ch->lock);
				return ret;
			}
			break;
		}
		s.completed += ret;
		if (s.completed >= s.min_complete || s.error || !s.timeout_ns)
			break;
		ret = mp_wait(ch, deadline, s.timeout_ns < 0, 0);
		if (ret == -EINTR)
			return s.submitted || s.completed ? 0 : -EINTR;
		if (ret == -ERESTARTSYS) {
			/*
			 * Run what is ready (a connection a waker handed this
			 * channel as an idle one, say); its completions are
			 * copied out next time.
			 */
			mp_run_ready(ch);
			if (!s.submitted && !s.completed) {
				mutex_unlock(&ch->lock);
				return -EINTR;
			}
			break;
		}
		if (ret == -ETIMEDOUT) {
			mp_run_ready(ch);
			ret = mp_cq_copy_out(ch, ucqe + s.completed,
					     s.max_cqes - s.completed,
					     &arg->completed, s.completed);
			if (ret > 0)
				s.completed += ret;
			break;
		}
	}
	mutex_unlock(&ch->lock);
	return 0;
}

static long mp_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct mp_chan *ch = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	if (current->mm != ch->mm || current->files != ch->files)
		return -EPERM;
	switch (cmd) {
	case MEGAPIPE_IOC_INFO:
		return mp_info(uarg);
	case MEGAPIPE_IOC_SUBMIT:
	case MEGAPIPE_IOC_SETUP:
	case MEGAPIPE_IOC_REGISTER:
	case MEGAPIPE_IOC_UNREGISTER:
	case MEGAPIPE_IOC_EXPORT:
	case MEGAPIPE_IOC_BUFFERS:
	case MEGAPIPE_IOC_SOCKOPT:
		break;
	default:
		return -ENOTTY;
	}
	if (cmd == MEGAPIPE_IOC_SUBMIT)
		return mp_submit(ch, uarg);
	if (mutex_lock_interruptible(&ch->lock))
		return -EINTR;
	if (cmd == MEGAPIPE_IOC_SETUP)
		ret = mp_setup(ch, uarg);
	else if (!ch->set_up)
		ret = -EBADFD;
	else if (cmd == MEGAPIPE_IOC_REGISTER)
		ret = mp_register(ch, uarg);
	else if (cmd == MEGAPIPE_IOC_UNREGISTER)
		ret = mp_unregister(ch, uarg);
	else if (cmd == MEGAPIPE_IOC_BUFFERS)
		ret = mp_buffers(ch, uarg);
	else if (cmd == MEGAPIPE_IOC_SOCKOPT)
		ret = mp_sockopt(ch, uarg);
	else
		ret = mp_export(ch, uarg);
	mutex_unlock(&ch->lock);
	return ret;
}

/*
 * poll()/epoll on the channel: readable when a SUBMIT would find work (a
 * ready handle or posted completions).  Pollers wait on a queue of their
 * own: an epoll set holds its entry there whether or not its thread
 * waits, so it cannot say the channel is idle (ch->wait, SUBMIT's, does).
 * A listener's new connection marks a polled channel and wakes its
 * pollers without taking the exclusive wakeup (mp_listener_wake()).  A
 * connection queued before the entry was there is looked for here, as
 * SUBMIT's wait looks for it (mp_listeners_recheck()); not behind a
 * SUBMIT in progress, which does that itself before it sleeps.
 */
static __poll_t mp_poll(struct file *file, poll_table *pt)
{
	struct mp_chan *ch = file->private_data;

	poll_wait(file, &ch->poll_wait, pt);
	/* pairs with mp_setup()'s store-release: the queues are there */
	if (!smp_load_acquire(&ch->set_up))
		return 0;
	if (!mp_wake_cond(ch, 1) && mutex_trylock(&ch->lock)) {
		mp_listeners_recheck(ch);
		mutex_unlock(&ch->lock);
	}
	return mp_wake_cond(ch, 1) ? EPOLLIN | EPOLLRDNORM : 0;
}

/*
 * The rings of a ring channel, by its owner.  Without the channel lock
 * (mmap_lock is held here, and SUBMIT takes mmap_lock under the channel
 * lock when it faults): the rings are set once, before set_up.
 */
static int mp_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mp_chan *ch = file->private_data;

	if (current->mm != ch->mm)
		return -EPERM;
	/* pairs with mp_setup()'s store-release: the rings are there */
	if (!smp_load_acquire(&ch->set_up) || !ch->ring)
		return -EINVAL;
	return mp_ring_mmap(ch, vma);
}

/*
 * /proc/PID/fdinfo of the channel: its handles and the inodes of their
 * sockets (as in /proc/net/tcp and ss -e), so that a socket without a
 * file can be traced to the process holding the channel.
 */
static void mp_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct mp_chan *ch = file->private_data;
	struct mp_handle *h;
	u32 i;

	/* not behind a SUBMIT stalled on a user fault */
	if (!mutex_trylock(&ch->lock)) {
		seq_puts(m, "handles:\tbusy\n");
		return;
	}
	seq_printf(m, "handles:\t%u\n", ch->nlive);
	for (i = 0; i < ch->nslots; i++) {
		h = ch->slots[i].h;
		if (h && h->is_file) {
			seq_printf(m, "handle:\t%#x\tfile:\t%pD\n", h->id,
				   h->file);
			continue;
		}
		if (!h || !h->sk->sk_socket)
			continue;
		seq_printf(m, "handle:\t%#x\tino:\t%lu\t%s\n", h->id,
			   SOCK_INODE(h->sk->sk_socket)->i_ino,
			   h->listener ? "listener" :
			   h->fd_backed ? "connection" : "lightweight");
	}
	mutex_unlock(&ch->lock);
}

static const struct file_operations mp_fops;

/* Is @file a channel?  (A channel must not hold one: poll.c, scm.c.) */
bool megapipe_is_channel(const struct file *file)
{
	return file->f_op == &mp_fops;
}

static const struct file_operations mp_fops = {
	.owner		= THIS_MODULE,
	.open		= mp_open,
	.release	= mp_release,
	.unlocked_ioctl	= mp_ioctl,
	.poll		= mp_poll,
	.mmap		= mp_mmap,
	.compat_ioctl	= compat_ptr_ioctl,
	.show_fdinfo	= mp_show_fdinfo,
};

static struct miscdevice mp_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "megapipe",
	.fops		= &mp_fops,
	.mode		= 0666,
};

static int __init mp_init(void)
{
	/* The ABI's layouts are fixed (include/uapi/linux/megapipe.h). */
	BUILD_BUG_ON(sizeof(struct megapipe_info) != 64);
	BUILD_BUG_ON(sizeof(struct megapipe_setup) != 40);
	BUILD_BUG_ON(sizeof(struct megapipe_register) != 48);
	BUILD_BUG_ON(sizeof(struct megapipe_unregister) != 16);
	BUILD_BUG_ON(sizeof(struct megapipe_export) != 16);
	BUILD_BUG_ON(sizeof(struct megapipe_req) != 64);
	BUILD_BUG_ON(sizeof(struct megapipe_cqe) != 32);
	BUILD_BUG_ON(sizeof(struct megapipe_submit) != 64);
	BUILD_BUG_ON(sizeof(struct megapipe_buffers) != 40);
	BUILD_BUG_ON(sizeof(struct megapipe_buf) != 16);
	BUILD_BUG_ON(sizeof(struct megapipe_sockopt) != 32);
	BUILD_BUG_ON(MP_MAX_HANDLES > (1U << MEGAPIPE_HANDLE_INDEX_BITS));
	BUILD_BUG_ON(MEGAPIPE_OP_LAST >= 32);

	if (mp_caches_init())
		return -ENOMEM;
	register_sysctl_init("kernel", mp_sysctls);
	return misc_register(&mp_misc);
}
device_initcall(mp_init);
