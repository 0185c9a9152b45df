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

int mp_disconnect_prep(struct mp_chan *ch, const struct megapipe_req *r,
		       u32 *need)
{
	if (r->addr || r->len || r->op_flags)
		return -EINVAL;
	*need = 1;
	return 0;
}

int mp_disconnect_submit(struct mp_chan *ch, struct mp_handle *h,
			 const struct megapipe_req *r)
{
	struct mp_req *req = mp_req_alloc(h, r);
	bool first = list_empty(&h->writes);

	if (!req)
		return -ENOMEM;
	list_add_tail(&req->node, &h->writes);
	h->pending++;
	h->closing = true;
	/* behind writes, it runs when they are done (mp_write_submit()) */
	if (first)
		mp_write_run(h);
	return 0;
}

/* The handle's writes are done: release it.  @h is freed. */
void mp_disconnect_run(struct mp_handle *h, struct mp_req *req)
{
	mp_handle_cancel(h, MEGAPIPE_CANCEL_ALL, true);
	if (h->fd_backed)
		kernel_sock_shutdown(h->sk->sk_socket, SHUT_RDWR);
	mp_req_complete(req, 0, MEGAPIPE_NO_HANDLE, 0);
	mp_handle_free(h);
}
