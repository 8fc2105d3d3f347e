//! Frames that have only partly arrived, kept in storage in pieces so a wake resumes them.

#[allow(unused_imports)]
use super::*;

impl RoomEngine {
    /// Forgets the stored partial frames of connections the room no longer has: closed by a
    /// deadline, an error or a client, whatever the event.
    pub(super) fn forget_partial_frames_of_closed(&mut self) {
        let gone: Vec<ConnId> = self
            .partials
            .iter()
            .copied()
            .filter(|&conn| self.broker.session(conn).is_none())
            .collect();
        for conn in gone {
            self.partials.remove(&conn);
            self.batch.push(Write::PartialReset {
                conn,
                bytes: Vec::new(),
            });
        }
    }

    /// Stores what a message added to a connection's partly-arrived frame, at a cost linear
    /// in what arrives: while no frame completes, each message's bytes are appended as a
    /// piece of their own; once one does, the remainder replaces them. `arrived` is the
    /// bytes consumed before the message and its parts; without it, only a connection that
    /// is gone has its pieces forgotten.
    pub(super) fn keep_partial_frame(&mut self, conn: ConnId, arrived: Option<(u64, &[&[u8]])>) {
        let pending = self.broker.partial_frame(conn);
        let open = self.broker.session(conn).is_some();
        // A connection that is gone has its pieces forgotten with the others' (see
        // `forget_partial_frames_of_closed`).
        let Some((consumed, parts)) = arrived.filter(|_| open) else {
            return;
        };
        if pending.is_empty() {
            if self.partials.remove(&conn) {
                self.batch.push(Write::PartialReset {
                    conn,
                    bytes: Vec::new(),
                });
            }
        } else if self.broker.consumed(conn) == consumed {
            for part in parts.iter().filter(|part| !part.is_empty()) {
                self.batch.push(Write::PartialAppend {
                    conn,
                    bytes: part.to_vec(),
                });
            }
            self.partials.insert(conn);
        } else {
            self.batch.push(Write::PartialReset {
                conn,
                bytes: pending.to_vec(),
            });
            self.partials.insert(conn);
        }
    }
}
