// SPDX-License-Identifier: GPL-2.0
/*
 * sharing - QEMU TCG plugin counting cache-line transfers between vCPUs in
 * a simple coherence model, inside the insncount marker window.  See
 * README.md ("sharing.so").
 *
 * Every guest RAM access (by physical address, IO skipped) goes through a
 * model of infinite private caches with 64-byte lines.  Per line it keeps
 * the set of vCPUs holding a copy and the last writer:
 *   load by v:  v holds it -> hit; else if another vCPU w wrote it last ->
 *               transfer w->v; else cold miss.  v now holds it.
 *   store by v: another vCPU holds it -> transfer (from the last writer if
 *               that is not v, else from the lowest-numbered other holder);
 *               else (v did not hold it) cold miss.  v is now the only
 *               holder and the last writer.
 * A load and a store of the same line by one instruction (read-modify-
 * write) count at most one transfer.  The line state is kept from reset on;
 * only transfers inside the window are counted, so the window starts warm.
 *
 * Needs single-threaded TCG (all vCPUs on one thread): the model is not
 * locked.  The plugin aborts if callbacks arrive from two threads.
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

#define MAX_VCPUS	32		/* holders is a uint32_t bitmask */
#define KERNEL_START	0xffff800000000000ULL
#define KIMAGE_START	0xffffffff80000000ULL	/* __START_KERNEL_map */
#define LINE_SHIFT	6
#define CHUNK_SHIFT	21		/* 2 MiB of physical memory per chunk */
#define LINES_PER_CHUNK	(1u << (CHUNK_SHIFT - LINE_SHIFT))
#define PHYS_BITS	40		/* 1 TiB of guest physical space */
#define NCHUNKS		(1u << (PHYS_BITS - CHUNK_SHIFT))

struct line {
	uint32_t holders;	/* bit v: vCPU v has a valid copy */
	uint8_t writer;		/* last writer + 1, 0: never written */
};

struct vcpu_state {
	/* the last load, for the read-modify-write rule */
	uint64_t ld_pc;
	uint64_t ld_line;
	bool ld_xfer;
	/* inside the window */
	uint64_t xfer[2][2];	/* [kernel][store] */
	uint64_t cold;
};

/* One transfer event class: (line, pc, dst, src, store), inside the window. */
struct event {
	uint64_t line;		/* physical line number, 0: empty slot */
	uint64_t pc;
	uint64_t vaddr;		/* one data address seen (for the symbol) */
	uint32_t count;
	uint8_t dst, src, store;
};

struct sym {
	uint64_t addr;
	char *name;
};

struct symtab {
	struct sym *s;
	size_t n, cap;
};

struct marker {
	uint8_t bytes[7];
	bool opens;
	uint64_t seen;
};

static struct marker markers[] = {
	{ .bytes = { MP_MARK_START_BYTES }, .opens = true },
	{ .bytes = { MP_MARK_STOP_BYTES },  .opens = false },
};

static struct line *chunks[NCHUNKS];
static struct vcpu_state vcpus[MAX_VCPUS];
static unsigned int n_vcpus;
static bool window_all;
static bool counting;
static FILE *out_file;
static unsigned int top_lines = 2000;
static uint64_t beyond_phys;	/* accesses above PHYS_BITS: ignored */
static uint64_t n_chunks;

static struct event *events;
static size_t ev_cap, ev_used;

static struct symtab text, data;
static uint64_t map_end;	/* _end */
static uint64_t text_phys;	/* physical address of _text */

static pthread_t model_thread;
static bool model_thread_set;

static void die(const char *msg)
{
	fprintf(stderr, "sharing: %s\n", msg);
	abort();
}

static struct line *chunk_alloc(uint64_t c)
{
	struct line *p = calloc(LINES_PER_CHUNK, sizeof(*p));

	if (!p)
		die("out of memory for line state");
	/* Slow path: a good place to check we are not under MTTCG. */
	if (!model_thread_set) {
		model_thread = pthread_self();
		model_thread_set = true;
	} else if (!pthread_equal(model_thread, pthread_self())) {
		die("memory callbacks from two threads: run QEMU with "
		    "-accel tcg,thread=single");
	}
	chunks[c] = p;
	n_chunks++;
	return p;
}

