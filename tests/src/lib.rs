//! Runs the workspace's real binaries (`rmi-ns`, the examples) as a user would, and reads
//! what they print.
//!
//! The helpers build the programs once per test process and find them next to the test
//! executable.

pub mod netns;
pub mod pki;

/// A real etcd cluster on loopback (the `etcd` feature).
#[cfg(feature = "etcd")]
pub use rmi_nameserver::local_etcd as etcd;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long any one program may take to print an expected line.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `target/<profile>`, the directory of the binaries built with these tests.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

/// A workspace binary, such as `rmi-ns`.
pub fn binary(name: &str) -> Command {
    command(binary_path(name))
}

/// The path of a workspace binary, built.
pub fn binary_path(name: &str) -> PathBuf {
    build_programs();
    build_dir().join(name)
}

/// An example program, such as `greeter_server`.
pub fn example(name: &str) -> Command {
    command(example_path(name))
}

/// The path of an example program, built.
pub fn example_path(name: &str) -> PathBuf {
    build_programs();
    build_dir().join("examples").join(name)
}

/// Builds the workspace's binaries and examples once per test process, with the cargo and
/// profile that built this test: `cargo test` does not build other packages' binaries, and
/// builds examples only for the packages it tests.
fn build_programs() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--workspace", "--bins", "--examples", "--quiet"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if build_dir().ends_with("release") {
            build.arg("--release");
        }
        if cfg!(feature = "etcd") {
            build.args(["--features", "rmi-nameserver/etcd"]);
        }
        if cfg!(feature = "otel") {
            build.args([
                "--features",
                "rmi-examples/otel,rmi-nameserver/otel,rmi-gateway/otel",
            ]);
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the workspace's programs failed");
    });
}

fn command(path: PathBuf) -> Command {
    build_programs();
    assert!(path.exists(), "{} was not built", path.display());
    let mut command = Command::new(path);
    command.env_remove("RMI_NS_HOST").env_remove("RMI_NS_PORT");
    command
}

/// A running program whose output is read line by line; killed when dropped.
pub struct Running {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `command` with its standard output captured.
    pub fn start(name: &str, command: Command) -> Running {
        Running::spawn(name, command, false)
    }

    /// Starts `command` with its standard output and its standard error (its log) captured,
    /// as lines of one stream.
    pub fn start_with_log(name: &str, command: Command) -> Running {
        Running::spawn(name, command, true)
    }

    fn spawn(name: &str, mut command: Command, with_log: bool) -> Running {
        let stderr = if with_log {
            Stdio::piped()
        } else {
            Stdio::inherit()
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (send, lines) = channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        forward_lines(stdout, send.clone());
        if let Some(stderr) = child.stderr.take() {
            forward_lines(stderr, send);
        }
        Running {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line that contains `text` and returns it; panics, saying what it printed,
    /// if none comes within [`PATIENCE`].
    pub fn expect_line(&mut self, text: &str) -> String {
        self.wait_for_line(text)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// Waits for a line that contains `text` and returns it; if the program ends first or
    /// prints none within [`PATIENCE`], says so, with what it printed.
    pub fn wait_for_line(&mut self, text: &str) -> Result<String, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{} did not print {text:?} within {PATIENCE:?}; it printed {:?}",
                        self.name, self.seen
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{} ended without printing {text:?}; it printed {:?}",
                        self.name, self.seen
                    ))
                }
            }
        }
    }

    /// Waits, at most `limit`, for the program to exit by itself; kills it and panics if it
    /// does not.
    pub fn wait_for_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("the program can be waited for")
            {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("{} did not exit within {limit:?}", self.name)
    }

    /// Every line the program has printed so far, without waiting for more.
    pub fn printed_so_far(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the program with SIGKILL, as `kill -9` does, and waits for it.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Writes `text` to the program's standard input.
    pub fn type_in(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        stdin
            .write_all(text.as_bytes())
            .expect("the program reads its input");
    }
}

impl Running {
    /// Ends the program's standard input, as Ctrl-D does, and waits (at most [`PATIENCE`])
    /// for it to exit; returns its exit status.
    pub fn end_input(&mut self) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("the program can be waited for")
            {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} did not exit within {PATIENCE:?} of the end of its input",
            self.name
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name server on a free loopback port.
pub struct NameServer {
    /// The running `rmi-ns`.
    pub process: Running,
    /// The port it listens on.
    pub port: u16,
    /// Its URI, as it printed it.
    pub uri: String,
}

impl NameServer {
    /// Starts `rmi-ns --port 0` and reads its port from `NS running on 127.0.0.1:PORT`.
    pub fn start() -> NameServer {
        Self::start_with(&[])
    }

