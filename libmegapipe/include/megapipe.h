/* SPDX-License-Identifier: MIT */
/*
 * libmegapipe: batched asynchronous socket I/O on MegaPipe channels.
 *
 * A channel (mp_create) is one thread's queue of socket requests and of
 * their completions.  Sockets are registered to it (mp_register) and get
 * handles; requests on handles (mp_accept, mp_read, mp_write, mp_writev,
 * mp_disconnect, mp_connect, mp_cancel) are queued in user space and
 * submitted in batches, and mp_dispatch() hands out one completion at a
 * time from batches it fetches: one system call per loop iteration.
 *
 * The channel runs on /dev/megapipe when the kernel has it and on epoll
 * otherwise, with the same semantics.  A channel must be used by the thread
 * that created it only.  See libmegapipe(7) and one man page per call.
 */
#ifndef LIBMEGAPIPE_H
#define LIBMEGAPIPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/megapipe.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LIBMEGAPIPE_VERSION_MAJOR	1
#define LIBMEGAPIPE_VERSION_MINOR	3

/* A channel; opaque. */
struct mp_channel;

/* mp_create() flags: force a backend (default: environment, then auto). */
#define MP_CREATE_KERNEL	(1U << 0)	/* /dev/megapipe or fail */
#define MP_CREATE_EPOLL		(1U << 1)	/* the epoll fallback */

/* Default completion-queue size (mp_create with cq_entries 0). */
#define MP_DEFAULT_CQ_ENTRIES	1024

/* Backends, as reported by mp_features(). */
#define MP_BACKEND_KERNEL	1
#define MP_BACKEND_EPOLL	2

/*
 * Handles are ints >= 0, local to a channel, but not small: a handle is a
 * generation (the high bits) and an index (the low MP_HANDLE_INDEX_BITS),
 * anywhere in 0..2^31-1 (the epoll backend's start at 2^20).  Do not use a
 * handle as an array index; use MP_HANDLE_INDEX(handle): below
 * mp_info.max_handles and unique among the channel's live handles (an
 * index is reused once its handle is released; the handle value is not,
 * so a stale handle gets EBADF).  MP_NO_HANDLE where there is none.
 */
#define MP_NO_HANDLE		(-1)
#define MP_HANDLE_INDEX_BITS	MEGAPIPE_HANDLE_INDEX_BITS
#define MP_HANDLE_INDEX(handle)	((int)MEGAPIPE_HANDLE_INDEX((uint32_t)(handle)))

/* Request types, in mp_completion.op. */
#define MP_OP_ACCEPT		MEGAPIPE_OP_ACCEPT
#define MP_OP_READ		MEGAPIPE_OP_READ
#define MP_OP_WRITE		MEGAPIPE_OP_WRITE
#define MP_OP_WRITEV		MEGAPIPE_OP_WRITEV
#define MP_OP_DISCONNECT	MEGAPIPE_OP_DISCONNECT
#define MP_OP_CONNECT		MEGAPIPE_OP_CONNECT
#define MP_OP_CANCEL		MEGAPIPE_OP_CANCEL
#define MP_OP_POLL		MEGAPIPE_OP_POLL

/* mp_accept() flags. */
#define MP_ACCEPT_FD		MEGAPIPE_ACCEPT_FD
#define MP_ACCEPT_NONBLOCK	MEGAPIPE_ACCEPT_NONBLOCK

/* mp_poll() flags. */
#define MP_POLL_MULTISHOT	MEGAPIPE_POLL_MULTISHOT

/* mp_export() flags. */
#define MP_EXPORT_NONBLOCK	MEGAPIPE_EXPORT_NONBLOCK

/* mp_cancel() mask. */
#define MP_CANCEL_OP(op)	MEGAPIPE_CANCEL_OP(op)
#define MP_CANCEL_ALL		MEGAPIPE_CANCEL_ALL

/* mp_completion.flags. */
#define MP_F_MORE		MEGAPIPE_CQE_F_MORE	/* the request goes on */
#define MP_F_FD			MEGAPIPE_CQE_F_FD	/* result is a new fd */
#define MP_F_BUFFER		MEGAPIPE_CQE_F_BUFFER	/* read: buffer id in new_handle */

