//! A simulated network of room and gateway objects: each object is the real host of its engine
//! (`room::Host`, `gateway::GatewayHost`) over in-memory storage and sockets, and the calls
//! between them wait in transit until the test (or a seeded random schedule) delivers them.
//! Calls of different pairs of objects arrive in any order; each pair keeps at most one in
//! flight each way, as the engines promise. Objects are evicted while quiet (no call of
//! theirs in transit: the platform keeps an object with a request under way in memory) and
//! crash at any moment. Rooms' alarms fire as time passes (gateways' are not simulated).

use std::collections::BTreeMap;
use std::rc::Rc;

use stomp_rooms::gateway::testing::MemoryGatewaySockets;
use stomp_rooms::gateway::{GatewayHost, GatewayMode, GatewayTurn};
use stomp_rooms::relay::{MemberId, ToGateway, ToRoom};
use stomp_rooms::room::members::Placement;
use stomp_rooms::room::testing::{MemorySockets, MemoryStorage};
use stomp_rooms::room::{AlarmChange, AllowAll, ConnId, Host, Opened, Peer, Settings, Turn};

/// A client of the network: a socket on a room's own object, or on a gateway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Client {
    Direct { room: String, conn: ConnId },
    OnGateway { gateway: String, member: MemberId },
}

pub struct RoomNode {
    pub host: Host,
    pub store: MemoryStorage,
    pub sockets: MemorySockets,
    /// When the room's alarm is set for.
    pub alarm: Option<u64>,
}

pub struct GatewayNode {
    pub host: GatewayHost,
    pub sockets: MemoryGatewaySockets,
}

/// A call on its way: to a room from a gateway, or to a gateway from a room.
#[derive(Debug, Clone)]
pub enum InTransit {
    ToRoom { room: String, call: ToRoom },
    ToGateway { gateway: String, call: ToGateway },
}

pub struct Network {
    pub settings: Settings,
    pub rooms: BTreeMap<String, RoomNode>,
    pub gateways: BTreeMap<String, GatewayNode>,
    pub transit: Vec<InTransit>,
    pub now: u64,
    /// Calls delivered so far, by kind (to rooms, to gateways).
    pub calls: (u64, u64),
    seed: u64,
}

