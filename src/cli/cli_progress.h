/*
 * cli_progress: the progress line of `modelgw-cli batch`.
 *
 * On a terminal the line is redrawn in place ("\r" + bar) at most every
 * redraw_ms; otherwise a plain line is printed every plain_every_ms, so logs
 * of a batch run in CI stay short. The formatter is pure; the printer takes
 * the current time from the caller.
 */
#ifndef GW_CLI_PROGRESS_H
#define GW_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *out;
    bool tty;
    size_t total;
    int64_t start_ms;
    int64_t last_ms;
    int64_t every_ms;
    bool drawn;
} gw_cli_progress;

/* "[#####.....]  512/1000  51.2%  120/s  eta 4s  errors 0" (bar only when
 * bar_width > 0). Returns what snprintf returns. */
int gw_cli_progress_format(char *buf, size_t n, size_t done, size_t total, size_t errors,
                           double elapsed_s, int bar_width);

void gw_cli_progress_init(gw_cli_progress *p, FILE *out, bool tty, size_t total, int64_t now_ms);
/* Prints when due (or when force); done/errors are the current counts. */
void gw_cli_progress_update(gw_cli_progress *p, size_t done, size_t errors, int64_t now_ms,
                            bool force);
/* Final line (ends the in-place line with a newline on a terminal). */
void gw_cli_progress_finish(gw_cli_progress *p, size_t done, size_t errors, int64_t now_ms);

#endif
