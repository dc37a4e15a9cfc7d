//! nginx as the plain reverse proxy the bench holds Warden against: Debian's `nginx`, started
//! by the bench with a config of its own in a temporary directory (pid file, error log, temp
//! files), in the foreground, as the current user, on a free loopback port, in front of the
//! same upstream as Warden. Upstream connections are kept alive (`keepalive` in an upstream
//! block, HTTP/1.1 with an empty `Connection` header) and replies are not buffered, so an SSE
//! stream goes through as it comes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::Command;

use crate::procs::{self, Service};

/// Where Debian installs nginx.
pub const DEFAULT_NGINX: &str = "/usr/sbin/nginx";

/// A running nginx; stopped (master and workers) when dropped.
pub struct Nginx {
    pub service: Service,
    program: PathBuf,
    dir: PathBuf,
}

impl Nginx {
    /// The master and its worker processes, whose CPU time is nginx's.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.service.pid];
        pids.extend(procs::children_of(self.service.pid));
        pids
    }

    fn command(program: &Path, dir: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            // Errors before the config is read go here too, not to /var/log/nginx.
            .arg("-e")
            .arg(dir.join("stderr.log"));
        command
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A fast shutdown through the master, which stops its workers first; killing the master
        // at once would leave the workers running, so wait for it to exit (a few ms).
        let workers = procs::children_of(self.service.pid);
        let _ = std::process::Command::new(&self.program)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.join("stderr.log"))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..500 {
            if !matches!(self.service.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whatever worker is still there (the master was stuck) goes with a SIGKILL.
        let left: Vec<String> = workers
            .iter()
            .filter(|w| procs::children_of(1).contains(w))
            .map(u32::to_string)
            .collect();
        if !left.is_empty() {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .args(&left)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The config: `listen` in front of `upstream`, everything nginx writes inside `dir`.
fn config(dir: &Path, listen: SocketAddr, upstream: SocketAddr, user: Option<&str>) -> String {
    let d = dir.display();
    // Only a master running as root switches its workers' user; keep them ours.
    let user = user.map(|u| format!("user {u};\n")).unwrap_or_default();
    format!(
        "{user}daemon off;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/stderr.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    upstream mcp {{
        server {upstream};
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 600s;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_buffering off;
        }}
    }}
}}
"
    )
}

/// The user a root master must name for its workers to stay root; `None` when not root.
fn root_user() -> Option<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    // `Uid:` real, effective, saved, filesystem.
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?;
    (effective == "0").then_some("root")
}

/// Starts nginx in front of `upstream` and waits until it accepts connections.
pub async fn start(program: &Path, upstream: SocketAddr) -> anyhow::Result<(Nginx, SocketAddr)> {
    let listen = procs::free_port()?;
    let dir = tempfile::tempdir()?;
    let conf = config(dir.path(), listen, upstream, root_user());
    std::fs::write(dir.path().join("nginx.conf"), conf)?;
    let child = Nginx::command(program, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let pid = child.id().context("nginx exited at once")?;
    let path = dir.path().to_path_buf();
    let mut nginx = Nginx {
        service: Service {
            pid,
            child,
            dir: Some(dir),
        },
        program: program.to_path_buf(),
        dir: path,
    };
    procs::wait_listening(&mut nginx.service, listen, "nginx").await?;
    Ok((nginx, listen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_upstream_connections_and_streams() {
        let listen: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let upstream: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let conf = config(Path::new("/tmp/x"), listen, upstream, None);
        for needed in [
            "daemon off;",
            "server 127.0.0.1:5000;",
            "keepalive 64;",
            "listen 127.0.0.1:4000;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_buffering off;",
            "pid /tmp/x/nginx.pid;",
            "error_log /tmp/x/stderr.log warn;",
        ] {
            assert!(conf.contains(needed), "{needed}");
        }
        assert!(!conf.contains("user "));
        assert!(config(Path::new("/t"), listen, upstream, Some("root")).starts_with("user root;"));
    }
}
