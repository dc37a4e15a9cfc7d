//! Segment frames: `u32 BE length ‖ bytes ‖ u32 BE crc32(bytes)`, and a scanner that says
//! exactly where and how a run of frames stops being valid.

use std::fmt;
use std::io::Write;
use std::ops::Range;

use crate::record::SEQ_HEAD;
#[cfg(doc)]
use crate::record::Unsequenced;

/// The largest record a frame holds (appends of larger records fail).
pub const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

/// The bytes a frame adds around its record.
pub const FRAME_OVERHEAD: usize = 8;

/// Appends the frame of `record` to `out` (the log writes [`encode_sequenced`]).
#[cfg(test)]
pub(crate) fn encode(record: &[u8], out: &mut Vec<u8>) {
    // The caller checked `record.len() <= MAX_RECORD_BYTES`, which fits a u32.
    out.extend_from_slice(&(record.len() as u32).to_be_bytes());
    out.extend_from_slice(record);
    out.extend_from_slice(&crc32fast::hash(record).to_be_bytes());
}

/// Appends the frame of the record whose canonical bytes are [`SEQ_HEAD`], `seq`'s digits and
/// `rest` (see [`Unsequenced`]), and returns where those bytes are in `out`.
pub(crate) fn encode_sequenced(seq: u64, rest: &[u8], out: &mut Vec<u8>) -> Range<usize> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(SEQ_HEAD);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{seq}");
    out.extend_from_slice(rest);
    let record = at + 4..out.len();
    // The appender checked that the record, with any seq, fits a frame (and so a u32).
    let len = record.len() as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    let crc = crc32fast::hash(&out[record.clone()]);
    out.extend_from_slice(&crc.to_be_bytes());
    record
}

/// The bytes the frame of a record with `rest` after seq `seq` takes.
pub(crate) fn sequenced_len(seq: u64, rest: &[u8]) -> usize {
    FRAME_OVERHEAD + SEQ_HEAD.len() + digits(seq) + rest.len()
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameProblem {
    /// The file ends inside the frame: `have` of the `need` bytes are there (a length prefix
    /// is 4 bytes; a whole frame is 8 plus its length).
    Incomplete {
        /// Bytes present from the frame's start.
        have: u64,
        /// Bytes the frame needs.
        need: u64,
    },
    /// The stored checksum is not the CRC-32 of the record bytes.
    BadChecksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes in the file.
        computed: u32,
    },
    /// A zero length: no record is empty.
    Empty,
    /// A length above [`MAX_RECORD_BYTES`].
    TooLong {
        /// The length prefix.
        len: u64,
    },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameProblem::Incomplete { have, need } => {
                write!(
                    f,
                    "incomplete: the file ends after {have} of its {need} bytes"
                )
            }
            FrameProblem::BadChecksum { stored, computed } => write!(
                f,
                "corrupt: checksum {stored:08x} stored, {computed:08x} computed from its bytes"
            ),
            FrameProblem::Empty => write!(f, "corrupt: its length is zero"),
            FrameProblem::TooLong { len } => {
                write!(
                    f,
                    "corrupt: its length {len} is above the {MAX_RECORD_BYTES}-byte limit"
                )
            }
        }
    }
}

/// A frame's record and where the frame starts in its segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame<'a> {
    pub offset: u64,
    pub record: &'a [u8],
}

/// Where a scan stopped short of the end of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stop {
    /// The offset of the first invalid frame.
    pub offset: u64,
    pub problem: FrameProblem,
    /// Whether this is what an interrupted append leaves at the end of a file (and nothing
    /// else): an incomplete frame, a bad checksum on a frame that ends exactly at the end of
    /// the file, or only zero bytes from here on.
    pub torn: bool,
}