/* Features, in mp_info.features. */
#define MP_FEAT_LWSOCKET	MEGAPIPE_FEAT_LWSOCKET
#define MP_FEAT_ACCEPT_FD	MEGAPIPE_FEAT_ACCEPT_FD
#define MP_FEAT_CONNECT		MEGAPIPE_FEAT_CONNECT
#define MP_FEAT_CANCEL		MEGAPIPE_FEAT_CANCEL
#define MP_FEAT_EXPORT		MEGAPIPE_FEAT_EXPORT
#define MP_FEAT_WRITEV		MEGAPIPE_FEAT_WRITEV
#define MP_FEAT_PERCORE_LISTEN	MEGAPIPE_FEAT_PERCORE_LISTEN
#define MP_FEAT_USER_DATA	MEGAPIPE_FEAT_USER_DATA	/* mp_set_user_data() */
#define MP_FEAT_POLL		MEGAPIPE_FEAT_POLL	/* mp_fd() */
#define MP_FEAT_BUFFERS		MEGAPIPE_FEAT_BUFFERS	/* mp_provide_buffers() */
#define MP_FEAT_SOCKOPT		MEGAPIPE_FEAT_SOCKOPT	/* mp_setsockopt() & co */
#define MP_FEAT_FILES		MEGAPIPE_FEAT_FILES	/* mp_register_file(), mp_poll() */
#define MP_FEAT_ACCEPT_ADDR	MEGAPIPE_FEAT_ACCEPT_ADDR /* mp_accept_addr() */

/*
 * One completion, as mp_dispatch() hands it out (the layout of struct
 * megapipe_cqe).
 */
struct mp_completion {
	uint64_t cookie;	/* the handle's cookie (connect: its own) */
	int32_t handle;		/* the request's handle; MP_NO_HANDLE: connect */
	int32_t new_handle;	/* accept/connect: the new handle */
	int32_t result;		/* bytes, fd, count, 0, or -errno */
	uint8_t op;		/* MP_OP_* */
	uint8_t resv0;
	uint16_t flags;		/* MP_F_* */
	uint64_t user_data;	/* the request's (mp_set_user_data), else 0 */
};

/* What a channel runs on and its limits. */
struct mp_info {
	unsigned int abi_version;	/* MEGAPIPE_ABI_VERSION of the backend */
	unsigned int backend;		/* MP_BACKEND_* */
	uint64_t features;		/* MP_FEAT_* */
	unsigned int max_handles;
	unsigned int max_batch;		/* requests per submission call */
	unsigned int max_cq_entries;
	unsigned int max_iov;		/* iovecs per mp_writev() */
	unsigned int cq_entries;	/* this channel's completion queue */
	unsigned int resv[5];
};

const char *mp_version(void);

struct mp_channel *mp_create(unsigned int flags, unsigned int cq_entries);
void mp_destroy(struct mp_channel *mp);
int mp_features(struct mp_channel *mp, struct mp_info *info);

int mp_register(struct mp_channel *mp, int fd, uint64_t cookie,
		const void *cpuset, size_t cpusetsize);
int mp_register_file(struct mp_channel *mp, int fd, uint64_t cookie);
int mp_unregister(struct mp_channel *mp, int handle);
int mp_export(struct mp_channel *mp, int handle, unsigned int flags);
int mp_set_cookie(struct mp_channel *mp, int handle, uint64_t cookie);

int mp_accept(struct mp_channel *mp, int handle, unsigned int count,
	      unsigned int flags);
int mp_accept_addr(struct mp_channel *mp, int handle, unsigned int count,
		   unsigned int flags, struct sockaddr_storage *addrs);
int mp_read(struct mp_channel *mp, int handle, void *buf, size_t len);
int mp_write(struct mp_channel *mp, int handle, const void *buf, size_t len);
int mp_writev(struct mp_channel *mp, int handle, const struct iovec *iov,
	      int iovcnt);
int mp_disconnect(struct mp_channel *mp, int handle);
int mp_connect(struct mp_channel *mp, const struct sockaddr *addr,
	       socklen_t addrlen, uint64_t cookie);
int mp_cancel(struct mp_channel *mp, int handle, unsigned int ops);
int mp_poll(struct mp_channel *mp, int handle, unsigned int events,
	    unsigned int flags);
/* since 1.1 */
int mp_set_user_data(struct mp_channel *mp, uint64_t data);
int mp_fd(struct mp_channel *mp);
int mp_provide_buffers(struct mp_channel *mp, unsigned int group, void *base,
		       size_t size, unsigned int count);
int mp_read_multishot(struct mp_channel *mp, int handle, unsigned int group);
void *mp_buffer(struct mp_channel *mp, unsigned int group, unsigned int bid);
int mp_buffer_release(struct mp_channel *mp, unsigned int group,
		      unsigned int bid);
/* since 1.2 */
int mp_setsockopt(struct mp_channel *mp, int handle, int level, int optname,
		  const void *optval, socklen_t optlen);
int mp_getsockopt(struct mp_channel *mp, int handle, int level, int optname,
		  void *optval, socklen_t *optlen);
int mp_getsockname(struct mp_channel *mp, int handle, struct sockaddr *addr,
		   socklen_t *addrlen);
int mp_getpeername(struct mp_channel *mp, int handle, struct sockaddr *addr,
		   socklen_t *addrlen);

int mp_flush(struct mp_channel *mp);
int mp_dispatch(struct mp_channel *mp, struct mp_completion *c,
		int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* LIBMEGAPIPE_H */
