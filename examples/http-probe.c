// SPDX-License-Identifier: GPL-2.0
/*
 * http-probe: send raw bytes to an HTTP server, parse what comes back.
 * For the tests of mp-http (tests/scripts/http_mp.sh), where neither
 * curl nor python3 can be counted on.
 *
 *   http-probe [-c CHUNK] [-g GAP_MS] [-s] [-n COUNT] [-H LIST] [-b DIR]
 *              [-w WAIT_MS] [-t TIMEOUT_MS] ADDR PORT < request-bytes
 *
 * Sends standard input as it is, in pieces of CHUNK bytes GAP_MS apart
 * (default: at once; TCP_NODELAY, so each piece is a segment of its own),
 * then shuts down its sending side with -s.  Then reads responses: a
 * status line, header fields up to the empty line, and Content-Length
 * bytes of body, none for the responses numbered in LIST (1,3: answers
 * to HEAD).  Prints one line per response,
 *
 *   N STATUS length CONTENT-LENGTH connection VALUE|-[ allow VALUE]
 *
 * writes its body to DIR/N with -b, and ends with "closed" when the
 * server closed the connection, or "open" when it sent nothing for
 * WAIT_MS (default 300) after the COUNT-th response.  Exit status 1 on a
 * malformed response, bytes after the COUNT-th or no response for
 * TIMEOUT_MS (default 10000); 2 on bad usage or no connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSES	1024

static char *buf;		/* what came in and is not parsed yet */
static size_t buf_len, buf_cap;
static bool peer_closed;

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "http-probe: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static unsigned long num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		die(2, "bad %s '%s'", what, s);
	return v;
}

static int connect_to(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai;
	int one = 1, fd, err;

	err = getaddrinfo(addr, port, &hints, &ai);
	if (err)
		die(2, "%s port %s: %s", addr, port, gai_strerror(err));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen))
		die(2, "connect to %s port %s: %s", addr, port, strerror(errno));
	freeaddrinfo(ai);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(1, "send: %s", strerror(errno));
		p += n;
		len -= n;
	}
}

/*
 * Read more into buf, waiting up to @ms.  Returns 1 with data, 0 at the
 * end of the stream, -1 after @ms of silence.
 */
