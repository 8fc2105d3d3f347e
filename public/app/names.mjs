// How a message's sender and time are shown, the same on the chat page and in the terminal
// client (scripts/chat.mjs). The room stamps `sender`, `sender-verified` and `sender-name` on
// every message (README, "Verified and unverified senders"); a claimed name is only a display
// name, so it is never shown as verified.

/** The sender a STOMP session or an HTTP client claims nothing for. */
const HTTP_SENDER = 'http';

/** `{ name, verified }` from a message's headers. */
export function senderOf(headers) {
  const sender = headers.sender ?? '';
  if (headers['sender-verified'] === 'true') return { name: sender, verified: true };
  if (headers['sender-name']) return { name: headers['sender-name'], verified: false };
  if (sender === HTTP_SENDER) return { name: 'someone over HTTP', verified: false };
  return { name: sender ? `guest ${sender}` : 'someone', verified: false };
}

const pad = (number) => String(number).padStart(2, '0');

/** A message's time: the time of day for today's messages, with the date for older ones (and
 * the year for other years'), in local time. */
export function shortTime(at, now = new Date()) {
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  if (at.toDateString() === now.toDateString()) return time;
  const date = at.toLocaleDateString('en-GB', {
    day: 'numeric', month: 'short', ...(at.getFullYear() === now.getFullYear() ? {} : { year: 'numeric' }),
  });
  return `${date}, ${time}`;
}

/** A message's time in full: `2026-12-03 19:05`, local time. */
export function fullTime(at) {
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${pad(at.getHours())}:${pad(at.getMinutes())}`;
}
