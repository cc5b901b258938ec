// ws_node_client.js: drives gatehouse's echo route with node's `ws` (the
// version pinned in tests/package.json). Called by test_ws_node.py as
//   node ws_node_client.js PORT SCENARIO
// and prints one JSON line with what it saw; exits non-zero on a mismatch.
'use strict';
const WebSocket = require('ws');
const crypto = require('crypto');

const port = process.argv[2];
const scenario = process.argv[3];
const base = `ws://127.0.0.1:${port}`;

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

function open(path, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, opts || {});
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => reject(new Error('status ' + res.statusCode)));
    ws.once('error', reject);
  });
}

function next(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
    ws.once('close', (code) => reject(new Error('closed ' + code)));
  });
}

function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

const scenarios = {
  async sizes() {
    const ws = await open('/ws/echo', { maxPayload: 4 << 20 });
    const sizes = [0, 125, 126, 65535, 65536, 1 << 20];
    for (const n of sizes) {
      const text = 'a'.repeat(n);
      ws.send(text);
      let m = await next(ws);
      if (m.isBinary || m.data.toString() !== text) fail('text ' + n);
      const bin = crypto.randomBytes(n);
      ws.send(bin);
      m = await next(ws);
      if (!m.isBinary || !Buffer.from(m.data).equals(bin)) fail('binary ' + n);
    }
    ws.close(1000);
    const c = await closed(ws);
    return { sizes: sizes.length, close: c.code };
  },

  async fragments() {
    const ws = await open('/ws/echo');
    ws.send('frag', { fin: false });
    ws.send('men', { fin: false });
    ws.send('ted ✓', { fin: true });
    let m = await next(ws);
    if (m.data.toString() !== 'fragmented ✓') fail('text fragments: ' + m.data);
    const parts = [crypto.randomBytes(70000), crypto.randomBytes(1), crypto.randomBytes(200)];
    ws.send(parts[0], { fin: false, binary: true });
    ws.send(parts[1], { fin: false, binary: true });
    ws.send(parts[2], { fin: true, binary: true });
    m = await next(ws);
    if (!Buffer.from(m.data).equals(Buffer.concat(parts))) fail('binary fragments');
    ws.close();
    await closed(ws);
    return { fragments: 'ok' };
  },

  async ping() {
    const ws = await open('/ws/echo');
    const payload = Buffer.from('node-ping');
    const pong = new Promise((resolve) => ws.once('pong', resolve));
    ws.ping(payload);
    const got = await pong;
    ws.close();
    await closed(ws);
    return { pong: got.toString() };
  },

  async closecodes() {
    const codes = [];
    for (const code of [1000, 1001, 3001, 4321]) {
      const ws = await open('/ws/echo');
      ws.close(code, 'bye');
      codes.push((await closed(ws)).code);
    }
    return { codes };
  },

  async toobig() {
    const ws = await open('/ws/small');
    ws.send('x'.repeat(1001));
    const c = await closed(ws);
    return { code: c.code };
  },

  async origin() {
    const out = {};
    try {
      await open('/ws/echo', { origin: 'https://evil.example' });
      out.evil = 'open';
    } catch (e) {
      out.evil = e.message;
    }
    const ws = await open('/ws/echo', { origin: `http://127.0.0.1:${port}` });
    out.same = 'open';
    ws.close();
    await closed(ws);
    return out;
  },

  async servers_ping() {
    // a route with a short ping_interval: ws answers pings by itself
    const ws = await open('/ws/ping');
    let pings = 0;
    ws.on('ping', () => { pings++; });
    await new Promise((r) => setTimeout(r, 1500));
    ws.send('alive');
    const m = await next(ws);
    ws.close();
    await closed(ws);
    return { pings, echo: m.data.toString() };
  },
};

(async () => {
  const fn = scenarios[scenario];
  if (!fn) fail('unknown scenario ' + scenario);
  const timer = setTimeout(() => fail('timeout'), 20000);
  try {
    const result = await fn();
    clearTimeout(timer);
    console.log(JSON.stringify(result));
    process.exit(0);
  } catch (e) {
    fail('error: ' + e.message);
  }
})();
