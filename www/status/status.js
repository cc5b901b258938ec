// status.js: gatehouse's status page. Plain JavaScript, no library.
//
// Once a second (never two requests at once) it fetches the feed, the same
// path with ?format=json: the daemon's counters and state as they are now.
// The page keeps what it has seen for 15 minutes and computes every rate
// itself, from one reading to the next: the daemon keeps no history for
// it. The plots are drawn on canvas by the code below; tables are filled
// with textContent only (room names come from clients).
'use strict';

(() => {
  const WINDOW_S = 15 * 60;       // kept, and the widest the plots get
  const MIN_SPAN_S = 60;          // the narrowest: a page just opened shows its first minute
  const PERIOD_MS = 1000;
  const GAP_S = 5;                // readings further apart than this: a gap in the lines
  const FEED = '?format=json';

  // ---- what is plotted ------------------------------------------------------
  //
  // gauge: the value as read; rate: a counter's increase per second between
  // two readings. Each series reads its number from a feed document.
  const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
  const CHARTS = [
    { id: 'connections', title: 'Open connections', kind: 'gauge', series: [
      { name: 'HTTP', get: (d) => d.connections.open.http },
      { name: 'WebSocket', get: (d) => d.connections.open.websocket },
      { name: 'tunnel', get: (d) => d.connections.open.tunnel },
    ] },
    { id: 'responses', title: 'HTTP responses per second', kind: 'rate', series:
      ['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => ({ name: c, get: (d) => d.http_responses[c] })) },
    { id: 'messages', title: 'WebSocket messages per second', kind: 'rate', series: [
      { name: 'in', get: (d) => d.websocket.messages_in },
      { name: 'out', get: (d) => d.websocket.messages_out },
    ] },
    { id: 'bytes', title: 'WebSocket bytes per second', kind: 'rate', unit: 'B', series: [
      { name: 'in', get: (d) => d.websocket.bytes_in },
      { name: 'out', get: (d) => d.websocket.bytes_out },
    ] },
    { id: 'handshakes', title: 'Handshakes per second', kind: 'rate', series: [
      { name: 'upgrades (101)', get: (d) => d.http_responses['1xx'] },
      { name: 'TLS ok', get: (d) => d.tls_handshakes.ok },
      { name: 'TLS failed', get: (d) => d.tls_handshakes.failed },
    ] },
    { id: 'refusals', title: 'Refusals and drops per second', kind: 'rate', series: [
      { name: 'PROXY refused', get: (d) => d.proxy_headers.refused },
      { name: 'slow consumers', get: (d) => d.websocket.slow_consumers },
      { name: 'not allowed (403)', get: (d) => d.route_denied },
      { name: 'over limits (429)', get: (d) => sum(d.client_limited) },
    ] },
  ];

  // ---- small helpers ------------------------------------------------------------

  const $ = (id) => document.querySelector('[data-testid="' + id + '"]');

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class')
        e.className = v;
      else
        e.setAttribute(k, v);
    }
    for (const kid of kids)
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return e;
  }

  // 1234 -> "1.23k"; bytes with unit 'B' -> "1.2 KiB"
  function fmt(v, unit) {
    if (v === null || v === undefined || !Number.isFinite(v))
      return '–';
    const a = Math.abs(v);
    if (unit === 'B') {
      const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      let x = a;
      while (x >= 1024 && i < u.length - 1) {
        x /= 1024;
        i++;
      }
      return (v < 0 ? '-' : '') + (x >= 100 || i === 0 ? Math.round(x) : x.toFixed(1)) + ' ' + u[i];
    }
    if (a >= 1e9)
      return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
    if (a >= 1e6)
      return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4)
      return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
    if (a >= 100 || Number.isInteger(v))
      return String(Math.round(v));
    return v.toFixed(a >= 10 ? 1 : 2);
  }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400);
    const h = Math.floor(s / 3600) % 24;
    const m = Math.floor(s / 60) % 60;
    if (d > 0)
      return d + 'd ' + h + 'h';
    if (h > 0)
      return h + 'h ' + m + 'm';
    if (m > 0)
      return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }

  function clockTime(unix) {
    return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
  }

  // ---- the readings ---------------------------------------------------------------

  // per chart: points { t, v: [value per series, null for none] }, oldest first
  const points = new Map(CHARTS.map((c) => [c.id, []]));
  let prev = null;                 // the last document
  let latest = null;

  // Whether b continues a (the same process, counters only growing).
  function continues(a, b) {
    return a !== null && a.start_time === b.start_time && b.now > a.now &&
      b.now - a.now <= GAP_S;
  }

  function record(d) {
    const joined = continues(prev, d);
    for (const c of CHARTS) {
      const ps = points.get(c.id);
      let v;
      if (c.kind === 'gauge') {
        v = c.series.map((s) => s.get(d));
      } else if (joined) {
        const dt = d.now - prev.now;
        v = c.series.map((s) => {
          const inc = s.get(d) - s.get(prev);
          return inc >= 0 ? inc / dt : null;    // a counter went back: no rate
        });
      } else {
        v = c.series.map(() => null);
      }
      if (!joined && ps.length > 0)
        ps.push({ t: d.now - 0.001, v: c.series.map(() => null) });   // a gap
      ps.push({ t: d.now, v });
      while (ps.length > 0 && ps[0].t < d.now - WINDOW_S)
        ps.shift();
    }
  }

  // ---- plots ------------------------------------------------------------------------

  let palette = null;

  function readPalette() {
    const cs = getComputedStyle(document.documentElement);
    const get = (n) => cs.getPropertyValue(n).trim();
    palette = {
      series: ['--s1', '--s2', '--s3', '--s4', '--s5'].map(get),
      grid: get('--grid'),
      muted: get('--muted'),
      text: get('--text'),
    };
  }

  // The smallest "nice" number (1, 2 or 5 times a power of ten; for bytes
  // a power of two) at or above v.
  function niceCeil(v, unit) {
    if (v <= 0)
      return 1;
    if (unit === 'B') {
      let p = 1;
      while (p < v)
        p *= 2;
      return p;
    }
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10])
      if (m * p >= v)
        return m * p;
    return 10 * p;
  }

  const charts = new Map();

  function buildCharts() {
    const box = $('charts');
    for (const c of CHARTS) {
      const canvas = el('canvas', { 'data-testid': 'chart-' + c.id, role: 'img',
        'aria-label': c.title + ', up to the last 15 minutes' });
      const legend = el('ul', { class: 'legend' });
      const values = c.series.map((s, i) => {
        const v = el('span', { class: 'v' }, '–');
        legend.append(el('li', {}, el('span', { class: 'sw s' + (i + 1) }), s.name + ' ', v));
        return v;
      });
      box.append(el('figure', { class: 'chart', 'data-chart': c.id },
        el('figcaption', {}, c.title), canvas, legend));
      charts.set(c.id, { c, canvas, values });
    }
  }

  function draw(id, now) {
    const { c, canvas, values } = charts.get(id);
    const ps = points.get(id);
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const g = canvas.getContext('2d');
    g.clearRect(0, 0, w, h);

    let peak = 0;
    for (const p of ps)
      for (const v of p.v)
        if (v !== null && v > peak)
          peak = v;
    const top = niceCeil(peak, c.unit);

    // the time axis spans what has been seen, from one minute up to 15
    const seenFor = ps.length > 0 ? now - ps[0].t : 0;
    const span = Math.min(WINDOW_S, Math.max(MIN_SPAN_S, Math.ceil(seenFor / 60) * 60));
    const font = Math.round(10 * dpr);
    g.font = font + 'px system-ui, sans-serif';
    const labels = [0, top / 2, top].map((v) => fmt(v, c.unit));
    const labelW = Math.ceil(Math.max(...labels.map((l) => g.measureText(l).width))) + 6 * dpr;
    const left = labelW;
    const right = w - 4 * dpr;
    const topY = font / 2 + 2 * dpr;
    const bottom = h - font - 6 * dpr;
    const x = (t) => left + (right - left) * (1 - (now - t) / span);
    const y = (v) => bottom - (bottom - topY) * (v / top);

    // grid and labels
    g.lineWidth = 1;
    g.strokeStyle = palette.grid;
    g.fillStyle = palette.muted;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const yy = Math.round(y((top * i) / 4)) + 0.5;
      g.beginPath();
      g.moveTo(left, yy);
      g.lineTo(right, yy);
      g.stroke();
      if (i % 2 === 0)
        g.fillText(labels[i / 2], left - 4 * dpr, yy);
    }
    g.textBaseline = 'top';
    const step = [15, 30, 60, 120, 300].find((st) => span / st <= 4) || 300;
    for (let ago = 0; ago <= span; ago += step) {
      const xx = x(now - ago);
      g.textAlign = ago === 0 ? 'right' : ago + step > span ? 'left' : 'center';
      g.fillText(ago === 0 ? 'now' : ago < 60 ? '-' + ago + ' s' : '-' + ago / 60 + ' min',
        xx, bottom + 4 * dpr);
    }

    // the series, a line each; null breaks a line
    g.lineWidth = 2 * dpr;
    g.lineJoin = 'round';
    c.series.forEach((s, i) => {
      g.strokeStyle = palette.series[i % palette.series.length];
      g.beginPath();
      let pen = false;
      for (const p of ps) {
        const v = p.v[i];
        if (v === null) {
          pen = false;
          continue;
        }
        const px = x(p.t);
        const py = y(v);
        if (pen)
          g.lineTo(px, py);
        else
          g.moveTo(px, py);
        pen = true;
      }
      g.stroke();
    });

    // the legend's figures and, for tests and curious readers, what was drawn
    const last = ps.length > 0 ? ps[ps.length - 1].v : [];
    values.forEach((v, i) => {
      v.textContent = fmt(last[i] === undefined ? null : last[i], c.unit) +
        (c.kind === 'rate' ? '/s' : '');
    });
    canvas.dataset.points = String(ps.length);
    canvas.dataset.peak = String(peak);
    canvas.dataset.last = JSON.stringify(last);
  }

  function drawAll() {
    if (latest === null)
      return;
    for (const id of charts.keys())
      draw(id, latest.now);
  }

  // ---- tables and figures ---------------------------------------------------------

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function rate(now, before, get) {
    if (!continues(before, now))
      return null;
    const inc = get(now) - get(before);
    return inc >= 0 ? inc / (now.now - before.now) : null;
  }

  function badge(text, kind) {
    return el('span', { class: 'badge ' + kind }, text);
  }

  function kv(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }

  function showRooms(d, before) {
    const old = new Map();
    for (const r of before && before.rooms ? before.rooms.busiest : [])
      old.set(r.plugin + '\u0000' + r.room, r);
    const rows = d.rooms.busiest.map((r) => {
      const o = old.get(r.plugin + '\u0000' + r.room);
      const mps = o === undefined ? null : rate(d, before, (x) => (x === d ? r : o).messages);
      return el('tr', { 'data-testid': 'room' }, el('td', {}, r.plugin),
        el('td', { 'data-testid': 'room-name' }, r.room),
        el('td', { class: 'num', 'data-testid': 'room-subscribers' }, r.subscribers),
        el('td', { class: 'num', 'data-testid': 'room-members' }, r.members),
        el('td', { class: 'num' }, fmt(mps)));
    });
    fill($('rooms'), rows);
    $('rooms-empty').hidden = rows.length > 0;
  }

  function showUpstreams(d, before) {
    const old = new Map();
    for (const u of before ? before.upstreams : [])
      for (const s of u.servers)
        old.set(u.name + ' ' + s.address, s);
    let up = 0;
    let all = 0;
    const rows = [];
    for (const u of d.upstreams) {
      for (const s of u.servers) {
        all++;
        if (s.up)
          up++;
        const o = old.get(u.name + ' ' + s.address);
        const rps = o === undefined ? null : rate(d, before, (x) => (x === d ? s : o).requests);
        const state = badge(s.state + (s.backup ? ' (backup)' : ''), s.up ? 'ok' : 'bad');
        rows.push(el('tr', { 'data-testid': 'upstream-server' },
          el('td', {}, u.name), el('td', { class: 'addr' }, s.address), el('td', {}, state),
          el('td', { class: 'num' }, s.latency_seconds === null ? '–'
            : (s.latency_seconds * 1000).toFixed(1) + ' ms'),
          el('td', { class: 'num' }, s.active + ' / ' + s.idle),
          el('td', { class: 'num' }, fmt(rps)),
          el('td', { class: 'num' }, s.responses['5xx']),
          el('td', { class: 'num' }, s.failures)));
      }
    }
    fill($('upstreams'), rows);
    $('upstreams-empty').hidden = rows.length > 0;
    $('tile-upstreams').textContent = all === 0 ? '–' : up + ' / ' + all;
    $('tile-upstreams').classList.toggle('bad', up < all);
  }

  function showPlugins(d) {
    const rows = d.plugins.loaded.map((p) => {
      const routes = p.routes_failed > 0 ? p.routes + ' (' + p.routes_failed + ' failed)' : p.routes;
      return el('tr', { 'data-testid': 'plugin', title: p.file }, el('td', {}, p.name),
        el('td', {}, p.version || '–'), el('td', {}, p.abi.join('.')),
        el('td', { class: 'num' }, routes));
    });
    fill($('plugins'), rows);
    $('plugins-empty').hidden = rows.length > 0;
    $('refused').replaceChildren(...d.plugins.refused.map((r) =>
      el('li', {}, r.file + ' refused: ' + r.reason)));
  }

  function showBus(d, before) {
    const b = d.bus;
    if (b === null) {
      kv($('bus'), [['state', 'not configured: rooms are this instance\'s only']]);
      return;
    }
    const state = !b.running ? badge('stopped', 'warn')
      : b.connected ? badge('connected', 'ok') : badge('disconnected', 'bad');
    const pr = before && before.bus ? rate(d, before, (x) => x.bus.published) : null;
    const rr = before && before.bus ? rate(d, before, (x) => x.bus.received) : null;
    kv($('bus'), [['state', state], ['redis', b.redis || '–'], ['prefix', b.channel_prefix],
      ['published', fmt(pr) + '/s (' + b.published + ')'],
      ['received', fmt(rr) + '/s (' + b.received + ')'],
      ['not broadcast', String(b.not_broadcast)],
      ['disconnects', b.disconnects + ' (reconnects ' + b.reconnects + ')']]);
  }

  function showConfig(d) {
    const c = d.config;
    const r = c.last_reload;
    let last = 'none since start';
    if (r !== null)
      last = clockTime(r.time) + ' (' + duration(d.now - r.time) + ' ago): ' +
        (r.ok ? 'ok' : 'refused: ' + r.error);
    kv($('config'), [['file', c.path], ['generation', String(c.generation)],
      ['reloads', c.reloads_ok + ' ok, ' + c.reloads_failed + ' refused'],
      ['last reload', last], ['started', new Date(d.start_time * 1000).toLocaleString()],
      ['draining', d.draining ? 'yes' : 'no']]);
    $('generation').textContent = 'generation ' + c.generation;
    const rl = $('reload');
    rl.textContent = r === null ? 'none' : (r.ok ? 'ok' : 'refused') + ', ' +
      duration(d.now - r.time) + ' ago';
    rl.classList.toggle('bad', r !== null && !r.ok);
    if (r !== null && !r.ok)
      rl.title = r.error;
    else
      rl.removeAttribute('title');
  }

  function show(d, before) {
    $('version').textContent = d.version;
    $('uptime').textContent = duration(d.uptime_seconds);
    const o = d.connections.open;
    $('tile-open').textContent = fmt(o.http + o.websocket + o.tunnel);
    $('tile-ws').textContent = fmt(o.websocket);
    $('tile-rps').textContent = fmt(rate(d, before, (x) => sum(x.http_responses)));
    $('tile-mps').textContent = fmt(rate(d, before,
      (x) => x.websocket.messages_in + x.websocket.messages_out));
    $('tile-rooms').textContent = fmt(d.rooms.count);
    fill($('listeners'), d.connections.listeners.map((l) => el('tr', {},
      el('td', { class: 'addr' }, l.listen), el('td', { class: 'num' }, l.open.http),
      el('td', { class: 'num' }, l.open.websocket), el('td', { class: 'num' }, l.open.tunnel))));
    showRooms(d, before);
    showUpstreams(d, before);
    showPlugins(d);
    showBus(d, before);
    showConfig(d);
  }

  // ---- the loop -------------------------------------------------------------------

  function setLive(state, text) {
    const l = $('live');
    l.dataset.state = state;
    l.textContent = text;
  }

  let readings = 0;

  async function tick() {
    const started = performance.now();
    try {
      const r = await fetch(FEED, { cache: 'no-store', credentials: 'same-origin' });
      if (!r.ok)
        throw new Error(r.status === 403 ? 'not allowed (403)' : 'HTTP ' + r.status);
      const d = await r.json();
      record(d);
      show(d, prev);
      prev = d;
      latest = d;
      readings++;
      document.body.dataset.readings = String(readings);
      drawAll();
      setLive('live', 'live · ' + clockTime(d.now));
    } catch (e) {
      setLive('down', 'no data: ' + e.message);
    }
    setTimeout(tick, Math.max(0, PERIOD_MS - (performance.now() - started)));
  }

  function start() {
    readPalette();
    buildCharts();
    window.addEventListener('resize', drawAll);
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      readPalette();
      drawAll();
    });
    tick();
  }

  if (document.readyState === 'loading')
    document.addEventListener('DOMContentLoaded', start);
  else
    start();
})();
