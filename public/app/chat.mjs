// The chat page: a stock @stomp/stompjs client for one room.
//
// The room is in the address (?room=lobby), so links can be shared; the display name is the
// STOMP login, remembered in localStorage. On every (re)connect the page subscribes to the
// room's /topic/chat with a replay request: the last 50 messages the first time, then
// everything after the last message it showed, so a reconnect fills the gap without repeats.
// Text is always inserted with textContent: nothing a message says is parsed as HTML.

import { Client } from '@stomp/stompjs';

const CHAT = '/topic/chat';
const PRESENCE = '/presence';
const HISTORY_ON_JOIN = '50';
// The room's default frame limit; headers need a little of it.
const MAX_BODY_BYTES = 1024 * 1024 - 4096;
const ROOM_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const $ = (id) => document.getElementById(id);
const ui = {
  join: $('join'), name: $('name'), room: $('room'), joinError: $('join-error'),
  chat: $('chat'), roomTitle: $('room-title'), status: $('status'),
  messages: $('messages'), members: $('members'),
  composer: $('composer'), text: $('text'), notice: $('notice'),
};

let client = null;
let me = '';
let lastMessageId = null;
const seen = new Set();
const members = new Map(); // session id -> display name

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

function renderMessage(message) {
  const id = message.headers['message-id'];
  if (seen.has(id)) return;
  seen.add(id);
  lastMessageId = id;
  const sender = message.headers.sender ?? 'someone';
  const at = new Date(Number(message.headers.timestamp) || Date.now());
  const item = document.createElement('li');
  item.dataset.messageId = id;
  if (sender === me) item.classList.add('mine');
  const meta = document.createElement('div');
  meta.className = 'meta';
  const who = document.createElement('span');
  who.className = 'sender';
  who.textContent = sender;
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
  const names = [...new Set(members.values())].sort((a, b) => a.localeCompare(b));
  ui.members.replaceChildren(...names.map((name) => {
    const item = document.createElement('li');
    item.textContent = name;
    return item;
  }));
}

function onPresence(message) {
  const event = JSON.parse(message.body);
  const label = (member) => member.login ?? `guest ${member.session}`;
  if (event.type === 'members') {
    members.clear();
    for (const member of event.members) members.set(member.session, label(member));
  } else if (event.type === 'join') {
    members.set(event.member.session, label(event.member));
  } else if (event.type === 'leave') {
    members.delete(event.member.session);
  }
  renderMembers();
}

function join(name, room) {
  me = name;
  ui.join.hidden = true;
  ui.chat.hidden = false;
  ui.roomTitle.textContent = `# ${room}`;
  document.title = `${room} · stomp-rooms`;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  let everConnected = false;
  client = new Client({
    brokerURL: `${scheme}://${location.host}/rooms/${room}`,
    connectHeaders: { login: name },
    reconnectDelay: 1000,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  client.onConnect = () => {
    everConnected = true;
    setStatus('live');
    showNotice('');
    const replay = lastMessageId ? { 'replay-after': lastMessageId } : { 'replay-last': HISTORY_ON_JOIN };
    client.subscribe(CHAT, renderMessage, replay);
    client.subscribe(PRESENCE, onPresence);
  };
  client.onStompError = (frame) => {
    setStatus('error');
    showNotice(`The room refused a message: ${frame.headers.message}. ${frame.body}`.trim());
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

const params = new URLSearchParams(location.search);
ui.room.value = params.get('room') ?? 'lobby';
ui.name.value = localStorage.getItem('stomp-rooms:name') ?? '';
(ui.name.value ? ui.room : ui.name).focus();
