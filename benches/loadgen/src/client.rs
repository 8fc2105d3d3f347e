//! A minimal STOMP-over-WebSocket client on top of the product's own codec, and the bare
//! text-message client for the floor.
//!
//! One WebSocket message may carry several NUL-terminated STOMP frames (stomp-rooms coalesces
//! the MESSAGE frames due to one subscriber): the reader decodes every frame of each WebSocket
//! message and counts both, so a run can report WebSocket messages per delivery. The floor sends
//! each message as one WebSocket text message of its own: one delivery each.

use std::collections::VecDeque;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, Version};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async_with_config, MaybeTlsStream, WebSocketStream};

use crate::Error;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which system is on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// stomp-rooms.
    Stomp,
    /// RabbitMQ's Web-STOMP plugin (guest/guest, vhost "/").
    Rabbit,
    /// The floor: a Durable Object that rebroadcasts bare text messages.
    Floor,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stomp => "stomp-rooms",
            Self::Rabbit => "rabbitmq-web-stomp",
            Self::Floor => "floor",
        }
    }

    fn speaks_stomp(self) -> bool {
        self != Self::Floor
    }
}

pub struct Conn {
    writer: Writer,
    reader: Reader,
}

pub struct Writer {
    sink: SplitSink<Ws, Message>,
    flavor: Flavor,
    unflushed: usize,
    /// SEND frames per WebSocket message (STOMP only; 1 unless `batch_sends` said otherwise),
    /// and the frames waiting to fill the next one.
    sends_per_message: usize,
    pending: Vec<u8>,
    pending_sends: usize,
}

pub struct Reader {
    stream: SplitStream<Ws>,
    flavor: Flavor,
    decoder: Decoder,
    bodies: VecDeque<Vec<u8>>,
    counts: Counts,
}

/// What a reader has received so far: WebSocket data messages (text or binary, heart-beats
/// included) and the deliveries parsed from them (MESSAGE frames; the floor's text messages).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub ws_messages: u64,
    pub deliveries: u64,
}

impl Counts {
    /// What arrived since `earlier`, a snapshot of the same reader.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            ws_messages: self.ws_messages - earlier.ws_messages,
            deliveries: self.deliveries - earlier.deliveries,
        }
    }

    pub fn add(&mut self, other: Counts) {
        self.ws_messages += other.ws_messages;
        self.deliveries += other.deliveries;
    }

    /// WebSocket messages per delivery: 1 when each delivery is a WebSocket message of its own,
    /// less when several MESSAGE frames share one. `None` before any delivery.
    pub fn ws_messages_per_delivery(self) -> Option<f64> {
        (self.deliveries > 0).then(|| self.ws_messages as f64 / self.deliveries as f64)
    }
}

/// Decodes one WebSocket message's worth of STOMP bytes, queueing every MESSAGE body it completes
/// (one WebSocket message may hold several frames, or end inside one); returns how many.
fn decode_messages(
    decoder: &mut Decoder,
    data: &[u8],
    bodies: &mut VecDeque<Vec<u8>>,
) -> Result<u64, Error> {
    decoder.push(data);
    let mut delivered = 0;
    while let Some(item) = decoder.next_item()? {
        if let Decoded::Frame(frame) = item {
            match frame.command {
                Command::Message => {
                    bodies.push_back(frame.body);
                    delivered += 1;
                }
                Command::Error => {
                    return Err(format!("ERROR: {:?}", frame.header("message")).into())
                }
                _ => {}
            }
        }
    }
    Ok(delivered)
}

impl Conn {
    /// Opens the WebSocket and, for STOMP systems, completes CONNECT/CONNECTED.
    pub async fn open(
        flavor: Flavor,
        url: &str,
        heart_beat: (u32, u32),
        login: &str,
    ) -> Result<Self, Error> {
        Self::open_with(flavor, url, heart_beat, login, None).await
    }

    /// As `open`, with 16 KiB socket buffers instead of tungstenite's 128 KiB each way: ten
    /// thousand subscribers of small messages in one process.
    pub async fn open_lean(flavor: Flavor, url: &str, login: &str) -> Result<Self, Error> {
        let config = WebSocketConfig::default()
            .read_buffer_size(16 << 10)
            .write_buffer_size(16 << 10);
        Self::open_with(flavor, url, (0, 0), login, Some(config)).await
    }

