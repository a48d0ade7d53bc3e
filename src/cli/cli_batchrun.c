/*
 * cli_batchrun: `modelgw-cli batch`, the driver around cli_batch (format)
 * and cli_resume (what a restart knows).
 *
 * Order of work, chosen so that a kill at any point loses nothing:
 *   1. validate the whole input (limits, JSON, unique custom_ids) before
 *      publishing anything: a bad file is rejected with line numbers, exit 2;
 *   2. read OUTPUT (drop a partial last line) and OUTPUT.state (batch_id);
 *   3. assign the responses topic at its end, then publish every custom_id
 *      not yet in OUTPUT, at most max_pending unanswered at a time;
 *   4. append each answer to OUTPUT as it arrives (one write + flush per
 *      line), matched by its request id, which is derived from
 *      batch_id + custom_id; duplicates (redeliveries) are ignored.
 * A request that was published by an interrupted run but is not in OUTPUT is
 * published again under the same request id (answers to the earlier copy
 * arrived while nobody listened); the worker's de-duplication makes that
 * cheap, and the collector keeps the first answer per custom_id.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_batch.h"
#include "cli/cli_ctx.h"
#include "cli/cli_progress.h"
#include "cli/cli_resume.h"
#include "cli/cli_strset.h"
#include "common/uuid.h"

typedef struct {
    size_t off, len; /* the line in the input buffer */
    char request_id[37];
    const char *custom_id; /* in batch_run.arena */
    bool done, published;
} entry;

typedef struct {
    gw_cli_ctx *ctx;
    const gw_cli_batch_args *args;
    char *input;
    size_t input_len;
    entry *entries;
    size_t count;
    gw_cli_strset by_request_id; /* request_id -> entry index + 1 */
    gw_cli_strset done;          /* custom_ids in OUTPUT */
    gw_arena arena;              /* custom_id strings */
    char batch_id[GW_CLI_BATCH_ID_MAX];
    char *state_path;
    FILE *out, *state;
    size_t ndone, nerrors, pending, next, published_now;
    size_t delivery_failed;
} batch_run;

static gw_err read_file(const char *path, size_t max, char **data, size_t *len)
{
    struct stat st;
    *data = NULL;
    *len = 0;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? GW_E_INVALID_REQUEST : GW_E_IO;
    if ((unsigned long long)st.st_size > max)
        return GW_E_LIMIT;
    FILE *f = fopen(path, "rb");
    if (!f)
        return GW_E_IO;
    *data = malloc((size_t)st.st_size + 1);
    size_t n = *data ? fread(*data, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!*data)
        return GW_E_NOMEM;
    (*data)[n] = '\0';
    *len = n;
    return GW_OK;
}

