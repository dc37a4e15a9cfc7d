//! The processes under test and what Linux says about them: CPU time from `/proc/PID/stat`,
//! memory from `/proc/PID/status`. Every child is killed when its handle is dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::disk;

/// Clock ticks per second of `utime`/`stime`: `USER_HZ`, fixed at 100 in Linux's user ABI.
const TICKS_PER_SEC: u64 = 100;

/// A child process under test.
pub struct Service {
    pub pid: u32,
    pub(crate) child: Child,
    /// Holds the process's config and log files while it runs.
    pub(crate) dir: Option<tempfile::TempDir>,
}

impl Service {
    /// Fails if the process has already exited, with what it wrote to stderr when known.
    pub fn check_alive(&mut self, what: &str) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{what} exited ({status}): {}", self.log());
        }
        Ok(())
    }

    /// Stops the process with SIGTERM, as a service manager does, and waits for it to exit:
    /// an error if it does not within `limit` (then it is killed) or exits with a failure.
    pub async fn stop(mut self, limit: Duration) -> anyhow::Result<()> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid)?)
            .context("a process id of 0")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .with_context(|| format!("cannot send SIGTERM to process {}", self.pid))?;
        let Ok(status) = tokio::time::timeout(limit, self.child.wait()).await else {
            bail!(
                "process {} did not stop within {} s of SIGTERM (killed): {}",
                self.pid,
                limit.as_secs(),
                self.log()
            );
        };
        let status = status?;
        if !status.success() {
            bail!("exited with {status} on SIGTERM: {}", self.log());
        }
        Ok(())
    }

    /// The temporary directory that holds the process's files, if it has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// What the process wrote to `stderr.log` in its directory so far (Warden's, nginx's; the
    /// upstreams' stderr goes to ours).
    pub fn log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.path().join("stderr.log")).ok())
            .unwrap_or_default()
    }
}

/// Starts an HTTP MCP server that takes `--http 127.0.0.1:0` and announces
/// `LISTENING http://ADDR/mcp` (`warden-fixture`, `rmcp-echo`), with `extra` arguments.
pub async fn http_server(program: &Path, extra: &[&str]) -> anyhow::Result<(Service, SocketAddr)> {
    let mut child = Command::new(program)
        .args(["--http", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let pid = child.id().context("the upstream exited at once")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the upstream did not announce its address within 10 s")??;
    let addr = line
        .trim()
        .strip_prefix("LISTENING http://")
        .and_then(|rest| rest.strip_suffix("/mcp"))
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("unexpected banner {line:?} from {}", program.display()))?;
    let service = Service {
        pid,
        child,
        dir: None,
    };
    Ok((service, addr))
}

/// Where Warden's one upstream `fx` lives.
pub enum Upstream {
    Http(SocketAddr),
    Stdio(PathBuf),
}

/// What the benchmark's Warden allows: listing, and calling the echo tool.
const BENCH_POLICIES: &str = r#"@id("bench-lists")
permit (principal, action in [Action::"list_tools", Action::"list_prompts", Action::"list_resources"], resource);
@id("bench-echo")
permit (principal, action == Action::"call_tool", resource == Tool::"fx.echo");
"#;

/// Whether the bench's Warden keeps its audit trail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Audit {
    /// `enabled = false`: the core path of a call.
    Off,
    /// Warden's default trail (every request and response record made durable with
    /// `fdatasync` before it goes on), kept in [`AUDIT_DIR`] of the process's directory.
    On,
}

/// The `[dlp]` of a Warden without DLP.
pub const DLP_OFF: &str = "enabled = false";

/// The audit log's directory inside a Warden's temporary directory.
pub const AUDIT_DIR: &str = "audit";

