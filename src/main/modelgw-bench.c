/*
 * modelgw-bench: load generator for a modelgw fleet.
 *
 *   modelgw-bench [--rate N|max] [--count N] [--concurrency N] [--stream]
 *                 [--prompt-bytes N] [--priority T] [--worker-pid PID] [--json] ...
 *
 * Publishes InferenceRequests (each with a unique prompt, cache disabled by
 * default so every request reaches the provider), consumes llm.responses
 * assigned at its end before the first publish, matches answers by request
 * id and reports throughput, end-to-end latency percentiles (publish call to
 * response received, both on this host's monotonic clock), errors, and with
 * --worker-pid the worker's CPU time per request (utime+stime from
 * /proc/PID/stat, before the first publish and after the last answer) and
 * its peak RSS (VmHWM, the process's lifetime peak).
 * The bench itself stays cheap: one encode per request into a reused buffer,
 * librdkafka batching (linger 1 ms), one consumer poll batch per loop turn.
 * --prepublish publishes every request first (concurrency and rate are
 * ignored), flushes, says so on stderr (and by creating --ready-file), then
 * only consumes: start the worker after that. Throughput is then measured
 * from the first answer to the last ((answered - 1) / span), so the worker's
 * start and group join are excluded; the worker's CPU is sampled at the
 * first and the last answer (its pid from --worker-pid or, read at the first
 * answer, --worker-pid-file). Latencies in that mode are queueing times
 * since publication and say little.
 * --window-ms W reports the most answers that arrived within any W ms: with
 * a mock provider whose latency is L >= W, each of those requests was taken
 * in before the window opened and answered inside it, so the count is an
 * estimate (from below, up to the consumer's lag) of the worker's peak
 * number of requests in flight. --timeline F writes every answer's arrival
 * time (µs after the first answer), one per line, to see stalls.
 * --open-loop (with --rate) sends request i at its scheduled time t0 + i/rate
 * whether or not earlier ones were answered (no concurrency bound), and
 * measures each latency from that scheduled time, not from the publish call,
 * so a stall that delays sending is counted against the requests it delayed
 * (no coordinated omission); the bench's own lag behind the schedule is
 * reported apart (send_lag_ms). With --stream the chunks topic is consumed
 * too and the first chunk of each request gives its time to first chunk
 * (ttft_ms, from the same start); latency_ms is then the time to the final
 * response.
 * Before an open-loop schedule starts, one warm-up request (id
 * bench-RUNID-warmup, not counted) is sent and its answer awaited (up to
 * --timeout): the bench's own clients start cold (the idempotent producer's
 * id, connections, the consumer's first fetches) and that start, up to a
 * second when a step is retried, is not the gateway's latency; warmup_ms
 * reports what it took.
 * --echo consumes the request topic itself instead of the responses: one
 * Kafka hop (produce, broker, fetch) with these clients and no worker, the
 * floor under the two hops a gateway answer takes.
 * Exit: 0 all answered, 1 some answered with errors, 2 usage, 3 timeout,
 * 4 Kafka failure.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>

#include "cli/cli_ctx.h"
#include "cli/cli_latency.h"
#include "cli/cli_procstat.h"
#include "cli/cli_strset.h"
#include "common/uuid.h"

static volatile int g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

typedef struct {
    const char *bootstrap, *prefix, *priority, *t_req, *t_resp, *pid_file, *ready_file, *timeline;
    const char *registry, *registry_user; /* --schema-registry: Confluent-framed outputs */
    double rate;                          /* requests/s; 0 = as fast as possible */
    long count, concurrency, prompt_bytes, max_tokens, worker_pid, window_ms;
    int timeout_s;
    bool stream, json, cache, prepublish, open_loop, echo;
    const char *props[16]; /* --kafka-property */
    size_t prop_count;
} bench_args;

typedef struct {
    bench_args a;
    gw_cli_ctx ctx;
    const char *topic;
    char run_id[9];
    int64_t *sent_us;    /* per request index: publish call, or schedule (open loop) */
    uint8_t *chunk_seen; /* per request index (with --stream) */
    int64_t *answer_us;  /* arrival times, in order (with --window-ms) */
    int64_t first_answer_us, last_answer_us;
    gw_cli_strset outstanding;
    gw_cli_lat lat, ttft, lag;
    int64_t t0_us;    /* the schedule's origin (open loop) */
    double warmup_ms; /* open loop: the warm-up request's round trip; -1 none */
    long sent, answered, errors, cached;
    long undecodable;    /* answers that did not decode (counted in errors too) */
    char first_why[256]; /* the first one's reason */
    gw_cli_proc p0, p1;
    bool have_proc;
} bench;

