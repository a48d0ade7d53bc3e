/*
 * modelgw-cli: talk to a modelgw fleet through Kafka.
 *
 *   modelgw-cli ask [flags] [PROMPT...]     one request; print or stream the answer
 *   modelgw-cli produce [flags] [FILE]      JSON lines in, Avro requests out
 *   modelgw-cli tail responses|chunks|usage|dlq [flags]
 *   modelgw-cli batch INPUT.jsonl -o OUTPUT.jsonl [flags]
 *
 * Common flags come before or after the command. Exit codes are in
 * cli/cli_ctx.h and docs/cli.md. This is a short-lived tool with one thread:
 * it uses librdkafka's blocking calls, which the worker never does.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_ctx.h"
#include "cli/cli_json.h"
#include "codec/json.h"
#include "common/log.h"
#include "common/uuid.h"

#define MAX_PROMPT_BYTES (1024 * 1024)
#define MAX_CAPS         32
#define MAX_META         32

static volatile int g_stop; /* signal flag: the one thing a handler may touch */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ---- common flags ---------------------------------------------------------------------- */

enum {
    OPT_BOOTSTRAP = 1000,
    OPT_PREFIX,
    OPT_T_HIGH,
    OPT_T_NORMAL,
    OPT_T_LOW,
    OPT_T_RESPONSES,
    OPT_T_CHUNKS,
    OPT_T_USAGE,
    OPT_T_DLQ,
    OPT_FRAMING,
    OPT_PARTITIONS,
    OPT_REGISTRY,
    OPT_REGISTRY_USER,
    OPT_CMD_BASE = 1100,
};

#define COMMON_LONGOPTS                                                                            \
    {"bootstrap", required_argument, 0, OPT_BOOTSTRAP},                                            \
        {"topic-prefix", required_argument, 0, OPT_PREFIX},                                        \
        {"topic-high", required_argument, 0, OPT_T_HIGH},                                          \
        {"topic-normal", required_argument, 0, OPT_T_NORMAL},                                      \
        {"topic-low", required_argument, 0, OPT_T_LOW},                                            \
        {"topic-responses", required_argument, 0, OPT_T_RESPONSES},                                \
        {"topic-chunks", required_argument, 0, OPT_T_CHUNKS},                                      \
        {"topic-usage", required_argument, 0, OPT_T_USAGE},                                        \
        {"topic-dlq", required_argument, 0, OPT_T_DLQ},                                            \
        {"framing", required_argument, 0, OPT_FRAMING},                                            \
        {"partitions", required_argument, 0, OPT_PARTITIONS},                                      \
        {"schema-registry", required_argument, 0, OPT_REGISTRY},                                   \
        {"schema-registry-user", required_argument, 0, OPT_REGISTRY_USER},                         \
    {                                                                                              \
        "help", no_argument, 0, 'h'                                                                \
    }

static const char COMMON_HELP[] =
    "Common flags:\n"
    "  --bootstrap HOST:PORT   Kafka (default: $MODELGW_KAFKA, else the address in\n"
    "                          ${MODELGW_RUN_DIR:-./run}/dev.bootstrap, else 127.0.0.1:19092)\n"
    "  --topic-prefix P        topic names P.requests.{high,normal,low}, P.responses,\n"
    "                          P.chunks, P.usage, P.dlq (default llm)\n"
    "  --topic-high|--topic-normal|--topic-low|--topic-responses|--topic-chunks|\n"
    "  --topic-usage|--topic-dlq NAME   override one topic\n"
    "  --framing single|bare|confluent  how requests are written (default single:\n"
    "                          Avro single-object encoding)\n"
    "  --partitions N          partitions of topics the CLI has to create (default 3)\n"
    "  --schema-registry URL   read outputs in the Confluent framing: schema ids are\n"
    "                          looked up at URL (GET URL/schemas/ids/ID)\n"
    "  --schema-registry-user USER  basic auth; the password from\n"
    "                          $MODELGW_SCHEMA_REGISTRY_PASSWORD\n"
    "Exit codes: 0 ok, 1 answered with an error, 2 usage error, 3 timeout,\n"
    "            4 Kafka or I/O failure.\n";

typedef struct {
    const char *bootstrap, *prefix;
    const char *topic[7];
    const char *registry, *registry_user;
} common_flags;

/* Returns 1 if opt was a common flag, 0 if not, -1 on a bad value. */
static int common_opt(gw_cli_ctx *ctx, common_flags *cf, int opt, const char *arg)
{
    if (opt == OPT_BOOTSTRAP)
        cf->bootstrap = arg;
    else if (opt == OPT_PREFIX)
        cf->prefix = arg;
    else if (opt >= OPT_T_HIGH && opt <= OPT_T_DLQ)
        cf->topic[opt - OPT_T_HIGH] = arg;
    else if (opt == OPT_REGISTRY)
        cf->registry = arg;
    else if (opt == OPT_REGISTRY_USER)
        cf->registry_user = arg;
    else if (opt == OPT_PARTITIONS) {
        ctx->partitions = atoi(arg);
        if (ctx->partitions < 1 || ctx->partitions > 1000)
            return -1;
    } else if (opt == OPT_FRAMING) {
        if (strcmp(arg, "single") == 0)
            ctx->framing = GW_FRAMING_SINGLE_OBJECT;
        else if (strcmp(arg, "bare") == 0)
            ctx->framing = GW_FRAMING_BARE;
        else if (strcmp(arg, "confluent") == 0)
            ctx->framing = GW_FRAMING_CONFLUENT;
        else
            return -1;
    } else
        return 0;
    return 1;
}

