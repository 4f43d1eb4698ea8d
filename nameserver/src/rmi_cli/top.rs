//! `rmi top HOST:PORT`: a daemon's calls, refreshed, as the gateway's live panel shows them.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use rmi::live::{Rates, Reading};
use rmi::DaemonObjectProxy;

use super::Failure;

/// Reads the daemon's metrics every `interval` and prints its methods' rates, `count` times
/// (0: until interrupted). On a terminal each refresh replaces the last. A daemon that serves
/// no metrics is an error at once; a reading that fails later is shown in its frame.
pub(super) async fn run(
    daemon: &DaemonObjectProxy,
    interval: Duration,
    count: u64,
) -> Result<(), Failure> {
    let objects = daemon.registered().await?;
    let mut last = (Instant::now(), read(daemon).await?);
    let terminal = std::io::stdout().is_terminal();
    for shown in 1.. {
        tokio::time::sleep(interval).await;
        // A reading that fails (a timeout, the daemon restarting) is shown, and the next tried.
        let (rates, failed) = match read(daemon).await {
            Ok(reading) => {
                let now = (Instant::now(), reading);
                let seconds = now.0.duration_since(last.0).as_secs_f64();
                let rates = now.1.rates_since(&last.1, seconds);
                last = now;
                (rates, None)
            }
            Err(Failure::Message(why)) => (Vec::new(), Some(why)),
            Err(Failure::MethodError(why)) => (Vec::new(), Some(why.to_string())),
        };
        let mut frame = String::new();
        if terminal {
            // Home, then clear: the frame replaces the last.
            frame.push_str("\x1b[H\x1b[2J");
        }
        frame.push_str(&format!(
            "rmi top {}: every {:?} (Ctrl-C to stop)\n",
            daemon.uri().endpoint(),
            interval
        ));
        for object in &objects {
            frame.push_str(&format!("{} is a {}\n", object.id, object.descriptor.name));
        }
        match failed {
            Some(why) => frame.push_str(&format!("cannot read its calls now: {why}\n")),
            None => frame.push_str(&table(&rates)),
        }
        let mut out = std::io::stdout().lock();
        out.write_all(frame.as_bytes())?;
        out.flush()?;
        if shown == count {
            break;
        }
    }
    Ok(())
}

async fn read(daemon: &DaemonObjectProxy) -> Result<Reading, Failure> {
    match daemon.metrics().await? {
        Some(text) => Ok(Reading::parse(&text)),
        None => Err(Failure::Message(format!(
            "the daemon at {} does not serve its metrics: start it with RMI_METRICS=IP:PORT (or --metrics)",
            daemon.uri().endpoint()
        ))),
    }
}

/// The rates as a table, a row per method.
fn table(rates: &[Rates]) -> String {
    let mut table = format!(
        "{:<16} {:<24} {:>9} {:>10} {:>10} {:>9} {:>10}\n",
        "object", "method", "calls/s", "p50", "p99", "errors/s", "calls"
    );
    for r in rates {
        table.push_str(&format!(
            "{:<16} {:<24} {:>9.1} {:>10} {:>10} {:>9.1} {:>10}\n",
            r.object,
            r.method,
            r.calls_per_second,
            duration(r.p50),
            duration(r.p99),
            r.errors_per_second,
            r.calls
        ));
    }
    if rates.is_empty() {
        table.push_str("(no calls yet)\n");
    }
    table
}

/// A duration in seconds, in the unit that reads best.
fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) if s < 0.001 => format!("{:.0} µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1e3),
        Some(s) => format!("{s:.2} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_make_a_row_each_and_durations_read_in_their_unit() {
        let rates = Rates {
            object: "Greeter".into(),
            method: "welcome_message".into(),
            calls_per_second: 12.5,
            errors_per_second: 0.0,
            p50: Some(0.000_12),
            p99: Some(0.0025),
            calls: 40,
            errors: 0,
        };
        let table = table(&[rates]);
        let row = table.lines().nth(1).unwrap();
        assert!(row.starts_with("Greeter"), "{table}");
        assert!(
            row.contains("welcome_message") && row.contains("12.5"),
            "{row}"
        );
        assert!(row.contains("120 µs") && row.contains("2.5 ms"), "{row}");
        assert_eq!(duration(None), "-");
        assert_eq!(duration(Some(2.0)), "2.00 s");
    }
}
