//! The greeter client: asks for a name (or takes it as the first argument) and greets it
//! through the object registered as `server`.
//!
//! `cargo run --example greeter_client` or `cargo run --example greeter_client -- Ruvika`.

use std::io::Write;

use clap::Parser;
use rmi_examples::{cli, greeter};

/// Greets NAME through the greeter server.
#[derive(Parser)]
struct Args {
    /// Who to greet; asked on standard input when missing.
    name: Option<String>,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let name = match args.name {
        Some(name) => name,
        None => ask_name()?,
    };
    println!("{}", greet(name).await?);
    Ok(())
}

fn ask_name() -> std::io::Result<String> {
    print!("What is your name? ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

async fn greet(name: String) -> Result<String, rmi::Error> {
    let greeter =
        greeter::GreeterProxy::connect(format!("{}{}", rmi::NAME_SCHEME, greeter::NAME)).await?;
    greeter.welcome_message(name).await
}