    async fn open_with(
        flavor: Flavor,
        url: &str,
        heart_beat: (u32, u32),
        login: &str,
        config: Option<WebSocketConfig>,
    ) -> Result<Self, Error> {
        let mut request = url.into_client_request()?;
        if flavor.speaks_stomp() {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("v12.stomp"),
            );
        }
        let (ws, _) = connect_async_with_config(request, config, false).await?;
        let (sink, stream) = ws.split();
        let mut decoder = Decoder::new(Limits {
            max_frame_bytes: 64 << 20,
            max_body_bytes: 64 << 20,
            ..Limits::default()
        });
        decoder.set_version(Version::V1_2);
        let mut conn = Self {
            writer: Writer {
                sink,
                flavor,
                unflushed: 0,
                sends_per_message: 1,
                pending: Vec::new(),
                pending_sends: 0,
            },
            reader: Reader {
                stream,
                flavor,
                decoder,
                bodies: VecDeque::new(),
                counts: Counts::default(),
            },
        };
        if flavor.speaks_stomp() {
            let (host, login, passcode) = match flavor {
                Flavor::Rabbit => ("/", "guest", "guest"),
                _ => ("room", login, ""),
            };
            let connect = Frame::new(Command::Connect)
                .with_header("accept-version", "1.2")
                .with_header("host", host)
                .with_header("login", login)
                .with_header("passcode", passcode)
                .with_header("heart-beat", &format!("{},{}", heart_beat.0, heart_beat.1));
            conn.writer.send_frame(&connect).await?;
            conn.writer.flush().await?;
            conn.reader.expect(Command::Connected).await?;
        }
        Ok(conn)
    }

    /// Subscribes and waits for the RECEIPT, so the subscription is live when this returns.
    pub async fn subscribe(&mut self, destination: &str) -> Result<(), Error> {
        if !self.writer.flavor.speaks_stomp() {
            return Ok(());
        }
        let subscribe = Frame::new(Command::Subscribe)
            .with_header("id", "0")
            .with_header("destination", destination)
            .with_header("receipt", "subscribed");
        self.writer.send_frame(&subscribe).await?;
        self.writer.flush().await?;
        self.reader.expect(Command::Receipt).await
    }

    pub async fn publish(&mut self, destination: &str, body: &[u8]) -> Result<(), Error> {
        self.writer.publish(destination, body).await
    }

    pub async fn flush(&mut self) -> Result<(), Error> {
        self.writer.flush().await
    }

    /// Publishes `n` SEND frames per WebSocket message from now on (STOMP systems; the floor
    /// has no frames to join): what a client batching its sends does, and one event of the room
    /// that releases several messages at once.
    pub fn batch_sends(&mut self, n: usize) {
        if self.writer.flavor.speaks_stomp() {
            self.writer.sends_per_message = n.max(1);
        }
    }

    pub async fn next_body(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.reader.next_body().await
    }

    pub fn counts(&self) -> Counts {
        self.reader.counts
    }

    pub fn split(self) -> (Writer, Reader) {
        (self.writer, self.reader)
    }

    pub async fn close(&mut self) {
        let _ = self.writer.sink.send(Message::Close(None)).await;
    }
}

impl Writer {
    async fn send_frame(&mut self, frame: &Frame) -> Result<(), Error> {
        let bytes = frame.encode(Some(Version::V1_2));
        self.sink
            .feed(Message::text(String::from_utf8(bytes)?))
            .await?;
        Ok(())
    }