    /// Starts `rmi-ns --port 0` with more arguments, such as `--storage sqlite:PATH`.
    pub fn start_with(args: &[&str]) -> NameServer {
        let mut command = binary("rmi-ns");
        command.args(args);
        NameServer::start_command(command)
    }

    /// Starts `command`, an `rmi-ns` (with its environment set, say), on a free port.
    pub fn start_command(mut command: Command) -> NameServer {
        command.args(["--host", "127.0.0.1", "--port", "0"]);
        let mut process = Running::start("rmi-ns", command);
        let line = process.expect_line("NS running on ");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        let uri = process.expect_line("URI = ");
        let uri = uri.trim_start_matches("URI = ").to_owned();
        let expected = format!(":rmi.nameserver@127.0.0.1:{port}");
        assert!(uri.ends_with(&expected), "rmi-ns printed {uri:?}");
        NameServer { process, port, uri }
    }

    /// Runs `rmi-nsc` against this name server with `args`.
    pub fn nsc(&self, args: &[&str]) -> Output {
        run(self.client(binary("rmi-nsc")).args(args), "")
    }

    /// Stops the name server the way Ctrl-C does, and waits for it to end.
    pub fn interrupt(mut self) {
        // It may have ended already; waiting tells either way.
        let _ = send_signal(self.process.pid(), libc::SIGINT);
        let _ = self.process.child.wait();
    }

    /// `command`, pointed at this name server through `RMI_NS_HOST` and `RMI_NS_PORT`.
    pub fn client(&self, mut command: Command) -> Command {
        command
            .env("RMI_NS_HOST", "127.0.0.1")
            .env("RMI_NS_PORT", self.port.to_string());
        command
    }
}

/// Runs `command` to its end, with `input` on its standard input, killing it after
/// [`PATIENCE`].
pub fn run(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("the program takes its input");
    let pid = child.id();
    let (done, finished) = channel();
    std::thread::spawn(move || {
        if finished.recv_timeout(PATIENCE).is_err() {
            // The child is inside `wait_with_output`, so only its pid is at hand here.
            let _ = send_signal(pid, libc::SIGKILL);
        }
    });
    let output = child.wait_with_output().expect("the program runs");
    let _ = done.send(());
    output
}

/// Starts a socket demo server (with `--port 0`) and returns it with the port it printed in
/// `Listening on HOST:PORT`.
pub fn start_listening(name: &str, mut command: Command) -> (Running, u16) {
    command.args(["--port", "0"]);
    let mut server = Running::start(name, command);
    let line = server.expect_line("Listening on ");
    let port = line
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{name} printed {line:?}, not Listening on HOST:PORT"));
    (server, port)
}

/// A program from the system, such as `nc` or `socat`, which `.ci/run` installs.
pub fn system_tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed; `.ci/run` installs it (the test's #[ignore] reason names the Debian package)"
    );
    Command::new(name)
}

/// Sends each line `from` yields to `to`, from a thread of its own.
fn forward_lines(from: impl std::io::Read + Send + 'static, to: std::sync::mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if to.send(line).is_err() {
                break;
            }
        }
    });
}

/// A name server hosted in this process on a free loopback port, and a proxy to it.
pub async fn in_process_name_server() -> (rmi_nameserver::NameServerHost, rmi::NameServerProxy) {
    let host = rmi_nameserver::NameServerHost::bind("127.0.0.1:0")
        .await
        .expect("a name server on loopback");
    host.daemon().spawn();
    let proxy = rmi::locate_ns_at(host.uri().endpoint())
        .await
        .expect("the name server answers");
    (host, proxy)
}

/// Polls `check` every 50 ms until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// A temporary directory, removed when dropped: [`tempfile::TempDir`].
pub use tempfile::TempDir;

/// A fresh directory `rmi-test-<name>-<random>` in the system's temporary directory, removed
/// when dropped; the name says which test left it, should one be kept.
pub fn temp_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("rmi-test-{name}-"))
        .tempdir()
        .expect("a temporary directory")
}

/// Sends `signal` (`libc::SIGINT`, `libc::SIGTERM`, …) to the process `pid`, as `kill -SIG`
/// does, without starting a `kill` program.
pub fn send_signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The program's standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The program's standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
