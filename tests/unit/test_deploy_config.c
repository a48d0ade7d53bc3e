/*
 * Tests of config/docker.conf, the worker configuration of the docker-compose
 * fleet: it must load with the real loader (src/config) and say what the
 * compose services expect (Kafka at kafka:9092, Redis at redis:6379, the
 * admin endpoint reachable from other containers, one deployment per dialect
 * served by modelgw-mockllm at mockllm:18080, shared Redis state).
 *
 * Run from the source tree (ctest does; MODELGW_SOURCE_DIR is honoured).
 *
 * Second use, by tests/integration/test_deploy_static.py: given arguments
 *   test_deploy_config [--file PATH] --set key=value [--set key=value]...
 * it loads the file (default config/docker.conf) with every override
 * exactly as the worker's --set does, prints the effective admin, Kafka and
 * Redis settings and every deployment's base_url as "key=value" lines and
 * exits 0, or prints the loader's error
 * and exits 2. The static deployment test feeds it the --set arguments of the
 * compose worker command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

#define DOCKER_CONF "config/docker.conf"
#define MOCKLLM_URL "http://mockllm:18080"
#define TEST_KEY    "sk-deploy-test-KEY-31337"

static const char *conf_path(char *buf, size_t len)
{
    const char *src = getenv("MODELGW_SOURCE_DIR");
    if (src == NULL || *src == '\0')
        return DOCKER_CONF;
    snprintf(buf, len, "%s/%s", src, DOCKER_CONF);
    return buf;
}

static gw_config *load_docker_conf(void)
{
    char path[4096], err[512] = "";
    gw_config *cfg = NULL;
    gw_err e = gw_config_load(conf_path(path, sizeof path), &cfg, err, sizeof err);
    if (e != GW_OK)
        fail_msg("%s: %s", path, err);
    assert_non_null(cfg);
    return cfg;
}

static void test_loads_for_the_fleet(void **state)
{
    (void)state;
    gw_config *cfg = load_docker_conf();
    assert_string_equal(cfg->kafka.bootstrap, "kafka:9092");
    assert_false(cfg->worker.dev);
    assert_int_equal(cfg->state.backend, GW_CFG_STATE_REDIS);
    assert_string_equal(cfg->redis.host, "redis");
    assert_int_equal(cfg->redis.port, 6379);
    assert_true(cfg->redis.expected_workers >= 1);
    /* Prometheus scrapes from another container: not loopback, and on. */
    assert_string_equal(cfg->admin.listen, "0.0.0.0");
    assert_true(cfg->admin.port > 0);
    /* Static membership needs one id per replica; --scale cannot give that. */
    assert_true(cfg->kafka.group_instance_id == NULL || cfg->kafka.group_instance_id[0] == '\0');
    /* The drain must fit in compose's stop_grace_period (30 s). */
    assert_true(cfg->worker.drain_timeout_ms < 30000);
    assert_false(cfg->log.debug_content);
    gw_config_free(cfg);
}

static void test_topics_are_the_created_ones(void **state)
{
    (void)state;
    gw_config *cfg = load_docker_conf();
    /* kafka-init in docker-compose.yml creates exactly these names. */
    assert_string_equal(cfg->kafka.topics.high, "llm.requests.high");
    assert_string_equal(cfg->kafka.topics.normal, "llm.requests.normal");
    assert_string_equal(cfg->kafka.topics.low, "llm.requests.low");
    assert_string_equal(cfg->kafka.topics.responses, "llm.responses");
    assert_string_equal(cfg->kafka.topics.chunks, "llm.chunks");
    assert_string_equal(cfg->kafka.topics.usage, "llm.usage");
    assert_string_equal(cfg->kafka.topics.dlq, "llm.dlq");
    gw_config_free(cfg);
}

static void test_one_mockllm_deployment_per_dialect(void **state)
{
    (void)state;
    gw_config *cfg = load_docker_conf();
    bool seen[GW_PROVIDER__COUNT] = {false};
    assert_true(cfg->deployment_count >= 3);
    for (size_t i = 0; i < cfg->deployment_count; i++) {
        const gw_deployment *d = &cfg->deployments[i];
        assert_non_null(d->base_url);
        assert_string_equal(d->base_url, MOCKLLM_URL);
        assert_true(d->capability_count > 0);
        seen[d->provider] = true;
    }
    assert_true(seen[GW_PROVIDER_OPENAI]);
    assert_true(seen[GW_PROVIDER_ANTHROPIC]);
    assert_true(seen[GW_PROVIDER_OLLAMA]);
    gw_config_free(cfg);
}

