// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: the opcode table and what every request shares.
 *
 * A request is checked by its opcode's prep() (fields, and how many
 * completions it reserves) and taken by its submit(), which queues it on
 * its handle (accepts, reads, writes: each list runs in submission order)
 * and tries it at once.  A request completes through mp_req_complete().
 */
#include <linux/cred.h>
#include <linux/nospec.h>
#include <linux/slab.h>

#include "megapipe.h"

static const struct mp_opdef mp_opdefs[MEGAPIPE_OP_LAST + 1] = {
	[MEGAPIPE_OP_ACCEPT] = {
		.name		= "ACCEPT",
		.needs_handle	= true,
		.takes		= MP_H_LISTENER,
		.set_cookie	= true,
		.prep		= mp_accept_prep,
		.submit		= mp_accept_submit,
	},
	[MEGAPIPE_OP_READ] = {
		.name		= "READ",
		.needs_handle	= true,
		.takes		= MP_H_CONN,
		.set_cookie	= true,
		.prep		= mp_read_prep,
		.submit		= mp_read_submit,
	},
	[MEGAPIPE_OP_WRITE] = {
		.name		= "WRITE",
		.needs_handle	= true,
		.takes		= MP_H_CONN,
		.set_cookie	= true,
		.prep		= mp_rw_prep,
		.submit		= mp_write_submit,
	},
	[MEGAPIPE_OP_WRITEV] = {
		.name		= "WRITEV",
		.needs_handle	= true,
		.takes		= MP_H_CONN,
		.set_cookie	= true,
		.prep		= mp_writev_prep,
		.submit		= mp_write_submit,
	},
	[MEGAPIPE_OP_DISCONNECT] = {
		.name		= "DISCONNECT",
		.needs_handle	= true,
		.takes		= MP_H_CONN,
		.set_cookie	= true,
		.prep		= mp_disconnect_prep,
		.submit		= mp_disconnect_submit,
	},
	[MEGAPIPE_OP_CONNECT] = {
		.name		= "CONNECT",
		.prep		= mp_connect_prep,
		.submit		= mp_connect_submit,
	},
	[MEGAPIPE_OP_CANCEL] = {
		.name		= "CANCEL",
		.prep		= mp_cancel_prep,
		.submit		= mp_cancel_submit,
	},
	[MEGAPIPE_OP_POLL] = {
		.name		= "POLL",
		.needs_handle	= true,
		.takes		= MP_H_FILE,
		.set_cookie	= true,
		.prep		= mp_poll_prep,
		.pre_submit	= mp_poll_flush,
		.submit		= mp_poll_submit,
	},
};

/* NULL for an opcode this kernel does not implement. */
const struct mp_opdef *mp_opdef(u8 opcode)
{
	if (opcode > MEGAPIPE_OP_LAST)
		return NULL;
	opcode = array_index_nospec(opcode, MEGAPIPE_OP_LAST + 1);
	if (!mp_opdefs[opcode].prep)
		return NULL;
	return &mp_opdefs[opcode];
}

/*
 * A request of the handle's channel, from the channel's cache of completed
 * ones when it has some: a request costs no slab round trip in the steady
 * state.  Under the channel lock, as is every request's life.
 */
struct mp_req *mp_req_alloc(struct mp_handle *h, const struct megapipe_req *r)
{
	struct mp_chan *ch = h->ch;
	struct mp_req *req;

	req = list_first_entry_or_null(&ch->req_cache, struct mp_req, node);
	if (req) {
		list_del(&req->node);
		ch->nr_req_cache--;
		memset(req, 0, sizeof(*req));
	} else {
		req = kmem_cache_zalloc(mp_req_cachep, GFP_KERNEL_ACCOUNT);
		if (!req)
			return NULL;
	}
	INIT_LIST_HEAD(&req->node);
	req->h = h;
	req->opcode = r->opcode;
	req->op_flags = r->op_flags;
	req->addr = r->addr;
	req->user_data = r->user_data;
	req->buf_group = r->buf_group;
	req->len = r->len;
	return req;
}

/*
 * Make sure the channel has a request in its cache, so that the next
 * mp_req_alloc() cannot fail: 0 or -ENOMEM.  For a WRITE tried before it
 * has a request (rw.c), which must not find itself without one after the
 * socket took part of it.
 */
