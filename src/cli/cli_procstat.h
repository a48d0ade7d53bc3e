/*
 * cli_procstat: the worker's CPU time and peak RSS from /proc, for
 * modelgw-bench --worker-pid. The parsers are pure (they take the file text);
 * gw_cli_proc_sample reads the two files.
 */
#ifndef GW_CLI_PROCSTAT_H
#define GW_CLI_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

typedef struct {
    uint64_t cpu_us;  /* utime + stime */
    uint64_t hwm_kib; /* VmHWM: peak resident set */
    uint64_t rss_kib; /* VmRSS now */
} gw_cli_proc;

/* /proc/PID/stat: utime + stime (fields 14, 15) in clock ticks. The command
 * name (field 2) may hold spaces and parentheses: parsing starts after the
 * last ')'. GW_E_INVALID_REQUEST when malformed. */
gw_err gw_cli_proc_parse_stat(const char *text, uint64_t *ticks);
/* /proc/PID/status: the value in kB of a line "Key:   123 kB". */
gw_err gw_cli_proc_parse_status(const char *text, const char *key, uint64_t *kib);
/* Reads both files of pid. GW_E_IO when the process is gone. */
gw_err gw_cli_proc_sample(pid_t pid, gw_cli_proc *out);

#endif
