// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: MEGAPIPE_OP_DISCONNECT.
 *
 * The handle is invalid from submission on.  The request waits behind the
 * handle's writes; then the pending reads complete with -ECANCELED, the
 * connection is shut down and released (a lightweight socket is
 * released: TCP finishes the close; a registered socket is shut down and
 * the channel drops its file reference, the fd staying the caller's),
 * and the DISCONNECT completes last.
 */
#include <linux/net.h>
#include <net/sock.h>

#include "megapipe.h"

int mp_disconnect_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if (r->addr || r->len || r->op_flags)
		return -EINVAL;
	return 1;
}

/*
 * Release the handle, its writes done: its other requests complete
 * (-ECANCELED), then the DISCONNECT, whose completion carries
 * @user_data.  @h is freed.
 */
static void mp_disconnect_now(struct mp_handle *h, u64 user_data)
{
	mp_handle_cancel(h, MEGAPIPE_CANCEL_ALL, true);
	if (h->fd_backed)
		kernel_sock_shutdown(h->sk->sk_socket, SHUT_RDWR);
	mp_cq_post(h->ch, h->cookie, h->id, MEGAPIPE_NO_HANDLE, 0,
		   MEGAPIPE_OP_DISCONNECT, 0, user_data);
	mp_handle_free(h);
}

/*
 * A DISCONNECT with no write queued before it runs at once, without a
 * request object; one behind writes is queued and runs when they are
 * done (mp_write_run()).
 */
int mp_disconnect_submit(struct mp_chan *ch, struct mp_handle *h,
			 const struct megapipe_req *r)
{
	struct mp_req *req;

	if (list_empty(&h->writes)) {
		mp_disconnect_now(h, r->user_data);
		return 0;
	}
	req = mp_req_alloc(h, r);
	if (!req)
		return -ENOMEM;
	list_add_tail(&req->node, &h->writes);
	h->pending++;
	h->closing = true;
	return 0;
}

/* The queued DISCONNECT @req heads the handle's writes.  @h is freed. */
void mp_disconnect_run(struct mp_handle *h, struct mp_req *req)
{
	u64 user_data = req->user_data;

	/* its request first, so that the cancel leaves none behind */
	mp_req_done(req);
	mp_disconnect_now(h, user_data);
}
