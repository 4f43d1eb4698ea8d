//! What every demo program does first: logs to stderr, filtered by `RUST_LOG`.

/// Logs to stderr at `warn` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Ends the program with the error's message and exit code 1.
pub fn exit_on_error<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// Waits for Ctrl-C, then shuts `daemon` down and removes `names` from the name server.
pub async fn shutdown_on_ctrl_c(daemon: rmi::Daemon, names: Vec<String>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    if let Ok(ns) = rmi::locate_ns().await {
        for name in names {
            let _ = ns.remove(name).await;
        }
    }
    daemon.shutdown().await;
}
