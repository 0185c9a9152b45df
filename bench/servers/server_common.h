/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Common code of the baseline servers: options, listeners, threads and
 * CPU pinning, the echo/http protocol, and statistics.
 */
#ifndef MP_SERVER_COMMON_H
#define MP_SERVER_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum srv_proto { PROTO_ECHO, PROTO_HTTP };

/* Design-specific options, passed to srv_parse_args() as a mask. */
#define SRV_OPT_TRIGGER		(1u << 0)	/* --trigger edge|level */
#define SRV_OPT_SHARED_LISTENER	(1u << 1)	/* --shared-listener */
#define SRV_OPT_STALL		(1u << 2)	/* --stall-* (srv_stall_*) */
#define SRV_OPT_BACKEND		(1u << 3)	/* --backend A:P, --owner-stats */

struct srv_opts {
	const char *design;
	struct sockaddr_storage addr;	/* --addr and --port */
	socklen_t addrlen;
	int port;
	int threads;
	int *cpus;			/* thread i runs on cpus[i]; NULL: unpinned */
	enum srv_proto proto;
	int backlog;
	unsigned int max_conns;		/* per thread */
	unsigned int size;		/* echo message size, to count requests */
	bool edge;			/* --trigger edge (the default) */
	bool shared_listener;
	/*
	 * A stalling worker (the stalled-worker benchmark): thread
	 * stall_thread stops serving for stall_ms every stall_every_ms of
	 * CLOCK_MONOTONIC time, between event-loop iterations.  stall_ms 0:
	 * no stall.
	 */
	int stall_thread;
	unsigned int stall_ms;
	unsigned int stall_every_ms;
	bool stall_spin;		/* busy-wait instead of sleeping */
	/* A proxy's backend (--backend ADDR:PORT, IPv4) */
	struct sockaddr_storage backend;
	socklen_t backend_len;
	bool owner_stats;		/* --owner-stats */
};

/* Per-thread counters, only ever written by their own thread. */
struct srv_stats {
	unsigned long accepted;
	unsigned long requests;		/* http requests answered */
	unsigned long echo_bytes;	/* echo: bytes echoed */
	unsigned long errors;
	unsigned long stalls;		/* --stall-*: stalls done */
	unsigned long stall_ns;		/* ... and their total length */
};

struct srv_thread {
	const struct srv_opts *opts;
	int idx;
	int lfd;			/* the listener this thread accepts on */
	int stop_fd;			/* eventfd, readable once stopping */
	struct srv_stats stats;
	pthread_t tid;
};

/* A growable byte buffer. */
struct srv_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Protocol state of one connection. */
struct srv_conn {
	struct srv_buf in;		/* http: incomplete request head */
	bool close_after;		/* last response queued, then close */
};

/* Print "<design>: <message>: <strerror(errno)>" and exit(1). */
void srv_die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* Parse argv; exits with a usage message on bad options. */
void srv_parse_args(int argc, char **argv, struct srv_opts *o,
		    const char *design, unsigned int extra);

/* Bind and listen on --addr/--port; @sock_flags e.g. SOCK_NONBLOCK. */
int srv_listen(const struct srv_opts *o, bool reuseport, int sock_flags);

/*
 * One SO_REUSEPORT listener per thread, created in thread order, with
 * SO_INCOMING_CPU and (for a contiguous CPU list) a cBPF program that
 * steers each connection to the listener of the CPU that received it.
 */
void srv_reuseport_listeners(const struct srv_opts *o, int *lfds,
			     int sock_flags);

/*
 * Run @serve in one thread per --threads, thread i pinned to the i-th
 * CPU and accepting on @lfds[i]; @serve calls srv_thread_ready() once it
 * can accept and returns when t->stop_fd becomes readable.  Prints the
 * "ready" line, waits for SIGINT/SIGTERM, stops the threads, prints the
 * "stats" line and closes the listeners.
 */
void srv_run(const struct srv_opts *o, const int *lfds,
	    void (*serve)(struct srv_thread *t));
/*
 * srv_run() with one non-blocking listener on --addr/--port that every
 * thread accepts on (the shared-listener designs).
 */
void srv_run_shared(const struct srv_opts *o,
		    void (*serve)(struct srv_thread *t));
void srv_thread_ready(void);

/*
 * A proxy's --owner-stats line: reads of the accepted ([0]) and backend
 * ([1]) sides, and how many found their last packet on the reader's CPU.
 */
void srv_print_owner(const unsigned long reads[2], const unsigned long local[2]);

/*
 * Stalls of --stall-thread: srv_stall_init() at the start of a thread's
 * loop; srv_stall_poll() between loop iterations stalls when a stall is
 * due and returns the milliseconds until the next one (for the timeout
 * of the loop's wait; -1: this thread never stalls).
 */
struct srv_stall {
	bool on;
	unsigned long long next_ns;	/* CLOCK_MONOTONIC start of the next */
};
void srv_stall_init(struct srv_stall *s, const struct srv_thread *t);
int srv_stall_poll(struct srv_stall *s, struct srv_thread *t);

void srv_buf_append(struct srv_buf *b, const void *p, size_t n);
void srv_buf_consume(struct srv_buf *b, size_t n);
void srv_buf_free(struct srv_buf *b);

/*
 * Feed @len received bytes to the protocol; responses are appended to
 * @out.  Sets c->close_after once the response that ends the connection
 * is queued; input after that is ignored.  Returns -1 on a malformed
 * request (the connection should be dropped), else 0.
 */
int srv_proto_input(struct srv_conn *c, const struct srv_opts *o,
		    const char *data, size_t len, struct srv_buf *out,
		    struct srv_stats *st);
void srv_conn_reset(struct srv_conn *c);
void srv_conn_free(struct srv_conn *c);

#endif
