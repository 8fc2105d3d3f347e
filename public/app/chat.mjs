// The chat page: a stock @stomp/stompjs client for one room.
//
// The room is in the address (?room=lobby), so links can be shared; the display name is the
// STOMP login, remembered in localStorage. A passcode (rooms secured with STOMP_USERS) goes with
// it as the STOMP passcode. Who joined which room is kept in this tab's sessionStorage, so a
// reload rejoins at once; Leave forgets it. On every (re)connect the page subscribes to the
// room's /topic/chat with a replay request: the last 50 messages the first time, then
// everything after the last message it showed, so a reconnect fills the gap without repeats.
// Text is always inserted with textContent: nothing a message says is parsed as HTML.
//
// Tokens: where rooms are secured (README, "Securing rooms"), open the page with
// ?token=<jwt> (or #token=<jwt>, which never reaches a server log). The page moves the token
// at once into this tab's sessionStorage and out of the address, so sharing the room's link
// never shares it (a reload keeps it; ?token= with nothing after it forgets it), sends it on
// CONNECT as `Authorization: Bearer <jwt>`, and never logs or shows it. The room names a token's
// holder by the token's own login, so with a token the page asks for no display name.
//
// Refusals are told to chatters in their terms (what happened, what to do); the room's own
// wording, written for developers, goes to the console.
//
// Who sent a message: a verified sender (token or STOMP_USERS) is named by its login; anyone
// else by the name they claimed (or "guest s7"), marked unverified, since anyone can claim any
// name. "Mine" is this page's own sessions, or its verified login (learnt from presence), or,
// over HTTP, the ids the room gave the messages this page POSTed.
//
// Climbing down the ladder: the page tries a WebSocket first. When none can be opened (the
// browser has no WebSocket, its constructor throws, the first socket closes without ever
// opening, or is still not open after FIRST_OPEN_TIMEOUT_MS), it falls back for the rest of the
// page's life to the room's HTTP rungs: a server-sent event stream to receive (the same ids and
// history; EventSource resumes by itself with Last-Event-ID) and a POST per message to send.
// A STOMP ERROR (say, a refused token) is an answer, not a broken transport: no fallback then.
// Presence has no HTTP rung, so the member list says it is unavailable. The label next to the
// status (#transport, data-transport="websocket" | "sse") says which transport is in use.

import { Client } from '@stomp/stompjs';
import { senderOf as describeSender, fullTime, shortTime } from './names.mjs';

const CHAT = '/topic/chat';
const PRESENCE = '/presence';
const HISTORY_ON_JOIN = '50';
// The room's default frame limit; headers need a little of it.
const MAX_BODY_BYTES = 1024 * 1024 - 4096;
const ROOM_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_KEY = 'stomp-rooms:token';
const JOINED_KEY = 'stomp-rooms:joined';
const RETRY_WHEN_FULL_MS = 10_000;
// How long the first WebSocket may take to open before the page falls back to HTTP.
const FIRST_OPEN_TIMEOUT_MS = 10_000;
// How soon to reopen an event stream that failed for no reason the room gave.
const STREAM_RETRY_MS = 3000;
const UNVERIFIED_TITLE = 'Not verified: anyone can use this name';
const TOKEN_EXPIRED = 'Your invitation link has expired. Ask for a fresh link and open it to rejoin.';
const TRANSPORT_LABELS = {
  websocket: 'WebSocket (STOMP)',
  sse: 'Server-sent events + HTTP POST',
};

const $ = (id) => document.getElementById(id);
const ui = {
  join: $('join'), name: $('name'), nameField: $('name-field'), room: $('room'), passcode: $('passcode'),
  joinError: $('join-error'), tokenNote: $('token-note'), leave: $('leave'),
  chat: $('chat'), roomTitle: $('room-title'), status: $('status'), transport: $('transport'),
  messages: $('messages'), members: $('members'), membersNote: $('members-note'),
  composer: $('composer'), text: $('text'), notice: $('notice'),
};

let joined = null; // { name, room, passcode } once the join form is sent
let transport = null; // 'websocket' | 'sse'
let client = null; // the stomp.js client, over a WebSocket
let source = null; // the EventSource, over HTTP
let token = null;
let session = null; // this connection's session id
const mySessions = new Set(); // every session id this page has had, across reconnects
let myLogin = null; // our verified login, once presence shows one
let lastMessageId = null;
const seen = new Set();
const myMessageIds = new Set(); // ids the room gave this page's POSTs
const members = new Map(); // session id -> { name, verified }

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text ?? state;
}

