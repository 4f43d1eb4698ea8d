//! The socket demos (plain tokio, the layer under rmi), each with its own client and with
//! clients no one here wrote: Python's `socket` module, and `nc` and `socat` (ignored unless
//! installed: `cargo test -- --include-ignored`, as `.ci/run` does).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rmi_tests::{example, run, start_listening, stdout, system_tool, temp_dir};

/// `Mon Nov 23 19:40:12 2026`, as Python's `time.ctime()` writes it.
fn looks_like_ctime(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields.len() == 5
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&fields[0])
        && fields[3].len() == 8
        && fields[3].split(':').all(|n| n.parse::<u8>().is_ok())
        && fields[4].parse::<u32>().is_ok()
}

fn port_arg(port: u16) -> [String; 2] {
    ["--port".into(), port.to_string()]
}

#[test]
fn the_time_server_tells_its_clients_and_python_the_time() {
    let (mut server, port) = start_listening("time_server", example("time_server"));
    let output = run(example("time_client").args(port_arg(port)), "");
    let printed = stdout(&output);
    let time = printed
        .strip_prefix("Time connection server:")
        .unwrap_or_else(|| panic!("time_client printed {printed:?}"));
    assert!(looks_like_ctime(time.trim_end()), "{printed:?}");
    assert!(server
        .expect_line("Connected with ('127.0.0.1', ")
        .ends_with(')'));

    let raw = python_client(port, "");
    assert!(raw.ends_with("\r\n"), "{raw:?}");
    assert!(looks_like_ctime(raw.trim_end()), "{raw:?}");
}

#[test]
#[ignore = "needs nc: apt-get install netcat-openbsd"]
fn nc_reads_the_time() {
    let (_server, port) = start_listening("time_server", example("time_server"));
    let output = run(system_tool("nc").args(["127.0.0.1", &port.to_string()]), "");
    let raw = stdout(&output);
    assert!(raw.ends_with("\r\n"), "{raw:?}");
    assert!(looks_like_ctime(raw.trim_end()), "{raw:?}");
}

/// Python's own `socket` module as a client (python3 is on every machine the README names):
/// sends `send`, half-closes, and returns all it read until the server closed.
fn python_client(port: u16, send: &str) -> String {
    let script = format!(
        "import socket,sys\n\
         s=socket.create_connection(('127.0.0.1',{port}),timeout=60)\n\
         s.sendall(sys.stdin.buffer.read())\n\
         s.shutdown(socket.SHUT_WR)\n\
         out=b''\n\
         while True:\n  b=s.recv(65536)\n  if not b: break\n  out+=b\n\
         sys.stdout.buffer.write(out)\n"
    );
    let output = run(Command::new("python3").args(["-c", &script]), send);
    assert!(output.status.success(), "python3 client: {output:?}");
    stdout(&output)
}

/// `size` bytes that differ from one offset to the next (not a repeating block).
fn write_pattern(path: &Path, size: usize) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    std::fs::write(path, bytes).unwrap();
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

#[test]
fn the_file_server_sends_an_empty_file_exactly() {
    let dir = temp_dir("file-empty");
    let file = dir.path().join("empty.txt");
    std::fs::write(&file, b"").unwrap();
    let mut command = example("file_server");
    command.arg(&file);
    let (_server, port) = start_listening("file_server", command);
    let out = dir.path().join("received.txt");
    let output = run(
        example("file_client")
            .args(port_arg(port))
            .arg("--out")
            .arg(&out),
        "",
    );
    assert_eq!(
        stdout(&output),
        format!("Received 0 bytes into {}\n", out.display())
    );
    assert!(same_bytes(&file, &out));
}

#[test]
fn the_file_server_sends_100_mib_to_several_clients_at_once_despite_one_that_vanishes() {
    let dir = temp_dir("file-big");
    let file = dir.path().join("big.bin");
    write_pattern(&file, 100 * 1024 * 1024);
    let mut command = example("file_server");
    command.arg(&file);
    let (mut server, port) = start_listening("file_server", command);

    // A client that asks, reads 1 MiB and vanishes.
    let mut quitter = TcpStream::connect(("127.0.0.1", port)).unwrap();
    quitter.write_all(b"HelloServer!").unwrap();
    let mut first = vec![0u8; 1024 * 1024];
    quitter.read_exact(&mut first).unwrap();
    drop(quitter);

    // Three clients at once, and Python's socket module.
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let out = dir.path().join(format!("received-{i}.bin"));
            let mut client = example("file_client");
            client.args(port_arg(port)).arg("--out").arg(&out);
            let child = client
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("file_client starts");
            (child, out)
        })
        .collect();
    let by_python = python_bytes(port, b"HelloServer!");
    assert!(
        by_python == std::fs::read(&file).unwrap(),
        "Python's copy differs"
    );
    for (mut child, out) in clients {
        assert!(child.wait().unwrap().success());
        assert!(same_bytes(&file, &out), "{} differs", out.display());
    }
    assert!(server
        .printed_so_far()
        .iter()
        .any(|line| line.contains("went away")));
}

