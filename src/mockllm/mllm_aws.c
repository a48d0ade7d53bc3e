/*
 * mllm_aws: the mock's Bedrock path and credential checks; see mllm_aws.h.
 */
#include "mockllm/mllm_aws.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "provider/sigv4.h"

const char *gw_mllm_aws_error_type(int status)
{
    switch (status) {
    case 400:
        return "ValidationException";
    case 401:
        return "UnrecognizedClientException";
    case 403:
        return "AccessDeniedException";
    case 404:
        return "ResourceNotFoundException";
    case 408:
        return "ModelTimeoutException";
    case 424:
        return "ModelErrorException";
    case 429:
        return "ThrottlingException";
    case 503:
        return "ServiceUnavailableException";
    default:
        return status >= 500 ? "InternalServerException" : "ValidationException";
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

bool gw_mllm_aws_path(const char *path, size_t len, gw_mllm_call *c)
{
    static const char pre[] = "/model/", conv[] = "/converse", stream[] = "/converse-stream";
    size_t pl = sizeof pre - 1, cl = sizeof conv - 1, sl = sizeof stream - 1;
    if (len <= pl || memcmp(path, pre, pl) != 0)
        return false;
    bool is_stream = len > pl + sl && memcmp(path + len - sl, stream, sl) == 0;
    size_t tail = is_stream ? sl : cl;
    if (!is_stream && (len <= pl + cl || memcmp(path + len - cl, conv, cl) != 0))
        return false;
    size_t at = 0;
    for (size_t i = pl; i < len - tail; i++) {
        char ch = path[i];
        if (ch == '/' || at + 1 >= sizeof c->model)
            return false;
        if (ch == '%' && i + 2 < len - tail && hexval(path[i + 1]) >= 0 &&
            hexval(path[i + 2]) >= 0) {
            ch = (char)(hexval(path[i + 1]) * 16 + hexval(path[i + 2]));
            i += 2;
        }
        c->model[at++] = ch;
    }
    c->model[at] = '\0';
    c->stream = is_stream;
    return at > 0;
}

/* The value after key ("Credential=") in an Authorization header, up to ','. */
static const char *auth_field(const char *a, size_t n, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    const char *p = memmem(a, n, key, kl);
    if (p == NULL)
        return NULL;
    p += kl;
    const char *end = memchr(p, ',', n - (size_t)(p - a));
    *len = end ? (size_t)(end - p) : n - (size_t)(p - a);
    return p;
}

typedef struct {
    char key_id[128], day[9], region[64], service[64];
    char names[GW_SIGV4_MAX_HEADERS][64];
    size_t count;
    char sig[65];
} sig_parts;

/* Credential=KEY/DAY/REGION/SERVICE/aws4_request, SignedHeaders=a;b,
 * Signature=HEX; false when malformed. */
static bool parse_auth(const char *a, size_t n, sig_parts *s)
{
    size_t cl = 0, hl = 0, sl = 0;
    const char *cred = auth_field(a, n, "Credential=", &cl);
    const char *hdrs = auth_field(a, n, "SignedHeaders=", &hl);
    const char *sig = auth_field(a, n, "Signature=", &sl);
    char c[512], h[1024];
    if (cred == NULL || hdrs == NULL || sig == NULL || sl != 64 || cl >= sizeof c || hl >= sizeof h)
        return false;
    memcpy(s->sig, sig, 64);
    s->sig[64] = '\0';
    snprintf(c, sizeof c, "%.*s", (int)cl, cred);
    char term[32];
    if (sscanf(c, "%127[^/]/%8[0-9]/%63[^/]/%63[^/]/%31s", s->key_id, s->day, s->region, s->service,
               term) != 5 ||
        strcmp(term, "aws4_request") != 0)
        return false;
    snprintf(h, sizeof h, "%.*s", (int)hl, hdrs);
    s->count = 0;
    for (char *save, *t = strtok_r(h, ";", &save); t != NULL; t = strtok_r(NULL, ";", &save)) {
        if (s->count == GW_SIGV4_MAX_HEADERS || strlen(t) >= sizeof s->names[0])
            return false;
        snprintf(s->names[s->count++], sizeof s->names[0], "%s", t);
    }
    return s->count > 0;
}

/* Recomputes the signature of r from the parts and secret. */
static bool signature_matches(const gw_mllm_req *r, const sig_parts *s, const char *date,
                              const char *secret)
{
    gw_sigv4_header hs[GW_SIGV4_MAX_HEADERS];
    for (size_t i = 0; i < s->count; i++) {
        size_t vl = 0;
        const char *v = gw_mllm_header_get(r, s->names[i], &vl);
        if (v == NULL)
            return false;
        hs[i] = (gw_sigv4_header){s->names[i], v, vl};
    }
    char method[16];
    snprintf(method, sizeof method, "%.*s", (int)r->method_len, r->method);
    gw_sigv4_input in = {.method = method,
                         .path = r->path,
                         .path_len = r->path_len,
                         .query = r->query,
                         .query_len = r->query_len,
                         .headers = hs,
                         .header_count = s->count,
                         .payload = r->body,
                         .payload_len = r->body_len,
                         .amz_date = date,
                         .region = s->region,
                         .service = s->service,
                         .key_id = s->key_id,
                         .secret = secret};
    char want[65];
    return gw_sigv4_signature(&in, want) == GW_OK && strcmp(want, s->sig) == 0;
}

int gw_mllm_aws_check(const gw_mllm_req *r, const char *secret, const char **type, char *why,
                      size_t len)
{
    static const char scheme[] = "AWS4-HMAC-SHA256 ";
    size_t an = 0, dn = 0;
    const char *a = gw_mllm_header_get(r, "authorization", &an);
    const char *d = gw_mllm_header_get(r, "x-amz-date", &dn);
    if (a != NULL && an > 7 && strncasecmp(a, "Bearer ", 7) == 0)
        return 0; /* a Bedrock API key */
    sig_parts s;
    char date[GW_SIGV4_DATE_LEN + 1];
    *type = "UnrecognizedClientException";
    if (a == NULL || d == NULL || dn != GW_SIGV4_DATE_LEN || an < sizeof scheme ||
        memcmp(a, scheme, sizeof scheme - 1) != 0 || !parse_auth(a, an, &s)) {
        snprintf(why, len,
                 "Missing or malformed SigV4 Authorization (AWS4-HMAC-SHA256 "
                 "Credential=...) or x-amz-date header");
        return 401;
    }
    memcpy(date, d, GW_SIGV4_DATE_LEN);
    date[GW_SIGV4_DATE_LEN] = '\0';
    bool host_signed = false;
    for (size_t i = 0; i < s.count; i++)
        host_signed = host_signed || strcmp(s.names[i], "host") == 0;
    *type = "InvalidSignatureException";
    if (memcmp(date, s.day, 8) != 0 || !host_signed) {
        snprintf(why, len, "The credential scope's date must be x-amz-date's and host signed");
        return 403;
    }
    if (secret != NULL && !signature_matches(r, &s, date, secret)) {
        snprintf(why, len,
                 "The request signature we calculated does not match the signature "
                 "you provided. Check your AWS Secret Access Key and signing method.");
        return 403;
    }
    return 0;
}
