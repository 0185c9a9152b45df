/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * MegaPipe channels: batched, asynchronous socket I/O through /dev/megapipe.
 *
 * open("/dev/megapipe", O_RDWR) creates a channel.  The channel is set up
 * once with MEGAPIPE_IOC_SETUP (the size of its completion queue), sockets
 * are registered to it and get handles, and requests on those handles are
 * submitted in batches with MEGAPIPE_IOC_SUBMIT, which also waits for and
 * copies out completions: a server loop costs one system call per
 * iteration.  The intended use is one channel per thread, pinned to a CPU.
 *
 * Layout rules (the kernel and user space build from this one file):
 *  - every structure has a fixed size, has no implicit padding and is the
 *    same for 32-bit and 64-bit user space: user pointers are __u64, never
 *    pointers or longs.  The kernel side must BUILD_BUG_ON() the sizes
 *    given next to each structure; libmegapipe static_asserts them.
 *  - every flags field and every reserved field ("resv") must be zero on
 *    input, and undefined flag bits must be clear: otherwise the call fails
 *    with EINVAL, so that a bit can be given a meaning later without old
 *    kernels silently ignoring it.  A newer library asks MEGAPIPE_IOC_INFO
 *    which features the kernel has before using them.
 *
 * Handles are channel-local names of sockets: values in [0, 2^31), never
 * MEGAPIPE_NO_HANDLE.  The low MEGAPIPE_HANDLE_INDEX_BITS bits of a live
 * handle are an index below info.max_handles, unique among the channel's
 * live handles (user space may use it to index an array); the other bits
 * change when an index is reused, so that a stale handle is refused with
 * EBADF.  A handle means nothing outside its channel.
 *
 * Errors of a whole call are returned as -1 with errno (see each ioctl).
 * Errors of one request are reported in that request's completion as a
 * negative errno in @result; a request the kernel refuses at submission
 * (MEGAPIPE_IOC_SUBMIT) is reported in megapipe_submit.error instead.
 *
 * Opening the device is allowed by the sysctl kernel.megapipe_disabled:
 * 0 everyone, 1 (the default) CAP_SYS_ADMIN or members of the group
 * kernel.megapipe_group, 2 nobody; else open() fails with EPERM.
 *
 * A channel belongs to the process (address space) and fd table that
 * opened it: every ioctl from another process (after fork()), or from a
 * thread that unshared its fd table, fails with EPERM; SCM_RIGHTS
 * refuses to pass a channel fd (EINVAL, as for an io_uring).  An ACCEPT
 * or CONNECT runs with the credentials of the thread that submitted it,
 * whichever thread's SUBMIT runs it, and the sockets it makes are that
 * thread's, as socket(2) and accept(2) would make them (netfilter's owner
 * match, nft meta skuid/skgid, nflog/nfqueue).  A READ, WRITE, WRITEV or
 * DISCONNECT that waits for its socket runs in the owner's thread whose
 * SUBMIT finds the socket ready (the LSM's send and receive checks see
 * that thread, as for a read(2) or write(2) on a shared fd).  A channel lives until its last fd
 * is closed: a fork()ed child that keeps
 * the fd keeps the channel's sockets (libmegapipe opens it O_CLOEXEC).
 * A channel holds at most RLIMIT_NOFILE handles (EMFILE).
 *
 * poll()/select()/epoll on the channel fd (MEGAPIPE_FEAT_POLL): readable
 * (EPOLLIN) when a MEGAPIPE_IOC_SUBMIT would find something to do: posted
 * completions not yet copied out, or a socket event for a pending
 * request.  A SUBMIT with timeout_ns 0 then runs it and copies the
 * completions out; it may find none (the event needed no completion).
 * Never writable: requests are not limited by the fd.  A listener's new
 * connection marks a polled channel and wakes its pollers, whichever
 * CPU's it is, and still goes on to wake a thread waiting in SUBMIT or
 * accept(2) elsewhere: a thread in poll or epoll cannot be told from one
 * busy elsewhere whose channel fd is in an epoll set.
 *
 * Two transports (MEGAPIPE_IOC_SETUP chooses, once): copies, where each
 * SUBMIT reads its requests from and writes its completions to arrays the
 * caller passes; or shared-memory rings (MEGAPIPE_SETUP_RING,
 * MEGAPIPE_FEAT_RING), where requests are written into a submission ring
 * and completions read from a completion ring, both mapped with mmap():
 * no copy, and no system call to reap completions while there are some.
 * See struct megapipe_ring.
 */
#ifndef _UAPI_LINUX_MEGAPIPE_H
#define _UAPI_LINUX_MEGAPIPE_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define MEGAPIPE_DEVICE			"/dev/megapipe"
#define MEGAPIPE_ABI_VERSION		1

/*
 * 'J' 00-1F: not listed in Documentation/userspace-api/ioctl/ioctl-number.rst
 * nor used with _IO*() anywhere in 6.12; the kernel patch adds the line
 * "'J'  00-1F  linux/megapipe.h" there.
 */
