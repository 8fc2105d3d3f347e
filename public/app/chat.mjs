// The chat page: a stock @stomp/stompjs client for one room.
//
// The room is in the address (?room=lobby), so links can be shared; the display name is the
// STOMP login, remembered in localStorage. On every (re)connect the page subscribes to the
// room's /topic/chat with a replay request: the last 50 messages the first time, then
// everything after the last message it showed, so a reconnect fills the gap without repeats.
// Text is always inserted with textContent: nothing a message says is parsed as HTML.
//
// Tokens: where rooms are secured (README, "Securing rooms"), open the page with
// ?token=<jwt> (or #token=<jwt>, which never reaches a server log). The page moves the token
// at once into this tab's sessionStorage and out of the address, so sharing the room's link
// never shares it (a reload keeps it; ?token= with nothing after it forgets it), sends it on
// CONNECT as `Authorization: Bearer <jwt>`, and never logs or shows it. The display name is
// still sent as `login`; the room ignores it for a token, whose own login it shows instead.
//
// Who sent a message: a verified sender (token or STOMP_USERS) is named by its login; anyone
// else by the name they claimed (or "guest s7"), marked unverified, since anyone can claim any
// name. "Mine" is this page's own sessions, or its verified login (learnt from presence).

import { Client } from '@stomp/stompjs';

const CHAT = '/topic/chat';
const PRESENCE = '/presence';
const HISTORY_ON_JOIN = '50';
// The room's default frame limit; headers need a little of it.
const MAX_BODY_BYTES = 1024 * 1024 - 4096;
const ROOM_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_KEY = 'stomp-rooms:token';
const RETRY_WHEN_FULL_MS = 10_000;
const UNVERIFIED_TITLE = 'Not verified: anyone can use this name';

const $ = (id) => document.getElementById(id);
const ui = {
  join: $('join'), name: $('name'), room: $('room'), joinError: $('join-error'), tokenNote: $('token-note'),
  chat: $('chat'), roomTitle: $('room-title'), status: $('status'),
  messages: $('messages'), members: $('members'),
  composer: $('composer'), text: $('text'), notice: $('notice'),
};

let client = null;
let token = null;
let session = null; // this connection's session id
const mySessions = new Set(); // every session id this page has had, across reconnects
let myLogin = null; // our verified login, once presence shows one
let lastMessageId = null;
const seen = new Set();
const members = new Map(); // session id -> { name, verified }

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text ?? state;
}

function showNotice(text) {
  ui.notice.textContent = text;
}

