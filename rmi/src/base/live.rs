//! The live view's figures: a daemon's calls by object and method, read from the metrics it
//! serves (Prometheus' text format, which its own object answers to `metrics`), and the rates
//! between two readings: calls and errors a second, and the median and 99th percentile of how
//! long calls took. `rmi top` and the gateway's live panel show them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::meters::{CALLS, CALL_DURATION};

/// The totals of one method, as one reading of a daemon's metrics has them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Calls, whatever their outcome.
    pub calls: u64,
    /// Calls that did not end `ok`: the method's `Err`, and faults.
    pub errors: u64,
    /// How many calls took at most each bound, in seconds (cumulative, bounds ascending).
    pub durations: Vec<(f64, u64)>,
}

/// One reading of a daemon's calls: totals by (object, method), the object named by its
/// trait as the metrics name it.
///
/// ```
/// let text = r#"
/// rmi_calls_total{object="Greeter",method="welcome_message",outcome="ok"} 10
/// rmi_calls_total{object="Greeter",method="welcome_message",outcome="panicked"} 2
/// rmi_call_duration_seconds_bucket{object="Greeter",method="welcome_message",le="0.001"} 12
/// rmi_call_duration_seconds_bucket{object="Greeter",method="welcome_message",le="+Inf"} 12
/// "#;
/// let reading = rmi::live::Reading::parse(text);
/// let totals = &reading.methods[&("Greeter".to_owned(), "welcome_message".to_owned())];
/// assert_eq!((totals.calls, totals.errors), (12, 2));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// The totals of each method, by (object, method).
    pub methods: BTreeMap<(String, String), Totals>,
}

/// What a method did between two readings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rates {
    /// The object, by its trait.
    pub object: String,
    /// The method.
    pub method: String,
    /// Calls a second.
    pub calls_per_second: f64,
    /// Calls a second that did not end `ok`.
    pub errors_per_second: f64,
    /// The median of how long the calls took, in seconds (`None` without calls).
    pub p50: Option<f64>,
    /// The 99th percentile, in seconds (`None` without calls).
    pub p99: Option<f64>,
    /// Calls so far.
    pub calls: u64,
    /// Calls so far that did not end `ok`.
    pub errors: u64,
}

impl Reading {
    /// The calls in `text`, a daemon's metrics in Prometheus' text format; other lines are
    /// passed over.
    pub fn parse(text: &str) -> Reading {
        let mut reading = Reading::default();
        let bucket = format!("{CALL_DURATION}_bucket");
        for line in text.lines() {
            let Some((name, labels, value)) = sample(line) else {
                continue;
            };
            let label = |key: &str| {
                labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let (Some(object), Some(method)) = (label("object"), label("method")) else {
                continue;
            };
            let totals = || reading.methods.entry((object, method)).or_default();
            if name == CALLS {
                let totals = totals();
                let count = value as u64;
                totals.calls += count;
                if label("outcome").as_deref() != Some("ok") {
                    totals.errors += count;
                }
            } else if name == bucket {
                let bound = match label("le").as_deref() {
                    Some("+Inf") => f64::INFINITY,
                    Some(bound) => bound.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                let durations = &mut totals().durations;
                durations.push((bound, value as u64));
                durations.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
        reading
    }

    /// What each method did from `earlier` to this reading, `seconds` later: every method
    /// this reading has, sorted by object and method.
    pub fn rates_since(&self, earlier: &Reading, seconds: f64) -> Vec<Rates> {
        let seconds = seconds.max(f64::EPSILON);
        self.methods
            .iter()
            .map(|((object, method), now)| {
                let before = earlier
                    .methods
                    .get(&(object.clone(), method.clone()))
                    .cloned()
                    .unwrap_or_default();
                let durations = difference(&now.durations, &before.durations);
                Rates {
                    object: object.clone(),
                    method: method.clone(),
                    calls_per_second: now.calls.saturating_sub(before.calls) as f64 / seconds,
                    errors_per_second: now.errors.saturating_sub(before.errors) as f64 / seconds,
                    p50: quantile(0.5, &durations),
                    p99: quantile(0.99, &durations),
                    calls: now.calls,
                    errors: now.errors,
                }
            })
            .collect()
    }
}

/// A sample's labels, as (name, value) pairs.
type Labels = Vec<(String, String)>;

/// A sample line: its name, labels and value (`name{k="v",…} value`).
fn sample(line: &str) -> Option<(&str, Labels, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series, Vec::new(), value));
    };
    let mut pairs = Vec::new();
    let mut rest = labels.strip_suffix('}')?;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        pairs.push((key.trim_start_matches(',').to_owned(), value));
        rest = &after[end + 1..];
    }
    Some((name, pairs, value))
}

