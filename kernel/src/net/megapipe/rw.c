// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: MEGAPIPE_OP_READ, _WRITE and _WRITEV.
 *
 * Reads and writes of a handle each run in submission order, in the
 * owner's context: first when submitted, then whenever the socket's
 * callbacks mark the handle ready.  A READ completes with what one
 * recvmsg gives (at least a byte, 0 at end of stream, or an error); a
 * WRITE completes once all of it is queued, or with the bytes queued
 * before an error.  After a short or failed write, the writes queued
 * behind it complete with -ECANCELED: the stream would have a hole.
 */
#include <linux/compat.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <net/sock.h>
#include <net/tcp_states.h>

#include "megapipe.h"

int mp_rw_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if (r->op_flags || !r->len || r->len > INT_MAX)
		return -EINVAL;
	if (!r->addr || !access_ok(u64_to_user_ptr(r->addr), r->len))
		return -EFAULT;
	return 1;
}

int mp_read_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if (!(r->op_flags & MEGAPIPE_READ_BUFFER)) {
		if (r->buf_group)
			return -EINVAL;
		return mp_rw_prep(ch, r);
	}
	/* the buffer comes from the group when the data does */
	if ((r->op_flags & ~(MEGAPIPE_READ_BUFFER | MEGAPIPE_READ_MULTISHOT)) ||
	    r->addr || r->len || r->buf_group >= MEGAPIPE_MAX_BUF_GROUPS)
		return -EINVAL;
	return 1;
}

int mp_writev_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if (r->op_flags || !r->len || r->len > MP_MAX_IOV)
		return -EINVAL;
	if (!r->addr)
		return -EFAULT;
	return 1;
}

/* WRITEV: the caller's iovec array, copied and checked. */
static int mp_writev_import(struct mp_req *req)
{
	struct iovec *iov;
	u64 total = 0;
	u32 i;

	iov = kmalloc_array(req->len, sizeof(*iov), GFP_KERNEL_ACCOUNT);
	if (!iov)
		return -ENOMEM;
	req->iov = iov;
	req->nr_iov = req->len;
	iov = iovec_from_user(u64_to_user_ptr(req->addr), req->nr_iov,
			      req->nr_iov, req->iov, in_compat_syscall());
	if (IS_ERR(iov))
		return PTR_ERR(iov);
	for (i = 0; i < req->nr_iov; i++) {
		if (!access_ok(iov[i].iov_base, iov[i].iov_len))
			return -EFAULT;
		total += iov[i].iov_len;
	}
	if (!total || total > INT_MAX)
		return -EINVAL;
	req->len = total;
	return 0;
}

/*
 * A multishot READ that no READ is queued before (the usual case: armed
 * once, after the ACCEPT) is kept in the handle instead of a request
 * object, so that an idle connection holds none; one queued behind other
 * READs, or behind an armed one, takes a request object and its turn.
 */
int mp_read_submit(struct mp_chan *ch, struct mp_handle *h,
		   const struct megapipe_req *r)
{
	struct mp_req *req;

	if ((r->op_flags & MEGAPIPE_READ_MULTISHOT) && !h->ms_armed &&
	    list_empty(&h->reads)) {
		h->ms_armed = true;
		h->ms_group = r->buf_group;
		h->ms_user_data = r->user_data;
		h->pending++;
		mp_read_run(h);
		return 0;
	}
	req = mp_req_alloc(h, r);
	if (!req)
		return -ENOMEM;
	list_add_tail(&req->node, &h->reads);
	h->pending++;
	mp_read_run(h);
	return 0;
}

/* The handle's armed multishot READ has posted its last completion. */
static void mp_read_ms_end(struct mp_handle *h)
{
	h->ms_armed = false;
	h->pending--;
}

/*
 * CANCEL (or DISCONNECT, or the channel's release with !@post) of the
 * handle's armed multishot READ, when @ops has READ: 1 if there was one.
 */
