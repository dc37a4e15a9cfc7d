//! `warden check` as a user meets it: every problem of a config named with its line and a fix,
//! and `warden serve` refusing a config that `check` refuses, without starting.

mod common;

use common::*;
use serde_json::json;

#[test]
fn a_good_config_checks_out() {
    let (ok, out) =
        check("[identity]\ntest_user = \"me\"\n[upstreams.fx]\nurl = \"http://127.0.0.1:9/mcp\"\n");
    assert!(ok, "{out}");
    assert!(
        out.contains("ok (1 upstreams, 1 policies, MCP endpoint http://127.0.0.1:8080/mcp)"),
        "{out}"
    );
}

#[test]
fn every_problem_is_reported_with_its_line_and_a_fix() {
    let text = "[server]\nlisten = \"nowhere\"\nsession_idle_timeout = \"10 parsecs\"\n\n[identity]\ntest_user = \"me\"\n\n[upstreams.both]\ncommand = \"x\"\nurl = \"http://127.0.0.1:1/mcp\"\n\n[upstreams.\"bad name\"]\ncommand = \"x\"\n";
    let (ok, out) = check(text);
    assert!(!ok);
    assert!(
        out.contains("warden.toml:2:10: listen = \"nowhere\" is not an address"),
        "{out}"
    );
    assert!(out.contains("warden.toml:3:24:"), "{out}");
    assert!(out.contains("has both command and url"), "{out}");
    assert!(
        out.contains("warden.toml:12:"),
        "the bad upstream name is located: {out}"
    );
    assert!(
        out.matches("fix: ").count() >= 4,
        "each problem has a fix: {out}"
    );
    assert!(out.contains("4 problem(s) found"), "{out}");
}

#[test]
fn syntax_errors_and_unknown_keys_are_located() {
    let (ok, out) = check("[identity]\ntest_user = \"me\"\n[server]\nlisten = \n");
    assert!(!ok);
    assert!(out.contains("warden.toml:4:"), "{out}");
    let (ok, out) = check("[identity]\ntest_user = \"me\"\n[server]\nlissten = \"127.0.0.1:1\"\n");
    assert!(!ok);
    assert!(
        out.contains("warden.toml:4:1:") && out.contains("unknown field `lissten`"),
        "{out}"
    );
}

#[test]
fn the_test_identity_refuses_a_public_address() {
    let (ok, out) = check("[server]\nlisten = \"0.0.0.0:8080\"\n[identity]\ntest_user = \"me\"\n");
    assert!(!ok);
    assert!(out.contains("only runs on a loopback address"), "{out}");
    let (ok, out) = check("[server]\nlisten = \"127.0.0.1:8080\"\n");
    assert!(!ok);
    assert!(out.contains("no [identity] section"), "{out}");
}

#[test]
fn upstreams_come_from_an_mcp_servers_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("claude.json"),
        json!({ "mcpServers": {
            "files": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"] },
            "remote": { "type": "http", "url": "http://127.0.0.1:9000/mcp", "headers": { "X-Team": "a" } }
        } })
        .to_string(),
    )
    .unwrap();
    let (ok, out) = check(&format!(
        "mcp_servers_file = {:?}\n[identity]\ntest_user = \"me\"\n",
        dir.path().join("claude.json").display().to_string()
    ));
    assert!(ok, "{out}");
    assert!(out.contains("2 upstreams"), "{out}");
    std::fs::write(
        dir.path().join("broken.json"),
        "{\n  \"mcpServers\": {\n    \"x\": [\n",
    )
    .unwrap();
    let (ok, out) = check(&format!(
        "mcp_servers_file = {:?}\n[identity]\ntest_user = \"me\"\n",
        dir.path().join("broken.json").display().to_string()
    ));
    assert!(!ok);
    assert!(out.contains("broken.json:4:"), "{out}");
}

#[test]
fn serve_refuses_a_bad_config_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"0.0.0.0:8080\"\n[identity]\ntest_user = \"me\"\n",
    )
    .unwrap();
    let out = warden_cmd()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// The endpoint's path is matched as written: one that a router would read as a pattern, that
