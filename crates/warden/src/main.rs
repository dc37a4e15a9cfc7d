//! The `warden` command: wires the gateway crates together and nothing more.

mod admin;
mod audit;
mod connections;
mod dev;
mod policy;
mod tools;
mod vault;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use warden_gateway::Config;
use warden_gateway::config::LogFormat;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Zero-trust gateway for the Model Context Protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a config file.
    Serve {
        #[arg(long, short, default_value = "warden.toml")]
        config: PathBuf,
    },
    /// Validate a config file and report every problem with its line and a fix.
    Check {
        #[arg(long, short, default_value = "warden.toml")]
        config: PathBuf,
    },
    /// Run a demo gateway with a built-in upstream: the first thing to try.
    Dev {
        /// Where the demo keeps its files.
        #[arg(long, default_value = "warden-data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Manage API keys for headless agents.
    Keys {
        #[arg(long, short, default_value = "warden.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: admin::KeysAction,
    },
    /// Cut off a token (by its jti), a user or an agent; takes effect on their next request.
    Revoke {
        #[arg(long, short, default_value = "warden.toml")]
        config: PathBuf,
        #[command(flatten)]
        target: admin::Target,
        /// Why, for the record.
        #[arg(long, default_value = "revoked by an operator")]
        reason: String,
        /// Lift the revocation instead.
        #[arg(long)]
        undo: bool,
    },
    /// List or revoke grants made on the consent page.
    Grants {
        #[arg(long, short, default_value = "warden.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: admin::GrantsAction,
    },
    /// List revocations.
    Revocations {
        #[arg(long, short, default_value = "warden.toml")]
        config: PathBuf,
    },
    /// Test and lint the policies.
    Policy {
        #[arg(long, short, default_value = "warden.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: policy::PolicyAction,
    },
    /// Pinned tool definitions: list them, see a change, approve it.
    Tools {
        #[arg(long, short, default_value = "warden.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: tools::ToolsAction,
    },
    /// Upstream secrets and users' tokens, sealed in the store.
    Vault {
        #[arg(long, short, default_value = "warden.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: vault::VaultAction,
    },
    /// Users' own accounts at upstreams with `oauth`: who connected what; disconnect one.
    Connections {
        #[arg(long, short, default_value = "warden.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: connections::ConnectionsAction,
    },
    /// The audit trail: signing key, offline verification, proofs, records.
    Audit {
        #[command(subcommand)]
        action: audit::AuditAction,
    },
    /// Run the built-in fixture MCP server (used by `warden dev`).
    #[command(hide = true)]
    Fixture {
        #[arg(long)]
        stdio: bool,
        #[arg(long)]
        http: Option<String>,
    },
}

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One arena per CPU would reserve memory per worker thread for a gain this process cannot
/// use; freed pages go back to the system after a second.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] =
    b"narenas:1,background_thread:false,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` reads its config before the runtime starts: `[server] workers` sizes it. Requests
    // are served on threads of their own, one event loop each (`warden_gateway::server`); this
    // runtime runs what the gateway does besides (reloads, upstream start-up, the CLI).
    let serving = match &cli.command {
        Command::Serve { config } => match Config::load(config) {
            Ok(c) => Some(c),
            Err(errors) => {
                eprintln!("{errors}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let workers = serving.as_ref().and_then(|c| c.server.workers);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warden: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match serving {
            Some(config) => {
                init_logging(config.logging.format, &config.logging.level);
                serve(config, None).await
            }
            None => run(cli.command).await,
        }
    })
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Check { config } => match Config::load(&config) {
            Ok(c) => match warden_gateway::policy::load_dir(&c.policy.dir, &c.dlp.detectors()) {
                Ok(policies) => {
                    let (n, p, url) = (c.upstreams.len(), policies.len(), c.mcp_url());
                    println!(
                        "{}: ok ({n} upstreams, {p} policies, MCP endpoint {url})",
                        config.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    eprintln!(
                        "{} problem(s) found in the policies of {}",
                        errors.0.len(),
                        c.policy.dir.display()
                    );
                    ExitCode::FAILURE
                }
            },
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{} problem(s) found", errors.0.len());
                ExitCode::FAILURE
            }
        },
        // `main` loads the config and serves without calling `run` (invariant).
        Command::Serve { .. } => unreachable!("main starts `serve` itself"),
        Command::Dev { data_dir, listen } => dev::run(data_dir, listen).await,
        Command::Keys { config, action } => admin::keys(&config, action).await,
        Command::Grants { config, action } => admin::grants(&config, action).await,
        Command::Revoke {
            config,
            target,
            reason,
            undo,
        } => admin::revoke(&config, target, &reason, undo).await,
        Command::Revocations { config } => admin::revocations(&config).await,
        Command::Policy { config, action } => policy::run(&config, action).await,
        Command::Audit { action } => audit::run(action).await,
        Command::Tools { config, action } => tools::run(&config, action).await,
        Command::Vault { config, action } => vault::run(&config, action).await,
        Command::Connections { config, action } => connections::run(&config, action).await,
        Command::Fixture { stdio, http } => {
            let result = match (stdio, http) {
                (true, _) => warden_fixture::serve_stdio().await,
                (false, Some(addr)) => match tokio::net::TcpListener::bind(&addr).await {
                    Ok(l) => {
                        if let Ok(a) = l.local_addr() {
                            println!("LISTENING http://{a}/mcp");
                        }
                        warden_fixture::serve_http(l).await
                    }
                    Err(e) => Err(e.into()),
                },
                (false, None) => Err(anyhow::anyhow!("say --stdio or --http ADDR")),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fixture: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

pub fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Something to print once the gateway listens, given its MCP URL.
pub type Banner = Box<dyn FnOnce(&str) + Send>;

/// Ctrl-C, or SIGTERM (how service managers stop a process). Listening starts at once, so a
/// signal that comes while the gateway starts is not missed.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
}

/// Serves until Ctrl-C or SIGTERM; `banner` is printed once the socket is bound.
pub async fn serve(config: Config, banner: Option<Banner>) -> ExitCode {
    let listen = config.server.listen;
    let stop = stop_signal();
    let running = match warden_gateway::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warden: cannot start on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(banner) = banner {
        banner(&running.mcp_url());
    }
    stop.await;
    tracing::info!("stopping");
    match running.stop().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden: {e}");
            ExitCode::FAILURE
        }
    }
}
