/*
 * Tests of src/config: loading the shipped files, every error class with its
 * exact message (file, line, setting path), --set overrides, secrets, and the
 * agreement of the row tables with config/modelgw.conf and
 * docs/configuration.md.
 *
 * Run from the source tree (ctest does). `test_config --print-reference`
 * prints the reference table that docs/configuration.md embeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libconfig.h>

#include "config/config.h"

#define DATA            "tests/data/config/"
#define SECRET_KEY      "sk-test-SECRET-0123456789"
#define SECRET_PASSWORD "redis-SECRET-pw-42"

static gw_config *load_ok(const char *path)
{
    char err[512] = "";
    gw_config *cfg = NULL;
    gw_err e = gw_config_load(path, &cfg, err, sizeof(err));
    if (e != GW_OK)
        fail_msg("%s: %s", path, err);
    assert_non_null(cfg);
    return cfg;
}

/* Everything written to f so far, as a string the caller frees. */
static char *slurp(FILE *f)
{
    long len = ftell(f);
    assert_true(len >= 0);
    char *buf = calloc(1, (size_t)len + 1);
    assert_non_null(buf);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return buf;
}

static char *dump_of(const gw_config *cfg)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    gw_config_dump(cfg, f);
    return slurp(f);
}

static char *reference_text(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    gw_config_write_reference(f);
    return slurp(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ---- loading ---------------------------------------------------------- */

static void test_reference_file_loads(void **state)
{
    gw_config *cfg = load_ok("config/modelgw.conf");
    assert_int_equal(cfg->deployment_count, 8);
    const gw_deployment *mi = gw_config_deployment(cfg, "mistral-large");
    assert_non_null(mi);
    assert_int_equal(mi->provider, GW_PROVIDER_OPENAI); /* from its preset */
    assert_string_equal(mi->base_url, "https://api.mistral.ai");
    assert_string_equal(mi->api_key_env, "MISTRAL_API_KEY");
    const gw_deployment *br = gw_config_deployment(cfg, "claude-bedrock");
    assert_non_null(br);
    assert_int_equal(br->provider, GW_PROVIDER_BEDROCK);
    assert_string_equal(br->region, "us-east-1");
    assert_null(br->base_url); /* optional for bedrock: built from the region */
    const gw_deployment *az = gw_config_deployment(cfg, "gpt4o-azure");
    assert_non_null(az);
    assert_int_equal(az->provider, GW_PROVIDER_AZURE);
    assert_string_equal(az->api_version, "2024-10-21");
    assert_string_equal(cfg->kafka.topics.high, "llm.requests.high");
    assert_int_equal(cfg->worker.max_in_flight, 1024);
    assert_int_equal(cfg->kafka.output_framing, GW_CFG_FRAMING_SINGLE_OBJECT);

    const gw_deployment *gpt = gw_config_deployment(cfg, "gpt-4o");
    assert_non_null(gpt);
    assert_int_equal(gpt->provider, GW_PROVIDER_OPENAI);
    assert_int_equal(gpt->capability_count, 3);
    assert_true(gw_deployment_has_capability(gpt, "vision"));
    assert_int_equal(gpt->connect_timeout_ms, 3000);
    assert_int_equal(gpt->rpm_limit, 5000);
    assert_int_equal(gpt->extra_header_count, 1);
    assert_string_equal(gpt->api_key_env, "OPENAI_API_KEY");

    const gw_deployment *claude = gw_config_deployment(cfg, "claude-sonnet");
    assert_non_null(claude);
    assert_string_equal(claude->auth_header, "x-api-key"); /* default by provider */
    assert_int_equal(claude->total_timeout_ms, 300000);    /* from timeouts.total_ms */
    assert_null(gw_config_deployment(cfg, "nope"));

    const gw_deployment *gem = gw_config_deployment(cfg, "gemini-flash");
    assert_non_null(gem);
    assert_int_equal(gem->provider, GW_PROVIDER_GEMINI);
    assert_string_equal(gem->auth_header, "x-goog-api-key"); /* default by provider */
    assert_true(gem->price_in_usd_per_mtok == 0.3 && gem->price_out_usd_per_mtok == 2.5);
    assert_true(gw_deployment_has_capability(gem, "tools"));

    int64_t rpm, tpm;
    gw_config_agent_limits(cfg, "did:example:batch-agent", &rpm, &tpm);
    assert_int_equal(rpm, 600);
    assert_int_equal(tpm, 2000000);
    gw_config_agent_limits(cfg, "did:example:other", &rpm, &tpm);
    assert_int_equal(rpm, 0);
    double day, month;
    gw_config_agent_budget(cfg, "did:example:batch-agent", &day, &month);
    assert_true(day == 50.0 && month == 1000.0);
    gw_config_free(cfg);
}

static void test_dev_file_loads(void **state)
{
    gw_config *cfg = load_ok("config/dev.conf");
    assert_true(cfg->worker.dev);
    assert_int_equal(cfg->state.backend, GW_CFG_STATE_MEMORY);
    assert_int_equal(cfg->admin.port, 0);
    assert_string_equal(cfg->admin.listen, "127.0.0.1");
    assert_true(cfg->deployment_count >= 1);
    for (size_t i = 0; i < cfg->deployment_count; i++)
        assert_int_equal(cfg->deployments[i].provider, GW_PROVIDER_MOCK);
    const gw_deployment *fast = gw_config_deployment(cfg, "mock-fast");
    const gw_deployment *smart = gw_config_deployment(cfg, "mock-smart");
    assert_non_null(fast);
    assert_non_null(smart);
    assert_int_equal(fast->mock_latency_ms, cfg->mock.latency_ms); /* inherited */
    assert_int_equal(smart->mock_latency_ms, 120);                 /* its own */
    assert_int_equal(smart->mock_chunk_delay_ms, cfg->mock.chunk_delay_ms);
    gw_config_free(cfg);
}

static void test_defaults(void **state)
{
    gw_config *def = NULL;
    assert_int_equal(gw_config_default(&def), GW_OK);
    assert_int_equal(def->deployment_count, 0);
    assert_string_equal(def->kafka.bootstrap, "127.0.0.1:9092");
    assert_null(def->kafka.group_instance_id);
    assert_int_equal(def->kafka.max_partition_runahead, 20000);
    assert_int_equal(def->worker.max_in_flight, 1024);
    assert_true(def->worker.low_share == 0.1);
    assert_int_equal(def->worker.max_tokens_limit, 32768);
    assert_false(def->worker.dev);
    assert_int_equal(def->state.backend, GW_CFG_STATE_REDIS);
    assert_int_equal(def->limits.on_limit, GW_CFG_ON_LIMIT_REJECT);
    assert_int_equal(def->failure_policy.limits, GW_CFG_FAIL_OPEN);
    assert_int_equal(def->log.level, GW_LOG_INFO);
    assert_int_equal(def->cache.store_finish_reason_count, 2);
    assert_string_equal(def->cache.store_finish_reasons[1], "length");
    assert_string_equal(def->cache.semantic.embedder, "hash");
    assert_null(def->redis.password_env);
    assert_null(def->redis.password);

    gw_config *min = load_ok(DATA "minimal.conf");
    assert_int_equal(min->worker.max_in_flight, def->worker.max_in_flight);
    assert_string_equal(min->redis.key_prefix, def->redis.key_prefix);
    const gw_deployment *d = &min->deployments[0];
    assert_string_equal(d->id, "m");
    assert_null(d->base_url);
    assert_null(d->api_key_env);
    assert_null(d->api_key);
    assert_int_equal(d->capability_count, 1);
    assert_string_equal(d->capabilities[0], "text");
    assert_int_equal(d->weight, 1);
    assert_int_equal(d->connect_timeout_ms, def->timeouts.connect_ms);
    assert_int_equal(d->total_timeout_ms, def->timeouts.total_ms);
    assert_string_equal(d->anthropic_version, "2023-06-01");
    gw_config_free(min);
    gw_config_free(def);
}

/* The dump's value of path ("a.b = value;") with list brackets, quotes and
 * spaces removed, into out. */
static bool dumped_value(const char *dump, const char *path, char *out, size_t outlen)
{
    char key[160];
    snprintf(key, sizeof(key), "\n%s = ", path);
    const char *v = strstr(dump, key);
    if (v == NULL)
        return false;
    v += strlen(key);
    size_t n = 0;
    for (; *v != ';' && *v != '\0' && n + 1 < outlen; v++)
        if (*v != '[' && *v != ']' && *v != '"' && *v != ' ')
            out[n++] = *v;
    out[n] = '\0';
    return true;
}

/* Every default the reference in docs/configuration.md shows is the value
 * gw_config_defaults() has (and so what every module gets without a file). */
static void test_defaults_match_docs(void **state)
{
    char *doc = read_text("docs/configuration.md");
    char *dump = dump_of(gw_config_defaults());
    const char *begin = strstr(doc, "<!-- BEGIN GENERATED REFERENCE -->");
    const char *end = strstr(doc, "<!-- END GENERATED REFERENCE -->");
    assert_non_null(begin);
    assert_non_null(end);
    size_t checked = 0;
    for (const char *line = strstr(begin, "\n| `"); line != NULL && line < end;
         line = strstr(line + 1, "\n| `")) {
        char path[128], cells[5][512];
        const char *p = line + 1;
        for (int c = 0; c < 5; c++) {
            const char *bar = strchr(p, '|');
            size_t len = (size_t)(strchr(bar + 1, '|') - bar - 1);
            snprintf(cells[c], sizeof(cells[c]), "%.*s", (int)len, bar + 1);
            p = bar + 1;
        }
        /* cells: path, type, range, default, doc; each with spaces around */
        snprintf(path, sizeof(path), "%.*s", (int)strcspn(cells[0] + 2, "`"), cells[0] + 2);
        const char *def = cells[3] + 1;
        if (strstr(path, "[]") != NULL || strncmp(def, "**required**", 12) == 0 ||
            strncmp(def, "from ", 5) == 0 || strstr(cells[1], "list of groups") != NULL)
            continue;
        char want[512], got[512];
        if (strncmp(def, "none", 4) == 0)
            want[0] = '\0';
        else
            snprintf(want, sizeof(want), "%.*s", (int)strcspn(def + 1, "`"), def + 1);
        /* strip the quotes of a string default */
        if (want[0] == '"') {
            memmove(want, want + 1, strlen(want));
            want[strlen(want) - 1] = '\0';
        }
        if (!dumped_value(dump, path, got, sizeof(got)))
            fail_msg("%s: documented but not in the dump", path);
        bool number = strstr(cells[1], "integer") != NULL || strstr(cells[1], "number") != NULL;
        bool same = number ? strtod(want, NULL) == strtod(got, NULL) : strcmp(want, got) == 0;
        if (!same)
            fail_msg("%s: docs/configuration.md says %s, the default is %s", path, want, got);
        checked++;
    }
    assert_true(checked > 100);
    /* A few that other modules used to repeat in code. */
    const gw_config *d = gw_config_defaults();
    assert_int_equal(d->routing.max_fallbacks, 3);
    assert_true(d->routing.w_latency == 1 && d->routing.w_cost == 1 && d->routing.w_quality == 1);
    assert_int_equal(d->retry.max_retry_after_ms, 10000);
    assert_int_equal(d->retry.max_total_attempts, 6);
    assert_int_equal(d->breaker.window_ms, 30000);
    assert_true(d->worker.normal_headroom == 0.10 && d->worker.low_headroom == 0.25);
    assert_ptr_equal(gw_config_defaults(), d); /* built once */
    free(dump);
    free(doc);
}

/* ---- errors ----------------------------------------------------------- */

typedef struct {
    const char *file;
    gw_err err;
    const char *message;
} error_case;

static const error_case error_cases[] = {
    {"unknown_top.conf", GW_E_CONFIG, DATA "unknown_top.conf:3: frobnicate: unknown setting"},
    {"unknown_section_key.conf", GW_E_CONFIG,
     DATA "unknown_section_key.conf:3: kafka.max_in_flght: unknown setting"},
    {"unknown_nested.conf", GW_E_CONFIG,
     DATA "unknown_nested.conf:5: cache.semantic.treshold: unknown setting"},
    {"unknown_in_list.conf", GW_E_CONFIG,
     DATA "unknown_in_list.conf:7: deployments[1].contxt_window: unknown setting"},
    {"unknown_in_list_group.conf", GW_E_CONFIG,
     DATA "unknown_in_list_group.conf:6: deployments[0].timeouts.totl_ms: unknown setting"},
    {"wrong_type.conf", GW_E_CONFIG,
     DATA "wrong_type.conf:2: worker.max_in_flight: expected an integer, got a string"},
    {"wrong_type_bool.conf", GW_E_CONFIG,
     DATA "wrong_type_bool.conf:2: cache.enabled: expected a boolean, got an integer"},
    {"wrong_type_float_for_int.conf", GW_E_CONFIG,
     DATA "wrong_type_float_for_int.conf:2: redis.port: expected an integer, got a float"},
    {"below_min.conf", GW_E_CONFIG,
     DATA "below_min.conf:4: worker.max_in_flight: 0 is below the minimum 1"},
    {"above_max.conf", GW_E_CONFIG,
     DATA "above_max.conf:2: redis.port: 70000 is above the maximum 65535"},
    {"double_out_of_range.conf", GW_E_CONFIG,
     DATA "double_out_of_range.conf:6: deployments[0].quality: 1.5 is above the maximum 1"},
    {"bad_enum.conf", GW_E_CONFIG,
     DATA "bad_enum.conf:2: kafka.framing: \"avro\" is not one of: auto, bare, single_object, "
          "confluent"},
    {"bad_provider.conf", GW_E_CONFIG,
     DATA "bad_provider.conf:2: deployments[0].provider: \"watsonx\" is not one of: mock, openai, "
          "anthropic, ollama, azure, bedrock, gemini"},
    {"duplicate_id.conf", GW_E_CONFIG,
     DATA "duplicate_id.conf:5: deployments[2].id: duplicate deployment \"gpt\" (also "
          "deployments[0])"},
    {"missing_required.conf", GW_E_CONFIG,
     DATA "missing_required.conf:2: deployments[0].model: required setting is missing"},
    {"missing_deployments.conf", GW_E_CONFIG,
     DATA "missing_deployments.conf: deployments: required setting is missing"},
    {"base_url_required.conf", GW_E_CONFIG,
     DATA "base_url_required.conf:2: deployments[0].base_url: required for provider \"openai\""},
    {"cross_setting.conf", GW_E_CONFIG,
     DATA "cross_setting.conf:3: breaker.open_base_ms: 90000 is above breaker.open_max_ms 60000"},
    {"syntax_error.conf", GW_E_CONFIG, DATA "syntax_error.conf:3: syntax error"},
    {"bad_list_item.conf", GW_E_CONFIG,
     DATA "bad_list_item.conf:2: deployments[0].capabilities: item 1: expected a string, got an "
          "integer"},
    {"does_not_exist.conf", GW_E_IO,
     DATA "does_not_exist.conf: cannot read: No such file or directory"},
};

static void test_error_messages(void **state)
{
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        char path[256], err[512] = "";
        gw_config *cfg = (gw_config *)&cfg; /* must be reset to NULL */
        snprintf(path, sizeof(path), DATA "%s", error_cases[i].file);
        gw_err e = gw_config_load(path, &cfg, err, sizeof(err));
        if (e != error_cases[i].err || strcmp(err, error_cases[i].message) != 0)
            fail_msg("%s:\n got      %s [%s]\n expected %s [%s]", error_cases[i].file, err,
                     gw_err_name(e), error_cases[i].message, gw_err_name(error_cases[i].err));
        assert_null(cfg);
    }
}

static void test_small_error_buffer(void **state)
{
    char err[8];
    gw_config *cfg = NULL;
    assert_int_equal(gw_config_load(DATA "unknown_top.conf", &cfg, err, sizeof(err)), GW_E_CONFIG);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_int_equal(gw_config_load(DATA "unknown_top.conf", &cfg, NULL, 0), GW_E_CONFIG);
}

/* ---- --set ------------------------------------------------------------ */

#define SETS(...)  ((const char *const[]){__VA_ARGS__})
#define NSETS(...) (sizeof(SETS(__VA_ARGS__)) / sizeof(const char *))
/* load_set(path, "a=1", "b=2", ...): path with those overrides, or fail. */
#define load_set(path, ...) load_set_n(path, SETS(__VA_ARGS__), NSETS(__VA_ARGS__))

static gw_config *load_set_n(const char *path, const char *const *sets, size_t n)
{
    char err[512] = "";
    gw_config *cfg = NULL;
    if (gw_config_load_with(path, sets, n, &cfg, err, sizeof(err)) != GW_OK)
        fail_msg("%s with %zu overrides: %s", path ? path : "(defaults)", n, err);
    assert_non_null(cfg);
    return cfg;
}

/* Loading path with the one override fails with exactly message. */
static void expect_set_error(const char *path, const char *assignment, const char *message)
{
    char err[512] = "";
    gw_config *cfg = (gw_config *)&cfg; /* must be reset to NULL */
    gw_err e = gw_config_load_with(path, &assignment, 1, &cfg, err, sizeof(err));
    if (e != GW_E_CONFIG || strcmp(err, message) != 0)
        fail_msg("--set %s:\n got      %s\n expected %s", assignment, err, message);
    assert_null(cfg);
}

static void test_set_scalars(void **state)
{
    gw_config *cfg = load_set("config/dev.conf", "kafka.bootstrap=10.0.0.5:9092",
                              " worker.max_in_flight = 10000 ", "worker.low_share=0.25",
                              "worker.dev=false", "cache.shared=true", "state.backend=redis",
                              "log.level=debug", "kafka.group_instance_id=\"worker-7\"",
                              "limits.default_tpm=3000000000", "cache.store_finish_reasons=stop",
                              "kafka.properties=fetch.wait.max.ms=10,socket.nagle.disable=true");
    assert_string_equal(cfg->kafka.bootstrap, "10.0.0.5:9092");
    assert_int_equal(cfg->worker.max_in_flight, 10000);
    assert_true(cfg->worker.low_share == 0.25);
    assert_false(cfg->worker.dev);
    assert_true(cfg->cache.shared);
    assert_int_equal(cfg->state.backend, GW_CFG_STATE_REDIS);
    assert_int_equal(cfg->log.level, GW_LOG_DEBUG);
    assert_string_equal(cfg->kafka.group_instance_id, "worker-7");
    assert_int_equal(cfg->limits.default_tpm, 3000000000LL);
    assert_int_equal(cfg->cache.store_finish_reason_count, 1);
    assert_int_equal(cfg->kafka.property_count, 2);
    assert_string_equal(cfg->kafka.properties[1], "socket.nagle.disable=true");
    gw_config_free(cfg);

    /* The last override of a setting wins; "" is "not set". */
    cfg =
        load_set("config/dev.conf", "kafka.group_instance_id=worker-7", "kafka.group_instance_id=");
    assert_null(cfg->kafka.group_instance_id);
    gw_config_free(cfg);
}

/* An override wins over the file; one on a setting the file leaves out
 * wins over the default; the rest of the file is untouched. */
static void test_set_layers(void **state)
{
    gw_config *file = load_ok("config/dev.conf");
    assert_int_equal(file->worker.max_in_flight, 256); /* the file's value */
    assert_int_equal(file->redis.port, 6379);          /* absent: the default */
    gw_config *cfg = load_set("config/dev.conf", "worker.max_in_flight=512", "redis.port=6380");
    assert_int_equal(cfg->worker.max_in_flight, 512);
    assert_int_equal(cfg->redis.port, 6380);
    assert_int_equal(cfg->worker.drain_timeout_ms, file->worker.drain_timeout_ms);
    assert_string_equal(cfg->redis.key_prefix, "modelgw-dev:");
    assert_string_equal(cfg->source, "config/dev.conf");
    gw_config_free(cfg);
    gw_config_free(file);

    /* Without a file: defaults, then the overrides. */
    cfg = load_set(NULL, "worker.max_in_flight=7", "worker.dev=true");
    assert_int_equal(cfg->worker.max_in_flight, 7);
    assert_true(cfg->worker.dev);
    assert_int_equal(cfg->deployment_count, 0);
    assert_int_equal(cfg->redis.port, gw_config_defaults()->redis.port);
    gw_config_free(cfg);

    /* deployments before the defaults they inherit: the order in the file
     * does not matter. A required setting may come from an override. */
    char path[] = "/tmp/modelgw-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("deployments = ( { id = \"a\"; provider = \"mock\"; } );\n"
          "timeouts: { total_ms = 70000; };\n",
          f);
    fclose(f);
    char err[512] = "";
    gw_config *bad = NULL;
    assert_int_equal(gw_config_load(path, &bad, err, sizeof(err)), GW_E_CONFIG);
    assert_non_null(strstr(err, ":1: deployments[0].model: required setting is missing"));
    cfg = load_set(path, "deployments[0].model=m1");
    assert_string_equal(cfg->deployments[0].model, "m1");
    assert_int_equal(cfg->deployments[0].total_timeout_ms, 70000);
    gw_config_free(cfg);
    unlink(path);
}

static void test_set_elements_and_inheritance(void **state)
{
    gw_config *cfg = load_set("config/dev.conf", "deployments[0].weight=5",
                              "deployments[mock-smart].quality=0.99",
                              "deployments[mock-fast].capabilities=text,code",
                              /* A default reaches every deployment that did not set its own. */
                              "mock.latency_ms=2000", "timeouts.total_ms=70000",
                              /* Set explicitly, a deployment keeps its own value. */
                              "deployments[mock-fast].mock.ttft_ms=3", "mock.ttft_ms=99");
    const gw_deployment *fast = gw_config_deployment(cfg, "mock-fast");
    const gw_deployment *smart = gw_config_deployment(cfg, "mock-smart");
    assert_int_equal(fast->weight, 5);
    assert_true(smart->quality == 0.99);
    assert_true(gw_deployment_has_capability(fast, "code"));
    assert_int_equal(fast->mock_latency_ms, 2000);
    assert_int_equal(smart->mock_latency_ms, 120);
    assert_int_equal(fast->total_timeout_ms, 70000);
    assert_int_equal(fast->mock_ttft_ms, 3);
    assert_int_equal(smart->mock_ttft_ms, 40);
    gw_config_free(cfg);

    /* An element renamed by index is then addressed by its new key. */
    cfg = load_set("config/dev.conf", "deployments[1].id=smart", "deployments[smart].weight=9");
    assert_int_equal(gw_config_deployment(cfg, "smart")->weight, 9);
    gw_config_free(cfg);

    cfg = load_set("config/modelgw.conf", "limits.default_rpm=77",
                   "limits.agents[did:example:batch-agent].tpm=5");
    int64_t rpm, tpm;
    gw_config_agent_limits(cfg, "did:example:batch-agent", &rpm, &tpm);
    assert_int_equal(rpm, 600); /* its own */
    assert_int_equal(tpm, 5);
    gw_config_agent_limits(cfg, "did:example:nobody", &rpm, &tpm);
    assert_int_equal(rpm, 77);
    gw_config_free(cfg);
}

static void test_set_errors(void **state)
{
    const char *dev = "config/dev.conf";
    expect_set_error(dev, "kafka.max_in_flght=3",
                     "--set kafka.max_in_flght=3: kafka.max_in_flght: unknown setting");
    expect_set_error(dev, "nothing", "--set nothing: expected setting=value");
    expect_set_error(dev, "worker.max_in_flight=0",
                     "--set worker.max_in_flight=0: worker.max_in_flight: 0 is below the minimum "
                     "1");
    expect_set_error(dev, "worker.max_in_flight=lots",
                     "--set worker.max_in_flight=lots: worker.max_in_flight: \"lots\" is not an "
                     "integer");
    expect_set_error(dev, "worker.low_share=2",
                     "--set worker.low_share=2: worker.low_share: 2 is above the maximum 1");
    expect_set_error(dev, "worker.low_share=abc",
                     "--set worker.low_share=abc: worker.low_share: \"abc\" is not a number");
    expect_set_error(dev, "worker.dev=maybe",
                     "--set worker.dev=maybe: worker.dev: \"maybe\" is not a boolean (true or "
                     "false)");
    expect_set_error(dev, "state.backend=etcd",
                     "--set state.backend=etcd: state.backend: \"etcd\" is not one of: redis, "
                     "memory");
    expect_set_error(
        dev, "kafka.bootstrap=", "--set kafka.bootstrap=: kafka.bootstrap: must not be empty");
    expect_set_error(dev, "deployments[7].weight=1",
                     "--set deployments[7].weight=1: deployments[7].weight: no element 7 (the "
                     "list has 2)");
    expect_set_error(dev, "deployments[gpt].weight=1",
                     "--set deployments[gpt].weight=1: deployments[gpt].weight: no deployment "
                     "\"gpt\"");
    expect_set_error(dev, "deployments[0].wieght=1",
                     "--set deployments[0].wieght=1: deployments[0].wieght: unknown setting");
    expect_set_error(dev, "deployments[mock-fast].weight=0",
                     "--set deployments[mock-fast].weight=0: deployments[0].weight: 0 is below "
                     "the minimum 1");
    expect_set_error(dev, "deployments[1].id=mock-fast",
                     "--set deployments[1].id=mock-fast: deployments[1].id: duplicate deployment "
                     "\"mock-fast\" (also deployments[0])");
    expect_set_error(dev, "deployments=x",
                     "--set deployments=x: deployments: is a list of groups; set one element's "
                     "setting, as deployments[<index or key>].<setting>");
    /* Rules across settings name the override that broke them, whichever side. */
    expect_set_error(dev, "breaker.open_base_ms=600000",
                     "--set breaker.open_base_ms=600000: breaker.open_base_ms: 600000 is above "
                     "breaker.open_max_ms 60000");
    expect_set_error(dev, "breaker.open_max_ms=10",
                     "--set breaker.open_max_ms=10: breaker.open_base_ms: 5000 is above "
                     "breaker.open_max_ms 10");
    expect_set_error(dev, "deployments[mock-fast].tls.key_file=config/dev.conf",
                     "--set deployments[mock-fast].tls.key_file=config/dev.conf: "
                     "deployments[0].tls.key_file: needs tls.cert_file");
    expect_set_error(dev, "deployments[mock-fast].http_version=3",
                     "--set deployments[mock-fast].http_version=3: deployments[0].http_version: "
                     "\"3\" is not one of: auto, 1.1");
    {
        const char *sets[] = {"kafka.transactional=true", "kafka.commit_interval_ms=60000"};
        char err[512] = "";
        gw_config *cfg = NULL;
        assert_int_equal(gw_config_load_with(dev, sets, 2, &cfg, err, sizeof(err)), GW_E_CONFIG);
        assert_string_equal(err, "--set kafka.commit_interval_ms=60000: "
                                 "kafka.transaction_timeout_ms: 60000 is not above "
                                 "kafka.commit_interval_ms 60000");
        assert_null(cfg);
    }
    expect_set_error(dev, "deployments[mock-fast].provider=openai",
                     "--set deployments[mock-fast].provider=openai: deployments[0].base_url: "
                     "required for provider \"openai\"");

    /* A bad file value is reported with its line when no override replaces it... */
    char err[512] = "";
    gw_config *cfg = NULL;
    const char *other = "redis.port=6380";
    assert_int_equal(gw_config_load_with(DATA "below_min.conf", &other, 1, &cfg, err, sizeof(err)),
                     GW_E_CONFIG);
    assert_string_equal(err, DATA "below_min.conf:4: worker.max_in_flight: 0 is below the "
                                  "minimum 1");
    /* ... and never read when one does. */
    const char *fix = "worker.max_in_flight=5";
    assert_int_equal(gw_config_load_with(DATA "below_min.conf", &fix, 1, &cfg, err, sizeof(err)),
                     GW_OK);
    assert_int_equal(cfg->worker.max_in_flight, 5);
    gw_config_free(cfg);
}

/* ---- secrets ---------------------------------------------------------- */

static void assert_no_secret(const char *text)
{
    assert_null(strstr(text, SECRET_KEY));
    assert_null(strstr(text, SECRET_PASSWORD));
    assert_null(strstr(text, "sk-live-0123456789abcdef"));
}

static void test_secrets(void **state)
{
    setenv("MODELGW_TEST_API_KEY", SECRET_KEY, 1);
    setenv("MODELGW_TEST_REDIS_PASSWORD", SECRET_PASSWORD, 1);
    unsetenv("MODELGW_TEST_UNSET_KEY");
    gw_config *cfg = load_ok(DATA "secrets.conf");
    const gw_deployment *gpt = gw_config_deployment(cfg, "gpt");
    assert_string_equal(gpt->api_key, SECRET_KEY);
    assert_string_equal(gpt->api_key_env, "MODELGW_TEST_API_KEY");
    assert_null(gw_config_deployment(cfg, "unset")->api_key);
    assert_string_equal(cfg->redis.password, SECRET_PASSWORD);

    char *dump = dump_of(cfg);
    assert_no_secret(dump);
    assert_non_null(strstr(dump, "MODELGW_TEST_API_KEY"));
    assert_non_null(strstr(dump, "# the variable is set"));
    assert_non_null(strstr(dump, "# the variable is not set"));
    free(dump);
    char *ref = reference_text();
    assert_no_secret(ref);
    free(ref);
    gw_config_free(cfg);

    char err[512];
    expect_set_error(DATA "secrets.conf", "deployments[gpt].weight=0",
                     "--set deployments[gpt].weight=0: deployments[0].weight: 0 is below the "
                     "minimum 1");
    /* A secret given where a variable name belongs is refused, never repeated. */
    const char *pasted = "deployments[gpt].api_key_env=" SECRET_KEY;
    assert_int_equal(gw_config_load_with(DATA "secrets.conf", &pasted, 1, &cfg, err, sizeof(err)),
                     GW_E_CONFIG);
    assert_no_secret(err);
    assert_string_equal(err, "--set deployments[gpt].api_key_env=(not shown): deployments[0]."
                             "api_key_env: must name an environment variable (letters, digits, "
                             "_); the secret itself never goes in the file");
    /* Pointing at another variable resolves that one. */
    setenv("MODELGW_TEST_OTHER_KEY", "other", 1);
    cfg = load_set(DATA "secrets.conf", "deployments[gpt].api_key_env=MODELGW_TEST_OTHER_KEY");
    assert_string_equal(gw_config_deployment(cfg, "gpt")->api_key, "other");
    gw_config_free(cfg);

    gw_config *bad = NULL;
    assert_int_equal(gw_config_load(DATA "secrets_bad.conf", &bad, err, sizeof(err)), GW_E_CONFIG);
    assert_string_equal(err, DATA "secrets_bad.conf:8: deployments[0].weight: 0 is below the "
                                  "minimum 1");
    assert_no_secret(err);
    /* A secret pasted into the file is refused without repeating it. */
    assert_int_equal(gw_config_load(DATA "secret_in_file.conf", &bad, err, sizeof(err)),
                     GW_E_CONFIG);
    assert_string_equal(err, DATA "secret_in_file.conf:7: deployments[0].api_key_env: must name "
                                  "an environment variable (letters, digits, _); the secret "
                                  "itself never goes in the file");
    assert_no_secret(err);
}

/* ---- the reference stays in sync -------------------------------------- */

/* Is path ("a.b" or "list[].x.y") set in the parsed reference file? */
static bool file_sets(const config_t *cf, const char *path)
{
    const char *br = strstr(path, "[].");
    if (br == NULL)
        return config_lookup(cf, path) != NULL;
    char list[128];
    snprintf(list, sizeof(list), "%.*s", (int)(br - path), path);
    const config_setting_t *l = config_lookup(cf, list);
    for (int i = 0; l != NULL && i < config_setting_length(l); i++)
        if (config_setting_lookup(config_setting_get_elem(l, (unsigned)i), br + 3) != NULL)
            return true;
    return false;
}

static void test_reference_in_sync(void **state)
{
    char *ref = reference_text();
    char *doc = read_text("docs/configuration.md");
    const char *begin = strstr(doc, "<!-- BEGIN GENERATED REFERENCE -->\n");
    const char *end = strstr(doc, "<!-- END GENERATED REFERENCE -->");
    assert_non_null(begin);
    assert_non_null(end);
    begin += strlen("<!-- BEGIN GENERATED REFERENCE -->\n");
    if ((size_t)(end - begin) != strlen(ref) || memcmp(begin, ref, strlen(ref)) != 0)
        fail_msg("docs/configuration.md is out of date; regenerate the table with "
                 "`test_config --print-reference`");

    config_t cf;
    config_init(&cf);
    assert_int_equal(config_read_file(&cf, "config/modelgw.conf"), CONFIG_TRUE);
    size_t rows = 0;
    for (const char *line = strstr(ref, "\n| `"); line != NULL; line = strstr(line, "\n| `")) {
        char path[128];
        line += 4;
        snprintf(path, sizeof(path), "%.*s", (int)strcspn(line, "`"), line);
        if (!file_sets(&cf, path))
            fail_msg("config/modelgw.conf does not show the setting %s", path);
        rows++;
    }
    assert_true(rows > 100);
    config_destroy(&cf);
    free(doc);
    free(ref);
}

/* A preset fills provider, base_url, api_key_env and quirks; keys the
 * deployment sets win; an unknown preset or quirk is a named error. */
static void test_presets(void **state)
{
    setenv("GROQ_API_KEY", "gk-test-key", 1);
    setenv("MODELGW_TEST_API_KEY", SECRET_KEY, 1);
    gw_config *cfg = load_ok(DATA "presets.conf");
    const gw_deployment *g = gw_config_deployment(cfg, "groq");
    assert_int_equal(g->preset, GW_PRESET_GROQ);
    assert_int_equal(g->provider, GW_PROVIDER_OPENAI);
    assert_string_equal(g->base_url, "https://api.groq.com/openai/v1");
    assert_string_equal(g->api_key_env, "GROQ_API_KEY");
    assert_string_equal(g->api_key, "gk-test-key");
    assert_string_equal(g->auth_header, "Authorization");
    assert_int_equal(g->openai_quirks, 0);
    const gw_deployment *m = gw_config_deployment(cfg, "mistral-proxy");
    assert_int_equal(m->provider, GW_PROVIDER_OPENAI);
    assert_string_equal(m->base_url, "http://127.0.0.1:18080");
    assert_string_equal(m->api_key_env, "MODELGW_TEST_API_KEY");
    assert_int_equal(m->openai_quirks, GW_QUIRK_RANDOM_SEED);
    const gw_deployment *l = gw_config_deployment(cfg, "local");
    assert_string_equal(l->base_url, "http://localhost:8000");
    assert_null(l->api_key_env);
    assert_null(l->api_key);
    const gw_deployment *p = gw_config_deployment(cfg, "plain");
    assert_int_equal(p->preset, GW_PRESET_NONE);
    assert_int_equal(p->openai_quirks, GW_QUIRK_NO_STREAM_OPTIONS | GW_QUIRK_MAX_COMPLETION_TOKENS);
    gw_config_free(cfg);

    /* The preset's quirks when the deployment lists none. */
    cfg = load_set(DATA "presets.conf", "deployments[local].preset=mistral");
    l = gw_config_deployment(cfg, "local");
    assert_string_equal(l->base_url, "https://api.mistral.ai");
    assert_string_equal(l->api_key_env, "MISTRAL_API_KEY");
    assert_int_equal(l->openai_quirks,
                     GW_QUIRK_NO_STREAM_OPTIONS | GW_QUIRK_RANDOM_SEED | GW_QUIRK_REQUIRED_AS_ANY);
    gw_config_free(cfg);
    cfg = load_set(DATA "presets.conf", "deployments[local].preset=deepseek");
    assert_int_equal(gw_config_deployment(cfg, "local")->openai_quirks, GW_QUIRK_NO_JSON_SCHEMA);
    gw_config_free(cfg);

    expect_set_error(DATA "presets.conf", "deployments[groq].preset=grok",
                     "--set deployments[groq].preset=grok: deployments[0].preset: \"grok\" is not "
                     "one of: none, openai, vllm, llamacpp, lmstudio, groq, mistral, together, "
                     "openrouter, deepseek");
    expect_set_error(DATA "presets.conf", "deployments[plain].quirks=no_seed",
                     "--set deployments[plain].quirks=no_seed: deployments[3].quirks: \"no_seed\" "
                     "is not one of: no_stream_options,random_seed,required_as_any,"
                     "max_completion_tokens,no_json_schema,no_json_object");
    expect_set_error(DATA "presets.conf", "deployments[plain].provider=anthropic",
                     "tests/data/config/presets.conf:26: deployments[3].quirks: quirks are for the "
                     "openai dialect (provider openai or azure), not \"anthropic\"");
    /* Without a preset, provider and base_url are required as before. */
    expect_set_error(DATA "presets.conf", "deployments[groq].preset=none",
                     "tests/data/config/presets.conf:3: deployments[0].provider: required setting "
                     "is missing");
}

/* The schema registry's output registration and TLS settings, and the rules
 * between them. */
static void test_schema_registry_rules(void **state)
{
    setenv("MODELGW_TEST_REGISTRY_KEY_PASSWORD", SECRET_PASSWORD, 1);
    gw_config *cfg =
        load_set("config/dev.conf", "schema_registry.url=\"https://registry:8081\"",
                 "schema_registry.register_outputs=true", "kafka.output_framing=\"confluent\"",
                 "schema_registry.tls.ca_file=\"/etc/ca.pem\"",
                 "schema_registry.tls.cert_file=\"/etc/client.pem\"",
                 "schema_registry.tls.key_file=\"/etc/client.key\"",
                 "schema_registry.tls.key_password_env=\"MODELGW_TEST_REGISTRY_KEY_PASSWORD\"",
                 "schema_registry.tls.verify=false");
    const gw_schema_registry_config *r = &cfg->schema_registry;
    assert_true(r->register_outputs);
    assert_int_equal(r->register_timeout_ms, 60000);
    assert_string_equal(r->tls_ca_file, "/etc/ca.pem");
    assert_string_equal(r->tls_cert_file, "/etc/client.pem");
    assert_string_equal(r->tls_key_file, "/etc/client.key");
    assert_string_equal(r->tls_key_password, SECRET_PASSWORD);
    assert_false(r->tls_verify);
    char *dump = dump_of(cfg);
    assert_no_secret(dump);
    free(dump);
    gw_config_free(cfg);
    assert_true(gw_config_defaults()->schema_registry.tls_verify);
    assert_false(gw_config_defaults()->schema_registry.register_outputs);

    expect_set_error("config/dev.conf", "schema_registry.register_outputs=true",
                     "--set schema_registry.register_outputs=true: "
                     "schema_registry.register_outputs: registering the output schemas needs "
                     "schema_registry.url");
    expect_set_error("config/dev.conf", "kafka.output_framing=\"confluent\"",
                     "--set kafka.output_framing=confluent: kafka.output_framing: confluent "
                     "output framing needs schema ids: set schema_registry.register_outputs = "
                     "true");
    expect_set_error("config/dev.conf", "schema_registry.tls.key_file=\"/k.pem\"",
                     "--set schema_registry.tls.key_file=/k.pem: schema_registry.tls.key_file: a "
                     "private key without its client certificate");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-reference") == 0) {
        gw_config_write_reference(stdout);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_file_loads),
        cmocka_unit_test(test_dev_file_loads),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_match_docs),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_set_scalars),
        cmocka_unit_test(test_set_layers),
        cmocka_unit_test(test_set_elements_and_inheritance),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_reference_in_sync),
        cmocka_unit_test(test_schema_registry_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
