// SPDX-License-Identifier: GPL-2.0
/*
 * kv_proto: the memcached text protocol.  See kv_proto.h and docs/kv.md.
 *
 * Input is parsed in place: a command line is handled once its '\n' is in
 * the buffer; a storage command's data block is copied into its item as it
 * arrives, whatever the split; a get/gets of many keys may stop between
 * two keys when the output is large and go on after it is written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv_proto.h"

#define MAX_TOKENS	8	/* more: a malformed command (get excepted) */

enum { ST_LINE, ST_DATA };

struct tok {
	const char *p;
	size_t n;
};

/* ---- output ----------------------------------------------------------- */

static bool out_room(struct kv_conn *c, size_t n)
{
	struct kv_buf *b = &c->out;
	size_t cap;
	char *p;

	if (b->cap - b->len >= n)
		return true;
	cap = b->cap ? b->cap : 1024;
	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		c->closing = true;	/* drop the connection, keep serving */
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

static void out_put(struct kv_conn *c, const void *p, size_t n)
{
	if (out_room(c, n)) {
		memcpy(c->out.data + c->out.len, p, n);
		c->out.len += n;
	}
}

static void out_str(struct kv_conn *c, const char *s)
{
	out_put(c, s, strlen(s));
}

/* @s plus "\r\n", unless the command said noreply. */
static void reply(struct kv_conn *c, const char *s)
{
	if (c->noreply)
		return;
	out_str(c, s);
	out_put(c, "\r\n", 2);
}

/* ERROR and CLIENT_ERROR go out even with noreply. */
static void reply_error(struct kv_conn *c, const char *s)
{
	c->stats->errors++;
	c->noreply = false;
	reply(c, s);
}

static size_t fmt_u64(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

static void out_u64(struct kv_conn *c, uint64_t v)
{
	char buf[20];

	out_put(c, buf, fmt_u64(buf, v));
}

/* ---- tokens and numbers ------------------------------------------------- */

/* Split [p, end) at runs of spaces; returns the count, MAX_TOKENS + 1 if more. */
static int tokenize(const char *p, const char *end, struct tok *t)
{
	int n = 0;

	for (;;) {
		const char *s;

		while (p < end && *p == ' ')
			p++;
		if (p == end)
			return n;
		if (n == MAX_TOKENS)
			return MAX_TOKENS + 1;
		s = p;
		while (p < end && *p != ' ')
			p++;
		t[n].p = s;
		t[n].n = p - s;
		n++;
	}
}

static bool tok_is(const struct tok *t, const char *s)
{
	size_t n = strlen(s);

	return t->n == n && !memcmp(t->p, s, n);
}

static bool parse_u64(const struct tok *t, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (!t->n || t->n > 20)
		return false;
	for (i = 0; i < t->n; i++) {
		unsigned int d = (unsigned char)t->p[i] - '0';

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

static bool parse_u32(const struct tok *t, uint32_t *v)
{
	uint64_t x;

	if (!parse_u64(t, &x) || x > UINT32_MAX)
		return false;
	*v = x;
	return true;
}

/* A signed number that fits 32 bits (memcached's exptime and length). */
static bool parse_i32(const struct tok *t, int64_t *v)
{
	struct tok u = *t;
	bool neg = false;
	uint64_t x;

	if (u.n && u.p[0] == '-') {
		neg = true;
		u.p++;
		u.n--;
	}
	if (!parse_u64(&u, &x) || x > (neg ? 2147483648ULL : 2147483647ULL))
		return false;
	*v = neg ? -(int64_t)x : (int64_t)x;
	return true;
}

/* ---- commands ----------------------------------------------------------- */

struct get_arg {
	struct kv_conn *c;
	bool with_cas;
};

/* Under the store's lock: "VALUE key flags bytes [cas]\r\n" data "\r\n". */
static void put_value(void *arg, const struct kv_item *it)
{
	struct get_arg *g = arg;
	struct kv_conn *c = g->c;
	char *p;

	/* "VALUE " key ' ' 10 ' ' 10 ' ' 20 "\r\n", then the data */
	if (!out_room(c, 6 + it->nkey + 47 + it->nbytes + 2))
		return;
	p = c->out.data + c->out.len;
	memcpy(p, "VALUE ", 6);
	p += 6;
	memcpy(p, it->data, it->nkey);
	p += it->nkey;
	*p++ = ' ';
	p += fmt_u64(p, it->flags);
	*p++ = ' ';
	p += fmt_u64(p, it->nbytes);
	if (g->with_cas) {
		*p++ = ' ';
		p += fmt_u64(p, it->cas);
	}
	*p++ = '\r';
	*p++ = '\n';
	memcpy(p, kv_item_cvalue(it), it->nbytes + 2);
	p += it->nbytes + 2;
	c->out.len = p - c->out.data;
}

/*
 * Go on with the get whose keys start at c->get_next.  Returns true if
 * it paused (output over the high-water mark, keys left), false once its
 * END is out and its line consumed.
 */
static bool get_keys(struct kv_conn *c)
{
	struct get_arg g = { .c = c, .with_cas = c->get_cas };
	const char *p = c->in + c->get_next, *end = c->in + c->get_eol;

	for (;;) {
		const char *k;

		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		k = p;
		while (p < end && *p != ' ')
			p++;
		kv_store_get(c->store, k, p - k, put_value, &g);
		c->get_next = p - c->in;
		if (c->out.len > KV_OUT_HIGH && !c->closing) {
			while (p < end && *p == ' ')
				p++;
			if (p < end)
				return true;
		}
	}
	out_put(c, "END\r\n", 5);
	c->get_next = 0;
	c->in_start = c->get_eol;
	return false;
}

/*
 * get/gets: the keys are checked first (a key over KV_KEY_MAX fails the
 * command before any value goes out), then looked up one by one.
 * @lend: the line's end ("\r" or "\n"); @next: the byte after its "\n".
 */
static bool cmd_get(struct kv_conn *c, const char *args, const char *lend,
		    const char *next, bool with_cas)
{
	const char *p = args;
	int nkeys = 0;

	while (p < lend) {
		const char *k;

		while (p < lend && *p == ' ')
			p++;
		if (p == lend)
			break;
		k = p;
		while (p < lend && *p != ' ')
			p++;
		if (p - k > KV_KEY_MAX) {
			reply_error(c, "CLIENT_ERROR bad command line format");
			c->in_start = next - c->in;
			return false;
		}
		nkeys++;
	}
	if (!nkeys) {
		reply_error(c, "ERROR");
		c->in_start = next - c->in;
		return false;
	}
	/* get_keys() consumes the line up to get_eol: make that "next" */
	c->get_next = args - c->in;
	c->get_eol = lend - c->in;
	c->get_cas = with_cas;
	if (get_keys(c))
		return true;
	c->in_start = next - c->in;
	return false;
}

static void cmd_store(struct kv_conn *c, const struct tok *t, int n,
		      enum kv_mode mode)
{
	int want = mode == KV_CAS ? 6 : 5;
	int64_t exptime, len;
	uint32_t flags;
	uint64_t cas = 0;

	if (n != want && n != want + 1) {
		reply_error(c, "ERROR");
		return;
	}
	c->noreply = n == want + 1 && tok_is(&t[want], "noreply");
	if (t[1].n > KV_KEY_MAX || !parse_u32(&t[2], &flags) ||
	    !parse_i32(&t[3], &exptime) || !parse_i32(&t[4], &len) || len < 0 ||
	    (mode == KV_CAS && !parse_u64(&t[5], &cas))) {
		reply_error(c, "CLIENT_ERROR bad command line format");
		return;
	}
	c->state = ST_DATA;
	c->data_left = (size_t)len + 2;
	c->data_got = 0;
	c->mode = mode;
	c->cas = cas;
	c->item = NULL;
	if ((size_t)len > kv_store_max_item(c->store)) {
		/* as memcached: a failed set also drops the old value */
		if (mode == KV_SET)
			kv_store_delete(c->store, t[1].p, t[1].n);
		reply(c, "SERVER_ERROR object too large for cache");
		return;			/* swallow the data block */
	}
	c->item = kv_item_new(t[1].p, t[1].n, flags, kv_exptime(exptime), len);
	if (!c->item)
		reply(c, "SERVER_ERROR out of memory storing object");
}

/* The data block of a storage command is complete. */
static void store_done(struct kv_conn *c)
{
	static const char *const res[] = {
		[KV_STORED] = "STORED", [KV_NOT_STORED] = "NOT_STORED",
		[KV_EXISTS] = "EXISTS", [KV_NOT_FOUND] = "NOT_FOUND",
		[KV_NOMEM] = "SERVER_ERROR out of memory storing object",
	};
	struct kv_item *it = c->item;
	enum kv_result r;

	c->state = ST_LINE;
	c->item = NULL;
	if (!it)
		return;			/* swallowed; the error is out */
	if (memcmp(kv_item_value(it) + it->nbytes, "\r\n", 2)) {
		kv_item_free(it);
		reply_error(c, "CLIENT_ERROR bad data chunk");
		return;
	}
	r = kv_store_put(c->store, it, c->mode, c->cas);
	reply(c, res[r]);
}

static void cmd_arith(struct kv_conn *c, const struct tok *t, int n,
		      bool incr)
{
	uint64_t delta, v;
	char buf[24];
	size_t len;

	if (n != 3 && n != 4) {
		reply_error(c, "ERROR");
		return;
	}
	c->noreply = n == 4 && tok_is(&t[3], "noreply");
	if (t[1].n > KV_KEY_MAX) {
		reply_error(c, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!parse_u64(&t[2], &delta)) {
		reply_error(c, "CLIENT_ERROR invalid numeric delta argument");
		return;
	}
	switch (kv_store_arith(c->store, t[1].p, t[1].n, incr, delta, &v)) {
	case KV_OK:
		len = fmt_u64(buf, v);
		buf[len] = 0;
		reply(c, buf);
		break;
	case KV_NOT_FOUND:
		reply(c, "NOT_FOUND");
		break;
	case KV_NON_NUMERIC:
		reply_error(c, "CLIENT_ERROR cannot increment or decrement non-numeric value");
		break;
	default:
		reply(c, "SERVER_ERROR out of memory");
		break;
	}
}

/* delete <key> [0] [noreply], as memcached still takes the old "0". */
static void cmd_delete(struct kv_conn *c, const struct tok *t, int n)
{
	bool zero = n > 2 && tok_is(&t[2], "0");
	bool nr = n > 2 && tok_is(&t[n - 1], "noreply");

	if (n < 2 || n > 4) {
		reply_error(c, "ERROR");
		return;
	}
	if ((n == 3 && !zero && !nr) || (n == 4 && !(zero && nr))) {
		reply_error(c, "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
		return;
	}
	c->noreply = nr;
	if (t[1].n > KV_KEY_MAX) {
		reply_error(c, "CLIENT_ERROR bad command line format");
		return;
	}
	reply(c, kv_store_delete(c->store, t[1].p, t[1].n) == KV_DELETED ?
		 "DELETED" : "NOT_FOUND");
}

static void cmd_touch(struct kv_conn *c, const struct tok *t, int n)
{
	int64_t exptime;

	if (n != 3 && n != 4) {
		reply_error(c, "ERROR");
		return;
	}
	c->noreply = n == 4 && tok_is(&t[3], "noreply");
	if (t[1].n > KV_KEY_MAX) {
		reply_error(c, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!parse_i32(&t[2], &exptime)) {
		reply_error(c, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	reply(c, kv_store_touch(c->store, t[1].p, t[1].n,
				kv_exptime(exptime)) == KV_TOUCHED ?
		 "TOUCHED" : "NOT_FOUND");
}

/* flush_all [delay] [noreply]: only an immediate flush (delay 0). */
static void cmd_flush(struct kv_conn *c, const struct tok *t, int n)
{
	int64_t delay = 0;

	if (n > 3) {
		reply_error(c, "ERROR");
		return;
	}
	c->noreply = n > 1 && tok_is(&t[n - 1], "noreply");
	if (n - c->noreply == 2 && !parse_i32(&t[1], &delay)) {
		reply_error(c, "CLIENT_ERROR bad command line format");
		return;
	}
	if (delay > 0) {
		reply(c, "SERVER_ERROR delayed flush_all not supported");
		return;
	}
	kv_store_flush(c->store);
	reply(c, "OK");
}

static void stat_line(struct kv_conn *c, const char *name, uint64_t v)
{
	out_str(c, "STAT ");
	out_str(c, name);
	out_put(c, " ", 1);
	out_u64(c, v);
	out_put(c, "\r\n", 2);
}

static void cmd_stats(struct kv_conn *c, int n)
{
	struct kv_store_stats st;
	int64_t now = time(NULL);

	if (n != 1) {
		reply_error(c, "ERROR");
		return;
	}
	kv_store_stats(c->store, &st);
	stat_line(c, "pid", getpid());
	stat_line(c, "uptime", now - st.started);
	stat_line(c, "time", now);
	out_str(c, "STAT version " KV_VERSION "\r\n");
	stat_line(c, "pointer_size", 8 * sizeof(void *));
	stat_line(c, "curr_connections", st.curr_conns);
	stat_line(c, "total_connections", st.total_conns);
	stat_line(c, "cmd_get", st.cmd_get);
	stat_line(c, "cmd_set", st.cmd_set);
	stat_line(c, "cmd_touch", st.cmd_touch);
	stat_line(c, "get_hits", st.get_hits);
	stat_line(c, "get_misses", st.get_misses);
	stat_line(c, "curr_items", st.curr_items);
	stat_line(c, "total_items", st.total_items);
	stat_line(c, "bytes", st.bytes);
	stat_line(c, "limit_maxbytes", st.limit);
	stat_line(c, "item_size_max", kv_store_max_item(c->store));
	stat_line(c, "evictions", st.evictions);
	stat_line(c, "shards", st.shards);
	out_str(c, "END\r\n");
}

/*
 * One command line, [line, lend) without its "\r\n"; @next is the byte
 * after the "\n".  Returns true if a get paused (its line stays).
 */
static bool command(struct kv_conn *c, const char *line, const char *lend,
		    const char *next)
{
	struct tok t[MAX_TOKENS];
	int n;

	c->stats->requests++;
	c->noreply = false;
	/* get/gets take any number of keys: not through tokenize() */
	if (lend - line >= 4 && !memcmp(line, "get ", 4))
		return cmd_get(c, line + 4, lend, next, false);
	if (lend - line >= 5 && !memcmp(line, "gets ", 5))
		return cmd_get(c, line + 5, lend, next, true);
	c->in_start = next - c->in;
	n = tokenize(line, lend, t);
	if (n == 0 || n > MAX_TOKENS) {
		reply_error(c, "ERROR");
		return false;
	}
	if (tok_is(&t[0], "set"))
		cmd_store(c, t, n, KV_SET);
	else if (tok_is(&t[0], "add"))
		cmd_store(c, t, n, KV_ADD);
	else if (tok_is(&t[0], "replace"))
		cmd_store(c, t, n, KV_REPLACE);
	else if (tok_is(&t[0], "append"))
		cmd_store(c, t, n, KV_APPEND);
	else if (tok_is(&t[0], "prepend"))
		cmd_store(c, t, n, KV_PREPEND);
	else if (tok_is(&t[0], "cas"))
		cmd_store(c, t, n, KV_CAS);
	else if (tok_is(&t[0], "delete"))
		cmd_delete(c, t, n);
	else if (tok_is(&t[0], "incr"))
		cmd_arith(c, t, n, true);
	else if (tok_is(&t[0], "decr"))
		cmd_arith(c, t, n, false);
	else if (tok_is(&t[0], "touch"))
		cmd_touch(c, t, n);
	else if (tok_is(&t[0], "get") || tok_is(&t[0], "gets"))
		reply_error(c, "ERROR");	/* no key */
	else if (tok_is(&t[0], "version") && n == 1)
		reply(c, "VERSION " KV_VERSION);
	else if (tok_is(&t[0], "stats"))
		cmd_stats(c, n);
	else if (tok_is(&t[0], "flush_all"))
		cmd_flush(c, t, n);
	else if (tok_is(&t[0], "verbosity") && (n == 2 || n == 3)) {
		c->noreply = n == 3 && tok_is(&t[2], "noreply");
		reply(c, "OK");
	} else if (tok_is(&t[0], "quit") && n == 1)
		c->closing = true;
	else
		reply_error(c, "ERROR");
	return false;
}

/* ---- the connection --------------------------------------------------------- */

int kv_conn_init(struct kv_conn *c, struct kv_store *s, struct kv_stats *st)
{
	memset(c, 0, sizeof(*c));
	c->store = s;
	c->stats = st;
	c->in_cap = KV_RBUF_MIN;
	c->in = malloc(c->in_cap);
	if (!c->in)
		return -1;
	c->state = ST_LINE;
	kv_store_conn(s, true);
	return 0;
}

void kv_conn_free(struct kv_conn *c)
{
	if (!c->in)
		return;			/* never initialised or freed already */
	kv_item_free(c->item);
	free(c->in);
	free(c->out.data);
	kv_store_conn(c->store, false);
	memset(c, 0, sizeof(*c));
}

void kv_written(struct kv_conn *c)
{
	c->out.len = 0;
	if (c->out.cap > 2 * KV_OUT_HIGH) {
		free(c->out.data);
		c->out.data = NULL;
		c->out.cap = 0;
	}
}

/* Copy the data block's bytes at hand into the item (or drop them). */
static void take_data(struct kv_conn *c)
{
	size_t n = c->in_end - c->in_start;

	if (n > c->data_left)
		n = c->data_left;
	if (c->item)
		memcpy(kv_item_value(c->item) + c->data_got,
		       c->in + c->in_start, n);
	c->in_start += n;
	c->data_got += n;
	c->data_left -= n;
}

/* Make room at the end of the input buffer; false: the line is too long. */
static bool input_room(struct kv_conn *c)
{
	size_t held = c->in_end - c->in_start;
	char *p;

	if (c->in_start) {
		memmove(c->in, c->in + c->in_start, held);
		c->in_start = 0;
		c->in_end = held;
	}
	if (held < c->in_cap) {
		/* back to the small buffer once a long line is gone */
		if (c->in_cap > KV_RBUF_MIN && held < KV_RBUF_MIN &&
		    c->state == ST_LINE) {
			p = realloc(c->in, KV_RBUF_MIN);
			if (p) {
				c->in = p;
				c->in_cap = KV_RBUF_MIN;
			}
		}
		return true;
	}
	if (c->in_cap >= KV_LINE_MAX)
		return false;
	p = realloc(c->in, c->in_cap * 2);
	if (!p)
		return false;
	c->in = p;
	c->in_cap *= 2;
	return true;
}

enum kv_status kv_process(struct kv_conn *c)
{
	while (!c->closing) {
		const char *line, *nl, *lend;

		if (c->get_next) {
			if (get_keys(c))
				return KV_WRITE;
			/* the get's line ends in "\r\n" or "\n": skip it */
			c->in_start = (char *)memchr(c->in + c->in_start, '\n',
						     c->in_end - c->in_start) + 1 - c->in;
		} else if (c->state == ST_DATA) {
			take_data(c);
			if (c->data_left)
				break;
			store_done(c);
		} else {
			line = c->in + c->in_start;
			nl = memchr(line, '\n', c->in_end - c->in_start);
			if (!nl)
				break;
			lend = nl > line && nl[-1] == '\r' ? nl - 1 : nl;
			if (command(c, line, lend, nl + 1))
				return KV_WRITE;
		}
		if (c->out.len > KV_OUT_HIGH && c->in_start < c->in_end)
			return KV_WRITE;
	}
	if (c->closing)
		return KV_CLOSE;
	if (!input_room(c)) {
		reply_error(c, "CLIENT_ERROR line too long");
		c->closing = true;
		return KV_CLOSE;
	}
	return KV_READ;
}
