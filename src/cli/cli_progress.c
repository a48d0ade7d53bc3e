/*
 * cli_progress: progress bar / periodic progress lines (see the header).
 */
#include "cli/cli_progress.h"

#include <string.h>

int gw_cli_progress_format(char *buf, size_t n, size_t done, size_t total, size_t errors,
                           double elapsed_s, int bar_width)
{
    char bar[128] = "";
    double frac = total ? (double)done / (double)total : 1.0;
    if (frac > 1)
        frac = 1;
    if (bar_width > 0) {
        if (bar_width > (int)sizeof bar - 3)
            bar_width = (int)sizeof bar - 3;
        int fill = (int)(frac * bar_width);
        bar[0] = '[';
        for (int i = 0; i < bar_width; i++)
            bar[1 + i] = i < fill ? '#' : '.';
        bar[1 + bar_width] = ']';
        bar[2 + bar_width] = '\0';
    }
    double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    char eta[32] = "eta -";
    if (rate > 0 && done < total)
        snprintf(eta, sizeof eta, "eta %.0fs", (double)(total - done) / rate);
    else if (done >= total)
        snprintf(eta, sizeof eta, "done");
    return snprintf(buf, n, "%s%s%zu/%zu  %5.1f%%  %.0f/s  %s  errors %zu", bar,
                    bar_width > 0 ? " " : "", done, total, frac * 100.0, rate, eta, errors);
}

void gw_cli_progress_init(gw_cli_progress *p, FILE *out, bool tty, size_t total, int64_t now_ms)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = tty;
    p->total = total;
    p->start_ms = now_ms;
    p->last_ms = now_ms;
    p->every_ms = tty ? 100 : 5000;
}

static void draw(gw_cli_progress *p, size_t done, size_t errors, int64_t now_ms)
{
    char line[256];
    double el = (double)(now_ms - p->start_ms) / 1000.0;
    gw_cli_progress_format(line, sizeof line, done, p->total, errors, el, p->tty ? 30 : 0);
    if (p->tty)
        fprintf(p->out, "\r\033[K%s", line);
    else
        fprintf(p->out, "progress %s\n", line);
    fflush(p->out);
    p->drawn = true;
    p->last_ms = now_ms;
}

void gw_cli_progress_update(gw_cli_progress *p, size_t done, size_t errors, int64_t now_ms,
                            bool force)
{
    if (force || now_ms - p->last_ms >= p->every_ms)
        draw(p, done, errors, now_ms);
}

void gw_cli_progress_finish(gw_cli_progress *p, size_t done, size_t errors, int64_t now_ms)
{
    draw(p, done, errors, now_ms);
    if (p->tty)
        fputc('\n', p->out);
}