static int common_finish(gw_cli_ctx *ctx, const common_flags *cf)
{
    if (gw_cli_topics_from_prefix(&ctx->topics, cf->prefix) != GW_OK) {
        fprintf(stderr, "modelgw-cli: --topic-prefix is too long\n");
        return GW_CLI_EXIT_USAGE;
    }
    char *dst[7] = {ctx->topics.high,   ctx->topics.normal, ctx->topics.low, ctx->topics.responses,
                    ctx->topics.chunks, ctx->topics.usage,  ctx->topics.dlq};
    for (int i = 0; i < 7; i++) {
        if (!cf->topic[i])
            continue;
        if (strlen(cf->topic[i]) >= GW_CLI_TOPIC_MAX) {
            fprintf(stderr, "modelgw-cli: topic name too long\n");
            return GW_CLI_EXIT_USAGE;
        }
        snprintf(dst[i], GW_CLI_TOPIC_MAX, "%s", cf->topic[i]);
    }
    gw_cli_bootstrap(cf->bootstrap, ctx->bootstrap, sizeof ctx->bootstrap, &ctx->bootstrap_source);
    gw_cli_registry_opts reg = {.url = cf->registry,
                                .username = cf->registry_user,
                                .password = getenv("MODELGW_SCHEMA_REGISTRY_PASSWORD")};
    if (gw_cli_outputs_new(ctx->codec, &reg, &ctx->outputs) != GW_OK) {
        fprintf(stderr, "modelgw-cli: out of memory\n");
        return GW_CLI_EXIT_KAFKA;
    }
    return GW_CLI_EXIT_OK;
}

/* A record of ours that does not decode: said on stderr, and the CLI goes on. */
static void report_undecodable(const char *cmd, const rd_kafka_message_t *m, gw_err e,
                               const char *why)
{
    fprintf(stderr, "modelgw-cli %s: undecodable record at %s/%" PRId32 "/%" PRId64 ": %s %s: %s\n",
            cmd, rd_kafka_topic_name(m->rkt), m->partition, m->offset, gw_err_code(e),
            gw_err_name(e), why);
}

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "modelgw-cli %s: %s (see modelgw-cli %s --help)\n", cmd, msg, cmd);
    return GW_CLI_EXIT_USAGE;
}

/* ---- ask ------------------------------------------------------------------------------- */

static const char ASK_HELP[] =
    "Usage: modelgw-cli ask [flags] [PROMPT...]\n"
    "Publish one InferenceRequest and print its answer. The prompt is the\n"
    "arguments joined by spaces, or stdin when there are none.\n"
    "  --agent DID            agent_did (default did:agent:cli)\n"
    "  --system TEXT          system prompt\n"
    "  --temperature T        0..2 (default 0.7)\n"
    "  --max-tokens N         (default 1024)\n"
    "  --cap NAME             required capability; repeat for more\n"
    "  --strategy S           FASTEST|CHEAPEST|BEST_QUALITY|BALANCED|CAPABILITY_MATCH\n"
    "  --model ID             preferred model\n"
    "  --stream               print chunks as they arrive\n"
    "  --no-cache             enable_cache=false\n"
    "  --priority high|normal|low   tier topic (default normal)\n"
    "  --deadline-ms MS       deadline this many ms from now\n"
    "  --meta KEY=VALUE       metadata entry; repeat for more\n"
    "  --reply-topic T        ask the worker to answer on T (consumed instead of responses)\n"
    "  --timeout S            seconds to wait for the answer (default 60)\n"
    "  --json                 print the response as one JSON object\n"
    "  -v, --verbose          print model, provider, cached, latency, tokens on stderr\n";

typedef struct {
    gw_request req;
    const char *priority;
    const char *caps[MAX_CAPS];
    gw_kv meta[MAX_META];
    int timeout_s;
    bool json, verbose;
} ask_args;

enum {
    A_AGENT = OPT_CMD_BASE,
    A_SYSTEM,
    A_TEMP,
    A_MAXTOK,
    A_CAP,
    A_STRATEGY,
    A_MODEL,
    A_STREAM,
    A_NOCACHE,
    A_PRIORITY,
    A_DEADLINE,
    A_META,
    A_REPLY,
    A_TIMEOUT,
    A_JSON,
};

static int ask_opt(ask_args *a, int opt, char *arg, gw_arena *ar)
{
    char *end;
    switch (opt) {
    case A_AGENT:
        a->req.agent_did = arg;
        break;
    case A_SYSTEM:
        a->req.system_prompt = arg;
        break;
    case A_TEMP:
        a->req.temperature = strtod(arg, &end);
        return *end ? -1 : 0;
    case A_MAXTOK:
        a->req.max_tokens = (int32_t)strtol(arg, &end, 10);
        return *end ? -1 : 0;
    case A_CAP:
        if (a->req.capability_count >= MAX_CAPS)
            return -1;
        a->caps[a->req.capability_count++] = arg;
        break;
    case A_STRATEGY: {
        int s = gw_strategy_parse(arg);
        if (s < 0)
            return -1;
        a->req.routing_strategy = (gw_strategy)s;
        break;
    }
    case A_MODEL:
        a->req.model = arg;
        break;
    case A_STREAM:
        a->req.stream = true;
        break;
    case A_NOCACHE:
        a->req.enable_cache = false;
        break;
    case A_PRIORITY:
        a->priority = arg;
        break;
    case A_DEADLINE:
        a->req.has_deadline = true;
        a->req.deadline_ms = gw_cli_now_ms() + strtoll(arg, &end, 10);
        return *end ? -1 : 0;
    case A_META: {
        char *eq = strchr(arg, '=');
        if (!eq || a->req.metadata.count >= MAX_META)
            return -1;
        gw_kv *kv = &a->meta[a->req.metadata.count++];
        kv->key = gw_arena_strndup(ar, arg, (size_t)(eq - arg));
        kv->value = eq + 1;
        break;
    }
    case A_REPLY:
        a->req.reply_topic = arg;
        break;
    case A_TIMEOUT:
        a->timeout_s = atoi(arg);
        return a->timeout_s > 0 ? 0 : -1;
    case A_JSON:
        a->json = true;
        break;
    case 'v':
        a->verbose = true;
        break;
    default:
        return -1;
    }
    return 0;
}

