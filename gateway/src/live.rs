//! The live panel's figures (`GET /live`): for each exposed name, its methods' calls and
//! errors a second and their median and 99th-percentile durations, read from the metrics of
//! the name's daemon (its own object's `metrics`) every [`INTERVAL`] while someone watches,
//! and kept for the last [`KEPT`] readings.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmi::live::{Rates, Reading};
use serde_json::{json, Value};

use crate::objects::Objects;

/// How often the daemons are read while the panel is watched.
pub(crate) const INTERVAL: Duration = Duration::from_secs(2);

/// How many readings are kept: five minutes.
const KEPT: usize = 150;

/// How long the daemons are read after the last `GET /live`.
const WATCHED_FOR: Duration = Duration::from_secs(60);

/// The readings of each daemon behind an exposed name.
#[derive(Default)]
pub(crate) struct Live {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When `/live` was last asked for: the sampler stops a minute later.
    asked: Option<Instant>,
    sampling: bool,
    /// Each exposed name's trait and daemon (its endpoint, or why it cannot be reached), as
    /// last found.
    names: Vec<(String, String, Result<String, String>)>,
    daemons: HashMap<String, Daemon>,
}

/// One daemon's readings.
#[derive(Default)]
struct Daemon {
    last: Option<(Instant, Reading)>,
    /// Rates between consecutive readings, oldest first.
    history: VecDeque<Vec<Rates>>,
    /// Why its metrics could not be read, if they could not.
    missing: Option<String>,
}

impl Live {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The panel's JSON, starting the sampler if it is not running.
    pub(crate) fn watch(self: &Arc<Self>, objects: &Arc<Objects>) -> Value {
        let start = {
            let mut state = self.state();
            state.asked = Some(Instant::now());
            !std::mem::replace(&mut state.sampling, true)
        };
        if start {
            // Readings from before a pause would make its first rates an average over it.
            for daemon in self.state().daemons.values_mut() {
                *daemon = Daemon::default();
            }
            tokio::spawn(Arc::clone(self).sample(Arc::clone(objects)));
        }
        self.figures()
    }

    /// Reads every exposed name's daemon each [`INTERVAL`] until nobody has watched for
    /// [`WATCHED_FOR`].
    async fn sample(self: Arc<Self>, objects: Arc<Objects>) {
        let mut ticks = tokio::time::interval(INTERVAL);
        // A slow round is followed by one a whole interval later, not by a burst: the history
        // stays one reading an interval.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            {
                let mut state = self.state();
                if state
                    .asked
                    .is_none_or(|asked| asked.elapsed() > WATCHED_FOR)
                {
                    state.sampling = false;
                    return;
                }
            }
            let names = objects.daemons().await;
            let mut endpoints: Vec<&String> = names
                .iter()
                .filter_map(|(_, _, endpoint)| endpoint.as_ref().ok())
                .collect();
            endpoints.sort();
            endpoints.dedup();
            let objects = &objects;
            let read = |endpoint: &String| {
                let endpoint = endpoint.clone();
                async move {
                    let reading = objects.metrics_of(&endpoint).await;
                    (endpoint, reading)
                }
            };
            let readings = futures::future::join_all(endpoints.into_iter().map(read)).await;
            let now = Instant::now();
            let mut state = self.state();
            for (endpoint, reading) in readings {
                state.daemons.entry(endpoint).or_default().add(now, reading);
            }
            // Only the daemons behind the names now: one restarted elsewhere is let go.
            state
                .daemons
                .retain(|kept, _| names.iter().any(|(_, _, e)| e.as_ref().ok() == Some(kept)));
            objects.keep_daemons(|endpoint| state.daemons.contains_key(endpoint));
            state.names = names;
        }
    }

    /// Each exposed name, its methods' latest rates and their history.
    fn figures(&self) -> Value {
        let state = self.state();
        let names: Vec<Value> = state
            .names
            .iter()
            .map(|(name, trait_name, endpoint)| {
                let mut described = json!({ "name": name, "trait": trait_name });
                let endpoint = match endpoint {
                    Ok(endpoint) => endpoint,
                    Err(why) => {
                        described["missing"] = json!(why);
                        return described;
                    }
                };
                match state.daemons.get(endpoint) {
                    Some(Daemon {
                        missing: Some(why), ..
                    }) => described["missing"] = json!(why),
                    Some(daemon) => described["methods"] = daemon.methods_of(trait_name),
                    None => described["methods"] = json!([]),
                }
                described
            })
            .collect();
        json!({ "interval_seconds": INTERVAL.as_secs(), "names": names })
    }
}