static const char HELP[] =
    "Usage: modelgw-bench [flags]\n"
    "  --rate N|max           requests per second, or as fast as possible (default max)\n"
    "  --open-loop            with --rate: send on schedule whatever is outstanding,\n"
    "                         latency from the scheduled send time\n"
    "  --count N              requests to send (default 10000)\n"
    "  --concurrency N        most requests outstanding at once (default 1000)\n"
    "  --stream               ask for streamed answers\n"
    "  --prompt-bytes N       prompt size (default 64)\n"
    "  --max-tokens N         max_tokens of each request (default 16)\n"
    "  --cache                leave enable_cache on (prompts are unique either way)\n"
    "  --priority high|normal|low   tier (default normal)\n"
    "  --worker-pid PID       report this process's CPU µs/request and peak RSS\n"
    "  --timeout S            give up after S s without an answer (default 30)\n"
    "  --json                 one JSON object instead of text\n"
    "  --prepublish           publish all requests first, then time from the first\n"
    "                         answer to the last (start the worker after publishing)\n"
    "  --ready-file F         with --prepublish: create F once everything is published\n"
    "  --worker-pid-file F    read the worker's pid from F at the first answer\n"
    "  --window-ms W          report the most answers within any W ms (peak in flight\n"
    "                         estimate when the mock latency is >= W)\n"
    "  --timeline F           write each answer's arrival (µs after the first) to F\n"
    "  --echo                 consume the request topic instead of the responses: one\n"
    "                         Kafka hop without a worker (the broker's share; run it\n"
    "                         on a topic prefix no worker serves)\n"
    "  --kafka-property K=V   librdkafka property for the bench's own producer and\n"
    "                         consumer, applied last (up to 16)\n"
    "  --schema-registry URL  read responses in the Confluent framing (a worker with\n"
    "                         kafka.output_framing confluent): ids looked up at URL\n"
    "  --schema-registry-user USER  basic auth; the password from\n"
    "                         $MODELGW_SCHEMA_REGISTRY_PASSWORD\n"
    "  --bootstrap, --topic-prefix, --topic-requests T, --topic-responses T\n"
    "                         as for modelgw-cli (--topic-requests overrides the tier)\n";

static int parse_args(bench_args *a, int argc, char **argv)
{
    enum {
        O_RATE = 1000,
        O_COUNT,
        O_CONC,
        O_STREAM,
        O_PROMPT,
        O_MAXTOK,
        O_CACHE,
        O_PRIO,
        O_PID,
        O_TIMEOUT,
        O_JSON,
        O_BOOT,
        O_PREFIX,
        O_TREQ,
        O_TRESP,
        O_PREPUB,
        O_READY,
        O_PIDFILE,
        O_WINDOW,
        O_TIMELINE,
        O_OPEN,
        O_PROP,
        O_ECHO,
        O_REG,
        O_REG_USER
    };
    static const struct option opts[] = {{"rate", required_argument, 0, O_RATE},
                                         {"count", required_argument, 0, O_COUNT},
                                         {"concurrency", required_argument, 0, O_CONC},
                                         {"stream", no_argument, 0, O_STREAM},
                                         {"prompt-bytes", required_argument, 0, O_PROMPT},
                                         {"max-tokens", required_argument, 0, O_MAXTOK},
                                         {"cache", no_argument, 0, O_CACHE},
                                         {"priority", required_argument, 0, O_PRIO},
                                         {"worker-pid", required_argument, 0, O_PID},
                                         {"timeout", required_argument, 0, O_TIMEOUT},
                                         {"json", no_argument, 0, O_JSON},
                                         {"bootstrap", required_argument, 0, O_BOOT},
                                         {"topic-prefix", required_argument, 0, O_PREFIX},
                                         {"topic-requests", required_argument, 0, O_TREQ},
                                         {"topic-responses", required_argument, 0, O_TRESP},
                                         {"prepublish", no_argument, 0, O_PREPUB},
                                         {"ready-file", required_argument, 0, O_READY},
                                         {"worker-pid-file", required_argument, 0, O_PIDFILE},
                                         {"window-ms", required_argument, 0, O_WINDOW},
                                         {"timeline", required_argument, 0, O_TIMELINE},
                                         {"open-loop", no_argument, 0, O_OPEN},
                                         {"kafka-property", required_argument, 0, O_PROP},
                                         {"echo", no_argument, 0, O_ECHO},
                                         {"schema-registry", required_argument, 0, O_REG},
                                         {"schema-registry-user", required_argument, 0, O_REG_USER},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_RATE:
            a->rate = strcmp(optarg, "max") == 0 ? 0 : atof(optarg);
            if (strcmp(optarg, "max") != 0 && a->rate <= 0)
                return 2;
            break;
        case O_COUNT:
            a->count = atol(optarg);
            break;
        case O_CONC:
            a->concurrency = atol(optarg);
            break;
        case O_STREAM:
            a->stream = true;
            break;
        case O_PROMPT:
            a->prompt_bytes = atol(optarg);
            break;
        case O_MAXTOK:
            a->max_tokens = atol(optarg);
            break;
        case O_CACHE:
            a->cache = true;
            break;
        case O_PRIO:
            a->priority = optarg;
            break;
        case O_PID:
            a->worker_pid = atol(optarg);
            break;
        case O_TIMEOUT:
            a->timeout_s = atoi(optarg);
            break;
        case O_JSON:
            a->json = true;
            break;
        case O_BOOT:
            a->bootstrap = optarg;
            break;
        case O_PREFIX:
            a->prefix = optarg;
            break;
        case O_TREQ:
            a->t_req = optarg;
            break;
        case O_TRESP:
            a->t_resp = optarg;
            break;
        case O_PREPUB:
            a->prepublish = true;
            break;
        case O_READY:
            a->ready_file = optarg;
            break;
        case O_PIDFILE:
            a->pid_file = optarg;
            break;
        case O_WINDOW:
            a->window_ms = atol(optarg);
            break;
        case O_TIMELINE:
            a->timeline = optarg;
            break;
        case O_OPEN:
            a->open_loop = true;
            break;
        case O_ECHO:
            a->echo = true;
            break;
        case O_REG:
            a->registry = optarg;
            break;
        case O_REG_USER:
            a->registry_user = optarg;
            break;
        case O_PROP:
            if (a->prop_count == sizeof a->props / sizeof a->props[0])
                return 2;
            a->props[a->prop_count++] = optarg;
            break;
        case 'h':
            printf("%s", HELP);
            return 0;
        default:
            return 2;
        }
    }
    bool ok = a->count >= 1 && a->count <= 10000000 && a->concurrency >= 1 &&
              a->concurrency <= 1000000 && a->prompt_bytes >= 1 && a->prompt_bytes <= (1 << 20) &&
              a->max_tokens >= 1 && a->timeout_s >= 1 && a->window_ms >= 0 &&
              a->window_ms <= 3600000 && (!a->open_loop || (a->rate > 0 && !a->prepublish)) &&
              (!a->echo || (!a->stream && !a->prepublish)) && optind == argc;
    return ok ? -1 : 2;
}