/* Pass 1: every line parses, custom_ids are unique, limits hold. */
static int validate_input(batch_run *b)
{
    gw_cli_strset seen;
    gw_cli_strset_init(&seen, GW_CLI_BATCH_MAX_LINES);
    gw_cli_batch_opts o = {
        .agent_did = b->args->agent, .batch_id = "validate", .ignore_model = b->args->ignore_model};
    gw_arena a;
    gw_arena_init(&a, 64u << 20);
    size_t pos = 0, lineno = 0, bad = 0, cap = 1024;
    char err[256];
    b->entries = malloc(cap * sizeof *b->entries);
    while (b->entries && pos < b->input_len) {
        char *nl = memchr(b->input + pos, '\n', b->input_len - pos);
        size_t n = nl ? (size_t)(nl - (b->input + pos)) : b->input_len - pos;
        lineno++;
        gw_request r;
        gw_arena_reset(&a);
        bool blank = strspn(b->input + pos, " \t\r") >= n;
        gw_err e =
            blank ? GW_OK : gw_cli_batch_parse_line(b->input + pos, n, &o, &a, &r, err, sizeof err);
        if (!blank && e == GW_OK && b->count >= GW_CLI_BATCH_MAX_LINES) {
            snprintf(err, sizeof err, "more than %d requests", GW_CLI_BATCH_MAX_LINES);
            e = GW_E_LIMIT;
        }
        if (!blank && e == GW_OK && gw_cli_strset_add(&seen, r.custom_id, NULL) != GW_OK) {
            snprintf(err, sizeof err, "duplicate custom_id %.64s", r.custom_id);
            e = GW_E_INVALID_REQUEST;
        }
        if (e != GW_OK && bad++ < 20)
            fprintf(stderr, "%s:%zu: %s\n", b->args->input, lineno, err);
        if (!blank && e == GW_OK) {
            if (b->count == cap) {
                cap *= 2;
                entry *ne = realloc(b->entries, cap * sizeof *ne);
                if (!ne)
                    break;
                b->entries = ne;
            }
            entry *en = &b->entries[b->count++];
            memset(en, 0, sizeof *en);
            en->off = pos;
            en->len = n;
            en->custom_id = gw_arena_strdup(&b->arena, r.custom_id);
        }
        pos += n + 1;
    }
    gw_arena_cleanup(&a);
    gw_cli_strset_cleanup(&seen);
    if (pos < b->input_len || !b->entries) {
        fprintf(stderr, "modelgw-cli batch: out of memory reading %s\n", b->args->input);
        return GW_CLI_EXIT_KAFKA;
    }
    if (bad) {
        fprintf(stderr, "modelgw-cli batch: %zu invalid line(s) in %s; nothing published\n", bad,
                b->args->input);
        return GW_CLI_EXIT_USAGE;
    }
    return GW_CLI_EXIT_OK;
}

/* OUTPUT: what is done already; the file is truncated after its last good line. */
static int load_output(batch_run *b)
{
    char *data;
    size_t len, valid, bad, dup;
    gw_err e = read_file(b->args->output, GW_CLI_BATCH_MAX_FILE_BYTES * 2, &data, &len);
    if (e == GW_E_INVALID_REQUEST) /* no output yet */
        return GW_CLI_EXIT_OK;
    if (e != GW_OK) {
        fprintf(stderr, "modelgw-cli batch: cannot read %s: %s\n", b->args->output, gw_strerror(e));
        return GW_CLI_EXIT_KAFKA;
    }
    e = gw_cli_resume_scan_output(data, len, &b->done, &valid, &bad, &dup);
    free(data);
    if (e != GW_OK) {
        fprintf(stderr, "modelgw-cli batch: %s: %s\n", b->args->output, gw_strerror(e));
        return GW_CLI_EXIT_KAFKA;
    }
    if (bad)
        fprintf(stderr, "modelgw-cli batch: %s: unreadable line after %zu bytes; truncating\n",
                b->args->output, valid);
    if (valid < len && truncate(b->args->output, (off_t)valid) != 0) {
        fprintf(stderr, "modelgw-cli batch: cannot truncate %s\n", b->args->output);
        return GW_CLI_EXIT_KAFKA;
    }
    return GW_CLI_EXIT_OK;
}

/* OUTPUT.state: the batch_id of an earlier run, or a new one written now. */
static int load_state(batch_run *b)
{
    char *data;
    size_t len;
    gw_err e = read_file(b->state_path, GW_CLI_BATCH_MAX_FILE_BYTES, &data, &len);
    bool have = false;
    if (e == GW_OK) {
        have = gw_cli_resume_parse_state(data, len, b->batch_id, NULL) == GW_OK;
        free(data);
    }
    const char *want = b->args->batch_id;
    if (have && want && strcmp(want, b->batch_id) != 0) {
        fprintf(stderr, "modelgw-cli batch: %s belongs to batch %s, not %s\n", b->state_path,
                b->batch_id, want);
        return GW_CLI_EXIT_USAGE;
    }
    if (!have) {
        char u[37];
        gw_uuid4(u);
        if (want && !gw_cli_resume_batch_id_ok(want)) {
            fprintf(stderr, "modelgw-cli batch: --batch-id must be 1..127 of [A-Za-z0-9._:-]\n");
            return GW_CLI_EXIT_USAGE;
        }
        snprintf(b->batch_id, sizeof b->batch_id, "%s%s", want ? "" : "batch_", want ? want : u);
    }
    b->state = fopen(b->state_path, have ? "a" : "w");
    char *hdr = have ? NULL : gw_cli_resume_state_header(b->batch_id);
    if (!b->state || (!have && (!hdr || fputs(hdr, b->state) < 0 || fflush(b->state)))) {
        free(hdr);
        fprintf(stderr, "modelgw-cli batch: cannot write %s\n", b->state_path);
        return GW_CLI_EXIT_KAFKA;
    }
    free(hdr);
    return GW_CLI_EXIT_OK;
}

