/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sys.h - the host facts sluice depends on: bpffs, the cgroup v2 mount,
 * directories, the open-file limit. Functions return 0 or -errno unless
 * their comment says otherwise.
 */
#ifndef SL_SYS_H
#define SL_SYS_H

#include <stddef.h>

#define SL_BPFFS        "/sys/fs/bpf"
#define SL_PIN_BASE     SL_BPFFS "/sluice"
#define SL_RUN_BASE     "/run/sluice"
/* sluice-control's state directory by default, where sluicectl also finds
 * the admin credentials (control/store.h lays it out). */
#define SL_CONTROL_DIR  "/var/lib/sluice/control"

/* Mount bpffs at /sys/fs/bpf when it is not mounted there yet. */
int sys_ensure_bpffs(void);
/* Where cgroup v2 is mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified). */
int sys_cgroup2_root(char *buf, size_t len);
/* An absolute cgroup path as given, or one relative to the cgroup2 root. */
int sys_cgroup_path(const char *arg, char *buf, size_t len);
int sys_mkdir_p(const char *path, unsigned int mode);
/* A node's run directory (flow log): SL_RUN_BASE/<last part of pin_root>. */
int sys_run_dir(const char *pin_root, char *buf, size_t len);
/* Servers: raise the soft open-file limit to the hard one (every
 * connection is a descriptor; systemd's default soft limit is 1,024) and
 * return it (0 if it cannot be read). */
unsigned long sys_raise_fd_limit(void);

#endif /* SL_SYS_H */
