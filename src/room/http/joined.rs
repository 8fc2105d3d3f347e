//! Coalescing for open responses (event streams, SockJS's streaming receivers): what the room
//! pushed while the response was still passing on the last chunk leaves as one chunk, one
//! write, rather than one write each. A lone push leaves at once, as it came: nothing waits
//! for company, so only a response already backed up is joined (the same rule as a socket's
//! frames, [`crate::room::coalesce`]).
//!
//! The bytes a client reads are the same either way (an event stream, or SockJS's `a[…]`
//! frames one per line, is read by its delimiters, whatever the writes); only the number of
//! writes changes.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

/// The most bytes one joined chunk carries: a push that would pass it leaves in the next (a
/// push larger than this leaves alone, as it came).
pub const MAX_JOINED_BYTES: usize = 64 * 1024;

/// A stream of pushes (`Some(bytes)`, then `None` for the end the room asked for) with the
/// pushes that are ready together joined, up to `max` bytes a chunk. The end is never joined
/// into a chunk: it follows the chunk before it.
pub struct Joined<S> {
    pushes: S,
    max: usize,
    /// A push taken from `pushes` that did not fit the chunk before it.
    carried: Option<Option<Vec<u8>>>,
}

impl<S> Joined<S> {
    pub fn new(pushes: S, max: usize) -> Self {
        Self {
            pushes,
            max,
            carried: None,
        }
    }
}

impl<S: Stream<Item = Option<Vec<u8>>> + Unpin> Stream for Joined<S> {
    type Item = Option<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let first = match this.carried.take() {
            Some(push) => push,
            None => match Pin::new(&mut this.pushes).poll_next(cx) {
                Poll::Ready(Some(push)) => push,
                other => return other,
            },
        };
        let Some(mut chunk) = first else {
            return Poll::Ready(Some(None));
        };
        // Whatever else is ready now joins it, up to the bound; nothing is waited for.
        while chunk.len() < this.max {
            match Pin::new(&mut this.pushes).poll_next(cx) {
                Poll::Ready(Some(Some(bytes))) if chunk.len() + bytes.len() <= this.max => {
                    chunk.extend_from_slice(&bytes);
                }
                Poll::Ready(Some(push)) => {
                    this.carried = Some(push);
                    break;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        Poll::Ready(Some(Some(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::{FutureExt, StreamExt};

    type Pushes = mpsc::UnboundedSender<Option<Vec<u8>>>;

    fn joined(max: usize) -> (Pushes, Joined<mpsc::UnboundedReceiver<Option<Vec<u8>>>>) {
        let (sender, receiver) = mpsc::unbounded();
        (sender, Joined::new(receiver, max))
    }

    /// The next chunk if one is ready now (`None`: the response would wait).
    fn ready<S: Stream<Item = Option<Vec<u8>>> + Unpin>(
        stream: &mut Joined<S>,
    ) -> Option<Option<Option<Vec<u8>>>> {
        stream.next().now_or_never()
    }

    fn push(pushes: &Pushes, text: &str) {
        pushes
            .unbounded_send(Some(text.as_bytes().to_vec()))
            .expect("the stream is open");
    }

    #[test]
    fn a_lone_push_leaves_at_once_as_it_came() {
        let (pushes, mut stream) = joined(1024);
        assert_eq!(ready(&mut stream), None, "nothing pushed: it waits");
        push(&pushes, "data: 1\n\n");
        assert_eq!(
            ready(&mut stream),
            Some(Some(Some(b"data: 1\n\n".to_vec())))
        );
        assert_eq!(ready(&mut stream), None);
    }

    #[test]
    fn pushes_ready_together_leave_as_one_chunk_in_order() {
        let (pushes, mut stream) = joined(1024);
        for n in 1..=5 {
            push(&pushes, &format!("data: {n}\n\n"));
        }
        let expected = (1..=5)
            .map(|n| format!("data: {n}\n\n"))
            .collect::<String>();
        assert_eq!(ready(&mut stream), Some(Some(Some(expected.into_bytes()))));
        assert_eq!(ready(&mut stream), None);
    }

    #[test]
    fn a_chunk_stops_before_the_push_that_would_pass_the_bound_which_leads_the_next() {
        let (pushes, mut stream) = joined(10);
        push(&pushes, "aaaa");
        push(&pushes, "bbbb");
        push(&pushes, "cccc");
        push(&pushes, "dddddddddddddddd");
        push(&pushes, "e");
        assert_eq!(ready(&mut stream), Some(Some(Some(b"aaaabbbb".to_vec()))));
        assert_eq!(ready(&mut stream), Some(Some(Some(b"cccc".to_vec()))));
        assert_eq!(
            ready(&mut stream),
            Some(Some(Some(b"dddddddddddddddd".to_vec()))),
            "larger than the bound: alone, as it came"
        );
        assert_eq!(ready(&mut stream), Some(Some(Some(b"e".to_vec()))));
    }

    #[test]
    fn a_bound_of_zero_passes_each_push_alone() {
        let (pushes, mut stream) = joined(0);
        push(&pushes, "o\n");
        push(&pushes, "c[3000,\"Go away!\"]\n");
        assert_eq!(ready(&mut stream), Some(Some(Some(b"o\n".to_vec()))));
        let close = b"c[3000,\"Go away!\"]\n".to_vec();
        assert_eq!(ready(&mut stream), Some(Some(Some(close))));
    }

    #[test]
    fn the_end_follows_the_chunk_before_it_and_is_never_joined() {
        let (pushes, mut stream) = joined(1024);
        push(&pushes, "a[\"x\"]\n");
        pushes.unbounded_send(None).expect("open");
        push(&pushes, "never read");
        assert_eq!(ready(&mut stream), Some(Some(Some(b"a[\"x\"]\n".to_vec()))));
        assert_eq!(ready(&mut stream), Some(Some(None)), "the end");
    }

    #[test]
    fn a_closed_stream_ends_after_what_was_pushed() {
        let (pushes, mut stream) = joined(1024);
        push(&pushes, "last");
        drop(pushes);
        assert_eq!(ready(&mut stream), Some(Some(Some(b"last".to_vec()))));
        assert_eq!(ready(&mut stream), Some(None));
    }
}
