// ws_node_deflate_client.js: permessage-deflate against gatehouse's echo
// routes with node's `ws` (the version pinned in tests/package.json), the
// client most Node services use. Called by test_ws_deflate.py as
//   node ws_node_deflate_client.js PORT SCENARIO 'JSON ARGUMENT'
// and prints one JSON line with what it saw (the negotiated header of each
// connection, for the caller to compare with the spec); exits non-zero on
// an echo that does not match, or any error.
'use strict';
const WebSocket = require('ws');
const crypto = require('crypto');

const port = process.argv[2];
const scenario = process.argv[3];
const arg = JSON.parse(process.argv[4] || '{}');
const base = `ws://127.0.0.1:${port}`;

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

// Opens path; resolves with the socket and the Sec-WebSocket-Extensions
// header of the 101 (null when there is none).
function open(path, opts) {
  return new Promise((resolve, reject) => {
    let header = null;
    const ws = new WebSocket(base + path, { maxPayload: 4 << 20, ...opts });
    ws.once('upgrade', (res) => {
      const h = res.headers['sec-websocket-extensions'];
      header = h === undefined ? null : h;
    });
    ws.once('open', () => resolve({ ws, header }));
    ws.once('unexpected-response', (req, res) => reject(new Error('status ' + res.statusCode)));
    ws.once('error', reject);
  });
}

function next(ws) {
  return new Promise((resolve, reject) => {
    const onClose = (code) => reject(new Error('closed ' + code));
    ws.once('message', (data, isBinary) => {
      ws.off('close', onClose);
      resolve({ data, isBinary });
    });
    ws.once('close', onClose);
  });
}

function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

// Text that deflate shrinks but that is not one repeated byte: words from a
// small vocabulary, some of it non-ASCII, in a reproducible order; made
// once per (n, seed).
const wordyMade = new Map();
function wordy(n, seed) {
  const key = n + '/' + seed;
  if (!wordyMade.has(key))
    wordyMade.set(key, makeWordy(n, seed));
  return wordyMade.get(key);
}

function makeWordy(n, seed) {
  const words = ['gateway', 'frame', 'deflate', 'wörld', 'topic', 'message', 'héllo', '✓',
    'window', 'context', 'takeover', 'socket', 'zlib', 'rsv1', 'échelle'];
  const parts = [];
  let len = 0;
  let x = seed >>> 0 || 1;
  while (len < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = words[(x >>> 8) % words.length] + ' ';
    parts.push(w);
    len += Buffer.byteLength(w);
  }
  if (len > n)          // without its last word it is shorter than n: pad with ASCII
    len -= Buffer.byteLength(parts.pop());
  return parts.join('') + 'x'.repeat(n - len);
}

// Incompressible bytes, made once per length.
const randomMade = new Map();
function random(n) {
  if (!randomMade.has(n))
    randomMade.set(n, crypto.randomBytes(n));
  return randomMade.get(n);
}

// Sends each payload and checks its echo: type and bytes.
async function echoAll(ws, payloads, what) {
  for (const p of payloads) {
    ws.send(p);
    const m = await next(ws);
    if (typeof p === 'string') {
      if (m.isBinary || m.data.toString() !== p) fail(`${what}: text of ${Buffer.byteLength(p)} bytes came back wrong`);
    } else if (!m.isBinary || !Buffer.from(m.data).equals(p)) {
      fail(`${what}: binary of ${p.length} bytes came back wrong`);
    }
  }
}

const scenarios = {
  // One connection per parameter combination in arg.combos (each a
  // perMessageDeflate object, or false), each echoing short and long text
  // and binary (arg.big: a 1 MiB message too). Reports the headers.
  async matrix() {
    const out = [];
    for (const combo of arg.combos) {
      const pmd = combo === false ? false
        : { threshold: 0, zlibDeflateOptions: { level: 1 }, ...combo };
      const { ws, header } = await open(arg.path, { perMessageDeflate: pmd });
      const payloads = ['hi', '', wordy(200, 1), wordy(70 * 1000, 2), random(70 * 1000),
        Buffer.from(wordy(5000, 3)), random(3)];
      if (arg.big) payloads.push(wordy(1 << 20, 4), Buffer.from(wordy(1 << 20, 5)));
      await echoAll(ws, payloads, `${arg.path} ${JSON.stringify(combo)}`);
      const extensions = ws.extensions;
      ws.close(1000);
      const code = await closed(ws);
      out.push({ combo, header, extensions, close: code });
    }
    return { results: out };
  },

  // Messages of the given byte lengths (wordy text, and binary of the same
  // bytes) echoed on arg.path; the caller reads the metrics.
  async lengths() {
    const { ws, header } = await open(arg.path, {
      perMessageDeflate: { threshold: 0, zlibDeflateOptions: { level: 1 } },
    });
    const payloads = [];
    for (const n of arg.lengths) {
      payloads.push(wordy(n, n + 7));
      payloads.push(Buffer.from(wordy(n, n + 9)));
    }
    await echoAll(ws, payloads, arg.path);
    ws.close(1000);
    return { header, extensions: ws.extensions, close: await closed(ws), sent: payloads.length };
  },
};

(async () => {
  const fn = scenarios[scenario];
  if (!fn) fail('unknown scenario ' + scenario);
  const timer = setTimeout(() => fail('timeout'), 25000);
  try {
    const result = await fn();
    clearTimeout(timer);
    console.log(JSON.stringify(result));
    process.exit(0);
  } catch (e) {
    fail('error: ' + (e && e.stack ? e.stack : e));
  }
})();
