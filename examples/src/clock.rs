//! A clock that calls its subscribers back: the tour's callback demo.

use rmi::Remote;

/// Something that wants to hear the clock tick.
#[rmi::expose]
pub trait Listener {
    /// One tick.
    async fn tick(&self, n: u32);
}

/// A clock that ticks for its subscribers.
#[rmi::expose]
pub trait Clock {
    /// Calls `listener` back `ticks` times, then returns how many it delivered.
    async fn subscribe(&self, listener: Remote<ListenerProxy>, ticks: u32) -> Result<u32, String>;
}

/// The clock object.
pub struct ClockServer;

impl Clock for ClockServer {
    async fn subscribe(&self, listener: Remote<ListenerProxy>, ticks: u32) -> Result<u32, String> {
        let listener = listener.connect().await.map_err(|e| e.to_string())?;
        for n in 1..=ticks {
            listener.tick(n).await.map_err(|e| e.to_string())?;
        }
        Ok(ticks)
    }
}