/* The prompt: args joined by spaces, or stdin (bounded). NULL on error. */
static char *read_prompt(int argc, char **argv, int first, gw_arena *ar)
{
    if (first < argc) {
        size_t n = 0;
        for (int i = first; i < argc; i++)
            n += strlen(argv[i]) + 1;
        if (n > MAX_PROMPT_BYTES)
            return NULL;
        char *s = gw_arena_alloc(ar, n + 1);
        if (!s)
            return NULL;
        s[0] = '\0';
        for (int i = first; i < argc; i++) {
            strcat(s, argv[i]);
            if (i + 1 < argc)
                strcat(s, " ");
        }
        return s;
    }
    char *s = gw_arena_alloc(ar, MAX_PROMPT_BYTES + 1);
    if (!s)
        return NULL;
    size_t n = fread(s, 1, MAX_PROMPT_BYTES + 1, stdin);
    if (n > MAX_PROMPT_BYTES)
        return NULL;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    s[n] = '\0';
    return n ? s : NULL;
}

typedef struct {
    int next_seq;
    bool final_seen;
    bool got_response;
    bool stream_error;
    gw_arena arena; /* holds the decoded response */
    gw_response resp;
} ask_state;

static void ask_on_chunk(const gw_cli_ctx *ctx, ask_state *st, const rd_kafka_message_t *m)
{
    gw_arena a;
    gw_arena_init(&a, 8 << 20);
    gw_chunk c;
    char why[320];
    gw_err e = gw_cli_outputs_decode(ctx->outputs, GW_REC_CHUNK, m->payload, m->len, &a, &c, NULL,
                                     why, sizeof why);
    if (e != GW_OK)
        report_undecodable("ask", m, e, why);
    if (e == GW_OK && c.seq == st->next_seq) {
        /* Chunks of one request share a partition, so they arrive in order;
         * a redelivered (lower) seq is skipped. */
        if (c.content)
            fputs(c.content, stdout);
        fflush(stdout);
        st->next_seq++;
        if (c.error)
            st->stream_error = true;
        if (c.is_final)
            st->final_seen = true;
    }
    gw_arena_cleanup(&a);
}

static void ask_on_response(const gw_cli_ctx *ctx, ask_state *st, const rd_kafka_message_t *m)
{
    char why[320];
    gw_err e = gw_cli_outputs_decode(ctx->outputs, GW_REC_RESPONSE, m->payload, m->len, &st->arena,
                                     &st->resp, NULL, why, sizeof why);
    st->got_response = e == GW_OK;
    if (e != GW_OK)
        report_undecodable("ask", m, e, why);
}

static int ask_wait(gw_cli_ctx *ctx, rd_kafka_t *cons, const ask_args *a, ask_state *st)
{
    const char *id = a->req.request_id;
    const char *resp_topic = a->req.reply_topic ? a->req.reply_topic : ctx->topics.responses;
    int64_t until = gw_cli_now_ms() + (int64_t)a->timeout_s * 1000;
    while (!g_stop && gw_cli_now_ms() < until) {
        if (st->got_response && (!a->req.stream || st->final_seen || st->resp.error))
            return GW_CLI_EXIT_OK;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (!m)
            continue;
        char hid[64];
        bool mine =
            !m->err && ((gw_cli_header(m, "request_id", hid, sizeof hid) && strcmp(hid, id) == 0) ||
                        (m->key_len == strlen(id) && !memcmp(m->key, id, m->key_len)));
        const char *topic = m->err ? "" : rd_kafka_topic_name(m->rkt);
        if (mine && strcmp(topic, ctx->topics.chunks) == 0 && a->req.stream)
            ask_on_chunk(ctx, st, m);
        else if (mine && strcmp(topic, resp_topic) == 0 && !st->got_response)
            ask_on_response(ctx, st, m);
        rd_kafka_message_destroy(m);
    }
    return GW_CLI_EXIT_TIMEOUT;
}

static int ask_print(const ask_args *a, ask_state *st)
{
    const gw_response *r = &st->resp;
    if (a->json) {
        json_t *j = gw_response_to_json(r);
        char *s = json_dumps(j, JSON_COMPACT);
        if (a->req.stream && st->next_seq > 0)
            fputc('\n', stdout);
        puts(s);
        free(s);
        json_decref(j);
    } else if (a->req.stream) {
        if (st->next_seq > 0)
            fputc('\n', stdout);
        else if (r->content && !r->error)
            puts(r->content); /* answered without chunks */
    } else if (!r->error) {
        puts(r->content ? r->content : "");
    }
    fflush(stdout);
    if (a->verbose)
        fprintf(stderr, "[model=%s provider=%s cached=%s latency_ms=%.1f tokens=%d+%d finish=%s]\n",
                r->model_id ? r->model_id : "-", r->provider ? r->provider : "-",
                r->cached ? "true" : "false", r->latency_ms, r->token_usage.prompt_tokens,
                r->token_usage.completion_tokens, r->finish_reason ? r->finish_reason : "-");
    if (r->error) {
        fprintf(stderr, "error %s: %s\n", r->error->code ? r->error->code : "?",
                r->error->message ? r->error->message : "");
        return GW_CLI_EXIT_ANSWER_ERROR;
    }
    return st->stream_error ? GW_CLI_EXIT_ANSWER_ERROR : GW_CLI_EXIT_OK;
}