static void on_delivery(void *opaque, void *msg_opaque, rd_kafka_resp_err_t err)
{
    batch_run *b = opaque;
    entry *en = &b->entries[(size_t)(uintptr_t)msg_opaque - 1];
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        b->delivery_failed++;
        return;
    }
    en->published = true;
    char *line = gw_cli_resume_state_line(en->custom_id);
    if (line)
        fputs(line, b->state);
    free(line);
}

/* Publish entries from b->next on while fewer than max_pending are unanswered. */
static int publish_some(batch_run *b, rd_kafka_t *prod, const char *topic, gw_buf *buf)
{
    gw_cli_batch_opts o = {.agent_did = b->args->agent,
                           .batch_id = b->batch_id,
                           .ignore_model = b->args->ignore_model};
    char err[256];
    gw_arena a;
    gw_arena_init(&a, 64u << 20);
    int rc = GW_CLI_EXIT_OK;
    while (b->next < b->count && b->pending < (size_t)b->args->max_pending) {
        entry *en = &b->entries[b->next++];
        if (en->done)
            continue;
        gw_request r;
        gw_arena_reset(&a);
        gw_err e =
            gw_cli_batch_parse_line(b->input + en->off, en->len, &o, &a, &r, err, sizeof err);
        gw_buf_reset(buf);
        if (e == GW_OK)
            e = gw_codec_encode_request(b->ctx->codec, &r, b->ctx->framing, buf);
        if (e != GW_OK) {
            fprintf(stderr, "modelgw-cli batch: custom_id %s: cannot encode: %s\n", en->custom_id,
                    gw_strerror(e));
            rc = GW_CLI_EXIT_USAGE;
            break;
        }
        if (gw_cli_produce(prod, topic, en->request_id, buf->data, buf->len,
                           "application/vnd.modelgw.request+avro",
                           (void *)(uintptr_t)(en - b->entries + 1),
                           30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "modelgw-cli batch: cannot produce to %s\n", topic);
            rc = GW_CLI_EXIT_KAFKA;
            break;
        }
        b->pending++;
        b->published_now++;
    }
    gw_arena_cleanup(&a);
    return rc;
}

/* A response of this batch (by its key) that does not decode: said on
 * stderr, and the batch goes on (its entry stays open). */
static void undecodable(batch_run *b, const rd_kafka_message_t *m, gw_err e, const char *why)
{
    char key[128];
    if (m->key == NULL || m->key_len >= sizeof key)
        return;
    memcpy(key, m->key, m->key_len);
    key[m->key_len] = '\0';
    if (gw_cli_strset_get(&b->by_request_id, key) == NULL)
        return; /* another client's record */
    fprintf(stderr,
            "modelgw-cli batch: undecodable response at %s/%" PRId32 "/%" PRId64 ": %s %s: %s\n",
            rd_kafka_topic_name(m->rkt), m->partition, m->offset, gw_err_code(e), gw_err_name(e),
            why);
}

