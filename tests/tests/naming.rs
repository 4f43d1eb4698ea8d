//! Names resolved through a name server hosted in this process.

use rmi::{NameServerProxy, NsError};
use rmi_examples::greeter::{GreeterProxy, Server};
use rmi_nameserver::NameServerHost;

async fn name_server() -> (NameServerHost, NameServerProxy) {
    let host = NameServerHost::bind("127.0.0.1:0").await.unwrap();
    host.daemon().spawn();
    let proxy = rmi::locate_ns_at(host.uri().endpoint()).await.unwrap();
    (host, proxy)
}

#[tokio::test]
async fn rminame_uris_resolve_to_the_registered_object() {
    let (host, ns) = name_server().await;
    ns.ping().await.unwrap();
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let uri = daemon.register(Server).unwrap();
    daemon.spawn();
    ns.register("server".into(), uri.clone())
        .await
        .unwrap()
        .unwrap();
    let name = format!("rminame:server@{}", host.uri().endpoint());
    let greeter = GreeterProxy::connect(name.as_str()).await.unwrap();
    assert_eq!(greeter.uri(), &uri);
    assert_eq!(
        greeter.welcome_message("Ruvika".into()).await.unwrap(),
        "Hi welcome Ruvika"
    );
    assert_eq!(ns.list(Some("ser".into())).await.unwrap().unwrap().len(), 1);
    assert!(ns.remove("server".into()).await.unwrap().unwrap());
    daemon.shutdown().await;
    host.daemon().shutdown().await;
}

#[tokio::test]
async fn unknown_names_and_bad_names_are_errors() {
    let (host, ns) = name_server().await;
    let name = format!("rminame:nobody@{}", host.uri().endpoint());
    let err = GreeterProxy::connect(name.as_str()).await.unwrap_err();
    assert!(
        matches!(&err, rmi::Error::NameNotFound { name, .. } if name == "nobody"),
        "{err}"
    );
    let refused = ns
        .register("two words".into(), host.uri().clone())
        .await
        .unwrap();
    assert!(matches!(refused, Err(NsError::InvalidName { .. })));
    assert_eq!(ns.lookup("two words".into()).await.unwrap().unwrap_err().to_string(), "invalid name 'two words': the name contains ' '; names may not hold white space, control characters or '@'");
    host.daemon().shutdown().await;
}

#[tokio::test]
async fn a_name_server_that_is_down_is_named_in_the_error() {
    let host = NameServerHost::bind("127.0.0.1:0").await.unwrap();
    let endpoint = host.uri().endpoint().clone();
    drop(host);
    let err = GreeterProxy::connect(format!("rminame:server@{endpoint}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, rmi::Error::NameServerUnreachable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&endpoint.to_string()));
}