static int ask_publish(gw_cli_ctx *ctx, const ask_args *a, const char *topic)
{
    char err[512];
    gw_buf buf;
    gw_buf_init(&buf, 0);
    gw_err e = gw_codec_encode_request(ctx->codec, &a->req, ctx->framing, &buf);
    if (e != GW_OK) {
        gw_buf_cleanup(&buf);
        fprintf(stderr, "modelgw-cli ask: cannot encode the request: %s\n", gw_strerror(e));
        return GW_CLI_EXIT_USAGE;
    }
    rd_kafka_t *prod = gw_cli_producer_new(ctx->bootstrap, GW_CLI_PRODUCER_INTERACTIVE, NULL, NULL,
                                           err, sizeof err);
    int rc = GW_CLI_EXIT_KAFKA;
    if (!prod) {
        fprintf(stderr, "modelgw-cli ask: producer: %s\n", err);
    } else if (gw_cli_produce(prod, topic, a->req.request_id, buf.data, buf.len,
                              "application/vnd.modelgw.request+avro", NULL,
                              5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "modelgw-cli ask: cannot produce to %s\n", topic);
        gw_cli_producer_free(prod, 0);
    } else if (gw_cli_producer_free(prod, ctx->kafka_timeout_ms) != 0) {
        fprintf(stderr, "modelgw-cli ask: request not acknowledged by Kafka at %s\n",
                ctx->bootstrap);
    } else {
        rc = GW_CLI_EXIT_OK;
    }
    gw_buf_cleanup(&buf);
    return rc;
}

static int ask_run(gw_cli_ctx *ctx, ask_args *a, const char *topic)
{
    char err[512];
    ask_state st = {0};
    gw_arena_init(&st.arena, 16 << 20);
    const char *resp_topic = a->req.reply_topic ? a->req.reply_topic : ctx->topics.responses;
    const char *topics[3] = {topic, resp_topic, ctx->topics.chunks};
    int rc = GW_CLI_EXIT_KAFKA;
    rd_kafka_t *cons = gw_cli_consumer_new(ctx->bootstrap, err, sizeof err);
    if (!cons ||
        gw_cli_ensure_topics(cons, topics, 3, ctx->partitions, ctx->kafka_timeout_ms, err,
                             sizeof err) != GW_OK ||
        gw_cli_assign(cons, topics + 1, a->req.stream ? 2 : 1, false, ctx->kafka_timeout_ms, err,
                      sizeof err) != GW_OK) {
        fprintf(stderr, "modelgw-cli ask: Kafka at %s (%s): %s\n", ctx->bootstrap,
                ctx->bootstrap_source, err);
        goto cleanup;
    }
    rc = ask_publish(ctx, a, topic);
    if (rc != GW_CLI_EXIT_OK)
        goto cleanup;
    rc = ask_wait(ctx, cons, a, &st);
    if (rc == GW_CLI_EXIT_TIMEOUT)
        fprintf(stderr, "modelgw-cli ask: no %s for request %s within %d s\n",
                st.got_response ? "final chunk" : "response", a->req.request_id, a->timeout_s);
    else
        rc = ask_print(a, &st);
cleanup:
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    gw_arena_cleanup(&st.arena);
    return rc;
}

