//! Nothing answered is lost from the audit trail when Warden dies: `warden serve` under load from
//! several clients is killed with SIGKILL at random moments, 20 times; after each restart
//! `warden audit verify` passes, and every call whose answer reached a client has its request
//! and response records in the log (the clients keep the list).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const ROUNDS: usize = 20;
const CLIENTS: usize = 6;

/// `warden serve` started on port 0; its address read from its log.
async fn serve(config: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = within(Duration::from_secs(30), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("warden exited before listening");
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "warden listening"
            {
                return v["addr"].as_str().unwrap().to_string();
            }
        }
    })
    .await;
    // Its log keeps flowing; nobody needs to read it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}/mcp"))
}

fn warden(args: &[&str], dir: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Calls `fx__echo` with a new text until the gateway stops answering; every text whose answer
/// came back is added to `answered`.
async fn client(
    url: String,
    name: String,
    answered: Arc<Mutex<Vec<String>>>,
    count: Arc<watch::Sender<usize>>,
) {
    let http = reqwest::Client::new();
    for i in 0.. {
        let text = format!("{name}-{i}");
        let body = modern_body(
            i,
            "tools/call",
            json!({ "name": "fx__echo", "arguments": { "text": text } }),
        );
        let Ok(r) = modern_request(&http, &url, &body).send().await else {
            return;
        };
        let Ok(bytes) = r.bytes().await else { return };
        let Ok(reply) = serde_json::from_slice::<Value>(&bytes) else {
            return;
        };
        let echoed = reply["result"]["content"][0]["text"].as_str().unwrap_or("");
        assert!(echoed.contains(&text), "{reply}");
        answered.lock().unwrap().push(text);
        count.send_modify(|n| *n += 1);
    }
}

/// Stops the gateway the way a service manager does, so its last checkpoint is signed.
async fn terminate(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = within(Duration::from_secs(30), child.wait()).await.unwrap();
    assert!(exit.success(), "warden stopped with {exit}");
}

/// The texts of `fx__echo` calls that have both a request and a response record.
fn recorded_calls(dir: &Path) -> HashSet<String> {
    let (ok, out) = warden(&["audit", "export", "--dir", "audit"], dir);
    assert!(ok, "{out}");
    let mut requests: HashMap<String, String> = HashMap::new();
    let mut responses = HashSet::new();
    for line in out.lines() {
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let call = r["call"].as_str().unwrap_or_default().to_string();
        match r["kind"].as_str() {
            Some("request") => {
                if let Some(t) = r["detail"]["params"]["arguments"]["text"].as_str() {
                    requests.insert(call, t.to_string());
                }
            }
            Some("response") if r["outcome"] == "ok" => {
                responses.insert(call);
            }
            _ => {}
        }
    }
    requests
        .into_iter()
        .filter(|(call, _)| responses.contains(call))
        .map(|(_, text)| text)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_random_moments_the_log_verifies_and_keeps_every_answered_call() {
    let upstream = fixture_http(None).await;
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[identity]\ntest_user = \"tester\"\n\
             [policy]\ndir = {:?}\n[storage]\npath = \".\"\n\
             [audit]\ncheckpoint_interval = \"50ms\"\n[logging]\nformat = \"json\"\nlevel = \"info\"\n{}",
            allow_all_policies(),
            http_upstream("fx", &upstream, "")
        ),
    )
    .unwrap();
    let seed: u64 = rand::random();
    eprintln!("kill moments from seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let answered = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(watch::channel(0).0);
    for round in 0..ROUNDS {
        let (mut child, url) = serve(&config).await;
        let mut answers = count.subscribe();
        let before = *answers.borrow();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(client(
                    url.clone(),
                    format!("r{round}c{c}"),
                    answered.clone(),
                    count.clone(),
                ))
            })
            .collect();
        // The load is under way (more answers than clients) before the random moment, so
        // every round proves something however slow the machine; the moment of the kill is
        // the one random thing here, and nothing waits on it.
        within(
            Duration::from_secs(60),
            answers.wait_for(|n| *n > before + CLIENTS),
        )
        .await
        .unwrap();
        let after = rand::Rng::random_range(&mut rng, 20..400);
        tokio::time::sleep(Duration::from_millis(after)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        for c in clients {
            c.await.unwrap();
        }
        // The restart recovers the log; stopped, it verifies offline.
        let (child, _) = serve(&config).await;
        terminate(child).await;
        let (ok, out) = warden(
            &["audit", "verify", "audit", "--key", "audit-signing.vkey"],
            dir.path(),
        );
        assert!(
            ok,
            "round {round}: verify failed after a kill {after} ms into the load:\n{out}"
        );
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > ROUNDS * CLIENTS,
        "the clients made too few calls to prove anything: {}",
        answered.len()
    );
    let recorded = recorded_calls(dir.path());
    eprintln!(
        "{} calls answered over {ROUNDS} kills; {} of them recorded with request and response",
        answered.len(),
        answered.iter().filter(|t| recorded.contains(*t)).count()
    );
    let missing: Vec<&String> = answered.iter().filter(|t| !recorded.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls lack their records, e.g. {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
    let (_, out) = warden(
        &["audit", "verify", "audit", "--key", "audit-signing.vkey"],
        dir.path(),
    );
    assert!(out.contains("ok"), "{out}");
}