/// a URL would have to escape, or that takes one of Warden's own pages is refused by `check`
/// (and so by `serve`, which once panicked on `/healthz` and `/mcp/*rest`).
#[test]
fn the_endpoint_path_is_plain_and_its_own() {
    let identity = "[identity]\ntest_user = \"me\"\n";
    for (path, why) in [
        ("mcp", "is not a URL path"),
        ("/mcp/{x}", "holds '{', which the endpoint's path may not"),
        ("/mcp/*rest", "holds '*'"),
        ("/m cp", "holds ' '"),
        ("/mcp?x=1", "holds '?'"),
        ("/api//mcp", "has an empty segment"),
        ("/./mcp", "has a '.' or '..' segment"),
        ("/api/../mcp", "has a '.' or '..' segment"),
        ("/healthz", "is taken by Warden's own /healthz"),
        ("/metrics", "is taken by Warden's own /metrics"),
        ("/consent/abc", "is taken by Warden's own /consent"),
        ("/admin", "is taken by Warden's own /admin"),
        ("/.well-known/mcp", "is taken by Warden's own /.well-known"),
    ] {
        let (ok, out) = check(&format!("[server]\npath = {path:?}\n{identity}"));
        assert!(!ok, "{path}: {out}");
        assert!(
            out.contains("warden.toml:2:8: ") && out.contains(why),
            "{path}: {out}"
        );
        assert!(out.contains("fix: "), "{path}: {out}");
    }
    for path in [
        "/",
        "/mcp",
        "/mcp/",
        "/api/v1/mcp",
        "/healthz2",
        "/consent-mcp",
        "/a.b_c~d",
    ] {
        let (ok, out) = check(&format!("[server]\npath = {path:?}\n{identity}"));
        assert!(ok, "{path}: {out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        with_policies(&format!("[server]\npath = \"/healthz\"\n{identity}")),
    )
    .unwrap();
    let out = warden_cmd()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is taken by Warden's own /healthz") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn workers_must_be_a_sensible_number() {
    let identity = "[identity]\ntest_user = \"me\"\n";
    let (ok, out) = check(&format!("[server]\nworkers = 0\n{identity}"));
    assert!(!ok);
    assert!(
        out.contains("warden.toml:2:11: workers = 0 is not between 1 and 1024"),
        "{out}"
    );
    assert!(
        out.contains("fix: leave it out for one per CPU core"),
        "{out}"
    );
    let (ok, out) = check(&format!("[server]\nworkers = 100000\n{identity}"));
    assert!(
        !ok && out.contains("workers = 100000 is not between"),
        "{out}"
    );
    let (ok, out) = check(&format!("[server]\nworkers = -1\n{identity}"));
    assert!(!ok && out.contains("workers = -1 is not between"), "{out}");
    let (ok, out) = check(&format!("[server]\nworkers = \"two\"\n{identity}"));
    assert!(!ok && out.contains("warden.toml:2:"), "{out}");
    let (ok, out) = check(&format!("[server]\nworkers = 3\n{identity}"));
    assert!(ok, "{out}");
}

#[test]
fn per_user_accounts_are_checked_where_they_are_configured() {
    let oauth = "oauth = { issuer = \"https://auth.example.com\", client_id = \"w\", client_secret = \"${vault:s}\" }";
    // Without a consent page nobody could connect an account.
    let (ok, out) = check(&format!(
        "[identity]\ntest_user = \"me\"\n[upstreams.saas]\nurl = \"http://127.0.0.1:9/mcp\"\n{oauth}\n"
    ));
    assert!(!ok);
    assert!(out.contains("no consent page is configured"), "{out}");
    let consent = "[identity]\nissuer = \"https://idp.example.com\"\n[consent]\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let (ok, out) = check(&format!(
        "{consent}[upstreams.saas]\nurl = \"http://127.0.0.1:9/mcp\"\n{oauth}\n"
    ));
    assert!(ok, "{out}");
    // Not for stdio, not with a shared Authorization header or shared links, not half written.
    let bad = [
        (
            "command = \"x\"",
            oauth.to_string(),
            "oauth is for HTTP upstreams",
        ),
        (
            "url = \"http://127.0.0.1:9/mcp\"\nheaders = { Authorization = \"Bearer ${vault:k}\" }",
            oauth.to_string(),
            "headers.Authorization cannot go with oauth",
        ),
        (
            "url = \"http://127.0.0.1:9/mcp\"\nisolation = \"shared\"",
            oauth.to_string(),
            "cannot go with oauth",
        ),
        (
            "url = \"http://127.0.0.1:9/mcp\"",
            "oauth = { issuer = \"https://auth.example.com\", client_secret = \"x\" }".into(),
            "oauth.client_id is missing",
        ),
        (
            "url = \"http://127.0.0.1:9/mcp\"",
            "oauth = { issuer = \"not a url\", client_id = \"w\", client_secret = \"x\" }".into(),
            "is not a URL",
        ),
    ];
    for (transport, oauth, says) in bad {
        let (ok, out) = check(&format!(
            "{consent}[upstreams.saas]\n{transport}\n{oauth}\n"
        ));
        assert!(!ok, "{transport} {oauth}: {out}");
        assert!(out.contains(says), "{says}: {out}");
    }
}

#[test]
fn the_audit_commit_delay_is_a_short_duration() {
    let identity = "[identity]\ntest_user = \"me\"\n";
    for fine in ["75us", "75µs", "0us", "2ms"] {
        let (ok, out) = check(&format!("{identity}[audit]\ncommit_delay = \"{fine}\"\n"));
        assert!(ok, "{fine}: {out}");
    }
    let (ok, out) = check(&format!("{identity}[audit]\ncommit_delay = \"20ms\"\n"));
    assert!(!ok);
    assert!(
        out.contains("audit.commit_delay is longer than 10ms") && out.contains("fix: "),
        "{out}"
    );
    let (ok, out) = check(&format!("{identity}[audit]\ncommit_delay = \"soon\"\n"));
    assert!(
        !ok && out.contains("does not start with a whole number"),
        "{out}"
    );
}
