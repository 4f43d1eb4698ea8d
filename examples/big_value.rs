//! How much memory a call carrying one large value takes on each side: starts itself again as
//! the server process, raises the frame limit on both sides, echoes a value of `--mib` MiB
//! (64 by default) as a `Vec<u8>`, and prints each side's peak resident memory (`VmHWM`) above
//! what it held before, against the value's size.
//!
//! `cargo run --release --example big_value [-- --mib 64]` (Linux: it reads `/proc`).

use std::process::Stdio;

use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// Measures the memory one call with a large value takes on each side.
#[derive(Parser)]
struct Args {
    /// The size of the value, in MiB.
    #[arg(long, default_value_t = 64)]
    mib: usize,
    /// Run as the server process (the program starts itself so).
    #[arg(long, hide = true)]
    serve: bool,
}

#[rmi::expose]
pub trait Echo {
    /// The value back.
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
    /// This process's peak resident memory, in KiB.
    async fn peak_kib(&self) -> u64;
}

struct EchoServer;

impl Echo for EchoServer {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
    async fn peak_kib(&self) -> u64 {
        peak_kib()
    }
}

/// This process's peak resident memory, in KiB (`VmHWM`).
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let limit = (args.mib + 16) * 1024 * 1024;
    if args.serve {
        let daemon = rmi::Daemon::builder()
            .max_frame_bytes(limit)
            .bind("127.0.0.1:0")
            .await?;
        let uri = daemon.register(EchoServer)?;
        daemon.spawn();
        println!("{uri}");
        // Until the client ends (its end of the pipe closes).
        let mut sink = [0u8; 64];
        while tokio::io::stdin().read(&mut sink).await? > 0 {}
        return Ok(());
    }
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", "--mib", &args.mib.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = server.stdout.take().ok_or("the server has no stdout")?;
    let uri = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .ok_or("the server said nothing")?;
    let echo = rmi::ClientConfig::new()
        .max_frame_bytes(limit)
        .connect::<EchoProxy>(uri.as_str())
        .await?;
    let (client_before, server_before) = (peak_kib(), echo.peak_kib().await?);
    let value = vec![7u8; args.mib * 1024 * 1024];
    let before_value = peak_kib().max(client_before);
    let back = echo.echo(value).await?;
    assert_eq!(back.len(), args.mib * 1024 * 1024);
    drop(back);
    let (client_after, server_after) = (peak_kib(), echo.peak_kib().await?);
    let value_kib = (args.mib * 1024) as f64;
    let client = client_after.saturating_sub(before_value) as f64;
    let server = server_after.saturating_sub(server_before) as f64;
    println!(
        "a {} MiB Vec<u8> echoed: client peak +{:.0} MiB ({:.2}x the value, besides the value itself), server peak +{:.0} MiB ({:.2}x)",
        args.mib,
        client / 1024.0,
        client / value_kib,
        server / 1024.0,
        server / value_kib,
    );
    Ok(())
}
