#!/usr/bin/env python3
"""Breaks a `perf record --call-graph` profile of the worker down by component.

Usage: perf_breakdown.py PERF.DATA

Every sample is charged to the innermost frame of its call chain that matches
a rule below (so malloc called by curl_easy_setopt counts as curl setup, the
kernel's TCP send under curl_multi_socket_action as the curl transfer); the
"kernel" column is the part of each line whose leaf frame was in the kernel.
Threads other than the worker's main loop (librdkafka's broker threads,
libuv's pool) are listed by thread name.
"""
import collections
import re
import subprocess
import sys

RULES = [
    # (component, regex on the symbol), innermost match wins
    ("Avro encode", r"^(gw_codec_encode|gw_avro_write_record|avro_)"),
    ("Avro decode", r"^(gw_codec_decode|gw_avro_read_record)"),
    ("Kafka produce (main thread)", r"^(gw_producer_send|gw_producer_republish|rd_kafka_produce|rd_kafka_producev)"),
    ("request body build (gw_jbuf writer)", r"^(gw_jbuf_|gw_phttp_write_|write_body|write_sampling|write_message|write_tool|write_response_format)"),
    ("header lists, URL, options (provider side)", r"^(add_common_headers|gw_phttp_header|gw_phttp_auth|build_opts|header_slot)"),
    ("curl easy setup/reset (setopt, header list)", r"^(setup_easy|setup_headers|curl_easy_setopt|curl_easy_reset|curl_easy_init|easy_put|easy_get)"),
    ("SSE framing (sse, linebuf)", r"^(gw_sse_|gw_linebuf_|drain_sse|drain_ndjson)"),
    ("chunk coalescing (gw_job_on_delta)", r"^(gw_job_on_delta|gw_job_flush_chunk|publish_chunk_text|on_coalesce_timer)"),
    ("response parsing (jscan)", r"^(gw_jscan|apply_raw|parse_full_raw|on_event_raw|gw_phttp_text|gw_phttp_usage|gw_phttp_finish|gw_phttp_jstr)"),
    ("response parsing (jansson)", r"^(json_|jsonp_|lex_|parse_value|parse_object|hashtable_)"),
    ("provider call glue (on_data, on_http_done, judge)", r"^(on_data|on_http_done|judge|parse_full_body|gw_phttp_start|call_free|gw_phttp_)"),
    ("curl add/remove handle", r"^(curl_multi_add_handle|curl_multi_remove_handle)"),
    ("curl transfer (socket action: send, recv, HTTP parse)", r"^(curl_multi_socket_action)"),
    ("curl completion (info_read, getinfo)", r"^(curl_multi_info_read|curl_easy_getinfo|check_done|complete)$"),
    ("socket watch (on_socket, uv_poll)", r"^(on_socket|uv_poll_|on_poll_closed|uv__poll)"),
    ("http_client timers and bookkeeping", r"^(gw_http_|req_arm|req_release|req_alloc|req_recycle|feed_multi|on_req_timer|uv_timer_)"),
    ("worker pipeline (other gw_ code)", r"^(gw_|stage_|on_)"),
    ("librdkafka (main thread: poll, consume)", r"^rd_kafka"),
    ("event loop (epoll_wait, uv_run)", r"^(uv_run|uv__io_poll|epoll_wait)"),
]
RULES = [(name, re.compile(rx)) for name, rx in RULES]


def samples(path):
    p = subprocess.Popen(["perf", "script", "-i", path, "-F", "comm,tid,ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         errors="replace")
    head, frames = None, []
    for line in p.stdout:
        line = line.rstrip("\n")
        if not line.strip():
            if head is not None:
                yield head, frames
            head, frames = None, []
        elif head is None:
            head = line.strip()
        else:
            parts = line.strip().split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            m = re.match(r"(.*?) \((.*)\)$", rest)
            sym, dso = (m.group(1), m.group(2)) if m else (rest, "")
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            frames.append((sym, dso))
    if head is not None:
        yield head, frames
    p.wait()


def main():
    total = 0
    by = collections.Counter()
    kern = collections.Counter()
    for head, frames in samples(sys.argv[1]):
        total += 1
        comm = head.split()[0]
        leaf_kernel = bool(frames) and "kernel" in frames[0][1]
        if not comm.startswith("modelgw"):
            name = "other threads: " + re.sub(r"[0-9]+$", "", comm)
        else:
            name = None
            for sym, dso in frames:
                for cname, rx in RULES:
                    if rx.search(sym):
                        name = cname
                        break
                if name:
                    break
            if name is None:
                name = "unattributed (stack not unwound)"
        by[name] += 1
        if leaf_kernel:
            kern[name] += 1
    print(f"{total} samples")
    print(f"{'component':58} {'share':>7} {'of it kernel':>13}")
    for name, n in by.most_common():
        print(f"{name:58} {100.0 * n / total:6.1f}% {100.0 * kern[name] / total:12.1f}%")


if __name__ == "__main__":
    main()
