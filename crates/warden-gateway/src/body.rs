//! A request's or reply's body read whole, within a limit.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

/// Why a body was not read whole.
#[derive(Debug)]
pub enum Unread<E> {
    /// It held more than the limit.
    TooLarge,
    /// Reading it failed (the connection broke, the framing was wrong, …).
    Failed(E),
}

/// Reads `body` to its end, at most `max` bytes of data (trailers are ignored). A body that
/// comes in one piece, as most requests and replies here do, is returned as that piece:
/// `http_body_util`'s `collect` keeps a list of pieces, allocated for the first one.
pub async fn read_whole<B>(mut body: B, max: usize) -> Result<Bytes, Unread<B::Error>>
where
    B: Body<Data = Bytes> + Unpin,
{
    let (mut first, mut joined) = (Bytes::new(), None::<BytesMut>);
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Unread::Failed)?.into_data() else {
            continue;
        };
        len = len.saturating_add(data.len());
        if len > max {
            return Err(Unread::TooLarge);
        }
        match &mut joined {
            Some(all) => all.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None if data.is_empty() => {}
            None => {
                let mut all = BytesMut::with_capacity(len);
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::stream;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    use super::*;

    fn body(
        pieces: &[&'static str],
    ) -> StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Unpin> {
        let mut frames: Vec<_> = pieces
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        frames.push(Ok(Frame::trailers(http::HeaderMap::new())));
        StreamBody::new(stream::iter(frames))
    }

    async fn read(pieces: &[&'static str], max: usize) -> Result<Bytes, ()> {
        read_whole(body(pieces), max).await.map_err(|e| match e {
            Unread::TooLarge => (),
            Unread::Failed(never) => match never {},
        })
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_piece_or_many_within_its_limit() {
        assert_eq!(read(&[], 8).await, Ok(Bytes::new()));
        assert_eq!(read(&["", ""], 8).await, Ok(Bytes::new()));
        assert_eq!(read(&["{\"a\":1}"], 8).await, Ok(Bytes::from("{\"a\":1}")));
        assert_eq!(
            read(&["", "{\"a\"", "", ":1}"], 8).await,
            Ok(Bytes::from("{\"a\":1}"))
        );
        assert_eq!(
            read(&["ab", "cd", "ef", "gh"], 8).await,
            Ok(Bytes::from("abcdefgh"))
        );
        assert_eq!(read(&["abcdefghi"], 8).await, Err(()));
        assert_eq!(read(&["abcd", "efgh", "i"], 8).await, Err(()));
    }

    #[tokio::test]
    async fn a_body_in_one_piece_is_not_copied() {
        let piece = Bytes::from(vec![b'x'; 100]);
        let one = StreamBody::new(stream::iter([Ok::<_, Infallible>(Frame::data(
            piece.clone(),
        ))]));
        let read = read_whole(one, 100).await.ok().unwrap_or_default();
        assert_eq!(read.as_ptr(), piece.as_ptr());
    }
}
