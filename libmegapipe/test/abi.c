// SPDX-License-Identifier: MIT
/*
 * The channel ABI itself (<linux/megapipe.h>), below the library: every
 * check that the device must make too (reserved fields, flags, sizes,
 * EBADFD before setup, E2BIG batches, per-request refusals in
 * megapipe_submit.error with the prefix taken), driven through the
 * backend's ops, so that the same test runs against /dev/megapipe.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "helpers.h"
#include "../src/internal.h"

static const struct mp_backend_ops *ops;
static struct mp_channel ch;

static int submit(struct megapipe_req *reqs, unsigned int n,
		  struct megapipe_cqe *cqes, unsigned int max, unsigned int min,
		  int64_t timeout_ns, struct megapipe_submit *out)
{
	struct megapipe_submit s = {
		.reqs = (uintptr_t)reqs, .nr_reqs = n,
		.cqes = (uintptr_t)cqes, .max_cqes = max,
		.min_complete = min, .timeout_ns = timeout_ns,
	};
	int ret = ops->submit(&ch, &s);

	if (out)
		*out = s;
	return ret;
}

static void t_info_setup(void)
{
	struct megapipe_info info = { .flags = 1 };
	struct megapipe_setup st = { 0 };
	struct megapipe_register reg = { .fd = 0 };
	struct megapipe_unregister ur = { 0 };
	struct megapipe_export ex = { 0 };

	T_BEGIN("INFO, and EBADFD before SETUP; SETUP checks and runs once");
	T_ASSERT(ops->open(&ch) == 0, "open");
	T_ASSERT(ops->info(&ch, &info) == -EINVAL, "info flags");
	info.flags = 0;
	T_ASSERT(ops->info(&ch, &info) == 0 && info.abi_version == MEGAPIPE_ABI_VERSION &&
		 info.max_batch && info.max_cq_entries && info.max_handles && info.max_iov,
		 "info");
	ch.info = info;
	T_ASSERT(ops->reg(&ch, &reg) == -EBADFD, "register before setup");
	T_ASSERT(ops->unreg(&ch, &ur) == -EBADFD, "unregister before setup");
	T_ASSERT(ops->export_fd(&ch, &ex) == -EBADFD, "export before setup");
	T_ASSERT(submit(NULL, 0, NULL, 0, 0, 0, NULL) == -EBADFD, "submit before setup");
	T_ASSERT(ops->setup(&ch, &st) == -EINVAL, "0 entries");
	st.cq_entries = info.max_cq_entries + 1;
	T_ASSERT(ops->setup(&ch, &st) == -EINVAL, "too many entries");
	st.cq_entries = 4;
	st.flags = MEGAPIPE_SETUP_RING;
	T_ASSERT(ops->setup(&ch, &st) == -EINVAL, "ring flag without sq_entries");
	st.flags = 0;
	st.resv = 1;
	T_ASSERT(ops->setup(&ch, &st) == -EINVAL, "resv");
	st.resv = 0;
	st.sq_entries = 4;
	T_ASSERT(ops->setup(&ch, &st) == -EINVAL, "sq_entries without a ring");
	st.sq_entries = 0;
	T_ASSERT(ops->setup(&ch, &st) == 0 && st.cq_entries == 4, "setup");
	T_ASSERT(ops->setup(&ch, &st) == -EBUSY, "setup twice");
	T_OK();
}

static void t_submit_checks(void)
{
	struct megapipe_req r[2] = { { 0 } };
	struct megapipe_cqe c[4];
	struct megapipe_submit s = { .flags = 1 };

	T_BEGIN("SUBMIT: flags, resv, min_complete, E2BIG, EFAULT");
	T_ASSERT(ops->submit(&ch, &s) == -EINVAL, "flags");
	s.flags = 0;
	s.resv[1] = 1;
	T_ASSERT(ops->submit(&ch, &s) == -EINVAL, "resv");
	T_ASSERT(submit(NULL, 0, c, 1, 2, 0, NULL) == -EINVAL, "min_complete > max_cqes");
	T_ASSERT(submit(r, ch.info.max_batch + 1, c, 1, 0, 0, NULL) == -E2BIG, "nr_reqs");
	T_ASSERT(submit(r, 0, c, ch.info.max_batch + 1, 0, 0, NULL) == -E2BIG, "max_cqes");
	T_ASSERT(submit(NULL, 1, c, 1, 0, 0, NULL) == -EFAULT, "reqs NULL");
	T_OK();
}

static void t_refusals(void)
{
	struct sockaddr_in addr;
	int lfd = t_listener(&addr), cfd, h;
	struct megapipe_register reg = { .fd = lfd, .cookie = 5 };
	struct megapipe_unregister ur = { 0 };
	struct megapipe_export ex = { 0 };
	struct megapipe_req r[3];
	struct megapipe_cqe c[8];
	struct megapipe_submit out;
	char buf[8];
	int64_t t0;

	T_BEGIN("requests: each bad field refused in error, the good prefix taken");
	reg.resv[1] = 1;
	T_ASSERT(ops->reg(&ch, &reg) == -EINVAL, "register resv");
	reg.resv[1] = 0;
	reg.flags = 2;	/* 1 is MEGAPIPE_REGISTER_FILE */
	T_ASSERT(ops->reg(&ch, &reg) == -EINVAL, "register flags");
	reg.flags = 0;
	reg.cpumask_len = 8;
	T_ASSERT(ops->reg(&ch, &reg) == -EINVAL, "cpumask_len without a mask");
	reg.cpumask = (uintptr_t)&addr;
	reg.cpumask_len = 4;
	T_ASSERT(ops->reg(&ch, &reg) == -EINVAL, "cpumask_len not a multiple of 8");
	reg.cpumask_len = MEGAPIPE_CPUMASK_MAX_BYTES + 8;
	T_ASSERT(ops->reg(&ch, &reg) == -EINVAL, "cpumask_len too big");
	reg.cpumask = 0;
	reg.cpumask_len = 0;
	T_ASSERT(ops->reg(&ch, &reg) == 0 && reg.handle != MEGAPIPE_NO_HANDLE &&
		 reg.handle < 0x80000000U, "register: handle %#x", reg.handle);
	ur.handle = reg.handle;
	ur.resv = 1;
	T_ASSERT(ops->unreg(&ch, &ur) == -EINVAL, "unregister resv");
	ex.handle = reg.handle;
	ex.resv = 1;
	T_ASSERT(ops->export_fd(&ch, &ex) == -EINVAL, "export resv");

	/* accept one connection the raw way */
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_ACCEPT;
	r[0].handle = reg.handle;
	r[0].len = 1;
	cfd = t_client(&addr);
	T_ASSERT(submit(r, 1, c, 8, 1, 2000000000, &out) == 0 && out.submitted == 1 &&
		 out.completed == 1 && c[0].result == 0 && c[0].cookie == 5 &&
		 c[0].opcode == MEGAPIPE_OP_ACCEPT && c[0].new_handle != MEGAPIPE_NO_HANDLE,
		 "accept: %u %u %d", out.submitted, out.completed, c[0].result);
	h = c[0].new_handle;

	/* one bad field at a time, behind a good read */
