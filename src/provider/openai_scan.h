/*
 * openai_scan: the fast path for OpenAI chat completions and their streamed
 * chunks (chat.completion.chunk), the events every OpenAI-compatible server
 * sends. One forward pass over the document that knows the few paths the
 * OpenAI dialect reads and only validates everything else.
 *
 * It answers exactly what gw_jscan answers for the same paths (listed at
 * gw_openai_field), or GW_JSCAN_FALLBACK for anything it does not expect: a
 * top level that is not an object, and every case where gw_jscan itself falls
 * back (syntax errors, what jansson rejects, a wanted key seen twice, an
 * escaped key, nesting beyond GW_JSCAN_MAX_DEPTH). The caller then runs
 * gw_jscan with the same paths, which may fall back to jansson in turn; so
 * on GW_JSCAN_OK the values are exactly those jansson would give.
 *
 * No I/O, no allocation; input bounded by the caller (it is one event).
 */
#ifndef GW_PROVIDER_OPENAI_SCAN_H
#define GW_PROVIDER_OPENAI_SCAN_H

#include "provider/jscan.h"

/* The fields, by index, and the gw_jscan path each stands for (MSG is the
 * caller's msg_key: "delta" in a chunk, "message" in a whole answer). */
typedef enum {
    GW_OAI_ERROR,      /* error */
    GW_OAI_CHOICE,     /* choices #0 */
    GW_OAI_MSG,        /* choices #0 MSG */
    GW_OAI_TEXT,       /* choices #0 MSG content */
    GW_OAI_FINISH,     /* choices #0 finish_reason */
    GW_OAI_PROMPT,     /* usage prompt_tokens */
    GW_OAI_COMPLETION, /* usage completion_tokens */
    GW_OAI_TOOLS,      /* choices #0 MSG tool_calls */
    GW_OAI__COUNT
} gw_openai_field;

enum { GW_OAI_PREFIX_MAX = 192 };

/*
 * What one event of a stream tells about the next: its opening bytes up to
 * the first wanted key of the top object (in a chunk: {"id":...,"object":...,
 * "created":...,"model":..., the same in every chunk of a stream), all
 * validated, none wanted. An event that opens with exactly these bytes is
 * read from there on: scanning is a function of the bytes read so far, so
 * the state there (inside the top object, after a comma, nothing found) is
 * the one the previous scan had. Only recorded when the first wanted key is
 * not the first member, after a scan that answered. Zero it before the first
 * event of a stream.
 */
typedef struct {
    char bytes[GW_OAI_PREFIX_MAX];
    size_t len; /* 0: none */
} gw_openai_prefix;

/*
 * Scan doc[0..len) and fill the kind, raw, raw_len, escaped and integer of
 * f[0..GW_OAI__COUNT) as gw_jscan would (paths are neither read nor
 * written). msg_key is neither "finish_reason" nor empty. prefix (may be
 * NULL) is used and updated as described above.
 */
gw_jscan_result gw_openai_scan(const char *doc, size_t len, const char *msg_key,
                               gw_jscan_field f[GW_OAI__COUNT], gw_openai_prefix *prefix);

#endif