/// Reads the frames of one segment, in order, until the end or the first invalid frame.
pub(crate) fn scan(data: &[u8]) -> (Vec<Frame<'_>>, Option<Stop>) {
    let mut frames = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        match frame_at(data, at) {
            Ok((record, next)) => {
                frames.push(Frame {
                    offset: at as u64,
                    record,
                });
                at = next;
            }
            Err((problem, ends_at_eof)) => {
                let zeros = data[at..].iter().all(|&b| b == 0);
                let torn = zeros || ends_at_eof;
                return (
                    frames,
                    Some(Stop {
                        offset: at as u64,
                        problem,
                        torn,
                    }),
                );
            }
        }
    }
    (frames, None)
}

/// The record of the frame at `at` and the offset after it, or the problem and whether
/// nothing but zeros follows the bad frame (it reaches to the end of the data, or past it, or
/// the rest is preallocated space).
fn frame_at(data: &[u8], at: usize) -> Result<(&[u8], usize), (FrameProblem, bool)> {
    let rest = &data[at..];
    let have = rest.len() as u64;
    let Some(prefix) = rest.first_chunk::<4>() else {
        return Err((FrameProblem::Incomplete { have, need: 4 }, true));
    };
    let zeros_from = |from: usize| rest.get(from..).is_none_or(|r| r.iter().all(|&b| b == 0));
    let len = u32::from_be_bytes(*prefix) as u64;
    if len == 0 {
        return Err((FrameProblem::Empty, false));
    }
    if len > MAX_RECORD_BYTES as u64 {
        // A length prefix written only in part, with zeros after it.
        return Err((FrameProblem::TooLong { len }, zeros_from(4)));
    }
    let need = len + FRAME_OVERHEAD as u64;
    if have < need {
        return Err((FrameProblem::Incomplete { have, need }, true));
    }
    let end = 4 + len as usize;
    let record = &rest[4..end];
    let stored = u32::from_be_bytes([rest[end], rest[end + 1], rest[end + 2], rest[end + 3]]);
    let computed = crc32fast::hash(record);
    if stored != computed {
        return Err((
            FrameProblem::BadChecksum { stored, computed },
            zeros_from(need as usize),
        ));
    }
    Ok((record, at + need as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let data = frames(&[b"one", b"two!"]);
        let (got, stop) = scan(&data);
        assert_eq!(stop, None);
        assert_eq!(
            got.iter().map(|f| f.record).collect::<Vec<_>>(),
            [b"one" as &[u8], b"two!"]
        );
        assert_eq!(got[1].offset, 11);
    }

    #[test]
    fn every_cut_of_the_last_frame_is_torn() {
        let data = frames(&[b"one", b"second record"]);
        for cut in 12..data.len() {
            let (got, stop) = scan(&data[..cut]);
            let stop = stop.expect("a stop");
            assert_eq!(
                (got.len(), stop.offset, stop.torn),
                (1, 11, true),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_bad_checksum_is_torn_only_at_the_end() {
        let mut data = frames(&[b"one", b"two"]);
        let last = data.len() - 1;
        data[last] ^= 1;
        assert!(scan(&data).1.is_some_and(|s| s.torn && s.offset == 11));
        let mut data = frames(&[b"one", b"two"]);
        data[5] ^= 1;
        let stop = scan(&data).1.expect("a stop");
        assert!(!stop.torn && stop.offset == 0, "{stop:?}");
        assert!(matches!(stop.problem, FrameProblem::BadChecksum { .. }));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_scan_without_panicking(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let (frames, stop) = scan(&data);
            let mut end = 0;
            for f in &frames {
                proptest::prop_assert_eq!(f.offset, end);
                end = f.offset + (f.record.len() + FRAME_OVERHEAD) as u64;
            }
            let expected = stop.map_or(data.len() as u64, |s| s.offset);
            proptest::prop_assert_eq!(end, expected);
        }
    }

    #[test]
    fn a_zero_filled_tail_is_torn_but_zeros_before_data_are_not() {
        let mut data = frames(&[b"one"]);
        data.extend_from_slice(&[0; 40]);
        assert!(
            scan(&data)
                .1
                .is_some_and(|s| s.torn && s.problem == FrameProblem::Empty)
        );
        data.extend_from_slice(&frames(&[b"two"]));
        assert!(scan(&data).1.is_some_and(|s| !s.torn));
    }
}