#define BAD(what, stmt, err) do {						\
		memset(r, 0, sizeof(r));					\
		r[0].opcode = MEGAPIPE_OP_READ; r[0].handle = h;		\
		r[0].addr = (uintptr_t)buf; r[0].len = 1;			\
		r[1] = r[0];							\
		{ struct megapipe_req *q = &r[1]; stmt; }			\
		T_ASSERT(submit(r, 2, c, 8, 0, 0, &out) == 0 && out.submitted == 1 && \
			 out.error == (err), "%s: submitted %u error %d", what,	\
			 out.submitted, out.error);				\
		r[0].opcode = MEGAPIPE_OP_CANCEL; r[0].addr = 0; r[0].len = 0;	\
		T_ASSERT(submit(r, 1, c, 8, 2, 1000000000, &out) == 0 &&	\
			 out.completed == 2 && c[0].result == -ECANCELED &&	\
			 c[1].result == 1, "%s: cleanup", what);		\
	} while (0)
	BAD("opcode 0", q->opcode = 0, -EINVAL);
	BAD("opcode 99", q->opcode = 99, -EINVAL);
	BAD("resv0", q->resv0 = 1, -EINVAL);
	BAD("resv[1]", q->resv[1] = 1, -EINVAL);
	BAD("resv2", q->resv2 = 1, -EINVAL);
	BAD("unknown flag", q->flags = 0x100, -EINVAL);
	BAD("cookie without SET_COOKIE", q->cookie = 1, -EINVAL);
	BAD("op_flags on a read", q->op_flags = 1, -EINVAL);
	BAD("len 0", q->len = 0, -EINVAL);
	BAD("len > INT_MAX", q->len = 0x80000000U, -EINVAL);
	BAD("addr 0", q->addr = 0, -EFAULT);
	BAD("unknown handle", q->handle = h + 1, -EBADF);
	BAD("no handle", q->handle = MEGAPIPE_NO_HANDLE, -EBADF);
	BAD("accept on a connection", (q->opcode = MEGAPIPE_OP_ACCEPT, q->addr = 0), -EINVAL);
	BAD("read on a listener", q->handle = reg.handle, -EINVAL);
	BAD("connect with a handle", q->opcode = MEGAPIPE_OP_CONNECT, -EINVAL);
	BAD("cancel with a cookie", (q->opcode = MEGAPIPE_OP_CANCEL, q->addr = 0, q->len = 0,
				     q->cookie = 1), -EINVAL);
	BAD("cancel mask", (q->opcode = MEGAPIPE_OP_CANCEL, q->addr = 0, q->len = 0,
			    q->op_flags = 1U << MEGAPIPE_OP_DISCONNECT), -EINVAL);
	BAD("disconnect with a length", (q->opcode = MEGAPIPE_OP_DISCONNECT, q->addr = 0), -EINVAL);
	BAD("CQ full: accept of 4 behind a read", (q->opcode = MEGAPIPE_OP_ACCEPT, q->addr = 0,
			q->handle = reg.handle, q->len = 4), -EBUSY);
	BAD("accept count > cq_entries", (q->opcode = MEGAPIPE_OP_ACCEPT, q->addr = 0,
			q->handle = reg.handle, q->len = 5), -EINVAL);

	T_OK();

	T_BEGIN("SET_COOKIE, and the wait: timeout returns 0 with what there is");
	memset(r, 0, sizeof(r));
	r[0].opcode = MEGAPIPE_OP_WRITE;
	r[0].handle = h;
	r[0].addr = (uintptr_t)"w";
	r[0].len = 1;
	r[0].flags = MEGAPIPE_REQ_F_SET_COOKIE;
	r[0].cookie = 99;
	r[1] = r[0];
	r[1].opcode = MEGAPIPE_OP_READ;
	r[1].addr = (uintptr_t)buf;
	r[1].flags = 0;
	r[1].cookie = 0;
	t0 = t_ms();
	T_ASSERT(submit(r, 2, c, 8, 2, 100000000, &out) == 0 && out.submitted == 2 &&
		 out.completed == 1 && c[0].cookie == 99 && c[0].result == 1, "write + timed out read");
	T_ASSERT(t_ms() - t0 >= 99, "waited the timeout (%lld ms)", t_ms() - t0);
	T_ASSERT(write(cfd, "k", 1) == 1, "client write");
	T_ASSERT(submit(NULL, 0, c, 8, 1, -1, &out) == 0 && out.completed == 1 &&
		 c[0].opcode == MEGAPIPE_OP_READ && c[0].cookie == 99 && c[0].user_data == 0 &&
		 c[0].resv0 == 0, "read with the new cookie");
	close(cfd);
	close(lfd);
	T_OK();
}

int main(void)
{
	const char *b = getenv("MEGAPIPE_BACKEND");

	ops = b && !strcmp(b, "kernel") ? &mp_kernel_ops : &mp_epoll_ops;
	ch.ops = ops;
	ch.fork_gen = mp_fork_gen;
	t_info_setup();
	t_submit_checks();
	t_refusals();
	ops->close(&ch, false);
	return t_done();
}
