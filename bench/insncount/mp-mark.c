// SPDX-License-Identifier: GPL-2.0
/*
 * mp-mark start|stop - execute an insncount window marker (see marker.h).
 * A no-op outside QEMU with the insncount plugin.
 */
#include <stdio.h>
#include <string.h>

#include "marker.h"

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "start")) {
		mp_mark_start();
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "stop")) {
		mp_mark_stop();
		return 0;
	}
	fprintf(stderr, "usage: mp-mark start|stop\n");
	return 2;
}
