// ws_node_echo_server.js: a node `ws` echo server (tests/package.json), the
// upstream of test_upstream.py's tunnel test. Usage: node ws_node_echo_server.js PORT
// Prints "listening" once it accepts; echoes every message with its type.
'use strict';
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2]) });
wss.on('listening', () => console.log('listening'));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
