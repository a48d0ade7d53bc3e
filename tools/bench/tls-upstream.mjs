// tls-upstream.mjs: a small OpenAI-dialect upstream over TLS that offers
// HTTP/2 (ALPN h2) and HTTP/1.1 on one port, for what modelgw-mockllm cannot
// serve: TLS with a private CA and HTTP/2. Used by tools/bench/http2.sh and
// tests/integration/test_provider_tls.py.
//
//   node tls-upstream.mjs --cert C --key K [--port 0] [--port-file F] [--tokens 16]
//
// POST /v1/chat/completions answers `tokens` words (SSE when "stream": true,
// with usage in the last event). GET /stats: {"requests": {"2.0": n, "1.1": m},
// "tls_connections": k}: which HTTP versions the calls used and how many
// TLS connections carried them.
import fs from 'node:fs';
import http2 from 'node:http2';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const tokens = Number(args.tokens || 16);
const words = Array.from({length: tokens}, (_, i) => 'tok' + i);
const stats = {requests: {}, tls_connections: 0};
const MAX_BODY = 1 << 20;

function chunk(model, delta, finish, usage) {
  const c = {id: 'up-1', object: 'chat.completion.chunk', created: 0, model,
             choices: [{index: 0, delta, finish_reason: finish}]};
  if (usage) c.usage = usage;
  return 'data: ' + JSON.stringify(c) + '\n\n';
}

function answer(req, res, body) {
  let j;
  try { j = JSON.parse(body); } catch { j = null; }
  if (!j || !Array.isArray(j.messages)) {
    res.writeHead(400, {'content-type': 'application/json'});
    res.end('{"error":{"message":"bad request","type":"invalid_request_error"}}');
    return;
  }
  const usage = {prompt_tokens: 10, completion_tokens: tokens, total_tokens: 10 + tokens};
  if (j.stream) {
    res.writeHead(200, {'content-type': 'text/event-stream'});
    let out = chunk(j.model, {role: 'assistant', content: ''}, null);
    for (const w of words) out += chunk(j.model, {content: ' ' + w}, null);
    out += chunk(j.model, {}, 'stop', usage) + 'data: [DONE]\n\n';
    res.end(out);
    return;
  }
  res.writeHead(200, {'content-type': 'application/json'});
  res.end(JSON.stringify({id: 'up-1', object: 'chat.completion', created: 0, model: j.model,
    choices: [{index: 0, message: {role: 'assistant', content: words.join(' ')}, finish_reason: 'stop'}],
    usage}));
}

const server = http2.createSecureServer({
  key: fs.readFileSync(args.key), cert: fs.readFileSync(args.cert), allowHTTP1: true,
  settings: {maxConcurrentStreams: 1000},
}, (req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify(stats));
    return;
  }
  stats.requests[req.httpVersion] = (stats.requests[req.httpVersion] || 0) + 1;
  let body = '';
  req.setEncoding('utf8');
  req.on('data', d => { body += d; if (body.length > MAX_BODY) req.destroy(); });
  req.on('end', () => answer(req, res, body));
});
server.on('secureConnection', () => { stats.tls_connections++; });
server.listen(Number(args.port || 0), '127.0.0.1', () => {
  const port = server.address().port;
  if (args['port-file']) fs.writeFileSync(args['port-file'], String(port));
  console.log(`tls-upstream listening on ${port}`);
});
process.on('SIGTERM', () => process.exit(0));
