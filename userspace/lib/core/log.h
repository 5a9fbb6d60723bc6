/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * log.h - one logger for every sluice binary. Lines go to stderr as
 * "TIME LEVEL component: message". libbpf's own output (verifier logs
 * included) is routed here by log_hook_libbpf() so it is never lost.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_init(const char *component, enum log_level level);
int log_level_parse(const char *s, enum log_level *out);
void log_hook_libbpf(void);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* SL_LOG_H */
