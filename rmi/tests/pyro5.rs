//! Python's Pyro5 (the real one, from PyPI) calls objects of an rmi daemon on the daemon's own
//! port, as `PYRO:<id>@host:port`: in each of its serializers, by Rust and Python names, with
//! keyword arguments, oneway calls, pings, batches, and errors that arrive as Python
//! exceptions.

use std::process::Stdio;

use serde::{Deserialize, Serialize};

#[rmi::expose]
pub trait Shop {
    async fn welcome_message(&self, name: String) -> String;
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn echo_bytes(&self, data: Vec<u8>) -> Vec<u8>;
    async fn basket(&self, owner: String) -> Basket;
    async fn div(&self, a: i64, b: i64) -> Result<i64, ShopError>;
    async fn lookup(&self, name: String) -> Result<String, rmi::Error>;
    #[oneway]
    async fn note(&self, text: String);
    async fn notes(&self) -> Vec<String>;
    async fn explode(&self);
    async fn greet(&self, name: String, title: Option<String>) -> String;
    async fn countdown(&self, from: u32) -> rmi::Stream<u32>;
    async fn lines(&self, n: usize) -> Result<rmi::Stream<String>, ShopError>;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Basket {
    owner: String,
    items: Vec<(String, u32)>,
    paid: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ShopError {
    DivisionByZero { dividend: i64 },
}

#[derive(Default)]
struct ShopServer {
    notes: std::sync::Mutex<Vec<String>>,
}

impl Shop for ShopServer {
    async fn welcome_message(&self, name: String) -> String {
        format!("Hi welcome {name}")
    }
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn echo_bytes(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
    async fn basket(&self, owner: String) -> Basket {
        Basket {
            owner,
            items: vec![("apple".into(), 3), ("pear".into(), 1)],
            paid: false,
        }
    }
    async fn div(&self, a: i64, b: i64) -> Result<i64, ShopError> {
        if b == 0 {
            return Err(ShopError::DivisionByZero { dividend: a });
        }
        Ok(a / b)
    }
    async fn lookup(&self, name: String) -> Result<String, rmi::Error> {
        Err(rmi::Error::new(rmi::ErrorKind::NameNotFound {
            name,
            name_server: "127.0.0.1:1".into(),
        }))
    }
    async fn note(&self, text: String) {
        self.notes.lock().unwrap().push(text);
    }
    async fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }
    async fn explode(&self) {
        panic!("the shop exploded");
    }
    async fn greet(&self, name: String, title: Option<String>) -> String {
        match title {
            Some(title) => format!("Hi {title} {name}"),
            None => format!("Hi {name}"),
        }
    }
    async fn countdown(&self, from: u32) -> rmi::Stream<u32> {
        rmi::Stream::iter((1..=from).rev())
    }
    async fn lines(&self, n: usize) -> Result<rmi::Stream<String>, ShopError> {
        Ok(rmi::Stream::iter((0..n).map(|i| format!("line {i}"))))
    }
}

/// The Python that `RMI_TEST_PYTHON` names (`python3` if unset).
fn python() -> String {
    std::env::var("RMI_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `script` with `args` in that Python, within 60 s; its stdout.
async fn run_python(script: &str, args: &[&str]) -> String {
    let child = tokio::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the Python client finished within 60 s")
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}\nInstall Pyro5 (`pip install Pyro5`; .ci/run makes a virtual environment with it) \
         and point RMI_TEST_PYTHON at that Python.",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const CLIENT: &str = r#"
import sys
import Pyro5.api, Pyro5.errors
uri, serializer = sys.argv[1], sys.argv[2]
Pyro5.config.SERIALIZER = serializer
shop = Pyro5.api.Proxy(uri)
print(shop.welcomeMessage("Ruvika"))
print(shop.welcome_message(name="Irmen"))
print(shop.add(40, 2), shop.add(a=1, b=2))
import json
print(json.dumps(shop.basket("ann"), sort_keys=True))
print(shop.div(7, 2))
try:
    shop.div(7, 0)
except RuntimeError as e:
    print("RuntimeError", e.error_type, e.error_value)
try:
    shop.lookup("nobody")
except Pyro5.errors.NamingError as e:
    print("NamingError", "nobody" in str(e))
try:
    shop.explode()
except RuntimeError as e:
    print("panicked", "the shop exploded" in str(e), "".join(Pyro5.errors.get_pyro_traceback()) != "")
try:
    shop.add(1)
except TypeError as e:
    print("TypeError", e)
try:
    shop.nothing()
except AttributeError as e:
    print("AttributeError")
shop.note("one")
shop.note("two")
import time
for _ in range(100):
    notes = shop.notes()
    if len(notes) == 2:
        break
    time.sleep(0.02)
print(sorted(notes))
shop._pyroBind()
print(Pyro5.api.Proxy(uri.replace(uri.split(":")[1].split("@")[0], "Pyro.Daemon")).ping())
if serializer != "json":
    data = bytes(range(256)) * 4
    back = shop.echo_bytes(data)
    if isinstance(back, dict):
        import serpent
        back = serpent.tobytes(back)
    print("bytes", back == data)
else:
    print("bytes True")
print(shop.greet("Ann"), "|", shop.greet("Ann", title="Dr"))
print(list(shop.countdown(3)), list(shop.lines(2)), list(shop.countdown(0)))
numbers = shop.countdown(1000)
print(next(numbers), next(numbers))
numbers.close()
batch = Pyro5.api.BatchProxy(shop)
batch.add(1, 2)
batch.welcomeMessage("Batch")
batch.div(1, 0)
batch.add(5, 5)
results = batch()
print("batch", next(results), next(results), end=" ")
try:
    next(results)
except RuntimeError as e:
    print("RuntimeError", "DivisionByZero" in str(e), end=" ")
print(list(results))
batch.note("three")
print("oneway batch", batch(oneway=True))
print(shop.add(1, 1))
"#;

/// What the client prints, in every serializer.
const EXPECTED: [&str; 19] = [
    "Hi welcome Ruvika",
    "Hi welcome Irmen",
    "42 3",
    r#"{"items": [["apple", 3], ["pear", 1]], "owner": "ann", "paid": false}"#,
    "3",
    "RuntimeError ShopError {'DivisionByZero': {'dividend': 7}}",
    "NamingError True",
    "panicked True True",
    "TypeError add() missing required argument: 'b'",
    "AttributeError",
    "['one', 'two']",
    "None",
    "bytes True",
    "Hi Ann | Hi Dr Ann",
    "[3, 2, 1] ['line 0', 'line 1'] []",
    "1000 999",
    "batch 3 Hi welcome Batch RuntimeError True []",
    "oneway batch None",
    "2",
];

async fn shop_daemon() -> (rmi::Daemon, rmi::ObjectUri) {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await.unwrap();
    let uri = daemon.register(ShopServer::default()).unwrap();
    daemon.spawn();
    (daemon, uri)
}

#[tokio::test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
async fn pyro5_clients_call_rmi_objects_in_every_serializer() {
    for serializer in ["serpent", "json", "msgpack"] {
        let (_daemon, uri) = shop_daemon().await;
        let pyro_uri = uri.to_string().replacen("rmi:", "PYRO:", 1);
        let out = run_python(CLIENT, &[&pyro_uri, serializer]).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines, EXPECTED, "{serializer}: {out}");
    }
}

// ---- Pyro5's protocol spoken by hand: what a hostile or mistaken client gets ----

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Pyro5 message (protocol 502) of `kind` with a serpent payload.
fn pyro_message(kind: u8, version: u16, data: &[u8]) -> Vec<u8> {
    let mut message = b"PYRO".to_vec();
    message.extend(version.to_be_bytes());
    message.extend([kind, 1]); // serpent
    message.extend(0u16.to_be_bytes()); // flags
    message.extend(7u16.to_be_bytes()); // seq
    message.extend((data.len() as u32).to_be_bytes());
    message.extend(0u32.to_be_bytes()); // no annotations
    message.extend([0u8; 16]);
    message.extend([0, 0]);
    message.extend(0x4dc5u16.to_be_bytes());
    message.extend(data);
    message
}

/// Reads one message's type, flags and payload, within 5 s.
async fn read_message(stream: &mut tokio::net::TcpStream) -> (u8, u16, String) {
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut header = [0u8; 40];
        stream.read_exact(&mut header).await.unwrap();
        assert_eq!(&header[..4], b"PYRO");
        let len = u32::from_be_bytes(header[12..16].try_into().unwrap()) as usize;
        let annotations = u32::from_be_bytes(header[16..20].try_into().unwrap()) as usize;
        let mut rest = vec![0u8; len + annotations];
        stream.read_exact(&mut rest).await.unwrap();
        let flags = u16::from_be_bytes([header[8], header[9]]);
        let data = String::from_utf8_lossy(&rest[annotations..]).into_owned();
        (header[6], flags, data)
    })
    .await
    .expect("an answer within 5 s")
}

/// Whether the daemon closes the connection within 5 s.
async fn closes(stream: &mut tokio::net::TcpStream) -> bool {
    let mut sink = [0u8; 1024];
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

const CONNECT: u8 = 1;
const CONNECT_OK: u8 = 2;
const CONNECT_FAIL: u8 = 3;
const INVOKE: u8 = 4;
const RESULT: u8 = 5;

#[tokio::test]
async fn a_keyed_daemon_refuses_pyro5_clients_saying_why() {
    let daemon = rmi::Daemon::builder()
        .key(rmi::Key::new("secret").unwrap())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(ShopServer::default()).unwrap();
    daemon.spawn();
    let mut stream = tokio::net::TcpStream::connect(daemon.local_addr())
        .await
        .unwrap();
    let connect = format!("{{'handshake': 'hello', 'object': '{}'}}", uri.id());
    stream
        .write_all(&pyro_message(CONNECT, 502, connect.as_bytes()))
        .await
        .unwrap();
    let (kind, _, reason) = read_message(&mut stream).await;
    assert_eq!(kind, CONNECT_FAIL, "{reason}");
    assert!(reason.contains("requires a key"), "{reason}");
    assert!(closes(&mut stream).await);
}

#[tokio::test]
async fn a_pyro5_client_the_daemon_has_no_room_for_is_told_in_pyro5() {
    let daemon = rmi::Daemon::builder()
        .max_connections(1)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(ShopServer::default()).unwrap();
    daemon.spawn();
    let connect = format!("{{'handshake': 'hello', 'object': '{}'}}", uri.id());
    let connected = || async {
        let mut stream = tokio::net::TcpStream::connect(daemon.local_addr())
            .await
            .unwrap();
        stream
            .write_all(&pyro_message(CONNECT, 502, connect.as_bytes()))
            .await
            .unwrap();
        let answer = read_message(&mut stream).await;
        (stream, answer)
    };
    // The first takes the one place, and keeps it: it sent a complete CONNECT.
    let (_first, (kind, _, _)) = connected().await;
    assert_eq!(kind, CONNECT_OK);
    let (mut second, (kind, _, reason)) = connected().await;
    assert_eq!(kind, CONNECT_FAIL, "{reason}");
    assert!(
        reason.contains("the daemon is full: 1 connections served already")
            && reason.contains("retry later"),
        "{reason}"
    );
    assert!(closes(&mut second).await);
}

#[tokio::test]
async fn bad_pyro_messages_get_an_answer_or_a_close_and_the_daemon_serves_on() {
    let (daemon, uri) = shop_daemon().await;
    let addr = daemon.local_addr();
    let connect = format!("{{'handshake': 'hello', 'object': '{}'}}", uri.id());
    let connected = || async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&pyro_message(CONNECT, 502, connect.as_bytes()))
            .await
            .unwrap();
        let (kind, _, meta) = read_message(&mut stream).await;
        assert_eq!(kind, CONNECT_OK, "{meta}");
        assert!(
            meta.contains("'welcomeMessage'") && meta.contains("'oneway':{'note'}"),
            "{meta}"
        );
        stream
    };

