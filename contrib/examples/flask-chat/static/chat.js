/* chat.js: the flask-chat page. Plain JavaScript, no framework.
 *
 * Join opens a WebSocket to /ws/ on the page's own host: wss:// when the
 * page came over https, ws:// otherwise. Every message is JSON,
 *   {"type": "join", "nick": "ann"}  or  {"type": "say", "nick": "ann", "text": "hi"},
 * and server.py sends every message to everyone, so what we send comes back
 * to us too. What others send is shown with textContent, never as HTML. */
'use strict';

(function () {
  const $ = (id) => document.querySelector('[data-testid="' + id + '"]');
  const nickInput = $('nick-input');
  const joinButton = $('join-button');
  const textInput = $('text-input');
  const sendButton = $('send-button');
  const stateEl = $('state');
  const messagesEl = $('messages');
  let ws = null;
  let nick = '';

  function setState(s) {
    stateEl.dataset.state = s;
    stateEl.textContent = s;
    const online = s === 'online';
    textInput.disabled = sendButton.disabled = !online;
    nickInput.disabled = joinButton.disabled = s !== 'offline';
  }

  function show(from, text, notice) {
    const li = document.createElement('li');
    li.dataset.testid = 'message';
    if (notice) {
      li.className = 'notice';
      li.textContent = text;
    } else {
      const f = document.createElement('span');
      f.className = 'from';
      f.textContent = from;
      const t = document.createElement('span');
      t.className = 'text';
      t.textContent = text;
      li.append(f, t);
    }
    messagesEl.append(li);
    messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  function join(e) {
    e.preventDefault();
    nick = nickInput.value.trim();
    if (!nick || ws)
      return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    setState('connecting');
    ws = new WebSocket(scheme + '//' + location.host + '/ws/');
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'join', nick }));
      setState('online');
      textInput.focus();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      if (m && m.type === 'join' && typeof m.nick === 'string')
        show('', m.nick + ' joined', true);
      else if (m && m.type === 'say' && typeof m.nick === 'string' && typeof m.text === 'string')
        show(m.nick, m.text, false);
    };
    ws.onclose = (ev) => {
      ws = null;
      show('', 'disconnected (' + ev.code + ')', true);
      setState('offline');
    };
  }

  function say(e) {
    e.preventDefault();
    const text = textInput.value;
    if (!text || !ws || ws.readyState !== WebSocket.OPEN)
      return;
    ws.send(JSON.stringify({ type: 'say', nick, text }));
    textInput.value = '';
  }

  $('join-form').addEventListener('submit', join);
  $('say-form').addEventListener('submit', say);

  fetch('/whoami', { cache: 'no-store' })
    .then((r) => r.json())
    .then((w) => {
      $('whoami').textContent = (w.x_real_ip || w.remote_addr) + ' over ' +
        (w.x_forwarded_proto || location.protocol.replace(':', ''));
    })
    .catch(() => { $('whoami').textContent = '(unknown)'; });
}());
