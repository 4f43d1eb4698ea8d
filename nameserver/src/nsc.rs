//! `rmi-nsc`: the name server from the command line.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use rmi::{NameServerProxy, ObjectUri, RegisterOptions, Registration, Tags};
use rmi_nameserver::cli::KeyFile;
use serde_json::json;

/// Lists, looks up, registers and removes names in an rmi name server.
#[derive(Parser)]
#[command(name = "rmi-nsc", version)]
#[command(mut_arg("key_file", |arg| arg.help("A file holding the name server's key")))]
struct Cli {
    /// The name server's host, or several sharing their names, `host[:port],host[:port],…`
    /// (the first that answers is used); default: found through RMI_NS_HOST/RMI_NS_PORT,
    /// 127.0.0.1:9090, or a discovery broadcast.
    #[arg(long, env = "RMI_NS_HOST", global = true)]
    ns_host: Option<String>,
    /// The name server's port.
    #[arg(long, env = "RMI_NS_PORT", global = true)]
    ns_port: Option<u16>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    key_file: KeyFile,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the registrations whose name starts with PREFIX (all of them without one).
    List {
        /// The start of the names to list.
        prefix: Option<String>,
    },
    /// List the registrations whose name matches REGEX (from its start).
    Listmatching {
        /// A regular expression.
        regex: String,
    },
    /// Show the registration of NAME.
    Lookup {
        /// The name to look up.
        name: String,
    },
    /// Register NAME for URI.
    Register(Register),
    /// Remove NAME.
    Remove {
        /// The name to remove.
        name: String,
    },
    /// Remove every name that matches REGEX (from its start).
    Removematching {
        /// A regular expression.
        regex: String,
    },
    /// List the registrations that carry all (--all) or any (--any) of TAGS.
    Yplookup(Yplookup),
    /// Replace the metadata tags of NAME (an empty TAGS clears them).
    Setmeta {
        /// The name whose tags to set.
        name: String,
        /// Comma-separated tags.
        tags: String,
    },
    /// Check that the name server answers.
    Ping,
}

#[derive(ClapArgs)]
struct Register {
    /// The name to register.
    name: String,
    /// The object's URI, rmi:OBJID@HOST:PORT.
    uri: String,
    /// Comma-separated metadata tags.
    #[arg(long, default_value = "")]
    meta: String,
    /// Refuse to replace a name registered to another URI.
    #[arg(long)]
    safe: bool,
    /// A lease, in seconds: the name disappears unless renewed.
    #[arg(long)]
    ttl: Option<f64>,
}

#[derive(ClapArgs)]
#[group(required = true, multiple = false)]
struct Yplookup {
    /// Registrations carrying every one of the tags.
    #[arg(long, value_name = "TAGS")]
    all: Option<String>,
    /// Registrations carrying at least one of the tags.
    #[arg(long, value_name = "TAGS")]
    any: Option<String>,
}

type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmi-nsc: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    let ns = name_server(&cli).await?;
    let json = cli.json;
    match cli.command {
        Command::List { prefix } => print_registrations(ns.list(prefix).await??, json),
        Command::Listmatching { regex } => {
            print_registrations(ns.list_matching(regex).await??, json)
        }
        Command::Lookup { name } => {
            let registration = ns.registration(name.clone()).await??;
            print_registrations(BTreeMap::from([(name, registration)]), json)
        }
        Command::Register(register) => run_register(&ns, register, json).await?,
        Command::Remove { name } => {
            if !ns.remove(name.clone()).await?? {
                return Err(rmi::NsError::NotFound(name).into());
            }
            say(json, json!({ "removed": name }), format!("removed {name}"));
        }
        Command::Removematching { regex } => {
            let removed = ns.remove_matching(regex).await??;
            say(
                json,
                json!({ "removed": removed }),
                format!("removed {removed} names"),
            );
        }
        Command::Yplookup(Yplookup { all, any }) => {
            let found = match (all, any) {
                (Some(tags), _) => ns.lookup_all(tags_of(&tags)).await??,
                (_, Some(tags)) => ns.lookup_any(tags_of(&tags)).await??,
                (None, None) => unreachable!("clap requires --all or --any"),
            };
            print_registrations(found, json);
        }
        Command::Setmeta { name, tags } => {
            let tags = tags_of(&tags);
            ns.set_meta(name.clone(), tags.clone()).await??;
            let text = format!("{name} now has the tags [{}]", join(&tags));
            say(json, json!({ "name": name, "meta": tags }), text);
        }
        Command::Ping => {
            ns.ping().await?;
            let uri = ns.uri().to_string();
            say(
                json,
                json!({ "ping": "ok", "uri": uri }),
                format!("name server {uri} is alive"),
            );
        }
    }
    Ok(())
}

