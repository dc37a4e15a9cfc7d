//! `warden audit`: the signing key, offline verification, proofs, and the records read back —
//! readably (`show`, `tail`) or as JSON Lines for a SIEM (`export`, with `--follow`).
//!
//! Everything but `keygen` only reads the log, so it works while the gateway writes it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use warden_audit::{AuditedLog, Record, Verifier, VerifyError, VerifyOptions};
use warden_gateway::Config;

#[derive(Subcommand)]
pub enum AuditAction {
    /// Create the checkpoints' signing key (mode 0600) and print its verifier key for auditors.
    Keygen {
        #[arg(long, short, default_value = "warden.toml")]
        config: PathBuf,
    },
    /// Check a log offline: every record, the Merkle tree, each checkpoint's signature and
    /// their consistency; names the first bad thing it finds.
    Verify {
        /// The log's directory (audit.dir).
        dir: PathBuf,
        /// The verifier key (`name+id+key`), or a file holding it.
        #[arg(long)]
        key: String,
        /// A checkpoint you saved earlier (a file): the log must still contain it, so a log
        /// rolled back to an older copy is caught.
        #[arg(long)]
        trusted: Option<PathBuf>,
    },
    /// Print an inclusion proof of record SEQ against the latest checkpoint; with --since N
    /// also a consistency proof from tree size N. The log is verified first.
    Prove {
        seq: u64,
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        since: Option<u64>,
        /// The verifier key or a file holding it (default: the one next to audit.key).
        #[arg(long)]
        key: Option<String>,
    },
    /// Move old segments (every record of which a signed checkpoint covers) to archive
    /// storage, keeping their leaf hashes so that every proof stays possible. Safe while the
    /// gateway runs.
    Archive {
        #[command(flatten)]
        at: Where,
        /// Where the segments go (a directory; made if missing).
        #[arg(long)]
        to: PathBuf,
        /// The verifier key or a file holding it (default: the one next to audit.key).
        #[arg(long)]
        key: Option<String>,
    },
    /// Print records readably.
    Show {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        filter: Filter,
        /// One JSON record per line instead.
        #[arg(long)]
        json: bool,
    },
    /// Print the last records, and with --follow the new ones as they come.
    Tail {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        filter: Filter,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        #[arg(long, short)]
        follow: bool,
    },
    /// Write records as JSON Lines (for a SIEM); --follow keeps writing new ones.
    Export {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        filter: Filter,
        /// Start at this sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, short)]
        follow: bool,
    },
}

/// Which log: `--dir`, or the `audit.dir` of `--config`.
#[derive(Args)]
pub struct Where {
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, short, default_value = "warden.toml")]
    config: PathBuf,
}

/// Which records.
#[derive(Args, Default)]
pub struct Filter {
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    agent: Option<String>,
    /// A tool, prompt or resource name.
    #[arg(long)]
    tool: Option<String>,
    /// request, response, refusal, consent_asked, consent_decided, grant_used, admin …
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    outcome: Option<String>,
    /// From this time on (RFC 3339, or a prefix of it such as 2026-12-02T10).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339, or a prefix of it).
    #[arg(long)]
    until: Option<String>,
}

impl Filter {
    fn keeps(&self, r: &Record) -> bool {
        let is = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let kind = serde_json::to_value(r.kind).ok();
        is(&self.user, r.principal.as_deref())
            && is(&self.agent, r.agent.as_deref())
            && is(&self.tool, r.name.as_deref())
            && is(&self.kind, kind.as_ref().and_then(|k| k.as_str()))
            && is(&self.outcome, r.outcome.as_deref())
            && self.since.as_deref().is_none_or(|s| r.time.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| r.time.as_str() < u)
    }
}

pub async fn run(action: AuditAction) -> ExitCode {
    let result = match action {
        AuditAction::Keygen { config } => keygen(&config),
        AuditAction::Verify { dir, key, trusted } => verify(&dir, &key, trusted.as_deref()),
        AuditAction::Prove {
            seq,
            at,
            since,
            key,
        } => prove(&at, key.as_deref(), seq, since),
        AuditAction::Archive { at, to, key } => archive(&at, &to, key.as_deref()),
        AuditAction::Show { at, filter, json } => at.dir().and_then(|d| {
            print_records(
                &d,
                0,
                &filter,
                None,
                false,
                if json { json_line } else { readable },
            )
        }),
        AuditAction::Tail {
            at,
            filter,
            lines,
            follow,
        } => at
            .dir()
            .and_then(|d| print_records(&d, 0, &filter, Some(lines), follow, readable)),
        AuditAction::Export {
            at,
            filter,
            from,
            follow,
        } => at
            .dir()
            .and_then(|d| print_records(&d, from, &filter, None, follow, json_line)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden audit: {e}");
            ExitCode::FAILURE
        }
    }
}

impl Where {
    fn dir(&self) -> Result<PathBuf, String> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let config = Config::load(&self.config).map_err(|e| e.to_string())?;
        Ok(config.audit.dir)
    }
}

fn keygen(config: &Path) -> Result<(), String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let audit = &config.audit;
    if audit.key.exists() {
        let vkey = warden_gateway::audit::verifier_key(&audit.key).map_err(|e| e.to_string())?;
        return Err(format!(
            "{} exists already (its verifier key: {vkey}); a log keeps one key, so it is not replaced",
            audit.key.display()
        ));
    }
    let signer =
        warden_gateway::audit::create_key(&audit.key, &audit.origin).map_err(|e| e.to_string())?;
    println!("signing key written to {} (mode 0600)", audit.key.display());
    println!("verifier key, for auditors:\n{}", signer.verifier_key());
    Ok(())
}