#define MEGAPIPE_IOC_MAGIC		'J'

#define MEGAPIPE_NO_HANDLE		0xffffffffU
#define MEGAPIPE_HANDLE_INDEX_BITS	20
#define MEGAPIPE_HANDLE_INDEX(h)	((h) & ((1U << MEGAPIPE_HANDLE_INDEX_BITS) - 1))

/* ---- MEGAPIPE_IOC_INFO: ABI version, features and limits ---------------- */

/* Features (megapipe_info.features). */
#define MEGAPIPE_FEAT_LWSOCKET		0x1ULL /* ACCEPT/CONNECT give fd-less sockets */
#define MEGAPIPE_FEAT_ACCEPT_FD		0x2ULL /* MEGAPIPE_ACCEPT_FD */
#define MEGAPIPE_FEAT_CONNECT		0x4ULL /* MEGAPIPE_OP_CONNECT */
#define MEGAPIPE_FEAT_CANCEL		0x8ULL /* MEGAPIPE_OP_CANCEL */
#define MEGAPIPE_FEAT_EXPORT		0x10ULL /* MEGAPIPE_IOC_EXPORT */
#define MEGAPIPE_FEAT_WRITEV		0x20ULL /* MEGAPIPE_OP_WRITEV */
#define MEGAPIPE_FEAT_PERCORE_LISTEN	0x40ULL /* listener CPU masks are honoured */
#define MEGAPIPE_FEAT_RING		0x80ULL /* MEGAPIPE_SETUP_RING */
#define MEGAPIPE_FEAT_USER_DATA		0x100ULL /* megapipe_req.user_data */
#define MEGAPIPE_FEAT_POLL		0x200ULL /* the channel fd is pollable */
#define MEGAPIPE_FEAT_BUFFERS		0x400ULL /* buffer rings, multishot READ */
#define MEGAPIPE_FEAT_SOCKOPT		0x800ULL /* MEGAPIPE_IOC_SOCKOPT */
#define MEGAPIPE_FEAT_FILES		0x1000ULL /* MEGAPIPE_REGISTER_FILE, OP_POLL */
#define MEGAPIPE_FEAT_ACCEPT_ADDR	0x2000ULL /* ACCEPT's @addr: peer addresses */

/*
 * @abi_version:	out: MEGAPIPE_ABI_VERSION of the kernel
 * @flags:		in: must be 0
 * @features:		out: MEGAPIPE_FEAT_*
 * @max_handles:	out: live handles per channel
 * @max_batch:		out: requests per MEGAPIPE_IOC_SUBMIT (nr_reqs), and
 *			completions copied out per call (max_cqes)
 * @max_cq_entries:	out: largest megapipe_setup.cq_entries
 * @max_iov:		out: iovecs per MEGAPIPE_OP_WRITEV
 * @resv:		out: zero
 *
 * Works on a channel that is not set up yet.  Size: 64 bytes.
 */
struct megapipe_info {
	__u32	abi_version;
	__u32	flags;
	__u64	features;
	__u32	max_handles;
	__u32	max_batch;
	__u32	max_cq_entries;
	__u32	max_iov;
	__u64	resv[4];
};

/* ---- MEGAPIPE_IOC_SETUP: size the channel, once ------------------------- */

#define MEGAPIPE_SETUP_RING		0x1U /* shared-memory rings */

#define MEGAPIPE_MAX_SQ_ENTRIES		4096

/*
 * @cq_entries:	in: completion queue size, 1..max_cq_entries; with
 *		MEGAPIPE_SETUP_RING, out: rounded up to a power of two.  It
 *		bounds the completions a channel owes at once: every request
 *		reserves its completions when it is submitted (one, or
 *		@len for ACCEPT) and gives them back when they are copied
 *		out (consumed from the ring), so no completion is ever
 *		dropped; a request that finds no room is refused with EBUSY.
 * @flags:	in: 0 or MEGAPIPE_SETUP_RING
 * @sq_entries:	in: with MEGAPIPE_SETUP_RING, the submission ring's size,
 *		1..MEGAPIPE_MAX_SQ_ENTRIES; out: rounded up to a power of
 *		two.  Else in: 0
 * @resv0:	in: zero
 * @sq_ring_size: in: 0; out: with MEGAPIPE_SETUP_RING, the bytes to
 *		mmap() at MEGAPIPE_OFF_SQ_RING; else 0
 * @cq_ring_size: in: 0; out: likewise at MEGAPIPE_OFF_CQ_RING
 * @resv:	in: zero; out: zero
 *
 * Errors: EBUSY the channel is already set up; EINVAL bad size, flags or
 * reserved fields; ENOMEM.  Every other ioctl but MEGAPIPE_IOC_INFO fails
 * with EBADFD until the channel is set up.  Size: 40 bytes.
 */
