//! Server-Sent Events: an encoder for the streams Warden sends and an incremental decoder
//! for the streams upstream servers send (WHATWG "event stream" parsing rules).

use bytes::{BufMut, Bytes, BytesMut};

/// One decoded event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Encodes one `message` event carrying `data` (one JSON message; never contains a newline
/// because serde_json's compact output escapes them).
pub fn encode(id: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 32);
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(id.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"event: message\ndata: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// A comment line, used as a keep-alive that also primes the stream.
pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// An event carrying only an id and a retry hint, used to prime a resumable stream.
pub fn priming(id: &str, retry_ms: u64) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: {retry_ms}\ndata: \n\n"))
}

/// Incremental decoder: feed it chunks as they arrive; it returns complete events.
#[derive(Default, Debug)]
pub struct Decoder {
    buf: BytesMut,
    current: Event,
    has_data: bool,
    /// Set when the last chunk ended in '\r', so a following '\n' is not a second line end.
    after_cr: bool,
    /// Largest allowed buffered line, to bound memory on a hostile stream.
    max_line: usize,
}

/// The stream sent a line longer than the decoder's limit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an event-stream line is longer than {0} bytes")]
pub struct LineTooLong(pub usize);

impl Decoder {
    pub fn new(max_line: usize) -> Self {
        Decoder {
            max_line,
            ..Decoder::default()
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, LineTooLong> {
        let mut events = Vec::new();
        let mut chunk = chunk;
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(end) = memchr::memchr2(b'\n', b'\r', chunk) {
            // A line that lies within this chunk is read where it is; one begun in an earlier
            // chunk is completed in the buffer first.
            if self.buf.is_empty() {
                self.line(&chunk[..end], &mut events);
            } else {
                self.buf.extend_from_slice(&chunk[..end]);
                let line = self.buf.split().freeze();
                self.line(&line, &mut events);
            }
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            chunk = &chunk[next..];
        }
        self.buf.extend_from_slice(chunk);
        if self.max_line > 0 && self.buf.len() > self.max_line {
            return Err(LineTooLong(self.max_line));
        }
        Ok(events)
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                let mut event = std::mem::take(&mut self.current);
                if event.data.ends_with('\n') {
                    event.data.pop();
                }
                events.push(event);
            } else {
                // An event with no data is not dispatched, but its id still counts.
                let id = self.current.id.take();
                self.current = Event {
                    id,
                    ..Event::default()
                };
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        // Checked as UTF-8 first, which is quicker than the lossy reading when it is.
        let value = match std::str::from_utf8(value) {
            Ok(v) => std::borrow::Cow::Borrowed(v),
            Err(_) => String::from_utf8_lossy(value),
        };
        match field {
            b"data" => {
                // Room for the line end too, so that it does not grow the text a second time.
                self.current.data.reserve(value.len() + 1);
                self.current.data.push_str(&value);
                self.current.data.push('\n');
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => self.current.id = Some(value.into_owned()),
            b"event" => self.current.event = Some(value.into_owned()),
            b"retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::new(1 << 20);
        chunks.iter().flat_map(|c| d.push(c).unwrap()).collect()
    }

    #[test]
    fn decodes_what_it_encodes() {
        let bytes = encode(Some("7"), br#"{"a":1}"#);
        let events = decode_all(&[&bytes]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, r#"{"a":1}"#);
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[0].event.as_deref(), Some("message"));
    }

    /// The data of the events `text` decodes to, cut into two chunks at every byte in turn.
    fn data_cut_everywhere(text: &[u8]) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
        (0..text.len()).map(|split| {
            let (x, y) = text.split_at(split);
            let data = decode_all(&[x, y]).into_iter().map(|e| e.data).collect();
            (split, data)
        })
    }

    #[test]
    fn handles_every_line_ending_and_split_chunks() {
        let text = b"data: a\r\ndata: b\r\rdata:c\n\n: comment\n\nid: 9\n\n";
        for (split, data) in data_cut_everywhere(text) {
            assert_eq!(data, ["a\nb", "c"], "split at {split}");
        }
    }

    #[test]
    fn reads_text_that_is_not_utf8_with_replacement_characters_wherever_lines_are_cut() {
        let text = b"data: a\xffb\ndata: \xc3\xa9\n\n";
        for (split, data) in data_cut_everywhere(text) {
            assert_eq!(data, ["a\u{FFFD}b\n\u{e9}"], "split at {split}");
        }
    }

    #[test]
    fn bounds_line_length() {
        let mut d = Decoder::new(8);
        assert_eq!(d.push(b"data: 0123456789"), Err(LineTooLong(8)));
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_gives_the_same_events(payloads in proptest::collection::vec("[a-z{}\":,0-9 ]{0,40}", 1..5), cut in 0usize..400) {
            let mut stream = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                stream.extend_from_slice(&encode(Some(&i.to_string()), p.as_bytes()));
            }
            let cut = cut.min(stream.len());
            let events = decode_all(&[&stream[..cut], &stream[cut..]]);
            let datas: Vec<_> = events.iter().map(|e| e.data.clone()).collect();
            proptest::prop_assert_eq!(datas, payloads);
        }
    }
}
