//! A proxy made from a `rminame:` URI outlives its server: killed with `kill -9` and started
//! again (on another port, registering the same name), it is found again by the same proxy.

use std::time::Duration;

use rmi_examples::greeter::GreeterProxy;
use rmi_tests::{example, NameServer, Running};

fn greeter(ns: &NameServer) -> Running {
    let mut server = Running::start("greeter_server", ns.client(example("greeter_server")));
    server.expect_line("Ready.");
    server
}

#[tokio::test]
async fn a_named_server_restarted_elsewhere_is_found_again() {
    let ns = NameServer::start();
    let mut first = greeter(&ns);
    let name = format!("rminame:server@127.0.0.1:{}", ns.port);
    let proxy = GreeterProxy::connect(name.as_str())
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    assert_eq!(
        proxy.welcome_message("one".into()).await.unwrap(),
        "Hi welcome one"
    );
    let first_uri = proxy.uri();

    first.kill_9();
    let down = proxy.welcome_message("two".into()).await.unwrap_err();
    // Down: the name still points at the dead server (until its lease runs out), which
    // refuses the connection.
    assert!(
        matches!(
            down.kind(),
            rmi::ErrorKind::Connect { .. } | rmi::ErrorKind::Disconnected { .. }
        ),
        "{down}"
    );

    let _second = greeter(&ns);
    assert_eq!(
        proxy.welcome_message("three".into()).await.unwrap(),
        "Hi welcome three"
    );
    assert_ne!(
        proxy.uri(),
        first_uri,
        "the proxy should have re-resolved the name"
    );
}