static int cmd_ask(gw_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_LONGOPTS,
        {"agent", required_argument, 0, A_AGENT},
        {"system", required_argument, 0, A_SYSTEM},
        {"temperature", required_argument, 0, A_TEMP},
        {"max-tokens", required_argument, 0, A_MAXTOK},
        {"cap", required_argument, 0, A_CAP},
        {"strategy", required_argument, 0, A_STRATEGY},
        {"model", required_argument, 0, A_MODEL},
        {"stream", no_argument, 0, A_STREAM},
        {"no-cache", no_argument, 0, A_NOCACHE},
        {"priority", required_argument, 0, A_PRIORITY},
        {"deadline-ms", required_argument, 0, A_DEADLINE},
        {"meta", required_argument, 0, A_META},
        {"reply-topic", required_argument, 0, A_REPLY},
        {"timeout", required_argument, 0, A_TIMEOUT},
        {"json", no_argument, 0, A_JSON},
        {"verbose", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    gw_arena ar;
    gw_arena_init(&ar, 4 * MAX_PROMPT_BYTES);
    ask_args a = {.priority = "normal", .timeout_s = 60};
    gw_codec_init_defaults(GW_REC_REQUEST, &a.req);
    a.req.agent_did = "did:agent:cli";
    a.req.capabilities = a.caps;
    a.req.metadata.items = a.meta;
    common_flags cf = {0};
    int opt, rc;
    while ((opt = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        if (opt == 'h') {
            printf("%s\n%s", ASK_HELP, COMMON_HELP);
            gw_arena_cleanup(&ar);
            return GW_CLI_EXIT_OK;
        }
        int c = common_opt(ctx, &cf, opt, optarg);
        if (c < 0 || (c == 0 && ask_opt(&a, opt, optarg, &ar) != 0)) {
            gw_arena_cleanup(&ar);
            return usage_error("ask", "invalid flag or value");
        }
    }
    const char *topic = NULL;
    rc = common_finish(ctx, &cf);
    if (rc == GW_CLI_EXIT_OK && !(topic = gw_cli_topics_tier(&ctx->topics, a.priority)))
        rc = usage_error("ask", "--priority must be high, normal or low");
    gw_message msg = {.role = GW_ROLE_USER};
    if (rc == GW_CLI_EXIT_OK && !(msg.content = read_prompt(argc, argv, optind, &ar)))
        rc = usage_error("ask", "no prompt (or larger than 1 MiB)");
    if (rc == GW_CLI_EXIT_OK) {
        char id[37];
        gw_uuid4(id);
        a.req.request_id = id;
        a.req.messages = &msg;
        a.req.message_count = 1;
        rc = ask_run(ctx, &a, topic);
    }
    gw_arena_cleanup(&ar);
    return rc;
}

/* ---- produce --------------------------------------------------------------------------- */

static const char PRODUCE_HELP[] =
    "Usage: modelgw-cli produce [flags] [FILE]\n"
    "Read InferenceRequests as JSON lines (FILE or stdin) and publish them as Avro\n"
    "to their tier topic. Each line uses the schema's field names, e.g.\n"
    "  {\"agent_did\":\"did:agent:a\",\"messages\":[{\"role\":\"USER\",\"content\":\"Hi\"}],\n"
    "   \"max_tokens\":100,\"priority\":\"high\"}\n"
    "(\"prompt\":\"Hi\" is a shorthand for one user message). request_id is generated\n"
    "when absent, agent_did defaults to --agent. Invalid lines are reported with\n"
    "their line number and skipped; the valid ones are still published, and the\n"
    "exit code is then 2.\n"
    "  --priority high|normal|low   tier for lines without \"priority\" (default normal)\n"
    "  --agent DID            default agent_did (default did:agent:cli)\n"
    "  --max-line-bytes N     longest accepted line (default 1048576)\n"
    "  --quiet                no summary line\n";

typedef struct {
    size_t acked, failed;
} delivery_counts;

static void count_delivery(void *opaque, void *msg_opaque, rd_kafka_resp_err_t err)
{
    delivery_counts *d = opaque;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        d->acked++;
    else
        d->failed++;
}

/* One line into buf (NUL-terminated, newline stripped). Returns false at EOF.
 * A line longer than cap-1 is consumed to its end and flagged too_long. */
static bool read_line(FILE *f, char *buf, size_t cap, size_t *len, bool *too_long)
{
    *len = 0;
    *too_long = false;
    int c;
    bool any = false;
    while ((c = getc(f)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (*len + 1 < cap)
            buf[(*len)++] = (char)c;
        else
            *too_long = true;
    }
    buf[*len] = '\0';
    return any;
}

typedef struct {
    const char *priority, *agent;
    size_t max_line;
    bool quiet;
} produce_args;

static gw_err produce_line(gw_cli_ctx *ctx, rd_kafka_t *prod, const produce_args *pa,
                           const char *line, size_t len, gw_buf *buf, char *err, size_t errlen)
{
    gw_arena ar;
    gw_arena_init(&ar, 8 * pa->max_line + 65536);
    gw_request req;
    char prio[16] = "";
    char id[37];
    gw_codec_init_defaults(GW_REC_REQUEST, &req);
    gw_err e = gw_cli_json_request(line, len, &ar, &req, prio, sizeof prio, err, errlen);
    if (e == GW_OK) {
        if (!req.request_id || !*req.request_id) {
            gw_uuid4(id);
            req.request_id = id;
        }
        if (!req.agent_did || !*req.agent_did)
            req.agent_did = pa->agent;
        gw_buf_reset(buf);
        e = gw_codec_encode_request(ctx->codec, &req, ctx->framing, buf);
        if (e != GW_OK)
            snprintf(err, errlen, "cannot encode: %s", gw_strerror(e));
    }
    if (e == GW_OK) {
        const char *topic = gw_cli_topics_tier(&ctx->topics, prio[0] ? prio : pa->priority);
        if (gw_cli_produce(prod, topic, req.request_id, buf->data, buf->len,
                           "application/vnd.modelgw.request+avro", NULL,
                           30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "cannot produce to %s", topic);
            e = GW_E_IO;
        }
    }
    gw_arena_cleanup(&ar);
    return e;
}

static int produce_run(gw_cli_ctx *ctx, const produce_args *pa, FILE *in)
{
    char err[512];
    delivery_counts dc = {0};
    rd_kafka_t *prod = gw_cli_producer_new(ctx->bootstrap, GW_CLI_PRODUCER_BULK, count_delivery,
                                           &dc, err, sizeof err);
    if (!prod) {
        fprintf(stderr, "modelgw-cli produce: %s\n", err);
        return GW_CLI_EXIT_KAFKA;
    }
    char *line = malloc(pa->max_line + 1);
    gw_buf buf;
    gw_buf_init(&buf, 0);
    size_t len, lineno = 0, sent = 0, invalid = 0;
    bool too_long, io_failed = false;
    while (line && !g_stop && read_line(in, line, pa->max_line + 1, &len, &too_long)) {
        lineno++;
        if (len == 0 && !too_long)
            continue;
        gw_err e =
            too_long ? GW_E_LIMIT : produce_line(ctx, prod, pa, line, len, &buf, err, sizeof err);
        if (too_long)
            snprintf(err, sizeof err, "longer than %zu bytes", pa->max_line);
        if (e == GW_OK) {
            sent++;
        } else if (e == GW_E_IO) {
            fprintf(stderr, "line %zu: %s\n", lineno, err);
            io_failed = true;
            break;
        } else {
            fprintf(stderr, "line %zu: %s\n", lineno, err);
            invalid++;
        }
        rd_kafka_poll(prod, 0);
    }
    int left = gw_cli_producer_free(prod, 60000);
    if (!pa->quiet)
        fprintf(stderr, "published %zu, acknowledged %zu, failed %zu, invalid lines %zu\n", sent,
                dc.acked, dc.failed + (size_t)left, invalid);
    free(line);
    gw_buf_cleanup(&buf);
    if (!line || io_failed || dc.failed || left)
        return GW_CLI_EXIT_KAFKA;
    return invalid ? GW_CLI_EXIT_USAGE : GW_CLI_EXIT_OK;
}

static int cmd_produce(gw_cli_ctx *ctx, int argc, char **argv)
{
    enum { P_PRIO = OPT_CMD_BASE, P_AGENT, P_MAXLINE, P_QUIET };
    static const struct option opts[] = {
        COMMON_LONGOPTS,
        {"priority", required_argument, 0, P_PRIO},
        {"agent", required_argument, 0, P_AGENT},
        {"max-line-bytes", required_argument, 0, P_MAXLINE},
        {"quiet", no_argument, 0, P_QUIET},
        {0, 0, 0, 0},
    };
    produce_args pa = {.priority = "normal", .agent = "did:agent:cli", .max_line = 1 << 20};
    common_flags cf = {0};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'h') {
            printf("%s\n%s", PRODUCE_HELP, COMMON_HELP);
            return GW_CLI_EXIT_OK;
        }
        int c = common_opt(ctx, &cf, opt, optarg);
        if (c < 0)
            return usage_error("produce", "invalid flag value");
        if (c == 1)
            continue;
        if (opt == P_PRIO)
            pa.priority = optarg;
        else if (opt == P_AGENT)
            pa.agent = optarg;
        else if (opt == P_MAXLINE)
            pa.max_line = (size_t)atol(optarg);
        else if (opt == P_QUIET)
            pa.quiet = true;
        else
            return usage_error("produce", "unknown flag");
    }
    int rc = common_finish(ctx, &cf);
    if (rc != GW_CLI_EXIT_OK)
        return rc;
    if (!gw_cli_topics_tier(&ctx->topics, pa.priority))
        return usage_error("produce", "--priority must be high, normal or low");
    if (pa.max_line < 16 || pa.max_line > (64u << 20))
        return usage_error("produce", "--max-line-bytes must be 16..67108864");
    if (argc - optind > 1)
        return usage_error("produce", "at most one input file");
    FILE *in = optind < argc && strcmp(argv[optind], "-") ? fopen(argv[optind], "r") : stdin;
    if (!in) {
        fprintf(stderr, "modelgw-cli produce: cannot open %s\n", argv[optind]);
        return GW_CLI_EXIT_KAFKA;
    }
    rc = produce_run(ctx, &pa, in);
    if (in != stdin)
        fclose(in);
    return rc;
}

/* ---- tail ------------------------------------------------------------------------------ */

static const char TAIL_HELP[] =
    "Usage: modelgw-cli tail responses|chunks|usage|dlq [flags]\n"
    "Print the records of an output topic as JSON lines, from now on.\n"
    "  --from-beginning       start at the oldest retained record\n"
    "  --count N              stop after N records (exit 0)\n"
    "  --timeout S            stop after S seconds; exit 3 when --count was not reached\n"
    "  --request-id ID        only records of this request\n"
    "DLQ records print as {topic, partition, offset, headers, value_base64}.\n";

typedef enum { K_RESPONSES, K_CHUNKS, K_USAGE, K_DLQ } tail_kind;

static char *base64(const void *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v =
            (unsigned)s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *o++ = tbl[v >> 18 & 63];
        *o++ = tbl[v >> 12 & 63];
        *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static json_t *dlq_json(const rd_kafka_message_t *m)
{
    json_t *h = json_object();
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *v;
        size_t len;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &v, &len); i++)
            json_object_set_new(h, name, v ? json_stringn_nocheck(v, len) : json_null());
    }
    char *b = base64(m->payload, m->len);
    json_t *o = json_pack("{s:s, s:i, s:I, s:o, s:s}", "topic", rd_kafka_topic_name(m->rkt),
                          "partition", m->partition, "offset", (json_int_t)m->offset, "headers", h,
                          "value_base64", b ? b : "");
    free(b);
    return o;
}

