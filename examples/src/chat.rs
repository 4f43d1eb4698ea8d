//! Group chat, as Spread does it: members join a room by handing the server a callback
//! reference, and get back a reference to a seat the server makes for them on the fly (Pyro's
//! autoproxy); every line one member says reaches every other member of the room.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmi::Remote;
use serde::{Deserialize, Serialize};

/// The name the chat server registers.
pub const NAME: &str = "chat";

/// How long the server waits for a member to take a line before dropping it.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A member of a room, hosted by its client: the server calls it back.
#[rmi::expose]
pub trait Member {
    /// `from` said `text` in the room.
    async fn hear(&self, from: String, text: String);
    /// Something happened in the room: someone joined or left.
    async fn notice(&self, text: String);
}

/// Why the chat server refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ChatError {
    /// Someone in the room already has this nick.
    #[error("'{nick}' is already in {room}; choose another nick")]
    NickTaken {
        /// The nick.
        nick: String,
        /// The room.
        room: String,
    },
    /// A nick or room name that is empty, too long or has control characters.
    #[error("'{0}' cannot be a nick or a room: use 1 to 32 printable characters")]
    BadName(String),
    /// The member's callback could not be reached.
    #[error("cannot call you back at {uri}: {reason}")]
    Unreachable {
        /// The callback's URI.
        uri: String,
        /// What failed.
        reason: String,
    },
    /// The server could not make the seat.
    #[error("the server could not make your seat: {0}")]
    NoSeat(String),
}

/// The chat server's rooms.
#[rmi::expose]
pub trait ChatRoom {
    /// Joins `room` as `nick`; the server calls `member` back with what others say. Returns
    /// the member's seat, an object made for it.
    async fn join(
        &self,
        room: String,
        nick: String,
        member: Remote<MemberProxy>,
    ) -> Result<Remote<SeatProxy>, ChatError>;
    /// The nicks in `room`, sorted.
    async fn members(&self, room: String) -> Vec<String>;
}

/// One member's place in a room: what it says goes through here.
#[rmi::expose]
pub trait Seat {
    /// Says `text` to everyone else in the room; returns how many heard it.
    async fn say(&self, text: String) -> usize;
    /// Leaves the room; the seat is gone after this.
    async fn leave(&self);
}

/// The chat server object: the rooms, and the daemon it makes seats in.
pub struct ChatServer {
    rooms: Arc<Rooms>,
    daemon: rmi::Daemon,
}

impl ChatServer {
    /// A chat server making its seats in `daemon` (the one it is registered in), printing
    /// its log.
    pub fn new(daemon: rmi::Daemon) -> Self {
        ChatServer {
            rooms: Arc::new(Rooms {
                seats: Mutex::default(),
                daemon: daemon.clone(),
                say: Box::new(|line| println!("{line}")),
            }),
            daemon,
        }
    }

    /// This server, handing its log lines to `say`.
    pub fn with_say(self, say: impl Fn(String) + Send + Sync + 'static) -> Self {
        let rooms = Rooms {
            seats: Mutex::default(),
            daemon: self.daemon.clone(),
            say: Box::new(say),
        };
        ChatServer {
            rooms: Arc::new(rooms),
            daemon: self.daemon,
        }
    }
}

/// Who sits where, by seat object id.
struct Rooms {
    seats: Mutex<BTreeMap<String, Sitting>>,
    daemon: rmi::Daemon,
    say: Box<dyn Fn(String) + Send + Sync>,
}

struct Sitting {
    room: String,
    nick: String,
    member: MemberProxy,
}

fn check_name(name: &str) -> Result<(), ChatError> {
    let length = name.chars().count();
    if (1..=32).contains(&length) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ChatError::BadName(name.to_owned()))
    }
}

