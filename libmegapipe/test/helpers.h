/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the libmegapipe tests.  Every test program runs a few checks
 * against the backend chosen by MEGAPIPE_BACKEND (epoll or kernel), prints
 * one "ok"/"not ok" line per check and exits non-zero if one failed.
 * Everything runs on loopback.
 */
#ifndef MP_TEST_HELPERS_H
#define MP_TEST_HELPERS_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "megapipe.h"

extern int t_failed;
extern const char *t_name;
/* The result of t_pair()'s accept (the fd with MP_ACCEPT_FD). */
extern int t_accept_result;

/* Start a check; the next T_OK() closes it. */
#define T_BEGIN(name)	do { t_name = (name); } while (0)
#define T_OK()		t_ok(t_name)

/* Fail the current check and return from the calling function. */
#define T_ASSERT(cond, ...) do {					\
	if (!(cond)) {							\
		t_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);		\
		return;							\
	}								\
} while (0)

/* A call that must fail with @err. */
#define T_ERRNO(call, err) do {						\
	errno = 0;							\
	long t_r_ = (long)(call);					\
	T_ASSERT(t_r_ == -1 && errno == (err), "%s: got %ld errno %d (%s), want -1 errno %d (%s)", \
		 #call, t_r_, errno, strerror(errno), (err), strerror(err)); \
} while (0)

/* A call returning a pointer that must fail (NULL) with @err. */
#define T_ERRNO_P(call, err) do {					\
	errno = 0;							\
	void *t_p_ = (call);						\
	T_ASSERT(!t_p_ && errno == (err), "%s: got %p errno %d (%s), want NULL errno %d (%s)", \
		 #call, t_p_, errno, strerror(errno), (err), strerror(err)); \
} while (0)

/* A call that must succeed (>= 0). */
#define T_CALL(call) do {						\
	errno = 0;							\
	long t_r_ = (long)(call);					\
	T_ASSERT(t_r_ >= 0, "%s: %s", #call, strerror(errno));		\
} while (0)

void t_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void t_ok(const char *name);
/* Print the summary; returns the exit status. */
int t_done(void);

/* A channel on the chosen backend; exits on failure. */
struct mp_channel *t_channel(unsigned int cq_entries);
/* A listener on 127.0.0.1, port chosen by the kernel, in *addr. */
int t_listener(struct sockaddr_in *addr);
/* A blocking client connected to @addr. */
int t_client(const struct sockaddr_in *addr);
/* One completion within @timeout_ms: 1, or 0 on timeout/error (printed). */
int t_next(struct mp_channel *mp, struct mp_completion *c, int timeout_ms);
/*
 * A listener registered to @mp (handle in *lh) and one client connection
 * accepted through the channel: its handle in *h, the client's fd in *cfd.
 * Returns 0, or -1 (printed).
 */
int t_pair(struct mp_channel *mp, int *lh, int *h, int *cfd,
	   unsigned int accept_flags);
/* Read exactly @n bytes from blocking @fd (1 s timeout); 0 or -1. */
int t_read_full(int fd, void *buf, size_t n);
/* Byte @i of the test pattern @seed. */
static inline unsigned char t_pat(unsigned int seed, size_t i)
{
	size_t x = (i + 1) * 2654435761u ^ seed * 40503u;

	return (unsigned char)(x ^ x >> 13 ^ x >> 7);
}
/*
 * Whether the backend has feature @feat (MP_FEAT_*); if not, print a SKIP
 * line for check @what and return false.
 */
bool t_has(uint64_t feat, const char *what);
/* Whether the backend has feature @feat, silently. */
bool t_feature(uint64_t feat);
/* Time in ms, monotonic. */
long long t_ms(void);

/* Report @what as skipped, saying @why. */
void t_skip(const char *what, const char *why);

#endif
