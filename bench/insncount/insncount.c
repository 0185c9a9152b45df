// SPDX-License-Identifier: GPL-2.0
/*
 * insncount - QEMU TCG plugin counting guest instructions per vCPU, split
 * kernel/user, inside a window delimited by guest marker instructions, with
 * per-kernel-symbol attribution.  See README.md.
 *
 * Every translated block (TB) gets a record {start vaddr, #insns, kernel
 * symbol, per-vCPU execution counters} and a TB-entry callback that bumps
 * the executing vCPU's counter while the window is open.  Each vCPU only
 * writes its own slot, so multi-threaded TCG needs no atomics on the hot
 * path.  TBs that contain a marker are instrumented per instruction instead,
 * so the window edges are exact on the vCPU that executes the marker.
 * Instruction counts are only computed at exit: executions * #insns.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "marker.h"
#include "qemu-plugin-abi.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_VCPUS	64
#define KERNEL_START	0xffff800000000000ULL	/* x86_64 kernel half */
#define RECS_PER_CHUNK	4096

struct tb_rec {
	uint64_t vaddr;		/* first instruction */
	uint32_t n_insns;
	uint32_t sym;		/* kernel: index into syms[], set at exit */
	uint64_t exec[];	/* executions per vCPU, slot written by its vCPU */
};

struct rec_chunk {
	struct rec_chunk *next;
	size_t used;
	char recs[];
};

struct ksym {
	uint64_t addr;
	unsigned int rank;	/* preference among aliases, lower wins */
	size_t seq;		/* line number */
	char *name;
};

struct marker {
	uint8_t bytes[7];
	bool opens;		/* start marker opens the window */
	uint64_t seen;		/* executions, all vCPUs */
};

static struct marker markers[] = {
	{ .bytes = { MP_MARK_START_BYTES }, .opens = true },	/* [0] */
	{ .bytes = { MP_MARK_STOP_BYTES },  .opens = false },	/* [1] */
};

static bool window_all;
static bool user_tbs;		/* user=1: "utb" lines, user TBs by address */
static bool counting;		/* window open: read by all vCPUs */
static unsigned int n_vcpus;
static size_t rec_size;
static FILE *out_file;

static struct ksym *syms;	/* kernel text symbols, sorted, unique addr */
static size_t nsyms;
static uint64_t syms_end;	/* highest address of any symbol in the map */

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec_chunk *chunks;

/* Index of the symbol containing @addr, nsyms if none ("[unknown]"). */
static size_t sym_lookup(uint64_t addr)
{
	size_t lo = 0, hi = nsyms;

	if (addr < syms[0].addr || addr >= syms_end)
		return nsyms;
	/* last symbol with syms[i].addr <= addr */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (syms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static struct tb_rec *chunk_rec(struct rec_chunk *c, size_t i)
{
	return (struct tb_rec *)(c->recs + i * rec_size);
}

/* Translation may run concurrently on several vCPU threads. */
static struct tb_rec *rec_new(uint64_t vaddr, size_t n_insns)
{
	struct tb_rec *rec;

	pthread_mutex_lock(&rec_lock);
	if (!chunks || chunks->used == RECS_PER_CHUNK) {
		struct rec_chunk *c = calloc(1, sizeof(*c) +
					     RECS_PER_CHUNK * rec_size);

		if (!c) {
			fprintf(stderr, "insncount: out of memory\n");
			abort();
		}
		c->next = chunks;
		chunks = c;
	}
	rec = chunk_rec(chunks, chunks->used++);
	pthread_mutex_unlock(&rec_lock);

	rec->vaddr = vaddr;
	rec->n_insns = n_insns;
	return rec;
}

static void count_exec(unsigned int vcpu_index, void *udata)
{
	struct tb_rec *rec = udata;

	if (__atomic_load_n(&counting, __ATOMIC_RELAXED))
		rec->exec[vcpu_index]++;
}

static void marker_exec(unsigned int vcpu_index, void *udata)
{
	struct marker *m = udata;

	(void)vcpu_index;
	__atomic_fetch_add(&m->seen, 1, __ATOMIC_RELAXED);
	if (!window_all)
		__atomic_store_n(&counting, m->opens, __ATOMIC_RELAXED);
}

static struct marker *insn_marker(const struct qemu_plugin_insn *insn)
{
	size_t i;

	if (qemu_plugin_insn_size(insn) != sizeof(markers[0].bytes))
		return NULL;
	for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
		if (!memcmp(qemu_plugin_insn_data(insn), markers[i].bytes,
			    sizeof(markers[i].bytes)))
			return &markers[i];
	return NULL;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	size_t i;

	(void)id;
	for (i = 0; i < n; i++)
		if (insn_marker(qemu_plugin_tb_get_insn(tb, i)))
			break;
	if (i == n) {
		qemu_plugin_register_vcpu_tb_exec_cb(tb, count_exec,
						     QEMU_PLUGIN_CB_NO_REGS,
						     rec_new(qemu_plugin_tb_vaddr(tb), n));
		return;
	}

	/* Marker TB: one record per instruction, markers not counted. */
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		struct marker *m = insn_marker(insn);

		if (m)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker_exec,
							       QEMU_PLUGIN_CB_NO_REGS,
							       m);
		else
			qemu_plugin_register_vcpu_insn_exec_cb(insn, count_exec,
							       QEMU_PLUGIN_CB_NO_REGS,
							       rec_new(qemu_plugin_insn_vaddr(insn), 1));
	}
}