async fn name_server(cli: &Cli) -> Result<NameServerProxy, rmi::Error> {
    let config = cli.key_file.client_config()?;
    if cli.ns_host.is_none() && cli.ns_port.is_none() {
        return config.locate_ns().await;
    }
    let host = cli.ns_host.as_deref().unwrap_or(rmi::DEFAULT_NS_HOST);
    let endpoints = rmi::parse_ns_hosts(host, cli.ns_port.unwrap_or(rmi::DEFAULT_NS_PORT))?;
    config.locate_ns_among(&endpoints).await
}

async fn run_register(ns: &NameServerProxy, register: Register, json: bool) -> CliResult {
    let uri: ObjectUri = register.uri.parse()?;
    let ns_host = ns.uri().endpoint().host().to_owned();
    if rmi::is_loopback_host(uri.endpoint().host()) && !rmi::is_loopback_host(&ns_host) {
        eprintln!(
            "rmi-nsc: warning: {uri} names a loopback address, but the name server is at {ns_host}: clients on other machines cannot reach it; register the server's own address (its RMI_HOST, or what it advertises)"
        );
    }
    let mut options = RegisterOptions::default().meta(tags_of(&register.meta));
    options.safe = register.safe;
    if let Some(seconds) = register.ttl {
        let ttl = Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("--ttl {seconds}: give a number of seconds"))?;
        options.ttl = Some(ttl);
    }
    ns.register_with(register.name.clone(), uri.clone(), options)
        .await??;
    let text = format!("registered {} -> {uri}", register.name);
    say(
        json,
        json!({ "registered": register.name, "uri": uri }),
        text,
    );
    Ok(())
}

/// Comma-separated tags; empty items are dropped, so "" is no tags.
fn tags_of(text: &str) -> Tags {
    text.split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect()
}

fn join(tags: &Tags) -> String {
    tags.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn say(json: bool, value: serde_json::Value, text: String) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn print_registrations(registrations: BTreeMap<String, Registration>, json: bool) {
    if json {
        let object: serde_json::Map<String, serde_json::Value> = registrations
            .into_iter()
            .map(|(name, r)| {
                let ttl = r.ttl_left.map(|t| t.as_secs_f64());
                (
                    name,
                    json!({ "uri": r.uri, "meta": r.meta, "ttl_left_secs": ttl }),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(object));
        return;
    }
    if registrations.is_empty() {
        println!("(no registrations)");
        return;
    }
    let rows: Vec<[String; 4]> = registrations
        .into_iter()
        .map(|(name, r)| {
            let ttl = r
                .ttl_left
                .map_or("-".to_owned(), |t| format!("{:.1}s", t.as_secs_f64()));
            let meta = if r.meta.is_empty() {
                "-".to_owned()
            } else {
                join(&r.meta)
            };
            [name, r.uri.to_string(), meta, ttl]
        })
        .collect();
    print_table(["NAME", "URI", "META", "TTL"].map(String::from), &rows);
}

fn print_table(header: [String; 4], rows: &[[String; 4]]) {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
