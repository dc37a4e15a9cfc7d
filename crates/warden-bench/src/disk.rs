//! The disk under Warden's audit log, as Linux tells it: the file system and block device the
//! log is on (`/proc/self/mounts`), and what that device did while a path was measured
//! (`/proc/diskstats`: bytes written, cache flushes and the time they took). A flush is what an
//! `fdatasync` costs on the device, so flushes per call show how many records one group commit
//! covered. The device is the machine's: other processes' writes and flushes count too.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// File systems on which `fdatasync` costs nothing, so an audit log there measures nothing.
const MEMORY_FILE_SYSTEMS: [&str; 2] = ["tmpfs", "ramfs"];

/// `/proc/diskstats` counts in sectors of 512 bytes, whatever the device's own.
const SECTOR_BYTES: u64 = 512;

/// Where a path is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// What was mounted: `/dev/vda`, `tmpfs`, `overlay` …
    pub source: String,
    /// The file system's type: `ext4`, `tmpfs` …
    pub kind: String,
}

impl Mount {
    /// The mount that holds `path`.
    pub fn of(path: &Path) -> Option<Mount> {
        let path = std::fs::canonicalize(path).ok()?;
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        parse_mount(&mounts, &path)
    }

    /// The block device's name in `/proc/diskstats` (`vda`, `dm-0`), if the source is one.
    pub fn device(&self) -> Option<String> {
        let source = Path::new(&self.source);
        if !source.starts_with("/dev") {
            return None;
        }
        // `/dev/mapper/NAME` and `/dev/disk/by-…` are links to the kernel's name.
        let real = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
        Some(real.file_name()?.to_str()?.to_string())
    }
}

/// Fails if `dir` is on a file system in memory, where `fdatasync` is free.
pub fn check_real(dir: &Path) -> anyhow::Result<()> {
    let kind = Mount::of(dir).map(|m| m.kind).unwrap_or_default();
    if MEMORY_FILE_SYSTEMS.contains(&kind.as_str()) {
        bail!(
            "{} is on {kind}, where fdatasync costs nothing; set TMPDIR to a directory on a disk",
            dir.display()
        );
    }
    Ok(())
}

/// The latency of one durable record on the file system of `dir`, idle: an 800-byte write into
/// a preallocated, zero-filled file followed by `fdatasync`, as the audit log's writer does,
/// 1,000 times in a row. A call with audit waits for two of these one after the other (its
/// request record, then its response record): twice the p50 is the least that audit can add to
/// a call on this disk, before any queueing, and the tail shows how far the disk alone spreads it.
pub fn durable_write(dir: &Path) -> anyhow::Result<DurableWrite> {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt as _;
    const RECORD: usize = 800;
    const ROUNDS: usize = 1000;
    let path = dir.join("durable-write-probe");
    let mut file = std::fs::File::create(&path)?;
    file.write_all(&vec![0u8; RECORD * ROUNDS + (64 << 10)])?;
    file.sync_all()?;
    let record = [b'r'; RECORD];
    let mut micros = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let t = std::time::Instant::now();
        file.write_all_at(&record, (i * RECORD) as u64)?;
        file.sync_data()?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    micros.sort_by(f64::total_cmp);
    let at = |q: usize| micros[ROUNDS * q / 1000];
    Ok(DurableWrite {
        p50: at(500),
        p90: at(900),
        p99: at(990),
        max: micros[ROUNDS - 1],
    })
}

/// What one durable record takes on a disk, in µs ([`durable_write`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurableWrite {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl std::fmt::Display for DurableWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "one durable record (800-byte write + fdatasync, preallocated file) p50 {:.0} µs, \
             p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

/// What a block device did: counters since boot, or their difference over a phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskWork {
    pub bytes_written: u64,
    pub flushes: u64,
    /// Time the device spent on flushes, in ms.
    pub flush_ms: u64,
}

impl DiskWork {
    /// The counters of `device` now.
    pub fn read(device: &str) -> Option<DiskWork> {
        let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
        parse_diskstats(&stats, device)
    }

    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: DiskWork) -> DiskWork {
        DiskWork {
            bytes_written: self.bytes_written.saturating_sub(earlier.bytes_written),
            flushes: self.flushes.saturating_sub(earlier.flushes),
            flush_ms: self.flush_ms.saturating_sub(earlier.flush_ms),
        }
    }

    /// Adds another phase's work.
    pub fn add(&mut self, other: DiskWork) {
        self.bytes_written += other.bytes_written;
        self.flushes += other.flushes;
        self.flush_ms += other.flush_ms;
    }
}

