/* SPDX-License-Identifier: GPL-2.0 */
/* MegaPipe channels (/dev/megapipe): what the rest of the kernel asks. */
#ifndef _LINUX_MEGAPIPE_H
#define _LINUX_MEGAPIPE_H

#include <uapi/linux/megapipe.h>

struct file;

#if IS_ENABLED(CONFIG_MEGAPIPE)
bool megapipe_is_channel(const struct file *file);
#else
static inline bool megapipe_is_channel(const struct file *file)
{
	return false;
}
#endif

#endif /* _LINUX_MEGAPIPE_H */
