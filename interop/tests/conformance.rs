//! The official conformance suite passes the same scenarios through Warden as directly against
//! the official-SDK fixture, with the fixture as an HTTP upstream and as a stdio upstream.

use warden_interop::*;

enum Via {
    Http,
    Stdio,
}

async fn compare(requirements: &str, via: Via) {
    require_node_modules();
    let fixture = conformance_fixture_http().await.expect("fixture starts");
    let fixture_url = fixture.url.clone().expect("fixture url");
    let direct = run_conformance(&fixture_url, requirements)
        .await
        .expect("suite runs directly");
    let upstream = match via {
        Via::Http => format!("[upstreams.conformance]\nurl = {fixture_url:?}\nprefix = \"\"\n"),
        Via::Stdio => format!(
            "[upstreams.conformance]\ncommand = {:?}\nargs = [\"fixture/conformance-server.mjs\", \"--stdio\"]\ncwd = {:?}\nprefix = \"\"\n",
            node().display().to_string(),
            interop_dir().display().to_string()
        ),
    };
    let gateway = warden(&config_with(&upstream))
        .await
        .expect("warden starts");
    let through = run_conformance(&gateway.mcp_url(), requirements)
        .await
        .expect("suite runs through warden");
    gateway.stop().await.expect("warden stops");

    // The direct run is the baseline: it must really have passed the required scenarios.
    let minimum = if requirements == "2025-11-25" { 30 } else { 37 };
    assert!(
        direct.passed.len() >= minimum,
        "the fixture itself passed only {:?}",
        direct.passed
    );
    let lost: Vec<&String> = direct
        .passed
        .iter()
        .filter(|s| !through.passed.contains(s))
        .collect();
    assert!(
        lost.is_empty(),
        "scenarios passing directly but failing through Warden ({requirements}): {lost:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_era_through_an_http_upstream() {
    compare("2025-11-25", Via::Http).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn modern_era_through_an_http_upstream() {
    compare("2026-07-28", Via::Http).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_era_through_a_stdio_upstream() {
    compare("2025-11-25", Via::Stdio).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn modern_era_through_a_stdio_upstream() {
    compare("2026-07-28", Via::Stdio).await;
}