/// The cumulative counts of `now` less those of `before`, bound by bound.
fn difference(now: &[(f64, u64)], before: &[(f64, u64)]) -> Vec<(f64, u64)> {
    now.iter()
        .map(|&(bound, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0, |&(_, c)| c);
            (bound, count.saturating_sub(earlier))
        })
        .collect()
}

/// The `q` quantile of cumulative counts by bound, interpolated within its bucket as
/// Prometheus' `histogram_quantile` does; in the last bucket (`+Inf`), the largest finite
/// bound.
fn quantile(q: f64, cumulative: &[(f64, u64)]) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0);
    for &(bound, count) in cumulative {
        if count as f64 >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = (count - lower.1) as f64;
            let share = if within == 0.0 {
                1.0
            } else {
                (rank - lower.1 as f64) / within
            };
            return Some(lower.0 + (bound - lower.0) * share);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(ok: u64, failed: u64, fast: u64, slow: u64) -> Reading {
        let labels = r#"object="Calc",method="add""#;
        Reading::parse(&format!(
            "# TYPE rmi_calls_total counter\n\
             rmi_calls_total{{{labels},outcome=\"ok\"}} {ok}\n\
             rmi_calls_total{{{labels},outcome=\"err\"}} {failed}\n\
             rmi_call_duration_seconds_bucket{{{labels},le=\"0.001\"}} {fast}\n\
             rmi_call_duration_seconds_bucket{{{labels},le=\"0.01\"}} {}\n\
             rmi_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             rmi_call_duration_seconds_sum{{{labels}}} 1.5\n\
             rmi_connections_open 3\n",
            fast + slow,
            fast + slow
        ))
    }

    #[test]
    fn rates_are_the_differences_over_the_seconds_between() {
        let before = reading(100, 0, 100, 0);
        let after = reading(290, 10, 200, 100);
        let rates = after.rates_since(&before, 2.0);
        assert_eq!(rates.len(), 1);
        let add = &rates[0];
        assert_eq!((add.object.as_str(), add.method.as_str()), ("Calc", "add"));
        assert_eq!(add.calls_per_second, 100.0);
        assert_eq!(add.errors_per_second, 5.0);
        assert_eq!((add.calls, add.errors), (300, 10));
        // 100 fast (≤ 1 ms), 100 slow (≤ 10 ms): the median is at the fast bucket's top.
        assert_eq!(add.p50, Some(0.001));
        let p99 = add.p99.unwrap();
        assert!((p99 - 0.00982).abs() < 1e-9, "{p99}");
    }

    #[test]
    fn no_calls_between_readings_have_no_percentiles() {
        let same = reading(5, 0, 5, 0);
        let rates = same.rates_since(&same, 1.0);
        assert_eq!(rates[0].calls_per_second, 0.0);
        assert_eq!((rates[0].p50, rates[0].p99), (None, None));
    }

    #[test]
    fn escaped_label_values_and_other_lines_are_read_or_passed_over() {
        let text = "rmi_calls_total{object=\"A\\\"b\",method=\"m\",outcome=\"ok\"} 3\ngarbage\n";
        let reading = Reading::parse(text);
        let key = ("A\"b".to_owned(), "m".to_owned());
        assert_eq!(reading.methods[&key].calls, 3);
    }
}
