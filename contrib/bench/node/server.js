// server.js: the node `ws` 8 peer that contrib/bench/ws.sh measures gatehouse
// against. It does the same two jobs as gatehouse's echo and pubsub plugins:
//
//   /ws/echo             every message comes back unchanged (text or binary)
//   /ws/pubsub?topic=T   a client joins topic T on open; every message it
//                        sends goes to every client on T, the sender included
//
//   node server.js PORT [send|frame] [deflate]
//
// Broadcast: by default (`send`) the idiomatic way from the ws README,
// client.send(data, { binary }) for each subscriber: ws frames the message
// for each one (a small header buffer plus the shared payload, corked into
// one write). `frame` is the hand-tuned variant: WebSocket.Sender.frame()
// once, then the same buffers written to each subscriber's socket, skipping
// ws's per-send bookkeeping (it relies on the private `_socket`, which is
// only safe here because permessage-deflate is off, so ws never queues).
//
// `deflate` turns permessage-deflate (RFC 7692) on with ws's own defaults
// but { threshold: 0 }, so every message is compressed whatever its size,
// like gatehouse with compression_threshold: 0 and uWS: context takeover
// both ways (ws keeps a zlib stream per connection each way), level
// Z_DEFAULT_COMPRESSION, ws's limit of 10 concurrent zlib jobs. A broadcast
// then compresses once per subscriber (each has its own context). Not with
// `frame`, which writes to the socket behind ws's back.
//
// Otherwise like gatehouse in the bench config: 64 KiB maxPayload, any
// Origin accepted, listen backlog 1024, no access log.
'use strict';

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2]);
const mode = process.argv[3] || 'send';
const deflate = process.argv[4] === 'deflate';
if (!Number.isInteger(port) || port < 1 || port > 65535 || !['send', 'frame'].includes(mode) ||
    (process.argv[4] !== undefined && !deflate) || (deflate && mode === 'frame')) {
  process.stderr.write('usage: node server.js PORT [send|frame] [deflate]  (not frame with deflate)\n');
  process.exit(2);
}

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  maxPayload: 64 * 1024,
  clientTracking: false,
});

const topics = new Map();   // name -> Set of WebSocket

function broadcast(set, data, isBinary) {
  if (mode === 'frame') {
    const list = WebSocket.Sender.frame(data, {
      fin: true, rsv1: false, opcode: isBinary ? 2 : 1, mask: false, readOnly: false,
    });
    for (const c of set) {
      if (c.readyState !== WebSocket.OPEN) continue;
      const s = c._socket;
      s.cork();
      for (const b of list) s.write(b);
      s.uncork();
    }
    return;
  }
  for (const c of set) {
    if (c.readyState === WebSocket.OPEN) c.send(data, { binary: isBinary });
  }
}

function onEcho(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
}

function onPubsub(ws, topic) {
  let set = topics.get(topic);
  if (set === undefined) {
    set = new Set();
    topics.set(topic, set);
  }
  set.add(ws);
  ws.on('message', (data, isBinary) => broadcast(set, data, isBinary));
  ws.on('error', () => {});
  ws.on('close', () => {
    set.delete(ws);
    if (set.size === 0 && topics.get(topic) === set) topics.delete(topic);
  });
}

function refuse(socket, status) {
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Length': '0' });
  res.end();
});

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  let url;
  try {
    url = new URL(req.url, 'http://localhost');
  } catch (e) {
    refuse(socket, 400);
    return;
  }
  if (url.pathname === '/ws/echo') {
    wss.handleUpgrade(req, socket, head, onEcho);
  } else if (url.pathname === '/ws/pubsub') {
    const topic = url.searchParams.get('topic');
    if (!topic) {
      refuse(socket, 400);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onPubsub(ws, topic));
  } else {
    refuse(socket, 404);
  }
});

server.listen(port, '127.0.0.1', 1024, () => {
  process.stderr.write(`node ws ${require('ws/package.json').version} listening on 127.0.0.1:${port} ` +
    `(broadcast: ${mode}, permessage-deflate: ${deflate ? 'on' : 'off'})\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
