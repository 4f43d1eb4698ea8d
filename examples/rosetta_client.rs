//! The Rosetta client: lists each object's methods (what XML-RPC's `system.listMethods`
//! gives), calls `make_upper` on `string` and `div` on `math`, and shows a typed remote
//! error, after which the server goes on serving.
//!
//! `cargo run --example rosetta_client` (start `rosetta_server` first).

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::rosetta::{MathProxy, StringToolsProxy, MATH, STRING};

/// Calls the Rosetta server's two objects.
#[derive(Parser)]
struct Args {
    /// The text to put in capitals.
    #[arg(long, default_value = "my name is eren")]
    text: String,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), rmi::Error> {
    let string_uri = format!("{}{STRING}", rmi::NAME_SCHEME);
    let math_uri = format!("{}{MATH}", rmi::NAME_SCHEME);
    for uri in [&string_uri, &math_uri] {
        let object = rmi::DynamicProxy::connect(uri.as_str()).await?;
        let descriptor = object.descriptor();
        println!("{uri} is a {}; its methods:", descriptor.name);
        for method in descriptor.methods.iter() {
            println!("  {}", method.signature());
        }
    }
    let string = StringToolsProxy::connect(string_uri.as_str()).await?;
    println!("Server responded: {}", string.make_upper(args.text).await?);
    let math = MathProxy::connect(math_uri.as_str()).await?;
    for (a, b) in [(10, 5), (1, 0), (9, 3)] {
        match math.div(a, b).await? {
            Ok(quotient) => println!("Server responded the result: {quotient}"),
            Err(error) => println!("Server raised: MathError::{error:?}: {error}"),
        }
    }
    Ok(())
}
