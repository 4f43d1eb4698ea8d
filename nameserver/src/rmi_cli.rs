//! `rmi`: call any exposed method from the command line, with JSON arguments, and see what a
//! daemon hosts (like grpcurl for rmi).
//!
//! It ships with the name server's crate rather than in one of its own: it shares the other
//! two programs' options (`--key-file`, the `RMI_*` settings) and mostly calls objects by
//! name, and one `cargo install rmi-nameserver` gives an operator every command-line tool,
//! as `pip install Pyro5` gives `pyro5-ns` and `pyro5-nsc` together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rmi::{DaemonObjectProxy, JsonReply, TraitDescriptor};
use rmi_nameserver::cli::KeyFile;
use serde_json::Value;

// Beside this file, as a crate root's modules would be if it had a folder of its own.
#[path = "rmi_cli/top.rs"]
mod top;

/// Calls exposed methods and lists objects and their methods, without writing Rust.
#[derive(Parser)]
#[command(name = "rmi", version)]
#[command(mut_arg("key_file", |arg| arg.help("A file holding the daemon's key")))]
struct Cli {
    /// How long to wait for each reply, in seconds.
    #[arg(long, global = true, default_value_t = 30.0)]
    timeout: f64,
    #[command(flatten)]
    key_file: KeyFile,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Call METHOD on the object at URI with ARGS, a JSON array, and print the JSON result
    /// (a stream: each item on a line of its own, as it comes).
    Call {
        /// rmi:OBJID@HOST:PORT, rminame:NAME or rmimeta:TAGS.
        uri: String,
        /// The method's name.
        method: String,
        /// The arguments as a JSON array, such as '["Ruvika"]'.
        #[arg(default_value = "[]")]
        args: String,
    },
    /// List the object's trait and its methods, with parameter and result types.
    Methods {
        /// rmi:OBJID@HOST:PORT, rminame:NAME or rmimeta:TAGS.
        uri: String,
    },
    /// List every object the daemon at HOST:PORT hosts, with its trait.
    Objects {
        /// The daemon's HOST:PORT.
        endpoint: String,
    },
    /// Show the calls the daemon at HOST:PORT serves, refreshed: each method's calls and
    /// errors a second and its p50 and p99 latency (the daemon must serve its metrics:
    /// RMI_METRICS or --metrics).
    Top {
        /// The daemon's HOST:PORT.
        endpoint: String,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Stop after this many refreshes (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
}

/// How a command failed: a message, or a method's own error as JSON.
enum Failure {
    Message(String),
    MethodError(Value),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Message(error.to_string())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Message(message)) => {
            eprintln!("rmi: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::MethodError(error)) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let timeout = std::time::Duration::try_from_secs_f64(cli.timeout)
        .map_err(|_| format!("--timeout {}: give a number of seconds", cli.timeout))?;
    let config = cli.key_file.client_config()?;
    match cli.command {
        Command::Call { uri, method, args } => {
            let args: Value = serde_json::from_str(&args)
                .map_err(|e| format!("the arguments '{args}' are not JSON: {e}"))?;
            let object = config
                .connect_dynamic(uri.as_str())
                .await?
                .with_timeout(timeout);
            match object.call_json_streaming(&method, args).await? {
                JsonReply::Value(result) => {
                    let fallible = object
                        .descriptor()
                        .method(&method)
                        .is_some_and(|(_, m)| returns_result(&m.result));
                    print_result(result, fallible)
                }
                JsonReply::Stream { items, .. } => print_stream(items).await,
            }
        }
        Command::Methods { uri } => {
            let object = config.connect_dynamic(uri.as_str()).await?;
            println!("{} is a {}", object.uri(), object.descriptor().name);
            print_methods(&object.descriptor());
            Ok(())
        }
        Command::Top {
            endpoint,
            interval,
            count,
        } => {
            let interval = std::time::Duration::try_from_secs_f64(interval)
                .ok()
                .filter(|i| !i.is_zero())
                .ok_or_else(|| format!("--interval {interval}: give a number of seconds"))?;
            let daemon = daemon_at(&config, &endpoint, timeout).await?;
            top::run(&daemon, interval, count).await
        }
        Command::Objects { endpoint } => {
            let daemon = daemon_at(&config, &endpoint, timeout).await?;
            for object in daemon.registered().await? {
                let uri = rmi::ObjectUri::new(&object.id, daemon.uri().endpoint().clone())?
                    .with_tls(config.speaks_tls());
                println!("{uri} is a {}", object.descriptor.name);
                print_methods(&object.descriptor);
            }
            Ok(())
        }
    }
}

/// The own object of the daemon at `endpoint` (HOST:PORT), with replies awaited `timeout`.
async fn daemon_at(
    config: &rmi::ClientConfig,
    endpoint: &str,
    timeout: std::time::Duration,
) -> Result<DaemonObjectProxy, Failure> {
    let endpoint: rmi::Endpoint = endpoint.parse()?;
    // An address has no scheme: the config says whether to speak TLS to it.
    let daemon =
        rmi::ObjectUri::new(rmi::DAEMON_OBJECT_ID, endpoint)?.with_tls(config.speaks_tls());
    Ok(config
        .connect::<DaemonObjectProxy>(&daemon)
        .await?
        .with_timeout(timeout))
}

/// Whether a result type, as the trait writes it, is a `Result`: its JSON is then
/// `{"Ok": …}` or `{"Err": …}`.
fn returns_result(result: &str) -> bool {
    let path = result.split('<').next().unwrap_or_default();
    path == "Result" || path.ends_with("::Result")
}

fn print_result(result: Value, fallible: bool) -> Result<(), Failure> {
    let value = match result {
        Value::Object(mut map) if fallible && map.len() == 1 => {
            if let Some(error) = map.remove("Err") {
                return Err(Failure::MethodError(error));
            }
            map.remove("Ok").unwrap_or(Value::Object(map))
        }
        other => other,
    };
    println!("{value}");
    Ok(())
}

/// Prints each item of a stream on its own line as it comes.
async fn print_stream(mut items: rmi::Stream<Value>) -> Result<(), Failure> {
    use std::io::Write;
    while let Some(item) = items.next().await {
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) ends the reading; dropping the stream stops the producer.
        if writeln!(out, "{}", item?)
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

fn print_methods(descriptor: &TraitDescriptor) {
    for method in descriptor.methods.iter() {
        println!("  {}", method.signature());
    }
}
