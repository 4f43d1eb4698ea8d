//! A chat client: joins a room as NICK, sends each line it reads to the others, and prints
//! what they say as `[NAME] TEXT`. It hosts its own callback object, which the server calls;
//! at the end of input it leaves the room and exits.
//!
//! `cargo run --example chat_client -- --nick alice` (start `chat_server` first).

use clap::Parser;
use rmi_examples::chat::{ChatRoomProxy, Printer, NAME};
use rmi_examples::cli;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Chats in a room.
#[derive(Parser)]
struct Args {
    /// Your name in the room.
    #[arg(long)]
    nick: String,
    /// The room to join.
    #[arg(long, default_value = "lobby")]
    room: String,
    /// The chat server: a URI, or a name in the name server.
    #[arg(long, default_value_t = format!("{}{NAME}", rmi::NAME_SCHEME))]
    uri: String,
    /// The address the server calls this client back on; by default this host's address on
    /// its connection to the server, which the server can reach.
    #[arg(long, env = "RMI_CALLBACK_HOST")]
    callback_host: Option<String>,
    /// The port the server calls this client back on; by default a free one.
    #[arg(long, env = "RMI_CALLBACK_PORT")]
    callback_port: Option<u16>,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let chat = ChatRoomProxy::connect(args.uri.as_str()).await?;
    // Listens where the server can reach it: by default, on this host's end of the
    // connection to the server.
    let me = rmi::Daemon::builder()
        .bind_for_callbacks(&chat, args.callback_host.as_deref(), args.callback_port)
        .await?;
    let callback = me.register(Printer)?;
    me.spawn();
    let seat = chat
        .join(
            args.room.clone(),
            args.nick.clone(),
            rmi::Remote::new(callback),
        )
        .await??
        .connect()
        .await?;
    let members = chat.members(args.room.clone()).await?;
    println!(
        "Joined {} as {}; members: {}",
        args.room,
        args.nick,
        members.join(", ")
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if !line.is_empty() {
            seat.say(line).await?;
        }
    }
    seat.leave().await?;
    me.shutdown().await;
    Ok(())
}
