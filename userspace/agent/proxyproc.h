/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxyproc.h - the node proxy as a process, for its supervisor
 * (proxysup.h): start one, find the running one, stop it at uninstall.
 */
#ifndef SL_AGENT_PROXYPROC_H
#define SL_AGENT_PROXYPROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "agent/proxysup.h"
#include "lib/wire/proxylink.h"

/* fork and exec o->bin in a session of its own, with the listening
 * sockets in fds (-1: none; it binds) as descriptors 3, 4, 5: its pid, or
 * -errno. */
pid_t proxyproc_spawn(const struct psup_opts *o, const int fds[PL_LS_MAX]);
/* The pid in <run dir>/proxy.pid, if that process is a live sluice-proxy;
 * else 0. */
pid_t proxyproc_running(const char *run_dir);
/* Uninstall: stop the node's serving proxy (SIGINT: at once), wait for it
 * up to 2 s, and remove its pid file and the link socket. */
void proxyproc_stop(const char *run_dir);
/* An upgrade renamed a new binary over the one the process runs. */
bool proxyproc_replaced(pid_t pid);

#endif /* SL_AGENT_PROXYPROC_H */