    /// Sends a message; flushes every 64 so an unpaced publisher batches its writes.
    pub async fn publish(&mut self, destination: &str, body: &[u8]) -> Result<(), Error> {
        if self.flavor.speaks_stomp() {
            let send = Frame::new(Command::Send)
                .with_header("destination", destination)
                .with_body(body.to_vec());
            self.pending.extend(send.encode(Some(Version::V1_2)));
            self.pending_sends += 1;
            if self.pending_sends >= self.sends_per_message {
                self.send_pending().await?;
            }
        } else {
            self.sink
                .feed(Message::text(String::from_utf8(body.to_vec())?))
                .await?;
        }
        self.unflushed += 1;
        if self.unflushed >= 64 {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), Error> {
        self.send_pending().await?;
        self.unflushed = 0;
        self.sink.flush().await?;
        Ok(())
    }

    async fn send_pending(&mut self) -> Result<(), Error> {
        if self.pending_sends > 0 {
            let bytes = std::mem::take(&mut self.pending);
            self.pending_sends = 0;
            self.sink
                .feed(Message::text(String::from_utf8(bytes)?))
                .await?;
        }
        Ok(())
    }

    /// A client heart-beat: a bare EOL, as stomp.js sends it.
    pub async fn heart_beat(&mut self) -> Result<(), Error> {
        self.sink.send(Message::text("\n")).await?;
        Ok(())
    }
}

impl Reader {
    /// The next MESSAGE body (STOMP) or text message (floor); `None` when the socket closed.
    pub async fn next_body(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if let Some(body) = self.bodies.pop_front() {
                return Ok(Some(body));
            }
            let Some(data) = self.next_data().await? else {
                return Ok(None);
            };
            if !self.flavor.speaks_stomp() {
                if data != b"\n" {
                    self.counts.deliveries += 1;
                    return Ok(Some(data));
                }
                continue;
            }
            self.counts.deliveries += decode_messages(&mut self.decoder, &data, &mut self.bodies)?;
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The next WebSocket message of any kind, heart-beats included.
    pub async fn next_raw(&mut self) -> Result<Option<()>, Error> {
        Ok(self.next_data().await?.map(|_| ()))
    }

    async fn next_data(&mut self) -> Result<Option<Vec<u8>>, Error> {
        while let Some(message) = self.stream.next().await {
            let data = match message? {
                Message::Text(text) => text.as_bytes().to_vec(),
                Message::Binary(bytes) => bytes.to_vec(),
                Message::Close(_) => return Ok(None),
                _ => continue,
            };
            self.counts.ws_messages += 1;
            return Ok(Some(data));
        }
        Ok(None)
    }

    async fn expect(&mut self, command: Command) -> Result<(), Error> {
        loop {
            let Some(data) = self.next_data().await? else {
                return Err(format!("closed while waiting for {command}").into());
            };
            self.decoder.push(&data);
            while let Some(item) = self.decoder.next_item()? {
                if let Decoded::Frame(frame) = item {
                    if frame.command == command {
                        return Ok(());
                    }
                    if frame.command == Command::Error {
                        return Err(format!(
                            "ERROR while waiting for {command}: {:?}",
                            frame.header("message")
                        )
                        .into());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Vec<u8> {
        Frame::new(Command::Message)
            .with_header("destination", "/topic/chat")
            .with_header("subscription", "0")
            .with_header("message-id", "1")
            .with_body(body.as_bytes().to_vec())
            .encode(Some(Version::V1_2))
    }

    fn decoder() -> Decoder {
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_version(Version::V1_2);
        decoder
    }

    #[test]
    fn one_websocket_message_of_three_frames_is_three_deliveries() {
        let mut data = message("one");
        data.extend(message("two"));
        data.extend(b"\n"); // a heart-beat EOL between frames
        data.extend(message("three"));
        let mut bodies = VecDeque::new();
        assert_eq!(
            decode_messages(&mut decoder(), &data, &mut bodies).unwrap(),
            3
        );
        assert_eq!(
            Vec::from(bodies),
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }

    #[test]
    fn a_frame_split_over_two_websocket_messages_is_one_delivery_when_complete() {
        let data = message("split");
        let (first, second) = data.split_at(data.len() / 2);
        let (mut decoder, mut bodies) = (decoder(), VecDeque::new());
        assert_eq!(
            decode_messages(&mut decoder, first, &mut bodies).unwrap(),
            0
        );
        assert_eq!(
            decode_messages(&mut decoder, second, &mut bodies).unwrap(),
            1
        );
        assert_eq!(Vec::from(bodies), vec![b"split".to_vec()]);
    }

    #[test]
    fn ws_messages_per_delivery_is_messages_over_deliveries() {
        let counts = Counts {
            ws_messages: 10,
            deliveries: 40,
        };
        assert_eq!(counts.ws_messages_per_delivery(), Some(0.25));
        assert_eq!(Counts::default().ws_messages_per_delivery(), None);
    }
}