function showNotice(text) {
  ui.notice.textContent = text;
}

/** Shows which transport the page uses; `reason` (why it fell back) goes in the tooltip. */
function setTransport(kind, reason = '') {
  transport = kind;
  ui.transport.hidden = false;
  ui.transport.dataset.transport = kind;
  ui.transport.textContent = TRANSPORT_LABELS[kind];
  ui.transport.title = reason;
  ui.membersNote.hidden = kind !== 'sse';
}

function validateName(name) {
  if (!name) return token ? null : 'Pick a display name.';
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

/** Who sent a message, from the headers the room stamps on it, and whether it was this page. */
function senderOf(id, headers) {
  const { name, verified } = describeSender(headers);
  const sender = headers.sender ?? '';
  const mine = myMessageIds.has(id) || (verified ? sender === myLogin : mySessions.has(sender));
  return { name, verified, mine };
}

/** What to tell a chatter the room refused (a STOMP ERROR's `message`, or an HTTP status), and
 * what to do about it. */
function refusalText(reason) {
  switch (reason) {
    case 'authentication failed':
    case 401:
      if (token) return 'The room did not accept your invitation link: it may be for another room. Ask for a fresh link.';
      if (joined?.passcode) return 'The room did not accept that name and passcode. Press Leave, then join again with the right ones.';
      return 'This room is private. Press Leave, then join with your name and passcode, or open the invitation link you were given.';
    case 'token expired':
      return TOKEN_EXPIRED;
    case 'permission denied':
    case 403:
      return 'This room does not let you post or read here. Reconnecting…';
    case 'rate limit exceeded':
    case 429:
      return 'You are sending faster than this room allows. Wait a moment; reconnecting…';
    case 'frame too large':
    case 'message too large':
    case 413:
      return 'That message is too large for this room. Reconnecting…';
    default:
      return `The room closed the connection (${reason}). Reconnecting…`;
  }
}

/** Shows a message once: `{ id, headers, body }`, from either transport. */
function renderMessage(message) {
  const { id } = message;
  if (seen.has(id)) return;
  seen.add(id);
  lastMessageId = id;
  const sender = senderOf(id, message.headers);
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
  when.textContent = shortTime(at);
  when.title = fullTime(at);
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

/** Marks a message this page POSTed as its own, whether it has arrived yet or not. */
function markMine(id) {
  myMessageIds.add(id);
  ui.messages.querySelector(`li[data-message-id="${CSS.escape(id)}"]`)?.classList.add('mine');
}

function join(name, room, passcode) {
  joined = { name, room, passcode };
  sessionStorage.setItem(JOINED_KEY, JSON.stringify(joined));
  ui.join.hidden = true;
  ui.chat.hidden = false;
  ui.leave.hidden = false;
  ui.roomTitle.textContent = `# ${room}`;
  document.title = `${room} · stomp-rooms`;
  setStatus('connecting');
  if (typeof WebSocket !== 'function') useEventStream('This browser has no WebSocket.');
  else connectStomp();
  ui.text.focus();
}

/** The failure a WebSocket constructor threw, rethrown to stop stomp.js's attempt. */
class WebSocketUnavailable extends Error {}

// stomp.js starts each attempt without awaiting it, so a thrown constructor ends up as an
// unhandled rejection; the page handles it by falling back, so keep it out of the console.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason instanceof WebSocketUnavailable) event.preventDefault();
});