struct sym_count {
	uint64_t count;
	size_t sym;
};

static int sym_count_cmp(const void *a, const void *b)
{
	const struct sym_count *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->sym < y->sym ? -1 : x->sym > y->sym;
}

/* sym lines of one vCPU, largest count first; @acc has nsyms + 1 slots */
static void write_syms(unsigned int vcpu, uint64_t *acc, struct sym_count *sc)
{
	struct rec_chunk *c;
	size_t i, n = 0;

	memset(acc, 0, (nsyms + 1) * sizeof(*acc));
	for (c = chunks; c; c = c->next) {
		for (i = 0; i < c->used; i++) {
			struct tb_rec *rec = chunk_rec(c, i);

			if (rec->vaddr >= KERNEL_START)
				acc[rec->sym] += rec->exec[vcpu] * rec->n_insns;
		}
	}
	for (i = 0; i <= nsyms; i++)
		if (acc[i])
			sc[n++] = (struct sym_count){ acc[i], i };
	qsort(sc, n, sizeof(*sc), sym_count_cmp);
	for (i = 0; i < n; i++)
		fprintf(out_file, "sym %u %" PRIu64 " %s\n", vcpu, sc[i].count,
			sc[i].sym < nsyms ? syms[sc[i].sym].name : "[unknown]");
}

/*
 * utb lines of one vCPU: each user TB's first address and the instructions
 * it ran there, for a profile of a process whose load addresses are known
 * (bench/insncount/user-report.py).  Unsorted, nonzero only.
 */
static void write_user_tbs(unsigned int vcpu)
{
	struct rec_chunk *c;
	size_t i;

	for (c = chunks; c; c = c->next) {
		for (i = 0; i < c->used; i++) {
			struct tb_rec *rec = chunk_rec(c, i);

			if (rec->vaddr < KERNEL_START && rec->exec[vcpu])
				fprintf(out_file, "utb %u %" PRIu64 " %" PRIx64 "\n",
					vcpu, rec->exec[vcpu] * rec->n_insns,
					rec->vaddr);
		}
	}
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	uint64_t kernel[MAX_VCPUS] = { 0 }, user[MAX_VCPUS] = { 0 };
	struct rec_chunk *c;
	unsigned int v;
	size_t i;

	(void)id;
	(void)udata;
	for (c = chunks; c; c = c->next) {
		for (i = 0; i < c->used; i++) {
			struct tb_rec *rec = chunk_rec(c, i);
			bool is_kernel = rec->vaddr >= KERNEL_START;

			if (is_kernel && syms)
				rec->sym = sym_lookup(rec->vaddr);
			for (v = 0; v < n_vcpus; v++) {
				uint64_t n = rec->exec[v] * rec->n_insns;

				if (is_kernel)
					kernel[v] += n;
				else
					user[v] += n;
			}
		}
	}

	fprintf(out_file, "window %s markers %" PRIu64 " %" PRIu64 "\n",
		window_all ? "all" : "on", markers[0].seen, markers[1].seen);
	for (v = 0; v < n_vcpus; v++)
		fprintf(out_file, "vcpu %u kernel %" PRIu64 " user %" PRIu64 "\n",
			v, kernel[v], user[v]);

	if (syms) {
		uint64_t *acc = malloc((nsyms + 1) * sizeof(*acc));
		struct sym_count *sc = malloc((nsyms + 1) * sizeof(*sc));

		if (!acc || !sc) {
			fprintf(stderr, "insncount: out of memory writing symbols\n");
		} else {
			for (v = 0; v < n_vcpus; v++)
				write_syms(v, acc, sc);
		}
		free(acc);
		free(sc);
	}
	if (user_tbs)
		for (v = 0; v < n_vcpus; v++)
			write_user_tbs(v);
	if (fclose(out_file))
		fprintf(stderr, "insncount: writing output failed: %s\n",
			strerror(errno));
}

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Of several symbols at one address, prefer fewer leading underscores, then
 * global over local: _raw_spin_lock over __lock_text_start, startup_64 over
 * _text, __x64_sys_getpid over __do_sys_getpid.
 */