impl Rooms {
    fn seats(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Sitting>> {
        self.seats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The members of `room` but `except`, with their seats.
    fn members_but(&self, room: &str, except: &str) -> Vec<(String, MemberProxy)> {
        self.seats()
            .iter()
            .filter(|(seat, sitting)| *seat != except && sitting.room == room)
            .map(|(seat, sitting)| (seat.clone(), sitting.member.clone()))
            .collect()
    }

    /// Tells everyone in `room` but `except` that `text` happened, dropping those who
    /// cannot be reached.
    async fn announce(&self, room: &str, except: &str, text: String) {
        let deliveries = self
            .members_but(room, except)
            .into_iter()
            .map(|(seat, member)| {
                let text = text.clone();
                async move { (seat, member.notice(text).await) }
            });
        for (seat, delivered) in futures::future::join_all(deliveries).await {
            if let Err(e) = delivered {
                Box::pin(self.drop_unreachable(&seat, e)).await;
            }
        }
    }

    /// Says `text` from `seat` to the others in its room; returns how many heard it.
    async fn say(&self, seat: &str, text: String) -> usize {
        let Some((nick, room)) = self
            .seats()
            .get(seat)
            .map(|s| (s.nick.clone(), s.room.clone()))
        else {
            return 0; // Dropped meanwhile: its seat is being unregistered.
        };
        let deliveries = self
            .members_but(&room, seat)
            .into_iter()
            .map(|(seat, member)| {
                let (nick, text) = (nick.clone(), text.clone());
                async move { (seat, member.hear(nick, text).await) }
            });
        let mut heard = 0;
        for (seat, delivered) in futures::future::join_all(deliveries).await {
            match delivered {
                Ok(()) => heard += 1,
                Err(e) => self.drop_unreachable(&seat, e).await,
            }
        }
        heard
    }

    /// Takes `seat` out of its room and unregisters it; tells the others `why`.
    async fn remove(&self, seat: &str, why: impl FnOnce(&str) -> String) -> Option<Sitting> {
        let gone = self.seats().remove(seat)?;
        self.daemon.unregister(seat);
        self.announce(&gone.room, seat, why(&gone.nick)).await;
        Some(gone)
    }

    /// Drops a member that could not be called back.
    async fn drop_unreachable(&self, seat: &str, error: rmi::Error) {
        let why = |nick: &str| format!("{nick} left (unreachable)");
        if let Some(gone) = self.remove(seat, why).await {
            (self.say)(format!("{} dropped from {}: {error}", gone.nick, gone.room));
        }
    }
}

impl ChatRoom for ChatServer {
    async fn join(
        &self,
        room: String,
        nick: String,
        member: Remote<MemberProxy>,
    ) -> Result<Remote<SeatProxy>, ChatError> {
        check_name(&room)?;
        check_name(&nick)?;
        let unreachable = |e: rmi::Error| ChatError::Unreachable {
            uri: member.uri().to_string(),
            reason: e.to_string(),
        };
        let proxy = member.connect().await.map_err(unreachable)?;
        let seat = {
            let mut seats = self.rooms.seats();
            if seats.values().any(|s| s.room == room && s.nick == nick) {
                return Err(ChatError::NickTaken { nick, room });
            }
            // Unguessable, as every object id: only its member can speak from a seat.
            let id = format!("seat_{:032x}", rand::random::<u128>());
            let object = SeatObject {
                rooms: self.rooms.clone(),
                id: id.clone(),
            };
            let uri = self
                .daemon
                .register_with_id(id, object)
                .map_err(|e| ChatError::NoSeat(e.to_string()))?;
            let sitting = Sitting {
                room: room.clone(),
                nick: nick.clone(),
                member: proxy.with_timeout(DELIVERY_TIMEOUT),
            };
            seats.insert(uri.id().to_owned(), sitting);
            uri
        };
        (self.rooms.say)(format!("{nick} joined {room}"));
        self.rooms
            .announce(&room, seat.id(), format!("{nick} joined"))
            .await;
        Ok(Remote::new(seat))
    }

    async fn members(&self, room: String) -> Vec<String> {
        let mut nicks: Vec<String> = self
            .rooms
            .seats()
            .values()
            .filter(|s| s.room == room)
            .map(|s| s.nick.clone())
            .collect();
        nicks.sort();
        nicks
    }
}

/// A seat, made when its member joins and unregistered when it leaves or is dropped.
struct SeatObject {
    rooms: Arc<Rooms>,
    /// Its object id, which is also its key in the rooms.
    id: String,
}

impl Seat for SeatObject {
    async fn say(&self, text: String) -> usize {
        self.rooms.say(&self.id, text).await
    }

    async fn leave(&self) {
        let why = |nick: &str| format!("{nick} left");
        if let Some(gone) = self.rooms.remove(&self.id, why).await {
            (self.rooms.say)(format!("{} left {}", gone.nick, gone.room));
        }
    }
}

/// A member that prints what it hears: `[NAME] TEXT`, and `* TEXT` for notices.
pub struct Printer;

impl Member for Printer {
    async fn hear(&self, from: String, text: String) {
        println!("[{from}] {text}");
    }

    async fn notice(&self, text: String) {
        println!("* {text}");
    }
}