impl Network {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            rooms: BTreeMap::new(),
            gateways: BTreeMap::new(),
            transit: Vec::new(),
            now: 1_000,
            calls: (0, 0),
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Delivers calls in transit in a random (seeded) order.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed | 1;
        self
    }

    fn room(&mut self, room: &str) -> &mut RoomNode {
        let settings = self.settings.clone();
        self.rooms
            .entry(room.to_owned())
            .or_insert_with(|| RoomNode {
                host: Host::new(settings, Rc::new(AllowAll)),
                store: MemoryStorage::default(),
                sockets: MemorySockets::default(),
                alarm: None,
            })
    }

    fn gateway(&mut self, gateway: &str) -> &mut GatewayNode {
        let settings = self.settings.clone();
        self.gateways.entry(gateway.to_owned()).or_insert_with(|| {
            let mode = GatewayMode::from_name(gateway).expect("a gateway name the router gives");
            GatewayNode {
                host: GatewayHost::new(mode, settings, Rc::new(AllowAll)),
                sockets: MemoryGatewaySockets::default(),
            }
        })
    }

    /// Runs work on a room's engine through its host, tells it its name first (as the edge
    /// does from the route), and sends the calls it leaves.
    fn room_event<T>(
        &mut self,
        room: &str,
        work: impl FnOnce(
            &mut stomp_rooms::room::RoomEngine,
            &mut MemoryStorage,
            &mut MemorySockets,
            u64,
        ) -> Result<T, stomp_rooms::room::Failed>,
    ) -> T {
        let now = self.now;
        let name = room.to_owned();
        let node = self.room(room);
        let turn: Turn<T> = node.host.event(
            &mut node.store,
            &mut node.sockets,
            now,
            |engine, store, sockets, now| {
                engine.name_is(&name);
                work(engine, store, sockets, now)
            },
        );
        let flushed = turn
            .sends_waiting
            .then(|| node.host.flush_sends(&mut node.sockets, now));
        for turn_alarm in [Some(turn.alarm), flushed.as_ref().map(|f| f.alarm)]
            .into_iter()
            .flatten()
        {
            match turn_alarm {
                Some(AlarmChange::Set(at)) => node.alarm = Some(at),
                Some(AlarmChange::Delete) => node.alarm = None,
                None => {}
            }
        }
        let flushed_calls = flushed.map(|f| f.calls).unwrap_or_default();
        for (gateway, call) in turn.calls.into_iter().chain(flushed_calls) {
            self.transit.push(InTransit::ToGateway { gateway, call });
        }
        turn.result.expect("the room's storage works")
    }

    fn gateway_turn<T>(&mut self, turn: GatewayTurn<T>) -> T {
        for (room, call) in turn.calls {
            self.transit.push(InTransit::ToRoom { room, call });
        }
        turn.result
    }

    /// A socket opening to `/rooms/{room}`: the room takes it, or names the gateway that
    /// does (as the router forwards it).
    pub fn open_direct(&mut self, room: &str) -> Client {
        let peer = Peer {
            room: room.to_owned(),
            ..Peer::default()
        };
        let placement = self.room_event(room, |engine, _, _, now| Ok(engine.placement(now)));
        match placement {
            Placement::Here => {
                let opened = self.room_event(room, |engine, store, sockets, now| {
                    engine.open(store, sockets, peer, now)
                });
                let Opened::Accepted(conn) = opened else {
                    panic!("the room refused a socket: {opened:?}");
                };
                Client::Direct {
                    room: room.to_owned(),
                    conn,
                }
            }
            Placement::Gateway(gateway) => self.open_on(&gateway),
        }
    }

    /// A socket opening on a gateway (an endpoint's, or a room's shard).
    pub fn open_on(&mut self, gateway: &str) -> Client {
        let now = self.now;
        let node = self.gateway(gateway);
        let turn = node.host.open(&mut node.sockets, None, false, now);
        let member = self
            .gateway_turn(turn)
            .expect("the gateway accepts the socket");
        Client::OnGateway {
            gateway: gateway.to_owned(),
            member,
        }
    }

    /// A client sends one WebSocket message of text.
    pub fn send(&mut self, client: &Client, text: &str) {
        let now = self.now;
        match client {
            Client::Direct { room, conn } => {
                let conn = *conn;
                self.room_event(room, |engine, store, sockets, now| {
                    engine.receive(store, sockets, conn, text.as_bytes(), false, now)
                })
            }
            Client::OnGateway { gateway, member } => {
                let node = self.gateway(gateway);
                let turn =
                    node.host
                        .receive(&mut node.sockets, *member, text.as_bytes(), false, now);
                self.gateway_turn(turn)
            }
        }
    }

    /// A client closes its socket.
    pub fn close(&mut self, client: &Client) {
        let now = self.now;
        match client {
            Client::Direct { room, conn } => {
                let conn = *conn;
                // Still listed while its close is handled, as a hibernatable socket is.
                self.room_event(room, |engine, store, sockets, now| {
                    engine.closed(store, sockets, conn, now)
                });
                self.room(room).sockets.drop_socket(conn);
            }
            Client::OnGateway { gateway, member } => {
                let node = self.gateway(gateway);
                if let Some(socket) = node.sockets.sockets.get_mut(member) {
                    socket.forgotten = true;
                }
                let turn = node.host.closed(&mut node.sockets, *member, now);
                self.gateway_turn(turn)
            }
        }
    }

    /// The frames a client was sent since the last take, as text, one by one.
    pub fn take(&mut self, client: &Client) -> Vec<String> {
        match client {
            Client::Direct { room, conn } => self
                .room(room)
                .sockets
                .take_received(*conn)
                .into_iter()
                .flat_map(|(bytes, _)| frames_of(&bytes))
                .collect(),
            Client::OnGateway { gateway, member } => self
                .gateway(gateway)
                .sockets
                .take_text(*member)
                .iter()
                .flat_map(|text| frames_of(text.as_bytes()))
                .collect(),
        }
    }

    /// Whether a client's socket is still open.
    pub fn is_open(&mut self, client: &Client) -> bool {
        match client {
            Client::Direct { room, conn } => self.room(room).sockets.is_open(*conn),
            Client::OnGateway { gateway, member } => {
                let node = self.gateway(gateway);
                node.sockets.closed(*member).is_none()
                    && node
                        .sockets
                        .sockets
                        .get(member)
                        .is_some_and(|s| !s.forgotten)
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: a seeded, repeatable schedule.
        let mut x = self.seed;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Delivers one call in transit (a random one), and its answer; `false` when none is.
    pub fn deliver_one(&mut self) -> bool {
        if self.transit.is_empty() {
            return false;
        }
        let pick = (self.next_random() % self.transit.len() as u64) as usize;
        let now = self.now;
        match self.transit.remove(pick) {
            InTransit::ToRoom { room, call } => {
                self.calls.0 += 1;
                let gateway = call.gateway.clone();
                let answer = self.room_event(&room, |engine, store, sockets, now| {
                    engine.from_gateway(store, sockets, &call, now)
                });
                let node = self.gateway(&gateway);
                let turn = node
                    .host
                    .room_answered(&mut node.sockets, &room, Ok(answer), now);
                self.gateway_turn(turn);
            }
            InTransit::ToGateway { gateway, call } => {
                self.calls.1 += 1;
                let room = call.room.clone();
                let node = self.gateway(&gateway);
                let turn = node.host.from_room(&mut node.sockets, &call, now);
                let answer = self.gateway_turn(turn);
                self.room_event(&room, |engine, store, sockets, now| {
                    engine.gateway_answered(store, sockets, &gateway, Ok(answer), now)
                });
            }
        }
        true
    }

    /// Delivers every call, and the calls they lead to, until none is in transit.
    pub fn settle(&mut self) {
        let mut rounds = 0;
        while self.deliver_one() {
            rounds += 1;
            assert!(rounds < 100_000, "calls never settle");
        }
    }

    /// Evicts every object with no call of its in transit, as the platform does after a quiet
    /// spell (a room's deferred writes committed first).
    pub fn evict_quiet(&mut self) {
        let busy_rooms: Vec<String> = self
            .transit
            .iter()
            .map(|t| match t {
                InTransit::ToRoom { room, .. } => room.clone(),
                InTransit::ToGateway { call, .. } => call.room.clone(),
            })
            .collect();
        let busy_gateways: Vec<String> = self
            .transit
            .iter()
            .map(|t| match t {
                InTransit::ToRoom { call, .. } => call.gateway.clone(),
                InTransit::ToGateway { gateway, .. } => gateway.clone(),
            })
            .collect();
        for (name, node) in &mut self.rooms {
            if !busy_rooms.contains(name) {
                node.host
                    .evict(&mut node.store)
                    .expect("a flush before eviction");
            }
        }
        for (name, node) in &mut self.gateways {
            if !busy_gateways.contains(name) {
                node.host.evict();
            }
        }
    }

    /// Evicts one gateway, which must be quiet.
    pub fn evict_gateway(&mut self, gateway: &str) {
        assert!(
            !self.transit.iter().any(|t| match t {
                InTransit::ToRoom { call, .. } => call.gateway == gateway,
                InTransit::ToGateway { gateway: to, .. } => to == gateway,
            }),
            "a gateway with a call under way is not evicted"
        );
        self.gateway(gateway).host.evict();
    }

    /// A room's object ends without warning (a deploy, an out-of-memory kill): its engine is
    /// dropped with nothing flushed, the platform closes its own sockets, and its calls to
    /// gateways under way die with it. Gateways' sockets live on.
    pub fn crash_room(&mut self, room: &str) {
        let node = self.room(room);
        node.host.crash();
        node.sockets.restart();
        self.transit.retain(|t| match t {
            InTransit::ToGateway { call, .. } => call.room != room,
            InTransit::ToRoom { .. } => true,
        });
    }

    /// A gateway's object ends without warning (a deploy, a crash): the platform drops its
    /// sockets without close events, so what it owed its rooms for them (`Left`s in its
    /// outbox, its calls under way) is lost with it. Calls to it reach its next instance.
    pub fn crash_gateway(&mut self, gateway: &str) {
        let node = self.gateway(gateway);
        node.host.crash();
        node.sockets = MemoryGatewaySockets::default();
        self.transit.retain(|t| match t {
            InTransit::ToRoom { call, .. } => call.gateway != gateway,
            InTransit::ToGateway { .. } => true,
        });
    }

    /// Time passes; each room's alarm fires when it is due on the way (the calls it makes
    /// wait in transit).
    pub fn advance(&mut self, ms: u64) {
        let until = self.now + ms;
        loop {
            let due = self
                .rooms
                .iter()
                .filter_map(|(room, node)| Some((node.alarm.filter(|&at| at <= until)?, room)))
                .min()
                .map(|(at, room)| (at, room.clone()));
            let Some((at, room)) = due else { break };
            self.now = self.now.max(at);
            if let Some(node) = self.rooms.get_mut(&room) {
                node.alarm = None;
            }
            self.room_event(&room, |engine, store, sockets, now| {
                engine.alarm(store, sockets, now)
            });
        }
        self.now = until;
    }
}

/// The frames one WebSocket message carries, each with its NUL, as a STOMP client splits them
/// (a message may carry several: see the room's coalescing). Bodies here have no NUL.
fn frames_of(bytes: &[u8]) -> Vec<String> {
    bytes
        .split_inclusive(|&b| b == 0)
        .map(|frame| String::from_utf8_lossy(frame).into_owned())
        .collect()
}
