/* chat.js: the chat page. Plain JavaScript, no framework, no build step.
 *
 * Talks to the chat plugin on /ws/chat (protocol: plugins/chat/README.md).
 * Everything a user or the server supplies is put on the page with
 * textContent, never as HTML. A dropped connection is retried with
 * exponential backoff and jitter (0.5 s doubling to 30 s, reset by a
 * welcome); a close with 1008 (room full, bad nick, ...) is final and
 * shows why. */
'use strict';

(function () {
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  const MAX_SHOWN = 1000;          // messages kept on the page

  const $ = (id) => document.querySelector('[data-testid="' + id + '"]');
  const joinView = $('join-view');
  const chatView = $('chat-view');
  const joinForm = $('join-form');
  const roomInput = $('room-input');
  const nickInput = $('nick-input');
  const sayForm = $('say-form');
  const textInput = $('text-input');
  const stateEl = $('state');
  const whereEl = $('where');
  const roomEl = $('room-name');
  const nickEl = $('my-nick');
  const usersEl = $('users');
  const userCountEl = $('user-count');
  const messagesEl = $('messages');

  let ws = null;
  let room = '';
  let nick = '';              // what we ask for; the server's answer replaces it
  let users = [];
  let attempt = 0;            // reconnects since the last welcome
  let retryTimer = null;
  let wanted = false;         // the user wants to be in the room

  function setState(state, text) {
    stateEl.dataset.state = state;
    stateEl.textContent = text;
  }

  function chatUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ room: room, nick: nick });
    return scheme + '//' + location.host + '/ws/chat?' + q.toString();
  }

  // ---- rendering (textContent only) ---------------------------------------

  function nearBottom() {
    return messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 40;
  }

  function append(li) {
    const stick = nearBottom();
    messagesEl.appendChild(li);
    while (messagesEl.childElementCount > MAX_SHOWN)
      messagesEl.removeChild(messagesEl.firstElementChild);
    if (stick)
      messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function timeOf(ts) {
    const d = new Date(typeof ts === 'number' ? ts : Date.now());
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function showSaid(m) {
    const li = document.createElement('li');
    li.className = 'said' + (m.from === nick ? ' mine' : '');
    li.dataset.testid = 'message';
    const t = span('ts', timeOf(m.ts));
    if (typeof m.ts === 'number')
      t.title = new Date(m.ts).toLocaleString();
    li.append(t, span('from', String(m.from)), span('text', String(m.text)));
    append(li);
  }

  function showNotice(text, cls) {
    const li = document.createElement('li');
    li.className = 'notice' + (cls ? ' ' + cls : '');
    li.dataset.testid = cls === 'error' ? 'error' : 'notice';
    li.append(span('ts', timeOf()), span('text', text));
    append(li);
  }

  function showUsers() {
    usersEl.replaceChildren();
    for (const u of users) {
      const li = document.createElement('li');
      li.textContent = u;
      if (u === nick)
        li.className = 'me';
      usersEl.appendChild(li);
    }
    userCountEl.textContent = String(users.length);
  }

  function showWhere() {
    roomEl.textContent = room;
    nickEl.textContent = nick;
    whereEl.hidden = false;
    document.title = room + ' · gatehouse chat';
  }

  // ---- the protocol -----------------------------------------------------------

  function onMessage(ev) {
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    if (m === null || typeof m !== 'object')
      return;
    switch (m.type) {
    case 'welcome':
      attempt = 0;
      nick = String(m.nick);
      room = String(m.room);
      users = Array.isArray(m.users) ? m.users.map(String) : [];
      showWhere();
      // the history is the room's recent past: start the list from it
      messagesEl.replaceChildren();
      for (const h of Array.isArray(m.history) ? m.history : [])
        showSaid(h);
      showUsers();
      setState('online', 'connected');
      break;
    case 'said':
      showSaid(m);
      break;
    case 'joined':
      users.push(String(m.nick));
      showUsers();
      showNotice(m.nick + ' joined');
      break;
    case 'left': {
      const i = users.indexOf(String(m.nick));
      if (i >= 0)
        users.splice(i, 1);
      showUsers();
      showNotice(m.nick + ' left');
      break;
    }
    case 'renamed': {
      const i = users.indexOf(String(m.from));
      if (i >= 0)
        users[i] = String(m.to);
      if (m.from === nick) {
        nick = String(m.to);
        showWhere();
        try { localStorage.setItem('gh-chat-nick', nick); } catch (e) { /* private mode */ }
      }
      showUsers();
      showNotice(m.from + ' is now ' + m.to);
      break;
    }
    case 'error':
      showNotice('error: ' + m.reason, 'error');
      break;
    default:
      break;                  // newer servers may say more
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    setState('connecting', attempt === 0 ? 'connecting…' : 'reconnecting…');
    let sock;
    try {
      sock = new WebSocket(chatUrl());
    } catch (e) {
      setState('closed', 'cannot connect: ' + e.message);
      return;
    }
    ws = sock;
    sock.onmessage = (ev) => { if (ws === sock) onMessage(ev); };
    sock.onclose = (ev) => {
      if (ws !== sock)
        return;
      ws = null;
      if (!wanted) {
        setState('idle', 'not connected');
        return;
      }
      if (ev.code === 1008) {
        // refused by policy (room full, bad nick, too many bad messages):
        // trying again would be refused again
        wanted = false;
        setState('closed', 'closed: ' + (ev.reason || 'refused'));
        showNotice('disconnected: ' + (ev.reason || 'refused by the server'), 'error');
        showJoin();
        return;
      }
      scheduleRetry();
    };
  }

  function scheduleRetry() {
    // exponential backoff with jitter: half the step fixed, half random
    const step = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * Math.pow(2, attempt));
    const delay = Math.round(step / 2 + Math.random() * step / 2);
    attempt++;
    setState('offline', 'offline, retrying in ' + Math.ceil(delay / 1000) + ' s');
    retryTimer = setTimeout(connect, delay);
  }

  function send(obj) {
    if (ws === null || ws.readyState !== WebSocket.OPEN) {
      showNotice('not connected: message not sent', 'error');
      return false;
    }
    ws.send(JSON.stringify(obj));
    return true;
  }

  // ---- the views ---------------------------------------------------------------

  function showJoin() {
    chatView.hidden = true;
    joinView.hidden = false;
    roomInput.value = room || roomInput.value;
    nickInput.value = nick || nickInput.value;
    nickInput.focus();
  }

  function join(r, n) {
    room = r;
    nick = n;
    wanted = true;
    attempt = 0;
    users = [];
    messagesEl.replaceChildren();
    showUsers();
    showWhere();
    joinView.hidden = true;
    chatView.hidden = false;
    try {
      localStorage.setItem('gh-chat-nick', n);
      localStorage.setItem('gh-chat-room', r);
    } catch (e) { /* private mode */ }
    connect();
    textInput.focus();
  }

  function leave() {
    wanted = false;
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws !== null) {
      const s = ws;
      ws = null;
      s.close(1000, 'bye');
    }
    whereEl.hidden = true;
    setState('idle', 'not connected');
    showJoin();
  }

  joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const r = roomInput.value.trim() || 'lobby';
    const n = nickInput.value.trim();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(r)) {
      roomInput.setCustomValidity('1 to 64 letters, digits, - or _');
      roomInput.reportValidity();
      return;
    }
    if (n === '' || Array.from(n).length > 32) {
      nickInput.setCustomValidity('1 to 32 characters');
      nickInput.reportValidity();
      return;
    }
    join(r, n);
  });
  roomInput.addEventListener('input', () => roomInput.setCustomValidity(''));
  nickInput.addEventListener('input', () => nickInput.setCustomValidity(''));

  // Enter submits the form: that is "Enter sends"
  sayForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = textInput.value;
    if (text.trim() === '')
      return;
    const cmd = /^\/nick\s+(.+)$/.exec(text);
    if (cmd ? send({ type: 'nick', nick: cmd[1] }) : send({ type: 'say', text: text }))
      textInput.value = '';
    textInput.focus();
  });

  $('leave-button').addEventListener('click', leave);

  // a reconnect right away when the network comes back
  window.addEventListener('online', () => {
    if (wanted && ws === null)
      connect();
  });

  // prefill: ?room=NAME in the page's address, else the last one used
  const params = new URLSearchParams(location.search);
  let saved = { room: null, nick: null };
  try {
    saved = { room: localStorage.getItem('gh-chat-room'), nick: localStorage.getItem('gh-chat-nick') };
  } catch (e) { /* private mode */ }
  roomInput.value = params.get('room') || saved.room || 'lobby';
  nickInput.value = params.get('nick') || saved.nick || '';
  (nickInput.value ? $('join-button') : nickInput).focus();
})();
