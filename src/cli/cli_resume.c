/*
 * cli_resume: parsing of the batch output and state files (see the header).
 */
#include "cli/cli_resume.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_batch.h"

gw_err gw_cli_resume_scan_output(const char *data, size_t len, gw_cli_strset *done,
                                 size_t *valid_len, size_t *bad_lines, size_t *dup_lines)
{
    char cid[GW_CLI_BATCH_MAX_CUSTOM_ID + 1];
    size_t pos = 0;
    *valid_len = 0;
    *bad_lines = 0;
    *dup_lines = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl)
            break; /* partial last line: dropped */
        size_t n = (size_t)(nl - (data + pos));
        if (n == 0) {
            pos += 1;
            *valid_len = pos;
            continue;
        }
        if (gw_cli_batch_output_custom_id(data + pos, n, cid, sizeof cid) != GW_OK) {
            (*bad_lines)++;
            break;
        }
        gw_err e = gw_cli_strset_add(done, cid, NULL);
        if (e == GW_E_INVALID_REQUEST)
            (*dup_lines)++;
        else if (e != GW_OK)
            return e;
        pos += n + 1;
        *valid_len = pos;
    }
    return GW_OK;
}

int gw_cli_resume_batch_id_ok(const char *batch_id)
{
    size_t n = strlen(batch_id);
    if (n == 0 || n >= GW_CLI_BATCH_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = batch_id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

static gw_err parse_header(const char *line, size_t n, char *batch_id)
{
    json_t *root = json_loadb(line, n, 0, NULL);
    const char *b = json_string_value(json_object_get(root, "batch_id"));
    gw_err rc = GW_E_INVALID_REQUEST;
    if (b && gw_cli_resume_batch_id_ok(b)) {
        memcpy(batch_id, b, strlen(b) + 1);
        rc = GW_OK;
    }
    json_decref(root);
    return rc;
}

gw_err gw_cli_resume_parse_state(const char *data, size_t len, char *batch_id,
                                 gw_cli_strset *published)
{
    size_t pos = 0;
    int line_no = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (data + pos));
        if (line_no++ == 0) {
            gw_err e = parse_header(data + pos, n, batch_id);
            if (e != GW_OK)
                return e;
        } else if (published && n > 0) {
            json_t *s = json_loadb(data + pos, n, JSON_DECODE_ANY, NULL);
            if (json_is_string(s)) {
                gw_err e = gw_cli_strset_add(published, json_string_value(s), NULL);
                if (e != GW_OK && e != GW_E_INVALID_REQUEST) {
                    json_decref(s);
                    return e;
                }
            }
            json_decref(s);
        }
        pos += n + 1;
    }
    return line_no > 0 ? GW_OK : GW_E_INVALID_REQUEST;
}

static char *with_newline(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = realloc(s, n + 2);
    if (!out) {
        free(s);
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    return out;
}

char *gw_cli_resume_state_header(const char *batch_id)
{
    return with_newline(json_pack("{s:s, s:i}", "batch_id", batch_id, "version", 1));
}

char *gw_cli_resume_state_line(const char *custom_id)
{
    return with_newline(json_string(custom_id));
}