/** The top rung: STOMP over a WebSocket, with stomp.js reconnecting by itself. */
function connectStomp() {
  const { name } = joined;
  setTransport('websocket');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${location.host}/rooms/${joined.room}`;
  let everConnected = false;
  let everOpened = false; // whether any socket of this page ever opened
  let firstOpenTimer = null;
  const stomp = new Client({
    webSocketFactory: () => {
      let socket;
      try {
        socket = new WebSocket(url, stomp.stompVersions.protocolVersions());
      } catch (error) {
        setTimeout(() => fallBack(`The WebSocket could not be created (${error?.message ?? error}).`));
        throw new WebSocketUnavailable(String(error?.message ?? error));
      }
      socket.addEventListener('open', () => {
        everOpened = true;
        clearTimeout(firstOpenTimer);
      });
      if (!everOpened && firstOpenTimer === null) {
        firstOpenTimer = setTimeout(() => {
          if (!everOpened) fallBack(`The WebSocket did not open within ${FIRST_OPEN_TIMEOUT_MS / 1000} s.`);
        }, FIRST_OPEN_TIMEOUT_MS);
      }
      return socket;
    },
    connectHeaders: {
      ...(name ? { login: name } : {}),
      ...(joined.passcode ? { passcode: joined.passcode } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    reconnectDelay: 1000,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  client = stomp;
  stomp.onConnect = (frame) => {
    if (client !== stomp) return;
    everConnected = true;
    session = frame.headers.session;
    mySessions.add(session);
    setStatus('live');
    showNotice('');
    // Presence first: its snapshot tells our verified login before the history is shown.
    stomp.subscribe(PRESENCE, onPresence);
    const replay = lastMessageId ? { 'replay-after': lastMessageId } : { 'replay-last': HISTORY_ON_JOIN };
    stomp.subscribe(CHAT, (message) => renderMessage({
      id: message.headers['message-id'], headers: message.headers, body: message.body,
    }), replay);
  };
  stomp.onStompError = (frame) => {
    if (client !== stomp) return;
    const reason = frame.headers.message ?? 'error';
    console.warn(`the room refused: ${reason}: ${frame.body}`);
    setStatus('error');
    if (reason === 'authentication failed' || reason === 'token expired') {
      void stomp.deactivate(); // the same credentials would only be refused again
      showNotice(refusalText(reason));
    } else if (reason === 'room full' || reason === 'too many connections') {
      // Refused as the socket opened: wait longer than the usual reconnect delay.
      showNotice(`The room is full right now. Trying again in ${RETRY_WHEN_FULL_MS / 1000} s.`);
      void stomp.deactivate().then(() => setTimeout(() => {
        if (client !== stomp) return;
        setStatus(everConnected ? 'reconnecting' : 'connecting');
        stomp.activate();
      }, RETRY_WHEN_FULL_MS));
    } else {
      showNotice(refusalText(reason));
    }
  };
  stomp.onWebSocketClose = () => {
    if (client !== stomp) return;
    members.clear();
    renderMembers();
    if (!everOpened) {
      // The very first socket closed without ever opening: WebSockets do not get through
      // here (a proxy, a firewall, an extension), so climb down to HTTP.
      fallBack('The WebSocket could not be opened.');
      return;
    }
    if (stomp.active) setStatus(everConnected ? 'reconnecting' : 'connecting');
  };
  stomp.activate();
}

/** Leaves the WebSocket for server-sent events + POST, for the rest of the page's life. */
function fallBack(reason) {
  if (transport !== 'websocket') return;
  const stomp = client;
  client = null;
  void stomp?.deactivate();
  useEventStream(reason);
}

/** The lower rungs: an event stream to receive, a POST per message to send. */
function useEventStream(reason) {
  setTransport('sse', reason);
  members.clear();
  renderMembers();
  if (typeof EventSource !== 'function') {
    setStatus('error');
    showNotice('This browser can open neither a WebSocket nor an event stream, so it cannot join the room.');
    return;
  }
  openEventStream(false);
}

/** Where the room's chat destination is over HTTP, with query parameters. */
function chatUrl(params) {
  return `/rooms/${joined.room}${CHAT}?${new URLSearchParams(params)}`;
}

/** The display name for HTTP requests, which have no CONNECT to carry it. */
function loginParam() {
  return joined.name ? { login: joined.name } : {};
}

function authorization() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Opens the event stream: the last messages on joining, else everything after the last one
 * shown. Once open, the browser itself reconnects it (with Last-Event-ID) after a network
 * error; a refusal closes it for good, and streamClosed() finds out why. */
function openEventStream(everOpened) {
  const params = loginParam();
  if (lastMessageId) params.after = lastMessageId;
  else params.last = HISTORY_ON_JOIN;
  // EventSource cannot set headers, so a token goes in the query.
  if (token) params.access_token = token;
  const stream = new EventSource(chatUrl(params));
  source = stream;
  stream.addEventListener('open', () => {
    if (source !== stream) return;
    everOpened = true;
    setStatus('live');
    showNotice('');
  });
  stream.addEventListener('message', (event) => {
    if (source !== stream) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return; // not a message of ours
    }
    renderMessage({
      id: String(message.id),
      headers: message.headers ?? {},
      body: message.body ?? decodeBase64(message.body_base64 ?? ''),
    });
  });
  stream.addEventListener('error', () => {
    if (source !== stream) return;
    if (stream.readyState === EventSource.CLOSED) {
      source = null;
      void streamClosed(everOpened);
    } else {
      setStatus(everOpened ? 'reconnecting' : 'connecting');
    }
  });
}

/** The event stream was refused, and EventSource does not say why: a short poll with the same
 * credentials asks the room. A refusal of who we are is final; anything else is tried again. */
async function streamClosed(everOpened) {
  let status = 0;
  let reason = '';
  try {
    const response = await fetch(chatUrl({ ...loginParam(), last: '0' }), {
      headers: { Accept: 'application/json', ...authorization() },
      cache: 'no-store',
    });
    status = response.status;
    reason = response.ok ? '' : (await response.text()).trim();
  } catch {
    // the room cannot be reached: try again shortly
  }
  if (status === 401 || status === 403 || status === 400) {
    console.warn(`the room refused the event stream: ${status} ${reason}`);
    setStatus('error');
    showNotice(/token expired/.test(reason) ? TOKEN_EXPIRED : refusalText(status === 400 ? 401 : status));
    return;
  }
  const delay = status === 0 ? STREAM_RETRY_MS : RETRY_WHEN_FULL_MS;
  setStatus(everOpened ? 'reconnecting' : 'connecting');
  if (status !== 0) {
    showNotice(`${reason || 'The room could not open an event stream right now.'} Trying again in ${delay / 1000} s.`);
  }
  setTimeout(() => openEventStream(everOpened), delay);
}

function decodeBase64(text) {
  const bytes = Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** Sends one message with a POST; the room answers 201 with its id once it is stored. */
async function post(text) {
  let failure;
  try {
    const response = await fetch(chatUrl(loginParam()), {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain;charset=utf-8', ...authorization() },
      body: text,
    });
    if (response.status === 201) {
      const { id } = await response.json();
      markMine(String(id));
      return;
    }
    const reason = (await response.text()).trim();
    console.warn(`the room refused a POST: ${response.status} ${reason}`);
    failure = /token expired/.test(reason) ? TOKEN_EXPIRED : refusalText(response.status).replace(/ ?Reconnecting…$/, '');
  } catch {
    failure = 'The room could not be reached, so the message was not sent.';
  }
  if (ui.text.value) {
    const quoted = text.length > 80 ? `${text.slice(0, 80)}…` : text;
    showNotice(`${failure} It was: ${quoted}`);
  } else {
    ui.text.value = text;
    showNotice(`${failure} It is back in the box.`);
  }
}

function send() {
  const text = ui.text.value;
  if (!text.trim()) return;
  const size = new TextEncoder().encode(text).length;
  if (size > MAX_BODY_BYTES) {
    showNotice(`That message is ${Math.ceil(size / 1024)} KiB; a room takes at most ${MAX_BODY_BYTES >> 10} KiB.`);
    return;
  }
  if (transport === 'sse') {
    ui.text.value = '';
    showNotice('');
    void post(text);
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
  if (name) localStorage.setItem('stomp-rooms:name', name);
  const url = new URL(location.href);
  url.searchParams.set('room', room);
  history.replaceState(null, '', url);
  join(token ? '' : name, room, token ? '' : ui.passcode.value);
});

ui.leave.addEventListener('click', () => {
  sessionStorage.removeItem(JOINED_KEY);
  location.reload(); // back to the join form, with nothing of the room left running
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
ui.nameField.hidden = Boolean(token);
ui.passcode.parentElement.hidden = Boolean(token);
const params = new URLSearchParams(location.search);
ui.room.value = params.get('room') ?? 'lobby';
ui.name.value = localStorage.getItem('stomp-rooms:name') ?? '';
// A reload of a tab that had joined this room rejoins it at once.
let rejoin = null;
try {
  rejoin = JSON.parse(sessionStorage.getItem(JOINED_KEY) ?? 'null');
} catch {
  sessionStorage.removeItem(JOINED_KEY);
}
if (rejoin?.room === ui.room.value) join(rejoin.name ?? '', rejoin.room, rejoin.passcode ?? '');
else (ui.name.value || token ? ui.room : ui.name).focus();
