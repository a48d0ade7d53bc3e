/*
 * Unit tests of cli_outputs: modelgw-cli reading the worker's outputs in
 * every framing, Confluent records framed by the worker's own encoder
 * (gw_codec_set_confluent_id + CONFLUENT, as register_outputs sets it up).
 * The schema registry is a canned HTTP server on a thread (the real one is
 * in tests/integration/test_cli_confluent.py): id 7 is this build's
 * InferenceResponse, 8 is unknown (404), 9 an Avro schema that does not
 * resolve against InferenceResponse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli_outputs.h"
#include "codec/schemas.h"

/* ---- a canned registry -------------------------------------------------------- */

typedef struct {
    int fd;
    int port;
    pthread_t th;
    int requests;
    char body7[64 << 10]; /* {"schema": <InferenceResponse>} */
} registry;

static void answer(registry *r, int c)
{
    char req[4096];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof req - 1 && (k = read(c, req + n, sizeof req - 1 - n)) > 0) {
        n += (size_t)k;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    req[n] = '\0';
    r->requests++;
    const char *status = "404 Not Found",
               *body = "{\"error_code\":40403,\"message\":\"not found\"}";
    if (strstr(req, "GET /schemas/ids/7 ") != NULL)
        status = "200 OK", body = r->body7;
    else if (strstr(req, "GET /schemas/ids/9 ") != NULL)
        status = "200 OK", body = "{\"schema\":\"{\\\"type\\\":\\\"string\\\"}\"}";
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, strlen(body));
    if (write(c, head, (size_t)h) < 0 || write(c, body, strlen(body)) < 0)
        return;
}

static void *serve(void *arg)
{
    registry *r = arg;
    for (;;) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            return NULL; /* closed: the test is over */
        answer(r, c);
        close(c);
    }
}

static void registry_start(registry *r)
{
    memset(r, 0, sizeof *r);
    const char *schema = NULL;
    const char *name =
        gw_codec_schema_name(GW_REC_RESPONSE, gw_codec_current_version(GW_REC_RESPONSE));
    for (size_t i = 0; i < gw_schema_source_count; i++)
        if (strcmp(gw_schema_sources[i].name, name) == 0)
            schema = gw_schema_sources[i].json;
    assert_non_null(schema);
    json_t *j = json_pack("{s:s}", "schema", schema);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_true(strlen(s) < sizeof r->body7);
    strcpy(r->body7, s);
    free(s);
    json_decref(j);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r->fd, 16), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&a, &len), 0);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&r->th, NULL, serve, r), 0);
}

static void registry_stop(registry *r)
{
    shutdown(r->fd, SHUT_RDWR);
    close(r->fd);
    pthread_join(r->th, NULL);
}

/* ---- records as the worker frames them -------------------------------------------- */

static gw_codec *worker_codec(uint32_t response_id)
{
    gw_codec *w = gw_codec_new(NULL);
    assert_non_null(w);
    assert_int_equal(gw_codec_set_confluent_id(w, response_id, GW_REC_RESPONSE,
                                               gw_codec_current_version(GW_REC_RESPONSE)),
                     GW_OK);
    return w;
}

static void framed_response(gw_codec *w, const char *id, gw_framing f, gw_buf *out)
{
    gw_response r = {.request_id = (char *)id,
                     .content = "hello from the worker",
                     .model_id = "m1",
                     .provider = "mock",
                     .finish_reason = "stop"};
    gw_buf_reset(out);
    assert_int_equal(gw_codec_encode_response(w, &r, f, out), GW_OK);
}

static gw_err read_one(gw_cli_outputs *o, const gw_buf *b, gw_arena *a, gw_response *r,
                       uint32_t *sid, char *why)
{
    return gw_cli_outputs_decode(o, GW_REC_RESPONSE, b->data, b->len, a, r, sid, why, 320);
}

/* Without a registry: a Confluent record is a named error naming its id,
 * and the next record (single-object, bare) still reads. */