u32 mp_read_ms_cancel(struct mp_handle *h, u32 ops, bool post)
{
	if (!h->ms_armed)
		return 0;
	if (post) {
		if (!(ops & MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_READ)))
			return 0;
		mp_cq_post(h->ch, h->cookie, h->id, MEGAPIPE_NO_HANDLE,
			   -ECANCELED, MEGAPIPE_OP_READ, 0, h->ms_user_data);
	}
	mp_read_ms_end(h);
	return 1;
}

static int mp_send_buf(struct socket *sock, u64 addr, u32 len, u32 *done);

/*
 * A WRITE that nothing is queued before is tried at once, and when it
 * ends there (queued in full, or short with an error) it completes
 * without a request object: no allocation, no list.
 * Only what the socket did not take is queued, in a request of its own,
 * which the channel's cache holds before anything is sent: a WRITE that
 * cannot have one is refused (-ENOMEM) with nothing sent, as before, and
 * never ends short on a healthy socket (the writes behind it would leave
 * a hole in the stream).
 */
static int mp_write_now(struct mp_chan *ch, struct mp_handle *h,
			const struct megapipe_req *r)
{
	struct mp_req *req;
	u32 done = 0;
	int ret;

	ret = mp_req_cache_fill(ch);
	if (ret)
		return ret;
	ret = mp_send_buf(h->sk->sk_socket, r->addr, r->len, &done);
	if (ret != -EAGAIN) {
		mp_cq_post(ch, h->cookie, h->id, MEGAPIPE_NO_HANDLE,
			   ret ? (done ? done : ret) : r->len,
			   MEGAPIPE_OP_WRITE, 0, r->user_data);
		return 0;
	}
	/* from the cache filled above: nothing took from it since */
	req = mp_req_alloc(h, r);
	req->done = done;
	list_add_tail(&req->node, &h->writes);
	h->pending++;
	return 0;
}

int mp_write_submit(struct mp_chan *ch, struct mp_handle *h,
		    const struct megapipe_req *r)
{
	bool first = list_empty(&h->writes);
	struct mp_req *req;
	int err;

	/*
	 * Only a write at the head of the queue is tried now; one behind it
	 * goes when the head does.  Trying the head again here would queue
	 * what TCP takes without any event in between (room left in its tail
	 * skb), making how much a stalled write queued depend on how many
	 * requests were submitted behind it.
	 */
	if (first && r->opcode == MEGAPIPE_OP_WRITE)
		return mp_write_now(ch, h, r);
	req = mp_req_alloc(h, r);
	if (!req)
		return -ENOMEM;
	if (req->opcode == MEGAPIPE_OP_WRITEV) {
		err = mp_writev_import(req);
		if (err) {
			mp_req_free(req);
			return err;
		}
	}
	list_add_tail(&req->node, &h->writes);
	h->pending++;
	if (first)
		mp_write_run(h);
	return 0;
}

/*
 * Nothing a recvmsg could return yet: no data, no error, no end of stream.
 * Then the socket's next event will mark the handle, which it does
 * whether or not a READ is pending, so skipping the recvmsg here loses no
 * wakeup; it saves one that would fail with -EAGAIN (a READ queued right
 * after its ACCEPT, a handle marked for write space).  Only while TCP's
 * receive queue is where the data is: not once a ULP (kTLS) or a sockmap
 * replaced the socket's protocol, as they keep data of their own.
 */
static bool mp_nothing_to_read(const struct mp_handle *h)
{
	const struct sock *sk = h->sk;

	return READ_ONCE(sk->sk_prot) == h->prot &&
	       skb_queue_empty_lockless(&sk->sk_receive_queue) &&
	       !READ_ONCE(sk->sk_err) &&
	       !(READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN) &&
	       READ_ONCE(sk->sk_state) != TCP_CLOSE;
}

/*
 * A READ into a buffer of group @group, its completion carrying
 * @user_data: -EAGAIN when the socket had nothing after all (the READ
 * waits), else its completion is posted: 1 when the READ stays armed
 * (multishot, and its next completion could be reserved), 0 when that
 * was its last.
 */
