// status.e2e.js: the status page in a real browser.
//
// Headless Debian chromium driven by playwright-core opens E2E_URL (a
// `status: {}` route) and checks that the page loads and reads its feed,
// that every plot is drawn (pixels of the series' colours on each canvas),
// and that the plots and the rooms table follow traffic made meanwhile: a
// second page joins the chat room E2E_ROOM with two WebSockets and talks.
// The WebSocket plot's "in" line must rise from the floor and the room must
// be listed with its two members. A screenshot in each theme goes to
// E2E_SHOTS (a folder). One JSON line on stdout reports what was seen; any
// failure exits 1. Run by test_status_browser.py.
'use strict';

const path = require('path');
const { launch, check, tid } = require('./common');

const URL_ = process.env.E2E_URL;
const CHAT = process.env.E2E_CHAT;           // ws://.../ws/chat
const ROOM = process.env.E2E_ROOM || 'e2e-status';
const SHOTS = process.env.E2E_SHOTS;
const TIMEOUT = 20000;
const CHARTS = ['connections', 'responses', 'messages', 'bytes', 'handshakes', 'refusals'];

// What is drawn on a canvas, read back from its pixels: for each series
// colour of the page's palette (--s1..--s5), how many pixels are near it
// and the highest row (smallest y) where one is; and how many pixels are
// not transparent at all.
async function ink(page, id) {
  return page.$eval(tid('chart-' + id), (c) => {
    const cs = getComputedStyle(document.documentElement);
    const rgb = (hex) => {
      const h = hex.trim().replace('#', '');
      return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
    };
    const colours = ['--s1', '--s2', '--s3', '--s4', '--s5'].map((n) => rgb(cs.getPropertyValue(n)));
    const { data, width, height } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const series = colours.map(() => ({ n: 0, top: null }));
    let painted = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 4;
        if (data[o + 3] === 0)
          continue;
        painted++;
        if (data[o + 3] < 200)
          continue;
        colours.forEach((k, i) => {
          const d = Math.abs(data[o] - k[0]) + Math.abs(data[o + 1] - k[1]) + Math.abs(data[o + 2] - k[2]);
          if (d < 40) {
            series[i].n++;
            if (series[i].top === null)
              series[i].top = y;
          }
        });
      }
    }
    return { painted, series, height, peak: Number(c.dataset.peak), points: Number(c.dataset.points) };
  });
}

async function readings(page) {
  return page.evaluate(() => Number(document.body.dataset.readings || 0));
}

