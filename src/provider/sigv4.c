/*
 * sigv4: AWS Signature Version 4; see sigv4.h. Nothing is allocated: the
 * canonical request goes straight into an incremental SHA-256.
 */
#include "provider/sigv4.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/sha.h"

/* HMAC-SHA256 (RFC 2104) of msg under key. */
static void hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                        uint8_t out[32])
{
    uint8_t k[64] = {0}, pad[64], inner[32];
    if (key_len > 64) {
        gw_sha256 c;
        gw_sha256_init(&c);
        gw_sha256_update(&c, key, key_len);
        gw_sha256_final(&c, k);
    } else {
        memcpy(k, key, key_len);
    }
    gw_sha256 c;
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    gw_sha256_init(&c);
    gw_sha256_update(&c, pad, 64);
    gw_sha256_update(&c, msg, msg_len);
    gw_sha256_final(&c, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    gw_sha256_init(&c);
    gw_sha256_update(&c, pad, 64);
    gw_sha256_update(&c, inner, 32);
    gw_sha256_final(&c, out);
    memset(k, 0, sizeof k); /* the key is (derived from) the secret */
    memset(pad, 0, sizeof pad);
}

void gw_sigv4_amz_date(int64_t unix_s, char *out)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, GW_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static void put(gw_sha256 *c, const char *s)
{
    gw_sha256_update(c, s, strlen(s));
}

/* The path, every byte but unreserved ones and '/' as %XX. */
static void put_path(gw_sha256 *c, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n == 0)
        put(c, "/");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
                     ch == '/';
        char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
        gw_sha256_update(c, plain ? (const char *)&p[i] : e, plain ? 1 : 3);
    }
}

/* A header value trimmed, inner runs of spaces as one. */
static void put_value(gw_sha256 *c, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < n; i++) {
        bool space = v[i] == ' ' || v[i] == '\t';
        if (space && i > 0 && (v[i - 1] == ' ' || v[i - 1] == '\t'))
            continue;
        gw_sha256_update(c, space ? " " : &v[i], 1);
    }
}

static bool headers_ok(const gw_sigv4_input *in)
{
    if (in->header_count == 0 || in->header_count > GW_SIGV4_MAX_HEADERS)
        return false;
    for (size_t i = 0; i < in->header_count; i++) {
        const char *n = in->headers[i].name;
        if (n == NULL || n[0] == '\0' || strpbrk(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ:; \t") != NULL)
            return false;
        if (i > 0 && strcmp(in->headers[i - 1].name, n) >= 0)
            return false; /* sorted, no duplicates */
    }
    return true;
}

static void put_signed_names(gw_sha256 *c, const gw_sigv4_input *in)
{
    for (size_t i = 0; i < in->header_count; i++) {
        if (i > 0)
            put(c, ";");
        put(c, in->headers[i].name);
    }
}

/* The hex SHA-256 of the canonical request. */
static void canonical_hash(const gw_sigv4_input *in, char hex_out[65])
{
    gw_sha256 c;
    uint8_t h[32];
    gw_sha256_init(&c);
    gw_sha256_update(&c, in->payload ? in->payload : "", in->payload_len);
    gw_sha256_final(&c, h);
    char payload_hex[65];
    gw_hex(h, 32, payload_hex);
    gw_sha256_init(&c);
    put(&c, in->method);
    put(&c, "\n");
    put_path(&c, in->path, in->path_len);
    put(&c, "\n\n"); /* the empty canonical query */
    for (size_t i = 0; i < in->header_count; i++) {
        put(&c, in->headers[i].name);
        put(&c, ":");
        put_value(&c, in->headers[i].value, in->headers[i].value_len);
        put(&c, "\n");
    }
    put(&c, "\n");
    put_signed_names(&c, in);
    put(&c, "\n");
    put(&c, payload_hex);
    gw_sha256_final(&c, h);
    gw_hex(h, 32, hex_out);
}

gw_err gw_sigv4_signature(const gw_sigv4_input *in, char sig_hex[65])
{
    if ((in->query != NULL && in->query_len > 0) || !headers_ok(in) || in->amz_date == NULL ||
        strlen(in->amz_date) != GW_SIGV4_DATE_LEN || in->secret == NULL || in->region == NULL ||
        in->service == NULL || in->method == NULL)
        return GW_E_INVALID_REQUEST;
    char creq[65], scope[256], sts[512];
    canonical_hash(in, creq);
    int n = snprintf(scope, sizeof scope, "%.8s/%s/%s/aws4_request", in->amz_date, in->region,
                     in->service);
    if (n < 0 || (size_t)n >= sizeof scope)
        return GW_E_INVALID_REQUEST;
    n = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope, creq);
    if (n < 0 || (size_t)n >= sizeof sts)
        return GW_E_INVALID_REQUEST;
    size_t sts_len = (size_t)n;
    uint8_t k[32], k2[32];
    char first[160];
    n = snprintf(first, sizeof first, "AWS4%s", in->secret);
    if (n < 0 || (size_t)n >= sizeof first)
        return GW_E_INVALID_REQUEST;
    hmac_sha256((const uint8_t *)first, (size_t)n, in->amz_date, 8, k);
    memset(first, 0, sizeof first);
    hmac_sha256(k, 32, in->region, strlen(in->region), k2);
    hmac_sha256(k2, 32, in->service, strlen(in->service), k);
    hmac_sha256(k, 32, "aws4_request", 12, k2);
    hmac_sha256(k2, 32, sts, sts_len, k);
    gw_hex(k, 32, sig_hex);
    memset(k, 0, sizeof k);
    memset(k2, 0, sizeof k2);
    return GW_OK;
}

gw_err gw_sigv4_authorization(const gw_sigv4_input *in, char *out, size_t len)
{
    char sig[65];
    gw_err err = gw_sigv4_signature(in, sig);
    if (err != GW_OK)
        return err;
    int n =
        snprintf(out, len, "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=",
                 in->key_id ? in->key_id : "", in->amz_date, in->region, in->service);
    if (n < 0 || (size_t)n >= len)
        return GW_E_LIMIT;
    size_t at = (size_t)n;
    for (size_t i = 0; i < in->header_count; i++) {
        n = snprintf(out + at, len - at, "%s%s", i ? ";" : "", in->headers[i].name);
        if (n < 0 || (size_t)n >= len - at)
            return GW_E_LIMIT;
        at += (size_t)n;
    }
    n = snprintf(out + at, len - at, ", Signature=%s", sig);
    return n < 0 || (size_t)n >= len - at ? GW_E_LIMIT : GW_OK;
}

gw_err gw_sigv4_url_parts(const char *url, char *host, size_t host_len, const char **path,
                          size_t *path_len, const char **query)
{
    const char *p;
    const char *dflt;
    if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        dflt = ":443";
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        dflt = ":80";
    } else {
        return GW_E_CONFIG;
    }
    size_t hl = strcspn(p, "/?#");
    const char *at = memchr(p, '@', hl);
    if (at != NULL || hl == 0)
        return GW_E_CONFIG; /* no credentials in the URL */
    size_t dl = strlen(dflt);
    size_t keep = hl > dl && memcmp(p + hl - dl, dflt, dl) == 0 ? hl - dl : hl;
    if (keep + 1 > host_len)
        return GW_E_CONFIG;
    memcpy(host, p, keep);
    host[keep] = '\0';
    *path = p + hl;
    *path_len = strcspn(*path, "?#");
    *query = (*path)[*path_len] == '?' ? *path + *path_len + 1 : NULL;
    return GW_OK;
}
