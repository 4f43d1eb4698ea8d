//! A real etcd cluster on loopback, for tests, benchmarks and trying high availability on
//! one machine: `etcd` from the Debian package `etcd-server`, each member on ports the OS
//! picked, its data in a temporary directory removed when the cluster is dropped.
//!
//! ```no_run
//! let cluster = rmi_nameserver::local_etcd::EtcdCluster::start(3)?;
//! println!("rmi-ns --storage {}", cluster.storage());
//! # Ok::<(), String>(())
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a cluster may take to elect a leader and answer on every member.
const START_PATIENCE: Duration = Duration::from_secs(30);
/// How many times a cluster is started on fresh ports when another program took one of them
/// between picking and binding.
const START_TRIES: usize = 3;

/// One member of the cluster.
pub struct Member {
    /// Its name in the cluster (`m0`, `m1`, …).
    pub name: String,
    /// Where clients reach it: `http://127.0.0.1:PORT`.
    pub client_url: String,
    process: Option<Child>,
    log: PathBuf,
}

impl Member {
    /// Whether it is running.
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| matches!(p.try_wait(), Ok(None)))
    }
}

/// A running etcd cluster; every member is killed when it is dropped.
pub struct EtcdCluster {
    /// Its members, in the order of their names.
    pub members: Vec<Member>,
    _dir: tempfile::TempDir,
}

/// The `etcd` program on the `PATH`, or why there is none and which package to install.
///
/// # Errors
///
/// A message naming the Debian package to install when no `etcd` is on the `PATH`.
pub fn etcd_program() -> Result<PathBuf, String> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("etcd"))
            .find(|etcd| etcd.is_file())
    });
    found.ok_or_else(|| {
        "etcd is not installed: a real etcd cluster is needed; install the Debian package etcd-server (apt-get install etcd-server), as .ci/run does".to_owned()
    })
}

/// `count` ports free on 127.0.0.1 now (the OS picks them; they are released at once, so
/// another program may take one before etcd binds it: the caller retries).
fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("no free port on loopback: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| format!("no free port on loopback: {e}"))
}

/// What the member at `client_url` answers to `GET path` (empty if it does not answer
/// within 2 s).
fn http_get(client_url: &str, path: &str) -> String {
    let address = client_url.trim_start_matches("http://");
    let Ok(mut stream) = TcpStream::connect(address) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// Whether the member at `client_url` says it is healthy (it has a leader).
fn healthy(client_url: &str) -> bool {
    http_get(client_url, "/health").contains("\"health\":\"true\"")
}

impl EtcdCluster {
    /// Starts a cluster of `size` members and waits until every one is healthy; on fresh
    /// ports again (three times at most) if it does not come up.
    ///
    /// # Errors
    ///
    /// A message saying why: no `etcd` program ([`etcd_program`]), or a cluster that did not
    /// become healthy in three tries (with what went wrong in each).
    pub fn start(size: usize) -> Result<EtcdCluster, String> {
        let program = etcd_program()?;
        let mut failures = Vec::new();
        for _ in 0..START_TRIES {
            match EtcdCluster::try_start(&program, size) {
                Ok(cluster) => return Ok(cluster),
                Err(why) => failures.push(why),
            }
        }
        Err(format!(
            "an etcd cluster of {size} did not start in {START_TRIES} tries: {failures:#?}"
        ))
    }

    fn try_start(program: &PathBuf, size: usize) -> Result<EtcdCluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("rmi-etcd-")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        let ports = free_ports(2 * size)?;
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let initial = (0..size)
            .map(|i| format!("m{i}={}", peer(i)))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!(
            "rmi-test-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap_or_default().to_string_lossy()
        );
        let mut members = Vec::new();
        for i in 0..size {
            let name = format!("m{i}");
            let client_url = format!("http://127.0.0.1:{}", ports[2 * i]);
            let log = dir.path().join(format!("{name}.log"));
            let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
            let process = Command::new(program)
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(dir.path().join(&name))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer(i)])
                .args(["--initial-advertise-peer-urls", &peer(i)])
                .args(["--initial-cluster", &initial])
                .args(["--initial-cluster-token", &token])
                .args(["--initial-cluster-state", "new"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
            members.push(Member {
                name,
                client_url,
                process: Some(process),
                log,
            });
        }
        let mut cluster = EtcdCluster { members, _dir: dir };
        let deadline = Instant::now() + START_PATIENCE;
        while Instant::now() < deadline {
            if cluster.members.iter_mut().any(|m| !m.is_running()) {
                return Err(format!("a member exited: {}", cluster.logs()));
            }
            if cluster.members.iter().all(|m| healthy(&m.client_url)) {
                return Ok(cluster);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "not healthy within {START_PATIENCE:?}: {}",
            cluster.logs()
        ))
    }

    /// The last lines of every member's log, for a failure message.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = std::fs::read_to_string(&m.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(5)..].join("\n");
                format!("--- {}:\n{tail}", m.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// `etcd:URL,URL,…`, as `rmi-ns --storage` takes it.
    pub fn storage(&self) -> String {
        format!("etcd:{}", self.endpoints().join(","))
    }

    /// Kills member `i` with SIGKILL, as `kill -9` does, and waits for it.
    pub fn kill_9(&mut self, i: usize) {
        if let Some(mut process) = self.members[i].process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// The member that leads the cluster now (from its `etcd_server_is_leader` metric), if
    /// one says so.
    pub fn leader(&mut self) -> Option<usize> {
        (0..self.members.len()).find(|&i| {
            self.members[i].is_running()
                && http_get(&self.members[i].client_url, "/metrics")
                    .lines()
                    .any(|line| line.trim() == "etcd_server_is_leader 1")
        })
    }

    /// Whether every member still running is healthy.
    pub fn running_members_healthy(&mut self) -> bool {
        self.members
            .iter_mut()
            .filter_map(|m| m.is_running().then(|| m.client_url.clone()))
            .collect::<Vec<_>>()
            .iter()
            .all(|url| healthy(url))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill_9(i);
        }
    }
}
