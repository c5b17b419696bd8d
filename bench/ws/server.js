// server.js - the Node.js peer of bench/ws.py: the `ws` package's WebSocketServer on
// node's own `http`, one process, as bench/ws_app.c serves it:
//   GET /               "Hello, World!"
//   GET /ws/echo        every message sent back (text as text, binary as binary)
//   GET /ws/broadcast   every message sent to every connection of this path (the sender too)
// No permessage-deflate (ws's default for a server). PORT from the environment.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.env.PORT || 8080);
const echo = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });
const room = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });
const paths = { '/ws/echo': echo, '/ws/broadcast': room };

echo.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

// ws's own way: a send per client (each writes its frame header and the shared payload)
room.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    const options = { binary: isBinary };
    for (const client of room.clients) client.send(data, options);
  });
});

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 13 });
  res.end('Hello, World!');
});
server.on('upgrade', (req, socket, head) => {
  const wss = paths[req.url];
  if (!wss) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.keepAliveTimeout = 120000;
server.listen(port, '127.0.0.1', 4096);
process.on('SIGTERM', () => process.exit(0));