/* Encode and publish request i. */
static int send_one(bench *b, rd_kafka_t *prod, gw_request *req, char *prompt, gw_buf *buf)
{
    char id[48];
    snprintf(id, sizeof id, "bench-%s-%ld", b->run_id, b->sent);
    int n = snprintf(prompt, (size_t)b->a.prompt_bytes + 1, "%ld ", b->sent);
    if (n < b->a.prompt_bytes)
        prompt[n] = 'x'; /* snprintf's NUL replaced: the rest stays filler */
    req->request_id = id;
    gw_buf_reset(buf);
    if (gw_codec_encode_request(b->ctx.codec, req, GW_FRAMING_SINGLE_OBJECT, buf) != GW_OK)
        return GW_CLI_EXIT_USAGE;
    if (gw_cli_strset_add(&b->outstanding, id, (void *)(intptr_t)(b->sent + 1)) != GW_OK)
        return GW_CLI_EXIT_KAFKA;
    int64_t now = gw_cli_mono_us();
    if (b->a.open_loop) {
        b->sent_us[b->sent] = b->t0_us + (int64_t)((double)b->sent * 1e6 / b->a.rate);
        gw_cli_lat_add(&b->lag,
                       (uint64_t)(now > b->sent_us[b->sent] ? now - b->sent_us[b->sent] : 0));
    } else {
        b->sent_us[b->sent] = now;
    }
    if (gw_cli_produce(prod, b->topic, id, buf->data, buf->len,
                       "application/vnd.modelgw.request+avro", NULL,
                       30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return GW_CLI_EXIT_KAFKA;
    b->sent++;
    return GW_CLI_EXIT_OK;
}

/* The worker's pid from --worker-pid-file (first line, decimal); 0 if absent. */
static long read_pid_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1 || pid <= 0 || pid > 4194304)
            pid = 0;
        fclose(f);
    }
    return pid;
}

/* First sample of the worker's CPU: before the first publish, or with
 * --prepublish at the first answer. */
static void sample_worker_start(bench *b)
{
    if (b->a.worker_pid <= 0 && b->a.pid_file)
        b->a.worker_pid = read_pid_file(b->a.pid_file);
    if (b->a.worker_pid <= 0)
        return;
    if (gw_cli_proc_sample((pid_t)b->a.worker_pid, &b->p0) != GW_OK)
        fprintf(stderr, "modelgw-bench: cannot read /proc/%ld; no worker numbers\n",
                b->a.worker_pid);
    else
        b->have_proc = true;
}

