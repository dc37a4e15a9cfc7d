//! The HTTP/1.1 client Warden uses towards Streamable HTTP upstreams: a small pool of kept-alive
//! connections to one origin, with TLS (rustls, the platform's trust store) for `https`.
//!
//! A connection is driven by the task that uses it, not by a task of its own: the request, the
//! reply's headers and every chunk of its body are read in the caller's task, and a connection
//! goes back to the pool only once its reply has been read to the end. On this path a hand-off
//! between tasks costs more than the work itself (see `docs/benchmarks.md`), and dropping a reply
//! half-read closes its connection, which is how an HTTP upstream learns a call was cancelled.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle connection older than this is closed rather than reused: servers close theirs after a
/// while, and a request sent just as that happens is lost ("connection closed before message
/// completed"). Node's HTTP server (under the official TypeScript SDK) and uvicorn (under Python's
/// SDK) close a connection idle for 5 s, so a second less leaves room for the race.
const IDLE_FOR: Duration = Duration::from_secs(4);
const MAX_IDLE: usize = 64;

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

/// Where requests go: scheme, host and port of one upstream URL, and its path.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as configured.
    url: String,
    host: String,
    port: u16,
    tls: bool,
    authority: HeaderValue,
    path: Uri,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err("the url must start with http:// or https://".into()),
        };
        let authority = uri.authority().ok_or("the url has no host")?;
        if authority.as_str().contains('@') {
            // It would travel in the Host header; credentials belong in `headers`.
            return Err("user names and passwords in the url are not supported: put credentials in the upstream's headers".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e| format!("{e}"))?;
        Ok(Target {
            url: url.to_string(),
            host: host.to_string(),
            port,
            tls,
            authority: HeaderValue::from_str(authority.as_str()).map_err(|e| format!("{e}"))?,
            path,
        })
    }

    /// The URL as configured.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// A request to the target's URL with `headers` (and `Host`).
    pub fn request(
        &self,
        method: Method,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        headers.insert(HOST, self.host_header());
        self.request_as(method, headers, body)
    }

    /// The `Host` header of a request to the target.
    pub fn host_header(&self) -> HeaderValue {
        self.authority.clone()
    }

    /// A request to the target's URL with `headers` as they are: they hold `Host` already
    /// ([`Target::host_header`]).
    pub fn request_as(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = headers;
        req
    }
}

/// Kept-alive connections to one target.
pub struct Client {
    target: Target,
    /// Idle connections per serving thread ([`crate::server::shard`]): a connection is reused
    /// only by the thread whose event loop registered its socket, so that its readiness never
    /// has to wake another thread.
    idle: [Idle; crate::server::MAX_SHARDS],
}

/// Idle connections, each with the time it became idle.
type Idle = Mutex<Vec<(Box<Conn>, Instant)>>;

/// One connection. It is boxed once, when opened: a call moves it out of the pool, into its
/// reply and back, and with hyper's connection state it is about 700 bytes.
struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    drive: http1::Connection<TokioIo<Io>, Full<Bytes>>,
    wakes: Arc<InTask>,
}

/// The waker a connection and its futures are polled with. Driving the connection in the
/// caller's task means the connection wakes that very task while it runs: queueing a request
/// wakes the connection, a reply read from the socket wakes the response future and the body.
/// Tokio treats a task woken during its own poll as yielding: it is requeued and another
/// worker thread is woken to take it (an eventfd or futex wake and a thread hand-off, about a
/// third of what a call costs at low load). Wakes that come while the task is polling are
/// absorbed here and answered by polling again at once; wakes from elsewhere (the socket, from
/// the I/O driver) go to the task's own waker.
struct InTask {
    task: Mutex<Waker>,
    /// [`IDLE`], [`POLLING`] or [`WOKEN`]: one atomic, so that a wake from another thread and
    /// the end of a poll cannot miss each other.
    state: AtomicU8,
}

/// Nobody is polling: a wake goes to the task.
const IDLE: u8 = 0;
/// The task is polling the connection's futures.
const POLLING: u8 = 1;
/// Woken while polling: the poll goes round once more.
const WOKEN: u8 = 2;

