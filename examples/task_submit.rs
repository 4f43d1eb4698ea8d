//! Submits a task to the workers and prints its id, then its result: what `add.delay(5, 5)`
//! and `.get()` do in Celery.
//!
//! `cargo run --example task_submit -- add 5 5` prints the task's id, then `10`.

use std::time::Duration;

use clap::Parser;
use rmi_examples::cli;
use rmi_examples::tasks::TaskClient;

/// Runs TASK with ARGS on a worker.
#[derive(Parser)]
struct Args {
    /// The task: add, mul, sleep or fail.
    task: String,
    /// Its arguments, each as JSON (`5`, `"text"`), or as text when it is not JSON.
    args: Vec<String>,
    /// How long to wait for the result, in seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

#[tokio::main]
async fn main() {
    cli::run_main(run(Args::parse())).await;
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .map_err(|_| format!("--timeout {}: give a number of seconds", args.timeout))?;
    let values: Vec<serde_json::Value> = args
        .args
        .iter()
        .map(|arg| serde_json::from_str(arg).unwrap_or_else(|_| arg.clone().into()))
        .collect();
    let client = TaskClient::connect().await?;
    let pending = client.delay(&args.task, values);
    println!("{}", pending.id());
    let id = pending.id().to_owned();
    let result = tokio::time::timeout(timeout, pending.get())
        .await
        .map_err(|_| format!("task {id} gave no result within {timeout:?}"))??;
    println!("{result}");
    Ok(())
}