static json_t *tail_decode(gw_cli_ctx *ctx, tail_kind k, const rd_kafka_message_t *m)
{
    static const gw_record_kind kinds[] = {
        [K_RESPONSES] = GW_REC_RESPONSE, [K_CHUNKS] = GW_REC_CHUNK, [K_USAGE] = GW_REC_USAGE};
    if (k == K_DLQ)
        return dlq_json(m);
    gw_arena a;
    gw_arena_init(&a, 16 << 20);
    gw_any_record rec;
    json_t *j = NULL;
    uint32_t schema_id = 0;
    char why[320];
    gw_err e = gw_cli_outputs_decode(ctx->outputs, kinds[k], m->payload, m->len, &a, &rec,
                                     &schema_id, why, sizeof why);
    if (e == GW_OK) {
        j = gw_record_to_json(kinds[k], &rec);
    } else {
        j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I}", "undecodable", gw_err_code(e), "error",
                      gw_err_name(e), "why", why, "topic", rd_kafka_topic_name(m->rkt), "partition",
                      m->partition, "offset", (json_int_t)m->offset);
        if (j != NULL && schema_id != 0)
            json_object_set_new(j, "schema_id", json_integer(schema_id));
    }
    gw_arena_cleanup(&a);
    return j;
}

static int tail_loop(gw_cli_ctx *ctx, rd_kafka_t *cons, tail_kind k, long count, int timeout_s,
                     const char *only_id)
{
    long seen = 0;
    int64_t until = timeout_s > 0 ? gw_cli_now_ms() + (int64_t)timeout_s * 1000 : INT64_MAX;
    while (!g_stop && (count <= 0 || seen < count) && gw_cli_now_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (!m)
            continue;
        char hid[64];
        bool skip = m->err != RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!skip && only_id)
            skip = !(gw_cli_header(m, "request_id", hid, sizeof hid) && !strcmp(hid, only_id)) &&
                   !(m->key_len == strlen(only_id) && !memcmp(m->key, only_id, m->key_len));
        if (!skip) {
            json_t *j = tail_decode(ctx, k, m);
            char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (s)
                puts(s);
            fflush(stdout);
            free(s);
            json_decref(j);
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    return count > 0 && seen < count && !g_stop ? GW_CLI_EXIT_TIMEOUT : GW_CLI_EXIT_OK;
}

static int cmd_tail(gw_cli_ctx *ctx, int argc, char **argv)
{
    enum { T_BEGIN = OPT_CMD_BASE, T_COUNT, T_TIMEOUT, T_ID };
    static const struct option opts[] = {
        COMMON_LONGOPTS,
        {"from-beginning", no_argument, 0, T_BEGIN},
        {"count", required_argument, 0, T_COUNT},
        {"timeout", required_argument, 0, T_TIMEOUT},
        {"request-id", required_argument, 0, T_ID},
        {0, 0, 0, 0},
    };
    common_flags cf = {0};
    bool begin = false;
    long count = 0;
    int timeout_s = 0, opt;
    const char *only_id = NULL;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'h') {
            printf("%s\n%s", TAIL_HELP, COMMON_HELP);
            return GW_CLI_EXIT_OK;
        }
        int c = common_opt(ctx, &cf, opt, optarg);
        if (c < 0)
            return usage_error("tail", "invalid flag value");
        if (c == 1)
            continue;
        if (opt == T_BEGIN)
            begin = true;
        else if (opt == T_COUNT && (count = atol(optarg)) > 0)
            continue;
        else if (opt == T_TIMEOUT && (timeout_s = atoi(optarg)) > 0)
            continue;
        else if (opt == T_ID)
            only_id = optarg;
        else
            return usage_error("tail", "invalid flag or value");
    }
    int rc = common_finish(ctx, &cf);
    if (rc != GW_CLI_EXIT_OK)
        return rc;
    if (argc - optind != 1)
        return usage_error("tail", "name one of responses, chunks, usage, dlq");
    static const char *const kinds[] = {"responses", "chunks", "usage", "dlq"};
    const char *topics[] = {ctx->topics.responses, ctx->topics.chunks, ctx->topics.usage,
                            ctx->topics.dlq};
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[optind], kinds[i]) == 0)
            k = i;
    if (k < 0)
        return usage_error("tail", "name one of responses, chunks, usage, dlq");
    char err[512];
    rd_kafka_t *cons = gw_cli_consumer_new(ctx->bootstrap, err, sizeof err);
    if (!cons ||
        gw_cli_ensure_topics(cons, &topics[k], 1, ctx->partitions, ctx->kafka_timeout_ms, err,
                             sizeof err) != GW_OK ||
        gw_cli_assign(cons, &topics[k], 1, begin, ctx->kafka_timeout_ms, err, sizeof err) !=
            GW_OK) {
        fprintf(stderr, "modelgw-cli tail: Kafka at %s (%s): %s\n", ctx->bootstrap,
                ctx->bootstrap_source, err);
        rc = GW_CLI_EXIT_KAFKA;
    } else {
        rc = tail_loop(ctx, cons, (tail_kind)k, count, timeout_s, only_id);
    }
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    return rc;
}