static void on_answer(bench *b, const rd_kafka_message_t *m, gw_arena *a)
{
    char id[64];
    if (!gw_cli_header(m, "request_id", id, sizeof id)) {
        if (m->key_len >= sizeof id)
            return;
        memcpy(id, m->key, m->key_len);
        id[m->key_len] = '\0';
    }
    void *v = NULL;
    if (!gw_cli_strset_remove(&b->outstanding, id, &v))
        return; /* not ours, or a duplicate */
    int64_t now = gw_cli_mono_us();
    gw_cli_lat_add(&b->lat, (uint64_t)(now - b->sent_us[(intptr_t)v - 1]));
    if (b->answered == 0) {
        b->first_answer_us = now;
        if (b->a.prepublish)
            sample_worker_start(b);
    }
    b->last_answer_us = now;
    if (b->answer_us)
        b->answer_us[b->answered] = now;
    b->answered++;
    if (b->a.echo)
        return; /* the request itself came back: nothing to decode */
    gw_response r;
    char why[256] = "";
    gw_arena_reset(a);
    gw_err e = gw_cli_outputs_decode(b->ctx.outputs, GW_REC_RESPONSE, m->payload, m->len, a, &r,
                                     NULL, why, sizeof why);
    if (e != GW_OK) {
        b->errors++;
        if (b->undecodable++ == 0)
            snprintf(b->first_why, sizeof b->first_why, "%.40s: %.200s", gw_err_name(e),
                     why[0] ? why : "undecodable response");
    } else if (r.error)
        b->errors++;
    else if (r.cached)
        b->cached++;
}

/* The request index of one of our ids ("bench-RUNID-INDEX"); -1 otherwise. */
static long id_index(const bench *b, const char *id)
{
    if (strncmp(id, "bench-", 6) != 0 || strncmp(id + 6, b->run_id, 8) != 0 || id[14] != '-' ||
        id[15] < '0' || id[15] > '9')
        return -1;
    char *end = NULL;
    long i = strtol(id + 15, &end, 10);
    return *end == '\0' && i >= 0 && i < b->sent ? i : -1;
}

/* A chunk (--stream): the first one of a request gives its TTFT. Chunks of
 * a request may arrive after its response (another topic), so the index is
 * taken from the id, not from the outstanding set. */
static void on_chunk(bench *b, const rd_kafka_message_t *m, int64_t now)
{
    char id[64];
    if (!gw_cli_header(m, "request_id", id, sizeof id)) {
        if (m->key_len >= sizeof id)
            return;
        memcpy(id, m->key, m->key_len);
        id[m->key_len] = '\0';
    }
    long i = id_index(b, id);
    if (i < 0 || b->chunk_seen[i])
        return;
    b->chunk_seen[i] = 1;
    gw_cli_lat_add(&b->ttft, (uint64_t)(now - b->sent_us[i]));
}

/* --prepublish: every request published and acknowledged before any answer
 * is awaited. */
