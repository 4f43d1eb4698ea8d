//! Leases: a name lives as long as its server renews it, and no longer.

use std::time::Duration;

use rmi::RegisterOptions;
use rmi_examples::greeter::{GreeterProxy, Server};
use rmi_tests::{eventually, example, NameServer, Running};

use rmi_tests::in_process_name_server as name_server;

#[tokio::test]
async fn an_unrenewed_lease_runs_out_and_a_renewed_one_does_not() {
    let (host, ns) = name_server().await;
    let uri: rmi::ObjectUri = "rmi:obj_1@127.0.0.1:4001".parse().unwrap();
    let short = RegisterOptions::default().ttl(Duration::from_millis(300));
    ns.register_with("fleeting".into(), uri.clone(), short)
        .await
        .unwrap()
        .unwrap();

    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    daemon.spawn();
    let renewed = RegisterOptions::default().ttl(Duration::from_millis(300));
    let greeter = daemon
        .register_named(&ns, "lasting", Server, renewed)
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(
        ns.lookup("fleeting".into()).await.unwrap(),
        Err(rmi::NsError::NotFound(_))
    ));
    let names: Vec<String> = ns.list(None).await.unwrap().unwrap().into_keys().collect();
    assert_eq!(names, ["lasting"]);
    assert_eq!(ns.lookup("lasting".into()).await.unwrap().unwrap(), greeter);
    let proxy = GreeterProxy::connect(format!("rminame:lasting@{}", host.uri().endpoint()))
        .await
        .unwrap();
    assert_eq!(
        proxy.welcome_message("x".into()).await.unwrap(),
        "Hi welcome x"
    );

    // A clean shutdown removes the name at once.
    daemon.shutdown().await;
    assert_eq!(ns.count().await.unwrap().unwrap(), 0);
    host.shutdown().await;
}

#[tokio::test]
async fn a_lost_name_is_registered_again() {
    let (host, ns) = name_server().await;
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    daemon.spawn();
    let options = RegisterOptions::default().ttl(Duration::from_millis(300));
    let uri = daemon
        .register_named(&ns, "phoenix", Server, options)
        .await
        .unwrap();
    // Someone removes it; the next renewal finds it gone and registers it again.
    assert!(ns.remove("phoenix".into()).await.unwrap().unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ns.lookup("phoenix".into()).await.unwrap().unwrap(), uri);
    daemon.shutdown().await;
    host.shutdown().await;
}

#[test]
fn a_server_killed_with_kill_9_disappears_within_its_ttl() {
    let ns = NameServer::start();
    let mut command = ns.client(example("greeter_server"));
    command.args(["--name-ttl", "0.5"]);
    let mut server = Running::start("greeter_server", command);
    server.expect_line("Ready.");
    // Renewals keep it for longer than its TTL...
    std::thread::sleep(Duration::from_millis(1200));
    assert!(ns.nsc(&["lookup", "server"]).status.success());
    // ...until it dies without a word.
    server.kill_9();
    let gone = eventually(Duration::from_secs(3), || {
        !ns.nsc(&["lookup", "server"]).status.success()
    });
    assert!(gone, "the dead server's name is still registered");
}
