// SPDX-License-Identifier: GPL-2.0
/*
 * mp-http: an HTTP/1.1 server of static bodies on MegaPipe channels, on
 * the channel server skeleton (mp_server.c), to compare with nginx serving
 * a static file on the same kernel.  See docs/http.md.
 *
 * Bodies: --root DIR serves the regular files directly in DIR, read into
 * memory at start, at "/NAME" ("/" is "/index.html"); requests never touch
 * the file system, so no path can lead out of DIR, and symbolic links,
 * subdirectories and names other than [A-Za-z0-9._~-] are left out.
 * Without --root every path serves the benchmark's body of --size bytes
 * (bench/servers/http_body.h repeated; at the default 64 the very body
 * mp-load checks), as the baseline servers' http mode does.
 *
 * Requests: GET and HEAD; any other method gets 405 (with Allow).
 * HTTP/1.1 keeps the connection unless "Connection: close", HTTP/1.0
 * closes it unless "Connection: keep-alive"; pipelined requests are
 * answered in order, whether they come in one read or a byte at a time.
 * A Content-Length body is read and dropped (unless the client waits for
 * "100 Continue": then the connection closes); a chunked one is refused
 * (501).  A malformed request gets 400, a head over HEAD_MAX 431 (414 when
 * the request line alone is), a body over BODY_MAX 413, HTTP/2 or other
 * versions 505; each of these closes the connection.  Responses carry
 * Date, Content-Type, Content-Length and Connection; each body is copied
 * into the connection's output (small bodies are what this is for).
 *
 * Options and output contract of mp-echo (--addr --port --threads --cpus
 * --backlog --max-conns --size --copy --epoll --single; "ready ...", "stats
 * accepted N requests N errors N": requests = responses, errors = those
 * that close for a bad request) plus --root DIR.  --proto is http or
 * absent.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http_body.h"
#include "mp_server.h"

#define HEAD_MAX	8192		/* longest request head */
#define BODY_MAX	(1 << 20)	/* longest request body (dropped) */
#define OUT_HIGH	(256 * 1024)	/* pipelining: reply this much at a time */
#define FILE_MAX	(16 << 20)	/* largest file under --root */
#define FILES_MAX	4096
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* A response body and its header fields. */
struct http_body {
	char *data;
	size_t len;
	char *fields;		/* "Content-Type: ...\r\nContent-Length: N\r\n" */
	size_t fields_len;
};

struct http_file {
	char *path;		/* "/NAME" */
	struct http_body b;
};

static struct http_file *files;	/* --root, sorted by path */
static size_t nfiles;
static struct http_body generated;	/* no --root: at every path */

/* The statuses, each with its status line and a body of its own. */
enum {
	S_OK, S_BAD, S_NOT_FOUND, S_METHOD, S_TOO_LARGE, S_URI_LONG,
	S_HEAD_LARGE, S_NOT_IMPL, S_VERSION, S_NR
};

struct http_status {
	const char *start;	/* status line and the fields before Date's value */
	const char *text;	/* its body */
	bool closes;		/* a bad request: the stream is no longer trusted */
	struct http_body b;
};

static struct http_status statuses[S_NR] = {
#define STATUS(s, line, c) [s] = { "HTTP/1.1 " line "\r\nServer: mp-http\r\nDate: ", line "\n", c }
	STATUS(S_OK, "200 OK", false),
	STATUS(S_BAD, "400 Bad Request", true),
	STATUS(S_NOT_FOUND, "404 Not Found", false),
	STATUS(S_METHOD, "405 Method Not Allowed", false),
	STATUS(S_TOO_LARGE, "413 Content Too Large", true),
	STATUS(S_URI_LONG, "414 URI Too Long", true),
	STATUS(S_HEAD_LARGE, "431 Request Header Fields Too Large", true),
	STATUS(S_NOT_IMPL, "501 Not Implemented", true),
	STATUS(S_VERSION, "505 HTTP Version Not Supported", true),
#undef STATUS
};

struct http_conn {
	struct srv_buf out;	/* the responses being written */
	unsigned long skip;	/* request body bytes still to drop */
};

