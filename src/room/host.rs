//! The one host of a room engine: the Durable Object and the native test harness both carry a
//! room's events through it, so every native test runs the configuration production runs.
//!
//! The host holds the engine while the object is in memory and wakes it from storage and the
//! sockets' kept sessions on the first event after an eviction or a crash. Each event's work
//! runs against the engine; the host then says how the platform's alarm must change. What the
//! platform does besides (accepting sockets, holding requests, setting the alarm, evicting) is
//! the caller's, behind [`Storage`] and [`Sockets`].

use std::rc::Rc;

use super::auth::Authenticator;
use super::engine::{AlarmChange, Failed, RoomEngine};
use super::log::{LogEvent, LogLine, Logs};
use super::settings::Settings;
use super::sockets::Sockets;
use super::storage::Storage;
use crate::relay::ToGateway;

/// A room engine as the platform hosts it.
pub struct Host {
    settings: Settings,
    auth: Rc<dyn Authenticator>,
    engine: Option<RoomEngine>,
    /// How many times the engine was built in this host.
    wakes: u32,
}

/// What one event left for the caller: the work's own result, the change to the platform's
/// alarm that the engine asks for after it (`None`: leave the alarm as it is), and the lines
/// the room logged, for the caller to print as they are (see [`crate::room::log`]).
#[derive(Debug)]
pub struct Turn<T> {
    pub result: Result<T, Failed>,
    pub alarm: Option<AlarmChange>,
    pub logs: Vec<LogLine>,
    /// Calls due to gateway objects (see [`RoomEngine::take_gateway_calls`]): the caller
    /// sends each, and hands its answer back through
    /// [`RoomEngine::gateway_answered`] as an event of its own.
    pub calls: Vec<(String, ToGateway)>,
    /// Frames wait to be sent (the room is busy, see [`RoomEngine::sends_waiting`]): the
    /// caller calls [`Host::flush_sends`] once the runtime has handed the room the messages
    /// already waiting for it (those join the frames), and before anything else.
    pub sends_waiting: bool,
}

impl Host {
    /// A host for a room with these settings and this CONNECT hook. The platform answers a
    /// client's lone heart-beat by itself (the auto-response; the native harness models it), and
    /// that answer is the room's heart-beat, so the room sends none of its own where the
    /// client's cover them.
    pub fn new(mut settings: Settings, auth: Rc<dyn Authenticator>) -> Self {
        settings.broker.heart_beats_echoed = true;
        Self {
            settings,
            auth,
            engine: None,
            wakes: 0,
        }
    }

    /// Runs one event: wakes the engine first if it is not in memory, runs `work` against it,
    /// then asks it how the alarm must change. A wake that cannot read storage fails the event
    /// (the next one tries again); a failed event has rebuilt the engine from storage.
    pub fn event<St: Storage, So: Sockets, T>(
        &mut self,
        store: &mut St,
        sockets: &mut So,
        now: u64,
        work: impl FnOnce(&mut RoomEngine, &mut St, &mut So, u64) -> Result<T, Failed>,
    ) -> Turn<T> {
        let engine = match self.engine.take() {
            Some(engine) => engine,
            None => {
                let woken = RoomEngine::wake(
                    self.settings.clone(),
                    self.auth.clone(),
                    store,
                    sockets,
                    now,
                );
                match woken {
                    Ok(engine) => {
                        self.wakes += 1;
                        engine
                    }
                    Err(failed) => {
                        // Not even woken: logged without the room's name.
                        let mut logs = Logs::new(self.settings.log_level);
                        logs.record(&storage_failed(&failed));
                        return Turn {
                            result: Err(failed),
                            alarm: None,
                            logs: logs.take(),
                            calls: Vec::new(),
                            sends_waiting: false,
                        };
                    }
                }
            }
        };
        let engine = self.engine.insert(engine);
        let result = work(engine, store, sockets, now);
        if let Err(failed) = &result {
            engine.log_event(storage_failed(failed));
        }
        turn_after(engine, result, now)
    }

    /// Sends the frames earlier events left waiting (see [`Turn::sends_waiting`]), with the
    /// calls to gateways that their members' frames make; nothing when the engine is not in
    /// memory (they went with it).
    pub fn flush_sends(&mut self, sockets: &mut impl Sockets, now: u64) -> Turn<()> {
        let Some(engine) = self.engine.as_mut() else {
            return Turn {
                result: Ok(()),
                alarm: None,
                logs: Vec::new(),
                calls: Vec::new(),
                sends_waiting: false,
            };
        };
        engine.flush_sends(sockets, now);
        turn_after(engine, Ok(()), now)
    }

    /// Runs work that needs neither storage nor sockets (a long poll's wait ran out, a held
    /// request's client went away) against the engine in memory: `None` when it is not (such
    /// requests die with the engine that held them).
    pub fn in_memory<T>(
        &mut self,
        now: u64,
        work: impl FnOnce(&mut RoomEngine) -> T,
    ) -> Option<Turn<T>> {
        let engine = self.engine.as_mut()?;
        let result = Ok(work(engine));
        Some(turn_after(engine, result, now))
    }

    /// The caller could not change the platform's alarm as asked: the engine asks again at its
    /// next event.
    pub fn alarm_failed(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.alarm_failed();
        }
    }

    /// The engine, when it is in memory.
    pub fn engine(&self) -> Option<&RoomEngine> {
        self.engine.as_ref()
    }

    /// How many times the engine was built in this host (first use and every wake).
    pub fn wakes(&self) -> u32 {
        self.wakes
    }

    /// The platform evicts the object after a quiet spell: by then the alarm has committed the
    /// deferred writes, so they are committed first; the engine is dropped, sockets stay open.
    pub fn evict(&mut self, store: &mut impl Storage) -> Result<(), Failed> {
        match self.engine.take() {
            Some(mut engine) => engine.flush(store),
            None => Ok(()),
        }
    }

    /// The object ends without warning (a deploy, an out-of-memory kill): the engine is dropped
    /// with nothing flushed.
    pub fn crash(&mut self) {
        self.engine = None;
    }
}

/// What the engine leaves the caller after its work: calls first (one now in flight is a
/// deadline the alarm covers), then the alarm, except while frames wait (setting it is a
/// write, so the flush's turn sets it after them).
fn turn_after<T>(engine: &mut RoomEngine, result: Result<T, Failed>, now: u64) -> Turn<T> {
    let calls = engine.take_gateway_calls(now);
    let sends_waiting = engine.sends_waiting();
    Turn {
        result,
        alarm: if sends_waiting {
            None
        } else {
            engine.alarm_change(now)
        },
        logs: engine.take_logs(),
        calls,
        sends_waiting,
    }
}

/// A failed event, as logged: storage's own words, never what was being stored.
fn storage_failed(failed: &Failed) -> LogEvent {
    LogEvent::StorageFailed {
        conn: None,
        error: failed.0.to_string(),
    }
}
