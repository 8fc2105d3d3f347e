// The floor: a minimal Durable Object that rebroadcasts each text message to every other
// socket in its room, with no STOMP work. What a stomp-rooms room would cost if STOMP were free.
// It uses the same platform features as the product: hibernation and the heart-beat
// auto-response, and the same routing (one object per /rooms/{room}).

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
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(ws, message) {
    this.events.messages++;
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

export default {
  fetch(request, env) {
    const match = new URL(request.url).pathname.match(/^\/rooms\/([A-Za-z0-9._-]+)(\/stats)?$/);
    if (!match) return new Response('not found', { status: 404 });
    return env.FLOOR.get(env.FLOOR.idFromName(match[1])).fetch(request);
  },
};
