//! The room Durable Object: one instance per room name, holding that room's WebSockets.
//!
//! Sockets are accepted with the hibernation API (`accept_web_socket`), so a room whose sockets
//! are idle is evicted from memory and costs nothing; the runtime wakes it with
//! `websocket_message` when a socket speaks. For now the room relays each message to the room's
//! other sockets; the STOMP broker replaces the relay.

use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::stomp::subprotocol;

#[durable_object]
pub struct Room {
    state: State,
}

impl DurableObject for Room {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let offered = req.headers().get("Sec-WebSocket-Protocol")?;
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let response = Response::from_websocket(pair.client)?;
        if let Some(chosen) = subprotocol::choose(offered.as_deref()) {
            response.headers().set("Sec-WebSocket-Protocol", chosen)?;
        }
        Ok(response)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        for other in self.state.get_websockets() {
            if other == ws {
                continue;
            }
            // A peer that is closing may refuse a send; the others still get the message.
            let _ = match &message {
                WebSocketIncomingMessage::String(text) => other.send_with_str(text),
                WebSocketIncomingMessage::Binary(bytes) => other.send_with_bytes(bytes),
            };
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        // Complete the closing handshake; 1005/1006 are reserved and cannot be sent back.
        let code = if matches!(code, 1005 | 1006) {
            1000
        } else {
            code as u16
        };
        let _ = ws.close(Some(code), Some(reason));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }
}