static uint64_t ev_hash(uint64_t line, uint64_t pc, unsigned int dst,
			unsigned int src, bool store)
{
	uint64_t h = line * 0x9e3779b97f4a7c15ULL;

	h ^= (pc + (dst << 1 | store) * 0x100000001b3ULL + src) *
	     0xc2b2ae3d27d4eb4fULL;
	h ^= h >> 31;
	return h;
}

static void ev_grow(void)
{
	struct event *old = events;
	size_t old_cap = ev_cap, i;

	ev_cap = ev_cap ? 2 * ev_cap : 1 << 16;
	events = calloc(ev_cap, sizeof(*events));
	if (!events)
		die("out of memory for transfer events");
	for (i = 0; i < old_cap; i++) {
		struct event *e = &old[i];
		size_t j;

		if (!e->line)
			continue;
		j = ev_hash(e->line, e->pc, e->dst, e->src, e->store) &
		    (ev_cap - 1);
		while (events[j].line)
			j = (j + 1) & (ev_cap - 1);
		events[j] = *e;
	}
	free(old);
}

/* A transfer to @dst from @src, inside the window.  Slow path. */
static void transfer(unsigned int dst, unsigned int src, uint64_t line,
		     uint64_t pc, uint64_t vaddr, bool store)
{
	uint64_t key = line + 1;	/* 0 marks an empty slot */
	size_t j;

	vcpus[dst].xfer[pc >= KERNEL_START][store]++;
	if (2 * (ev_used + 1) > ev_cap)
		ev_grow();
	j = ev_hash(key, pc, dst, src, store) & (ev_cap - 1);
	for (;;) {
		struct event *e = &events[j];

		if (!e->line) {
			*e = (struct event){ .line = key, .pc = pc,
					     .vaddr = vaddr, .count = 1,
					     .dst = dst, .src = src,
					     .store = store };
			ev_used++;
			return;
		}
		if (e->line == key && e->pc == pc && e->dst == dst &&
		    e->src == src && e->store == store) {
			e->count++;
			return;
		}
		j = (j + 1) & (ev_cap - 1);
	}
}

static inline void access_line(unsigned int v, uint64_t ln, bool store,
			       uint64_t pc, uint64_t vaddr)
{
	uint64_t c = ln >> (CHUNK_SHIFT - LINE_SHIFT);
	struct vcpu_state *vs = &vcpus[v];
	uint32_t bit = 1u << v;
	struct line *l;
	uint32_t others;

	if (c >= NCHUNKS) {
		beyond_phys++;
		return;
	}
	l = chunks[c];
	if (!l)
		l = chunk_alloc(c);
	l += ln & (LINES_PER_CHUNK - 1);

	if (!store) {
		vs->ld_pc = pc;
		vs->ld_line = ln;
		vs->ld_xfer = false;
		if (l->holders & bit)
			return;			/* hit */
		if (l->writer && l->writer != v + 1) {
			if (counting)
				transfer(v, l->writer - 1, ln, pc, vaddr, false);
			vs->ld_xfer = true;
		} else if (counting) {
			vs->cold++;
		}
		l->holders |= bit;
		return;
	}

	others = l->holders & ~bit;
	if (others) {
		if (counting && !(vs->ld_xfer && vs->ld_pc == pc &&
				  vs->ld_line == ln)) {
			unsigned int src = l->writer && l->writer != v + 1 ?
					   l->writer - 1u :
					   (unsigned int)__builtin_ctz(others);

			transfer(v, src, ln, pc, vaddr, true);
		}
	} else if (!(l->holders & bit) && counting) {
		vs->cold++;
	}
	vs->ld_xfer = false;
	l->holders = bit;
	l->writer = v + 1;
}

