/*
 * modelgw-mockllm: a mock LLM server speaking the OpenAI, Anthropic and
 * Ollama dialects, with deterministic answers, configurable timing and fault
 * injection. See docs/mockllm.md.
 *
 * Prints "listening on HOST:PORT" on stdout once ready (port 0 picks a free
 * port, which tests use). SIGINT/SIGTERM close the server and exit 0.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mockllm/mllm_server.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: modelgw-mockllm [options]\n"
               "  --port N            listen port (default 18080; 0 picks a free port)\n"
               "  --host ADDR         IPv4 address to bind (default 127.0.0.1)\n"
               "  --config FILE       JSON config: timings, tokens, fault rules\n"
               "  --latency-ms N      delay before a non-streamed answer (default 0)\n"
               "  --ttft-ms N         delay before the first streamed token (default 0)\n"
               "  --token-delay-ms N  delay between streamed tokens (default 0)\n"
               "  --tokens N          words per answer (default 16; max_tokens cuts it)\n"
               "  --port-file FILE    write the bound port to FILE\n"
               "  --aws-secret-env VAR  verify Bedrock SigV4 signatures with the secret\n"
               "                      key in environment variable VAR (default: check\n"
               "                      only that a signature is there)\n"
               "  --help\n"
               "Faults per request: header x-mock-fault, model \"fault-<spec>\", prompt\n"
               "\"[mock-fault:<spec>]\" or config rules; see docs/mockllm.md.\n");
}

typedef struct {
    gw_mllm_server *srv;
    uv_signal_t sigint, sigterm;
} app;

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    if (a->srv != NULL) {
        gw_mllm_server_close(a->srv);
        a->srv = NULL;
    }
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static int parse_int(const char *s, const char *name)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000000) {
        fprintf(stderr, "modelgw-mockllm: invalid %s: %s\n", name, s);
        exit(2);
    }
    return (int)v;
}

static void parse_args(int argc, char **argv, gw_mllm_config *cfg, const char **host,
                       const char **port_file)
{
    static const struct option opts[] = {{"port", required_argument, 0, 'p'},
                                         {"host", required_argument, 0, 'H'},
                                         {"config", required_argument, 0, 'c'},
                                         {"latency-ms", required_argument, 0, 'l'},
                                         {"ttft-ms", required_argument, 0, 't'},
                                         {"token-delay-ms", required_argument, 0, 'd'},
                                         {"tokens", required_argument, 0, 'n'},
                                         {"port-file", required_argument, 0, 'f'},
                                         {"aws-secret-env", required_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    char err[512];
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            cfg->port = parse_int(optarg, "--port");
            break;
        case 'H':
            *host = optarg;
            break;
        case 'c':
            if (gw_mllm_config_load(cfg, optarg, err, sizeof err) != GW_OK) {
                fprintf(stderr, "modelgw-mockllm: %s\n", err);
                exit(2);
            }
            break;
        case 'l':
            cfg->latency_ms = parse_int(optarg, "--latency-ms");
            break;
        case 't':
            cfg->ttft_ms = parse_int(optarg, "--ttft-ms");
            break;
        case 'd':
            cfg->token_delay_ms = parse_int(optarg, "--token-delay-ms");
            break;
        case 'n':
            cfg->tokens = parse_int(optarg, "--tokens");
            break;
        case 'f':
            *port_file = optarg;
            break;
        case 'a':
            cfg->aws_secret = getenv(optarg);
            if (cfg->aws_secret == NULL || cfg->aws_secret[0] == '\0') {
                fprintf(stderr, "modelgw-mockllm: --aws-secret-env: %s is not set\n", optarg);
                exit(2);
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
}

int main(int argc, char **argv)
{
    gw_mllm_config cfg;
    gw_mllm_config_init(&cfg);
    const char *host = "127.0.0.1", *port_file = NULL;
    parse_args(argc, argv, &cfg, &host, &port_file);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    app a = {0};
    if (gw_mllm_server_new(loop, &cfg, host, &a.srv) != GW_OK) {
        fprintf(stderr, "modelgw-mockllm: cannot listen on %s:%d\n", host, cfg.port);
        return 1;
    }
    int port = gw_mllm_server_port(a.srv);
    if (port_file != NULL) {
        FILE *f = fopen(port_file, "w");
        if (f != NULL) {
            fprintf(f, "%d\n", port);
            fclose(f);
        }
    }
    printf("listening on %s:%d\n", host, port);
    fflush(stdout);
    uv_signal_init(loop, &a.sigint);
    uv_signal_init(loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    gw_mllm_config_cleanup(&cfg);
    return 0;
}
