//! `rmi::Error` as a remote method's error: a chain of servers (client → A → B → C, three
//! daemons in this process) forwards a failure with `?`, and the client still matches its
//! variant and reads where it arose.

mod support;

use std::time::Duration;

#[rmi::expose]
pub trait Relay {
    /// Fetches `key` from the next server down the chain, or fails as the last one does.
    async fn fetch(&self, key: String) -> Result<u8, rmi::Error>;
}

/// What a server of the chain does with a call.
enum Next {
    /// Forwards it to the next server.
    Forward(RelayProxy),
    /// Connects to an object whose daemon is gone: the failure arises here.
    Dead(rmi::ObjectUri),
    /// Fails as a name lookup does when the name is not registered.
    Missing,
}

struct Server(Next);

impl Relay for Server {
    async fn fetch(&self, key: String) -> Result<u8, rmi::Error> {
        match &self.0 {
            Next::Forward(next) => Ok(next.fetch(key).await??),
            Next::Dead(uri) => {
                let dead = RelayProxy::connect(uri).await?;
                Ok(dead.fetch(key).await??)
            }
            Next::Missing => Err(rmi::Error::new(rmi::ErrorKind::NameNotFound {
                name: key,
                name_server: "127.0.0.1:9090".into(),
            })),
        }
    }
}

/// The chain A → B → C over `innermost` (C's behaviour): A's proxy, and C's URI.
async fn chain(innermost: Next) -> (RelayProxy, rmi::ObjectUri, Vec<rmi::Daemon>) {
    let (c_daemon, c) = support::serve(Server(innermost)).await;
    let to_c = RelayProxy::connect(&c).await.unwrap();
    let (b_daemon, b) = support::serve(Server(Next::Forward(to_c))).await;
    let to_b = RelayProxy::connect(&b).await.unwrap();
    let (a_daemon, a) = support::serve(Server(Next::Forward(to_b))).await;
    let to_a = RelayProxy::connect(&a)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    (to_a, c, vec![a_daemon, b_daemon, c_daemon])
}

#[tokio::test]
async fn a_name_not_found_three_hops_down_arrives_as_itself_naming_its_hop() {
    let (a, c, _daemons) = chain(Next::Missing).await;
    let err = a.fetch("ledger".into()).await.unwrap().unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::NameNotFound { name, name_server, .. }
            if name == "ledger" && name_server == "127.0.0.1:9090"),
        "{err:?}"
    );
    assert_eq!(err.hop(), Some(c.to_string().as_str()), "{err}");
    assert!(err.to_string().ends_with(&format!(" (from {c})")), "{err}");
}

#[tokio::test]
async fn a_dead_object_called_by_the_innermost_server_is_its_connect_error() {
    let gone = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let dead = gone.register(Server(Next::Missing)).unwrap();
    gone.shutdown().await;
    let (a, c, _daemons) = chain(Next::Dead(dead.clone())).await;
    let err = a.fetch("ledger".into()).await.unwrap().unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Connect { endpoint, .. } if *endpoint == dead.endpoint().to_string()),
        "{err:?}"
    );
    assert_eq!(err.hop(), Some(c.to_string().as_str()), "{err}");
    let message = err.to_string();
    assert!(message.starts_with("cannot connect to "), "{message}");
    assert!(message.ends_with(&format!(" (from {c})")), "{message}");
}

#[tokio::test]
async fn a_failure_between_two_servers_names_the_server_that_saw_it() {
    // B forwards to C, whose daemon stops: B's call fails there, so B is the hop.
    let (c_daemon, c) = support::serve(Server(Next::Missing)).await;
    let to_c = RelayProxy::connect(&c).await.unwrap();
    let (_b_daemon, b) = support::serve(Server(Next::Forward(to_c))).await;
    c_daemon.shutdown().await;
    let to_b = RelayProxy::connect(&b).await.unwrap();
    let err = to_b.fetch("ledger".into()).await.unwrap().unwrap_err();
    assert!(
        matches!(
            err.kind(),
            rmi::ErrorKind::Connect { .. } | rmi::ErrorKind::Disconnected { .. }
        ),
        "{err:?}"
    );
    assert_eq!(err.hop(), Some(b.to_string().as_str()), "{err}");
}

#[tokio::test]
async fn an_error_made_by_the_client_itself_has_no_hop() {
    let (a, _c, daemons) = chain(Next::Missing).await;
    for daemon in &daemons {
        daemon.shutdown().await;
    }
    let err = a.fetch("ledger".into()).await.unwrap_err();
    assert_eq!(err.hop(), None, "{err}");
    assert!(!err.to_string().contains("(from "), "{err}");
}

#[tokio::test]
async fn the_error_crosses_as_json_too() {
    // Calls without Rust types (the `rmi` command, the gateway) get the error as JSON.
    let (_daemon, c) = support::serve(Server(Next::Missing)).await;
    let dynamic = rmi::DynamicProxy::connect(&c).await.unwrap();
    let reply = dynamic
        .call_json("fetch", serde_json::json!(["ledger"]))
        .await
        .unwrap();
    // An `rmi::Error` is its kind and the hop it arose on.
    assert_eq!(
        reply["Err"]["kind"]["NameNotFound"]["name"], "ledger",
        "{reply}"
    );
    assert_eq!(reply["Err"]["hop"], c.to_string(), "{reply}");
}