struct megapipe_setup {
	__u32	cq_entries;
	__u32	flags;
	__u32	sq_entries;
	__u32	resv0;
	__u64	sq_ring_size;
	__u64	cq_ring_size;
	__u64	resv;
};

/*
 * Rings.  Each ring is one mapping: this header, then at offset
 * MEGAPIPE_RING_ENTRIES its @entries entries (struct megapipe_req in the
 * submission ring, struct megapipe_cqe in the completion ring).  @head and
 * @tail run freely (mod 2^32); entry i is at index i & @mask.  The
 * producer writes entries, then advances @tail (a store-release); the
 * consumer reads @tail (a load-acquire), reads the entries, then advances
 * @head (a store-release).  User space produces the submission ring and
 * consumes the completion ring; the kernel the reverse.  The kernel does
 * not trust what user space writes: it keeps its own copy of the index it
 * owns and reads each request once; a submission tail that claims more
 * entries than the ring holds fails the SUBMIT with EINVAL, a completion
 * head that claims more than was posted is ignored.  Map each with
 * mmap(PROT_READ | PROT_WRITE, MAP_SHARED) at MEGAPIPE_OFF_SQ_RING /
 * MEGAPIPE_OFF_CQ_RING, of the sizes MEGAPIPE_IOC_SETUP returned (a
 * private or executable mapping is EINVAL).  The mappings are not
 * inherited by fork() (VM_DONTCOPY, unless the owner undoes it with
 * madvise(MADV_DOFORK)): a child has neither the rings nor the channel's
 * ioctls (EPERM).  Size: 256 bytes.
 */
struct megapipe_ring {
	__u32	head;
	__u32	resv0[15];
	__u32	tail;		/* on a cache line of its own */
	__u32	resv1[15];
	__u32	entries;	/* a power of two */
	__u32	mask;		/* entries - 1 */
	__u32	resv2[30];
};

#define MEGAPIPE_RING_ENTRIES		256	/* sizeof(struct megapipe_ring) */

/* mmap() offsets of the rings. */
#define MEGAPIPE_OFF_SQ_RING		0ULL
#define MEGAPIPE_OFF_CQ_RING		0x8000000ULL
#define MEGAPIPE_OFF_SQES		0x10000000ULL	/* reserved: entries are in the ring */

/* ---- MEGAPIPE_IOC_REGISTER / _UNREGISTER: sockets in, handles out ------- */

#define MEGAPIPE_CPUMASK_MAX_BYTES	1024	/* 8192 CPUs */
#define MEGAPIPE_FILE_MAX_QUEUES	4	/* see MEGAPIPE_REGISTER_FILE */

/* megapipe_register.flags */
#define MEGAPIPE_REGISTER_FILE		0x1U /* any pollable fd, for POLL */

/*
 * @fd:		in: a TCP socket (IPv4 or IPv6) in the caller's fd table,
 *		listening or connected.  The channel takes its own reference;
 *		the fd stays the caller's, who must not do I/O on it nor
 *		close it while it is registered.
 * @flags:	in: 0, or MEGAPIPE_REGISTER_FILE (MEGAPIPE_FEAT_FILES):
 *		@fd is any file that supports poll (a timerfd, eventfd,
 *		signalfd, pipe, UDP or Unix socket, a TCP socket too), and
 *		the handle takes MEGAPIPE_OP_POLL requests only.  The
 *		channel holds its own reference to the file, as for a
 *		socket; the caller keeps using its fd as it likes (a POLL
 *		only waits).  Refused: a file without poll (EPERM, as
 *		epoll_ctl(2)); a channel or an io_uring (EINVAL: one could
 *		hold the other, a reference cycle nothing would free); an
 *		epoll set (EINVAL: it may watch the channel, a wakeup
 *		loop); a file whose poll names no wait queue or more than
 *		MEGAPIPE_FILE_MAX_QUEUES (EOPNOTSUPP: a POLL on it could
 *		never be woken).  No cpumask.
 * @cookie:	in: carried by every completion of the handle
 * @cpumask:	in: user pointer to a CPU bitmap (listeners only; 0: all
 *		CPUs): an array of __u64, CPU n is bit n % 64 of word n / 64
 *		(a glibc cpu_set_t on 64-bit).  A connection queued on
 *		the listen clone of CPU c (a per-core listener) wakes the
 *		channels whose mask has c, or every channel of the listener
 *		when none has it.  An ACCEPT takes from the clone of the CPU
 *		the submitting thread runs on first, then from the others,
 *		as accept(2) does.  A listener not in per-core mode wakes
 *		every channel.  Bits of CPUs that do not exist are ignored;
 *		a mask of none of the CPUs is EINVAL.  Without
 *		MEGAPIPE_FEAT_PERCORE_LISTEN only all CPUs is accepted.
 * @cpumask_len: in: bytes at @cpumask, a multiple of 8, at most
 *		MEGAPIPE_CPUMASK_MAX_BYTES; 0 when @cpumask is 0
 * @handle:	out: the new handle
 * @resv:	in: zero
 *
 * Errors: EBADF @fd is not open; ENOTSOCK not a socket (a /dev/megapipe
 * fd included); EOPNOTSUPP not a TCP socket, or a mask of some CPUs
 * without MEGAPIPE_FEAT_PERCORE_LISTEN; ENOTCONN neither listening nor
 * connected; EEXIST the socket is already registered in this channel (a
 * listener may be registered in every channel, each with its own CPUs; a
 * connection, like an fd in two epolls, may be in more than one channel,
 * whose requests then take turns at its stream); EINVAL bad flags,
 * reserved fields, cpumask on a connection, cpumask_len, or a mask with
 * no existing CPU; EFAULT; EMFILE max_handles or RLIMIT_NOFILE handles
 * reached; ENOMEM.  A socket with a ULP (kTLS) or in a sockmap may be
 * registered, and may get them later: READs then take what recvmsg(2)
 * gives.  Size: 48 bytes.
 */
