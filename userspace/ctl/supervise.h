/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * supervise.h - the daemons install starts: a supervisor per daemon that
 * restarts it when it exits (or a systemd unit where systemd is PID 1),
 * and running a command, in a network namespace if asked.
 */
#ifndef SL_CTL_SUPERVISE_H
#define SL_CTL_SUPERVISE_H

#include <stdio.h>

#include "ctl/plan.h"

/* Start d under a supervisor that restarts it when it exits; returns once
 * the supervisor has written its pid file and, if d->ready is set, the
 * log shows that line (timeout_ms). 0 or -errno. */
int daemon_start(const struct plan *p, const struct daemon *d, int timeout_ms);
/* Stop the supervisor and its daemon (SIGTERM, SIGKILL after 10 s). 0 if
 * none ran or it stopped. */
int daemon_stop(const struct plan *p, const char *name);
/* The systemd unit of d, to f (what daemon_start writes under systemd). */
int daemon_unit(const struct plan *p, const struct daemon *d, FILE *f);
/* pid of the supervisor and of the daemon now, 0 if not running (under
 * systemd, *sv is 1 while the unit runs). */
int daemon_pids(const struct plan *p, const char *name, int *sv, int *child);

/* Run argv (argv[0] a path), wait; its stdout in *out (malloc'd, may be
 * NULL). The exit status, or -errno. */
int run_cmd(char *const argv[], char **out);
/* The same in network namespace netns ("" or NULL: this one). */
int run_cmd_in(const char *netns, char *const argv[], char **out);

#endif /* SL_CTL_SUPERVISE_H */
