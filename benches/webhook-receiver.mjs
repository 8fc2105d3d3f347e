// The webhook receiver of the benchmark's "webhooks on" runs (scripts/bench.sh): answers every
// batch with 204 at once and counts what arrived, so the figures show the room's cost of keeping
// and sending its outbox, not a slow receiver's. On SIGTERM it writes its counts as JSON to the
// file given as its second argument.
//   node benches/webhook-receiver.mjs PORT COUNTS.json
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, countsFile] = process.argv.slice(2);
if (!port || !countsFile) {
  console.error('usage: node benches/webhook-receiver.mjs PORT COUNTS.json');
  process.exit(2);
}
const counts = { batches: 0, events: 0, message_events: 0, bytes: 0 };

createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    counts.batches += 1;
    counts.bytes += body.length;
    try {
      for (const event of JSON.parse(body).events ?? []) {
        counts.events += 1;
        if (event.type === 'message') counts.message_events += 1;
      }
    } catch {
      // Not a batch: counted in bytes only.
    }
    response.writeHead(204).end();
  });
}).listen(Number(port), '127.0.0.1');

process.on('SIGTERM', () => {
  writeFileSync(countsFile, JSON.stringify(counts));
  process.exit(0);
});