/// Starts `warden serve` on a free loopback port in front of `upstream`, with or without its
/// audit trail, and waits until it accepts connections. `dlp` is the body of its `[dlp]` table:
/// the core path of a call is measured with [`DLP_OFF`], as without audit; the DLP scenario
/// measures it on.
pub async fn warden(
    warden: &Path,
    upstream: &Upstream,
    audit: Audit,
    dlp: &str,
) -> anyhow::Result<(Service, SocketAddr)> {
    let (dir, file, addr) = warden_config(upstream, audit, dlp)?;
    start_warden(warden, dir, &file, addr).await
}

/// `[server] workers` of every Warden the bench starts (`--warden-workers`); unset, Warden's own
/// default (one per core).
static WORKERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Sets `[server] workers` for every Warden (and the relay) started from now on; once.
pub fn set_warden_workers(n: usize) {
    let _ = WORKERS.set(n);
}

/// The `workers = N` line of a `[server]` table, or nothing.
pub fn workers_line() -> String {
    WORKERS
        .get()
        .map(|n| format!("workers = {n}\n"))
        .unwrap_or_default()
}

/// The directory, config file and free loopback address of a Warden as [`warden`] starts it.
pub fn warden_config(
    upstream: &Upstream,
    audit: Audit,
    dlp: &str,
) -> anyhow::Result<(tempfile::TempDir, PathBuf, SocketAddr)> {
    let addr = free_port()?;
    let upstream = match upstream {
        Upstream::Http(a) => format!("url = \"http://{a}/mcp\""),
        Upstream::Stdio(path) => format!(
            "command = {}\nargs = [\"--stdio\"]",
            toml_string(&path.display().to_string())
        ),
    };
    let trail = match audit {
        Audit::Off => "enabled = false".to_string(),
        Audit::On => format!("enabled = true\ndir = \"{AUDIT_DIR}\""),
    };
    let workers = workers_line();
    let config = format!(
        "[server]\nlisten = \"{addr}\"\n{workers}\n[identity]\ntest_user = \"bench\"\n\n\
         [policy]\ndir = \"policies\"\nreload_every = \"0s\"\n\n\
         [logging]\nlevel = \"warn\"\n\n[audit]\n{trail}\n\n[dlp]\n{dlp}\n\n\
         [upstreams.fx]\n{upstream}\n"
    );
    let dir = tempfile::tempdir()?;
    if audit == Audit::On {
        disk::check_real(dir.path())?;
    }
    // The policy stage runs in the measured path: the calls are decided by real policies.
    std::fs::create_dir(dir.path().join("policies"))?;
    std::fs::write(dir.path().join("policies/bench.cedar"), BENCH_POLICIES)?;
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, config)?;
    Ok((dir, file, addr))
}

/// Starts `warden serve --config file` (in `dir`, which it keeps) and waits until it accepts
/// connections on `addr`.
pub async fn start_warden(
    warden: &Path,
    dir: tempfile::TempDir,
    file: &Path,
    addr: SocketAddr,
) -> anyhow::Result<(Service, SocketAddr)> {
    let service = start_warden_under(&[], warden, dir, file, addr, Duration::from_secs(5)).await?;
    Ok((service, addr))
}

/// As [`start_warden`], run by `launcher` (a program and its arguments before Warden's own,
/// none for Warden alone: `valgrind --tool=callgrind …`), waiting up to `limit` for it to listen.
pub async fn start_warden_under(
    launcher: &[String],
    warden: &Path,
    dir: tempfile::TempDir,
    file: &Path,
    addr: SocketAddr,
    limit: Duration,
) -> anyhow::Result<Service> {
    let log = std::fs::File::create(dir.path().join("stderr.log"))?;
    let mut command = match launcher.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(warden);
            c
        }
        None => Command::new(warden),
    };
    let child = command
        .arg("serve")
        .arg("--config")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", warden.display()))?;
    let pid = child.id().context("warden exited at once")?;
    let mut service = Service {
        pid,
        child,
        dir: Some(dir),
    };
    wait_listening_for(&mut service, addr, "warden", limit).await?;
    Ok(service)
}