/* One response: write it to OUTPUT when it answers an entry still open. */
static int collect(batch_run *b, const rd_kafka_message_t *m)
{
    gw_arena a;
    gw_arena_init(&a, 16u << 20);
    gw_response r;
    int rc = GW_CLI_EXIT_OK;
    char why[320];
    gw_err e = gw_cli_outputs_decode(b->ctx->outputs, GW_REC_RESPONSE, m->payload, m->len, &a, &r,
                                     NULL, why, sizeof why);
    if (e != GW_OK)
        undecodable(b, m, e, why);
    if (e != GW_OK || !r.request_id)
        goto cleanup;
    uintptr_t idx = (uintptr_t)gw_cli_strset_get(&b->by_request_id, r.request_id);
    if (idx == 0 || b->entries[idx - 1].done)
        goto cleanup; /* not ours, or a duplicate */
    entry *en = &b->entries[idx - 1];
    char *line = gw_cli_batch_output_line(&r, en->custom_id, gw_cli_now_ms() / 1000);
    if (!line || fputs(line, b->out) < 0 || fputc('\n', b->out) < 0 || fflush(b->out) != 0) {
        fprintf(stderr, "modelgw-cli batch: cannot write %s\n", b->args->output);
        rc = GW_CLI_EXIT_KAFKA;
    }
    free(line);
    en->done = true;
    b->ndone++;
    if (r.error)
        b->nerrors++;
    if (b->pending > 0)
        b->pending--;
cleanup:
    gw_arena_cleanup(&a);
    return rc;
}

static int run_loop(batch_run *b, rd_kafka_t *prod, rd_kafka_t *cons, const char *topic)
{
    gw_buf buf;
    gw_buf_init(&buf, 0);
    gw_cli_progress prog;
    bool tty = b->args->progress < 0 ? isatty(STDERR_FILENO) : b->args->progress;
    gw_cli_progress_init(&prog, stderr, tty, b->count, gw_cli_now_ms());
    int64_t last_progress = gw_cli_now_ms();
    int rc = GW_CLI_EXIT_OK;
    while (rc == GW_CLI_EXIT_OK && b->ndone < b->count) {
        if (*b->ctx->stop) {
            rc = GW_CLI_EXIT_TIMEOUT;
            break;
        }
        rc = publish_some(b, prod, topic, &buf);
        rd_kafka_poll(prod, 0);
        fflush(b->state);
        rd_kafka_message_t *m = rc == GW_CLI_EXIT_OK ? rd_kafka_consumer_poll(cons, 50) : NULL;
        size_t before = b->ndone;
        for (int i = 0; m && i < 10000; i++) {
            if (!m->err && (rc = collect(b, m)) != GW_CLI_EXIT_OK) {
                rd_kafka_message_destroy(m);
                break;
            }
            rd_kafka_message_destroy(m);
            m = rd_kafka_consumer_poll(cons, 0);
        }
        if (m)
            rd_kafka_message_destroy(m);
        int64_t now = gw_cli_now_ms();
        if (b->ndone != before)
            last_progress = now;
        if (b->delivery_failed) {
            fprintf(stderr, "modelgw-cli batch: %zu request(s) not acknowledged by Kafka\n",
                    b->delivery_failed);
            rc = GW_CLI_EXIT_KAFKA;
        } else if (b->args->timeout_s > 0 && now - last_progress > b->args->timeout_s * 1000LL) {
            rc = GW_CLI_EXIT_TIMEOUT;
        }
        if (b->args->progress != 0)
            gw_cli_progress_update(&prog, b->ndone, b->nerrors, now, false);
    }
    if (b->args->progress != 0)
        gw_cli_progress_finish(&prog, b->ndone, b->nerrors, gw_cli_now_ms());
    gw_buf_cleanup(&buf);
    return rc;
}

/* Marks entries already in OUTPUT and indexes the rest by request id. */
static int index_entries(batch_run *b)
{
    for (size_t i = 0; i < b->count; i++) {
        entry *en = &b->entries[i];
        gw_cli_batch_request_id(b->batch_id, en->custom_id, en->request_id);
        en->done = gw_cli_strset_has(&b->done, en->custom_id);
        if (en->done)
            b->ndone++;
        else if (gw_cli_strset_add(&b->by_request_id, en->request_id, (void *)(uintptr_t)(i + 1)) !=
                 GW_OK)
            return GW_CLI_EXIT_KAFKA;
    }
    return GW_CLI_EXIT_OK;
}

