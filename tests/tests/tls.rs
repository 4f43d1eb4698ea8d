//! TLS: a daemon with a certificate, clients that check it against a CA, and mutual TLS, in
//! this process and across processes (`rmi-ns` and `rmi-nsc` set up by `RMI_TLS_*`). The
//! certificates are made on the fly (rcgen).

use std::path::Path;

use rmi_tests::pki::Pki;
use rmi_tests::{binary, run, stderr, NameServer};

#[rmi::expose]
pub trait Ping {
    async fn ping(&self, n: u32) -> u32;
}

struct Pong;

impl Ping for Pong {
    async fn ping(&self, n: u32) -> u32 {
        n + 1
    }
}

async fn tls_daemon(tls: rmi::ServerTls, key: Option<rmi::Key>) -> (rmi::Daemon, rmi::ObjectUri) {
    let builder = rmi::Daemon::builder()
        .tls(tls)
        .handshake_timeout(std::time::Duration::from_secs(1));
    let builder = match key {
        Some(key) => builder.key(key),
        None => builder.no_key(),
    };
    let daemon = builder.bind("127.0.0.1:0").await.unwrap();
    let uri = daemon.register(Pong).unwrap();
    daemon.spawn();
    (daemon, uri)
}

fn client(ca: &Path) -> rmi::ClientConfig {
    rmi::ClientConfig::new().tls(rmi::ClientTls::from_ca_file(ca).unwrap())
}

#[tokio::test]
async fn a_client_that_trusts_the_ca_calls_over_tls() {
    let pki = Pki::new("basic");
    let (cert, key) = pki.issue("server", &["127.0.0.1", "localhost"]);
    let (_daemon, uri) =
        tls_daemon(rmi::ServerTls::from_pem_files(&cert, &key).unwrap(), None).await;
    assert!(uri.to_string().starts_with("rmis:obj_"), "{uri}");
    let ping: PingProxy = client(&pki.ca()).connect(&uri).await.unwrap();
    assert_eq!(ping.ping(41).await.unwrap(), 42);

    // Without TLS, the client is told what the rmis: URI means.
    let plain = rmi::ClientConfig::new()
        .connect::<PingProxy>(&uri)
        .await
        .unwrap_err();
    assert!(plain.to_string().contains("speaks TLS"), "{plain}");
    // A plain client to the same port, not knowing: the daemon refuses it.
    let plain_uri = uri.clone().with_tls(false);
    assert!(rmi::ClientConfig::new()
        .connect::<PingProxy>(&plain_uri)
        .await
        .is_err());
}