struct megapipe_register {
	__s32	fd;
	__u32	flags;
	__u64	cookie;
	__u64	cpumask;
	__u32	cpumask_len;
	__u32	handle;
	__u64	resv[2];
};

/*
 * Unregister a handle created by MEGAPIPE_IOC_REGISTER or by an ACCEPT with
 * MEGAPIPE_ACCEPT_FD: the channel drops its reference and forgets the
 * handle; the caller's fd is untouched.
 *
 * Errors: EBADF unknown or stale handle; EINVAL a lightweight socket (it
 * has no fd: use MEGAPIPE_OP_DISCONNECT or MEGAPIPE_IOC_EXPORT), or bad
 * flags/reserved fields; EBUSY requests on the handle are still in flight
 * (cancel them and reap their completions first).  Size: 16 bytes.
 */
struct megapipe_unregister {
	__u32	handle;
	__u32	flags;
	__u64	resv;
};

/* ---- MEGAPIPE_IOC_EXPORT: a lightweight socket becomes a regular fd ----- */

#define MEGAPIPE_EXPORT_NONBLOCK	0x1U /* the new fd is O_NONBLOCK */

/*
 * Give a lightweight socket (accepted or connected by the channel) a
 * regular fd (always O_CLOEXEC) in the caller's table and remove its handle
 * from the channel.
 *
 * @handle:	in
 * @flags:	in: MEGAPIPE_EXPORT_*
 * @fd:		out: the new fd
 * @resv:	in: zero
 *
 * Errors: EBADF unknown or stale handle; EINVAL not a lightweight socket,
 * bad flags or reserved fields; EBUSY requests on the handle are in
 * flight; EMFILE/ENFILE no fd available.  Size: 16 bytes.
 */
struct megapipe_export {
	__u32	handle;
	__u32	flags;
	__s32	fd;
	__u32	resv;
};

/* ---- MEGAPIPE_IOC_SOCKOPT: the socket behind a handle ------------------- */

#define MEGAPIPE_SOCKOPT_SET		0 /* setsockopt(2) */
#define MEGAPIPE_SOCKOPT_GET		1 /* getsockopt(2) */
#define MEGAPIPE_SOCKOPT_SOCKNAME	2 /* getsockname(2) */
#define MEGAPIPE_SOCKOPT_PEERNAME	3 /* getpeername(2) */

/*
 * setsockopt(2), getsockopt(2), getsockname(2) or getpeername(2) on the
 * socket of a handle (MEGAPIPE_FEAT_SOCKOPT), lightweight or registered,
 * with the checks those calls make (LSM, cgroup BPF, capabilities of the
 * caller).  Options a channel's socket takes, SET and GET:
 *   SOL_SOCKET   SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, SO_PRIORITY,
 *                SO_LINGER (off, or on with l_linger 0: a reset on
 *                DISCONNECT; a lingering close would block the channel)
 *   IPPROTO_TCP  TCP_NODELAY, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL,
 *                TCP_KEEPCNT, TCP_USER_TIMEOUT, TCP_CONGESTION,
 *                TCP_NOTSENT_LOWAT
 *   IPPROTO_IP   IP_TOS;  IPPROTO_IPV6  IPV6_TCLASS
 * and GET only: SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_INCOMING_CPU,
 * SO_COOKIE, TCP_INFO, TCP_MAXSEG.  Anything else is EOPNOTSUPP: options
 * that move data elsewhere (TCP_ULP for kTLS, TCP_ZEROCOPY_RECEIVE,
 * SO_ATTACH_*), consume state the channel reports (SO_ERROR) or change
 * the socket's binding are left to sockets with an fd (MEGAPIPE_IOC_EXPORT).
 *
 * @handle:	in: any handle
 * @cmd:	in: MEGAPIPE_SOCKOPT_*
 * @level:	in: SET/GET; zero otherwise
 * @optname:	in: SET/GET; zero otherwise
 * @optval:	in: the option's value (SET) or where it goes (GET, and the
 *		address for SOCKNAME/PEERNAME)
 * @optlen:	in: its length (SET) or the room at @optval; out (GET and
 *		the names): the length of the value, as the calls return it
 *		(an address longer than the room is truncated)
 * @resv:	in: zero
 *
 * Errors: EBADF unknown, stale or closing handle; EINVAL bad @cmd,
 * reserved fields, a lingering SO_LINGER, or what the option itself
 * refuses; EOPNOTSUPP an option not listed; EFAULT; ENOTCONN (PEERNAME of
 * an unconnected socket); those of setsockopt(2)/getsockopt(2).  Size: 32
 * bytes.
 */
