/*
 * ratelimit: the rate-limit headers of provider responses, parsed without
 * I/O (feed header lines, read the fields), for the adaptive concurrency cap
 * of src/route/aimd.h.
 *
 * Recognised (names case-insensitive):
 *   OpenAI / Azure:  x-ratelimit-{limit,remaining,reset}-{requests,tokens};
 *                    resets are durations such as "1s", "6m0s", "20ms",
 *                    "1h2m3.5s" (a bare number is seconds).
 *   Anthropic:       anthropic-ratelimit-{requests,tokens,input-tokens,
 *                    output-tokens}-{limit,remaining,reset}; resets are
 *                    RFC 3339 times (2026-12-04T17:12:13Z), turned into ms
 *                    from now. Input/output token limits count as tokens
 *                    (the lower remaining share wins).
 * Values are bounded (at most 15 digits, durations under a day); anything
 * else is ignored, never an error. A zero-initialised gw_ratelimit has no
 * field present.
 */
#ifndef GW_PROVIDER_RATELIMIT_H
#define GW_PROVIDER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    GW_RL_LIMIT_REQ = 1u << 0,
    GW_RL_REMAIN_REQ = 1u << 1,
    GW_RL_RESET_REQ = 1u << 2,
    GW_RL_LIMIT_TOK = 1u << 3,
    GW_RL_REMAIN_TOK = 1u << 4,
    GW_RL_RESET_TOK = 1u << 5,
};

typedef struct {
    uint32_t have; /* GW_RL_* bits of the fields present */
    int64_t limit_requests, remaining_requests, reset_requests_ms;
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
} gw_ratelimit;

/* Feed one header line ("Name: value", CRLF allowed). now_unix_ms turns
 * Anthropic reset times into durations. Returns true when it was one of the
 * recognised headers with a valid value. */
bool gw_ratelimit_header(gw_ratelimit *rl, const char *line, size_t n, int64_t now_unix_ms);

/* "6m0s", "20ms", "1h2m3.5s", "1.5s", "7" (seconds) -> ms; -1 if invalid. */
int64_t gw_ratelimit_parse_duration_ms(const char *v, size_t n);

/* The smallest remaining/limit share among requests and tokens, in [0, 1];
 * a remaining count of 0 without a limit is 0; -1 when nothing tells. */
double gw_ratelimit_remaining_share(const gw_ratelimit *rl);

/* The reset time (ms from the response) of the scarcer resource, -1 when unknown. */
int64_t gw_ratelimit_reset_ms(const gw_ratelimit *rl);

#endif
