// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: MEGAPIPE_OP_CONNECT.
 *
 * A CONNECT creates a lightweight TCP socket in the caller's netns, hooks
 * it as a handle that no request can name yet (h->connecting: EBADF) and
 * starts a non-blocking connect.  The socket's state_change marks the
 * handle ready; run in the owner's context, the handle completes the
 * CONNECT with 0 and itself as @new_handle once established, or with the
 * socket's error (and goes away) once it failed.  The completion's
 * @handle is MEGAPIPE_NO_HANDLE and its cookie the CONNECT's, which is
 * also the new handle's.  CANCEL of MEGAPIPE_NO_HANDLE cancels the
 * channel's pending CONNECTs.
 */
#include <linux/audit.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <net/sock.h>
#include <net/tcp_states.h>

#include "megapipe.h"

int mp_connect_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if (r->op_flags || r->handle != MEGAPIPE_NO_HANDLE)
		return -EINVAL;
	if (r->len != sizeof(struct sockaddr_in) &&
	    r->len != sizeof(struct sockaddr_in6))
		return -EINVAL;
	if (!r->addr)
		return -EFAULT;
	return 1;
}

/* Post the CONNECT's completion and forget the request. */
static void mp_connect_complete(struct mp_handle *h, struct mp_req *req,
				int result)
{
	mp_cq_post(h->ch, h->cookie, MEGAPIPE_NO_HANDLE,
		   result ? MEGAPIPE_NO_HANDLE : h->id, result,
		   MEGAPIPE_OP_CONNECT, 0, req->user_data);
	list_del(&req->node);
	h->pending--;
	mp_req_free(req);
}

/*
 * End the handle's CONNECT with @result: a connected handle becomes a
 * handle like any other, a failed one goes away (@h freed).
 */
void mp_connect_finish(struct mp_handle *h, int result)
{
	struct mp_req *req = list_first_entry(&h->writes, struct mp_req, node);

	mp_connect_complete(h, req, result);
	if (!result) {
		h->connecting = false;
		return;
	}
	mp_handle_free(h);
}

/* The socket's state changed (or the submit call): see where it is. */
void mp_connect_run(struct mp_handle *h)
{
	struct sock *sk = h->sk;
	int err;

	if ((1 << READ_ONCE(sk->sk_state)) & (TCPF_SYN_SENT | TCPF_SYN_RECV))
		return;
	err = sock_error(sk);
	if (!err && !((1 << READ_ONCE(sk->sk_state)) &
		      (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT)))
		err = -ECONNABORTED;
	mp_connect_finish(h, err);
}

int mp_connect_submit(struct mp_chan *ch, struct mp_handle *unused,
		      const struct megapipe_req *r)
{
	struct sockaddr_storage addr;
	struct mp_handle *h;
	struct socket *sock;
	struct mp_req *req;
	int err;

	memset(&addr, 0, sizeof(addr));
	if (copy_from_user(&addr, u64_to_user_ptr(r->addr), r->len))
		return -EFAULT;
	/* the length is connect()'s to check: its error is the completion's */
	if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	/* the SOCKADDR record connect(2) writes for audit */
	err = audit_sockaddr(r->len, &addr);
	if (err)
		return err;
	sock = mp_lw_create(ch, addr.ss_family);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	h = mp_handle_new(ch, NULL, sock, false, false, &err);
	if (!h) {
		mp_lw_release(sock);
		return err;
	}
	h->connecting = true;
	err = mp_handle_attach(h);
	req = err ? NULL : mp_req_alloc(h, r);
	if (!req) {
		mp_handle_free(h);	/* releases the socket */
		return err ?: -ENOMEM;
	}
	h->cookie = r->cookie;
	list_add_tail(&req->node, &h->writes);
	h->pending++;
	/* from here on the request is taken: errors come as its completion */
	err = mp_lw_connect(sock, &addr, r->len);
	if (err == -EINPROGRESS)
		mp_connect_run(h);	/* it may have finished already */
	else
		mp_connect_finish(h, err);
	return 0;
}

/* CANCEL of MEGAPIPE_NO_HANDLE: the channel's pending CONNECTs. */
u32 mp_connect_cancel_all(struct mp_chan *ch)
{
	u32 i, n = 0;

	for (i = 0; i < ch->nslots; i++) {
		struct mp_handle *h = ch->slots[i].h;

		if (h && h->connecting) {
			mp_connect_finish(h, -ECANCELED);
			n++;
		}
		cond_resched();
	}
	return n;
}