/// A verifier key given as itself or as a file holding it.
fn verifier(key: &str) -> Result<Verifier, String> {
    let text = match std::fs::read_to_string(key) {
        Ok(t) => t.trim().to_string(),
        Err(_) => key.to_string(),
    };
    Verifier::parse(&text).map_err(|e| format!("--key: {e}"))
}

fn verify(dir: &Path, key: &str, trusted: Option<&Path>) -> Result<(), String> {
    let key = verifier(key)?;
    let trusted = trusted
        .map(|p| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()?;
    let fails = |e: VerifyError| format!("{} does NOT verify: {e}", dir.display());
    let strict = VerifyOptions::default();
    let report = match warden_audit::verify_dir_with(dir, &key, trusted.as_deref(), strict) {
        Ok(r) => r,
        // A running gateway signs its newest records within `checkpoint_interval`; only while
        // it holds the writer's lock are unsigned records its own and not yet signed.
        Err(VerifyError::UnsignedTail { .. }) if writer_running(dir) => {
            let live = VerifyOptions {
                allow_unsigned_tail: true,
            };
            warden_audit::verify_dir_with(dir, &key, trusted.as_deref(), live).map_err(fails)?
        }
        Err(e) => return Err(fails(e)),
    };
    let latest = report.latest.map_or_else(
        || "none".to_string(),
        |(size, root)| format!("size {size}, root {}", base64_of(&root)),
    );
    println!(
        "{}: ok — {} records, {} checkpoints signed by {}, latest {latest}",
        dir.display(),
        report.records,
        report.checkpoints,
        key.name(),
    );
    if report.unsigned_tail > 0 {
        println!(
            "({} newest records are not signed yet: the running gateway signs them within a second; run it again to cover them)",
            report.unsigned_tail
        );
    }
    Ok(())
}

/// Whether a gateway holds the log's writer lock now.
fn writer_running(dir: &Path) -> bool {
    match std::fs::File::open(dir.join("writer.lock")) {
        Ok(f) => match f.try_lock_shared() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Where {
    /// The verifier key given, or the one the gateway wrote next to its signing key.
    fn key(&self, given: Option<&str>) -> Result<Verifier, String> {
        match given {
            Some(k) => verifier(k),
            None => {
                let config = Config::load(&self.config).map_err(|e| e.to_string())?;
                let vkey = config.audit.key.with_extension("vkey");
                verifier(&vkey.display().to_string())
            }
        }
    }
}

fn archive(at: &Where, to: &Path, key: Option<&str>) -> Result<(), String> {
    let (dir, key) = (at.dir()?, at.key(key)?);
    let done = warden_audit::archive(&dir, to, &key).map_err(|e| e.to_string())?;
    for segment in &done.segments {
        println!("archived {}", segment.display());
    }
    println!(
        "{}: {} records archived in all (their hashes stay, so every proof still works); {} segments moved now",
        dir.display(),
        done.records,
        done.segments.len()
    );
    Ok(())
}

fn prove(at: &Where, key: Option<&str>, seq: u64, since: Option<u64>) -> Result<(), String> {
    let (dir, key) = (at.dir()?, at.key(key)?);
    let live = VerifyOptions {
        allow_unsigned_tail: true,
    };
    let log = AuditedLog::open(&dir, &key, None, live)
        .map_err(|e| format!("{} does NOT verify: {e}", dir.display()))?;
    let proof = log.prove_inclusion(seq).map_err(|e| e.to_string())?;
    print!("{}", proof.to_text());
    if let Some(old) = since {
        let proof = log.prove_consistency(old).map_err(|e| e.to_string())?;
        print!("\n{}", proof.to_text());
    }
    Ok(())
}

fn readable(seq: u64, r: &Record) -> String {
    let kind = serde_json::to_value(r.kind)
        .ok()
        .and_then(|k| k.as_str().map(str::to_string))
        .unwrap_or_default();
    let opt = |label: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!(" {label}={v}"))
            .unwrap_or_default()
    };
    let latency = r
        .latency_us
        .map(|us| format!(" {:.1}ms", us as f64 / 1000.0))
        .unwrap_or_default();
    let detail = if r.detail.is_null() {
        String::new()
    } else {
        format!("\n    {}", r.detail)
    };
    format!(
        "#{seq} {} {kind}{}{}{}{}{}{}{latency}{detail}",
        r.time,
        opt("user", &r.principal),
        opt("agent", &r.agent),
        opt("upstream", &r.upstream),
        opt("method", &r.method),
        opt("name", &r.name),
        opt("outcome", &r.outcome),
    )
}

fn json_line(_: u64, r: &Record) -> String {
    String::from_utf8_lossy(&r.to_bytes()).into_owned()
}

/// Prints the records from `from` that `filter` keeps (only the last `last` of them, if given),
/// then, with `follow`, new ones as they are written.
fn print_records(
    dir: &Path,
    from: u64,
    filter: &Filter,
    last: Option<usize>,
    follow: bool,
    show: fn(u64, &Record) -> String,
) -> Result<(), String> {
    let mut reader = warden_audit::Reader::open(dir).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut first = true;
    loop {
        let batch = reader.next_batch().map_err(|e| e.to_string())?;
        let mut kept: Vec<(u64, Record)> = Vec::new();
        for (seq, bytes) in batch {
            if seq < from {
                continue;
            }
            let record = Record::from_bytes(&bytes).map_err(|e| format!("record {seq}: {e}"))?;
            if filter.keeps(&record) {
                kept.push((seq, record));
            }
        }
        if first && let Some(n) = last {
            let skip = kept.len().saturating_sub(n);
            kept.drain(..skip);
        }
        first = false;
        for (seq, r) in &kept {
            // A closed pipe (`| head`) ends the output quietly.
            if writeln!(out, "{}", show(*seq, r)).is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