/// What Python's `socket` module reads after sending `send` (bytes, not text).
fn python_bytes(port: u16, send: &[u8]) -> Vec<u8> {
    let script = format!(
        "import socket,sys\n\
         s=socket.create_connection(('127.0.0.1',{port}),timeout=60)\n\
         s.sendall(sys.stdin.buffer.read())\n\
         while True:\n  b=s.recv(1<<20)\n  if not b: break\n  sys.stdout.buffer.write(b)\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (it is on every machine the README names)");
    child.stdin.take().unwrap().write_all(send).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python3 client failed");
    output.stdout
}

#[test]
#[ignore = "needs socat: apt-get install socat"]
fn socat_downloads_the_file() {
    let dir = temp_dir("file-socat");
    let file = dir.path().join("big.bin");
    write_pattern(&file, 4 * 1024 * 1024);
    let mut command = example("file_server");
    command.arg(&file);
    let (_server, port) = start_listening("file_server", command);
    let by_socat = dir.path().join("by-socat.bin");
    let socat = format!(
        "printf HelloServer! | socat -t 60 - TCP:127.0.0.1:{port} > '{}'",
        by_socat.display()
    );
    system_tool("socat");
    let output = run(Command::new("sh").args(["-c", &socat]), "");
    assert!(output.status.success(), "{:?}", output);
    assert!(same_bytes(&file, &by_socat), "socat's copy differs");
}

#[test]
fn the_file_server_refuses_a_client_that_does_not_say_hello() {
    let dir = temp_dir("file-rude");
    let file = dir.path().join("text.txt");
    std::fs::write(&file, b"secret").unwrap();
    let mut command = example("file_server");
    command.arg(&file);
    let (mut server, port) = start_listening("file_server", command);
    let mut rude = TcpStream::connect(("127.0.0.1", port)).unwrap();
    rude.write_all(b"GIVE ME THE FILE").unwrap();
    let mut got = Vec::new();
    let _ = rude.read_to_end(&mut got);
    assert!(got.is_empty());
    server.expect_line("not \"HelloServer!\"");
}

#[test]
fn the_echo_server_serves_500_clients_at_once() {
    let (mut server, port) = start_listening("echo_server", example("echo_server"));
    // All 500 connect before any sends, so all are open at the same time.
    let mut clients: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    server.expect_line("(500 open)");
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        client
            .write_all(format!("hello from {i}\nbye from {i}\n").as_bytes())
            .unwrap();
    }
    for (i, client) in clients.into_iter().enumerate() {
        let mut lines = BufReader::new(client).lines();
        assert_eq!(lines.next().unwrap().unwrap(), format!("hello from {i}"));
        assert_eq!(lines.next().unwrap().unwrap(), format!("bye from {i}"));
    }
    server.expect_line("ended after");
}

#[test]
fn the_echo_client_sends_lines_until_an_empty_one_and_python_is_echoed_too() {
    let (mut server, port) = start_listening("echo_server", example("echo_server"));
    let output = run(
        example("echo_client").args(port_arg(port)),
        "hello\nhow many clients?\n\nnot sent\n",
    );
    assert_eq!(
        stdout(&output),
        "Received: hello\nReceived: how many clients?\n"
    );
    server.expect_line("ended after 24 bytes");
    assert_eq!(python_client(port, "one\ntwo\n"), "one\ntwo\n");
}

#[test]
#[ignore = "needs socat: apt-get install socat"]
fn socat_is_echoed() {
    let (_server, port) = start_listening("echo_server", example("echo_server"));
    let output = run(
        system_tool("socat").args(["-t", "5", "-", &format!("TCP:127.0.0.1:{port}")]),
        "one\ntwo\n",
    );
    assert_eq!(stdout(&output), "one\ntwo\n");
}