static int mp_read_buffer(struct mp_handle *h, u16 group, bool multishot,
			  u64 user_data)
{
	u32 bid = MEGAPIPE_NO_HANDLE;
	struct mp_chan *ch = h->ch;
	u16 flags = 0;
	struct megapipe_buf b;
	int ret, more = 0;

	ret = mp_buf_take(ch, group, &b);
	if (!ret) {
		/* zeroed as recvfrom(2)'s (__sys_recvfrom()), once */
		struct msghdr msg = {};

		ret = import_ubuf(ITER_DEST, u64_to_user_ptr(b.addr), b.len,
				  &msg.msg_iter);
		if (!ret)
			ret = sock_recvmsg(h->sk->sk_socket, &msg,
					   MSG_DONTWAIT);
		if (ret > 0) {
			bid = b.bid;
			flags = MEGAPIPE_CQE_F_BUFFER;
			if (multishot && mp_cq_reserve(ch, 1)) {
				flags |= MEGAPIPE_CQE_F_MORE;
				more = 1;
			}
		} else {
			mp_buf_put_back(ch, group);
			if (ret == -EAGAIN)
				return -EAGAIN;
		}
	}
	mp_cq_post(ch, h->cookie, h->id, bid, ret, MEGAPIPE_OP_READ, flags,
		   user_data);
	return more;
}

/* recvmsg calls of one run of a handle's multishot READ; then it waits */
#define MP_READ_BUDGET	16

/* A READ into its own buffer: false when the socket had nothing after all. */
static bool mp_read_addr(struct mp_handle *h, struct mp_req *req)
{
	struct msghdr msg = {};
	int ret;

	ret = import_ubuf(ITER_DEST, u64_to_user_ptr(req->addr), req->len,
			  &msg.msg_iter);
	if (!ret)
		ret = sock_recvmsg(h->sk->sk_socket, &msg, MSG_DONTWAIT);
	if (ret == -EAGAIN)
		return false;
	mp_req_complete(req, ret, MEGAPIPE_NO_HANDLE, 0);
	return true;
}

void mp_read_run(struct mp_handle *h)
{
	unsigned int budget = MP_READ_BUDGET;
	struct mp_req *req;
	int ret;

	for (;;) {
		if (h->ms_armed) {
			req = NULL;
		} else {
			req = list_first_entry_or_null(&h->reads,
						       struct mp_req, node);
			if (!req)
				break;
		}
		if (mp_nothing_to_read(h))
			break;
		if (req && !(req->op_flags & MEGAPIPE_READ_BUFFER)) {
			if (!mp_read_addr(h, req))
				break;
			continue;
		}
		/* a sender faster than us: the others' turn, then again */
		if (!budget--) {
			mp_handle_mark(h);
			break;
		}
		if (!req) {
			ret = mp_read_buffer(h, h->ms_group, true,
					     h->ms_user_data);
			if (!ret)
				mp_read_ms_end(h);
		} else {
			ret = mp_read_buffer(h, req->buf_group,
					     req->op_flags & MEGAPIPE_READ_MULTISHOT,
					     req->user_data);
			if (!ret)
				mp_req_done(req);
		}
		if (ret == -EAGAIN)
			break;
	}
}

/*
 * One sendmsg of @msg's data: the bytes the socket took (> 0), or -errno
 * (-EAGAIN when it took none).  The msghdr has the fields sendto(2) sets
 * (__sys_sendto()) and msg_iocb: no stack initialisation of the rest,
 * which the send paths (TCP, kTLS, sockmap, the LSM hooks) do not read.
 */
static int mp_sendmsg(struct socket *sock, struct msghdr *msg)
{
	int ret;

	msg->msg_name = NULL;
	msg->msg_control = NULL;
	msg->msg_controllen = 0;
	msg->msg_namelen = 0;
	msg->msg_ubuf = NULL;
	msg->msg_iocb = NULL;	/* not read by a send, but a hook may look */
	msg->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
	ret = sock_sendmsg(sock, msg);
	return ret ? ret : -EAGAIN;
}

