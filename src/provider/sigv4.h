/*
 * sigv4: AWS Signature Version 4 for one HTTP request, computed here (no I/O,
 * no allocation, no clock: the caller gives the time).
 *
 * Why not libcurl's CURLOPT_AWS_SIGV4: the canonical request of every AWS
 * service but S3 holds the path URI-encoded a second time (a model id's ':'
 * travels as %3A and is signed as %253A), and libcurl 7.88 signs the path as
 * sent, so AWS would refuse every Bedrock model id with a ':' (nearly all of
 * them) with a signature mismatch. Measured: for one request curl's
 * signature differed from botocore's; this module's equals botocore's
 * (tests/unit/test_sigv4.c).
 *
 * The canonical request is hashed as it is produced: method, the path with
 * every byte but unreserved ones and '/' percent-encoded (so an encoded path
 * is encoded twice), the canonical query (only an empty one is supported),
 * the signed headers (lower-case names in order, values trimmed with inner
 * runs of spaces collapsed), their names joined by ';', and the hex SHA-256
 * of the payload. The signing key is the HMAC-SHA256 chain over the date,
 * region, service and "aws4_request".
 */
#ifndef GW_PROVIDER_SIGV4_H
#define GW_PROVIDER_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum {
    GW_SIGV4_DATE_LEN = 16, /* 20240506T070809Z */
    GW_SIGV4_MAX_HEADERS = 16,
    GW_SIGV4_AUTH_MAX = 1024,
};

typedef struct {
    const char *name; /* lower-case */
    const char *value;
    size_t value_len;
} gw_sigv4_header;

typedef struct {
    const char *method;
    const char *path; /* as sent: already percent-encoded once */
    size_t path_len;
    const char *query; /* as sent; must be empty (NULL or len 0) */
    size_t query_len;
    const gw_sigv4_header
        *headers; /* the signed ones, sorted by name; host and x-amz-date among them */
    size_t header_count;
    const char *payload;
    size_t payload_len;
    const char *amz_date; /* GW_SIGV4_DATE_LEN characters */
    const char *region, *service;
    const char *key_id, *secret;
} gw_sigv4_input;

/* The x-amz-date of a time (UTC) into out (GW_SIGV4_DATE_LEN + 1 bytes). */
void gw_sigv4_amz_date(int64_t unix_s, char *out);

/* The hex signature (65 bytes with the NUL) of in. GW_E_INVALID_REQUEST for
 * a query, headers out of order or not lower-case, a bad date, too many
 * headers. */
gw_err gw_sigv4_signature(const gw_sigv4_input *in, char sig_hex[65]);

/* The whole Authorization value: "AWS4-HMAC-SHA256 Credential=KEY/DATE/
 * REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=HEX".
 * GW_E_LIMIT when it does not fit in len. */
gw_err gw_sigv4_authorization(const gw_sigv4_input *in, char *out, size_t len);

/* Splits an http(s) URL into the Host header value (host[:port], the port
 * left out when it is the scheme's default) and the path (up to '?'), and
 * the query after it (NULL when none). GW_E_CONFIG when it is not one. */
gw_err gw_sigv4_url_parts(const char *url, char *host, size_t host_len, const char **path,
                          size_t *path_len, const char **query);

#endif
