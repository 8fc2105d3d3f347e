//! A minimal STOMP-over-WebSocket client on top of the product's own codec, and the bare
//! text-message client for the floor.

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
}

pub struct Reader {
    stream: SplitStream<Ws>,
    flavor: Flavor,
    decoder: Decoder,
    bodies: VecDeque<Vec<u8>>,
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
            },
            reader: Reader {
                stream,
                flavor,
                decoder,
                bodies: VecDeque::new(),
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

    pub async fn next_body(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.reader.next_body().await
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
            self.send_frame(&send).await?;
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
        self.unflushed = 0;
        self.sink.flush().await?;
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
                    return Ok(Some(data));
                }
                continue;
            }
            self.decoder.push(&data);
            while let Some(item) = self.decoder.next_item()? {
                if let Decoded::Frame(frame) = item {
                    match frame.command {
                        Command::Message => self.bodies.push_back(frame.body),
                        Command::Error => {
                            return Err(format!("ERROR: {:?}", frame.header("message")).into())
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The next WebSocket message of any kind, heart-beats included.
    pub async fn next_raw(&mut self) -> Result<Option<()>, Error> {
        Ok(self.next_data().await?.map(|_| ()))
    }

    async fn next_data(&mut self) -> Result<Option<Vec<u8>>, Error> {
        while let Some(message) = self.stream.next().await {
            match message? {
                Message::Text(text) => return Ok(Some(text.as_bytes().to_vec())),
                Message::Binary(bytes) => return Ok(Some(bytes.to_vec())),
                Message::Close(_) => return Ok(None),
                _ => {}
            }
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