static int prepublish(bench *b, rd_kafka_t *prod, gw_request *req, char *prompt, gw_buf *buf)
{
    int rc = GW_CLI_EXIT_OK;
    while (b->sent < b->a.count && rc == GW_CLI_EXIT_OK && !g_stop) {
        rc = send_one(b, prod, req, prompt, buf);
        if ((b->sent & 1023) == 0)
            rd_kafka_poll(prod, 0);
    }
    if (rc == GW_CLI_EXIT_OK && rd_kafka_flush(prod, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = GW_CLI_EXIT_KAFKA;
    if (rc != GW_CLI_EXIT_OK)
        return rc;
    fprintf(stderr, "modelgw-bench: %ld requests published; start the worker\n", b->sent);
    if (b->a.ready_file) {
        FILE *f = fopen(b->a.ready_file, "w");
        if (!f)
            return GW_CLI_EXIT_USAGE;
        fprintf(f, "%ld\n", b->sent);
        fclose(f);
    }
    return rc;
}

/* Sends what is due: open loop, every request whose scheduled time has
 * come; otherwise up to the rate and the concurrency bound. */
static int send_due(bench *b, rd_kafka_t *prod, gw_request *req, char *prompt, gw_buf *buf,
                    int64_t now)
{
    int rc = GW_CLI_EXIT_OK;
    double due = (double)(now - b->t0_us) * b->a.rate / 1e6;
    if (b->a.open_loop) {
        while (b->sent < b->a.count && (double)b->sent <= due && rc == GW_CLI_EXIT_OK)
            rc = send_one(b, prod, req, prompt, buf);
        return rc;
    }
    while (b->sent < b->a.count && b->sent - b->answered < b->a.concurrency &&
           (b->a.rate <= 0 || (double)b->sent < due) && rc == GW_CLI_EXIT_OK)
        rc = send_one(b, prod, req, prompt, buf);
    return rc;
}

/* Open loop: waits until the next scheduled send (or 5 ms once all are
 * sent) or until the consumer queue gets a message (its io event writes to
 * wake_fd), whichever comes first, to the µs: a consumer poll would block
 * in whole ms and so quantize the measured latencies. */
static void wait_next(const bench *b, int wake_fd)
{
    int64_t w_us = 5000;
    if (b->sent < b->a.count) {
        int64_t next = b->t0_us + (int64_t)((double)b->sent * 1e6 / b->a.rate);
        w_us = next - gw_cli_mono_us();
        if (w_us <= 0)
            return;
    }
    struct pollfd pfd = {.fd = wake_fd, .events = POLLIN};
    struct timespec ts = {.tv_sec = (time_t)(w_us / 1000000),
                          .tv_nsec = (long)(w_us % 1000000) * 1000};
    if (ppoll(&pfd, 1, &ts, NULL) > 0) {
        char drain[256];
        while (read(wake_fd, drain, sizeof drain) > 0) {
        }
    }
}

/* One consumer poll batch: answers, and chunks with --stream. false when
 * nothing arrived. */
static bool consume(bench *b, rd_kafka_t *cons, gw_arena *a, int timeout_ms)
{
    bool got = false;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, timeout_ms);
    for (int i = 0; m && i < 100000; i++) {
        if (!m->err) {
            got = true;
            if (b->chunk_seen && strcmp(rd_kafka_topic_name(m->rkt), b->ctx.topics.chunks) == 0)
                on_chunk(b, m, gw_cli_mono_us());
            else
                on_answer(b, m, a);
        }
        rd_kafka_message_destroy(m);
        m = rd_kafka_consumer_poll(cons, 0);
    }
    if (m)
        rd_kafka_message_destroy(m);
    return got;
}

/* Open loop: one request outside the schedule, answered before it starts,
 * so that the clients' cold start is not measured (see the top). */
static int warm_up(bench *b, rd_kafka_t *prod, rd_kafka_t *cons, gw_request *req, gw_buf *buf)
{
    char id[48];
    snprintf(id, sizeof id, "bench-%s-warmup", b->run_id);
    req->request_id = id;
    gw_buf_reset(buf);
    if (gw_codec_encode_request(b->ctx.codec, req, GW_FRAMING_SINGLE_OBJECT, buf) != GW_OK)
        return GW_CLI_EXIT_USAGE;
    int64_t t0 = gw_cli_mono_us();
    if (gw_cli_produce(prod, b->topic, id, buf->data, buf->len,
                       "application/vnd.modelgw.request+avro", NULL,
                       30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return GW_CLI_EXIT_KAFKA;
    const char *want = b->a.echo ? b->topic : b->ctx.topics.responses;
    while (!g_stop && gw_cli_mono_us() - t0 < (int64_t)b->a.timeout_s * 1000000) {
        rd_kafka_poll(prod, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 5);
        if (m == NULL)
            continue;
        char got[64];
        bool done = !m->err && strcmp(rd_kafka_topic_name(m->rkt), want) == 0 &&
                    gw_cli_header(m, "request_id", got, sizeof got) && strcmp(got, id) == 0;
        rd_kafka_message_destroy(m);
        if (done) {
            b->warmup_ms = (double)(gw_cli_mono_us() - t0) / 1000.0;
            return GW_CLI_EXIT_OK;
        }
    }
    return g_stop ? GW_CLI_EXIT_OK : GW_CLI_EXIT_TIMEOUT;
}

static int run(bench *b, rd_kafka_t *prod, rd_kafka_t *cons, int wake_fd, gw_request *req,
               char *prompt, int64_t *elapsed_us)
{
    gw_buf buf;
    gw_buf_init(&buf, 0);
    gw_arena a;
    gw_arena_init(&a, 16u << 20);
    int rc = GW_CLI_EXIT_OK;
    if (b->a.prepublish)
        rc = prepublish(b, prod, req, prompt, &buf);
    if (b->a.open_loop && rc == GW_CLI_EXIT_OK)
        rc = warm_up(b, prod, cons, req, &buf);
    b->t0_us = gw_cli_mono_us();
    int64_t last_answer = b->t0_us;
    while (rc == GW_CLI_EXIT_OK && b->answered < b->a.count && !g_stop) {
        int64_t now = gw_cli_mono_us();
        rc = send_due(b, prod, req, prompt, &buf, now);
        rd_kafka_poll(prod, 0);
        int timeout_ms = b->a.open_loop ? 0 : b->a.rate > 0 ? 1 : 5;
        if (consume(b, cons, &a, timeout_ms))
            last_answer = gw_cli_mono_us();
        else if (b->a.open_loop)
            wait_next(b, wake_fd);
        if (gw_cli_mono_us() - last_answer > (int64_t)b->a.timeout_s * 1000000)
            rc = GW_CLI_EXIT_TIMEOUT;
    }
    *elapsed_us =
        b->a.prepublish ? b->last_answer_us - b->first_answer_us : gw_cli_mono_us() - b->t0_us;
    gw_buf_cleanup(&buf);
    gw_arena_cleanup(&a);
    return rc != GW_CLI_EXIT_OK ? rc : g_stop ? GW_CLI_EXIT_TIMEOUT : GW_CLI_EXIT_OK;
}

/* Most answers within any window of w µs (answer_us is ascending). */
static long max_in_window(const int64_t *t, long n, int64_t w)
{
    long best = 0;
    for (long lo = 0, hi = 0; hi < n; hi++) {
        while (t[hi] - t[lo] >= w)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return best;
}

/* --timeline: one line per answer, µs after the first answer. */
static void write_timeline(const bench *b)
{
    FILE *f = fopen(b->a.timeline, "w");
    if (!f) {
        fprintf(stderr, "modelgw-bench: cannot write %s\n", b->a.timeline);
        return;
    }
    for (long i = 0; i < b->answered; i++)
        fprintf(f, "%lld\n", (long long)(b->answer_us[i] - b->first_answer_us));
    fclose(f);
}

/* ,"name":{"n":N,"p50":..,"p99":..,"p999":..,"max":..} in ms */
static void print_json_lat(const char *name, gw_cli_lat *l)
{
    printf(",\"%s\":{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}", name,
           l->count, gw_cli_lat_percentile(l, 50) / 1000.0, gw_cli_lat_percentile(l, 99) / 1000.0,
           gw_cli_lat_percentile(l, 99.9) / 1000.0, gw_cli_lat_percentile(l, 100) / 1000.0);
}

static void print_text_lat(const char *label, gw_cli_lat *l)
{
    printf("%s p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (%zu samples)\n", label,
           gw_cli_lat_percentile(l, 50) / 1000.0, gw_cli_lat_percentile(l, 99) / 1000.0,
           gw_cli_lat_percentile(l, 99.9) / 1000.0, gw_cli_lat_percentile(l, 100) / 1000.0,
           l->count);
}

static void report(bench *b, int64_t elapsed_us, int rc)
{
    if (b->a.timeline && b->answer_us)
        write_timeline(b);
    double secs = (double)elapsed_us / 1e6;
    long counted = b->a.prepublish && b->answered > 0 ? b->answered - 1 : b->answered;
    double tput = secs > 0 ? (double)counted / secs : 0;
    long window =
        b->a.window_ms > 0 ? max_in_window(b->answer_us, b->answered, b->a.window_ms * 1000) : -1;
    double p50 = gw_cli_lat_percentile(&b->lat, 50) / 1000.0;
    double p90 = gw_cli_lat_percentile(&b->lat, 90) / 1000.0;
    double p99 = gw_cli_lat_percentile(&b->lat, 99) / 1000.0;
    double p999 = gw_cli_lat_percentile(&b->lat, 99.9) / 1000.0;
    double pmax = gw_cli_lat_percentile(&b->lat, 100) / 1000.0;
    double cpu_per_req = b->have_proc && b->answered
                             ? (double)(b->p1.cpu_us - b->p0.cpu_us) / (double)b->answered
                             : -1;
    if (b->a.json) {
        printf("{\"sent\":%ld,\"answered\":%ld,\"errors\":%ld,\"cached\":%ld,\"elapsed_s\":%.3f,"
               "\"throughput_rps\":%.1f,\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
               "\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f},\"rate\":%.1f,\"concurrency\":%ld,"
               "\"stream\":%s,\"open_loop\":%s",
               b->sent, b->answered, b->errors, b->cached, secs, tput, p50, p90, p99, p999, pmax,
               gw_cli_lat_mean(&b->lat) / 1000.0, b->a.rate, b->a.concurrency,
               b->a.stream ? "true" : "false", b->a.open_loop ? "true" : "false");
        if (b->chunk_seen)
            print_json_lat("ttft_ms", &b->ttft);
        if (b->a.open_loop)
            print_json_lat("send_lag_ms", &b->lag);
        if (b->warmup_ms >= 0)
            printf(",\"warmup_ms\":%.3f", b->warmup_ms);
        if (b->have_proc)
            printf(",\"worker\":{\"pid\":%ld,\"cpu_us_per_request\":%.1f,\"cpu_s\":%.3f,"
                   "\"peak_rss_kib\":%llu,\"rss_kib\":%llu}",
                   b->a.worker_pid, cpu_per_req, (double)(b->p1.cpu_us - b->p0.cpu_us) / 1e6,
                   (unsigned long long)b->p1.hwm_kib, (unsigned long long)b->p1.rss_kib);
        printf(",\"prepublish\":%s,\"undecodable\":%ld", b->a.prepublish ? "true" : "false",
               b->undecodable);
        if (window >= 0)
            printf(",\"window_ms\":%ld,\"max_answers_in_window\":%ld", b->a.window_ms, window);
        printf(",\"exit\":%d}\n", rc);
        return;
    }
    printf("requests     sent %ld, answered %ld, errors %ld, cached %ld%s\n", b->sent, b->answered,
           b->errors, b->cached, rc == GW_CLI_EXIT_TIMEOUT ? " (TIMED OUT)" : "");
    printf("elapsed      %.3f s%s\n", secs,
           b->a.prepublish ? " (first answer to last; throughput over answered - 1)" : "");
    printf("throughput   %.1f requests/s\n", tput);
    printf("latency ms   p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f%s\n", p50, p90, p99,
           p999, pmax, b->a.open_loop ? " (from the scheduled send)" : "");
    if (b->chunk_seen)
        print_text_lat("ttft ms     ", &b->ttft);
    if (b->a.open_loop)
        print_text_lat("send lag ms ", &b->lag);
    if (b->have_proc)
        printf("worker %ld   cpu %.1f us/request (%.3f s), peak RSS %.1f MiB, RSS now %.1f MiB\n",
               b->a.worker_pid, cpu_per_req, (double)(b->p1.cpu_us - b->p0.cpu_us) / 1e6,
               (double)b->p1.hwm_kib / 1024.0, (double)b->p1.rss_kib / 1024.0);
    if (window >= 0)
        printf("window       at most %ld answers within %ld ms\n", window, b->a.window_ms);
    if (b->undecodable)
        printf("undecodable  %ld responses (counted as errors), the first: %s\n", b->undecodable,
               b->first_why);
}

static void build_request(bench *b, gw_request *req, gw_message *msg, char *prompt)
{
    memset(prompt, 'x', (size_t)b->a.prompt_bytes);
    memset(msg, 0, sizeof *msg); /* every field of the message, the newer ones too */
    prompt[b->a.prompt_bytes] = '\0';
    gw_codec_init_defaults(GW_REC_REQUEST, req);
    msg->role = GW_ROLE_USER;
    msg->content = prompt;
    msg->name = NULL;
    req->agent_did = "did:agent:bench";
    req->messages = msg;
    req->message_count = 1;
    req->max_tokens = (int32_t)b->a.max_tokens;
    req->stream = b->a.stream;
    req->enable_cache = b->a.cache;
}

/* Open loop: the consumer queue's io event, so wait_next wakes on an answer. */
typedef struct {
    int fds[2];
    rd_kafka_queue_t *q;
} bench_wake;

static bool wake_open(bench_wake *w, rd_kafka_t *cons)
{
    if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return false;
    w->q = rd_kafka_queue_get_consumer(cons);
    if (!w->q)
        return false;
    rd_kafka_queue_io_event_enable(w->q, w->fds[1], "1", 1);
    return true;
}

static void wake_close(bench_wake *w)
{
    if (w->q) {
        rd_kafka_queue_io_event_enable(w->q, -1, NULL, 0);
        rd_kafka_queue_destroy(w->q);
    }
    for (int i = 0; i < 2; i++)
        if (w->fds[i] >= 0)
            close(w->fds[i]);
}

static int setup_and_run(bench *b)
{
    bench_wake wake = {.fds = {-1, -1}, .q = NULL};
    char err[512];
    const char *topics[3] = {b->topic, b->ctx.topics.responses, b->ctx.topics.chunks};
    if (b->a.echo)
        topics[1] = b->topic;
    rd_kafka_t *prod = NULL, *cons = gw_cli_consumer_new(b->ctx.bootstrap, err, sizeof err);
    int rc = GW_CLI_EXIT_KAFKA;
    size_t n_out = b->chunk_seen ? 2 : 1;
    if (!cons ||
        gw_cli_ensure_topics(cons, topics, 1 + n_out, 3, 10000, err, sizeof err) != GW_OK ||
        gw_cli_assign(cons, topics + 1, n_out, false, 10000, err, sizeof err) != GW_OK ||
        !(prod = gw_cli_producer_new(b->ctx.bootstrap, GW_CLI_PRODUCER_INTERACTIVE, NULL, NULL, err,
                                     sizeof err)) ||
        (b->a.open_loop && !wake_open(&wake, cons))) {
        fprintf(stderr, "modelgw-bench: Kafka at %s (%s): %s\n", b->ctx.bootstrap,
                b->ctx.bootstrap_source, err);
        goto cleanup;
    }
    char *prompt = malloc((size_t)b->a.prompt_bytes + 1);
    gw_request req;
    gw_message msg = {0};
    if (!prompt)
        goto cleanup;
    build_request(b, &req, &msg, prompt);
    if (!b->a.prepublish)
        sample_worker_start(b);
    int64_t elapsed = 0;
    rc = run(b, prod, cons, wake.fds[0], &req, prompt, &elapsed);
    if (b->have_proc && gw_cli_proc_sample((pid_t)b->a.worker_pid, &b->p1) != GW_OK)
        b->have_proc = false;
    free(prompt);
    if (rc == GW_CLI_EXIT_OK && b->errors)
        rc = GW_CLI_EXIT_ANSWER_ERROR;
    report(b, elapsed, rc);
cleanup:
    wake_close(&wake);
    if (prod)
        gw_cli_producer_free(prod, 5000);
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    return rc;
}

int main(int argc, char **argv)
{
    static bench b;
    b.a = (bench_args){.priority = "normal",
                       .count = 10000,
                       .concurrency = 1000,
                       .prompt_bytes = 64,
                       .max_tokens = 16,
                       .timeout_s = 30};
    int prc = parse_args(&b.a, argc, argv);
    if (prc >= 0) {
        if (prc)
            fprintf(stderr, "modelgw-bench: invalid flags (see --help)\n");
        return prc;
    }
    if (gw_cli_topics_from_prefix(&b.ctx.topics, b.a.prefix) != GW_OK ||
        !(b.topic = gw_cli_topics_tier(&b.ctx.topics, b.a.priority))) {
        fprintf(stderr, "modelgw-bench: bad --topic-prefix or --priority\n");
        return GW_CLI_EXIT_USAGE;
    }
    if (b.a.t_req)
        b.topic = b.a.t_req;
    if (b.a.t_resp)
        snprintf(b.ctx.topics.responses, GW_CLI_TOPIC_MAX, "%s", b.a.t_resp);
    gw_cli_bootstrap(b.a.bootstrap, b.ctx.bootstrap, sizeof b.ctx.bootstrap,
                     &b.ctx.bootstrap_source);
    gw_cli_kafka_properties(b.a.props, b.a.prop_count);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char u[37];
    gw_uuid4(u);
    memcpy(b.run_id, u, 8);
    b.run_id[8] = '\0';
    b.warmup_ms = -1;
    b.ctx.codec = gw_codec_new(NULL);
    gw_cli_registry_opts reg = {.url = b.a.registry,
                                .username = b.a.registry_user,
                                .password = getenv("MODELGW_SCHEMA_REGISTRY_PASSWORD")};
    if (b.ctx.codec && gw_cli_outputs_new(b.ctx.codec, &reg, &b.ctx.outputs) != GW_OK)
        b.ctx.outputs = NULL;
    b.sent_us = calloc((size_t)b.a.count, sizeof *b.sent_us);
    if (b.a.window_ms > 0 || b.a.timeline)
        b.answer_us = calloc((size_t)b.a.count, sizeof *b.answer_us);
    if (b.a.stream)
        b.chunk_seen = calloc((size_t)b.a.count, 1);
    bool all_out = b.a.prepublish || b.a.open_loop;
    gw_cli_strset_init(&b.outstanding, (size_t)(all_out ? b.a.count : b.a.concurrency) + 1);
    gw_cli_lat_init(&b.lat, (size_t)b.a.count);
    gw_cli_lat_init(&b.ttft, (size_t)b.a.count);
    gw_cli_lat_init(&b.lag, (size_t)b.a.count);
    bool mem_ok = b.sent_us && ((b.a.window_ms == 0 && !b.a.timeline) || b.answer_us) &&
                  (!b.a.stream || b.chunk_seen);
    int rc = b.ctx.codec && b.ctx.outputs && mem_ok ? setup_and_run(&b) : GW_CLI_EXIT_KAFKA;
    gw_cli_lat_cleanup(&b.lat);
    gw_cli_lat_cleanup(&b.ttft);
    gw_cli_lat_cleanup(&b.lag);
    free(b.chunk_seen);
    gw_cli_strset_cleanup(&b.outstanding);
    free(b.sent_us);
    free(b.answer_us);
    gw_cli_outputs_free(b.ctx.outputs);
    gw_codec_free(b.ctx.codec);
    return rc;
}
