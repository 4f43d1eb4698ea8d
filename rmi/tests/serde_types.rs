//! Every type serde can write and read travels as an argument and as a result: values that
//! need a self-describing format (`serde_json::Value`, flatten, tagged and untagged enums),
//! wide integers, maps keyed by anything, attributes that leave fields out, and structs one
//! field apart between client and server.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flattened {
    pub id: u32,
    #[serde(flatten)]
    pub extra: HashMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum External {
    Unit,
    Newtype(u8),
    Tuple(i16, String),
    Struct { a: bool, b: Option<f64> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Internal {
    Circle { radius: f64 },
    Square { side: u32, label: String },
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
pub enum Adjacent {
    Number(i64),
    Words(Vec<String>),
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Untagged {
    Number(u64),
    Text(String),
    Pair { left: i32, right: i32 },
    List(Vec<Untagged>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithDefaults {
    pub name: String,
    #[serde(default)]
    pub count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A value whose `Serialize` fails: it must fail on the caller's side, before sending.
#[derive(Debug, Clone)]
pub struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to be sent"))
    }
}

impl<'de> Deserialize<'de> for Refuses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Refuses)
    }
}

type Keyed = (HashMap<(u8, String), Vec<u8>>, BTreeMap<i64, bool>);
type Moment = (chrono::DateTime<chrono::Utc>, uuid::Uuid);

#[rmi::expose]
pub trait Mirror {
    async fn json(&self, value: serde_json::Value) -> serde_json::Value;
    async fn flattened(&self, value: Flattened) -> Flattened;
    async fn external(&self, values: Vec<External>) -> Vec<External>;
    async fn internal(&self, values: Vec<Internal>) -> Vec<Internal>;
    async fn adjacent(&self, values: Vec<Adjacent>) -> Vec<Adjacent>;
    async fn untagged(&self, values: Vec<Untagged>) -> Vec<Untagged>;
    async fn wide(&self, unsigned: u128, signed: i128) -> (u128, i128);
    async fn keyed(&self, value: Keyed) -> Keyed;
    async fn defaults(&self, value: WithDefaults) -> WithDefaults;
    async fn bytes(&self, value: ByteBuf) -> ByteBuf;
    async fn moment(&self, value: Moment) -> Moment;
    async fn refuse(&self, value: Refuses) -> u8;
    #[oneway]
    async fn remember(&self, value: serde_json::Value);
    async fn remembered(&self) -> Vec<serde_json::Value>;
}

#[derive(Default)]
struct MirrorImpl(Mutex<Vec<serde_json::Value>>);

impl Mirror for MirrorImpl {
    async fn json(&self, value: serde_json::Value) -> serde_json::Value {
        value
    }
    async fn flattened(&self, value: Flattened) -> Flattened {
        value
    }
    async fn external(&self, values: Vec<External>) -> Vec<External> {
        values
    }
    async fn internal(&self, values: Vec<Internal>) -> Vec<Internal> {
        values
    }
    async fn adjacent(&self, values: Vec<Adjacent>) -> Vec<Adjacent> {
        values
    }
    async fn untagged(&self, values: Vec<Untagged>) -> Vec<Untagged> {
        values
    }
    async fn wide(&self, unsigned: u128, signed: i128) -> (u128, i128) {
        (unsigned, signed)
    }
    async fn keyed(&self, value: Keyed) -> Keyed {
        value
    }
    async fn defaults(&self, value: WithDefaults) -> WithDefaults {
        value
    }
    async fn bytes(&self, value: ByteBuf) -> ByteBuf {
        value
    }
    async fn moment(&self, value: Moment) -> Moment {
        value
    }
    async fn refuse(&self, _: Refuses) -> u8 {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::Value::from("refuse ran"));
        1
    }
    async fn remember(&self, value: serde_json::Value) {
        self.0.lock().unwrap().push(value);
    }
    async fn remembered(&self) -> Vec<serde_json::Value> {
        self.0.lock().unwrap().clone()
    }
}

async fn mirror() -> (rmi::Daemon, MirrorProxy) {
    support::serve_and_connect(MirrorImpl::default()).await
}

#[tokio::test]
async fn self_describing_values_travel_both_ways() {
    let (daemon, mirror) = mirror().await;
    let value =
        json!({"name": "ada", "tags": [1, 2.5, "x", null, true], "nested": {"deep": [[{}]]}});
    assert_eq!(mirror.json(value.clone()).await.unwrap(), value);
    let flattened = Flattened {
        id: 7,
        extra: HashMap::from([("colour".into(), json!("red")), ("size".into(), json!(3))]),
    };
    assert_eq!(
        mirror.flattened(flattened.clone()).await.unwrap(),
        flattened
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn every_enum_representation_travels() {
    let (daemon, mirror) = mirror().await;
    let external = vec![
        External::Unit,
        External::Newtype(3),
        External::Tuple(-4, "t".into()),
        External::Struct {
            a: true,
            b: Some(0.5),
        },
        External::Struct { a: false, b: None },
    ];
    assert_eq!(mirror.external(external.clone()).await.unwrap(), external);
    let internal = vec![
        Internal::Circle { radius: 1.5 },
        Internal::Square {
            side: 2,
            label: "sq".into(),
        },
        Internal::Nothing,
    ];
    assert_eq!(mirror.internal(internal.clone()).await.unwrap(), internal);
    let adjacent = vec![
        Adjacent::Number(-9),
        Adjacent::Words(vec!["a".into(), "b".into()]),
        Adjacent::Empty,
    ];
    assert_eq!(mirror.adjacent(adjacent.clone()).await.unwrap(), adjacent);
    let untagged = vec![
        Untagged::Number(5),
        Untagged::Text("five".into()),
        Untagged::Pair { left: -1, right: 1 },
        Untagged::List(vec![Untagged::Number(1), Untagged::Text("x".into())]),
    ];
    assert_eq!(mirror.untagged(untagged.clone()).await.unwrap(), untagged);
    daemon.shutdown().await;
}

#[tokio::test]
async fn wide_integers_maps_and_bytes_travel() {
    let (daemon, mirror) = mirror().await;
    assert_eq!(
        mirror.wide(u128::MAX, i128::MIN).await.unwrap(),
        (u128::MAX, i128::MIN)
    );
    assert_eq!(mirror.wide(0, -1).await.unwrap(), (0, -1));
    let keyed: Keyed = (
        HashMap::from([((1, "one".into()), vec![1]), ((2, "two".into()), vec![])]),
        BTreeMap::from([(-5, true), (i64::MAX, false)]),
    );
    assert_eq!(mirror.keyed(keyed.clone()).await.unwrap(), keyed);
    let bytes = ByteBuf::from((0..=255u8).cycle().take(100_000).collect::<Vec<_>>());
    assert_eq!(mirror.bytes(bytes.clone()).await.unwrap(), bytes);
    daemon.shutdown().await;
}

#[tokio::test]
async fn fields_left_out_or_defaulted_come_back_the_same() {
    let (daemon, mirror) = mirror().await;
    for value in [
        WithDefaults {
            name: "bare".into(),
            count: 0,
            note: None,
            tags: vec![],
        },
        WithDefaults {
            name: "full".into(),
            count: 3,
            note: Some("n".into()),
            tags: vec!["t".into()],
        },
    ] {
        assert_eq!(mirror.defaults(value.clone()).await.unwrap(), value);
    }
    daemon.shutdown().await;
}

#[tokio::test]
async fn dates_and_uuids_travel() {
    let (daemon, mirror) = mirror().await;
    let moment = (chrono::Utc::now(), uuid::Uuid::new_v4());
    assert_eq!(mirror.moment(moment).await.unwrap(), moment);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_oneway_call_with_a_self_describing_value_runs() {
    let (daemon, mirror) = mirror().await;
    mirror.remember(json!({"k": [1, "v"]})).await.unwrap();
    let remembered = || async { !mirror.remembered().await.unwrap().is_empty() };
    assert!(support::eventually(support::PATIENCE, remembered).await);
    assert_eq!(
        mirror.remembered().await.unwrap(),
        vec![json!({"k": [1, "v"]})]
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_value_that_cannot_be_encoded_fails_before_it_is_sent() {
    let (daemon, mirror) = mirror().await;
    let err = mirror.refuse(Refuses).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Unencodable { type_name, reason, method, .. }
            if type_name.contains("Refuses") && reason.contains("refuses to be sent") && method == "refuse"),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was sent"), "{err}");
    assert!(
        mirror.remembered().await.unwrap().is_empty(),
        "the method ran"
    );
    daemon.shutdown().await;
}

/// Client and server one field apart: the newer side's `Option` field is `None` when the
/// older side sends, and ignored when the older side receives.
mod skew {
    use serde::{Deserialize, Serialize};

    pub mod older {
        use super::*;
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct Account {
            pub owner: String,
            pub balance: i64,
        }
        #[rmi::expose]
        pub trait Bank {
            async fn open(&self, account: Account) -> Account;
        }
        pub struct BankImpl;
        impl Bank for BankImpl {
            async fn open(&self, account: Account) -> Account {
                account
            }
        }
    }

    pub mod newer {
        use super::*;
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct Account {
            pub owner: String,
            pub balance: i64,
            pub branch: Option<String>,
        }
        #[rmi::expose]
        pub trait Bank {
            async fn open(&self, account: Account) -> Account;
        }
        pub struct BankImpl;
        impl Bank for BankImpl {
            async fn open(&self, mut account: Account) -> Account {
                account.branch.get_or_insert_with(|| "main".into());
                account
            }
        }
    }
}

#[tokio::test]
async fn a_server_one_field_ahead_of_its_client_serves_it() {
    use skew::{newer, older};
    let (daemon, uri) = support::serve(newer::BankImpl).await;
    let bank = older::BankProxy::connect(&uri).await.unwrap();
    let sent = older::Account {
        owner: "ada".into(),
        balance: 10,
    };
    // The server saw `branch: None`, filled it in, and sent it back: the client ignores it.
    assert_eq!(bank.open(sent.clone()).await.unwrap(), sent);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_client_one_field_ahead_of_its_server_is_served() {
    use skew::{newer, older};
    let (daemon, uri) = support::serve(older::BankImpl).await;
    let bank = newer::BankProxy::connect(&uri).await.unwrap();
    let sent = newer::Account {
        owner: "ada".into(),
        balance: 10,
        branch: Some("north".into()),
    };
    let back = bank.open(sent).await.unwrap();
    assert_eq!(
        (back.owner.as_str(), back.balance, back.branch),
        ("ada", 10, None)
    );
    daemon.shutdown().await;
}
