// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: MEGAPIPE_OP_CANCEL.
 *
 * Completes the handle's pending requests of the chosen opcodes with
 * -ECANCELED (a write with bytes queued: with that count, and then every
 * write behind it, of any opcode, with -ECANCELED: the stream would have
 * a hole), then itself with how many it cancelled.  Runs entirely in the
 * submit call.  It also reaches a closing handle: a DISCONNECT queued
 * behind a write the peer never lets finish (a zero window) then runs.
 * With MEGAPIPE_NO_HANDLE it cancels the channel's pending CONNECTs.
 */
#include "megapipe.h"

int mp_cancel_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if (r->addr || r->len || r->cookie ||
	    (r->op_flags & ~MEGAPIPE_CANCEL_ALL))
		return -EINVAL;
	return 1;
}

int mp_cancel_submit(struct mp_chan *ch, struct mp_handle *h,
		     const struct megapipe_req *r)
{
	u32 ops = r->op_flags ? r->op_flags : MEGAPIPE_CANCEL_ALL;
	u32 n = 0;

	if (h)
		n = mp_handle_cancel(h, ops, true);
	else if (ops & MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_CONNECT))
		n = mp_connect_cancel_all(ch);
	mp_cq_post(ch, h ? h->cookie : 0, h ? h->id : MEGAPIPE_NO_HANDLE,
		   MEGAPIPE_NO_HANDLE, n, MEGAPIPE_OP_CANCEL, 0, r->user_data);
	/* a DISCONNECT the cancelled writes held back runs now (@h freed) */
	if (h && h->closing)
		mp_write_run(h);
	return 0;
}
