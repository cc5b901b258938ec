// chat.e2e.js: two people chat through the page in a real browser.
//
// Headless Debian chromium driven by playwright-core (no downloaded
// browser). Two pages in two browser contexts (two people: separate
// storage, one desktop and one phone-sized) open E2E_URL, join E2E_ROOM
// with two nicks, and talk both ways; the text carries HTML that must be
// shown as text, never run. Screenshots go to E2E_SHOTS (a folder). Then
// one leaves, and the gateway is restarted (we print RESTART and wait for a
// line on stdin): the other page must reconnect by itself. One JSON line on
// stdout reports what was seen; any failure exits 1.
//
// Run by test_chat_browser.py, which sets up gatehouse behind HAProxy.
'use strict';

const path = require('path');
const { launch, check, tid } = require('./common');

const URL_ = process.env.E2E_URL;
const ROOM = process.env.E2E_ROOM || 'e2e';
const SHOTS = process.env.E2E_SHOTS;
const TIMEOUT = 20000;

// What the browser's network stack saw of the page's WebSockets, through the
// Chrome DevTools Protocol: the Sec-WebSocket-Extensions of each 101 (to
// prove permessage-deflate was negotiated end to end, through HAProxy), and
// the text frames received. CDP shows payloads decompressed: that they are
// compressed on the wire the runner reads from gatehouse's metrics.
async function watchWebSockets(page, nick, seen) {
  const cdp = await page.context().newCDPSession(page);
  const urls = new Map();
  cdp.on('Network.webSocketCreated', (e) => urls.set(e.requestId, e.url));
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    const h = e.response.headers || {};
    const key = Object.keys(h).find((k) => k.toLowerCase() === 'sec-websocket-extensions');
    seen.handshakes.push({ nick, url: urls.get(e.requestId) || null, status: e.response.status,
      extensions: key === undefined ? null : h[key] });
  });
  cdp.on('Network.webSocketFrameReceived', (e) => {
    if (e.response.opcode === 1)
      seen.frames.push({ nick, text: e.response.payloadData });
  });
  await cdp.send('Network.enable');
}

async function openPerson(browser, nick, viewport, seen) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  await watchWebSockets(page, nick, seen);
  page.on('websocket', (ws) => seen.sockets.push(ws.url()));
  page.on('pageerror', (e) => seen.errors.push(nick + ': ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') seen.console.push(nick + ': ' + m.text()); });
  await page.goto(URL_, { waitUntil: 'load' });
  await page.fill(tid('room-input'), ROOM);
  await page.fill(tid('nick-input'), nick);
  await page.click(tid('join-button'));
  await page.waitForSelector(tid('state') + '[data-state="online"]');
  return { ctx, page };
}

async function waitForMessage(page, from, text) {
  await page.waitForFunction(([f, t]) => {
    for (const li of document.querySelectorAll('[data-testid="message"]')) {
      const fe = li.querySelector('.from');
      const te = li.querySelector('.text');
      if (fe && te && fe.textContent === f && te.textContent === t)
        return true;
    }
    return false;
  }, [from, text]);
}

