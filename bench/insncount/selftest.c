// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side workload for selftest.sh: runs N operations inside one
 * insncount window.
 *   selftest getpid N   N getpid() system calls
 *   selftest accept N   N loopback TCP connect + accept + close pairs
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "marker.h"

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void run_getpid(long n)
{
	mp_mark_start();
	while (n--)
		syscall(SYS_getpid);
	mp_mark_stop();
}

static void run_accept(long n)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	int lfd, one = 1;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len))
		die("bind/listen");

	mp_mark_start();
	while (n--) {
		int cfd = socket(AF_INET, SOCK_STREAM, 0);
		int afd;

		if (cfd < 0 || connect(cfd, (struct sockaddr *)&addr, sizeof(addr)))
			die("connect");
		afd = accept(lfd, NULL, NULL);
		if (afd < 0)
			die("accept");
		close(afd);
		close(cfd);
	}
	mp_mark_stop();
}

int main(int argc, char **argv)
{
	long n = argc == 3 ? atol(argv[2]) : 0;

	if (n > 0 && !strcmp(argv[1], "getpid"))
		run_getpid(n);
	else if (n > 0 && !strcmp(argv[1], "accept"))
		run_accept(n);
	else {
		fprintf(stderr, "usage: selftest getpid|accept N\n");
		return 2;
	}
	return 0;
}
