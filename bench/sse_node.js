// sse_node.js - the Node.js peer of bench/streams.py (node's own `http`, one process):
//   GET /        "Hello, World!"
//   GET /events  an event stream; every BENCH_EVERY_MS ms (default 100, 0: never) one
//                event goes to every open stream:
//                "data: <sequence number> <CLOCK_MONOTONIC ns of the broadcast>"
// as bench/streams_app.c does. PORT from the environment.
'use strict';
const http = require('http');

const port = Number(process.env.PORT || 8080);
const everyMs = Number(process.env.BENCH_EVERY_MS ?? 100);
const listeners = new Set();

function events(req, res) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  listeners.add(res);
  res.on('close', () => listeners.delete(res));
}

// process.hrtime is CLOCK_MONOTONIC on Linux, the clock the client reads
let seq = 0;
function broadcast() {
  const event = `data: ${++seq} ${process.hrtime.bigint()}\n\n`;
  for (const res of listeners) res.write(event);
}

const server = http.createServer((req, res) => {
  if (req.url === '/events') return events(req, res);
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 13 });
  res.end('Hello, World!');
});
server.keepAliveTimeout = 120000; // as the bench's nginx and microweb
server.listen(port, '127.0.0.1', 4096);
if (everyMs > 0) setInterval(broadcast, everyMs);
process.on('SIGTERM', () => process.exit(0));
