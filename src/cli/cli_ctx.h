/*
 * cli_ctx: what every modelgw-cli command shares: where Kafka is, the topic
 * names, the codec, and the exit codes scripts rely on.
 *
 * Exit codes (docs/cli.md):
 *   0  success
 *   1  the request was answered with an error (ask), or some results of a
 *      batch are errors
 *   2  usage error (bad flags, invalid input lines)
 *   3  timeout: no (complete) answer in time
 *   4  Kafka or I/O failure
 */
#ifndef GW_CLI_CTX_H
#define GW_CLI_CTX_H

#include <stdbool.h>

#include "cli/cli_kafka.h"
#include "cli/cli_outputs.h"
#include "codec/codec.h"

enum {
    GW_CLI_EXIT_OK = 0,
    GW_CLI_EXIT_ANSWER_ERROR = 1,
    GW_CLI_EXIT_USAGE = 2,
    GW_CLI_EXIT_TIMEOUT = 3,
    GW_CLI_EXIT_KAFKA = 4,
};

typedef struct {
    char bootstrap[512];
    const char *bootstrap_source;
    gw_cli_topics topics;
    gw_codec *codec;
    gw_cli_outputs *outputs; /* reads outputs in any framing (set by the common flags) */
    gw_framing framing;      /* how requests are written */
    int kafka_timeout_ms;    /* metadata / watermark calls */
    int partitions;          /* for topics the CLI has to create */
    volatile int *stop;      /* set by SIGINT/SIGTERM */
} gw_cli_ctx;

typedef struct {
    const char *input;
    const char *output;
    const char *batch_id; /* NULL: generated, or taken from the state file */
    const char *agent;
    const char *priority;
    int ignore_model;
    int timeout_s; /* 0 = wait forever */
    int max_pending;
    int progress; /* -1 auto (isatty), 0 off, 1 on */
} gw_cli_batch_args;

/* `modelgw-cli batch`: returns an exit code. */
int gw_cli_batch_run(gw_cli_ctx *ctx, const gw_cli_batch_args *args);

#endif