struct megapipe_sockopt {
	__u32	handle;
	__u32	cmd;
	__s32	level;
	__s32	optname;
	__u64	optval;
	__u32	optlen;
	__u32	resv;
};

/* ---- requests ----------------------------------------------------------- */

/*
 * Opcodes.  0 is invalid, so that a zeroed entry is refused.
 *
 * ACCEPT	@handle: a listener; @len: how many connections (1..cq_entries;
 *		one completion each, all but the last with MEGAPIPE_CQE_F_MORE;
 *		the ACCEPTs of a listener are served in submission order).
 *		@op_flags: MEGAPIPE_ACCEPT_*.  Completion: @new_handle the new
 *		connection, @result 0 (lightweight) or the new fd
 *		(MEGAPIPE_ACCEPT_FD; the completion has MEGAPIPE_CQE_F_FD).
 *		The new handle's cookie is 0 until set
 *		(MEGAPIPE_REQ_F_SET_COOKIE).  The first error (e.g. -EMFILE)
 *		ends the request; connections that gave up before being
 *		accepted are skipped silently.  @addr: 0, or
 *		(MEGAPIPE_FEAT_ACCEPT_ADDR) a user pointer to @len struct
 *		sockaddr_storage: the peer address of the request's i-th
 *		connection (its i-th completion, from 0) is written to
 *		element i before that completion is posted, as accept(2)
 *		writes it (audited likewise; a sockaddr_in or sockaddr_in6,
 *		the rest of the element untouched).  An element that cannot
 *		be written loses its connection, as in accept(2), and ends
 *		the request with -EFAULT.
 * READ		@addr/@len: a buffer (@len 1..INT_MAX).  Completes once at
 *		least one byte is there: @result bytes read, 0 at end of
 *		stream (every later read too), -ECONNRESET etc.
 *		With MEGAPIPE_READ_BUFFER in @op_flags (MEGAPIPE_FEAT_BUFFERS):
 *		@addr and @len are 0, and the data goes into a buffer taken
 *		from the buffer ring @buf_group (MEGAPIPE_IOC_BUFFERS) when it
 *		arrives; the completion has MEGAPIPE_CQE_F_BUFFER and the
 *		buffer's id in @new_handle, and the buffer is the process's
 *		again (to give back to the ring).  No buffer in the ring:
 *		-ENOBUFS.  With MEGAPIPE_READ_MULTISHOT too, the READ stays
 *		armed: it completes each time data arrives (with
 *		MEGAPIPE_CQE_F_MORE), into a new buffer each time, until
 *		end of stream, an error, -ENOBUFS, a CANCEL, or a completion
 *		that finds no completion-queue room for the next one: that
 *		last completion comes without MEGAPIPE_CQE_F_MORE, and the
 *		READ is over.  Reads behind an armed READ wait until it ends.
 * WRITE	@addr/@len: a buffer (@len 1..INT_MAX).  Completes when all of
 *		it is in the socket's send queue: @result @len; or when an error
 *		or a CANCEL stops it: @result the bytes queued before, if any,
 *		else -errno.  A short result is a partial write.
 * WRITEV	@addr: user pointer to @len (1..max_iov) struct iovec in the
 *		caller's native layout, read during the submit call; the
 *		buffers must stay valid until the completion.  Total at most
 *		INT_MAX.  Completes as WRITE.
 * DISCONNECT	Close of a connection: runs once every write submitted
 *		before it on the handle has completed; then completes pending
 *		reads with -ECANCELED, shuts the connection down and releases
 *		it (a lightweight socket is closed as close(2) closes, and TCP
 *		finishes the close: with unread data received, or with
 *		SO_LINGER {1, 0} (MEGAPIPE_IOC_SOCKOPT), it resets the
 *		connection and drops what is unsent, as close(2) does, in
 *		both backends; for a registered fd the channel drops its
 *		reference and the fd stays the caller's).  Its completion is the handle's last; the
 *		handle is invalid from submission on (EBADF) but to CANCEL,
 *		and its index may be reused after the completion.  A peer
 *		that never takes the writes before it (a zero window) holds
 *		it back: CANCEL them, and it runs.  Not for listeners (EINVAL).
 * CONNECT	@handle: MEGAPIPE_NO_HANDLE.  @addr/@len: a struct sockaddr_in
 *		or sockaddr_in6 (copied during the submit call).  Creates a
 *		lightweight TCP socket and connects it.  @cookie: the new
 *		handle's cookie.  Completion: @result 0 and @new_handle, or
 *		-errno (-ECONNREFUSED, ...) and MEGAPIPE_NO_HANDLE.
 * CANCEL	@handle: the handle whose pending requests to cancel, or
 *		MEGAPIPE_NO_HANDLE for the channel's pending CONNECTs.
 *		@op_flags: mask of MEGAPIPE_CANCEL_OP(opcode) of ACCEPT, READ,
 *		WRITE, WRITEV, CONNECT, POLL; 0 means all of these.  Requests
 *		submitted before it on the handle and still pending
 *		complete with -ECANCELED (a write with bytes already queued:
 *		with that partial count), each before the CANCEL's own
 *		completion, whose @result is how many were cancelled.  A
 *		handle with a DISCONNECT queued takes it too; the DISCONNECT
 *		then runs if no write is left before it, completing after.
 * POLL	@handle: a handle of MEGAPIPE_REGISTER_FILE (MEGAPIPE_FEAT_FILES).
 *		@len: the events to wait for: EPOLLIN, EPOLLPRI, EPOLLOUT,
 *		EPOLLRDNORM, EPOLLRDBAND, EPOLLWRNORM, EPOLLWRBAND,
 *		EPOLLMSG, EPOLLRDHUP (EPOLLERR and EPOLLHUP are always
 *		reported);
 *		@op_flags: 0 or MEGAPIPE_POLL_MULTISHOT.  Completes with
 *		@result the events of @len (and EPOLLERR, EPOLLHUP) the file
 *		has, as poll(2) reports them, once it has some: at
 *		submission if they are there, else when the file wakes its
 *		waiters with one of them.  It only waits: reading or
 *		writing the fd is the caller's.  With MEGAPIPE_POLL_MULTISHOT
 *		it stays armed and completes again (MEGAPIPE_CQE_F_MORE)
 *		each time the file wakes its waiters with one of the events
 *		and has them, as an EPOLLET epoll reports (not for a wakeup
 *		of other events only, nor one from before it), until a CANCEL, or
 *		a completion that finds no completion-queue room for the next
 *		one (that last one comes without MEGAPIPE_CQE_F_MORE).  A
 *		file whose wait queue dies before it (signalfd's, when the
 *		process that made it is gone) ends its POLLs: -ECANCELED.
 *		Another thread wakes a channel by writing to an eventfd the
 *		channel polls.
 *
 * Ordering: per handle, reads complete in submission order and so do
 * writes (WRITE, WRITEV, DISCONNECT).  After a write completes short or
 * with an error, the writes queued behind it at that moment complete with
 * -ECANCELED: the stream would otherwise have a hole.
 */
