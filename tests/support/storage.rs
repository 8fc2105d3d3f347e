//! What the storage tests share: a plain message, and a load whose lists in no promised order
//! (cursors, address rates, history summaries: the room puts them in maps) are sorted, so two
//! stores' loads compare.

#![allow(dead_code)]

use stomp_rooms::room::{Storage, Stored};
use stomp_rooms::stomp::Message;

/// A text message with a `content-type`.
pub fn message(id: u64, destination: &str, body: &str) -> Message {
    Message {
        id,
        destination: destination.to_owned(),
        headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
        body: body.as_bytes().to_vec(),
        binary: false,
    }
}

/// What the store loads at a wake, its unordered lists sorted.
pub fn sorted_load(store: &dyn Storage) -> Stored {
    let mut stored = store.load().expect("load");
    stored.cursors.sort();
    stored.address_rates.sort_by(|a, b| a.0.cmp(&b.0));
    stored.history.sort_by(|a, b| a.0.cmp(&b.0));
    stored
}
