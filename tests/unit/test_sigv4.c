/* Unit tests for AWS SigV4 (provider/sigv4.c): AWS's get-vanilla test vector
 * and Bedrock requests whose expected signatures were computed by botocore's
 * SigV4Auth (the signer boto3 uses, which AWS accepts): an encoded model id
 * (its '%' encoded again in the canonical path), an ARN with a session
 * token, header values with runs of spaces; plus the URL split and what is
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "provider/sigv4.h"

#define KEY_ID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, v, sizeof(v) - 1                                                                        \
    }

static void test_aws_get_vanilla(void **state)
{
    (void)state;
    gw_sigv4_header hs[] = {H("host", "example.amazonaws.com"),
                            H("x-amz-date", "20150830T123600Z")};
    gw_sigv4_input in = {.method = "GET",
                         .path = "/",
                         .path_len = 1,
                         .headers = hs,
                         .header_count = 2,
                         .amz_date = "20150830T123600Z",
                         .region = "us-east-1",
                         .service = "service",
                         .key_id = KEY_ID,
                         .secret = SECRET};
    char auth[GW_SIGV4_AUTH_MAX];
    assert_int_equal(gw_sigv4_authorization(&in, auth, sizeof auth), GW_OK);
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                              "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                              "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    /* an empty path signs as "/" */
    in.path_len = 0;
    char sig[65];
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_OK);
    assert_string_equal(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_bedrock_vectors(void **state)
{
    (void)state;
    char date[GW_SIGV4_DATE_LEN + 1];
    gw_sigv4_amz_date(1714979289, date); /* 2024-05-06 07:08:09 UTC */
    assert_string_equal(date, "20240506T070809Z");
    static const char path[] = "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse";
    static const char body[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}";
    gw_sigv4_header hs[] = {H("host", "bedrock-runtime.us-east-1.amazonaws.com"),
                            {"x-amz-date", date, GW_SIGV4_DATE_LEN}};
    gw_sigv4_input in = {.method = "POST",
                         .path = path,
                         .path_len = sizeof path - 1,
                         .headers = hs,
                         .header_count = 2,
                         .payload = body,
                         .payload_len = sizeof body - 1,
                         .amz_date = date,
                         .region = "us-east-1",
                         .service = "bedrock",
                         .key_id = KEY_ID,
                         .secret = SECRET};
    char sig[65];
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_OK);
    assert_string_equal(sig, "05486ac126d048b921ff4441f8a749ff18fa6453372229df1e9af99ecdf834a5");

    /* an inference profile ARN, another region, a session token signed too */
    static const char arn[] =
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A1%3Ainference-profile%2Fx/converse-stream";
    gw_sigv4_header ht[] = {H("host", "127.0.0.1:8080"),
                            {"x-amz-date", date, 16},
                            H("x-amz-security-token", "SESSIONTOKEN")};
    in.path = arn;
    in.path_len = sizeof arn - 1;
    in.headers = ht;
    in.header_count = 3;
    in.payload = "{}";
    in.payload_len = 2;
    in.region = "us-west-2";
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_OK);
    assert_string_equal(sig, "76e2ca4d255de6117274b2936b99229b3d57aa604d5c2d9ff6f85711da9bf72c");

    /* more headers, a value with a run of spaces and a trailing one */
    static const char p3[] = "/model/m%3A0/converse";
    gw_sigv4_header hu[] = {H("amz-sdk-request", "attempt=1;  max=1 "),
                            H("content-type", "application/json"),
                            H("host", "127.0.0.1:8080"),
                            {"x-amz-date", date, 16}};
    in.path = p3;
    in.path_len = sizeof p3 - 1;
    in.headers = hu;
    in.header_count = 4;
    in.payload = "{\"a\":1}";
    in.payload_len = 7;
    in.region = "us-east-1";
    char auth[GW_SIGV4_AUTH_MAX];
    assert_int_equal(gw_sigv4_authorization(&in, auth, sizeof auth), GW_OK);
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/bedrock/"
                              "aws4_request, SignedHeaders=amz-sdk-request;content-type;host;"
                              "x-amz-date, Signature=2d505fe96a417715d5d1f5d47a9284c5fd53845b8d6"
                              "cc3c5ff43eb007677071d");
    assert_int_equal(gw_sigv4_authorization(&in, auth, 40), GW_E_LIMIT);
}

static void test_refused(void **state)
{
    (void)state;
    gw_sigv4_header sorted[] = {H("host", "h"), H("x-amz-date", "20240506T070809Z")};
    gw_sigv4_header unsorted[] = {H("x-amz-date", "20240506T070809Z"), H("host", "h")};
    gw_sigv4_header upper[] = {H("Host", "h"), H("x-amz-date", "20240506T070809Z")};
    gw_sigv4_input in = {.method = "POST",
                         .path = "/",
                         .path_len = 1,
                         .headers = sorted,
                         .header_count = 2,
                         .amz_date = "20240506T070809Z",
                         .region = "us-east-1",
                         .service = "bedrock",
                         .key_id = KEY_ID,
                         .secret = SECRET};
    char sig[65];
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_OK);
    in.query = "a=b";
    in.query_len = 3;
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_E_INVALID_REQUEST);
    in.query = NULL;
    in.headers = unsorted;
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_E_INVALID_REQUEST);
    in.headers = upper;
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_E_INVALID_REQUEST);
    in.headers = sorted;
    in.amz_date = "2024";
    assert_int_equal(gw_sigv4_signature(&in, sig), GW_E_INVALID_REQUEST);
}

static void test_url_parts(void **state)
{
    (void)state;
    char host[64];
    const char *path, *query;
    size_t pl;
    assert_int_equal(gw_sigv4_url_parts("https://bedrock-runtime.us-east-1.amazonaws.com:443/"
                                        "model/x/converse",
                                        host, sizeof host, &path, &pl, &query),
                     GW_OK);
    assert_string_equal(host, "bedrock-runtime.us-east-1.amazonaws.com");
    assert_int_equal(pl, strlen("/model/x/converse"));
    assert_null(query);
    assert_int_equal(gw_sigv4_url_parts("http://127.0.0.1:8080/model/x/converse?a=1", host,
                                        sizeof host, &path, &pl, &query),
                     GW_OK);
    assert_string_equal(host, "127.0.0.1:8080");
    assert_int_equal(pl, strlen("/model/x/converse"));
    assert_string_equal(query, "a=1");
    assert_int_equal(gw_sigv4_url_parts("http://h", host, sizeof host, &path, &pl, &query), GW_OK);
    assert_int_equal(pl, 0);
    assert_int_equal(gw_sigv4_url_parts("ftp://h/x", host, sizeof host, &path, &pl, &query),
                     GW_E_CONFIG);
    assert_int_equal(gw_sigv4_url_parts("http://u:p@h/x", host, sizeof host, &path, &pl, &query),
                     GW_E_CONFIG);
    assert_int_equal(
        gw_sigv4_url_parts("http://averyveryverylonghostname/x", host, 8, &path, &pl, &query),
        GW_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_get_vanilla),
        cmocka_unit_test(test_bedrock_vectors),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_url_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
