// Plain HTTP clients for the rooms' HTTP rungs (POST to publish, short and long polls,
// server-sent events), on Node 22's own fetch, with promise helpers for the end-to-end tests.
// EventStream reads an event stream by hand, so a test decides exactly when the connection
// breaks (abort) and what a reconnect sends (Last-Event-ID).

import { Inbox, sleep } from './stomp.mjs';

/** Opens an EventSource (of the given class) and waits up to 5 s for it to open; `events`
 * collects its message events. The caller closes `source`. */
export async function openEventSource(EventSourceClass, url) {
  const source = new EventSourceClass(url);
  const events = new Inbox('EventSource message events');
  source.addEventListener('message', (event) => events.push(event));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { source.close(); reject(new Error('the EventSource did not open in 5 s')); }, 5000);
    source.addEventListener('open', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
  return { source, events };
}

/** `${base}/rooms/${room}${destination}?query`; query values that are undefined are left out. */
export function destinationUrl(base, room, destination = '/topic/chat', query = {}) {
  const url = new URL(`/rooms/${room}${destination}`, base);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  return url.href;
}

/**
 * Sends one request and reads the whole answer: { status, headers, text, json, ms }. `json` is
 * the parsed body when the answer says application/json; `ms` is how long the answer took.
 */
export async function request(url, { method = 'GET', headers = {}, body, signal } = {}) {
  const started = Date.now();
  const response = await fetch(url, { method, headers, body, signal });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return {
    status: response.status,
    headers: response.headers,
    text,
    json: type.startsWith('application/json') ? JSON.parse(text) : undefined,
    ms: Date.now() - started,
  };
}

/** `GET /rooms/{room}/stats`, parsed. */
export async function roomStats(base, room) {
  const response = await fetch(new URL(`/rooms/${room}/stats`, base));
  if (!response.ok) throw new Error(`stats of ${room}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

/** Resolves once `check()` (sync or async) is truthy, trying every `intervalMs`. */
export async function until(check, describe, timeoutMs = 5000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe}`);
    await sleep(intervalMs);
  }
}

/**
 * One server-sent event stream, read by hand over fetch. `events` receives
 * { id, event, data, message } per event (`message` is `data` parsed as JSON), `comments` the
 * text of each comment line with the time it came ({ text, at }), `blocks` every raw block (the
 * text between blank lines), so a test can see the `retry:` the stream starts with.
 */
export class EventStream {
  /** Opens the stream (Accept: text/event-stream plus `headers`). A refusal is not thrown:
   * the result then has its `status` and `text`, and reads nothing more. */
  static async open(url, headers = {}) {
    const controller = new AbortController();
    const response = await fetch(url, {
      headers: { Accept: 'text/event-stream', ...headers },
      signal: controller.signal,
    });
    const stream = new EventStream(response, controller);
    const type = response.headers.get('content-type') ?? '';
    if (response.ok && type.startsWith('text/event-stream')) {
      stream.done = stream.pump(response.body);
    } else {
      stream.text = await response.text();
      stream.done = Promise.resolve();
    }
    return stream;
  }

  constructor(response, controller) {
    this.status = response.status;
    this.headers = response.headers;
    this.controller = controller;
    this.openedAt = Date.now();
    this.text = '';
    this.events = new Inbox(`events of ${response.url}`);
    this.comments = new Inbox(`comments of ${response.url}`);
    this.blocks = new Inbox(`blocks of ${response.url}`);
    this.ended = false;
    this.error = null;
  }

  async pump(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      // Aborting is how a test breaks the stream off; anything else is kept for the test.
      if (!this.controller.signal.aborted) this.error = error;
    } finally {
      this.ended = true;
    }
  }

  parse(block) {
    this.blocks.push(block);
    const event = { id: undefined, event: 'message', data: [] };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push({ text: line.slice(1).trim(), at: Date.now() });
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') event.id = value;
      else if (field === 'event') event.event = value;
      else if (field === 'data') event.data.push(value);
    }
    if (event.data.length > 0) {
      const data = event.data.join('\n');
      this.events.push({ id: event.id, event: event.event, data, message: JSON.parse(data) });
    }
  }

  /** Ids of the events received so far, as numbers. */
  get ids() {
    return this.events.items.map((event) => Number(event.id));
  }

  /** Breaks the connection off (as a network failure or a closed tab would). */
  async close() {
    this.controller.abort();
    await this.done.catch(() => {});
  }
}
