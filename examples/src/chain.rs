//! The chain topology of Pyro's examples (`examples/chain`): servers in a ring, each passing a message to the next
//! until it comes back to where it started.

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// The name chain server `n` registers under.
pub fn name_of(n: &str) -> String {
    format!("example.chainTopology.{n}")
}

/// Why the chain could not be completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("server {at} could not pass the message on: {reason}")]
pub struct ChainError {
    /// The server that failed to reach the next one.
    pub at: String,
    /// Why.
    pub reason: String,
}

/// One link of the chain.
#[rmi::expose]
pub trait Chain {
    /// Appends this server's name and passes the message on, until it comes back here.
    async fn process(&self, message: Vec<String>) -> Result<Vec<String>, ChainError>;
}

/// A chain server that knows the next one by name and looks it up on first use.
pub struct ChainServer {
    name: String,
    next_name: String,
    next_uri: rmi::NameUri,
    next: Mutex<Option<ChainProxy>>,
    /// Where to print what happens (the tour prefixes lines; the servers print them).
    say: Box<dyn Fn(String) + Send + Sync>,
    /// How long the server thinks before passing a message on (to show deadlines at work).
    delay: std::time::Duration,
}

impl ChainServer {
    /// Server `name` whose next server is `next`, found through the name server at
    /// `name_server` (the default one for `None`).
    pub fn new(
        name: &str,
        next: &str,
        name_server: Option<rmi::Endpoint>,
        say: impl Fn(String) + Send + Sync + 'static,
    ) -> Result<Self, rmi::Error> {
        Ok(ChainServer {
            name: name.to_owned(),
            next_name: next.to_owned(),
            next_uri: rmi::NameUri::new(name_of(next), name_server)?,
            next: Mutex::new(None),
            say: Box::new(say),
            delay: std::time::Duration::ZERO,
        })
    }

    /// This server, thinking for `delay` before passing each message on.
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The proxy of the next server, looked up the first time it is needed.
    async fn next(&self) -> Result<ChainProxy, rmi::Error> {
        let mut next = self.next.lock().await;
        if let Some(proxy) = &*next {
            return Ok(proxy.clone());
        }
        let proxy = ChainProxy::connect(&self.next_uri).await?;
        *next = Some(proxy.clone());
        Ok(proxy)
    }

    async fn forward(&self, message: Vec<String>) -> Result<Vec<String>, ChainError> {
        let failed = |e: &dyn std::fmt::Display| ChainError {
            at: self.name.clone(),
            reason: e.to_string(),
        };
        let next = self.next().await.map_err(|e| failed(&e))?;
        match next.process(message).await {
            Ok(result) => result,
            Err(e) => {
                // Forget the proxy: the next call looks the server up again.
                *self.next.lock().await = None;
                Err(failed(&e))
            }
        }
    }
}

impl Chain for ChainServer {
    async fn process(&self, mut message: Vec<String>) -> Result<Vec<String>, ChainError> {
        if message.contains(&self.name) {
            (self.say)(format!("Back at {}; the chain is closed!", self.name));
            return Ok(vec![format!("complete at {}", self.name)]);
        }
        (self.say)(format!(
            "{} forwarding the message to the object {}",
            self.name, self.next_name
        ));
        message.push(self.name.clone());
        tokio::time::sleep(self.delay).await;
        let mut result = self.forward(message).await?;
        result.insert(0, format!("passed on from {}", self.name));
        Ok(result)
    }
}
