//! rmi proxies call objects of Python's Pyro5 (the real one, from PyPI) at their `PYRO:` URIs:
//! typed proxies by Rust or Python method names, `DynamicProxy` with JSON, Python exceptions
//! as `ErrorKind::Raised`, the proxy's deadline, oneway calls, and an `rmi::Remote` that Python
//! calls back.

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;

/// What the Python object serves, as a Rust trait.
#[rmi::expose]
pub trait Store {
    async fn welcome_message(&self, name: String) -> String;
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn div(&self, a: f64, b: f64) -> f64;
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
    async fn photo(&self, name: String) -> Photo;
    async fn slow(&self, secs: f64) -> f64;
    #[oneway]
    async fn note(&self, text: String);
    async fn notes(&self) -> Vec<String>;
    async fn not_in_python(&self);
    async fn greet_through(&self, greeter: rmi::Remote<GreeterProxy>, name: String) -> String;
}

/// An rmi object the Python object calls back.
#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: String) -> String;
}

struct RustGreeter;

impl Greeter for RustGreeter {
    async fn welcome_message(&self, name: String) -> String {
        format!("Hi welcome {name}, from Rust")
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    name: String,
    tags: Vec<String>,
    size: u32,
    thumbnail: Vec<u8>,
}

/// A Pyro5 daemon serving a `Store`; prints its URI, then serves until killed.
const SERVER: &str = r#"
import time
import Pyro5.api

@Pyro5.api.expose
class Store:
    def __init__(self):
        self._notes = []
    def welcomeMessage(self, name):
        return "Hi welcome " + name
    def add(self, a, b):
        return a + b
    def div(self, a, b):
        return a / b
    def echo(self, data):
        return data
    def photo(self, name):
        return {"name": name, "tags": ["sea", "sky"], "size": 3, "thumbnail": b"\x00\x01\xff"}
    def slow(self, secs):
        time.sleep(secs)
        return secs
    @Pyro5.api.oneway
    def note(self, text):
        self._notes.append(text)
    def notes(self):
        return self._notes
    def greet_through(self, greeter, name):
        return greeter.welcomeMessage(name)

daemon = Pyro5.api.Daemon(host="127.0.0.1", port=0)
print(daemon.register(Store()), flush=True)
daemon.requestLoop()
"#;

/// The Python that `RMI_TEST_PYTHON` names (`python3` if unset).
fn python() -> String {
    std::env::var("RMI_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The Python server, running (killed when dropped), and its object's URI.
async fn python_store() -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(python())
        .arg("-c")
        .arg(SERVER)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the Python server printed its URI within 30 s")
        .unwrap();
    let uri = line.unwrap_or_else(|| {
        panic!(
            "{} ended without serving: install Pyro5 (`pip install Pyro5`; .ci/run makes a \
             virtual environment with it) and point RMI_TEST_PYTHON at that Python",
            python()
        )
    });
    assert!(uri.starts_with("PYRO:obj_"), "{uri}");
    (child, uri)
}

#[tokio::test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
async fn a_typed_proxy_calls_a_python_object() {
    let (_python, uri) = python_store().await;
    let store = StoreProxy::connect(uri.as_str()).await.unwrap();
    assert_eq!(store.uri().to_string(), uri);
    assert_eq!(
        store.welcome_message("Ruvika".into()).await.unwrap(),
        "Hi welcome Ruvika"
    );
    assert_eq!(store.add(40, 2).await.unwrap(), 42);
    assert_eq!(store.div(7.0, 2.0).await.unwrap(), 3.5);
    let data: Vec<u8> = (0..=255).collect();
    assert_eq!(store.echo(data.clone()).await.unwrap(), data);
    assert_eq!(
        store.photo("beach".into()).await.unwrap(),
        Photo {
            name: "beach".into(),
            tags: vec!["sea".into(), "sky".into()],
            size: 3,
            thumbnail: vec![0, 1, 255],
        }
    );
    store.note("one".into()).await.unwrap();
    store.note("two".into()).await.unwrap();
    // Oneway: sent, then run by Pyro5 on a thread of its own, each in its own time.
    let mut notes = Vec::new();
    for _ in 0..100 {
        notes = store.notes().await.unwrap();
        if notes.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    notes.sort();
    assert_eq!(notes, ["one", "two"]);

    let err = store.not_in_python().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("exposes no method 'not_in_python' (nor 'notInPython')"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
async fn a_remote_passed_to_a_python_object_reaches_it_as_a_pyro5_proxy() {
    let (_python, uri) = python_store().await;
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let greeter = daemon.register(RustGreeter).unwrap();
    daemon.spawn();
    let store = StoreProxy::connect(uri.as_str()).await.unwrap();
    let greeted = store
        .greet_through(rmi::Remote::new(greeter), "Ann".into())
        .await
        .unwrap();
    assert_eq!(greeted, "Hi welcome Ann, from Rust");
}

#[tokio::test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
async fn a_python_exception_arrives_with_its_class_message_and_traceback() {
    let (_python, uri) = python_store().await;
    let store = StoreProxy::connect(uri.as_str()).await.unwrap();
    let err = store.div(1.0, 0.0).await.unwrap_err();
    let rmi::ErrorKind::Raised {
        class,
        message,
        traceback,
        method,
        ..
    } = err.kind()
    else {
        panic!("not an exception: {err:?}");
    };
    assert_eq!(class, "builtins.ZeroDivisionError");
    assert_eq!(message, "float division by zero");
    assert_eq!(method, "div");
    assert!(
        traceback.contains(", in div\n") && traceback.contains("ZeroDivisionError"),
        "{traceback}"
    );
    assert_eq!(
        err.to_string(),
        format!("'div' on {uri} raised builtins.ZeroDivisionError: float division by zero")
    );
    // The connection is still good.
    assert_eq!(store.add(1, 1).await.unwrap(), 2);
}

#[tokio::test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
async fn a_python_call_keeps_the_proxys_deadline() {
    let (_python, uri) = python_store().await;
    let store = StoreProxy::connect(uri.as_str())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = store.slow(2.0).await.unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Timeout { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The connection the late reply would come on is given up: the next call binds anew
    // (Pyro5's daemon serves each connection on a thread of its own).
    assert_eq!(store.add(2, 3).await.unwrap(), 5);
}

#[tokio::test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
async fn a_dynamic_proxy_calls_a_python_object_with_json() {
    let (_python, uri) = python_store().await;
    let store = rmi::DynamicProxy::connect(uri.as_str()).await.unwrap();
    let methods: Vec<String> = store
        .descriptor()
        .methods
        .iter()
        .map(|m| m.name.to_string())
        .collect();
    assert!(
        methods.contains(&"welcomeMessage".to_owned()),
        "{methods:?}"
    );
    let hi = store
        .call_json("welcomeMessage", serde_json::json!(["Ann"]))
        .await
        .unwrap();
    assert_eq!(hi, "Hi welcome Ann");
    let sum = store
        .call_json("add", serde_json::json!([[1], [2, 3]]))
        .await
        .unwrap();
    assert_eq!(sum, serde_json::json!([1, 2, 3]));
    let err = store
        .call_json("add", serde_json::json!([1]))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), rmi::ErrorKind::Raised { class, .. } if class == "builtins.TypeError"),
        "{err:?}"
    );
}
