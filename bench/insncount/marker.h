/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Measurement-window markers for the insncount QEMU plugin.
 *
 * Each marker is a 7-byte "nopl disp32(%rax)" whose displacement spells a
 * tag, so it is a no-op on real hardware and in an uninstrumented VM.  The
 * plugin starts counting when any vCPU executes MP_MARK_START and stops at
 * MP_MARK_STOP.
 *   start: 0f 1f 80 4d 50 53 54   ("MPST")
 *   stop:  0f 1f 80 4d 50 53 50   ("MPSP")
 */
#ifndef MP_INSNCOUNT_MARKER_H
#define MP_INSNCOUNT_MARKER_H

#define MP_MARK_START_BYTES 0x0f, 0x1f, 0x80, 0x4d, 0x50, 0x53, 0x54
#define MP_MARK_STOP_BYTES  0x0f, 0x1f, 0x80, 0x4d, 0x50, 0x53, 0x50

static inline void mp_mark_start(void)
{
	__asm__ __volatile__(".byte 0x0f,0x1f,0x80,0x4d,0x50,0x53,0x54" ::: "memory");
}

static inline void mp_mark_stop(void)
{
	__asm__ __volatile__(".byte 0x0f,0x1f,0x80,0x4d,0x50,0x53,0x50" ::: "memory");
}

#endif
