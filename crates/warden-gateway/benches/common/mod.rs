//! What the benches share: one line of figures per measured thing.

use std::time::Duration;

/// Prints `name`, the count, and the mean, p50, p99 and p99.9 in µs of `samples`.
pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let pct = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_nanos() as f64
            / 1000.0
    };
    let mean = samples.iter().sum::<Duration>().as_nanos() as f64 / samples.len() as f64 / 1000.0;
    println!(
        "{name:<44} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        samples.len(),
        mean,
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
}
