// flask-chat.e2e.js: contrib/examples/flask-chat in a real browser.
//
// Headless Debian chromium driven by playwright-core (no downloaded
// browser). The page (E2E_URL, https through HAProxy and gatehouse to
// Flask) is opened in two tabs; ann and bob join and talk both ways through
// the WebSocket tunnel to server.py; the text carries HTML that must be
// shown as text. /whoami is fetched from the page, once plainly and once
// with a forged X-Forwarded-For and X-Real-IP. A third tab opens
// E2E_HTTP_URL (plain http) and must be redirected (301) to https.
// Screenshots go to E2E_SHOTS (a folder). One JSON line on stdout reports
// what was seen; any failure exits 1.
//
// Run by test_flask_chat_browser.py, which starts the apps, gatehouse and HAProxy.
'use strict';

const path = require('path');
const { launch, check, tid } = require('./common');

const URL_ = process.env.E2E_URL;
const HTTP_URL = process.env.E2E_HTTP_URL;
const SHOTS = process.env.E2E_SHOTS;
const TIMEOUT = 15000;

async function newTab(ctx, name, seen) {
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('websocket', (ws) => seen.sockets.push(ws.url()));
  page.on('pageerror', (e) => seen.errors.push(name + ': ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') seen.console.push(name + ': ' + m.text()); });
  return page;
}

async function join(page, nick) {
  const resp = await page.goto(URL_, { waitUntil: 'load' });
  check(resp && resp.status() === 200, nick + ': the page loads (' + (resp && resp.status()) + ')');
  await page.fill(tid('nick-input'), nick);
  await page.click(tid('join-button'));
  await page.waitForSelector(tid('state') + '[data-state="online"]');
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

async function whoami(page, headers) {
  return page.evaluate(async (h) => {
    const r = await fetch('/whoami', { cache: 'no-store', headers: h });
    if (r.status !== 200)
      throw new Error('/whoami: ' + r.status);
    return r.json();
  }, headers);
}

async function main() {
  check(URL_ && HTTP_URL, 'E2E_URL and E2E_HTTP_URL are set');
  check(SHOTS, 'E2E_SHOTS is set');
  const seen = { sockets: [], errors: [], console: [] };
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 800, height: 700 } });
    const ann = await newTab(ctx, 'ann', seen);
    const bob = await newTab(ctx, 'bob', seen);
    await join(ann, 'ann');
    await join(bob, 'bob');
    const protocol = await ann.evaluate(() => location.protocol);

    // ann sees bob join: the broadcast reached the other tab
    await ann.waitForFunction(() => [...document.querySelectorAll('[data-testid="message"]')]
      .some((li) => li.textContent === 'bob joined'));

    // ann -> bob, HTML in it shown as text on both tabs
    const hostile = 'hi bob <img src=x onerror="window.__pwned=1"><b>not bold</b> & ✓';
    await ann.fill(tid('text-input'), hostile);
    await ann.press(tid('text-input'), 'Enter');
    await waitForMessage(bob, 'ann', hostile);
    await waitForMessage(ann, 'ann', hostile);
    check(await ann.inputValue(tid('text-input')) === '', 'the input is cleared after sending');
    for (const p of [ann, bob]) {
      check(await p.$$eval(tid('messages') + ' img, ' + tid('messages') + ' b', (e) => e.length) === 0,
        'user text made no elements');
      check(await p.evaluate(() => window.__pwned === undefined), 'user text ran no script');
    }

    // bob -> ann, with the Send button
    await bob.fill(tid('text-input'), 'hello ann');
    await bob.click(tid('send-button'));
    await waitForMessage(ann, 'bob', 'hello ann');

    // what Flask was told about us, plainly and with forged fields
    await ann.waitForFunction(() =>
      document.querySelector('[data-testid="whoami"]').textContent !== '…');
    const pageWhoami = await ann.textContent(tid('whoami'));
    const who = await whoami(ann, {});
    const spoofed = await whoami(ann, { 'X-Forwarded-For': '203.0.113.9', 'X-Real-IP': '203.0.113.9' });

    const shots = [path.join(SHOTS, 'e2e-flask-chat-ann.png'), path.join(SHOTS, 'e2e-flask-chat-bob.png')];
    await ann.screenshot({ path: shots[0], fullPage: true });
    await bob.screenshot({ path: shots[1], fullPage: true });

    // plain http through the balancer's port 80: redirected to https
    const third = await newTab(ctx, 'http', seen);
    const resp = await third.goto(HTTP_URL, { waitUntil: 'load' });
    check(resp && resp.status() === 200, 'the redirected page loads');
    const from = resp.request().redirectedFrom();
    check(from, 'the http visit was redirected');
    const first = await from.response();
    const redirect = { status: first.status(), location: first.headers().location, final: third.url() };

    check(seen.errors.length === 0, 'no page errors: ' + seen.errors.join('; '));
    check(seen.console.length === 0, 'no console errors: ' + seen.console.join('; '));
    console.log(JSON.stringify({ ok: true, protocol, sockets: seen.sockets, whoami: who,
      whoami_spoofed: spoofed, page_whoami: pageWhoami, redirect, screenshots: shots,
      browser: browser.version() }));
    await ctx.close();
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