/*
 * Queue what the socket takes of the @len bytes at @addr, from *@done on,
 * adding to *@done: 0 when all of them are, or -errno.
 */
static int mp_send_buf(struct socket *sock, u64 addr, u32 len, u32 *done)
{
	struct msghdr msg __uninitialized;
	int ret;

	while (*done < len) {
		ret = import_ubuf(ITER_SOURCE, u64_to_user_ptr(addr + *done),
				  len - *done, &msg.msg_iter);
		if (ret)
			return ret;
		ret = mp_sendmsg(sock, &msg);
		if (ret < 0)
			return ret;
		*done += ret;
	}
	return 0;
}

/* Queue what the socket takes of @req: 0 when all of it is, or -errno. */
static int mp_send(struct socket *sock, struct mp_req *req)
{
	struct msghdr msg __uninitialized;
	int ret;

	if (req->opcode != MEGAPIPE_OP_WRITEV)
		return mp_send_buf(sock, req->addr, req->len, &req->done);
	while (req->done < req->len) {
		iov_iter_init(&msg.msg_iter, ITER_SOURCE, req->iov,
			      req->nr_iov, req->len);
		iov_iter_advance(&msg.msg_iter, req->done);
		ret = mp_sendmsg(sock, &msg);
		if (ret < 0)
			return ret;
		req->done += ret;
	}
	return 0;
}

/*
 * May the head write make progress now?  A DISCONNECT may; a write when
 * the socket has room as poll(2) says it (EPOLLOUT: a third of the send
 * buffer free), or an error or shutdown to report.  A stalled write is
 * not retried on every wakeup of its socket (data arriving, an ACK that
 * frees nothing): TCP takes a few bytes into its last segment each time,
 * which would make how much of the write is queued when it is cancelled
 * depend on unrelated events, and differ from the epoll backend, which
 * retries on EPOLLOUT.  As tcp_poll(), SOCK_NOSPACE is set before the
 * second look, so that the room freed later wakes the handle.
 */
bool mp_write_ready(struct mp_handle *h)
{
	struct mp_req *req = list_first_entry_or_null(&h->writes, struct mp_req,
						      node);
	struct sock *sk = h->sk;

	if (!req)
		return false;
	if (req->opcode == MEGAPIPE_OP_DISCONNECT || READ_ONCE(sk->sk_err) ||
	    (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN) ||
	    !((1 << READ_ONCE(sk->sk_state)) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT)) ||
	    READ_ONCE(sk->sk_prot) != h->prot)
		return true;
	if (__sk_stream_is_writeable(sk, 1))
		return true;
	sk_set_bit(SOCKWQ_ASYNC_NOSPACE, sk);
	set_bit(SOCK_NOSPACE, &sk->sk_socket->flags);
	/* pairs with tcp_check_space(): it sees the bit, or this the room */
	smp_mb__after_atomic();
	return __sk_stream_is_writeable(sk, 1);
}

/*
 * Run the handle's writes, oldest first; false when a DISCONNECT ran and
 * the handle is gone.
 */
bool mp_write_run(struct mp_handle *h)
{
	struct socket *sock = h->sk->sk_socket;
	struct mp_req *req, *next;
	int ret;

	while ((req = list_first_entry_or_null(&h->writes, struct mp_req,
					       node))) {
		if (req->opcode == MEGAPIPE_OP_DISCONNECT) {
			mp_disconnect_run(h, req);
			return false;
		}
		ret = mp_send(sock, req);
		if (ret == -EAGAIN)
			break;
		if (!ret) {
			mp_req_complete(req, req->len, MEGAPIPE_NO_HANDLE, 0);
			continue;
		}
		mp_req_complete(req, req->done ? req->done : ret,
				MEGAPIPE_NO_HANDLE, 0);
		/* the writes behind a short one would leave a hole */
		list_for_each_entry_safe(req, next, &h->writes, node) {
			if (req->opcode == MEGAPIPE_OP_DISCONNECT)
				break;
			mp_req_complete(req, -ECANCELED, MEGAPIPE_NO_HANDLE, 0);
		}
	}
	return true;
}
