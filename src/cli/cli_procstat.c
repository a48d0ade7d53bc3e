/*
 * cli_procstat: /proc parsing for modelgw-bench (see the header).
 */
#include "cli/cli_procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gw_err gw_cli_proc_parse_stat(const char *text, uint64_t *ticks)
{
    const char *p = strrchr(text, ')');
    if (!p)
        return GW_E_INVALID_REQUEST;
    p++;
    /* after ')': field 3 (state) is the first; utime is field 14 */
    unsigned long long ut = 0, st = 0;
    int field = 2;
    while (*p && field < 15) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        field++;
        char *end;
        if (field == 14)
            ut = strtoull(p, &end, 10);
        else if (field == 15)
            st = strtoull(p, &end, 10);
        else
            end = (char *)p + strcspn(p, " ");
        if (end == p)
            return GW_E_INVALID_REQUEST;
        p = end;
    }
    if (field < 15)
        return GW_E_INVALID_REQUEST;
    *ticks = ut + st;
    return GW_OK;
}

gw_err gw_cli_proc_parse_status(const char *text, const char *key, uint64_t *kib)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *end;
            unsigned long long v = strtoull(line + klen + 1, &end, 10);
            if (end == line + klen + 1)
                return GW_E_INVALID_REQUEST;
            *kib = v;
            return GW_OK;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return GW_E_INVALID_REQUEST;
}

static gw_err slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return GW_E_IO;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    return got ? GW_OK : GW_E_IO;
}

gw_err gw_cli_proc_sample(pid_t pid, gw_cli_proc *out)
{
    char path[64], text[8192];
    uint64_t ticks;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    gw_err e = slurp(path, text, sizeof text);
    if (e == GW_OK)
        e = gw_cli_proc_parse_stat(text, &ticks);
    if (e != GW_OK)
        return e;
    long hz = sysconf(_SC_CLK_TCK);
    out->cpu_us = ticks * 1000000ull / (uint64_t)(hz > 0 ? hz : 100);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    e = slurp(path, text, sizeof text);
    if (e == GW_OK)
        e = gw_cli_proc_parse_status(text, "VmHWM", &out->hwm_kib);
    if (e == GW_OK)
        e = gw_cli_proc_parse_status(text, "VmRSS", &out->rss_kib);
    return e;
}
