//! The one protocol-error type. Whatever goes wrong on a connection becomes a [`ProtocolError`],
//! and [`ProtocolError::to_frame`] is the one place that turns it into the ERROR frame the peer
//! is told, before the connection closes.

use super::frame::{Command, Frame};

/// A violation by the peer (or a refusal by the server) that ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// Short summary, sent as the ERROR frame's `message` header.
    pub message: String,
    /// What happened and what to do about it, sent as the ERROR frame's body.
    pub detail: String,
    /// The `receipt` of the frame that caused the error, echoed as `receipt-id`.
    pub receipt: Option<String>,
    /// Extra headers for the ERROR frame (the `version` list on a failed negotiation).
    pub headers: Vec<(String, String)>,
    /// The WebSocket close code after the ERROR: 1002 (protocol error) unless a refusal says
    /// otherwise, e.g. 1008 (policy violation) or 1013 (try again later).
    pub close_code: u16,
}

impl ProtocolError {
    pub fn new(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            detail: detail.into(),
            receipt: None,
            headers: Vec::new(),
            close_code: 1002,
        }
    }

    pub fn with_close_code(mut self, code: u16) -> Self {
        self.close_code = code;
        self
    }

    pub fn with_receipt(mut self, receipt: Option<&str>) -> Self {
        if self.receipt.is_none() {
            self.receipt = receipt.map(str::to_owned);
        }
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The ERROR frame that tells the peer about this error.
    pub fn to_frame(&self) -> Frame {
        let mut frame = Frame::new(Command::Error)
            .with_header("message", &self.message)
            .with_header("content-type", "text/plain");
        if let Some(receipt) = &self.receipt {
            frame = frame.with_header("receipt-id", receipt);
        }
        for (name, value) in &self.headers {
            frame = frame.with_header(name, value);
        }
        frame.body = self.detail.clone().into_bytes();
        frame
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.message, self.detail)
    }
}

impl std::error::Error for ProtocolError {}