static void mem_access(unsigned int v, qemu_plugin_meminfo_t info,
		       uint64_t vaddr, void *udata)
{
	struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
	uint64_t pa, ln, last;
	bool store;

	if (!hw || qemu_plugin_hwaddr_is_io(hw))
		return;
	pa = qemu_plugin_hwaddr_phys_addr(hw);
	store = qemu_plugin_mem_is_store(info);
	ln = pa >> LINE_SHIFT;
	access_line(v, ln, store, (uintptr_t)udata, vaddr);
	/*
	 * An access crossing a line (not a page: the next page's physical
	 * address is unknown here) touches the next line too.  Guest accesses
	 * reach the plugin as at most 8 bytes (TCG splits wider ones), so
	 * only one starting in the last 7 bytes of a line can cross.
	 */
	if ((pa & ((1u << LINE_SHIFT) - 1)) <= (1u << LINE_SHIFT) - 8)
		return;
	last = (pa + (1u << qemu_plugin_mem_size_shift(info)) - 1) >> LINE_SHIFT;
	if (last != ln && (last << LINE_SHIFT & 0xfff))
		access_line(v, last, store, (uintptr_t)udata, vaddr);
}

static void marker_exec(unsigned int vcpu_index, void *udata)
{
	struct marker *m = udata;

	(void)vcpu_index;
	m->seen++;
	if (!window_all)
		counting = m->opens;
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
	size_t n = qemu_plugin_tb_n_insns(tb), i;

	(void)id;
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		struct marker *m = insn_marker(insn);
		void *pc;

		if (m) {
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker_exec,
							       QEMU_PLUGIN_CB_NO_REGS,
							       m);
			continue;
		}
		/*
		 * One callback for loads and stores: QEMU 7.2 calls every
		 * memory callback of an instruction for each of its
		 * accesses, whatever rw it was registered with.  udata is
		 * the instruction's address: the code site.
		 */
		pc = (void *)(uintptr_t)qemu_plugin_insn_vaddr(insn);
		qemu_plugin_register_vcpu_mem_cb(insn, mem_access,
						 QEMU_PLUGIN_CB_NO_REGS,
						 QEMU_PLUGIN_MEM_RW, pc);
	}
}

/* ---- symbols ---------------------------------------------------------- */