/// Polls a connection's futures this many times in a row at most before letting the runtime
/// schedule the task again (a future that wakes itself on every poll must not spin here).
const MAX_REPOLLS: usize = 16;

impl Wake for InTask {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let noted =
            self.state
                .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire);
        // Not polling (IDLE): wake the task. Already noted (WOKEN): nothing to do.
        if noted == Err(IDLE) {
            self.task
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .wake_by_ref();
        }
    }
}

impl InTask {
    fn new() -> Arc<InTask> {
        Arc::new(InTask {
            task: Mutex::new(Waker::noop().clone()),
            state: AtomicU8::new(IDLE),
        })
    }

    /// Polls `f` with the absorbing waker on behalf of the task of `cx`.
    fn poll<T>(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        {
            let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.will_wake(cx.waker()) {
                task.clone_from(cx.waker());
            }
        }
        let waker = Waker::from(self.clone());
        let mut inner = Context::from_waker(&waker);
        for _ in 0..MAX_REPOLLS {
            self.state.store(POLLING, Ordering::Release);
            let out = f(&mut inner);
            // Back to IDLE unless a wake came meanwhile; a later wake then goes to the task.
            let ended =
                self.state
                    .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire);
            if out.is_ready() {
                self.state.store(IDLE, Ordering::Release);
                return out;
            }
            if ended.is_ok() {
                return Poll::Pending;
            }
            // Woken while polling (by the connection itself): poll again rather than yield.
        }
        self.state.store(IDLE, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(target: Target) -> Arc<Client> {
        Arc::new(Client {
            target,
            idle: std::array::from_fn(|_| Mutex::new(Vec::new())),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends `req` and returns the reply once its headers are in; its body drives the
    /// connection from then on. A kept-alive connection that turns out to be closed is replaced
    /// by a new one, as long as the request was not written to it.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<Reply>, ClientError> {
        loop {
            let (mut conn, reused) = match self.checkout().await {
                Some(conn) => (conn, true),
                None => (Box::pin(self.connect()).await?, false),
            };
            let sent = conn.send.try_send_request(req);
            match drive_until(&mut conn, sent).await {
                Ok(Ok(response)) => {
                    let (parts, body) = response.into_parts();
                    let reply = Reply {
                        body,
                        conn: Some(conn),
                        client: self.clone(),
                    };
                    return Ok(Response::from_parts(parts, reply));
                }
                Ok(Err(mut e)) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `req` and reads its whole reply (at most `max` bytes of body), all within `limit`.
    /// The body is an error of its own when it could not be read to the end.
    pub async fn fetch(
        self: &Arc<Self>,
        req: Request<Full<Bytes>>,
        max: usize,
        limit: Duration,
    ) -> Result<Response<Result<Bytes, String>>, ClientError> {
        let read = async {
            let (parts, body) = self.send(req).await?.into_parts();
            Ok(Response::from_parts(parts, body.bytes(max).await))
        };
        tokio::time::timeout(limit, read)
            .await
            .unwrap_or(Err(ClientError::Timeout(limit)))
    }

    /// An idle connection that is still open and ready for a request.
    async fn checkout(&self) -> Option<Box<Conn>> {
        loop {
            let (mut conn, since) = self.idle_here().pop()?;
            if since.elapsed() > IDLE_FOR {
                continue;
            }
            let wakes = conn.wakes.clone();
            let ready = poll_fn(|cx| {
                wakes.poll(cx, |cx| {
                    if Pin::new(&mut conn.drive).poll(cx).is_ready() {
                        return Poll::Ready(false);
                    }
                    conn.send.poll_ready(cx).map(|r| r.is_ok())
                })
            });
            if ready.await {
                return Some(conn);
            }
        }
    }

    /// This thread's idle connections.
    fn idle_here(&self) -> std::sync::MutexGuard<'_, Vec<(Box<Conn>, Instant)>> {
        self.idle[crate::server::shard()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn checkin(&self, conn: Box<Conn>) {
        let mut idle = self.idle_here();
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Box<Conn>, ClientError> {
        let t = &self.target;
        let failed = |e: String| ClientError::Connect(format!("{}:{}", t.host, t.port), e);
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((t.host.as_str(), t.port)),
        )
        .await
        .map_err(|_| failed(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| failed(e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
        let io = if t.tls {
            Io::Tls(Box::new(tls_handshake(&t.host, tcp).await?))
        } else {
            Io::Plain(tcp)
        };
        let (send, drive) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(Box::new(Conn {
            send,
            drive,
            wakes: InTask::new(),
        }))
    }
}

/// Polls `fut` while driving the connection it needs. Ends with an error if the connection ends
/// first.
async fn drive_until<F: Future>(conn: &mut Conn, fut: F) -> Result<F::Output, ClientError> {
    let mut fut = std::pin::pin!(fut);
    let mut closed = false;
    let (drive, wakes) = (&mut conn.drive, conn.wakes.clone());
    poll_fn(|cx| {
        wakes.poll(cx, |cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            if closed {
                return Poll::Pending;
            }
            let ended = match Pin::new(&mut *drive).poll(cx) {
                Poll::Ready(r) => {
                    closed = true;
                    r.err()
                }
                Poll::Pending => None,
            };
            // The connection may have completed the future while it was polled; when it failed, the
            // future's own answer says whether the request was written.
            match (fut.as_mut().poll(cx), ended) {
                (Poll::Ready(out), _) => Poll::Ready(Ok(out)),
                (Poll::Pending, Some(e)) => Poll::Ready(Err(e.into())),
                (Poll::Pending, None) => Poll::Pending,
            }
        })
    })
    .await
}

/// The body of an upstream reply. Reading it drives its connection; read to the end, the
/// connection goes back to the pool, dropped before that, it is closed.
pub struct Reply {
    body: Incoming,
    conn: Option<Box<Conn>>,
    client: Arc<Client>,
}

impl Reply {
    /// The whole body, at most `max` bytes.
    pub async fn bytes(self, max: usize) -> Result<Bytes, String> {
        crate::body::read_whole(self, max)
            .await
            .map_err(|e| match e {
                crate::body::Unread::TooLarge => format!("the reply is over {max} bytes"),
                crate::body::Unread::Failed(e) => e.to_string(),
            })
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(wakes) = this.conn.as_ref().map(|c| c.wakes.clone()) else {
            return Pin::new(&mut this.body).poll_frame(cx);
        };
        let frame = wakes.poll(cx, |cx| {
            let frame = Pin::new(&mut this.body).poll_frame(cx);
            if frame.is_ready() {
                return frame;
            }
            let Some(conn) = this.conn.as_mut() else {
                return frame;
            };
            // Reading the socket is what feeds the body.
            if Pin::new(&mut conn.drive).poll(cx).is_ready() {
                this.conn = None;
            }
            Pin::new(&mut this.body).poll_frame(cx)
        });
        if let Poll::Ready(None) = frame
            && let Some(conn) = this.conn.take()
        {
            this.client.checkin(conn);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A plain or TLS connection.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// TLS 1.2/1.3 with the aws-lc-rs provider, verified against the platform's trust store
/// (extra roots through `SSL_CERT_FILE`, as for any program on the machine).
async fn tls_handshake(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let failed = |e: String| ClientError::Tls(host.to_string(), e);
    let config = CONFIG
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_platform_verifier()
                .map_err(|e| e.to_string())?
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(failed)?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| failed(e.to_string()))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| failed(e.to_string()))
}

/// The next piece of `reply`'s body; `None` at its end.
pub async fn next_chunk(reply: &mut Reply) -> Option<Result<Bytes, String>> {
    loop {
        match reply.frame().await? {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_host_port_scheme_and_path() {
        let t = Target::parse("http://127.0.0.1:9000/mcp?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 9000, false));
        assert_eq!(t.path, "/mcp?x=1");
        assert_eq!(t.authority, "127.0.0.1:9000");
        let t = Target::parse("https://mcp.example.com").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("mcp.example.com", 443, true)
        );
        assert_eq!(t.path, "/");
        let t = Target::parse("http://[::1]/mcp").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(t.authority, "[::1]");
    }

    #[test]
    fn unusable_urls_are_refused_with_a_reason() {
        for (url, why) in [
            ("ftp://host/mcp", "http://"),
            ("http:///mcp", ""),
            ("/mcp", "http://"),
            ("http://user:secret@host/mcp", "credentials"),
        ] {
            let e = Target::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
