//! Group chat, as Spread does it: members join a room by handing the server a callback
//! reference; every line one member says reaches every other member of the room.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
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
    /// The seat is not (or no longer) in a room.
    #[error("you are not in a room (were you dropped?); join again")]
    NotJoined,
}

/// Where a member sits: its seat number is what it passes to `say` and `leave`.
pub type Seat = u64;

/// The chat server's rooms.
#[rmi::expose]
pub trait ChatRoom {
    /// Joins `room` as `nick`; the server calls `member` back with what others say.
    async fn join(
        &self,
        room: String,
        nick: String,
        member: Remote<MemberProxy>,
    ) -> Result<Seat, ChatError>;
    /// Says `text` to everyone else in the room; returns how many heard it.
    async fn say(&self, seat: Seat, text: String) -> Result<usize, ChatError>;
    /// Leaves the room.
    async fn leave(&self, seat: Seat) -> Result<(), ChatError>;
    /// The nicks in `room`, sorted.
    async fn members(&self, room: String) -> Vec<String>;
}

struct Sitting {
    room: String,
    nick: String,
    member: MemberProxy,
}

/// The chat server object.
pub struct ChatServer {
    seats: Mutex<BTreeMap<Seat, Sitting>>,
    next_seat: AtomicU64,
    /// Where the log lines go (the tour prefixes them; the server prints them).
    say: Box<dyn Fn(String) + Send + Sync>,
}

impl Default for ChatServer {
    fn default() -> Self {
        ChatServer {
            seats: Mutex::default(),
            next_seat: AtomicU64::default(),
            say: Box::new(|line| println!("{line}")),
        }
    }
}

fn check_name(name: &str) -> Result<(), ChatError> {
    let length = name.chars().count();
    if (1..=32).contains(&length) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ChatError::BadName(name.to_owned()))
    }
}

impl ChatServer {
    /// This server, handing its log lines to `say`.
    pub fn with_say(mut self, say: impl Fn(String) + Send + Sync + 'static) -> Self {
        self.say = Box::new(say);
        self
    }

    fn seats(&self) -> std::sync::MutexGuard<'_, BTreeMap<Seat, Sitting>> {
        self.seats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The nick and room of `seat`.
    fn sitting(&self, seat: Seat) -> Result<(String, String), ChatError> {
        let seats = self.seats();
        let me = seats.get(&seat).ok_or(ChatError::NotJoined)?;
        Ok((me.nick.clone(), me.room.clone()))
    }

    /// The members of `room` but `except`, with their seats.
    fn members_but(&self, room: &str, except: Seat) -> Vec<(Seat, MemberProxy)> {
        self.seats()
            .iter()
            .filter(|(seat, sitting)| **seat != except && sitting.room == room)
            .map(|(seat, sitting)| (*seat, sitting.member.clone()))
            .collect()
    }

    /// Tells everyone in `room` but `except` that `text` happened, dropping those who
    /// cannot be reached.
    async fn announce(&self, room: &str, except: Seat, text: String) {
        let deliveries = self
            .members_but(room, except)
            .into_iter()
            .map(|(seat, member)| {
                let text = text.clone();
                async move { (seat, member.notice(text).await) }
            });
        for (seat, delivered) in futures::future::join_all(deliveries).await {
            if let Err(e) = delivered {
                Box::pin(self.drop_unreachable(seat, e)).await;
            }
        }
    }

    /// Drops a member that could not be called back, and tells the others.
    async fn drop_unreachable(&self, seat: Seat, error: rmi::Error) {
        let Some(gone) = self.seats().remove(&seat) else {
            return; // Already dropped by another delivery.
        };
        (self.say)(format!("{} dropped from {}: {error}", gone.nick, gone.room));
        self.announce(
            &gone.room,
            seat,
            format!("{} left (unreachable)", gone.nick),
        )
        .await;
    }
}

impl ChatRoom for ChatServer {
    async fn join(
        &self,
        room: String,
        nick: String,
        member: Remote<MemberProxy>,
    ) -> Result<Seat, ChatError> {
        check_name(&room)?;
        check_name(&nick)?;
        let unreachable = |e: rmi::Error| ChatError::Unreachable {
            uri: member.uri().to_string(),
            reason: e.to_string(),
        };
        let proxy = member.connect().await.map_err(unreachable)?;
        let seat = self.next_seat.fetch_add(1, Ordering::Relaxed);
        {
            let mut seats = self.seats();
            if seats.values().any(|s| s.room == room && s.nick == nick) {
                return Err(ChatError::NickTaken { nick, room });
            }
            let member = proxy.with_timeout(DELIVERY_TIMEOUT);
            let sitting = Sitting {
                room: room.clone(),
                nick: nick.clone(),
                member,
            };
            seats.insert(seat, sitting);
        }
        (self.say)(format!("{nick} joined {room}"));
        self.announce(&room, seat, format!("{nick} joined")).await;
        Ok(seat)
    }

    async fn say(&self, seat: Seat, text: String) -> Result<usize, ChatError> {
        let (nick, room) = self.sitting(seat)?;
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
                Err(e) => self.drop_unreachable(seat, e).await,
            }
        }
        Ok(heard)
    }

    async fn leave(&self, seat: Seat) -> Result<(), ChatError> {
        let gone = self.seats().remove(&seat).ok_or(ChatError::NotJoined)?;
        (self.say)(format!("{} left {}", gone.nick, gone.room));
        self.announce(&gone.room, seat, format!("{} left", gone.nick))
            .await;
        Ok(())
    }

    async fn members(&self, room: String) -> Vec<String> {
        let mut nicks: Vec<String> = self
            .seats()
            .values()
            .filter(|s| s.room == room)
            .map(|s| s.nick.clone())
            .collect();
        nicks.sort();
        nicks
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