/* Keys come from the environment variable the file names, never the file. */
static void test_api_keys_from_environment(void **state)
{
    (void)state;
    assert_int_equal(setenv("OPENAI_API_KEY", TEST_KEY, 1), 0);
    gw_config *cfg = load_docker_conf();
    const gw_deployment *d = gw_config_deployment(cfg, "mock-openai");
    assert_non_null(d);
    assert_string_equal(d->api_key_env, "OPENAI_API_KEY");
    assert_non_null(d->api_key);
    assert_string_equal(d->api_key, TEST_KEY);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    gw_config_dump(cfg, f);
    fclose(f);
    assert_null(strstr(text, TEST_KEY));
    free(text);
    gw_config_free(cfg);
    unsetenv("OPENAI_API_KEY");
}

/* The overrides docker-compose.yml passes with their default values. */
static void test_compose_overrides_apply(void **state)
{
    (void)state;
    static const char *const sets[] = {
        "kafka.bootstrap=kafka:9092", "redis.host=redis", "redis.expected_workers=4",
        "worker.max_in_flight=1024",  "log.level=info",
    };
    char path[4096], err[512] = "";
    gw_config *cfg = NULL;
    if (gw_config_load_with(conf_path(path, sizeof path), sets, sizeof sets / sizeof sets[0], &cfg,
                            err, sizeof err) != GW_OK)
        fail_msg("%s with the compose overrides: %s", path, err);
    assert_string_equal(cfg->redis.host, "redis");
    assert_int_equal(cfg->redis.expected_workers, 4);
    gw_config_free(cfg);
    const char *bad = "admin.port=70000";
    err[0] = '\0';
    assert_int_equal(gw_config_load_with(path, &bad, 1, &cfg, err, sizeof err), GW_E_CONFIG);
    assert_string_equal(err,
                        "--set admin.port=70000: admin.port: 70000 is above the maximum 65535");
    assert_null(cfg);
}

/* Command-line mode: load, apply --set arguments, print the effective values. */
static int check_mode(int argc, char **argv)
{
    char pathbuf[4096], err[512] = "";
    const char *path = conf_path(pathbuf, sizeof pathbuf);
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--file") == 0) {
        path = argv[i + 1];
        i += 2;
    }
    const char **sets = calloc((size_t)argc, sizeof *sets);
    size_t n = 0;
    for (; sets != NULL && i < argc; i += 2) {
        if (strcmp(argv[i], "--set") != 0 || i + 1 >= argc) {
            fprintf(stderr, "usage: test_deploy_config [--file PATH] [--set key=value]...\n");
            free(sets);
            return 2;
        }
        sets[n++] = argv[i + 1];
    }
    gw_config *cfg = NULL;
    gw_err e =
        sets != NULL ? gw_config_load_with(path, sets, n, &cfg, err, sizeof err) : GW_E_NOMEM;
    free(sets);
    if (e != GW_OK) {
        fprintf(stderr, "%s\n", err[0] ? err : gw_strerror(e));
        return 2;
    }
    printf("admin.listen=%s\nadmin.port=%d\nkafka.bootstrap=%s\nredis.host=%s\n"
           "redis.port=%d\n",
           cfg->admin.listen, (int)cfg->admin.port, cfg->kafka.bootstrap, cfg->redis.host,
           (int)cfg->redis.port);
    for (size_t d = 0; d < cfg->deployment_count; d++)
        printf("deployments[%s].base_url=%s\n", cfg->deployments[d].id,
               cfg->deployments[d].base_url ? cfg->deployments[d].base_url : "");
    gw_config_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return check_mode(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_for_the_fleet),
        cmocka_unit_test(test_topics_are_the_created_ones),
        cmocka_unit_test(test_one_mockllm_deployment_per_dialect),
        cmocka_unit_test(test_api_keys_from_environment),
        cmocka_unit_test(test_compose_overrides_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