/* ---- batch ----------------------------------------------------------------------------- */

static const char BATCH_HELP[] =
    "Usage: modelgw-cli batch INPUT.jsonl -o OUTPUT.jsonl [flags]\n"
    "Run an OpenAI Batch-API style file through the fleet. Each input line is\n"
    "  {\"custom_id\":\"...\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\n"
    "   \"body\":{\"model\":...,\"messages\":[...],\"max_tokens\":...,\"temperature\":...}}\n"
    "Every request gets one batch_id and a request id derived from batch_id and\n"
    "custom_id; each result is written to OUTPUT as\n"
    "  {\"id\",\"custom_id\",\"response\":{\"status_code\",\"request_id\",\"body\"},\"error\"}\n"
    "with a chat.completion body (or {\"error\":{...}} for a gateway error).\n"
    "Resumable: run the same command again and custom_ids already in OUTPUT are\n"
    "kept and not asked again (OUTPUT.state holds the batch_id).\n"
    "Limits: 50,000 lines, 200 MB per file, 1 MiB per line (as OpenAI's).\n"
    "  -o, --output FILE      results (required)\n"
    "  --batch-id ID          batch id (default: from OUTPUT.state, else generated)\n"
    "  --agent DID            agent_did of every request (default did:agent:batch)\n"
    "  --priority high|normal|low   tier (default low)\n"
    "  --ignore-model         drop body.model; let the router choose\n"
    "  --max-pending N        requests published but unanswered at once (default 5000)\n"
    "  --timeout S            give up after S seconds without a new result (default 0:\n"
    "                         wait forever); exit 3\n"
    "  --progress|--no-progress   progress bar (default: when stderr is a terminal;\n"
    "                         otherwise a plain line every 5 s)\n"
    "Exit: 0 all answered successfully, 1 all answered but some with errors,\n"
    "      2 usage or invalid input, 3 timeout, 4 Kafka or I/O failure.\n";

