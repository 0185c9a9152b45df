// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: MEGAPIPE_OP_ACCEPT.
 *
 * An ACCEPT of a listener handle takes up to @len connections, one
 * completion each; the ACCEPTs of a listener are served in submission
 * order.  Connections are taken as accept(2) takes them (a per-core
 * listener prefers the current CPU's clone) and become handles of the
 * channel: without MEGAPIPE_ACCEPT_FD lightweight sockets (no file, no
 * fd: lwsocket.c); with it, regular sockets with an fd each.
 */
#include <linux/cred.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/net.h>
#include <linux/audit.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <net/sock.h>

#include "megapipe.h"

int mp_accept_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if ((r->op_flags & ~(MEGAPIPE_ACCEPT_FD | MEGAPIPE_ACCEPT_NONBLOCK)) ||
	    ((r->op_flags & MEGAPIPE_ACCEPT_NONBLOCK) &&
	     !(r->op_flags & MEGAPIPE_ACCEPT_FD)) ||
	    !r->len || r->len > ch->cq_entries)
		return -EINVAL;
	/* the peer addresses: one struct sockaddr_storage per connection */
	if (r->addr && !access_ok(u64_to_user_ptr(r->addr),
				  (size_t)r->len * sizeof(struct sockaddr_storage)))
		return -EFAULT;
	return r->len;
}

/*
 * The peer address of @sock into the ACCEPT's slot for its connection
 * number @k, as accept(2) gives it (audited as accept(2) audits it).
 */
static int mp_accept_addr(struct mp_req *req, struct socket *sock, u32 k)
{
	struct sockaddr_storage ss;
	void __user *slot;
	int len, err;

	len = READ_ONCE(sock->ops)->getname(sock, (struct sockaddr *)&ss, 1);
	if (len < 0)
		return len;
	err = audit_sockaddr(len, &ss);
	if (err)
		return err;
	slot = u64_to_user_ptr(req->addr + (u64)k * sizeof(ss));
	return copy_to_user(slot, &ss, len) ? -EFAULT : 0;
}

int mp_accept_submit(struct mp_chan *ch, struct mp_handle *h,
		     const struct megapipe_req *r)
{
	struct mp_req *req = mp_req_alloc(h, r);

	if (!req)
		return -ENOMEM;
	/* it may run in another thread's SUBMIT: as its submitter */
	req->cred = get_current_cred();
	list_add_tail(&req->node, &h->accepts);
	h->pending++;
	WRITE_ONCE(h->naccepts, h->naccepts + 1);
	/*
	 * Pairs with the barrier of the waker's wq_has_sleeper(): either it
	 * sees the ACCEPT (and marks the handle) or this sees the child.
	 */
	smp_mb();
	mp_accept_run(h);
	return 0;
}

/*
 * Take one connection for @req: 0 (completion posted), -EAGAIN (none
 * waiting) or -errno (the request ends with it).
 */
static int mp_accept_one(struct mp_handle *h, struct mp_req *req)
{
	bool want_fd = req->op_flags & MEGAPIPE_ACCEPT_FD;
	struct mp_chan *ch = h->ch;
	struct socket *newsock = NULL;
	struct proto_accept_arg arg;
	struct file *newfile = NULL;
	struct mp_handle *nh;
	int fd = -1, err;
	u16 flags = 0;

	if (!mp_handle_room(ch))
		return -EMFILE;
	if (!want_fd) {
		/* a connection that gave up before it was taken: skip it */
		do {
			newsock = mp_lw_accept(ch, h->sock);
		} while (IS_ERR(newsock) && PTR_ERR(newsock) == -ECONNABORTED);
		if (IS_ERR(newsock))
			return PTR_ERR(newsock);
		goto got_it;
	}
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	do {
		memset(&arg, 0, sizeof(arg));
		arg.flags = O_NONBLOCK;
		newfile = do_accept(h->file, &arg, NULL, NULL,
				    req->op_flags & MEGAPIPE_ACCEPT_NONBLOCK ?
				    O_NONBLOCK : 0);
	} while (IS_ERR(newfile) && PTR_ERR(newfile) == -ECONNABORTED);
	if (IS_ERR(newfile)) {
		err = PTR_ERR(newfile);
		goto out_fd;
	}
got_it:
	/* as accept(2): an address that cannot be written loses the connection */
	if (req->addr) {
		err = mp_accept_addr(req, newsock ? newsock :
				     sock_from_file(newfile), req->accepted);
		if (err) {
			if (newfile)
				fput(newfile);
			else
				mp_lw_release(newsock);
			goto out_fd;
		}
	}
	nh = mp_handle_new(ch, newfile, newsock, false, want_fd, &err);
	if (!nh) {
		if (newfile)
			fput(newfile);
		else
			mp_lw_release(newsock);
		goto out_fd;
	}
	err = mp_handle_attach(nh);
	if (err) {
		mp_handle_free(nh);
		goto out_fd;
	}
	if (want_fd) {
		get_file(newfile);
		fd_install(fd, newfile);
		flags |= MEGAPIPE_CQE_F_FD;
	}
	req->len--;
	req->accepted++;	/* the next connection's address slot */
	if (req->len)
		flags |= MEGAPIPE_CQE_F_MORE;
	mp_req_complete(req, want_fd ? fd : 0, nh->id, flags);
	return 0;
out_fd:
	if (fd >= 0)
		put_unused_fd(fd);
	return err;
}

/* mp_accept_one() with the credentials of the ACCEPT's submitter. */
static int mp_accept_one_as(struct mp_handle *h, struct mp_req *req)
{
	const struct cred *old;
	int err;

	if (req->cred == current_cred())
		return mp_accept_one(h, req);
	old = override_creds(req->cred);
	err = mp_accept_one(h, req);
	revert_creds(old);
	return err;
}

/* Connections one run accepts at most; the handle is marked for the rest. */
#define MP_ACCEPT_BUDGET	64

void mp_accept_run(struct mp_handle *h)
{
	unsigned int budget = MP_ACCEPT_BUDGET;
	struct mp_req *req;
	int err;

	while ((req = list_first_entry_or_null(&h->accepts, struct mp_req,
					       node))) {
		if (!budget--) {
			mp_handle_mark(h);
			break;
		}
		cond_resched();
		err = mp_accept_one_as(h, req);
		if (err == -EAGAIN)
			break;
		if (err) {
			/* the first error ends the request */
			if (req->len > 1)
				mp_cq_unreserve(h->ch, req->len - 1);
			mp_req_complete(req, err, MEGAPIPE_NO_HANDLE, 0);
		}
	}
}