#define MEGAPIPE_OP_ACCEPT		1
#define MEGAPIPE_OP_READ		2
#define MEGAPIPE_OP_WRITE		3
#define MEGAPIPE_OP_WRITEV		4
#define MEGAPIPE_OP_DISCONNECT		5
#define MEGAPIPE_OP_CONNECT		6
#define MEGAPIPE_OP_CANCEL		7
#define MEGAPIPE_OP_POLL		8
#define MEGAPIPE_OP_LAST		MEGAPIPE_OP_POLL

/* megapipe_req.flags, for every opcode but CONNECT and CANCEL. */
#define MEGAPIPE_REQ_F_SET_COOKIE	0x1U /* handle's cookie = @cookie first */

/* megapipe_req.op_flags of ACCEPT. */
#define MEGAPIPE_ACCEPT_FD		0x1U /* regular fds (O_CLOEXEC), also registered */
#define MEGAPIPE_ACCEPT_NONBLOCK	0x2U /* with _FD: the fds are O_NONBLOCK */

/* megapipe_req.op_flags of READ (MEGAPIPE_FEAT_BUFFERS). */
#define MEGAPIPE_READ_BUFFER		0x1U /* into a buffer of @buf_group */
#define MEGAPIPE_READ_MULTISHOT		0x2U /* with _BUFFER: stays armed */

/* megapipe_req.op_flags of POLL (MEGAPIPE_FEAT_FILES). */
#define MEGAPIPE_POLL_MULTISHOT		0x1U /* stays armed */

/* megapipe_req.op_flags of CANCEL. */
#define MEGAPIPE_CANCEL_OP(op)		(1U << (op))
#define MEGAPIPE_CANCEL_ALL		(MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_ACCEPT) | \
					 MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_READ) | \
					 MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_WRITE) | \
					 MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_WRITEV) | \
					 MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_CONNECT) | \
					 MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_POLL))

