// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * verifier-stats - load every program of the given BPF objects, one at a
 * time, and print the running kernel verifier's verdict and instruction
 * counts. Used by the VM harness (vmtests/) on each kernel of the matrix.
 *
 *   verifier-stats OBJ.bpf.o...
 *
 * Prints one line per program:
 *   PROGRAM SECTION accepted|rejected PROCESSED XLATED STATES[ error]
 * PROCESSED is "processed N insns" from the verifier's statistics (log level
 * 4), XLATED the size of the program after the verifier's rewrites, STATES
 * the total states; "-" where unknown. A rejected program gets the last line
 * of the verifier log. Exit status 1 if any program was rejected.
 *
 * Programs load as the agent loads them: maps are not pinned (each load gets
 * its own maps, nothing is left behind), and read-only configuration the
 * agent sets from its feature probes is set the same way
 * (cfg_has_set_retval from libbpf_probe_bpf_helper).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define LOG_SIZE (16u << 20)

static char *logbuf;

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("VERIFIER_STATS_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* Set a bool variable in .rodata by name, if the object has it. */
static void set_rodata_bool(struct bpf_object *obj, const char *var, bool val)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map;
	const struct btf_type *sec;
	const struct btf_var_secinfo *vs;
	const void *init;
	size_t sz;
	int id;

	if (!btf)
		return;
	bpf_object__for_each_map(map, obj) {
		const char *n = bpf_map__name(map);

		if (!strstr(n, ".rodata"))
			continue;
		id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
		if (id < 0)
			return;
		sec = btf__type_by_id(btf, id);
		vs = btf_var_secinfos(sec);
		for (int i = 0; i < btf_vlen(sec); i++, vs++) {
			const struct btf_type *t = btf__type_by_id(btf, vs->type);
			char *copy;

			if (strcmp(btf__name_by_offset(btf, t->name_off), var) != 0)
				continue;
			init = bpf_map__initial_value(map, &sz);
			if (!init || vs->offset + 1 > sz)
				return;
			copy = malloc(sz);
			if (!copy)
				return;
			memcpy(copy, init, sz);
			copy[vs->offset] = val;
			bpf_map__set_initial_value(map, copy, sz);
			free(copy);
			return;
		}
	}
}

/* The number after `key` in the verifier log, or -1. */
static long log_number(const char *log, const char *key)
{
	const char *p = strstr(log, key);

	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* The last non-empty line of the log (for a rejection's reason). */
static void last_line(const char *log, char *out, size_t len)
{
	size_t n = strlen(log);
	const char *end, *start;

	while (n && (log[n - 1] == '\n' || log[n - 1] == ' '))
		n--;
	end = log + n;
	start = end;
	while (start > log && start[-1] != '\n')
		start--;
	/* skip the statistics lines to find the error itself */
	while (start > log && (strncmp(start, "processed ", 10) == 0 ||
			       strncmp(start, "verification time", 17) == 0 ||
			       strncmp(start, "stack depth", 11) == 0)) {
		end = start - 1;
		start = end;
		while (start > log && start[-1] != '\n')
			start--;
	}
	snprintf(out, len, "%.*s", (int)(end - start), start);
}

static void fmt_num(char *buf, size_t len, long v)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%ld", v);
}

/* Open `path` with only program number `idx` set to load, at `level`. */
static struct bpf_object *open_one(const char *path, int idx, __u32 level, bool has_set_retval,
				   struct bpf_program **out)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	int i = 0;

	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		return NULL;
	bpf_object__for_each_map(map, obj)
		bpf_map__set_pin_path(map, NULL);
	set_rodata_bool(obj, "cfg_has_set_retval", has_set_retval);
	*out = NULL;
	bpf_object__for_each_program(prog, obj) {
		if (i++ == idx) {
			bpf_program__set_autoload(prog, true);
			logbuf[0] = '\0';
			bpf_program__set_log_buf(prog, logbuf, LOG_SIZE);
			bpf_program__set_log_level(prog, level);
			*out = prog;
		} else {
			bpf_program__set_autoload(prog, false);
		}
	}
	return obj;
}

static int one_object(const char *path, bool has_set_retval)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	int nprogs = 0, bad = 0;

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "verifier-stats: %s: %s\n", path, strerror(errno));
		return -1;
	}
	bpf_object__for_each_program(prog, obj)
		nprogs++;
	bpf_object__close(obj);

	for (int i = 0; i < nprogs; i++) {
		char proc[32], xl[32], st[32], err[512] = "";
		long processed, states, xlated = -1;
		const char *name, *sec;
		int rc;

		obj = open_one(path, i, 4 /* BPF_LOG_STATS */, has_set_retval, &prog);
		if (!obj || !prog) {
			fprintf(stderr, "verifier-stats: %s: cannot reopen\n", path);
			return -1;
		}
		name = bpf_program__name(prog);
		sec = bpf_program__section_name(prog);
		rc = bpf_object__load(obj);
		processed = log_number(logbuf, "processed ");
		states = log_number(logbuf, "total_states ");
		if (rc == 0) {
			struct bpf_prog_info info = {};
			__u32 ilen = sizeof(info);

			if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &ilen) == 0)
				xlated = info.xlated_prog_len / 8;
		} else {
			/* again with the full log, for the reason */
			char *n = strdup(name), *s = strdup(sec);

			bpf_object__close(obj);
			obj = open_one(path, i, 1, has_set_retval, &prog);
			if (obj && prog && bpf_object__load(obj) == 0)
				snprintf(err, sizeof(err), "(loads at log level 1?)");
			else
				last_line(logbuf, err, sizeof(err));
			if (!err[0])
				snprintf(err, sizeof(err), "load failed: %s", strerror(-rc));
			if (processed < 0)
				processed = log_number(logbuf, "processed ");
			name = n;
			sec = s;
			bad++;
			fmt_num(proc, sizeof(proc), processed);
			printf("%-24s %-24s rejected %8s %8s %8s %s\n", name, sec, proc, "-", "-", err);
			free(n);
			free(s);
			bpf_object__close(obj);
			continue;
		}
		fmt_num(proc, sizeof(proc), processed);
		fmt_num(xl, sizeof(xl), xlated);
		fmt_num(st, sizeof(st), states);
		printf("%-24s %-24s accepted %8s %8s %8s\n", name, sec, proc, xl, st);
		bpf_object__close(obj);
	}
	return bad;
}

int main(int argc, char **argv)
{
	bool has_set_retval;
	int bad = 0, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: verifier-stats OBJ.bpf.o...\n");
		return 2;
	}
	logbuf = malloc(LOG_SIZE);
	if (!logbuf)
		return 2;
	libbpf_set_print(quiet_print);
	has_set_retval = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						 BPF_FUNC_set_retval, NULL) > 0;
	printf("# probe bpf_set_retval: %s\n", has_set_retval ? "yes" : "no");
	printf("# %-22s %-24s %-8s %8s %8s %8s\n", "program", "section", "verdict",
	       "processed", "xlated", "states");
	for (int i = 1; i < argc; i++) {
		rc = one_object(argv[i], has_set_retval);
		if (rc < 0)
			return 2;
		bad += rc;
	}
	fflush(stdout);
	return bad ? 1 : 0;
}