static int cmd_batch(gw_cli_ctx *ctx, int argc, char **argv)
{
    enum { B_ID = OPT_CMD_BASE, B_AGENT, B_PRIO, B_IGNORE, B_PENDING, B_TIMEOUT, B_PROG, B_NOPROG };
    static const struct option opts[] = {
        COMMON_LONGOPTS,
        {"output", required_argument, 0, 'o'},
        {"batch-id", required_argument, 0, B_ID},
        {"agent", required_argument, 0, B_AGENT},
        {"priority", required_argument, 0, B_PRIO},
        {"ignore-model", no_argument, 0, B_IGNORE},
        {"max-pending", required_argument, 0, B_PENDING},
        {"timeout", required_argument, 0, B_TIMEOUT},
        {"progress", no_argument, 0, B_PROG},
        {"no-progress", no_argument, 0, B_NOPROG},
        {0, 0, 0, 0},
    };
    gw_cli_batch_args b = {
        .agent = "did:agent:batch", .priority = "low", .max_pending = 5000, .progress = -1};
    common_flags cf = {0};
    int opt;
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (opt == 'h') {
            printf("%s\n%s", BATCH_HELP, COMMON_HELP);
            return GW_CLI_EXIT_OK;
        }
        int c = common_opt(ctx, &cf, opt, optarg);
        if (c < 0)
            return usage_error("batch", "invalid flag value");
        if (c == 1)
            continue;
        switch (opt) {
        case 'o':
            b.output = optarg;
            break;
        case B_ID:
            b.batch_id = optarg;
            break;
        case B_AGENT:
            b.agent = optarg;
            break;
        case B_PRIO:
            b.priority = optarg;
            break;
        case B_IGNORE:
            b.ignore_model = 1;
            break;
        case B_PENDING:
            b.max_pending = atoi(optarg);
            break;
        case B_TIMEOUT:
            b.timeout_s = atoi(optarg);
            break;
        case B_PROG:
        case B_NOPROG:
            b.progress = opt == B_PROG;
            break;
        default:
            return usage_error("batch", "unknown flag");
        }
    }
    int rc = common_finish(ctx, &cf);
    if (rc != GW_CLI_EXIT_OK)
        return rc;
    if (argc - optind != 1 || !b.output)
        return usage_error("batch", "give one INPUT file and -o OUTPUT");
    if (!gw_cli_topics_tier(&ctx->topics, b.priority))
        return usage_error("batch", "--priority must be high, normal or low");
    if (b.max_pending < 1 || b.max_pending > 1000000 || b.timeout_s < 0)
        return usage_error("batch", "--max-pending must be 1..1000000, --timeout >= 0");
    b.input = argv[optind];
    return gw_cli_batch_run(ctx, &b);
}

/* ---- main ------------------------------------------------------------------------------ */

static const char MAIN_HELP[] =
    "Usage: modelgw-cli COMMAND [flags]\n"
    "Commands:\n"
    "  ask       publish one request and print (or stream) its answer\n"
    "  produce   JSON lines in, Avro requests out (bulk publishing)\n"
    "  tail      print responses, chunks, usage events or DLQ records as JSON lines\n"
    "  batch     run an OpenAI Batch-API JSONL file; results to an output JSONL\n"
    "Run `modelgw-cli COMMAND --help` for the flags of a command.\n";

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("%s\n%s", MAIN_HELP, COMMON_HELP);
        return argc < 2 ? GW_CLI_EXIT_USAGE : GW_CLI_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(gw_cli_ctx *, int, char **);
    } cmds[] = {
        {"ask", cmd_ask}, {"produce", cmd_produce}, {"tail", cmd_tail}, {"batch", cmd_batch}};
    int (*fn)(gw_cli_ctx *, int, char **) = NULL;
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            fn = cmds[i].fn;
    if (!fn) {
        fprintf(stderr, "modelgw-cli: unknown command '%s'\n\n%s", argv[1], MAIN_HELP);
        return GW_CLI_EXIT_USAGE;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    gw_cli_ctx ctx = {.framing = GW_FRAMING_SINGLE_OBJECT,
                      .kafka_timeout_ms = 10000,
                      .partitions = 3,
                      .stop = &g_stop};
    ctx.codec = gw_codec_new(NULL);
    if (!ctx.codec) {
        fprintf(stderr, "modelgw-cli: the embedded Avro schemas failed to load\n");
        return GW_CLI_EXIT_KAFKA;
    }
    gw_log_set_level(GW_LOG_WARN); /* the registry client's info lines are no CLI output */
    int rc = fn(&ctx, argc - 1, argv + 1);
    gw_cli_outputs_free(ctx.outputs);
    gw_codec_free(ctx.codec);
    return rc;
}