static int connect_and_run(batch_run *b)
{
    gw_cli_ctx *ctx = b->ctx;
    char err[512];
    const char *topic = gw_cli_topics_tier(&ctx->topics, b->args->priority);
    const char *topics[2] = {topic, ctx->topics.responses};
    int rc = GW_CLI_EXIT_KAFKA;
    rd_kafka_t *prod = NULL;
    rd_kafka_t *cons = gw_cli_consumer_new(ctx->bootstrap, err, sizeof err);
    if (!cons ||
        gw_cli_ensure_topics(cons, topics, 2, ctx->partitions, ctx->kafka_timeout_ms, err,
                             sizeof err) != GW_OK ||
        gw_cli_assign(cons, topics + 1, 1, false, ctx->kafka_timeout_ms, err, sizeof err) !=
            GW_OK ||
        !(prod = gw_cli_producer_new(ctx->bootstrap, GW_CLI_PRODUCER_BULK, on_delivery, b, err,
                                     sizeof err))) {
        fprintf(stderr, "modelgw-cli batch: Kafka at %s (%s): %s\n", ctx->bootstrap,
                ctx->bootstrap_source, err);
        goto cleanup;
    }
    rc = run_loop(b, prod, cons, topic);
cleanup:
    if (prod && gw_cli_producer_free(prod, 30000) != 0 && rc == GW_CLI_EXIT_OK)
        rc = GW_CLI_EXIT_KAFKA;
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    return rc;
}

static int prepare(batch_run *b)
{
    gw_err e = read_file(b->args->input, GW_CLI_BATCH_MAX_FILE_BYTES, &b->input, &b->input_len);
    if (e != GW_OK) {
        fprintf(stderr, "modelgw-cli batch: %s: %s\n", b->args->input,
                e == GW_E_LIMIT ? "larger than 200 MB" : "cannot read");
        return e == GW_E_LIMIT ? GW_CLI_EXIT_USAGE : GW_CLI_EXIT_KAFKA;
    }
    int rc = validate_input(b);
    if (rc == GW_CLI_EXIT_OK)
        rc = load_output(b);
    if (rc == GW_CLI_EXIT_OK)
        rc = load_state(b);
    if (rc == GW_CLI_EXIT_OK)
        rc = index_entries(b);
    if (rc == GW_CLI_EXIT_OK && !(b->out = fopen(b->args->output, "a"))) {
        fprintf(stderr, "modelgw-cli batch: cannot write %s\n", b->args->output);
        rc = GW_CLI_EXIT_KAFKA;
    }
    return rc;
}

int gw_cli_batch_run(gw_cli_ctx *ctx, const gw_cli_batch_args *args)
{
    batch_run b = {.ctx = ctx, .args = args};
    gw_cli_strset_init(&b.by_request_id, GW_CLI_BATCH_MAX_LINES);
    gw_cli_strset_init(&b.done, 4 * GW_CLI_BATCH_MAX_LINES);
    gw_arena_init(&b.arena, 64u << 20);
    size_t n = strlen(args->output) + 7;
    b.state_path = malloc(n);
    int rc = GW_CLI_EXIT_KAFKA;
    if (b.state_path) {
        snprintf(b.state_path, n, "%s.state", args->output);
        rc = prepare(&b);
    }
    size_t already = b.ndone;
    if (rc == GW_CLI_EXIT_OK) {
        fprintf(stderr, "batch %s: %zu requests, %zu already in %s, %zu to ask\n", b.batch_id,
                b.count, already, args->output, b.count - already);
        if (b.ndone < b.count)
            rc = connect_and_run(&b);
    }
    if (b.out)
        fclose(b.out);
    if (b.state)
        fclose(b.state);
    if (rc == GW_CLI_EXIT_OK || rc == GW_CLI_EXIT_TIMEOUT)
        fprintf(stderr, "batch %s: %zu/%zu results in %s (%zu this run, %zu errors this run)\n",
                b.batch_id, b.ndone, b.count, args->output, b.ndone - already, b.nerrors);
    if (rc == GW_CLI_EXIT_OK && b.nerrors)
        rc = GW_CLI_EXIT_ANSWER_ERROR;
    free(b.input);
    free(b.entries);
    free(b.state_path);
    gw_arena_cleanup(&b.arena);
    gw_cli_strset_cleanup(&b.by_request_id);
    gw_cli_strset_cleanup(&b.done);
    return rc;
}