static unsigned int ksym_rank(const char *name, char type)
{
	return 2 * strspn(name, "_") + (type == 't' || type == 'w');
}

/* System.map: "<hex addr> <type> <name>"; keeps kernel-half t/T/w/W. */
static int load_map(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t cap = 0, lineno = 0, i, n;
	char *line = NULL;
	size_t len = 0;

	if (!f) {
		fprintf(stderr, "insncount: cannot open map file '%s': %s\n",
			path, strerror(errno));
		return -1;
	}
	while (getline(&line, &len, f) > 0) {
		char type, name[512];
		uint64_t addr;

		lineno++;
		if (sscanf(line, "%" SCNx64 " %c %511s", &addr, &type, name) != 3) {
			fprintf(stderr, "insncount: %s:%zu: not a System.map line\n",
				path, lineno);
			goto err;
		}
		if (addr >= syms_end)
			syms_end = addr + 1;
		if (!strchr("tTwW", type) || addr < KERNEL_START)
			continue;
		if (nsyms == cap) {
			struct ksym *s;

			cap = cap ? 2 * cap : 65536;
			s = realloc(syms, cap * sizeof(*syms));
			if (!s)
				goto nomem;
			syms = s;
		}
		syms[nsyms].addr = addr;
		syms[nsyms].rank = ksym_rank(name, type);
		syms[nsyms].seq = lineno;
		syms[nsyms].name = strdup(name);
		if (!syms[nsyms].name)
			goto nomem;
		nsyms++;
	}
	if (ferror(f)) {
		fprintf(stderr, "insncount: reading map file '%s': %s\n",
			path, strerror(errno));
		goto err;
	}
	if (!nsyms) {
		fprintf(stderr, "insncount: no kernel text symbols in '%s'\n",
			path);
		goto err;
	}
	fclose(f);
	free(line);

	/* Sort by address; of aliases keep the preferred one. */
	qsort(syms, nsyms, sizeof(*syms), ksym_cmp);
	for (i = 1, n = 1; i < nsyms; i++) {
		if (syms[i].addr == syms[n - 1].addr)
			free(syms[i].name);
		else
			syms[n++] = syms[i];
	}
	nsyms = n;
	return 0;

nomem:
	fprintf(stderr, "insncount: out of memory loading '%s'\n", path);
err:
	fclose(f);
	free(line);
	return -1;
}

static const char *arg_value(const char *arg, const char *key)
{
	size_t n = strlen(key);

	return !strncmp(arg, key, n) && arg[n] == '=' ? arg + n + 1 : NULL;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
					   const qemu_info_t *info,
					   int argc, char **argv)
{
	const char *out = NULL, *map = NULL, *val;
	int i;

	for (i = 0; i < argc; i++) {
		if ((val = arg_value(argv[i], "out"))) {
			out = val;
		} else if ((val = arg_value(argv[i], "map"))) {
			map = val;
		} else if ((val = arg_value(argv[i], "window"))) {
			if (!strcmp(val, "all")) {
				window_all = true;
			} else if (strcmp(val, "on")) {
				fprintf(stderr, "insncount: window=%s: expected 'on' or 'all'\n",
					val);
				return -1;
			}
		} else if ((val = arg_value(argv[i], "user"))) {
			user_tbs = !strcmp(val, "1");
		} else {
			fprintf(stderr, "insncount: unknown argument '%s' (expected out=PATH, map=PATH, window=on|all, user=0|1)\n",
				argv[i]);
			return -1;
		}
	}
	if (!out) {
		fprintf(stderr, "insncount: missing out=PATH argument\n");
		return -1;
	}
	if (!info->system_emulation || strcmp(info->target_name, "x86_64")) {
		fprintf(stderr, "insncount: needs qemu-system-x86_64 (got %s %s emulation)\n",
			info->target_name,
			info->system_emulation ? "system" : "user");
		return -1;
	}
	if (info->system.max_vcpus < 1 || info->system.max_vcpus > MAX_VCPUS) {
		fprintf(stderr, "insncount: %d vCPUs not supported (max %d)\n",
			info->system.max_vcpus, MAX_VCPUS);
		return -1;
	}
	n_vcpus = info->system.max_vcpus;
	rec_size = sizeof(struct tb_rec) + n_vcpus * sizeof(uint64_t);

	if (map && load_map(map))
		return -1;
	out_file = fopen(out, "w");
	if (!out_file) {
		fprintf(stderr, "insncount: cannot open output '%s': %s\n",
			out, strerror(errno));
		return -1;
	}
	counting = window_all;

	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