/// The bytes of all files under `dir`, and how many files they are.
pub fn bytes_under(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(Result::ok)
        .fold((0, 0), |(bytes, files), e| match e.file_type() {
            Ok(t) if t.is_dir() => {
                let (b, f) = bytes_under(&e.path());
                (bytes + b, files + f)
            }
            Ok(t) if t.is_file() => (bytes + e.metadata().map_or(0, |m| m.len()), files + 1),
            _ => (bytes, files),
        })
}

/// The mount with the longest mount point that holds `path` (the last such line when one is
/// mounted over another). Mount points write space, tab, newline and backslash as octal
/// escapes (`\040`).
fn parse_mount(mounts: &str, path: &Path) -> Option<Mount> {
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let source = unescape(fields.next()?);
            let point = PathBuf::from(unescape(fields.next()?));
            let kind = unescape(fields.next()?);
            path.starts_with(&point)
                .then(|| (point.as_os_str().len(), Mount { source, kind }))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, mount)| mount)
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `device`'s line of `/proc/diskstats`: major, minor, name, then reads (4 fields), writes
/// (4: completed, merged, sectors, ms), I/Os in progress, ms doing I/O, weighted ms, discards
/// (4), flushes (2: completed, ms; Linux 5.5 and later).
fn parse_diskstats(stats: &str, device: &str) -> Option<DiskWork> {
    let line = stats
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(device))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(3)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(DiskWork {
        bytes_written: fields.get(6)? * SECTOR_BYTES,
        flushes: *fields.get(15)?,
        flush_ms: *fields.get(16)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_on_the_deepest_mount_that_holds_it() {
        let mounts = "/dev/vda / ext4 rw,relatime 0 0\n\
                      tmpfs /dev/shm tmpfs rw 0 0\n\
                      tmpfs /srv/my\\040disk tmpfs rw 0 0\n\
                      /dev/vdb /srv/my\\040disk xfs rw 0 0\n";
        let kind = |p: &str| parse_mount(mounts, Path::new(p)).map(|m| m.kind);
        assert_eq!(kind("/tmp/.tmpAb12/audit").as_deref(), Some("ext4"));
        assert_eq!(kind("/dev/shm/x").as_deref(), Some("tmpfs"));
        // Mounted over: the later line is what is seen.
        let over = parse_mount(mounts, Path::new("/srv/my disk/a")).unwrap();
        assert_eq!(
            (over.source.as_str(), over.kind.as_str()),
            ("/dev/vdb", "xfs")
        );
        // A mount point is a whole component, not a prefix of the text.
        assert_eq!(kind("/dev/shmx").as_deref(), Some("ext4"));
    }

    #[test]
    fn only_block_devices_have_disk_counters() {
        let mount = |source: &str| Mount {
            source: source.into(),
            kind: "ext4".into(),
        };
        assert_eq!(mount("/dev/vda").device().as_deref(), Some("vda"));
        assert_eq!(mount("tmpfs").device(), None);
        assert_eq!(mount("overlay").device(), None);
    }

    #[test]
    fn diskstats_give_bytes_written_and_flushes() {
        let stats = " 254       0 vda 320916 11936 15771586 11558231 2526730 166959 102540128 \
                     1394127 0 568892 13294026 114288 115 17682432 49855 757422 291812\n \
                     254       1 vda1 10 0 80 1 20 0 160 2 0 3 3 0 0 0 0 0 0\n";
        let vda = parse_diskstats(stats, "vda").unwrap();
        assert_eq!(
            vda,
            DiskWork {
                bytes_written: 102_540_128 * 512,
                flushes: 757_422,
                flush_ms: 291_812,
            }
        );
        assert_eq!(parse_diskstats(stats, "vdb"), None);
        // A kernel before 5.5 has no flush fields.
        assert_eq!(
            parse_diskstats(" 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n", "sda"),
            None
        );
        let later = DiskWork {
            bytes_written: vda.bytes_written + 4096,
            flushes: vda.flushes + 3,
            flush_ms: vda.flush_ms + 1,
        };
        assert_eq!(
            later.since(vda),
            DiskWork {
                bytes_written: 4096,
                flushes: 3,
                flush_ms: 1,
            }
        );
    }
}
