// uws.js: the uWebSockets.js peer that contrib/bench/ws.sh measures gatehouse
// against (@btc-vision/uwebsockets.js, a republished build of uWS.js; its
// prebuilt addon needs patch-uws.py on glibc < 2.38, which ws.sh runs). The
// same jobs as server.js and gatehouse's echo and pubsub plugins:
//
//   /ws/echo             every message comes back unchanged (text or binary)
//   /ws/pubsub?topic=T   a client joins topic T on open; every message it
//                        sends goes to every client on T, the sender included
//                        (app.publish, not ws.publish, which skips the sender)
//
//   node uws.js PORT [none|shared|dedicated]
//
// Compression (permessage-deflate, RFC 7692), uWS's own names:
//   none       DISABLED: the extension is never accepted
//   shared     SHARED_COMPRESSOR | SHARED_DECOMPRESSOR: one zlib stream for
//              all connections each way, so no context takeover either way
//              (uWS answers server_ and client_no_context_takeover)
//   dedicated  DEDICATED_COMPRESSOR_32KB | DEDICATED_DECOMPRESSOR_32KB: a
//              compressor and a decompressor with 32 KiB windows per
//              connection, context kept between messages
// When negotiated, every message is sent compressed (send/publish with
// compress = true), whatever its size, like node ws with threshold 0.
//
// Like gatehouse in the bench config: 64 KiB maxPayloadLength, any Origin,
// an 8 MiB backlog per connection (maxBackpressure; uWS skips a publish to a
// subscriber above it, so it must never be reached here), pings every 30 s
// or so (idleTimeout 32 s, sendPingsAutomatically), no access log. One
// thread: uWS runs its event loop in the main thread.
'use strict';

const uWS = require('@btc-vision/uwebsockets.js');

const port = Number(process.argv[2]);
const mode = process.argv[3] || 'none';
const modes = {
  none: uWS.DISABLED,
  shared: uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR,
  dedicated: uWS.DEDICATED_COMPRESSOR_32KB | uWS.DEDICATED_DECOMPRESSOR_32KB,
};
if (!Number.isInteger(port) || port < 1 || port > 65535 || !(mode in modes)) {
  process.stderr.write('usage: node uws.js PORT [none|shared|dedicated]\n');
  process.exit(2);
}
const compress = mode !== 'none';

const common = {
  compression: modes[mode],
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 8 * 1024 * 1024,
  closeOnBackpressureLimit: false,
  idleTimeout: 32,
  sendPingsAutomatically: true,
};

const app = uWS.App()
  .ws('/ws/echo', {
    ...common,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary, compress);
    },
  })
  .ws('/ws/pubsub', {
    ...common,
    upgrade: (res, req, context) => {
      const topic = req.getQuery('topic');
      if (!topic) {
        res.writeStatus('400 Bad Request').end();
        return;
      }
      res.upgrade({ topic },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context);
    },
    open: (ws) => {
      ws.subscribe(ws.getUserData().topic);
    },
    message: (ws, message, isBinary) => {
      app.publish(ws.getUserData().topic, message, isBinary, compress);
    },
  })
  .any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
  });

app.listen('127.0.0.1', port, (ls) => {
  if (!ls) {
    process.stderr.write(`uws.js: cannot listen on 127.0.0.1:${port}\n`);
    process.exit(1);
  }
  const v = JSON.parse(require('fs').readFileSync(require('path').join(__dirname,
    'node_modules/@btc-vision/uwebsockets.js/package.json'))).version;
  process.stderr.write(`uWebSockets.js ${v} listening on 127.0.0.1:${port} (compression: ${mode})\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
