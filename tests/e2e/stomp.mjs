// Real @stomp/stompjs clients for end-to-end tests, with promise helpers for waiting on what
// they receive. Node 22's built-in WebSocket carries them, as a browser's would.

import { Client, Versions } from '@stomp/stompjs';

const DEFAULT_TIMEOUT_MS = 5000;

/** Resolves when `predicate()` is true, checking whenever `subscribeChange` fires. */
function waitUntil(describe, predicate, register, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    if (predicate()) return resolve();
    const timer = setTimeout(() => {
      unregister();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`));
    }, timeoutMs);
    const unregister = register(() => {
      if (predicate()) {
        clearTimeout(timer);
        unregister();
        resolve();
      }
    });
  });
}

/** A received list that can be awaited until it holds n items. */
export class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.listeners = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const listener of [...this.listeners]) listener();
  }

  async atLeast(n, timeoutMs) {
    await waitUntil(
      () => `${n} items in ${this.name}, have ${this.items.length}: ${JSON.stringify(this.items.map(describeItem))}`,
      () => this.items.length >= n,
      (listener) => { this.listeners.add(listener); return () => this.listeners.delete(listener); },
      timeoutMs,
    );
    return this.items.slice(0, n);
  }

  get bodies() {
    return this.items.map((m) => m.body);
  }
}

function describeItem(item) {
  return item?.command ? `${item.command} ${item.body ?? ''}` : item;
}

/**
 * Connects a stomp.js client. Options: versions (['1.2']...), login, passcode, connectHeaders
 * (more CONNECT headers, e.g. { Authorization: 'Bearer ...' }), heartbeat ([outgoing, incoming]).
 * Resolves once CONNECTED; rejects if the server answers with an ERROR (the rejection's `frame`
 * is that ERROR frame) or closes the socket first (its `closeEvent`); the rejection's `closes`
 * Inbox then receives the socket's close.
 */
export async function connect(url, {
  versions, login, passcode, connectHeaders = {}, heartbeat = [0, 0], debug = false,
} = {}) {
  const errors = new Inbox('ERROR frames');
  const closes = new Inbox('socket closes');
  const pongs = new Inbox('server heart-beats');
  const receipts = new Inbox('receipts');
  const client = new Client({
    brokerURL: url,
    connectHeaders: { ...(login ? { login } : {}), ...(passcode ? { passcode } : {}), ...connectHeaders },
    heartbeatOutgoing: heartbeat[0],
    heartbeatIncoming: heartbeat[1],
    reconnectDelay: 0,
    debug: (line) => {
      if (line.includes('<<< PONG')) pongs.push(Date.now());
      if (debug) console.log(line);
    },
  });
  if (versions) client.stompVersions = new Versions(versions);
  client.onStompError = (frame) => errors.push(frame);
  client.onWebSocketClose = (event) => closes.push(event);
  client.onUnhandledReceipt = (frame) => receipts.push(frame);
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => {
      errors.push(frame);
      reject(Object.assign(new Error(`ERROR: ${frame.headers.message}: ${frame.body}`), { frame, closes }));
    };
    client.onWebSocketClose = (event) => {
      closes.push(event);
      reject(Object.assign(new Error(`closed before CONNECTED (${event.code})`), { closeEvent: event, closes }));
    };
  });
  client.activate();
  const frame = await connected;
  client.onStompError = (frame) => errors.push(frame);
  client.onWebSocketClose = (event) => closes.push(event);
  return new TestClient(client, frame, { errors, closes, pongs, receipts });
}

export class TestClient {
  constructor(client, connectedFrame, inboxes) {
    this.client = client;
    this.connectedFrame = connectedFrame;
    Object.assign(this, inboxes);
    this.receiptCounter = 0;
  }

  /** Subscribes; returns an Inbox of the MESSAGE frames (stomp.js IMessage objects). */
  subscribe(destination, headers = {}) {
    const inbox = new Inbox(`messages on ${destination}`);
    inbox.subscription = this.client.subscribe(destination, (message) => inbox.push(message), headers);
    return inbox;
  }

  publish(destination, body, headers = {}) {
    this.client.publish({ destination, body, headers });
  }

  /** Sends a frame with a receipt header and resolves with the RECEIPT frame. */
  withReceipt(send) {
    const id = `r-${++this.receiptCounter}-${Math.random().toString(36).slice(2)}`;
    const receipt = new Promise((resolve) => this.client.watchForReceipt(id, resolve));
    send({ receipt: id });
    return receipt;
  }

  /** Publishes and waits for the server's RECEIPT, i.e. until the message is stored and routed. */
  publishConfirmed(destination, body, headers = {}) {
    return this.withReceipt((receipt) => this.publish(destination, body, { ...headers, ...receipt }));
  }

  get connected() {
    return this.client.connected;
  }

  /** deactivate(): DISCONNECT with a receipt. Resolves with the RECEIPT frame, or null if
   * stomp.js had to give up waiting for it and close the socket itself. */
  async disconnect() {
    let receipt = null;
    this.client.onDisconnect = (frame) => { receipt = frame; };
    await this.client.deactivate();
    return receipt;
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