/*
 * One request.  Fields an opcode does not use must be zero.
 *
 * @opcode:	MEGAPIPE_OP_*
 * @resv0:	zero
 * @flags:	MEGAPIPE_REQ_F_*
 * @handle:	the target handle (MEGAPIPE_NO_HANDLE for CONNECT)
 * @addr:	user pointer: buffer, iovec array, sockaddr, or ACCEPT's
 *		peer addresses
 * @len:	bytes, iovec count, sockaddr length, accept count, or POLL's
 *		events
 * @op_flags:	MEGAPIPE_ACCEPT_*, MEGAPIPE_READ_*, MEGAPIPE_POLL_* or a
 *		MEGAPIPE_CANCEL_OP() mask
 * @cookie:	with MEGAPIPE_REQ_F_SET_COOKIE, or CONNECT's new cookie
 * @user_data:	any value, returned in each of the request's completions
 *		(megapipe_cqe.user_data); MEGAPIPE_FEAT_USER_DATA (a kernel
 *		without it refuses a nonzero value with EINVAL)
 * @buf_group:	READ with MEGAPIPE_READ_BUFFER: the buffer ring's group
 * @resv1, @resv: zero
 *
 * Size: 64 bytes.
 */
struct megapipe_req {
	__u8	opcode;
	__u8	resv0;
	__u16	flags;
	__u32	handle;
	__u64	addr;
	__u32	len;
	__u32	op_flags;
	__u64	cookie;
	__u64	user_data;
	__u16	buf_group;
	__u16	resv1;
	__u32	resv2;
	__u64	resv[2];
};

/* ---- completions -------------------------------------------------------- */

#define MEGAPIPE_CQE_F_MORE		0x1U /* the ACCEPT, READ or POLL goes on */
/* ACCEPT: @result is a new fd, @new_handle is fd-backed */
#define MEGAPIPE_CQE_F_FD		0x2U
/* READ: the data is in the buffer whose id is @new_handle */
#define MEGAPIPE_CQE_F_BUFFER		0x4U

/*
 * One completion.
 *
 * @cookie:	the handle's cookie (CONNECT: the request's cookie)
 * @handle:	the request's handle (MEGAPIPE_NO_HANDLE for CONNECT)
 * @new_handle:	ACCEPT/CONNECT: the new handle; a READ with
 *		MEGAPIPE_CQE_F_BUFFER: the buffer's id; else MEGAPIPE_NO_HANDLE
 * @result:	bytes, accepted fd, count, POLL's events, 0, or -errno
 * @opcode:	the request's MEGAPIPE_OP_*
 * @resv0:	zero
 * @flags:	MEGAPIPE_CQE_F_*
 * @user_data:	the request's megapipe_req.user_data (every completion of
 *		an ACCEPT carries its one value; 0 before
 *		MEGAPIPE_FEAT_USER_DATA)
 *
 * The cookie names the connection, the user data the request: two WRITEs
 * of one handle complete with the same cookie and their own user data.
 * Size: 32 bytes.
 */
struct megapipe_cqe {
	__u64	cookie;
	__u32	handle;
	__u32	new_handle;
	__s32	result;
	__u8	opcode;
	__u8	resv0;
	__u16	flags;
	__u64	user_data;
};

/* ---- MEGAPIPE_IOC_BUFFERS: a ring of buffers for READs ----------------- */

#define MEGAPIPE_MAX_BUF_GROUPS		16
#define MEGAPIPE_MAX_BUF_ENTRIES	32768

/* One buffer in a buffer ring (user memory).  Size: 16 bytes. */
struct megapipe_buf {
	__u64	addr;
	__u32	len;		/* 1..INT_MAX */
	__u16	bid;		/* the id its completion names */
	__u16	resv;
};

/*
 * Register (or with @ring 0, remove) the buffer ring of group @group: an
 * array of @entries struct megapipe_buf in the caller's memory and a __u32
 * tail the process advances (a store-release) after it filled entries;
 * entry i is at index i & (@entries - 1).  The kernel takes buffers from
 * its own head on, reading each entry once as it takes it; a buffer taken
 * is named in a READ's completion and is the process's again from then
 * on, to be put back at the tail.  The kernel's head starts at 0; it
 * reads the tail again only once it has taken every entry the tail it
 * read last published (a tail moved back is seen then).  The
 * ring and the buffers must stay mapped while registered; an entry that
 * faults, or of length 0 or over INT_MAX, or with @resv set, fails the
 * READ that took it (-EFAULT, -EINVAL) and is consumed.  A tail more than
 * @entries ahead of the head is no buffer.  READs of a group removed
 * while they are pending complete with -ENOBUFS when data arrives.
 *
 * @ring:	in: user pointer to the entries, or 0 to remove
 * @tail:	in: user pointer to the tail (4-byte aligned)
 * @entries:	in: a power of two, 1..MEGAPIPE_MAX_BUF_ENTRIES
 * @group:	in: 0..MEGAPIPE_MAX_BUF_GROUPS - 1
 * @flags:	in: 0
 * @resv:	in: zero
 *
 * Errors: EEXIST the group has a ring; ENOENT (removing) it has none;
 * EINVAL; EFAULT; ENOMEM.  Size: 40 bytes.
 */