static int fill(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int r;

	if (peer_closed)
		return 0;
	do {
		r = poll(&p, 1, ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		die(1, "poll: %s", strerror(errno));
	if (!r)
		return -1;
	if (buf_cap - buf_len < 65536) {
		buf_cap = buf_cap ? 2 * buf_cap : 1 << 17;
		buf = realloc(buf, buf_cap);
		if (!buf)
			die(1, "out of memory");
	}
	n = recv(fd, buf + buf_len, buf_cap - buf_len, 0);
	if (n < 0 && errno == ECONNRESET)
		n = 0;		/* a reset ends the stream as well */
	if (n < 0)
		die(1, "recv: %s", strerror(errno));
	if (!n) {
		peer_closed = true;
		return 0;
	}
	buf_len += n;
	return 1;
}

/* Wait until buf holds @len bytes; die saying @what if they never come. */
static void need(int fd, size_t len, int timeout_ms, int resp, const char *what)
{
	while (buf_len < len) {
		int r = fill(fd, timeout_ms);

		if (r < 0)
			die(1, "response %d: no %s within %d ms", resp, what, timeout_ms);
		if (!r)
			die(1, "response %d: connection closed before its %s", resp, what);
	}
}

static void consume(size_t n)
{
	memmove(buf, buf + n, buf_len - n);
	buf_len -= n;
}

/* Parse response @resp; print its line; its body to @dir. */
static void response(int fd, int resp, bool head, const char *dir,
		     int timeout_ms)
{
	char conn[64] = "-", allow[64] = "", *end, *line, *eol;
	long length = -1;
	size_t head_len;
	int status;

	for (;;) {
		end = buf_len ? memmem(buf, buf_len, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		need(fd, buf_len + 1, timeout_ms, resp, "head");
	}
	head_len = end + 4 - buf;
	*end = '\0';
	if (strncmp(buf, "HTTP/1.1 ", 9) || sscanf(buf + 9, "%3d", &status) != 1 ||
	    buf[12] != ' ')
		die(1, "response %d: bad status line '%.40s'", resp, buf);
	for (line = strstr(buf, "\r\n"); line; line = eol) {
		line += 2;
		eol = strstr(line, "\r\n");
		if (eol)
			*eol = '\0';
		if (!strchr(line, ':'))
			die(1, "response %d: bad field line '%.40s'", resp, line);
		if (!strncasecmp(line, "Content-Length:", 15)) {
			if (length >= 0)
				die(1, "response %d: two Content-Length fields", resp);
			length = strtol(line + 15, NULL, 10);
		} else if (!strncasecmp(line, "Connection:", 11)) {
			snprintf(conn, sizeof(conn), "%s", line + 11 + strspn(line + 11, " \t"));
		} else if (!strncasecmp(line, "Allow:", 6)) {
			snprintf(allow, sizeof(allow), " allow %s", line + 6 + strspn(line + 6, " \t"));
		}
	}
	if (length < 0)
		die(1, "response %d: no Content-Length", resp);
	consume(head_len);
	printf("%d %d length %ld connection %s%s\n", resp, status, length, conn, allow);
	if (head)		/* Content-Length is the GET's */
		length = 0;
	need(fd, length, timeout_ms, resp, "body");
	if (dir) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%d", dir, resp);
		f = fopen(path, "w");
		if (!f || fwrite(buf, 1, length, f) != (size_t)length || fclose(f))
			die(2, "%s: %s", path, strerror(errno));
	}
	consume(length);
}

int main(int argc, char **argv)
{
	unsigned long chunk = 0, gap_ms = 0, wait_ms = 300, timeout_ms = 10000;
	bool head[MAX_RESPONSES + 1] = { false }, shut = false;
	char *req = NULL, *dir = NULL, *s;
	size_t req_len = 0, req_cap = 0, off;
	int count = -1, fd, c, i, r;

	while ((c = getopt(argc, argv, "c:g:sn:H:b:w:t:")) != -1) {
		switch (c) {
		case 'c':
			chunk = num(optarg, "chunk");
			break;
		case 'g':
			gap_ms = num(optarg, "gap");
			break;
		case 's':
			shut = true;
			break;
		case 'n':
			count = num(optarg, "count");
			if (count > MAX_RESPONSES)
				die(2, "at most %d responses", MAX_RESPONSES);
			break;
		case 'H':
			for (s = strtok(optarg, ","); s; s = strtok(NULL, ",")) {
				i = num(s, "response number");
				if (i < 1 || i > MAX_RESPONSES)
					die(2, "response number %d out of 1..%d", i, MAX_RESPONSES);
				head[i] = true;
			}
			break;
		case 'b':
			dir = optarg;
			break;
		case 'w':
			wait_ms = num(optarg, "wait");
			break;
		case 't':
			timeout_ms = num(optarg, "timeout");
			break;
		default:
			die(2, "usage: http-probe [-c CHUNK] [-g GAP_MS] [-s] [-n COUNT] [-H LIST] [-b DIR] [-w WAIT_MS] [-t TIMEOUT_MS] ADDR PORT < request");
		}
	}
	if (optind + 2 != argc)
		die(2, "usage: http-probe [options] ADDR PORT < request");

	for (;;) {		/* the request bytes, as they are */
		ssize_t n;

		if (req_cap - req_len < 4096) {
			req_cap = req_cap ? 2 * req_cap : 65536;
			req = realloc(req, req_cap);
			if (!req)
				die(2, "out of memory");
		}
		n = read(0, req + req_len, req_cap - req_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(2, "reading the request: %s", strerror(errno));
		if (!n)
			break;
		req_len += n;
	}

	fd = connect_to(argv[optind], argv[optind + 1]);
	for (off = 0; off < req_len; off += chunk ? chunk : req_len) {
		size_t n = chunk && chunk < req_len - off ? chunk : req_len - off;

		if (off && gap_ms)
			nanosleep(&(struct timespec){ gap_ms / 1000, gap_ms % 1000 * 1000000 }, NULL);
		send_all(fd, req + off, n);
	}
	if (shut)
		shutdown(fd, SHUT_WR);

	for (i = 1; count < 0 || i <= count; i++) {
		if (count < 0 && !buf_len) {	/* as many as come */
			r = fill(fd, wait_ms);
			if (r <= 0)
				break;
		}
		response(fd, i, i <= MAX_RESPONSES && head[i], dir, timeout_ms);
		fflush(stdout);
	}
	if (count >= 0 && !buf_len)
		r = fill(fd, wait_ms);
	else
		r = buf_len ? 1 : fill(fd, 0);
	if (r > 0)
		die(1, "%zu bytes after the last response: '%.40s'", buf_len, buf);
	printf("%s\n", r ? "open" : "closed");
	close(fd);
	free(req);
	free(buf);
	return 0;
}
