// The floors: minimal Durable Objects that rebroadcast each text message to every other socket
// in their room, with no STOMP work. What a stomp-rooms room would cost if STOMP were free.
// They use the same platform features as the product: hibernation and the heart-beat
// auto-response, and the same routing (one object per room name).
//
//   /rooms/{room}     FloorRoom: rebroadcast only; nothing is stored per message.
//   /durable/{room}   DurableFloorRoom: the same rebroadcast, then one SQLite INSERT of the
//                     message into a history table, as stomp-rooms archives each topic message.
//                     The INSERT comes after the sends, so this message's sends are not held
//                     by the output gate; sends of a later message can still wait for an earlier
//                     commit, which is the platform's cost of durability. History is trimmed
//                     like the product's: every 32 messages, one DELETE keeps the newest 100.
//   .../stats         the object's wake count (stored) and handler calls since it last woke.
//
// A STOMP CONNECT (or STOMP) frame is answered with a CONNECTED frame, to its sender only and
// rebroadcast to nobody: the handshake a STOMP client waits for, at the platform's cost of one
// event and one send, with no STOMP work. The storm measures the floor's opens both without it
// (its clients send nothing) and with it ("floor with CONNECT": the clients stomp-rooms' use).

import { DurableObject } from 'cloudflare:workers';

export class FloorRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('\n', '\n'));
    this.events = { connects: 0, messages: 0, closes: 0, alarms: 0 };
    this.ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)');
    this.ctx.storage.sql.exec(
      "INSERT INTO meta VALUES ('wakes', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1");
  }

  async fetch(request) {
    if (new URL(request.url).pathname.endsWith('/stats')) {
      const wakes = this.ctx.storage.sql.exec("SELECT value FROM meta WHERE key = 'wakes'").one().value;
      return Response.json({ wakes, events_since_wake: this.events, sockets: this.ctx.getWebSockets().length });
    }
    this.events.connects++;
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    // A STOMP client offers its versions as subprotocols; the first is taken, as a server would.
    const offered = request.headers.get('Sec-WebSocket-Protocol');
    const headers = offered ? { 'Sec-WebSocket-Protocol': offered.split(',')[0].trim() } : {};
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  webSocketMessage(ws, message) {
    this.events.messages++;
    if (typeof message === 'string' && (message.startsWith('CONNECT\n') || message.startsWith('STOMP\n'))) {
      ws.send('CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0');
      return;
    }
    for (const other of this.ctx.getWebSockets()) {
      if (other !== ws) {
        try { other.send(message); } catch { /* closing */ }
      }
    }
  }

  webSocketClose(ws, code) {
    this.events.closes++;
    try { ws.close(code === 1005 || code === 1006 ? 1000 : code); } catch { /* closed */ }
  }
}

// stomp-rooms' defaults: history_limit 100 (src/room/settings.rs), TRIM_EVERY 32 (src/room/engine.rs).
const HISTORY_KEEP = 100;
const TRIM_EVERY = 32;

export class DurableFloorRoom extends FloorRoom {
  constructor(ctx, env) {
    super(ctx, env);
    this.ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL)');
    this.sinceTrim = 0; // in memory: after a wake, at most TRIM_EVERY - 1 extra rows stay a while
  }

  webSocketMessage(ws, message) {
    super.webSocketMessage(ws, message); // the sends first
    const sql = this.ctx.storage.sql;
    sql.exec('INSERT INTO history (body) VALUES (?)', message);
    if (++this.sinceTrim >= TRIM_EVERY) {
      this.sinceTrim = 0;
      sql.exec('DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?', HISTORY_KEEP);
    }
  }
}

export default {
  fetch(request, env) {
    const match = new URL(request.url).pathname.match(/^\/(rooms|durable)\/([A-Za-z0-9._-]+)(\/stats)?$/);
    if (!match) return new Response('not found', { status: 404 });
    const namespace = match[1] === 'durable' ? env.DURABLE_FLOOR : env.FLOOR;
    return namespace.get(namespace.idFromName(match[2])).fetch(request);
  },
};