struct megapipe_buffers {
	__u64	ring;
	__u64	tail;
	__u32	entries;
	__u16	group;
	__u16	flags;
	__u64	resv[2];
};

/* ---- MEGAPIPE_IOC_SUBMIT: submit N requests, wait for and reap M ------- */

#define MEGAPIPE_SUBMIT_RING		0x1U /* a ring channel's SUBMIT */

/*
 * A channel set up with MEGAPIPE_SETUP_RING takes only SUBMITs with
 * MEGAPIPE_SUBMIT_RING, a channel without it only those without (EINVAL).
 * With MEGAPIPE_SUBMIT_RING: @reqs, @cqes and @max_cqes are 0; @nr_reqs:
 * take up to this many requests from the submission ring (0..max_batch;
 * fewer if fewer are there); @min_complete: wait until at least this many
 * completions are in the completion ring unconsumed (0..cq_entries).
 * A submission tail more than the ring's size ahead of its head: EINVAL,
 * nothing taken.
 * Out: @submitted the requests taken (the ring's head moved past them),
 * @error as below, @completed the unconsumed completions in the ring at
 * return.  A refused request is consumed too (the head moves past it): it
 * is the one at the old head + @submitted; those behind it stay in the
 * ring for the next call.  The rest of this comment is about copies.
 *
 * @reqs:	in: user pointer to @nr_reqs struct megapipe_req
 * @cqes:	in: user pointer to room for @max_cqes struct megapipe_cqe
 * @nr_reqs:	in: 0..max_batch
 * @max_cqes:	in: 0..max_batch
 * @min_complete: in: wait until this many completions (<= @max_cqes) are
 *		there, the timeout expires, or a signal arrives
 * @flags:	in: 0 or MEGAPIPE_SUBMIT_RING
 * @timeout_ns:	in: relative; < 0 waits without limit, 0 does not wait
 * @submitted:	out: requests taken, always a prefix of @reqs
 * @completed:	out: completions written to @cqes, oldest first
 * @error:	out: 0, or the -errno for which reqs[@submitted] was refused
 *		(EBADF unknown/stale handle, EINVAL bad opcode, flags, length
 *		or reserved fields, or an opcode that does not fit the handle,
 *		EBUSY no completion-queue room, EFAULT, ENOMEM,
 *		EAFNOSUPPORT, EMFILE RLIMIT_NOFILE handles, and for CONNECT
 *		what socket(2) would fail with: ENFILE, EACCES from an
 *		LSM); the requests after it are not looked at, and
 *		the call does not wait
 * @resv:	in: zero
 *
 * The requests are taken in order; those that can complete at once (data
 * queued, send space free) complete inside this call.  Then completions
 * are copied out.  The call returns 0 with the out fields set, also when
 * the timeout expired first (@completed < @min_complete).  It fails with
 * -1: EFAULT, EINVAL (bad flags/reserved fields, @min_complete >
 * @max_cqes), E2BIG (@nr_reqs or @max_cqes over max_batch), EBADFD (not
 * set up), EPERM (another process or fd table), all before anything is
 * taken; EINTR
 * when a signal interrupted the wait and no request was taken (if some
 * were, the call returns 0 instead, with what it has).  Size: 64 bytes.
 */
struct megapipe_submit {
	__u64	reqs;
	__u64	cqes;
	__u32	nr_reqs;
	__u32	max_cqes;
	__u32	min_complete;
	__u32	flags;
	__s64	timeout_ns;
	__u32	submitted;
	__u32	completed;
	__s32	error;
	__u32	resv[3];
};

/* ---- ioctls --------------------------------------------------------------- */

#define MEGAPIPE_IOC_INFO	_IOWR(MEGAPIPE_IOC_MAGIC, 0x00, struct megapipe_info)
#define MEGAPIPE_IOC_SETUP	_IOWR(MEGAPIPE_IOC_MAGIC, 0x01, struct megapipe_setup)
#define MEGAPIPE_IOC_REGISTER	_IOWR(MEGAPIPE_IOC_MAGIC, 0x02, struct megapipe_register)
#define MEGAPIPE_IOC_UNREGISTER	_IOW(MEGAPIPE_IOC_MAGIC, 0x03, struct megapipe_unregister)
#define MEGAPIPE_IOC_EXPORT	_IOWR(MEGAPIPE_IOC_MAGIC, 0x04, struct megapipe_export)
#define MEGAPIPE_IOC_SUBMIT	_IOWR(MEGAPIPE_IOC_MAGIC, 0x05, struct megapipe_submit)
#define MEGAPIPE_IOC_BUFFERS	_IOW(MEGAPIPE_IOC_MAGIC, 0x06, struct megapipe_buffers)
#define MEGAPIPE_IOC_SOCKOPT	_IOWR(MEGAPIPE_IOC_MAGIC, 0x07, struct megapipe_sockopt)

#endif /* _UAPI_LINUX_MEGAPIPE_H */