/// Waits until `service` accepts connections on `addr`, for up to 5 s.
pub async fn wait_listening(
    service: &mut Service,
    addr: SocketAddr,
    what: &str,
) -> anyhow::Result<()> {
    wait_listening_for(service, addr, what, Duration::from_secs(5)).await
}

/// Waits until `service` accepts connections on `addr`, for up to `limit`.
pub async fn wait_listening_for(
    service: &mut Service,
    addr: SocketAddr,
    what: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let step = Duration::from_millis(25);
    for _ in 0..(limit.as_millis() / step.as_millis()).max(1) {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        service.check_alive(what)?;
        tokio::time::sleep(step).await;
    }
    bail!(
        "{what} did not listen on {addr} within {} s",
        limit.as_secs()
    )
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

/// The processes whose parent is `pid` (Warden's stdio upstream child, say).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| parse_stat_ppid(&s))
                == Some(pid)
        })
        .collect()
}

/// User plus system CPU time a process has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let ticks = parse_stat_ticks(&stat).context("unexpected /proc/PID/stat")?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SEC))
}

/// Context switches (voluntary and not) of all a process's threads so far: each is a thread
/// going to sleep or being put off the CPU, which a call's hand-offs between threads cost.
/// Only the threads alive now are counted: one that ended takes its count with it.
pub fn context_switches(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("process {pid} is gone"))?;
    for task in tasks {
        // A thread that ended since the directory was read has nothing more to count.
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        total += parse_switches(&status).context("unexpected /proc/PID/task/TID/status")?;
    }
    Ok(total)
}

/// `voluntary_ctxt_switches` plus `nonvoluntary_ctxt_switches` of a `status` file.
fn parse_switches(status: &str) -> Option<u64> {
    let mut found = 0;
    let mut total = 0;
    for line in status.lines() {
        if let Some(rest) = line
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        {
            total += rest.trim().parse::<u64>().ok()?;
            found += 1;
        }
    }
    (found == 2).then_some(total)
}

/// CPU time the whole machine spent busy so far (all cores; everything but idle and iowait),
/// from the first line of `/proc/stat`.
pub fn machine_busy() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks = parse_machine_busy(&stat).context("unexpected /proc/stat")?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SEC))
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` writes them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
pub fn memory(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    parse_status_bytes(&status, field).with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// `utime + stime` from a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let busy = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4);
    Some(busy.map(|(_, t)| t).sum())
}

fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn parse_status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_is_utime_plus_stime_even_with_odd_names() {
        let stat =
            "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 73 21 0 0 20 0 4 0 100 0";
        assert_eq!(parse_stat_ticks(stat), Some(94));
        assert_eq!(parse_stat_ppid(stat), Some(1));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 9000 300 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(100 + 5 + 50 + 1 + 2 + 3));
        assert_eq!(parse_machine_busy("intr 1 2 3"), None);
    }

    #[test]
    fn status_fields_are_read_in_bytes() {
        let status = "Name:\twarden\nVmHWM:\t   12345 kB\nVmRSS:\t    8000 kB\n";
        assert_eq!(parse_status_bytes(status, "VmHWM"), Some(12345 * 1024));
        assert_eq!(parse_status_bytes(status, "VmRSS"), Some(8000 * 1024));
        assert_eq!(parse_status_bytes(status, "VmSwap"), None);
    }

    #[test]
    fn context_switches_are_both_kinds_added() {
        let status = "Name:\tw\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_switches(status), Some(157));
        assert_eq!(parse_switches("voluntary_ctxt_switches:\t1\n"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let me = std::process::id();
        assert!(cpu_time(me).is_ok());
        assert!(memory(me, "VmRSS").unwrap() > 0);
        assert!(context_switches(me).unwrap() > 0);
        // A thread that goes to sleep gives up the CPU: one voluntary switch at least. Read for
        // this thread alone: the harness's other threads may end between the two readings.
        let mine = || parse_switches(&std::fs::read_to_string("/proc/thread-self/status").unwrap());
        let before = mine().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(mine().unwrap() > before);
    }
}
