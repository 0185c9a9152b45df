/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The credentials of a socket's owner, for the consumers that attribute a
 * socket to a user: netfilter's owner match and meta skuid/skgid, the uid
 * and gid in nflog and nfqueue, the flow classifier.
 *
 * A socket reached through a file is owned by whoever opened the file
 * (file->f_cred), as it always was.  A user socket made without a file (a
 * /dev/megapipe lightweight socket) carries the credentials of the one
 * who made it in its sockfs inode's i_private, set with
 * sock_set_owner_cred() before the socket can send.  Its maker drops that
 * reference with sock_clear_owner_cred() when the socket gets a file, or
 * after sock_release() when it never does (the socket is orphaned then,
 * and no reader reaches it; its FIN was still attributed).  put_cred()
 * frees after a grace period, so a reader under rcu_read_lock() or
 * sk_callback_lock (BH disabled) never sees a freed cred.  NULL: a kernel
 * socket, owned by nobody.
 */
#ifndef _NET_SOCK_OWNER_H
#define _NET_SOCK_OWNER_H

#include <linux/cred.h>
#include <linux/fs.h>
#include <net/sock.h>

static inline const struct cred *sock_owner_cred(struct socket *sock)
{
	const struct cred *cred = READ_ONCE(SOCK_INODE(sock)->i_private);
	struct file *file;

	/* pairs with sock_clear_owner_cred(): no cred seen, a file is */
	smp_rmb();
	file = READ_ONCE(sock->file);
	if (file)
		return file->f_cred;
	return cred;
}

/* Give a file-less socket its owner: takes a reference to @cred. */
static inline void sock_set_owner_cred(struct socket *sock,
				       const struct cred *cred)
{
	WRITE_ONCE(SOCK_INODE(sock)->i_private, (void *)get_cred(cred));
}

/* The socket got a file, whose f_cred rules now: drop the reference. */
static inline void sock_clear_owner_cred(struct socket *sock)
{
	const struct cred *cred = SOCK_INODE(sock)->i_private;

	/* the file first: a reader finding no cred finds the file */
	smp_wmb();
	WRITE_ONCE(SOCK_INODE(sock)->i_private, NULL);
	if (cred)
		put_cred(cred);
}

#endif /* _NET_SOCK_OWNER_H */
