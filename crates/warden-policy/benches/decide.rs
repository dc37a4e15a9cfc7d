//! Time per decision with 10 and with 5,000 policies (target: p99 ≤ 20 µs at 5,000), the cost of
//! building the request alone, the time per list item (`visible`, the arguments unknown), and
//! the same 5,000 through Cedar's own authorizer without the index, for comparison. The policies and requests are generated (`corpus.rs`).
//!
//! `cargo bench -p warden-policy --bench decide` (add `-- --quick` for a short run,
//! `--indexed-only` to skip the slow unindexed comparison, e.g. under a profiler).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use warden_policy::{Outcome, PolicyEngine};

#[path = "corpus.rs"]
mod corpus;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let decisions = if quick { 20_000 } else { 200_000 };
    let samples = corpus::samples(4_096, 7);
    // List items are tools: the same calls, none of them a list.
    let mut items = corpus::samples(4_096, 7);
    items.iter_mut().for_each(|s| s.list = false);

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/example");
    let mut small = warden_policy_sources(&example);
    small.push((
        "extra.cedar".into(),
        r#"permit (principal in Group::"eng", action == Action::"call_tool", resource in Server::"srv01");
permit (principal, action == Action::"list_tools", resource);
forbid (principal, action, resource) when { context has agent && context.agent == Agent::"quarantined" };
@consent("15m") permit (principal in Group::"ops", action == Action::"call_tool", resource in Server::"srv02");"#
            .into(),
    ));
    let small = PolicyEngine::from_sources(&small).expect("small set loads");
    report(
        &format!("decide, {} policies", small.len()),
        &samples,
        decisions,
        |r| small.decide(r),
    );
    report(
        &format!("visible, {} policies (one list item)", small.len()),
        &items,
        decisions,
        |r| small.visible(r),
    );

    let files = corpus::policies(5_000);
    let started = Instant::now();
    let large = PolicyEngine::from_sources(&files).expect("corpus loads");
    println!(
        "load + validate + index {} policies: {:.0} ms",
        large.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let outcomes = samples.iter().fold([0usize; 3], |mut n, s| {
        n[match large.decide(&s.request()).outcome {
            Outcome::Allow => 0,
            Outcome::Deny => 1,
            Outcome::Consent(_) => 2,
        }] += 1;
        n
    });
    let errors: usize = samples
        .iter()
        .map(|s| large.decide(&s.request()).errors.len())
        .sum();
    println!(
        "  errors: {errors}, e.g. {:?}",
        samples
            .iter()
            .map(|s| large.decide(&s.request()))
            .find(|d| !d.errors.is_empty())
            .map(|d| d.errors)
    );
    println!(
        "  sample outcomes: {} allow, {} deny, {} consent",
        outcomes[0], outcomes[1], outcomes[2]
    );
    report(
        &format!("decide, {} policies", large.len()),
        &samples,
        decisions,
        |r| large.decide(r),
    );
    report(
        &format!("visible, {} policies (one list item)", large.len()),
        &items,
        decisions,
        |r| large.visible(r),
    );
    let empty = PolicyEngine::from_sources(&[]).expect("empty set loads");
    report(
        "decide, 0 policies (building the request only)",
        &samples,
        decisions,
        |r| empty.decide(r),
    );
    if std::env::args().any(|a| a == "--indexed-only") {
        return;
    }
    report(
        &format!("decide, {} policies, unindexed", large.len()),
        &samples,
        (decisions / 100).max(500),
        |r| large.decide_unindexed(r),
    );
}

fn warden_policy_sources(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("example directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).expect("readable"),
            )
        })
        .collect();
    files.sort();
    files
}

fn report<T>(
    name: &str,
    samples: &[corpus::Sample],
    decisions: usize,
    decide: impl Fn(&warden_policy::Request<'_>) -> T,
) {
    let requests: Vec<_> = samples.iter().map(corpus::Sample::request).collect();
    for r in requests.iter().take(1_000) {
        black_box(decide(r));
    }
    let mut times = Vec::with_capacity(decisions);
    for i in 0..decisions {
        let r = &requests[i % requests.len()];
        let started = Instant::now();
        black_box(decide(black_box(r)));
        times.push(started.elapsed());
    }
    times.sort_unstable();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name}: mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs ({} runs)",
        us(mean),
        us(at(0.50)),
        us(at(0.99)),
        us(times[times.len() - 1]),
        times.len()
    );
}
