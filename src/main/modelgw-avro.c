/* modelgw-avro: a small debugging tool around the codec.
 *
 *   modelgw-avro decode [opts]       stdin: one hex-encoded message per line
 *                                    (--raw: all of stdin is one message);
 *                                    stdout: one JSON object per message
 *   modelgw-avro encode [opts]       stdin: one JSON object per line;
 *                                    stdout: one hex line per message (--raw: binary)
 *   modelgw-avro schemas             name, version, fingerprint, canonical form
 *   modelgw-avro bench [-n N]        encode and decode ns of a typical request
 *
 * opts: --kind request|response|chunk|usage (default request)
 *       --framing auto|bare|single-object|confluent (decode default auto,
 *       encode default single-object), --version N (encode; default current),
 *       --confluent ID=KIND:VERSION (repeatable), --meta (decode: wrap each
 *       record as {"framing":..,"writer_version":..,"record":..}).
 * A message that fails to decode prints {"error":NAME,"code":E48xx} and the
 * exit status is 1. Input lines are bounded by the codec's message limit. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "codec/json.h"
#include "common/uuid.h"

typedef struct {
    const char *cmd;
    gw_record_kind kind;
    gw_framing framing;
    bool framing_set;
    int version;
    bool raw;
    bool meta;
    long iterations;
} options;

static const char *const kind_names[GW_REC__COUNT] = {"request", "response", "chunk", "usage"};
static const char *const framing_names[] = {"auto", "bare", "single-object", "confluent"};

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: modelgw-avro decode|encode|schemas|bench [--kind K] [--framing F] "
                    "[--version N] [--confluent ID=KIND:VERSION] [--raw] [--meta] [-n N]\n");
    return 2;
}

static int add_confluent(gw_codec *c, const char *spec)
{
    unsigned id;
    char kind[16];
    int version;
    if (sscanf(spec, "%u=%15[a-z]:%d", &id, kind, &version) != 3)
        return -1;
    int k = parse_name(kind, kind_names, GW_REC__COUNT);
    if (k < 0 || gw_codec_set_confluent_id(c, id, (gw_record_kind)k, version) != GW_OK)
        return -1;
    return 0;
}

static int parse_args(int argc, char **argv, options *o, gw_codec *c)
{
    if (argc < 2)
        return -1;
    *o = (options){.cmd = argv[1], .kind = GW_REC_REQUEST, .iterations = 200000};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--raw") || !strcmp(a, "--meta")) {
            *(a[2] == 'r' ? &o->raw : &o->meta) = true;
            continue;
        }
        if (v == NULL)
            return -1;
        i++;
        if (!strcmp(a, "--kind") && parse_name(v, kind_names, GW_REC__COUNT) >= 0)
            o->kind = (gw_record_kind)parse_name(v, kind_names, GW_REC__COUNT);
        else if (!strcmp(a, "--framing") && parse_name(v, framing_names, 4) >= 0)
            o->framing = (gw_framing)parse_name(v, framing_names, 4), o->framing_set = true;
        else if (!strcmp(a, "--version"))
            o->version = atoi(v);
        else if (!strcmp(a, "-n"))
            o->iterations = atol(v) > 0 ? atol(v) : 1;
        else if (!strcmp(a, "--confluent") && add_confluent(c, v) == 0)
            continue;
        else
            return -1;
    }
    return 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Hex text (whitespace at the end ignored) -> bytes; -1 when not hex. */
static long unhex(const char *s, size_t n, uint8_t *out)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n % 2 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

static int decode_one(gw_codec *c, const options *o, const uint8_t *p, size_t n)
{
    gw_any_record rec;
    gw_arena arena;
    gw_arena_init(&arena, 64u << 20);
    gw_codec_frame f;
    gw_err e = gw_codec_detect(c, o->kind, p, n, &f);
    if (e == GW_OK)
        e = gw_codec_decode(c, o->kind, p, n, &arena, &rec);
    json_t *j = e == GW_OK ? gw_record_to_json(o->kind, &rec)
                           : json_pack("{ssss}", "error", gw_err_name(e), "code", gw_err_code(e));
    if (e == GW_OK && o->meta)
        j = json_pack("{sssisO}", "framing", framing_names[f.framing], "writer_version",
                      f.writer_version, "record", j);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(j);
    gw_arena_cleanup(&arena);
    return e == GW_OK ? 0 : 1;
}

