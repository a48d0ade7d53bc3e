#!/usr/bin/env node
// Closed-loop HTTP load for tools/bench/peers.sh: CONCURRENCY requests in
// flight on kept-alive connections until COUNT are answered; prints one JSON
// line (throughput from the first answer to the last, latency percentiles,
// errors). Streamed requests are read to their end ("data: [DONE]").
// Usage: node httpload.mjs URL COUNT CONCURRENCY stream|plain [HEADER=VALUE ...]
import http from 'node:http';

const [url, countS, concS, mode, ...hdrArgs] = process.argv.slice(2);
const count = parseInt(countS, 10), conc = parseInt(concS, 10), stream = mode === 'stream';
const u = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const headers = { 'content-type': 'application/json' };
for (const h of hdrArgs) {
  const i = h.indexOf('=');
  headers[h.slice(0, i)] = h.slice(i + 1);
}
let sent = 0, done = 0, errors = 0, firstErr = null, t0 = 0, tFirst = 0, tLast = 0;
const lat = [];

function body(i) {
  return JSON.stringify({
    model: 'bench-model', max_tokens: 16, stream,
    messages: [{ role: 'user', content: `peer bench prompt ${i} ` + 'x'.repeat(40) }],
  });
}

function one() {
  if (sent >= count) return;
  const i = sent++;
  const b = body(i);
  const start = process.hrtime.bigint();
  const req = http.request({
    host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
    headers: { ...headers, 'content-length': Buffer.byteLength(b) },
  }, (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d) => { text += d; });
    res.on('end', () => {
      const ok = res.statusCode === 200 && (stream ? text.includes('[DONE]') : text.includes('"choices"'));
      finish(start, ok, ok ? null : `${res.statusCode} ${text.slice(0, 200)}`);
    });
  });
  req.on('error', (e) => finish(start, false, String(e)));
  req.end(b);
}

function finish(start, ok, err) {
  const now = process.hrtime.bigint();
  if (!ok) { errors++; if (!firstErr) firstErr = err; }
  lat.push(Number(now - start) / 1e6);
  if (!tFirst) tFirst = now;
  tLast = now;
  done++;
  if (done === count) report(); else one();
}

function pct(p) {
  const s = lat.slice().sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(3);
}

function report() {
  const span = Number(tLast - tFirst) / 1e9;
  const wall = Number(tLast - t0) / 1e9;
  console.log(JSON.stringify({
    sent: count, answered: done - errors, errors, first_error: firstErr,
    elapsed_s: +wall.toFixed(3), throughput_rps: +((done - 1) / span).toFixed(1),
    latency_ms: { p50: pct(0.5), p99: pct(0.99), max: pct(1) }, concurrency: conc, stream,
  }));
  agent.destroy();
}

t0 = process.hrtime.bigint();
for (let k = 0; k < conc; k++) one();
