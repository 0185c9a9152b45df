// SPDX-License-Identifier: MIT
/* Version, features and limits; backend choice; mp_create arguments. */
#define _GNU_SOURCE
#include <unistd.h>

#include "helpers.h"

static void t_version(void)
{
	T_BEGIN("mp_version is the library's version (the Makefile's VERSION)");
	T_ASSERT(mp_version() && !strcmp(mp_version(), MP_LIB_VERSION), "version %s, want %s",
		 mp_version(), MP_LIB_VERSION);
	T_OK();
}

static void t_features(void)
{
	const char *want = getenv("MEGAPIPE_BACKEND");
	struct mp_channel *mp = t_channel(0);
	struct mp_info info;

	T_BEGIN("mp_features: ABI version, backend, limits, default cq_entries");
	T_CALL(mp_features(mp, &info));
	T_ASSERT(info.abi_version >= MEGAPIPE_ABI_VERSION, "abi %u", info.abi_version);
	if (want && !strcmp(want, "epoll"))
		T_ASSERT(info.backend == MP_BACKEND_EPOLL, "backend %u", info.backend);
	if (want && !strcmp(want, "kernel"))
		T_ASSERT(info.backend == MP_BACKEND_KERNEL, "backend %u", info.backend);
	T_ASSERT(info.max_handles > 0 && info.max_batch > 0 && info.max_iov > 0 &&
		 info.max_cq_entries >= info.cq_entries, "limits");
	T_ASSERT(info.cq_entries == (info.max_cq_entries < MP_DEFAULT_CQ_ENTRIES ?
				     info.max_cq_entries : MP_DEFAULT_CQ_ENTRIES),
		 "cq_entries %u", info.cq_entries);
	if (info.backend == MP_BACKEND_EPOLL)
		T_ASSERT(!(info.features & (MP_FEAT_LWSOCKET | MP_FEAT_PERCORE_LISTEN)) &&
			 (info.features & MP_FEAT_CONNECT) && (info.features & MP_FEAT_EXPORT),
			 "epoll features %#llx", (unsigned long long)info.features);
	T_ERRNO(mp_features(mp, NULL), EFAULT);
	T_ERRNO(mp_features(NULL, &info), EINVAL);
	mp_destroy(mp);
	T_OK();
}

static void t_create_args(void)
{
	struct mp_channel *mp;
	struct mp_info info;
	char *saved = getenv("MEGAPIPE_BACKEND") ? strdup(getenv("MEGAPIPE_BACKEND")) : NULL;

	T_BEGIN("mp_create: flags, sizes, MEGAPIPE_BACKEND");
	T_ERRNO_P(mp_create(1U << 7, 0), EINVAL);
	T_ERRNO_P(mp_create(MP_CREATE_KERNEL | MP_CREATE_EPOLL, 0), EINVAL);
	T_ERRNO_P(mp_create(MP_CREATE_EPOLL, 1U << 30), EINVAL);
	mp = mp_create(MP_CREATE_EPOLL, 7);
	T_ASSERT(mp && !mp_features(mp, &info) && info.backend == MP_BACKEND_EPOLL &&
		 info.cq_entries == 7, "forced epoll, 7 entries");
	mp_destroy(mp);
	if (access(MEGAPIPE_DEVICE, F_OK))
		T_ERRNO_P(mp_create(MP_CREATE_KERNEL, 0), ENOENT);
	setenv("MEGAPIPE_BACKEND", "bogus", 1);
	T_ERRNO_P(mp_create(0, 0), EINVAL);
	setenv("MEGAPIPE_BACKEND", "epoll", 1);
	mp = mp_create(0, 0);
	T_ASSERT(mp && !mp_features(mp, &info) && info.backend == MP_BACKEND_EPOLL, "env epoll");
	mp_destroy(mp);
	if (access(MEGAPIPE_DEVICE, F_OK)) {
		setenv("MEGAPIPE_BACKEND", "kernel", 1);
		T_ERRNO_P(mp_create(0, 0), ENOENT);
		unsetenv("MEGAPIPE_BACKEND");
		mp = mp_create(0, 0);	/* automatic: no device, so epoll */
		T_ASSERT(mp && !mp_features(mp, &info) && info.backend == MP_BACKEND_EPOLL,
			 "automatic fallback");
		mp_destroy(mp);
	}
	if (saved)
		setenv("MEGAPIPE_BACKEND", saved, 1);
	else
		unsetenv("MEGAPIPE_BACKEND");
	free(saved);
	mp_destroy(NULL);
	T_OK();
}

int main(void)
{
	t_version();
	t_features();
	t_create_args();
	return t_done();
}