/* What the head of one request says. */
struct http_req {
	const char *method, *target;
	size_t method_len, target_len;
	int minor;		/* HTTP/1.minor */
	int hosts;
	bool conn_close, conn_keep, expect_continue, chunked, has_length;
	unsigned long length;
};

/* ---- bodies -------------------------------------------------------------- */

static void body_init(struct http_body *b, char *data, size_t len,
		      const char *type)
{
	b->data = data;
	b->len = len;
	if (asprintf(&b->fields, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		     type, len) < 0)
		srv_die("asprintf");
	b->fields_len = strlen(b->fields);
}

static const char *content_type(const char *name)
{
	static const char *const types[][2] = {
		{ ".html", "text/html" }, { ".htm", "text/html" },
		{ ".txt", "text/plain" }, { ".css", "text/css" },
		{ ".js", "text/javascript" }, { ".json", "application/json" },
		{ ".svg", "image/svg+xml" }, { ".png", "image/png" },
		{ ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" },
		{ ".gif", "image/gif" }, { ".ico", "image/x-icon" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot && i < ARRAY_SIZE(types); i++)
		if (!strcasecmp(dot, types[i][0]))
			return types[i][1];
	return "application/octet-stream";
}

/* Unreserved characters only: such a name needs no escaping in a URL. */
static bool plain_name(const char *s)
{
	if (*s == '.')		/* ".", "..", hidden files */
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._~-", *s)))
			return false;
	return true;
}

/* Bad --root contents: say which and stop. */
static void __attribute__((noreturn, format(printf, 2, 3)))
root_fail(const char *dir, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mp-http: --root %s: ", dir);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Read the regular file @name of @dir (not a link to one) into @f. */
static void load_file(int dfd, const char *dir, const char *name,
		      struct http_file *f)
{
	size_t got = 0, size;
	struct stat st;
	char *data, extra;
	ssize_t n;
	int fd;

	/* O_NOFOLLOW: a link swapped in after the check fails with ELOOP */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st))
		srv_die("--root %s: %s", dir, name);
	if (!S_ISREG(st.st_mode))
		root_fail(dir, "%s changed while loading", name);
	if (st.st_size > FILE_MAX)
		root_fail(dir, "%s is over %d bytes", name, FILE_MAX);
	size = st.st_size;
	data = malloc(size ? size : 1);
	if (!data)
		srv_die("--root %s: %s", dir, name);
	while (got < size) {
		n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			srv_die("--root %s: reading %s", dir, name);
		if (!n)
			break;
		got += n;
	}
	/* one more byte would say it grew */
	if (got != size || read(fd, &extra, 1) > 0)
		root_fail(dir, "%s changed while loading", name);
	close(fd);
	if (asprintf(&f->path, "/%s", name) < 0)
		srv_die("asprintf");
	body_init(&f->b, data, size, content_type(name));
}

static int file_cmp(const void *a, const void *b)
{
	const struct http_file *x = a, *y = b;

	return strcmp(x->path, y->path);
}

static void load_root(const char *dir)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d)
		srv_die("--root %s", dir);
	files = calloc(FILES_MAX, sizeof(*files));
	if (!files)
		srv_die("calloc");
	while ((errno = 0, de = readdir(d))) {
		if (!plain_name(de->d_name)) {
			if (de->d_name[0] != '.')
				fprintf(stderr, "mp-http: --root: %s left out (not [A-Za-z0-9._~-])\n",
					de->d_name);
			continue;
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			srv_die("--root %s: %s", dir, de->d_name);
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "mp-http: --root: %s left out (%s)\n", de->d_name,
				S_ISLNK(st.st_mode) ? "a symbolic link" :
				S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
			continue;
		}
		if (nfiles == FILES_MAX)
			root_fail(dir, "more than %d files", FILES_MAX);
		load_file(dfd, dir, de->d_name, &files[nfiles++]);
	}
	if (errno)
		srv_die("--root %s: readdir", dir);
	closedir(d);
	if (!nfiles)
		root_fail(dir, "no regular file to serve");
	qsort(files, nfiles, sizeof(*files), file_cmp);
	fprintf(stderr, "mp-http: serving %zu file%s from %s\n", nfiles,
		nfiles == 1 ? "" : "s", dir);
}