    // Not serpent, then nested too deep: an exception each, and the connection serves on.
    let mut stream = connected().await;
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    for bad in ["(((", deep.as_str()] {
        stream
            .write_all(&pyro_message(INVOKE, 502, bad.as_bytes()))
            .await
            .unwrap();
        let (kind, flags, exception) = read_message(&mut stream).await;
        assert_eq!((kind, flags & 1), (RESULT, 1), "{exception}");
        assert!(exception.contains("SerializeError"), "{exception}");
    }
    let call = format!("('{}', 'add', (2, 3), {{}})", uri.id());
    stream
        .write_all(&pyro_message(INVOKE, 502, call.as_bytes()))
        .await
        .unwrap();
    assert_eq!(read_message(&mut stream).await.2.lines().last(), Some("5"));

    // A message claiming 4 GiB is refused before its payload: closed.
    let mut huge = connected().await;
    let mut message = pyro_message(INVOKE, 502, b"");
    message[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    huge.write_all(&message).await.unwrap();
    assert!(closes(&mut huge).await);

    // Pyro4's protocol (version 48): closed, the log says why.
    let mut pyro4 = tokio::net::TcpStream::connect(addr).await.unwrap();
    pyro4
        .write_all(&pyro_message(CONNECT, 48, connect.as_bytes()))
        .await
        .unwrap();
    assert!(closes(&mut pyro4).await);

    // Neither rmi nor Pyro5.
    let mut http = tokio::net::TcpStream::connect(addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closes(&mut http).await);

    // Everyone else is served all along.
    let shop = ShopProxy::connect(&uri).await.unwrap();
    assert_eq!(shop.add(1, 2).await.unwrap(), 3);
}