// The next line the runner writes to our stdin.
function nextLine() {
  return new Promise((resolve) => {
    let buf = '';
    const on = (d) => {
      buf += d;
      if (buf.includes('\n')) {
        process.stdin.off('data', on);
        process.stdin.pause();
        resolve(buf.split('\n')[0]);
      }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', on);
    process.stdin.resume();
  });
}

async function users(page) {
  return page.$$eval(tid('users') + ' li', (lis) => lis.map((li) => li.textContent));
}

async function main() {
  check(URL_, 'E2E_URL is set');
  check(SHOTS, 'E2E_SHOTS is set');
  const seen = { sockets: [], errors: [], console: [], handshakes: [], frames: [] };
  const browser = await launch();
  try {
    const ann = await openPerson(browser, 'ann', { width: 1100, height: 700 }, seen);
    const bob = await openPerson(browser, 'bob', { width: 390, height: 760 }, seen);

    // both see both in the user list
    await ann.page.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid="users"] li')].some((li) => li.textContent === 'bob'));
    check(JSON.stringify(await users(bob.page)) === '["ann","bob"]', 'bob sees ann and bob');
    check(await bob.page.textContent(tid('my-nick')) === 'bob', 'bob is bob');

    // ann types and presses Enter; the HTML in it is text on both pages
    const hostile = 'hi bob <img src=x onerror="window.__pwned=1"><b>not bold</b> & ✓';
    await ann.page.fill(tid('text-input'), hostile);
    await ann.page.press(tid('text-input'), 'Enter');
    await waitForMessage(bob.page, 'ann', hostile);
    await waitForMessage(ann.page, 'ann', hostile);
    check(await ann.page.inputValue(tid('text-input')) === '', 'the input is cleared after sending');
    for (const p of [ann.page, bob.page]) {
      check(await p.$$eval(tid('messages') + ' img, ' + tid('messages') + ' b', (e) => e.length) === 0,
        'user text made no elements');
      check(await p.evaluate(() => window.__pwned === undefined), 'user text ran no script');
    }

    // bob answers from the phone-sized page
    await bob.page.fill(tid('text-input'), 'hello ann, from a small screen');
    await bob.page.press(tid('text-input'), 'Enter');
    await waitForMessage(ann.page, 'bob', 'hello ann, from a small screen');

    // a long message, as pasted text is: over gatehouse's compression
    // threshold, so it reaches bob compressed (the runner checks the
    // metrics) and the browser inflates it
    const LONG = ('The gateway compresses what it sends with permessage-deflate, and the ' +
      'browser inflates it before the page sees a byte of it. ').repeat(8) + '✓ end';
    await ann.page.fill(tid('text-input'), LONG);
    await ann.page.press(tid('text-input'), 'Enter');
    await waitForMessage(bob.page, 'ann', LONG);
    check(seen.frames.some((f) => f.nick === 'bob' && f.text.includes(LONG)),
      'bob\'s browser received the long message whole');

    // no horizontal scrolling on the phone-sized page
    check(await bob.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'the page fits a 390px screen');

    const protocol = await ann.page.evaluate(() => location.protocol);
    const shots = [path.join(SHOTS, 'e2e-chat-ann.png'), path.join(SHOTS, 'e2e-chat-bob.png')];
    await ann.page.screenshot({ path: shots[0], fullPage: true });
    await bob.page.screenshot({ path: shots[1], fullPage: true });

    // bob leaves: ann is told and the list shrinks
    await bob.ctx.close();
    await ann.page.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid="users"] li')].every((li) => li.textContent !== 'bob'));
    check(JSON.stringify(await users(ann.page)) === '["ann"]', 'ann is alone again');

    // the gateway restarts (the runner does it when asked on stdout): the
    // page notices, backs off, reconnects and is welcomed again
    const before = seen.sockets.length;
    await ann.page.evaluate(() => {
      const el = document.querySelector('[data-testid="state"]');
      window.__states = [];
      new MutationObserver(() => window.__states.push(el.dataset.state))
        .observe(el, { attributes: true, attributeFilter: ['data-state'] });
    });
    console.log('RESTART');
    await nextLine();
    // offline (backing off) at some point, then online again
    await ann.page.waitForFunction(() => {
      const s = window.__states;
      const off = s.indexOf('offline');
      return off >= 0 && s.lastIndexOf('online') > off &&
        document.querySelector('[data-testid="state"]').dataset.state === 'online';
    }, null, { timeout: 60000 });
    check(seen.sockets.length > before, 'a new WebSocket after the restart');
    check(JSON.stringify(await users(ann.page)) === '["ann"]', 'ann is back, alone');
    await ann.page.fill(tid('text-input'), 'still here');
    await ann.page.press(tid('text-input'), 'Enter');
    await waitForMessage(ann.page, 'ann', 'still here');

    check(seen.errors.length === 0, 'no page errors: ' + seen.errors.join('; '));
    check(seen.console.length === 0, 'no console errors: ' + seen.console.join('; '));
    console.log(JSON.stringify({ ok: true, protocol, sockets: seen.sockets, screenshots: shots,
      browser: browser.version(), handshakes: seen.handshakes, framesReceived: seen.frames.length }));
    await ann.ctx.close();
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