static const struct sym *sym_find(const struct symtab *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n;

	if (!t->n || addr < t->s[0].addr || addr >= map_end)
		return NULL;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->s[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return &t->s[lo];
}

/* "name+0xoff", "[user]" or "[unknown]" */
static void code_site(uint64_t pc, char *buf, size_t len)
{
	const struct sym *s;

	if (pc < KERNEL_START) {
		snprintf(buf, len, "[user]");
		return;
	}
	s = sym_find(&text, pc);
	if (s)
		snprintf(buf, len, "%s+0x%" PRIx64, s->name, pc - s->addr);
	else
		snprintf(buf, len, "[unknown]");
}

/* Static kernel data (through the kernel image mapping or the direct map). */
static void data_site(uint64_t vaddr, uint64_t paddr, char *buf, size_t len)
{
	const struct sym *s = NULL;
	uint64_t a = 0;

	if (vaddr >= KIMAGE_START)
		a = vaddr;
	else if (text_phys && paddr >= text_phys &&
		 paddr < text_phys + (map_end - text.s[0].addr))
		a = paddr - text_phys + text.s[0].addr;
	if (a)
		s = sym_find(&data, a);
	if (s && a - s->addr < (1u << 20))
		snprintf(buf, len, "%s+0x%" PRIx64, s->name, a - s->addr);
	else
		snprintf(buf, len, "-");
}

static int sym_cmp(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int sym_add(struct symtab *t, uint64_t addr, const char *name)
{
	if (t->n == t->cap) {
		struct sym *s;

		t->cap = t->cap ? 2 * t->cap : 65536;
		s = realloc(t->s, t->cap * sizeof(*s));
		if (!s)
			return -1;
		t->s = s;
	}
	t->s[t->n].addr = addr;
	t->s[t->n].name = strdup(name);
	if (!t->s[t->n].name)
		return -1;
	t->n++;
	return 0;
}

/* Of aliases, keep the name with the fewest leading underscores. */
static void sym_sort(struct symtab *t)
{
	size_t i, n;

	if (!t->n)
		return;
	qsort(t->s, t->n, sizeof(*t->s), sym_cmp);
	for (i = 1, n = 1; i < t->n; i++) {
		struct sym *prev = &t->s[n - 1];

		if (t->s[i].addr != prev->addr) {
			t->s[n++] = t->s[i];
		} else if (strspn(t->s[i].name, "_") <
			   strspn(prev->name, "_")) {
			free(prev->name);
			*prev = t->s[i];
		} else {
			free(t->s[i].name);
		}
	}
	t->n = n;
}

static int load_map(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t len = 0, lineno = 0;

	if (!f) {
		fprintf(stderr, "sharing: cannot open map file '%s': %s\n",
			path, strerror(errno));
		return -1;
	}
	while (getline(&line, &len, f) > 0) {
		char type, name[512];
		uint64_t addr;
		int r = 0;

		lineno++;
		if (sscanf(line, "%" SCNx64 " %c %511s", &addr, &type, name) != 3) {
			fprintf(stderr, "sharing: %s:%zu: not a System.map line\n",
				path, lineno);
			goto err;
		}
		if (addr >= map_end)
			map_end = addr + 1;
		if (addr < KERNEL_START)
			continue;
		if (strchr("tTwW", type))
			r = sym_add(&text, addr, name);
		else if (strchr("dDbBrRvV", type))
			r = sym_add(&data, addr, name);
		if (r) {
			fprintf(stderr, "sharing: out of memory loading map\n");
			goto err;
		}
	}
	fclose(f);
	free(line);
	if (!text.n) {
		fprintf(stderr, "sharing: no kernel text symbols in '%s'\n", path);
		return -1;
	}
	sym_sort(&text);
	sym_sort(&data);
	/* nokaslr, default load address: _text = __START_KERNEL_map + phys */
	if (text.s[0].addr >= KIMAGE_START)
		text_phys = text.s[0].addr - KIMAGE_START;
	return 0;
err:
	fclose(f);
	free(line);
	return -1;
}

/* ---- output ----------------------------------------------------------- */

struct agg {
	uint64_t key1, key2;	/* sort / group keys */
	uint64_t count;
	size_t ev;		/* an event index of this group */
};

static int agg_cmp_count(const void *a, const void *b)
{
	const struct agg *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->key1 != y->key1)
		return x->key1 < y->key1 ? -1 : 1;
	return x->key2 < y->key2 ? -1 : x->key2 > y->key2;
}

static int ev_cmp_line(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->count > y->count ? -1 : x->count < y->count;
}

static int ev_cmp_site(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	if (x->pc != y->pc)
		return x->pc < y->pc ? -1 : 1;
	if (x->dst != y->dst)
		return x->dst - y->dst;
	if (x->src != y->src)
		return x->src - y->src;
	return x->store - y->store;
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	struct event *ev;
	struct agg *lines;
	size_t i, j, n = 0, nl = 0;
	char site[600], dsym[600];
	unsigned int v;

	(void)id;
	(void)udata;
	fprintf(out_file, "sharing window %s markers %" PRIu64 " %" PRIu64
		" line %u vcpus %u chunks %" PRIu64 " ignored %" PRIu64 "\n",
		window_all ? "all" : "on", markers[0].seen, markers[1].seen,
		1u << LINE_SHIFT, n_vcpus, n_chunks, beyond_phys);
	for (v = 0; v < n_vcpus; v++)
		fprintf(out_file, "vcpu %u kload %" PRIu64 " kstore %" PRIu64
			" uload %" PRIu64 " ustore %" PRIu64 " cold %" PRIu64 "\n",
			v, vcpus[v].xfer[1][0], vcpus[v].xfer[1][1],
			vcpus[v].xfer[0][0], vcpus[v].xfer[0][1], vcpus[v].cold);

	/* Compact the event table. */
	ev = events;
	for (i = 0; i < ev_cap; i++)
		if (events[i].line)
			ev[n++] = events[i];

	/* Hottest lines: total transfers per line, then their events. */
	qsort(ev, n, sizeof(*ev), ev_cmp_line);
	lines = calloc(n + 1, sizeof(*lines));
	if (!lines)
		die("out of memory writing output");
	for (i = 0; i < n; i = j) {
		uint64_t sum = 0;

		for (j = i; j < n && ev[j].line == ev[i].line; j++)
			sum += ev[j].count;
		lines[nl++] = (struct agg){ .key1 = ev[i].line, .count = sum,
					    .ev = i };
	}
	qsort(lines, nl, sizeof(*lines), agg_cmp_count);
	for (i = 0; i < nl && i < top_lines; i++) {
		struct event *e = &ev[lines[i].ev];
		uint64_t paddr = (e->line - 1) << LINE_SHIFT;

		data_site(e->vaddr, paddr, dsym, sizeof(dsym));
		fprintf(out_file, "line %" PRIx64 " %" PRIu64 " %" PRIx64 " %s\n",
			paddr, lines[i].count, e->vaddr & ~(uint64_t)63, dsym);
		for (; e < ev + n && e->line == lines[i].key1; e++) {
			code_site(e->pc, site, sizeof(site));
			fprintf(out_file, "lsite %" PRIx64 " %u %u %s %u %" PRIx64
				" %s\n", paddr, e->dst, e->src,
				e->store ? "st" : "ld", e->count, e->pc, site);
		}
	}
	free(lines);

	/* All code sites: (pc, dst, src, ld/st). */
	qsort(ev, n, sizeof(*ev), ev_cmp_site);
	for (i = 0; i < n; i = j) {
		uint64_t sum = 0;

		for (j = i; j < n && !ev_cmp_site(&ev[i], &ev[j]); j++)
			sum += ev[j].count;
		code_site(ev[i].pc, site, sizeof(site));
		fprintf(out_file, "xfer %u %u %s %" PRIu64 " %" PRIx64 " %s\n",
			ev[i].dst, ev[i].src, ev[i].store ? "st" : "ld", sum,
			ev[i].pc, site);
	}
	if (fclose(out_file))
		fprintf(stderr, "sharing: writing output failed: %s\n",
			strerror(errno));
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
		} else if ((val = arg_value(argv[i], "lines"))) {
			char *end;

			top_lines = strtoul(val, &end, 10);
			if (*end || !*val) {
				fprintf(stderr, "sharing: lines=%s: expected a number\n",
					val);
				return -1;
			}
		} else if ((val = arg_value(argv[i], "window"))) {
			if (!strcmp(val, "all")) {
				window_all = true;
			} else if (strcmp(val, "on")) {
				fprintf(stderr, "sharing: window=%s: expected 'on' or 'all'\n",
					val);
				return -1;
			}
		} else {
			fprintf(stderr, "sharing: unknown argument '%s' (expected out=PATH, map=PATH, lines=N, window=on|all)\n",
				argv[i]);
			return -1;
		}
	}
	if (!out) {
		fprintf(stderr, "sharing: missing out=PATH argument\n");
		return -1;
	}
	if (!info->system_emulation || strcmp(info->target_name, "x86_64")) {
		fprintf(stderr, "sharing: needs qemu-system-x86_64 (got %s %s emulation)\n",
			info->target_name,
			info->system_emulation ? "system" : "user");
		return -1;
	}
	if (info->system.max_vcpus < 1 || info->system.max_vcpus > MAX_VCPUS) {
		fprintf(stderr, "sharing: %d vCPUs not supported (max %d)\n",
			info->system.max_vcpus, MAX_VCPUS);
		return -1;
	}
	n_vcpus = info->system.max_vcpus;
	if (map && load_map(map))
		return -1;
	out_file = fopen(out, "w");
	if (!out_file) {
		fprintf(stderr, "sharing: cannot open output '%s': %s\n",
			out, strerror(errno));
		return -1;
	}
	counting = window_all;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