static int cmd_decode(gw_codec *c, const options *o)
{
    size_t cap = gw_codec_get_limits(c)->max_message_bytes;
    uint8_t *bin = malloc(cap + 1);
    char *line = NULL;
    size_t line_cap = 0;
    int status = 0;
    if (bin == NULL)
        return 1;
    if (o->raw) {
        size_t n = fread(bin, 1, cap + 1, stdin);
        status = decode_one(c, o, bin, n);
    } else {
        ssize_t len;
        while ((len = getline(&line, &line_cap, stdin)) > 0) {
            long n = (size_t)len / 2 <= cap ? unhex(line, (size_t)len, bin) : -1;
            if (n < 0) {
                printf("{\"error\":\"bad hex line or over the size limit\"}\n");
                status = 1;
                continue;
            }
            status |= decode_one(c, o, bin, (size_t)n);
        }
    }
    free(line);
    free(bin);
    return status;
}

static int encode_one(gw_codec *c, const options *o, const char *text, gw_buf *out)
{
    gw_any_record rec;
    json_error_t jerr;
    const char *bad = NULL;
    char id[37];
    gw_arena arena;
    gw_arena_init(&arena, 64u << 20);
    json_t *j = json_loads(text, 0, &jerr);
    gw_err e = j ? gw_record_from_json(o->kind, j, &arena, &rec, &bad) : GW_E_INVALID_REQUEST;
    if (e == GW_OK && o->kind == GW_REC_REQUEST && rec.req.request_id == NULL) {
        gw_uuid4(id);
        rec.req.request_id = id;
    }
    gw_framing f = o->framing_set ? o->framing : GW_FRAMING_SINGLE_OBJECT;
    gw_buf_reset(out);
    if (e == GW_OK)
        e = gw_codec_encode(c, o->kind, &rec, o->version, f, out);
    if (e != GW_OK)
        fprintf(stderr, "modelgw-avro: %s%s%s\n", gw_err_name(e), bad ? " at " : "",
                bad ? bad : (j ? "" : jerr.text));
    json_decref(j);
    gw_arena_cleanup(&arena);
    return e == GW_OK ? 0 : 1;
}

static int cmd_encode(gw_codec *c, const options *o)
{
    char *line = NULL;
    size_t line_cap = 0;
    int status = 0;
    gw_buf out;
    gw_buf_init(&out, gw_codec_get_limits(c)->max_message_bytes);
    while (getline(&line, &line_cap, stdin) > 0) {
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        if (encode_one(c, o, line, &out) != 0) {
            status = 1;
            continue;
        }
        if (o->raw) {
            fwrite(out.data, 1, out.len, stdout);
            continue;
        }
        for (size_t i = 0; i < out.len; i++)
            printf("%02x", out.data[i]);
        printf("\n");
    }
    free(line);
    gw_buf_cleanup(&out);
    return status;
}