async function main() {
  check(URL_ && CHAT && SHOTS, 'E2E_URL, E2E_CHAT and E2E_SHOTS are set');
  const seen = { errors: [], console: [], feeds: 0 };
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    const page = await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (e) => seen.errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') seen.console.push(m.text()); });
    page.on('request', (r) => { if (r.url().includes('format=json')) seen.feeds++; });
    const resp = await page.goto(URL_, { waitUntil: 'load' });
    check(resp.status() === 200, 'the page answers 200, not ' + resp.status());

    // it reads its feed and says so
    await page.waitForFunction(() => Number(document.body.dataset.readings || 0) >= 4);
    check((await page.getAttribute(tid('live'), 'data-state')) === 'live', 'the page is live');
    const version = await page.textContent(tid('version'));
    check(/^\d+\.\d+\.\d+/.test(version), 'the version is shown: ' + version);
    check((await page.textContent(tid('uptime'))) !== '–', 'the uptime is shown');
    check(await page.isVisible(tid('rooms-empty')), 'no room yet');

    // every plot is drawn: axes and at least one series line on each
    const before = {};
    for (const id of CHARTS) {
      const k = await ink(page, id);
      check(k.painted > 0, id + ': the canvas is not blank');
      check(k.series.some((x) => x.n > 0), id + ': a series line is drawn: ' + JSON.stringify(k.series));
      check(k.points >= 3, id + ': it holds the readings: ' + k.points);
      before[id] = k;
    }
    check(before.messages.peak === 0, 'no WebSocket message before the traffic');

    // traffic: two people in one room, talking, from another page
    const other = await ctx.newPage();
    await other.goto(URL_);
    const said = await other.evaluate(async ([chat, room]) => {
      const open = (nick) => new Promise((resolve, reject) => {
        const ws = new WebSocket(chat + '?room=' + room + '&nick=' + nick);
        ws.onmessage = (e) => { if (JSON.parse(e.data).type === 'welcome') resolve(ws); };
        ws.onerror = () => reject(new Error('websocket ' + nick));
      });
      const ann = await open('ann');
      const bob = await open('bob');
      window.__keep = [ann, bob];
      let n = 0;
      await new Promise((resolve) => {
        const t = setInterval(() => {
          ann.send(JSON.stringify({ type: 'say', text: 'hello ' + n }));
          bob.send(JSON.stringify({ type: 'say', text: 'hi ' + n }));
          if (++n === 30) {
            clearInterval(t);
            resolve();
          }
        }, 100);
      });
      return 2 * n;
    }, [CHAT, ROOM]);

    // the page follows: the room is listed with its two members, and the
    // WebSocket plots leave the floor
    await page.waitForFunction((room) => [...document.querySelectorAll('[data-testid="room"]')]
      .some((tr) => tr.querySelector('[data-testid="room-name"]').textContent === room &&
        tr.querySelector('[data-testid="room-members"]').textContent === '2'), ROOM);
    await page.waitForFunction(() =>
      Number(document.querySelector('[data-testid="chart-messages"]').dataset.peak) > 0);
    const n0 = await readings(page);
    await page.waitForFunction((n) => Number(document.body.dataset.readings) >= n + 1, n0);
    const after = {};
    for (const id of CHARTS)
      after[id] = await ink(page, id);
    // the highest row any series reaches: the floor (every rate 0) before
    const top = (k) => Math.min(...k.series.filter((x) => x.top !== null).map((x) => x.top));
    check(top(after.messages) < top(before.messages) - 10,
      'the messages lines rose: top row ' + top(before.messages) + ' -> ' + top(after.messages));
    // open WebSockets (the second series): none before (its line at 0, maybe
    // under the tunnel line), two after, at the top of the plot
    const w0 = before.connections.series[1];
    const w1 = after.connections.series[1];
    check(after.connections.peak >= 2 && w1.top !== null && (w0.top === null || w1.top < w0.top - 10),
      'the open WebSockets line rose: ' + JSON.stringify([w0, w1]));
    check(after.bytes.peak > 0, 'bytes per second were plotted');
    const row = await page.$$eval(tid('room'), (trs, room) => trs.map((tr) =>
      [...tr.querySelectorAll('td')].map((td) => td.textContent))
      .find((cells) => cells[1] === room), ROOM);
    check(row && row[0] === 'chat' && row[2] === '2' && row[3] === '2', 'the room row: ' + row);
    const plugins = await page.$$eval(tid('plugin') + ' td:first-child', (tds) => tds.map((t) => t.textContent));
    check(plugins.includes('chat'), 'the chat plugin is listed: ' + plugins);

    // a screenshot in each theme; the dark one is dark
    const shots = [path.join(SHOTS, 'e2e-status.png'), path.join(SHOTS, 'e2e-status-dark.png')];
    await page.screenshot({ path: shots[0], fullPage: true });
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForFunction((l) => getComputedStyle(document.body).backgroundColor !== l, light);
    const n1 = await readings(page);
    await page.waitForFunction((n) => Number(document.body.dataset.readings) >= n + 1, n1);
    const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const lum = (c) => c.match(/\d+/g).slice(0, 3).reduce((a, b) => a + Number(b), 0);
    check(lum(dark) < lum(light), 'the dark theme is darker: ' + light + ' -> ' + dark);
    check((await ink(page, 'messages')).series[0].n > 0, 'the plots are redrawn in the dark palette');
    await page.screenshot({ path: shots[1], fullPage: true });

    // at most one feed request a second (3 s of slack for the start)
    const elapsed = await page.evaluate(() => performance.now() / 1000);
    check(seen.feeds <= elapsed + 3, seen.feeds + ' feed requests in ' + elapsed.toFixed(1) + ' s');

    check(seen.errors.length === 0, 'no page errors: ' + seen.errors.join('; '));
    check(seen.console.length === 0, 'no console errors: ' + seen.console.join('; '));
    console.log(JSON.stringify({ ok: true, said, screenshots: shots, browser: browser.version(),
      before: before.messages, after: after.messages, feeds: seen.feeds }));
    await ctx.close();
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
