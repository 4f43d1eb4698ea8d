//! The calc client (Python's `multiprocessing.connection` Client with an `authkey`): proves
//! the key, sends `(5, 6)` and prints `11`, then `("mark", "帅哥")` and prints `mark帅哥`.
//!
//! `cargo run --example calc_client -- --key-file K` (`--host`, `--port`; port 25000).

use clap::Parser;
use rmi_examples::calc::{CalcProxy, KeyAndAddress, Value, ID};
use rmi_examples::cli;

/// Sends pairs to the calc server and prints their sums.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    calc: KeyAndAddress,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = rmi::ClientConfig::new().key(args.calc.key()?);
    let uri = format!("{}{ID}@{}", rmi::OBJECT_SCHEME, args.calc.address.target());
    let calc: CalcProxy = client.connect(uri.as_str()).await?;
    let pairs = [
        (Value::Int(5), Value::Int(6)),
        (Value::Text("mark".into()), Value::Text("帅哥".into())),
    ];
    for (x, y) in pairs {
        println!("{}", calc.add(x, y).await??);
    }
    Ok(())
}