function validateName(name) {
  if (!name) return 'Pick a display name.';
  if (new TextEncoder().encode(name).length > 64) return 'Display names are at most 64 bytes.';
  if (/[\u0000-\u001f\u007f"\\]/.test(name)) return 'Display names cannot contain control characters, quotes or backslashes.';
  return null;
}

/** Takes a token given in the address into sessionStorage, out of the address; returns the
 * token this tab holds, if any. */
function takeToken() {
  const url = new URL(location.href);
  const fragment = new URLSearchParams(url.hash.slice(1));
  const given = url.searchParams.get('token') ?? fragment.get('token');
  if (given !== null) {
    if (given) sessionStorage.setItem(TOKEN_KEY, given);
    else sessionStorage.removeItem(TOKEN_KEY);
    url.searchParams.delete('token');
    fragment.delete('token');
    url.hash = fragment.toString();
    history.replaceState(null, '', url);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Marks a name element as unverified (the marker itself is drawn by chat.css). */
function markUnverified(element, verified) {
  if (verified) return;
  element.classList.add('unverified');
  element.title = UNVERIFIED_TITLE;
}

/** Who sent a message, from the headers the room stamps on it. */
function senderOf(headers) {
  const sender = headers.sender ?? '';
  if (headers['sender-verified'] === 'true') return { name: sender, verified: true, mine: sender === myLogin };
  const name = headers['sender-name'] ?? (sender ? `guest ${sender}` : 'someone');
  return { name, verified: false, mine: mySessions.has(sender) };
}

function renderMessage(message) {
  const id = message.headers['message-id'];
  if (seen.has(id)) return;
  seen.add(id);
  lastMessageId = id;
  const sender = senderOf(message.headers);
  const at = new Date(Number(message.headers.timestamp) || Date.now());
  const item = document.createElement('li');
  item.dataset.messageId = id;
  if (sender.mine) item.classList.add('mine');
  const meta = document.createElement('div');
  meta.className = 'meta';
  const who = document.createElement('span');
  who.className = 'sender';
  who.textContent = sender.name;
  markUnverified(who, sender.verified);
  const when = document.createElement('time');
  when.dateTime = at.toISOString();
  when.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  meta.append(who, when);
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = message.body;
  item.append(meta, text);
  ui.messages.append(item);
  item.scrollIntoView({ block: 'end' });
}

function renderMembers() {
  // One entry per verified login, and per unverified name, whatever their number of sessions.
  const unique = new Map([...members.values()].map((member) => [`${member.verified}:${member.name}`, member]));
  const sorted = [...unique.values()].sort((a, b) => a.name.localeCompare(b.name) || a.verified - b.verified);
  ui.members.replaceChildren(...sorted.map((member) => {
    const item = document.createElement('li');
    item.textContent = member.name;
    markUnverified(item, member.verified);
    return item;
  }));
}

function addMember(member) {
  const verified = member.verified === true;
  members.set(member.session, { name: member.login ?? `guest ${member.session}`, verified });
  if (member.session === session && verified) myLogin = member.login;
}

function onPresence(message) {
  const event = JSON.parse(message.body);
  if (event.type === 'members') {
    members.clear();
    for (const member of event.members) addMember(member);
  } else if (event.type === 'join') {
    addMember(event.member);
  } else if (event.type === 'leave') {
    members.delete(event.member.session);
  }
  renderMembers();
}

function join(name, room) {
  ui.join.hidden = true;
  ui.chat.hidden = false;
  ui.roomTitle.textContent = `# ${room}`;
  document.title = `${room} · stomp-rooms`;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  let everConnected = false;
  client = new Client({
    brokerURL: `${scheme}://${location.host}/rooms/${room}`,
    connectHeaders: { login: name, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    reconnectDelay: 1000,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  client.onConnect = (frame) => {
    everConnected = true;
    session = frame.headers.session;
    mySessions.add(session);
    setStatus('live');
    showNotice('');
    // Presence first: its snapshot tells our verified login before the history is shown.
    client.subscribe(PRESENCE, onPresence);
    const replay = lastMessageId ? { 'replay-after': lastMessageId } : { 'replay-last': HISTORY_ON_JOIN };
    client.subscribe(CHAT, renderMessage, replay);
  };
  client.onStompError = (frame) => {
    const reason = frame.headers.message ?? 'error';
    setStatus('error');
    if (reason === 'authentication failed' || reason === 'token expired') {
      void client.deactivate(); // the same credentials would only be refused again
      showNotice(reason === 'token expired'
        ? 'Your token has expired. Open the page again with a fresh ?token= to rejoin.'
        : `The room did not let you in: ${frame.body}`.trim());
    } else if (reason === 'room full' || reason === 'too many connections') {
      // Refused as the socket opened: wait longer than the usual reconnect delay.
      showNotice(`${frame.body || reason} Trying again in ${RETRY_WHEN_FULL_MS / 1000} s.`.trim());
      void client.deactivate().then(() => setTimeout(() => {
        setStatus(everConnected ? 'reconnecting' : 'connecting');
        client.activate();
      }, RETRY_WHEN_FULL_MS));
    } else {
      showNotice(`The room refused a message: ${reason}. ${frame.body}`.trim());
    }
  };
  client.onWebSocketClose = () => {
    members.clear();
    renderMembers();
    if (client.active) setStatus(everConnected ? 'reconnecting' : 'connecting');
  };
  setStatus('connecting');
  client.activate();
  ui.text.focus();
}

function send() {
  const text = ui.text.value;
  if (!text.trim()) return;
  const size = new TextEncoder().encode(text).length;
  if (size > MAX_BODY_BYTES) {
    showNotice(`That message is ${Math.ceil(size / 1024)} KiB; a room takes at most ${MAX_BODY_BYTES >> 10} KiB.`);
    return;
  }
  if (!client?.connected) {
    showNotice('Not connected right now, so the message was not sent. It is still in the box.');
    return;
  }
  client.publish({ destination: CHAT, body: text, headers: { 'content-type': 'text/plain;charset=utf-8' } });
  ui.text.value = '';
  showNotice('');
}

ui.join.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  const room = ui.room.value.trim();
  const problem = validateName(name) ?? (ROOM_RULE.test(room) ? null
    : 'Room names are 1-64 letters, digits, "-", "_" or ".", starting with a letter or digit.');
  if (problem) {
    ui.joinError.textContent = problem;
    return;
  }
  localStorage.setItem('stomp-rooms:name', name);
  const url = new URL(location.href);
  url.searchParams.set('room', room);
  history.replaceState(null, '', url);
  join(name, room);
});

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});

ui.text.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

token = takeToken();
ui.tokenNote.hidden = !token;
const params = new URLSearchParams(location.search);
ui.room.value = params.get('room') ?? 'lobby';
ui.name.value = localStorage.getItem('stomp-rooms:name') ?? '';
(ui.name.value ? ui.room : ui.name).focus();
