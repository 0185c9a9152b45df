// SPDX-License-Identifier: GPL-2.0
/*
 * Run the instruction a stale emulator translation hid behind an int3.
 *
 * text_poke_bp() changes live kernel text (static keys, static calls) by
 * writing an int3 over the first byte, then the rest of the new instruction,
 * then its first byte, synchronising every CPU between the steps; an int3
 * hit meanwhile is emulated by poke_int3_handler().  On real CPUs no int3 is
 * executed once the last step is done.  QEMU's multi-threaded TCG (7.2, the
 * emulator our test VMs run on) can keep a translation made while the int3
 * was in place and execute it after the patch completed, when nothing is
 * left to emulate it: "Oops: int3" at a patch site whose bytes are already
 * the new instruction.
 *
 * This die notifier, for test kernels only, looks at such an int3: if the
 * byte in memory is no longer an int3 and the instruction there is one that
 * text_poke_bp() writes (a NOP, JMP, CALL, RET or Jcc), it emulates that
 * instruction as poke_int3_handler() would have, and says so on the console.
 * Any other int3 is left to the kernel's usual handling.
 */

#define pr_fmt(fmt) "tcg-stale-int3: " fmt

#include <linux/init.h>
#include <linux/kdebug.h>
#include <linux/kernel.h>
#include <linux/notifier.h>
#include <linux/ratelimit.h>
#include <asm/insn.h>
#include <asm/text-patching.h>
#include <asm/traps.h>

static atomic_long_t tcg_stale_int3_count;

static bool tcg_insn_is_nop(const struct insn *insn)
{
	if (insn->opcode.bytes[0] == 0x90)	/* NOP, 66 NOP; not PAUSE or */
		return (!insn->prefixes.nbytes ||	/* XCHG %r8 */
			insn->prefixes.bytes[0] != 0xf3) &&
		       !(insn->rex_prefix.nbytes &&
			 insn->rex_prefix.bytes[0] & 1);
	return insn->opcode.bytes[0] == 0x0f &&	/* NOPL */
	       insn->opcode.bytes[1] == 0x1f;
}

/* Emulate the instruction at regs->ip - 1 if it is not an int3. */
static bool tcg_stale_int3_run(struct pt_regs *regs)
{
	unsigned long addr = regs->ip - INT3_INSN_SIZE, next;
	struct insn insn;
	u8 op;

	if (*(u8 *)addr == INT3_INSN_OPCODE ||
	    insn_decode_kernel(&insn, (void *)addr))
		return false;

	next = addr + insn.length;
	op = insn.opcode.bytes[0];
	switch (op) {
	case CALL_INSN_OPCODE:
		if (insn.length != CALL_INSN_SIZE)
			return false;
		int3_emulate_call(regs, next + insn.immediate.value);
		break;
	case JMP32_INSN_OPCODE:
	case JMP8_INSN_OPCODE:
		int3_emulate_jmp(regs, next + insn.immediate.value);
		break;
	case RET_INSN_OPCODE:
		int3_emulate_ret(regs);
		break;
	case 0x70 ... 0x7f:			/* Jcc.d8 */
		int3_emulate_jcc(regs, op & 0xf, next, insn.immediate.value);
		break;
	case 0x0f:
		if ((insn.opcode.bytes[1] & 0xf0) == 0x80) {	/* Jcc.d32 */
			int3_emulate_jcc(regs, insn.opcode.bytes[1] & 0xf, next,
					 insn.immediate.value);
			break;
		}
		fallthrough;
	default:
		if (!tcg_insn_is_nop(&insn))
			return false;
		int3_emulate_jmp(regs, next);
	}
	return true;
}

static int tcg_stale_int3_notify(struct notifier_block *nb,
				 unsigned long val, void *data)
{
	struct pt_regs *regs = ((struct die_args *)data)->regs;
	unsigned long addr;

	if (val != DIE_INT3 || !regs || user_mode(regs))
		return NOTIFY_DONE;
	addr = regs->ip - INT3_INSN_SIZE;
	if (!core_kernel_text(addr) || !tcg_stale_int3_run(regs))
		return NOTIFY_DONE;

	pr_warn_ratelimited("ran %pS for a stale int3 (%ld so far)\n",
			    (void *)addr,
			    atomic_long_inc_return(&tcg_stale_int3_count));
	return NOTIFY_STOP;
}

static struct notifier_block tcg_stale_int3_nb = {
	.notifier_call = tcg_stale_int3_notify,
};

/*
 * Self-test on data laid out as text_poke_bp() leaves code; each check
 * names the offset of an instruction, the flags and the offset where the
 * emulation must continue (-1: an int3, or an instruction text_poke_bp()
 * does not write, must be left alone).
 */
static const u8 tcg_stale_int3_code[] __initconst = {
	0x0f, 0x1f, 0x44, 0x00, 0x00,	/*  0: nopl 0x0(%rax,%rax,1) */
	0xe9, 0xf6, 0xff, 0xff, 0xff,	/*  5: jmp 0 */
	0x66, 0x90,			/* 10: xchg %ax,%ax */
	0xcc,				/* 12: int3 */
	0x74, 0xf2,			/* 13: je 1 */
	0xe8, 0xf1, 0xff, 0xff, 0xff,	/* 15: call 5 */
	0xc3,				/* 20: ret */
	0x41, 0x90,			/* 21: xchg %eax,%r8d */
};

static bool __init tcg_stale_int3_check(unsigned int at, unsigned long flags,
					long want)
{
	unsigned long base = (unsigned long)tcg_stale_int3_code, stack[2];
	struct pt_regs regs = {
		.ip = base + at + INT3_INSN_SIZE,
		.flags = flags,
		.sp = (unsigned long)&stack[1],
	};
	bool ran;

	stack[1] = base + 21;			/* for the RET */
	ran = tcg_stale_int3_run(&regs);
	if (want < 0 ? !ran : ran && regs.ip == base + want) {
		/* A CALL pushes the address of the instruction after it. */
		if (tcg_stale_int3_code[at] != CALL_INSN_OPCODE ||
		    (regs.sp == (unsigned long)&stack[0] &&
		     stack[0] == base + at + CALL_INSN_SIZE))
			return true;
	}
	pr_err("self-test: at %u: %s, ip %+ld, want %ld\n", at,
	       ran ? "ran" : "left it", (long)(regs.ip - base), want);
	return false;
}

static int __init tcg_stale_int3_init(void)
{
	bool ok = tcg_stale_int3_check(0, 0, 5) &
		  tcg_stale_int3_check(5, 0, 0) &
		  tcg_stale_int3_check(10, 0, 12) &
		  tcg_stale_int3_check(12, 0, -1) &
		  tcg_stale_int3_check(13, X86_EFLAGS_ZF, 1) &
		  tcg_stale_int3_check(13, 0, 15) &
		  tcg_stale_int3_check(15, 0, 5) &
		  tcg_stale_int3_check(20, 0, 21) &
		  tcg_stale_int3_check(21, 0, -1);

	if (!WARN(!ok, "tcg-stale-int3: self-test failed\n"))
		pr_info("self-test passed\n");
	return register_die_notifier(&tcg_stale_int3_nb);
}
early_initcall(tcg_stale_int3_init);
