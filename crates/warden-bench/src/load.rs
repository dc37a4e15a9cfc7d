//! The two load shapes.
//!
//! *Closed loop*: every virtual client sends its next call as soon as the last one is answered,
//! for a fixed time. It measures throughput at saturation; its latencies are those of a full
//! queue and say little on their own.
//!
//! *Open loop*: calls are due at a fixed rate whatever the server does (wrk2's scheme: client
//! `i` of `n` sends every `n / rate` seconds, offset by `i / rate`). A call that could not be
//! sent when due because its client was still waiting on the server is timed from when it was
//! due, not from when it went out, so a stall shows up in every call it delays (no coordinated
//! omission). A call whose client was idle is timed from its actual send: the runtime's timer
//! wakes up to a millisecond late, and that lateness is the bench's, not the server's.

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::Caller;

/// Longest a single call may take before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What one load phase saw.
pub struct Outcome {
    /// Latency of successful calls, in nanoseconds.
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// The first error seen, to show why.
    pub first_error: Option<String>,
}

impl Default for Outcome {
    fn default() -> Outcome {
        Outcome::new()
    }
}

impl Outcome {
    fn new() -> Outcome {
        Outcome {
            // 1 µs .. 60 s at 3 significant digits; the bounds are valid constants.
            latency: Histogram::new_with_bounds(1_000, 60_000_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid histogram bounds")),
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            first_error: None,
        }
    }

    /// Adds another outcome: its calls, and its time (phases run one after another).
    pub fn merge(&mut self, other: Outcome) {
        // Histograms of the same bounds always merge.
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency percentile in microseconds.
    pub fn micros(&self, percentile: f64) -> f64 {
        self.latency.value_at_percentile(percentile) as f64 / 1000.0
    }

    async fn timed_call(&mut self, caller: &mut Caller, from: Instant) {
        match tokio::time::timeout(CALL_TIMEOUT, caller.call()).await {
            Ok(Ok(())) => {
                self.ok += 1;
                self.latency
                    .saturating_record(from.elapsed().as_nanos().min(u64::MAX as u128) as u64);
            }
            Ok(Err(e)) => self.error(format!("{e:#}")),
            Err(_) => self.error(format!("no answer within {CALL_TIMEOUT:?}")),
        }
    }

    fn error(&mut self, why: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why);
        }
    }
}

/// Every client calls back to back for `duration`. Returns the clients for the next phase.
pub async fn closed(callers: Vec<Caller>, duration: Duration) -> (Vec<Caller>, Outcome) {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for mut caller in callers {
        tasks.spawn(async move {
            let mut outcome = Outcome::new();
            while Instant::now() < end {
                outcome.timed_call(&mut caller, Instant::now()).await;
            }
            (caller, outcome)
        });
    }
    gather(tasks, start).await
}

/// Calls at `rate` per second in total for `duration`, spread evenly over the clients.
pub async fn open(callers: Vec<Caller>, rate: f64, duration: Duration) -> (Vec<Caller>, Outcome) {
    let n = callers.len().max(1) as f64;
    let start = Instant::now() + Duration::from_millis(5);
    let end = start + duration;
    let interval = Duration::from_secs_f64(n / rate);
    let mut tasks = JoinSet::new();
    for (i, mut caller) in callers.into_iter().enumerate() {
        let first = start + Duration::from_secs_f64(i as f64 / rate);
        tasks.spawn(async move {
            let mut outcome = Outcome::new();
            let mut due = first;
            while due < end {
                let from = if Instant::now() <= due {
                    tokio::time::sleep_until(due).await;
                    Instant::now()
                } else {
                    due
                };
                outcome.timed_call(&mut caller, from).await;
                due += interval;
            }
            (caller, outcome)
        });
    }
    let (callers, mut outcome) = gather(tasks, start).await;
    // The achieved rate is over the window in which calls were due.
    outcome.elapsed = duration;
    (callers, outcome)
}

async fn gather(mut tasks: JoinSet<(Caller, Outcome)>, start: Instant) -> (Vec<Caller>, Outcome) {
    let mut callers = Vec::with_capacity(tasks.len());
    let mut total = Outcome::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((caller, outcome)) => {
                callers.push(caller);
                // The clients ran side by side: their time is the phase's, set below.
                total.merge(outcome);
            }
            Err(e) => total.error(format!("a virtual client panicked: {e}")),
        }
    }
    total.elapsed = start.elapsed();
    (callers, total)
}
