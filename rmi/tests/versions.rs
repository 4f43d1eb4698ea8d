//! Client and server built from different versions of a trait: every disagreement is a clear,
//! typed error, never a garbled value.

mod support;

use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Point {
        pub x: i32,
    }

    #[rmi::expose]
    pub trait Shop {
        async fn price(&self, item: String) -> u32;
        async fn stock(&self, item: String) -> u32;
        async fn locate(&self, at: Point) -> i32;
    }

    pub struct ShopImpl;
    impl Shop for ShopImpl {
        async fn price(&self, _item: String) -> u32 {
            10
        }
        async fn stock(&self, _item: String) -> u32 {
            3
        }
        async fn locate(&self, at: Point) -> i32 {
            at.x
        }
    }
}

mod v2 {
    use super::*;

    /// Same name and same text in the trait, other fields: only decoding can tell.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct Point {
        pub label: String,
        pub extra: Vec<u64>,
    }

    #[rmi::expose]
    pub trait Shop {
        async fn price(&self, item: String) -> u32;
        async fn stock(&self, item: String, warehouse: u8) -> u32;
        async fn locate(&self, at: Point) -> i32;
        async fn discount(&self, item: String) -> u32;
    }
}

/// A v1 shop served, and a v2 proxy to it.
async fn shop() -> (rmi::Daemon, v2::ShopProxy) {
    let (daemon, uri) = support::serve(v1::ShopImpl).await;
    let proxy = v2::ShopProxy::connect(&uri).await.unwrap();
    (daemon, proxy)
}

#[tokio::test]
async fn methods_both_sides_share_still_work() {
    let (daemon, shop) = shop().await;
    assert_eq!(shop.price("tea".into()).await.unwrap(), 10);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_method_the_server_lacks_is_an_unknown_method() {
    let (daemon, shop) = shop().await;
    let err = shop.discount("tea".into()).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::UnknownMethod { method, trait_name, .. } if method == "discount" && trait_name == "Shop"),
        "{err}"
    );
    assert!(err.to_string().contains(&shop.uri().to_string()));
    daemon.shutdown().await;
}

#[tokio::test]
async fn other_argument_types_are_a_signature_mismatch() {
    let (daemon, shop) = shop().await;
    let err = shop.stock("tea".into(), 1).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::SignatureMismatch { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("fn stock(item: String, warehouse: u8) -> u32")
            && text.contains("fn stock(item: String) -> u32"),
        "{text}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_value_that_does_not_decode_is_a_codec_error() {
    let (daemon, shop) = shop().await;
    let err = shop
        .locate(v2::Point {
            label: "far away".into(),
            extra: vec![1; 100],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Codec { method, .. } if method == "locate"),
        "{err}"
    );
    // The daemon is unharmed.
    assert_eq!(shop.price("tea".into()).await.unwrap(), 10);
    daemon.shutdown().await;
}

#[tokio::test]
async fn ipv6_daemons_have_bracketed_uris() {
    let daemon = match rmi::Daemon::bind("[::1]:0").await {
        Ok(daemon) => daemon,
        Err(e) => panic!(
            "this test needs the IPv6 loopback [::1], which this machine lacks ({e}); enable it (sysctl net.ipv6.conf.lo.disable_ipv6=0)"
        ),
    };
    let uri = daemon.register(v1::ShopImpl).unwrap();
    assert!(uri.to_string().contains("@[::1]:"), "{uri}");
    daemon.spawn();
    let shop = v1::ShopProxy::connect(uri.to_string()).await.unwrap();
    assert_eq!(shop.stock("tea".into()).await.unwrap(), 3);
    daemon.shutdown().await;
}
