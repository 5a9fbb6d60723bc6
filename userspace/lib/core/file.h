/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * file.h - whole-file reads and crash-safe writes for state that must
 * survive a restart (the control plane's store, the agent's last good
 * snapshot and node credentials).
 *
 * Contract: file_write_atomic() leaves either the old or the new content
 * at `path`, never a mix: it writes a temporary file in the same directory
 * with `mode`, fsyncs it, renames it over `path` and fsyncs the directory.
 * Both functions return 0 or -errno; file_read() returns a NUL-terminated
 * malloc'd buffer (the NUL is not counted in *len) and refuses files larger
 * than `max` with -EFBIG.
 *
 * file_write_replace() is the same without the fsyncs: the old or the new
 * content after a crash of the process, not of the machine. For state under
 * the run dir (/run, a tmpfs that a reboot empties), which only a restarted
 * process reads.
 */
#ifndef SL_FILE_H
#define SL_FILE_H

#include <stddef.h>
#include <sys/types.h>

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
int file_write_replace(const char *path, const void *data, size_t len, mode_t mode);
int file_read(const char *path, char **buf, size_t *len, size_t max);
/* Append data to `path` (created with `mode` if absent) and make it
 * durable: fdatasync, and fsync of the directory when the file is new. A
 * crash can leave a prefix of the data at the end (a torn append). */
int file_append_sync(const char *path, const void *data, size_t len, mode_t mode);
/* Remove `path` (absent is fine) and fsync its directory. */
int file_remove_sync(const char *path);
/* The config inputs `path` names, as kubectl apply -f reads them: the path
 * itself, or for a directory its regular files ending in .yaml, .yml or
 * .json, sorted by name (not recursive; an empty directory is -ENOENT).
 * *out: malloc'd paths in a malloc'd array. 0 or -errno. */
int file_list_inputs(const char *path, char ***out, size_t *n);

#endif /* SL_FILE_H */
