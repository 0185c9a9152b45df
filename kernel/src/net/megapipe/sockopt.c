// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: MEGAPIPE_IOC_SOCKOPT, the socket behind a handle.
 *
 * A lightweight socket has no fd to call setsockopt(2) on.  This ioctl
 * does what setsockopt(2), getsockopt(2), getsockname(2) and
 * getpeername(2) do, through the same functions (do_sock_setsockopt()
 * and do_sock_getsockopt(): LSM and cgroup BPF hooks included), for the
 * options a server sets on its connections.  Options that would move
 * data past the channel (a ULP, zero-copy receive, socket filters),
 * consume what a completion reports (SO_ERROR), rebind the socket, or
 * make a DISCONNECT block (a lingering close) are refused: a socket that
 * needs one is exported to an fd first.
 */
#include <linux/audit.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/net.h>
#include <linux/security.h>
#include <linux/socket.h>
#include <linux/tcp.h>
#include <linux/uaccess.h>
#include <net/sock.h>

#include "megapipe.h"

struct mp_sockopt_def {
	int level;
	int optname;
	bool set;		/* settable; else read only */
};

static const struct mp_sockopt_def mp_sockopts[] = {
	{ SOL_SOCKET,	SO_KEEPALIVE,		true },
	{ SOL_SOCKET,	SO_RCVBUF,		true },
	{ SOL_SOCKET,	SO_SNDBUF,		true },
	{ SOL_SOCKET,	SO_PRIORITY,		true },
	{ SOL_SOCKET,	SO_LINGER,		true },
	{ SOL_SOCKET,	SO_TYPE,		false },
	{ SOL_SOCKET,	SO_DOMAIN,		false },
	{ SOL_SOCKET,	SO_PROTOCOL,		false },
	{ SOL_SOCKET,	SO_INCOMING_CPU,	false },
	{ SOL_SOCKET,	SO_COOKIE,		false },
	{ SOL_TCP,	TCP_NODELAY,		true },
	{ SOL_TCP,	TCP_CORK,		true },
	{ SOL_TCP,	TCP_KEEPIDLE,		true },
	{ SOL_TCP,	TCP_KEEPINTVL,		true },
	{ SOL_TCP,	TCP_KEEPCNT,		true },
	{ SOL_TCP,	TCP_USER_TIMEOUT,	true },
	{ SOL_TCP,	TCP_CONGESTION,		true },
	{ SOL_TCP,	TCP_NOTSENT_LOWAT,	true },
	{ SOL_TCP,	TCP_INFO,		false },
	{ SOL_TCP,	TCP_MAXSEG,		false },
	{ SOL_IP,	IP_TOS,			true },
	{ SOL_IPV6,	IPV6_TCLASS,		true },
};

static const struct mp_sockopt_def *mp_sockopt_find(int level, int optname)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(mp_sockopts); i++)
		if (mp_sockopts[i].level == level &&
		    mp_sockopts[i].optname == optname)
			return &mp_sockopts[i];
	return NULL;
}

static int mp_sockopt_set(struct socket *sock, const struct megapipe_sockopt *o)
{
	sockptr_t val = USER_SOCKPTR(u64_to_user_ptr(o->optval));
	struct linger lg;

	if (o->optlen > INT_MAX)
		return -EINVAL;
	if (o->level == SOL_SOCKET && o->optname == SO_LINGER) {
		/* checked and set from one copy: the value cannot change between */
		if (o->optlen < sizeof(lg))
			return -EINVAL;
		if (copy_from_user(&lg, u64_to_user_ptr(o->optval), sizeof(lg)))
			return -EFAULT;
		if (lg.l_onoff && lg.l_linger)
			return -EINVAL;
		return do_sock_setsockopt(sock, false, o->level, o->optname,
					  KERNEL_SOCKPTR(&lg), sizeof(lg));
	}
	return do_sock_setsockopt(sock, false, o->level, o->optname, val,
				  o->optlen);
}

static int mp_sockopt_name(struct socket *sock, bool peer,
			   const struct megapipe_sockopt *o, u32 __user *ulen)
{
	struct sockaddr_storage addr;
	int len, err;

	err = peer ? security_socket_getpeername(sock) :
		     security_socket_getsockname(sock);
	if (err)
		return err;
	len = READ_ONCE(sock->ops)->getname(sock, (struct sockaddr *)&addr, peer);
	if (len < 0)
		return len;
	/* as getsockname(2)/getpeername(2): audited, truncated, full length */
	err = audit_sockaddr(len, &addr);
	if (err)
		return err;
	if (copy_to_user(u64_to_user_ptr(o->optval), &addr,
			 min_t(u32, len, o->optlen)))
		return -EFAULT;
	return put_user(len, ulen);
}

long mp_sockopt(struct mp_chan *ch, struct megapipe_sockopt __user *arg)
{
	const struct mp_sockopt_def *def;
	struct megapipe_sockopt o;
	struct mp_handle *h;
	struct socket *sock;

	if (copy_from_user(&o, arg, sizeof(o)))
		return -EFAULT;
	if (o.resv || o.cmd > MEGAPIPE_SOCKOPT_PEERNAME)
		return -EINVAL;
	if (o.cmd >= MEGAPIPE_SOCKOPT_SOCKNAME && (o.level || o.optname))
		return -EINVAL;
	h = mp_handle_get(ch, o.handle);
	if (!h)
		return -EBADF;
	/* a file's handle only polls, even when the file is a socket */
	if (h->is_file)
		return -EOPNOTSUPP;
	sock = h->file ? sock_from_file(h->file) : h->sock;
	if (!sock)
		return -EBADF;
	switch (o.cmd) {
	case MEGAPIPE_SOCKOPT_SOCKNAME:
	case MEGAPIPE_SOCKOPT_PEERNAME:
		return mp_sockopt_name(sock, o.cmd == MEGAPIPE_SOCKOPT_PEERNAME,
				       &o, &arg->optlen);
	}
	def = mp_sockopt_find(o.level, o.optname);
	if (!def || (o.cmd == MEGAPIPE_SOCKOPT_SET && !def->set))
		return -EOPNOTSUPP;
	if (o.cmd == MEGAPIPE_SOCKOPT_SET)
		return mp_sockopt_set(sock, &o);
	return do_sock_getsockopt(sock, false, o.level, o.optname,
				  USER_SOCKPTR(u64_to_user_ptr(o.optval)),
				  USER_SOCKPTR(&arg->optlen));
}