int mp_req_cache_fill(struct mp_chan *ch)
{
	struct mp_req *req;

	if (!list_empty(&ch->req_cache))
		return 0;
	req = kmem_cache_zalloc(mp_req_cachep, GFP_KERNEL_ACCOUNT);
	if (!req)
		return -ENOMEM;
	list_add(&req->node, &ch->req_cache);
	ch->nr_req_cache++;
	return 0;
}

void mp_req_free(struct mp_req *req)
{
	struct mp_chan *ch = req->h->ch;

	kfree(req->iov);
	if (req->cred)
		put_cred(req->cred);
	if (ch->nr_req_cache < MP_REQ_CACHE) {
		list_add(&req->node, &ch->req_cache);
		ch->nr_req_cache++;
		return;
	}
	kmem_cache_free(mp_req_cachep, req);
}

/* The channel goes away: free its cached requests. */
void mp_req_cache_free(struct mp_chan *ch)
{
	struct mp_req *req, *tmp;

	list_for_each_entry_safe(req, tmp, &ch->req_cache, node)
		kmem_cache_free(mp_req_cachep, req);
	INIT_LIST_HEAD(&ch->req_cache);
	ch->nr_req_cache = 0;
}

/* The request leaves its handle and is freed. */
void mp_req_done(struct mp_req *req)
{
	struct mp_handle *h = req->h;

	list_del(&req->node);
	h->pending--;
	if (req->opcode == MEGAPIPE_OP_ACCEPT)
		WRITE_ONCE(h->naccepts, h->naccepts - 1);
	mp_req_free(req);
}

/*
 * Post the request's completion.  Unless it carries MEGAPIPE_CQE_F_MORE,
 * the request is done: it leaves its handle's list and is freed.
 */
void mp_req_complete(struct mp_req *req, s32 result, u32 new_handle,
		     u16 flags)
{
	struct mp_handle *h = req->h;

	mp_cq_post(h->ch, h->cookie, h->id, new_handle, result, req->opcode,
		   flags, req->user_data);
	if (!(flags & MEGAPIPE_CQE_F_MORE))
		mp_req_done(req);
}

/*
 * Cancel the requests of @list whose opcode is in @ops.  A write that has
 * queued some of its bytes completes with that count; every write behind
 * it is cancelled too, whatever its opcode, as the stream would have a
 * hole (as after a short write, rw.c).
 */
static u32 mp_cancel_list(struct mp_handle *h, struct list_head *list,
			  u32 ops, bool post)
{
	struct mp_req *req, *tmp;
	bool hole = false;
	u32 n = 0;

	list_for_each_entry_safe(req, tmp, list, node) {
		if (req->opcode == MEGAPIPE_OP_DISCONNECT && post)
			continue;
		if (!hole && !(ops & MEGAPIPE_CANCEL_OP(req->opcode)) && post)
			continue;
		n++;
		if (post) {
			/* an ACCEPT gives back the completions it will not post */
			if (req->opcode == MEGAPIPE_OP_ACCEPT && req->len > 1)
				mp_cq_unreserve(h->ch, req->len - 1);
			if (req->done)
				hole = true;
			mp_req_complete(req, req->done ? req->done : -ECANCELED,
					MEGAPIPE_NO_HANDLE, 0);
		} else {
			mp_req_done(req);
		}
	}
	return n;
}

/*
 * Cancel the handle's requests of the opcodes in @ops (a
 * MEGAPIPE_CANCEL_OP() mask), oldest first; how many.  With !@post (the
 * channel goes away) every request is dropped without a completion.
 */
u32 mp_handle_cancel(struct mp_handle *h, u32 ops, bool post)
{
	u32 n = 0;

	/* most lists are empty: a connection has no ACCEPTs, often no READ */
	if (!list_empty(&h->accepts))
		n += mp_cancel_list(h, &h->accepts, ops, post);
	n += mp_read_ms_cancel(h, ops, post);	/* ahead of the other reads */
	if (!list_empty(&h->reads))
		n += mp_cancel_list(h, &h->reads, ops, post);
	if (!list_empty(&h->writes))
		n += mp_cancel_list(h, &h->writes, ops, post);
	return n;
}

void mp_handle_cancel_all(struct mp_handle *h, bool post)
{
	mp_handle_cancel(h, MEGAPIPE_CANCEL_ALL, post);
}