#[tokio::test]
async fn a_certificate_from_another_ca_or_for_another_host_is_refused() {
    let pki = Pki::new("other");
    let (cert, key) = pki.issue("server", &["127.0.0.1"]);
    let (_daemon, uri) =
        tls_daemon(rmi::ServerTls::from_pem_files(&cert, &key).unwrap(), None).await;
    let stranger = Pki::new("stranger");
    let refused = client(&stranger.ca())
        .connect::<PingProxy>(&uri)
        .await
        .unwrap_err();
    assert!(
        matches!(refused.kind(), rmi::ErrorKind::Authentication { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("TLS handshake failed"),
        "{refused}"
    );

    let (cert, key) = pki.issue("elsewhere", &["elsewhere.example"]);
    let (_daemon, uri) =
        tls_daemon(rmi::ServerTls::from_pem_files(&cert, &key).unwrap(), None).await;
    let refused = client(&pki.ca())
        .connect::<PingProxy>(&uri)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("TLS handshake failed"),
        "{refused}"
    );
}

#[tokio::test]
async fn mutual_tls_serves_only_clients_with_a_certificate_from_the_client_ca() {
    let pki = Pki::new("mutual");
    let (cert, key) = pki.issue("server", &["127.0.0.1"]);
    let tls = rmi::ServerTls::with_client_ca(&cert, &key, pki.ca()).unwrap();
    let (_daemon, uri) = tls_daemon(tls, Some(rmi::Key::new("and a key").unwrap())).await;

    let (client_cert, client_key) = pki.issue("client", &["client.example"]);
    let identity = rmi::ClientTls::with_identity(pki.ca(), &client_cert, &client_key).unwrap();
    let config = rmi::ClientConfig::new()
        .tls(identity)
        .key(rmi::Key::new("and a key").unwrap());
    let ping: PingProxy = config.connect(&uri).await.unwrap();
    assert_eq!(ping.ping(1).await.unwrap(), 2);

    let anonymous = client(&pki.ca()).key(rmi::Key::new("and a key").unwrap());
    assert!(anonymous.connect::<PingProxy>(&uri).await.is_err());
}

#[test]
fn unusable_files_say_which_and_why() {
    let missing = rmi::ServerTls::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem");
    let message = missing.unwrap_err().to_string();
    assert!(message.contains("/nonexistent/cert.pem"), "{message}");
    let pki = Pki::new("files");
    let not_a_ca = rmi::ClientTls::from_ca_file(pki.dir.join("absent.pem")).unwrap_err();
    assert!(
        matches!(not_a_ca.kind(), rmi::ErrorKind::Tls { .. }),
        "{not_a_ca}"
    );
}

#[test]
fn the_name_server_and_its_client_speak_tls_as_the_environment_says() {
    let pki = Pki::new("ns");
    let (cert, key) = pki.issue("ns", &["127.0.0.1"]);
    let mut ns = binary("rmi-ns");
    ns.env("RMI_TLS_CERT", &cert).env("RMI_TLS_KEY", &key);
    let ns = NameServer::start_command(ns);
    assert!(
        ns.uri.starts_with("rmis:rmi.nameserver@127.0.0.1:"),
        "{}",
        ns.uri
    );

    let mut with_ca = ns.client(binary("rmi-nsc"));
    with_ca.env("RMI_TLS_CA", pki.ca()).arg("ping");
    let output = run(&mut with_ca, "");
    assert!(output.status.success(), "{}", stderr(&output));

    // `rmi objects` names the objects of a TLS daemon with rmis: URIs.
    let mut objects = binary("rmi");
    objects
        .env("RMI_TLS_CA", pki.ca())
        .args(["objects", &format!("127.0.0.1:{}", ns.port)]);
    let listed = run(&mut objects, "");
    let listed = rmi_tests::stdout(&listed);
    assert!(
        listed.contains("rmis:rmi.nameserver@127.0.0.1:"),
        "{listed}"
    );

    // A plain client is let go at once, and told TLS may be why, not to start a name server.
    let mut without = ns.client(binary("rmi-nsc"));
    without.arg("ping");
    let started = std::time::Instant::now();
    let output = run(&mut without, "");
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("RMI_TLS_CA"), "{said}");
    assert!(!said.contains("start one with"), "{said}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "told after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_with_a_ca_speaks_plainly_to_a_plain_daemon_and_is_told_which_side_lacks_tls() {
    let pki = Pki::new("one-sided");
    // A plain daemon: its rmi: URI says so, and a client that has a CA follows the scheme.
    let daemon = rmi::Daemon::builder()
        .no_key()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let uri = daemon.register(Pong).unwrap();
    daemon.spawn();
    assert!(uri.to_string().starts_with("rmi:"), "{uri}");
    let ping: PingProxy = client(&pki.ca()).connect(&uri).await.unwrap();
    assert_eq!(ping.ping(1).await.unwrap(), 2);
    // Told to speak TLS to it (a rmis: URI), the client hears at once that it does not.
    let started = std::time::Instant::now();
    let wrong = client(&pki.ca())
        .connect::<PingProxy>(&uri.clone().with_tls(true))
        .await
        .unwrap_err();
    assert!(
        wrong.to_string().contains("does not seem to speak TLS"),
        "{wrong}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    // A name server by address (no scheme): the CA says TLS; a plain one says why it fails,
    // with no advice to start a name server, as one is running.
    let ns = NameServer::start();
    let at: rmi::Endpoint = format!("127.0.0.1:{}", ns.port).parse().unwrap();
    let refused = client(&pki.ca()).locate_ns_at(&at).await.unwrap_err();
    let said = refused.to_string();
    assert!(said.contains("does not seem to speak TLS"), "{said}");
    assert!(!said.contains("start one with"), "{said}");
    // Where nothing listens, that advice is the one given.
    drop(ns);
    let nothing = rmi::ClientConfig::new()
        .locate_ns_at(&at)
        .await
        .unwrap_err();
    assert!(nothing.to_string().contains("start one with"), "{nothing}");
}

/// Python's Pyro5 with its SSL settings calls a daemon that requires a key and speaks TLS:
/// TLS stands in for the key Pyro5 cannot prove. The same client without TLS is refused.
#[tokio::test]
#[ignore = "needs Python's Pyro5: pip install Pyro5 (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
async fn a_pyro5_client_over_tls_calls_a_keyed_daemon() {
    let pki = Pki::new("pyro5");
    let (cert, key) = pki.issue("server", &["localhost"]);
    let (daemon, uri) = tls_daemon(
        rmi::ServerTls::from_pem_files(&cert, &key).unwrap(),
        Some(rmi::Key::new("secret").unwrap()),
    )
    .await;
    let pyro_uri = format!("PYRO:{}@localhost:{}", uri.id(), daemon.local_addr().port());
    let script = r#"
import sys
import Pyro5.api, Pyro5.errors
uri, ca, ssl = sys.argv[1], sys.argv[2], sys.argv[3] == "ssl"
Pyro5.config.SSL = ssl
Pyro5.config.SSL_CACERTS = ca
try:
    print(Pyro5.api.Proxy(uri).ping(41))
except Pyro5.errors.CommunicationError as e:
    print("refused:", e)
"#;
    let python = std::env::var("RMI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ca = pki.ca();
    let run_python = |mode: &'static str| {
        let (python, uri, ca) = (python.clone(), pyro_uri.clone(), ca.clone());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(&python)
                .args(["-c", script, &uri, ca.to_str().unwrap(), mode])
                .output()
                .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
            assert!(
                out.status.success(),
                "{python} failed: {}\nInstall Pyro5 and point RMI_TEST_PYTHON at that Python.",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
    };
    assert_eq!(run_python("ssl").await.unwrap().trim(), "42");
    let plain = run_python("plain").await.unwrap();
    assert!(plain.starts_with("refused:"), "{plain}");
}
