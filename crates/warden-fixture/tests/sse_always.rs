//! `--sse-always`: every legacy request is answered as a chunked `text/event-stream` of one
//! event, as the official SDK's servers do; and the listener counts the TCP connections it
//! accepted. Driven over one explicit HTTP/1.1 connection, so the count is exact.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use warden_fixture::Options;
use warden_mcp::sse::Decoder;

/// One kept-alive HTTP/1.1 connection to the fixture.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    session: Option<String>,
}

/// What came back for one POST.
struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The events' messages of an SSE body.
    fn events(&self) -> Vec<Value> {
        let mut decoder = Decoder::new(1 << 20);
        decoder
            .push(&self.body)
            .unwrap()
            .into_iter()
            .filter(|e| !e.data.is_empty())
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    }

    /// The one message of an answer that must be an SSE stream of exactly one event.
    fn only_event(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK);
        assert_eq!(self.header("content-type"), Some("text/event-stream"));
        assert_eq!(self.header("transfer-encoding"), Some("chunked"));
        assert!(self.header("content-length").is_none());
        let mut events = self.events();
        assert_eq!(events.len(), 1, "{:?}", String::from_utf8_lossy(&self.body));
        events.remove(0)
    }
}

impl Connection {
    async fn open(url: &str) -> Connection {
        let host = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix("/mcp"))
            .unwrap()
            .to_string();
        let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(connection);
        Connection {
            sender,
            host,
            session: None,
        }
    }

    async fn post(&mut self, body: Value) -> Answer {
        let mut request = Request::post("/mcp")
            .header("host", &self.host)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(session) = &self.session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let answer = async {
            self.sender.ready().await.unwrap();
            let response = self.sender.send_request(request).await.unwrap();
            let (parts, body) = response.into_parts();
            Answer {
                status: parts.status,
                headers: parts.headers,
                body: body.collect().await.unwrap().to_bytes(),
            }
        };
        tokio::time::timeout(PATIENCE, answer).await.unwrap()
    }

    /// `initialize` and `notifications/initialized`; returns the initialize answer.
    async fn open_session(&mut self) -> Answer {
        let init = self
            .post(
                json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "fixture-tests", "version": "0" } } }),
            )
            .await;
        self.session = Some(init.header("mcp-session-id").unwrap().to_string());
        let initialized = self
            .post(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        assert_eq!(initialized.status, StatusCode::ACCEPTED);
        assert!(initialized.body.is_empty());
        init
    }

    async fn stats(&mut self, id: u64) -> Answer {
        self.post(
            json!({ "jsonrpc": "2.0", "id": id, "method": "resources/read",
            "params": { "uri": "fixture://stats" } }),
        )
        .await
    }
}

fn echo(id: u64) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "echo", "arguments": { "text": format!("call {id}") } } })
}

fn counters(read: &Value) -> Value {
    serde_json::from_str(read["result"]["contents"][0]["text"].as_str().unwrap()).unwrap()
}

const CALLS: u64 = 5;

#[tokio::test]
async fn every_legacy_request_is_one_sse_event_on_one_kept_alive_connection() {
    let url = start_with(Options {
        sse_always: true,
        ..Options::default()
    })
    .await;
    let mut conn = Connection::open(&url).await;
    let init = conn.open_session().await.only_event();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    for id in 1..=CALLS {
        let reply = conn.post(echo(id)).await.only_event();
        assert_eq!(reply["id"], id);
        assert_eq!(reply["result"]["content"][0]["text"], format!("call {id}"));
    }
    let stats = counters(&conn.stats(100).await.only_event());
    assert_eq!(stats["toolCalls"], CALLS);
    assert_eq!(stats["connections"], 1, "{stats}");

    let mut second = Connection::open(&url).await;
    second.session = conn.session.clone();
    let stats = counters(&second.stats(101).await.only_event());
    assert_eq!(stats["connections"], 2, "{stats}");
}

#[tokio::test]
async fn without_the_option_a_plain_call_is_json_and_still_counted() {
    let url = start().await;
    let mut conn = Connection::open(&url).await;
    let init = conn.open_session().await;
    assert_eq!(init.header("content-type"), Some("application/json"));
    let reply = conn.post(echo(1)).await;
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let stats = conn.stats(2).await;
    let read: Value = serde_json::from_slice(&stats.body).unwrap();
    assert_eq!(counters(&read)["connections"], 1);
}
