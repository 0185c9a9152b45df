// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: lightweight sockets.
 *
 * A connection accepted or connected through a channel gets a struct
 * socket (a sockfs inode: ss, /proc/net/tcp, sockstat, sock_diag, the
 * owner's uid, netns and memcg see it as any user socket) but no struct
 * file, no dentry, no fd and no epoll item: its handle is its only
 * reference.  The LSM hooks are those of the calls they stand for
 * (security_socket_accept, _create, _connect here; sock_recvmsg() and
 * sock_sendmsg() call _recvmsg and _sendmsg), so a VFS-free path is not
 * an LSM-free one.  Each carries its owner's credentials, those of the
 * thread that submitted its CONNECT or ACCEPT (sock_set_owner_cred()), where
 * a socket with a file has its file's: netfilter's owner match, nft meta
 * skuid/skgid, nflog and nfqueue see it as that thread's socket, as they
 * would one it made with socket(2) or accept(2).  Releasing the handle releases
 * the socket (TCP closes it as close(2) would); MEGAPIPE_IOC_EXPORT binds
 * it to a file first.
 */
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/security.h>
#include <net/sock.h>
#include <net/sock_owner.h>

#include "megapipe.h"

/*
 * Take one connection of the listener @lsock, without waiting: the new
 * socket, or an ERR_PTR (-EAGAIN when none is queued, -ECONNABORTED for
 * one that gave up before it was taken).  As do_accept(), less the file.
 */
struct socket *mp_lw_accept(struct mp_chan *ch, struct socket *lsock)
{
	struct proto_accept_arg arg = { .flags = O_NONBLOCK };
	const struct proto_ops *ops = READ_ONCE(lsock->ops);
	struct socket *sock;
	int err;

	sock = sock_alloc();
	if (!sock)
		return ERR_PTR(-ENFILE);
	sock->type = lsock->type;
	sock->ops = ops;
	/* the listener holds the protocol module */
	__module_get(ops->owner);
	sock_set_owner_cred(sock, current_cred());
	err = security_socket_accept(lsock, sock);
	if (!err)
		err = ops->accept(lsock, sock, &arg);
	if (err < 0) {
		mp_lw_release(sock);
		return ERR_PTR(err);
	}
	return sock;
}

/* A new TCP socket of @family in the caller's netns, for CONNECT. */
struct socket *mp_lw_create(struct mp_chan *ch, int family)
{
	struct socket *sock;
	int err;

	/* a user socket (kern = 0): security_socket_create and post_create */
	err = sock_create(family, SOCK_STREAM, IPPROTO_TCP, &sock);
	if (err)
		return ERR_PTR(err);
	sock_set_owner_cred(sock, current_cred());
	return sock;
}

/* Start connecting: 0 (connected), -EINPROGRESS, or -errno. */
int mp_lw_connect(struct socket *sock, struct sockaddr_storage *addr, int len)
{
	int err;

	err = security_socket_connect(sock, (struct sockaddr *)addr, len);
	if (err)
		return err;
	return READ_ONCE(sock->ops)->connect(sock, (struct sockaddr *)addr,
					     len, O_NONBLOCK);
}

/*
 * Bind a lightweight socket to a new file (MEGAPIPE_IOC_EXPORT).  On
 * failure the socket stays the handle's, untouched.
 */
struct file *mp_lw_file(struct socket *sock, bool nonblock)
{
	return sock_alloc_file_keep(sock, nonblock ? O_NONBLOCK : 0, NULL);
}

/* The socket has a file now: the file's credentials rule. */
void mp_lw_exported(struct socket *sock)
{
	sock_clear_owner_cred(sock);
}

/*
 * The handle's reference was the socket's only one: TCP closes it.  The
 * owner's credentials go after it is orphaned, so that its FIN is still
 * the owner's for netfilter.
 */
void mp_lw_release(struct socket *sock)
{
	const struct cred *cred = sock_owner_cred(sock);

	sock_release(sock);
	if (cred)
		put_cred(cred);
}
