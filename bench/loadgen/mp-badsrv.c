// SPDX-License-Identifier: GPL-2.0
/*
 * mp-badsrv: a deliberately broken server on 127.0.0.1, for checking that
 * mp-load detects and classifies failures.  One connection at a time: it
 * reads once, misbehaves as --fault says, and closes.
 *   mismatch  answers with the bytes it read, the first one altered
 *   short     answers with half of the bytes it read
 *   reset     answers nothing and closes with RST (SO_LINGER 0)
 *   silent    never accepts: connections wait in the backlog, unanswered
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum fault { MISMATCH, SHORT, RESET, SILENT };

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: mp-badsrv --port P --fault mismatch|short|reset|silent\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "mismatch", "short", "reset", "silent" };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	int fault = -1, port = 0, one = 1, lfd, fd, i;
	char buf[4096];
	ssize_t n;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port")) {
			port = atoi(argv[i + 1]);
		} else if (!strcmp(argv[i], "--fault")) {
			for (fault = SILENT; fault >= 0; fault--)
				if (!strcmp(argv[i + 1], names[fault]))
					break;
		} else {
			usage();
		}
	}
	if (i != argc || port <= 0 || port > 65535 || fault < 0)
		usage();

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("mp-badsrv: socket");
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die("mp-badsrv: setsockopt(SO_REUSEADDR)");
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)))
		die("mp-badsrv: bind");
	if (listen(lfd, 4096))
		die("mp-badsrv: listen");
	printf("ready mp-badsrv port %d fault %s\n", port, names[fault]);
	fflush(stdout);

	if (fault == SILENT)
		for (;;)
			pause();

	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			die("mp-badsrv: accept");
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0 && fault == MISMATCH) {
			buf[0] ^= 0x20;
			send(fd, buf, n, MSG_NOSIGNAL);
		} else if (n > 0 && fault == SHORT) {
			send(fd, buf, n / 2, MSG_NOSIGNAL);
		} else if (fault == RESET &&
			   setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin))) {
			die("mp-badsrv: setsockopt(SO_LINGER)");
		}
		close(fd);
	}
}
