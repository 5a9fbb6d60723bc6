/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * podman.h - the runtime's record of a container: podman's own state
 * database, read by container id, so that a workload's identity comes
 * from what the runtime was told when the container was created and never
 * from anything inside the container.
 *
 * Why the database and not `podman inspect ID`: podman calls the CNI
 * plugins while it holds the container's lock, and `podman inspect` takes
 * that lock, so inspecting during ADD waits for ADD: a deadlock (seen:
 * the inspect hangs until the plugin gives up).
 *
 * The database is podman 4's BoltDB (`bolt_state.db` in podman's static
 * dir, /var/lib/containers/storage/libpod by default), read-only under a
 * shared flock(2): podman opens it with an exclusive lock for each
 * transaction, so the bytes read are one committed state. The container's
 * record is bucket "ctr" / ID / key "config": the JSON podman keeps
 * (name, labels, cgroupParent, ...). Every offset is checked against the
 * file; a file that is not a BoltDB or is damaged is an error, never a
 * crash.
 *
 * Contract: 0 and *config (the record, caller decrefs), or -errno with
 * the reason in err: -ENOENT when the database has no such container.
 */
#ifndef SL_AGENT_PODMAN_H
#define SL_AGENT_PODMAN_H

#include <stddef.h>

#include <jansson.h>

#define PODMAN_DEFAULT_DB "/var/lib/containers/storage/libpod/bolt_state.db"

int podman_container(const char *db, const char *id, json_t **config, char *err, size_t errlen);

/* The same on a database already in memory (the unit tests and the fuzz
 * harness use it). */
int podman_container_mem(const unsigned char *buf, size_t len, const char *id, json_t **config,
			 char *err, size_t errlen);

#endif /* SL_AGENT_PODMAN_H */