impl Daemon {
    fn add(&mut self, now: Instant, reading: Result<Reading, String>) {
        let reading = match reading {
            Ok(reading) => reading,
            Err(why) => {
                self.missing = Some(why);
                return;
            }
        };
        self.missing = None;
        if let Some((then, earlier)) = &self.last {
            let rates = reading.rates_since(earlier, now.duration_since(*then).as_secs_f64());
            if self.history.len() == KEPT {
                self.history.pop_front();
            }
            self.history.push_back(rates);
        }
        self.last = Some((now, reading));
    }

    /// The methods of `trait_name` this daemon has served: their latest rates, and the
    /// history of each figure (calls/s, errors/s, p50, p99), oldest first.
    fn methods_of(&self, trait_name: &str) -> Value {
        let Some(latest) = self.history.back() else {
            return json!([]);
        };
        let methods: Vec<Value> = latest
            .iter()
            .filter(|rates| rates.object == trait_name)
            .map(|rates| {
                let series = |figure: fn(&Rates) -> Option<f64>| -> Vec<Option<f64>> {
                    self.history
                        .iter()
                        .map(|point| {
                            let same = point
                                .iter()
                                .find(|r| r.method == rates.method && r.object == rates.object);
                            same.and_then(figure)
                        })
                        .collect()
                };
                let mut method = serde_json::to_value(rates).unwrap_or_default();
                method["history"] = json!({
                    "calls_per_second": series(|r| Some(r.calls_per_second)),
                    "errors_per_second": series(|r| Some(r.errors_per_second)),
                    "p50": series(|r| r.p50),
                    "p99": series(|r| r.p99),
                });
                method
            })
            .collect();
        Value::Array(methods)
    }
}

/// The hint for a daemon whose metrics are off.
pub(crate) const METRICS_OFF: &str =
    "its daemon does not serve metrics: start it with RMI_METRICS=IP:PORT (or --metrics)";

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(calls: u64) -> Reading {
        Reading::parse(&format!(
            "rmi_calls_total{{object=\"Greeter\",method=\"hi\",outcome=\"ok\"}} {calls}\n\
             rmi_call_duration_seconds_bucket{{object=\"Greeter\",method=\"hi\",le=\"0.001\"}} {calls}\n\
             rmi_call_duration_seconds_bucket{{object=\"Greeter\",method=\"hi\",le=\"+Inf\"}} {calls}\n"
        ))
    }

    #[test]
    fn a_daemon_keeps_the_rates_between_its_readings_and_no_more_than_it_may() {
        let mut daemon = Daemon::default();
        let start = Instant::now();
        for n in 0..(KEPT as u64 + 5) {
            daemon.add(start + INTERVAL * n as u32, Ok(reading(n * 4)));
        }
        assert_eq!(daemon.history.len(), KEPT);
        let methods = daemon.methods_of("Greeter");
        assert_eq!(methods[0]["method"], "hi");
        assert_eq!(methods[0]["calls_per_second"], 2.0);
        assert_eq!(
            methods[0]["history"]["calls_per_second"]
                .as_array()
                .unwrap()
                .len(),
            KEPT
        );
        assert_eq!(daemon.methods_of("Other"), json!([]));
        daemon.add(Instant::now(), Err(METRICS_OFF.into()));
        assert_eq!(daemon.missing.as_deref(), Some(METRICS_OFF));
    }
}
