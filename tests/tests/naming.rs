//! Names resolved through a name server hosted in this process.

use rmi::NsError;
use rmi_examples::greeter::{GreeterProxy, Server};
use rmi_nameserver::NameServerHost;

use rmi_tests::in_process_name_server as name_server;

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
    assert_eq!(greeter.uri(), uri);
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
        matches!(err.kind(), rmi::ErrorKind::NameNotFound { name, .. } if name == "nobody"),
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
        matches!(err.kind(), rmi::ErrorKind::NameServerUnreachable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&endpoint.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_names_list_match_and_lookup_right() {
    let (host, ns) = name_server().await;
    let uri = |i: u32| -> rmi::ObjectUri {
        format!("rmi:obj_{i}@127.0.0.1:{}", 1000 + i % 50000)
            .parse()
            .unwrap()
    };
    let registrations = (0..10_000u32).map(|i| {
        let ns = ns.clone();
        let mut options = rmi::RegisterOptions::default();
        if i % 10 == 0 {
            options = options.meta(["tenth"]);
        }
        if i % 4 == 0 {
            options.meta.insert("quarter".into());
        }
        async move {
            ns.register_with(format!("svc.{i:05}"), uri(i), options)
                .await
                .unwrap()
                .unwrap()
        }
    });
    futures::future::join_all(registrations).await;

    assert_eq!(ns.count().await.unwrap().unwrap(), 10_000);
    let all = ns.list(None).await.unwrap().unwrap();
    assert_eq!(all.len(), 10_000);
    assert_eq!(all["svc.04321"].uri, uri(4321));
    assert_eq!(
        ns.list(Some("svc.01".into())).await.unwrap().unwrap().len(),
        1000
    );
    let matching = ns
        .list_matching(r"svc\.0.*7$".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(matching.len(), 1000);
    assert!(matching.keys().all(|name| name.ends_with('7')));
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<rmi::Tags>();
    assert_eq!(
        ns.lookup_all(tags(&["tenth"]))
            .await
            .unwrap()
            .unwrap()
            .len(),
        1000
    );
    assert_eq!(
        ns.lookup_all(tags(&["tenth", "quarter"]))
            .await
            .unwrap()
            .unwrap()
            .len(),
        500
    );
    assert_eq!(
        ns.lookup_any(tags(&["tenth", "quarter"]))
            .await
            .unwrap()
            .unwrap()
            .len(),
        3000
    );
    assert_eq!(
        ns.remove_matching(r"svc\.09".into())
            .await
            .unwrap()
            .unwrap(),
        1000
    );
    assert_eq!(ns.count().await.unwrap().unwrap(), 9000);
    host.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let (host, ns) = name_server().await;
    let uri = host.uri().clone();
    let long = "x".repeat(257);
    for name in [
        "",
        "two words",
        "tab\there",
        "new\nline",
        "at@sign",
        long.as_str(),
    ] {
        let refused = ns.register(name.into(), uri.clone()).await.unwrap();
        assert!(
            matches!(refused, Err(NsError::InvalidName { .. })),
            "{name:?}: {refused:?}"
        );
    }
    let bad_tags = rmi::RegisterOptions::default().meta(["ok", "not,ok"]);
    let refused = ns
        .register_with("x".into(), uri.clone(), bad_tags)
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(NsError::InvalidTag { .. })),
        "{refused:?}"
    );
    for ttl in [
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(3 * 86_400),
    ] {
        let options = rmi::RegisterOptions::default().ttl(ttl);
        let refused = ns
            .register_with("x".into(), uri.clone(), options)
            .await
            .unwrap();
        assert!(
            matches!(refused, Err(NsError::InvalidTtl { .. })),
            "{refused:?}"
        );
    }
    for regex in ["(", "[z-a]", "a{99999999}"] {
        let refused = ns.list_matching(regex.into()).await.unwrap();
        assert!(
            matches!(refused, Err(NsError::InvalidRegex { .. })),
            "{regex}: {refused:?}"
        );
    }
    assert_eq!(ns.count().await.unwrap().unwrap(), 0);
    host.shutdown().await;
}

#[tokio::test]
async fn rmimeta_uris_spread_over_the_matching_objects() {
    let (host, ns) = name_server().await;
    let mut daemons = Vec::new();
    for i in 0..2 {
        let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
        daemon.spawn();
        let options = rmi::RegisterOptions::default().meta(["greeters"]);
        daemon
            .register_named(&ns, &format!("greeter.{i}"), Server, options)
            .await
            .unwrap();
        daemons.push(daemon);
    }
    let meta = format!("rmimeta:greeters@{}", host.uri().endpoint());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let greeter = GreeterProxy::connect(meta.as_str()).await.unwrap();
        seen.insert(greeter.uri().to_string());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "rmimeta: always picked the same object");
    let none = GreeterProxy::connect(format!("rmimeta:nobody@{}", host.uri().endpoint()))
        .await
        .unwrap_err();
    assert!(
        matches!(none.kind(), rmi::ErrorKind::NoObjectWithTags { .. }),
        "{none}"
    );
    for daemon in daemons {
        daemon.shutdown().await;
    }
    host.shutdown().await;
}
