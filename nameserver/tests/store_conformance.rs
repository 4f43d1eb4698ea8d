//! One suite, every store: the name server answers the same over memory, SQLite and etcd.

use std::collections::BTreeSet;
use std::time::Duration;

use rmi::{NameServer, NsError, ObjectUri, RegisterOptions};
use rmi_nameserver::{MemoryStore, NameServerImpl, SqliteStore};

fn uri(n: u32) -> ObjectUri {
    format!("rmi:obj_{n}@127.0.0.1:{}", 4000 + n)
        .parse()
        .expect("a valid URI")
}

fn tags(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|t| t.to_string()).collect()
}

fn names<T>(map: std::collections::BTreeMap<String, T>) -> Vec<String> {
    map.into_keys().collect()
}

/// Every operation of the name server, on an empty store behind `ns`.
async fn conforms(ns: NameServerImpl) {
    // Register, look up, replace.
    assert_eq!(ns.count().await, Ok(0));
    assert_eq!(
        ns.lookup("shop.tea".into()).await,
        Err(NsError::NotFound("shop.tea".into()))
    );
    ns.register("shop.tea".into(), uri(1)).await.unwrap();
    assert_eq!(ns.lookup("shop.tea".into()).await, Ok(uri(1)));
    ns.register("shop.tea".into(), uri(2)).await.unwrap();
    let registration = ns.registration("shop.tea".into()).await.unwrap();
    assert_eq!(
        (registration.uri, registration.meta, registration.ttl_left),
        (uri(2), tags(&[]), None)
    );

    // Tags are stored with the name, replaced with set_meta, and searched.
    let with_tags = RegisterOptions::default().meta(["drinks", "hot"]);
    ns.register_with("shop.coffee".into(), uri(3), with_tags)
        .await
        .unwrap();
    let cold = RegisterOptions::default().meta(["drinks", "cold"]);
    ns.register_with("shop.juice".into(), uri(4), cold)
        .await
        .unwrap();
    assert_eq!(
        ns.registration("shop.coffee".into()).await.unwrap().meta,
        tags(&["drinks", "hot"])
    );
    ns.set_meta("shop.tea".into(), tags(&["drinks", "hot", "leaf"]))
        .await
        .unwrap();
    assert_eq!(
        ns.set_meta("nowhere".into(), tags(&["x"])).await,
        Err(NsError::NotFound("nowhere".into()))
    );
    assert_eq!(
        names(ns.lookup_all(tags(&["drinks", "hot"])).await.unwrap()),
        ["shop.coffee", "shop.tea"]
    );
    assert_eq!(
        names(ns.lookup_any(tags(&["cold", "leaf"])).await.unwrap()),
        ["shop.juice", "shop.tea"]
    );
    assert!(ns.lookup_all(tags(&["none"])).await.unwrap().is_empty());

    // Listing by prefix and by regular expression (anchored at the start).
    ns.register("bank".into(), uri(5)).await.unwrap();
    assert_eq!(
        names(ns.list(None).await.unwrap()),
        ["bank", "shop.coffee", "shop.juice", "shop.tea"]
    );
    assert_eq!(
        names(ns.list(Some("shop.".into())).await.unwrap()),
        ["shop.coffee", "shop.juice", "shop.tea"]
    );
    assert_eq!(
        names(ns.list_matching("shop\\.(tea|juice)".into()).await.unwrap()),
        ["shop.juice", "shop.tea"]
    );
    assert!(ns.list_matching("tea".into()).await.unwrap().is_empty());
    assert_eq!(ns.count().await, Ok(4));

    // Safe registration: refused while another URI holds the name, allowed for the same URI.
    let safe = RegisterOptions {
        safe: true,
        ..RegisterOptions::default()
    };
    assert_eq!(
        ns.register_with("bank".into(), uri(6), safe.clone()).await,
        Err(NsError::Taken {
            name: "bank".into(),
            holder: uri(5).to_string()
        })
    );
    ns.register_with("bank".into(), uri(5), safe.clone())
        .await
        .unwrap();
    ns.register_with("vault".into(), uri(6), safe.clone())
        .await
        .unwrap();
    assert_eq!(ns.lookup("vault".into()).await, Ok(uri(6)));

    // Removal.
    assert_eq!(ns.remove("vault".into()).await, Ok(true));
    assert_eq!(ns.remove("vault".into()).await, Ok(false));
    assert_eq!(
        ns.remove_matching("shop\\.(coffee|juice)".into()).await,
        Ok(2)
    );
    assert_eq!(names(ns.list(None).await.unwrap()), ["bank", "shop.tea"]);

    // Leases: renewed by the holder only; an expired name is gone from every read, and is
    // free for a safe registration.
    let short = RegisterOptions::default()
        .ttl(Duration::from_millis(400))
        .meta(["leased"]);
    ns.register_with("lease.a".into(), uri(7), short.clone())
        .await
        .unwrap();
    ns.register_with("lease.b".into(), uri(8), short.clone())
        .await
        .unwrap();
    let left = ns.registration("lease.a".into()).await.unwrap().ttl_left;
    assert!(
        left.is_some_and(|left| left <= Duration::from_millis(400)),
        "{left:?}"
    );
    assert_eq!(
        ns.renew("lease.a".into(), uri(9), Duration::from_secs(60))
            .await,
        Err(NsError::NotFound("lease.a".into()))
    );
    ns.renew("lease.a".into(), uri(7), Duration::from_secs(60))
        .await
        .unwrap();
    let renewed = ns.registration("lease.a".into()).await.unwrap();
    assert!(renewed.ttl_left > Some(Duration::from_secs(50)));
    assert_eq!(renewed.meta, tags(&["leased"]), "renewal keeps the tags");
    assert_eq!(
        ns.renew("nowhere".into(), uri(7), Duration::from_secs(1))
            .await,
        Err(NsError::NotFound("nowhere".into()))
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        ns.lookup("lease.b".into()).await,
        Err(NsError::NotFound("lease.b".into()))
    );
    assert_eq!(
        names(ns.list(Some("lease.".into())).await.unwrap()),
        ["lease.a"]
    );
    assert_eq!(
        names(ns.lookup_all(tags(&["leased"])).await.unwrap()),
        ["lease.a"]
    );
    assert_eq!(ns.count().await, Ok(3));
    assert_eq!(
        ns.renew("lease.b".into(), uri(8), Duration::from_secs(1))
            .await,
        Err(NsError::NotFound("lease.b".into()))
    );
    assert_eq!(
        ns.set_meta("lease.b".into(), tags(&[])).await,
        Err(NsError::NotFound("lease.b".into()))
    );
    ns.register_with("lease.b".into(), uri(10), safe.clone())
        .await
        .unwrap();
    assert_eq!(ns.lookup("lease.b".into()).await, Ok(uri(10)));
    assert_eq!(
        ns.registration("lease.b".into()).await.unwrap().ttl_left,
        None
    );

    // Bad input is refused before the store is asked.
    assert!(matches!(
        ns.register("two words".into(), uri(1)).await,
        Err(NsError::InvalidName { .. })
    ));
    let zero = RegisterOptions::default().ttl(Duration::ZERO);
    assert!(matches!(
        ns.register_with("x".into(), uri(1), zero).await,
        Err(NsError::InvalidTtl { .. })
    ));
    assert!(matches!(
        ns.list_matching("(".into()).await,
        Err(NsError::InvalidRegex { .. })
    ));
    assert_eq!(ns.count().await, Ok(4));

    // Sixteen safe registrations of one name race: exactly one wins, the others are told who
    // holds it.
    let racers = (0..16).map(|n| {
        let (ns, safe) = (ns.clone(), safe.clone());
        tokio::spawn(async move { ns.register_with("race".into(), uri(100 + n), safe).await })
    });
    let results: Vec<_> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|joined| joined.expect("the racer ran"))
        .collect();
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    let holder = ns.lookup("race".into()).await.unwrap();
    for result in &results {
        if let Err(refused) = result {
            assert_eq!(
                refused,
                &NsError::Taken {
                    name: "race".into(),
                    holder: holder.to_string()
                }
            );
        }
    }
    assert_eq!(ns.remove_matching(".*".into()).await, Ok(5));
    assert_eq!(ns.count().await, Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_conforms() {
    conforms(NameServerImpl::new(MemoryStore::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_conforms() {
    let dir = tempfile::Builder::new()
        .prefix("rmi-test-conformance-")
        .tempdir()
        .expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("names.db")).expect("a new database");
    conforms(NameServerImpl::new(store)).await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd: apt-get install etcd-server"]
async fn the_etcd_store_conforms() {
    let cluster = tokio::task::spawn_blocking(|| {
        rmi_nameserver::local_etcd::EtcdCluster::start(3).expect("an etcd cluster")
    })
    .await
    .expect("the cluster starts");
    let store = rmi_nameserver::EtcdStore::connect(&cluster.endpoints(), "/conformance/")
        .await
        .expect("etcd answers");
    conforms(NameServerImpl::new(store)).await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd: apt-get install etcd-server"]
async fn name_servers_sharing_etcd_see_each_others_changes_at_once() {
    let cluster = tokio::task::spawn_blocking(|| {
        rmi_nameserver::local_etcd::EtcdCluster::start(3).expect("an etcd cluster")
    })
    .await
    .expect("the cluster starts");
    let endpoints = cluster.endpoints();
    // Each name server talks to a different member first.
    let mut servers = Vec::new();
    for i in 0..2 {
        let mut mine = endpoints.clone();
        mine.rotate_left(i);
        let store = rmi_nameserver::EtcdStore::connect(&mine, "/shared/")
            .await
            .expect("etcd answers");
        servers.push(NameServerImpl::new(store));
    }
    for n in 0..50 {
        let name = format!("shared.{n}");
        servers[n as usize % 2]
            .register(name.clone(), uri(n))
            .await
            .unwrap();
        assert_eq!(servers[(n as usize + 1) % 2].lookup(name).await, Ok(uri(n)));
    }
    // A name with a lease disappears through etcd's lease even if no name server sweeps it.
    let lease = RegisterOptions::default().ttl(Duration::from_millis(500));
    servers[0]
        .register_with("leased".into(), uri(1), lease)
        .await
        .unwrap();
    drop(servers);
    let store = rmi_nameserver::EtcdStore::connect(&endpoints, "/shared/")
        .await
        .expect("etcd answers");
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        use rmi_nameserver::Store;
        let raw = store.entries(0).await.expect("etcd answers");
        if !raw.contains_key("leased") {
            gone = true;
            break;
        }
    }
    assert!(gone, "etcd did not delete the leased name within 10 s");
}
