//! Transactions: BEGIN, then SEND/ACK/NACK staged (and stored, so a transaction survives the
//! room's eviction) until COMMIT applies them in order or ABORT drops them. What a connection
//! and the room may stage is bounded in bytes by the budget, besides `max_transaction_frames`.

use super::{required, Broker, Effect};
use crate::room::destinations;
use crate::room::record;
use crate::room::session::ConnId;
use crate::stomp::{Frame, ProtocolError};

pub(super) struct Staged {
    pub frame: Frame,
    pub binary: bool,
    /// The bytes its row takes, as the budget counts them.
    pub bytes: u64,
}

impl Broker {
    pub(super) fn on_begin(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let transaction = required(frame, "transaction")?;
        let limits = &self.config.limits;
        destinations::check_text("transaction id", transaction, limits.max_id_bytes)?;
        let max = limits.max_transactions;
        let session = self.session_mut(conn).ok_or_else(super::gone)?;
        let open = session.transactions.iter().any(|t| t == transaction);
        check_new_transaction(transaction, open, session.transactions.len(), max)?;
        session.transactions.push(transaction.to_owned());
        self.save(conn);
        Ok(())
    }

    pub(super) fn on_commit(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let transaction = self.end_transaction(conn, frame)?;
        let staged = self.drop_staged(conn, &transaction);
        self.check_staged_keys(&staged)?;
        for Staged {
            mut frame, binary, ..
        } in staged
        {
            // The staged frame was validated and receipted when it arrived; now it takes effect.
            frame
                .headers
                .retain(|(name, _)| name != "transaction" && name != "receipt");
            self.dispatch_frame(conn, frame, binary)?;
        }
        Ok(())
    }

    pub(super) fn on_abort(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let transaction = self.end_transaction(conn, frame)?;
        self.drop_staged(conn, &transaction);
        Ok(())
    }

    /// Takes a transaction's staged frames out of the room (and out of its budget).
    pub(super) fn drop_staged(&mut self, conn: ConnId, transaction: &str) -> Vec<Staged> {
        let staged = self
            .staged
            .remove(&(conn, transaction.to_owned()))
            .unwrap_or_default();
        self.usage
            .unstaged(conn, staged.iter().map(|s| s.bytes).sum());
        staged
    }

    /// Closes the transaction named by a COMMIT or ABORT and returns its id.
    fn end_transaction(&mut self, conn: ConnId, frame: &Frame) -> Result<String, ProtocolError> {
        let transaction = required(frame, "transaction")?.to_owned();
        let session = self.session_mut(conn).ok_or_else(super::gone)?;
        let before = session.transactions.len();
        session.transactions.retain(|t| *t != transaction);
        if session.transactions.len() == before {
            return Err(unknown_transaction(&transaction));
        }
        self.save(conn);
        self.out.push(Effect::Unstage {
            conn,
            transaction: transaction.clone(),
        });
        Ok(transaction)
    }

    pub(super) fn stage(
        &mut self,
        conn: ConnId,
        transaction: String,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let session = self.session(conn).ok_or_else(super::gone)?;
        if !session.transactions.contains(&transaction) {
            return Err(unknown_transaction(&transaction));
        }
        let max = self.config.limits.max_transaction_frames;
        let held = self
            .staged
            .get(&(conn, transaction.clone()))
            .map_or(0, Vec::len);
        if held >= max {
            return Err(ProtocolError::new(
                "transaction too large",
                format!("a transaction may hold at most {max} frames (max_transaction_frames)"),
            ));
        }
        let bytes = record::staged_row_bytes(&transaction, &frame);
        self.admit_row(bytes)?;
        self.usage.admit_staged(&self.config.budget, conn, bytes)?;
        let record = record::encode_frame(&frame);
        let staged = Staged {
            frame,
            binary,
            bytes,
        };
        self.hold_staged(conn, transaction.clone(), staged);
        self.out.push(Effect::Stage {
            conn,
            transaction,
            record,
            binary,
        });
        Ok(())
    }

    /// Re-adds a frame staged in an open transaction.
    pub fn restore_staged(&mut self, conn: ConnId, transaction: &str, frame: Frame, binary: bool) {
        let bytes = record::staged_row_bytes(transaction, &frame);
        let staged = Staged {
            frame,
            binary,
            bytes,
        };
        self.hold_staged(conn, transaction.to_owned(), staged);
    }

    /// Puts a frame into a transaction (and into the budget): the twin of
    /// [`drop_staged`](Self::drop_staged).
    fn hold_staged(&mut self, conn: ConnId, transaction: String, staged: Staged) {
        self.usage.staged(conn, staged.bytes);
        self.staged
            .entry((conn, transaction))
            .or_default()
            .push(staged);
    }
}

fn unknown_transaction(transaction: &str) -> ProtocolError {
    ProtocolError::new(
        "unknown transaction",
        format!("transaction {transaction:?} is not open; send BEGIN first"),
    )
}

/// BEGIN's checks on a connection's new transaction id: not one already `open`, and under
/// `max` (`max_transactions`) with `count` open.
pub(crate) fn check_new_transaction(
    transaction: &str,
    open: bool,
    count: usize,
    max: usize,
) -> Result<(), ProtocolError> {
    if open {
        return Err(ProtocolError::new(
            "duplicate transaction",
            format!("transaction {transaction:?} is already open"),
        ));
    }
    if count >= max {
        return Err(ProtocolError::new(
            "too many transactions",
            format!("a connection may have at most {max} open transactions (max_transactions)"),
        ));
    }
    Ok(())
}
