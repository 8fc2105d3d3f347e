// A small promise-based wrapper over the `ws` client for raw WebSocket tests.

import WebSocket from 'ws';

export class TestSocket {
  /** Opens a WebSocket; resolves once open, with the upgrade response's headers recorded. */
  static open(url, protocols = []) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols);
      const socket = new TestSocket(ws);
      ws.once('upgrade', (response) => { socket.upgradeHeaders = response.headers; });
      ws.once('open', () => resolve(socket));
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) => {
        reject(new Error(`unexpected HTTP ${response.statusCode} instead of a WebSocket upgrade`));
      });
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.received = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      this.received.push(isBinary ? Buffer.from(data) : data.toString());
      this.waiters = this.waiters.filter((waiter) => !waiter());
    });
  }

  send(data) {
    this.ws.send(data);
  }

  /** Resolves with the n-th message received (0-based), waiting up to timeoutMs for it. */
  nth(n, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for message #${n}; got ${JSON.stringify(this.received)}`)), timeoutMs);
      const check = () => {
        if (this.received.length > n) {
          clearTimeout(timer);
          resolve(this.received[n]);
          return true;
        }
        return false;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  close() {
    this.ws.close();
    return this.closed;
  }
}