static void free_bodies(void)
{
	size_t i;

	for (i = 0; i < nfiles; i++) {
		free(files[i].path);
		free(files[i].b.data);
		free(files[i].b.fields);
	}
	free(files);
	free(generated.data);
	free(generated.fields);
	for (i = 0; i < S_NR; i++)
		free(statuses[i].b.fields);
}

/* ---- requests ------------------------------------------------------------ */

/* RFC 9110 tchar: the characters of a method or a field name. */
static bool tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool field_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && !strncasecmp(name, want, len);
}

/* Is @token one of the comma-separated elements of [v, end)? */
static bool list_has(const char *v, const char *end, const char *token)
{
	const char *e, *t;

	while (v < end) {
		while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
			v++;
		for (e = v; e < end && *e != ','; e++)
			;
		for (t = e; t > v && (t[-1] == ' ' || t[-1] == '\t'); t--)
			;
		if (field_is(v, t - v, token))
			return true;
		v = e;
	}
	return false;
}

/* One header field line [line, eol); returns a status or -1. */
static int parse_field(const char *line, const char *eol, struct http_req *q)
{
	const char *colon = line, *v, *ve, *s;
	size_t nlen;

	while (colon < eol && tchar(*colon))
		colon++;
	/* also a folded line (leading blank) and a blank before the colon */
	if (colon == line || colon == eol || *colon != ':')
		return S_BAD;
	nlen = colon - line;
	for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
		;
	for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
		;
	for (s = v; s < ve; s++)	/* no control characters but HTAB */
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return S_BAD;

	if (field_is(line, nlen, "host")) {
		q->hosts++;
	} else if (field_is(line, nlen, "connection")) {
		q->conn_close |= list_has(v, ve, "close");
		q->conn_keep |= list_has(v, ve, "keep-alive");
	} else if (field_is(line, nlen, "content-length")) {
		unsigned long n = 0;

		if (v == ve)
			return S_BAD;
		for (s = v; s < ve; s++) {
			if (*s < '0' || *s > '9')
				return S_BAD;
			if (n <= BODY_MAX)	/* past it, only the digits matter */
				n = n * 10 + (*s - '0');
		}
		if (q->has_length && n != q->length)
			return S_BAD;	/* which one frames the body? */
		q->has_length = true;
		q->length = n;
	} else if (field_is(line, nlen, "transfer-encoding")) {
		q->chunked = true;
	} else if (field_is(line, nlen, "expect")) {
		q->expect_continue |= field_is(v, ve - v, "100-continue");
	}
	return -1;
}

/*
 * Parse the head [p, p + len), which ends in the empty line: the request
 * line "METHOD TARGET HTTP/1.x" and the fields.  Returns a status or -1.
 */
static int parse_head(const char *p, size_t len, struct http_req *q)
{
	const char *end = p + len - 2, *eol, *s;
	int st;

	eol = memmem(p, len, "\r\n", 2);
	for (s = p; s < eol && tchar(*s); s++)
		;
	if (s == p || *s != ' ')
		return S_BAD;
	q->method = p;
	q->method_len = s - p;
	for (p = ++s; s < eol && *s > ' ' && *s < 0x7f; s++)
		;
	if (s == p || *s != ' ')
		return S_BAD;
	q->target = p;
	q->target_len = s - p;
	p = s + 1;
	if (eol - p != 8 || memcmp(p, "HTTP/", 5) || p[5] < '0' || p[5] > '9' ||
	    p[6] != '.' || p[7] < '0' || p[7] > '9')
		return S_BAD;
	if (p[5] != '1')
		return S_VERSION;
	q->minor = p[7] - '0';

	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memmem(p, end + 2 - p, "\r\n", 2);
		st = parse_field(p, eol, q);
		if (st >= 0)
			return st;
	}
	if (q->hosts > 1 || (q->minor && !q->hosts))	/* RFC 9112 3.2 */
		return S_BAD;
	if (q->chunked)
		return S_NOT_IMPL;
	if (q->length > BODY_MAX)
		return S_TOO_LARGE;
	return -1;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The body at the request target (*status S_OK), or NULL and why. */