static int cmd_schemas(gw_codec *c)
{
    for (int k = 0; k < GW_REC__COUNT; k++) {
        for (int v = 1; v <= gw_codec_current_version((gw_record_kind)k); v++) {
            uint64_t fp = gw_codec_fingerprint(c, (gw_record_kind)k, v);
            json_t *j = json_pack("{sssssisIss}", "kind", kind_names[k], "name",
                                  gw_codec_schema_name((gw_record_kind)k, v), "version", v,
                                  "fingerprint", (json_int_t)fp, "canonical_form",
                                  gw_codec_canonical_form(c, (gw_record_kind)k, v));
            char hex[17];
            for (int i = 0; i < 8; i++) /* little-endian bytes, as in the single-object header */
                snprintf(hex + 2 * i, 3, "%02x", (unsigned)(fp >> (8 * i)) & 0xff);
            json_object_set_new(j, "fingerprint_le_hex", json_string(hex));
            char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
            printf("%s\n", s);
            free(s);
            json_decref(j);
        }
    }
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the machine may be shared */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A typical request: three messages (~450 bytes of text), two capabilities,
 * two metadata entries, a model and a deadline. */
static int cmd_bench(gw_codec *c, const options *o)
{
    gw_message msgs[3] = {
        {.role = GW_ROLE_SYSTEM,
         .content = "You are a helpful assistant. Answer concisely and cite sources.",
         .name = NULL},
        {.role = GW_ROLE_USER,
         .content =
             "Summarise the main differences between Kafka consumer groups and share groups, "
             "and say when each is the better choice for a fleet of LLM workers.",
         .name = NULL},
        {.role = GW_ROLE_ASSISTANT,
         .content =
             "Consumer groups assign partitions exclusively; share groups let several consumers "
             "read one partition with per-record acknowledgement...",
         .name = NULL},
    };
    const char *caps[] = {"chat", "tools"};
    gw_kv kv[] = {{"team", "search"}, {"traceparent", "00-4bf92f3577b34da6-00f067aa0ba902b7-01"}};
    gw_request r;
    gw_codec_init_defaults(GW_REC_REQUEST, &r);
    r.request_id = "6f1c3a52-0d7e-4b7a-9a57-3e1f0c0d2a11";
    r.agent_did = "did:example:agent-42";
    r.messages = msgs, r.message_count = 3;
    r.capabilities = caps, r.capability_count = 2;
    r.metadata = (gw_map){kv, 2};
    r.model = "gpt-4o-mini";
    r.has_deadline = true, r.deadline_ms = 1790000000000;
    gw_buf buf;
    gw_buf_init(&buf, 1u << 20);
    double t0 = now_ns();
    for (long i = 0; i < o->iterations; i++) {
        gw_buf_reset(&buf);
        if (gw_codec_encode_request(c, &r, GW_FRAMING_SINGLE_OBJECT, &buf) != GW_OK)
            return 1;
    }
    double t1 = now_ns();
    gw_arena arena;
    gw_arena_init(&arena, 1u << 20);
    gw_request out;
    for (long i = 0; i < o->iterations; i++) {
        gw_arena_reset(&arena);
        if (gw_codec_decode_request(c, buf.data, buf.len, &arena, &out) != GW_OK)
            return 1;
    }
    double t2 = now_ns();
    printf("{\"message_bytes\":%zu,\"iterations\":%ld,\"encode_ns\":%.0f,\"decode_ns\":%.0f}\n",
           buf.len, o->iterations, (t1 - t0) / (double)o->iterations,
           (t2 - t1) / (double)o->iterations);
    gw_arena_cleanup(&arena);
    gw_buf_cleanup(&buf);
    return 0;
}

int main(int argc, char **argv)
{
    gw_codec *c = gw_codec_new(NULL);
    options o;
    int status = 2;
    if (c == NULL) {
        fprintf(stderr, "modelgw-avro: the embedded schemas did not load\n");
        return 1;
    }
    if (parse_args(argc, argv, &o, c) != 0) {
        status = usage();
    } else {
        if (!strcmp(o.cmd, "decode")) {
            gw_codec_set_decode_framing(c, o.framing_set ? o.framing : GW_FRAMING_AUTO);
            status = cmd_decode(c, &o);
        } else if (!strcmp(o.cmd, "encode")) {
            status = cmd_encode(c, &o);
        } else if (!strcmp(o.cmd, "schemas")) {
            status = cmd_schemas(c);
        } else if (!strcmp(o.cmd, "bench")) {
            status = cmd_bench(c, &o);
        } else {
            status = usage();
        }
    }
    gw_codec_free(c);
    return status;
}