static void test_confluent_without_registry_is_named(void **state)
{
    (void)state;
    gw_codec *cli = gw_codec_new(NULL), *w = worker_codec(7);
    gw_cli_outputs *o = NULL;
    assert_int_equal(gw_cli_outputs_new(cli, NULL, &o), GW_OK);
    gw_arena a;
    gw_arena_init(&a, 1 << 20);
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    gw_response r;
    uint32_t sid = 0;
    char why[320];
    framed_response(w, "c-1", GW_FRAMING_CONFLUENT, &b);
    assert_int_equal(b.data[0], 0);
    assert_int_equal(b.data[4], 7);
    assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_E_CODEC_UNKNOWN_SCHEMA);
    assert_int_equal(sid, 7);
    assert_non_null(strstr(why, "schema id 7"));
    assert_non_null(strstr(why, "--schema-registry"));
    framed_response(w, "s-1", GW_FRAMING_SINGLE_OBJECT, &b);
    assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_OK);
    assert_string_equal(r.request_id, "s-1");
    assert_int_equal(sid, 0);
    /* a Confluent header cut short: named, no crash */
    static const uint8_t cut[] = {0, 0, 0};
    gw_buf_reset(&b);
    gw_buf_append(&b, cut, sizeof cut);
    assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_E_CODEC_TRUNCATED);
    gw_cli_outputs_free(o);
    gw_buf_cleanup(&b);
    gw_arena_cleanup(&a);
    gw_codec_free(w);
    gw_codec_free(cli);
}

/* With a registry: the worker's id resolves to this build's schema and
 * decodes (looked up once); an unknown id and a schema that does not
 * resolve are named errors for that record, and reading goes on. */
static void test_confluent_through_registry(void **state)
{
    (void)state;
    registry reg;
    registry_start(&reg);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", reg.port);
    gw_codec *cli = gw_codec_new(NULL);
    gw_cli_registry_opts ro = {.url = url, .timeout_ms = 2000, .max_wait_ms = 3000};
    gw_cli_outputs *o = NULL;
    assert_int_equal(gw_cli_outputs_new(cli, &ro, &o), GW_OK);
    gw_arena a;
    gw_arena_init(&a, 1 << 20);
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    gw_response r;
    uint32_t sid = 0;
    char why[320];

    gw_codec *w7 = worker_codec(7), *w8 = worker_codec(8), *w9 = worker_codec(9);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "c-%d", i);
        framed_response(w7, id, GW_FRAMING_CONFLUENT, &b);
        assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_OK);
        assert_string_equal(r.request_id, id);
        assert_string_equal(r.content, "hello from the worker");
        assert_string_equal(r.finish_reason, "stop");
        assert_int_equal(sid, 7);
    }
    assert_int_equal(reg.requests, 1); /* one lookup for the id */

    framed_response(w8, "c-8", GW_FRAMING_CONFLUENT, &b);
    assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_E_CODEC_UNKNOWN_SCHEMA);
    assert_int_equal(sid, 8);
    assert_non_null(strstr(why, "schema id 8"));

    framed_response(w9, "c-9", GW_FRAMING_CONFLUENT, &b);
    assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_E_CODEC_INCOMPATIBLE);
    assert_non_null(strstr(why, "schema id 9"));

    /* a datum cut short under a known id: named, no crash */
    framed_response(w7, "c-cut", GW_FRAMING_CONFLUENT, &b);
    b.len -= 3;
    assert_int_not_equal(read_one(o, &b, &a, &r, &sid, why), GW_OK);

    framed_response(w7, "c-last", GW_FRAMING_CONFLUENT, &b);
    assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_OK);
    assert_string_equal(r.request_id, "c-last");

    gw_cli_outputs_free(o);
    registry_stop(&reg);
    gw_codec_free(w7);
    gw_codec_free(w8);
    gw_codec_free(w9);
    gw_buf_cleanup(&b);
    gw_arena_cleanup(&a);
    gw_codec_free(cli);
}

/* A registry that is not there: a named error after the wait, not a hang. */
static void test_registry_down_is_named(void **state)
{
    (void)state;
    gw_codec *cli = gw_codec_new(NULL), *w = worker_codec(7);
    gw_cli_registry_opts ro = {.url = "http://127.0.0.1:1", .timeout_ms = 200, .max_wait_ms = 300};
    gw_cli_outputs *o = NULL;
    assert_int_equal(gw_cli_outputs_new(cli, &ro, &o), GW_OK);
    gw_arena a;
    gw_arena_init(&a, 1 << 20);
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    gw_response r;
    uint32_t sid = 0;
    char why[320];
    framed_response(w, "c-down", GW_FRAMING_CONFLUENT, &b);
    assert_int_equal(read_one(o, &b, &a, &r, &sid, why), GW_E_CODEC_REGISTRY);
    assert_non_null(strstr(why, "schema id 7"));
    gw_cli_outputs_free(o);
    gw_buf_cleanup(&b);
    gw_arena_cleanup(&a);
    gw_codec_free(w);
    gw_codec_free(cli);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confluent_without_registry_is_named),
        cmocka_unit_test(test_confluent_through_registry),
        cmocka_unit_test(test_registry_down_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