static const struct http_body *lookup(const char *t, size_t len, int *status)
{
	char path[HEAD_MAX];
	struct http_file key = { .path = path }, *f;
	size_t i = 0, n = 0;

	/* absolute-form: the path after "scheme://authority" */
	if (len > 7 && !strncasecmp(t, "http://", 7))
		i = 7;
	else if (len > 8 && !strncasecmp(t, "https://", 8))
		i = 8;
	if (i) {
		while (i < len && t[i] != '/')
			i++;
		t = i < len ? t + i : "/";
		len = i < len ? len - i : 1;
	}
	*status = S_BAD;
	if (!len || t[0] != '/')
		return NULL;
	/* percent-decoded, without the query */
	for (i = 0; i < len && t[i] != '?'; i++) {
		if (t[i] != '%') {
			path[n++] = t[i];
			continue;
		}
		if (i + 2 >= len || hexval(t[i + 1]) < 0 || hexval(t[i + 2]) < 0)
			return NULL;
		path[n++] = hexval(t[i + 1]) << 4 | hexval(t[i + 2]);
		i += 2;
	}
	*status = S_OK;
	if (!files)
		return &generated;
	*status = S_NOT_FOUND;
	if (n == 1) {
		memcpy(path, "/index.html", 11);
		n = 11;
	}
	path[n] = '\0';
	if (strlen(path) != n)		/* an encoded NUL */
		return NULL;
	f = bsearch(&key, files, nfiles, sizeof(*files), file_cmp);
	if (f)
		*status = S_OK;
	return f ? &f->b : NULL;
}

/* ---- responses ----------------------------------------------------------- */

/* The Date field's value, formatted once a second per thread. */
static const char *http_date(void)
{
	static __thread char buf[32];
	static __thread time_t last;
	time_t now = time(NULL);
	struct tm tm;

	if (now != last && gmtime_r(&now, &tm)) {
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return buf;
}

static void respond(struct http_conn *c, int status,
		    const struct http_body *b, bool head, bool keep)
{
	static const char keep_alive[] = "Connection: keep-alive\r\n\r\n";
	static const char closing[] = "Connection: close\r\n\r\n";
	const struct http_status *s = &statuses[status];
	const char *date = http_date();

	if (!b)
		b = &s->b;
	srv_buf_append(&c->out, s->start, strlen(s->start));
	srv_buf_append(&c->out, date, strlen(date));
	srv_buf_append(&c->out, "\r\n", 2);
	srv_buf_append(&c->out, b->fields, b->fields_len);
	if (status == S_METHOD)
		srv_buf_append(&c->out, "Allow: GET, HEAD\r\n", 18);
	if (keep)
		srv_buf_append(&c->out, keep_alive, sizeof(keep_alive) - 1);
	else
		srv_buf_append(&c->out, closing, sizeof(closing) - 1);
	if (!head)
		srv_buf_append(&c->out, b->data, b->len);
}

/* Answer the request whose head is [p, p + len); false: close after it. */
static bool request(struct http_conn *c, struct srv_thread *t, const char *p,
		    size_t len)
{
	const struct http_body *b = NULL;
	struct http_req q = { 0 };
	bool head = false, keep = false;
	int status = parse_head(p, len, &q);

	if (status < 0) {
		/* HTTP/1.1 keeps the connection by default, 1.0 closes it */
		keep = !q.conn_close && (q.minor || q.conn_keep);
		/* a client waiting for "100 Continue" may not send its body */
		if (q.expect_continue && q.length)
			keep = false;
		c->skip = q.length;
		/* methods are case-sensitive */
		head = q.method_len == 4 && !memcmp(q.method, "HEAD", 4);
		if (!head && !(q.method_len == 3 && !memcmp(q.method, "GET", 3)))
			status = S_METHOD;
		else
			b = lookup(q.target, q.target_len, &status);
	}
	if (statuses[status].closes) {
		keep = false;
		t->stats.errors++;
	}
	respond(c, status, b, head, keep);
	t->stats.requests++;
	return keep;
}

/* A request the stream cannot go on after: answer it and close. */
static void refuse(struct http_conn *c, struct srv_thread *t, int status,
		   struct mps_reply *r)
{
	respond(c, status, NULL, false, false);
	t->stats.requests++;
	t->stats.errors++;
	r->next = MPS_CLOSE;
}

static long http_input(void *state, struct srv_thread *t, const char *data,
		       size_t len, struct mps_reply *r)
{
	struct http_conn *c = state;
	const char *p = data, *end = data + len, *h, *nl;
	size_t n;

	c->out.len = 0;		/* written */
	if (c->out.cap > 2 * OUT_HIGH)
		srv_buf_free(&c->out);
	while (p < end && c->out.len < OUT_HIGH && r->next != MPS_CLOSE) {
		n = end - p;
		if (c->skip) {		/* the last request's body */
			if (n > c->skip)
				n = c->skip;
			p += n;
			c->skip -= n;
			continue;
		}
		/* RFC 9112 2.2: empty lines before a request line are ignored */
		if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
			p += 2;
			continue;
		}
		if (n > HEAD_MAX)
			n = HEAD_MAX;
		/* lines end in CRLF: a bare LF would never end the head */
		nl = memchr(p, '\n', n);
		if (nl && (nl == p || nl[-1] != '\r')) {
			refuse(c, t, S_BAD, r);
			break;
		}
		h = memmem(p, n, "\r\n\r\n", 4);
		if (h) {
			if (!request(c, t, p, h + 4 - p))
				r->next = MPS_CLOSE;
			p = h + 4;
		} else if (n == HEAD_MAX) {
			refuse(c, t, nl ? S_HEAD_LARGE : S_URI_LONG, r);
		} else {
			break;		/* the rest of the head comes later */
		}
	}
	if (r->next == MPS_CLOSE)	/* what follows is dropped */
		p = end;
	r->data = c->out.data;
	r->len = c->out.len;
	return p - data;
}

static void http_close(void *state, struct srv_thread *t)
{
	struct http_conn *c = state;

	(void)t;
	srv_buf_free(&c->out);
}

static const struct mps_proto http_proto = {
	.state_size	= sizeof(struct http_conn),
	.input		= http_input,
	.close		= http_close,
};

/* ---- main ---------------------------------------------------------------- */

/* The value of option @name at argv[*i] ("--name V" or "--name=V"), or NULL. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n])
		return NULL;
	if (*i + 1 == argc) {
		fprintf(stderr, "mp-http: %s needs a value\n", name);
		exit(2);
	}
	return argv[++*i];
}

int main(int argc, char **argv)
{
	const char *root = NULL, *v;
	struct srv_opts o;
	int i, j;
	size_t k;

	/* ours: --root DIR; --proto, which can only be http */
	for (i = j = 1; i < argc; i++) {
		v = opt_value(argc, argv, &i, "--root");
		if (v) {
			root = v;
			continue;
		}
		v = opt_value(argc, argv, &i, "--proto");
		if (v && strcmp(v, "http")) {
			fprintf(stderr, "mp-http: --proto %s: this server speaks http only\n", v);
			return 2;
		}
		if (!v)
			argv[j++] = argv[i];
	}
	argv[j] = NULL;
	argc = mps_options(j, argv);
	srv_parse_args(argc, argv, &o, "mp-http", 0);
	o.proto = PROTO_HTTP;

	for (k = 0; k < S_NR; k++)
		body_init(&statuses[k].b, (char *)statuses[k].text,
			  strlen(statuses[k].text), "text/plain");
	if (root) {
		load_root(root);
	} else {
		char *body = malloc(o.size);

		if (!body)
			srv_die("malloc");
		for (k = 0; k < o.size; k++)
			body[k] = HTTP_BODY[k % HTTP_BODY_LEN];
		body_init(&generated, body, o.size, "text/plain");
	}
	mps_run(&o, &http_proto);
	free_bodies();
	free(o.cpus);
	return 0;
}
