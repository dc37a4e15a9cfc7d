//! Newline-delimited JSON-RPC over a byte stream (stdin/stdout for the binary), both eras.
//!
//! Each message picks its era: one whose `_meta` names a version is served statelessly
//! (modern), anything else by the connection's legacy state (set by `initialize`). Every
//! request runs on its own task, so a call waiting for the client never blocks the others;
//! `notifications/cancelled` stops one. Nothing but protocol messages is ever written out.
//! When the input ends, calls still running get a short grace period, then the server stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use warden_mcp::era::{self, Era};
use warden_mcp::{Id, Kind, Message, RpcError, codes};

use crate::conversation::Conversation;
use crate::exchange::{Exchange, Outbox};
use crate::state::{Change, Fixture};
use crate::{dispatch, envelope, listen};

/// How long calls still running when the input ends may take to answer.
const GRACE: Duration = Duration::from_millis(500);

/// Serves one connection until `input` ends.
pub(crate) async fn serve<R, W>(fx: Arc<Fixture>, input: R, output: W) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (outbox, written) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_out(written, output));
    let conn = Connection {
        fx: fx.clone(),
        conversation: Arc::new(Conversation::default()),
        outbox,
        calls: JoinSet::new(),
        listeners: JoinSet::new(),
    };
    let announcer = tokio::spawn(announce(
        fx.subscribe(),
        conn.conversation.clone(),
        conn.outbox.clone(),
    ));
    let mut conn = conn;
    let mut input = BufReader::new(input);
    let mut line = Vec::with_capacity(4096);
    loop {
        tokio::select! {
            Some(_) = conn.calls.join_next(), if !conn.calls.is_empty() => {}
            Some(_) = conn.listeners.join_next(), if !conn.listeners.is_empty() => {}
            // `read_until` keeps partial input in `line` if another branch wins, so no
            // byte is lost: the line is only cleared once it is complete.
            read = input.read_until(b'\n', &mut line) => {
                if read? == 0 {
                    break;
                }
                conn.receive(&line);
                line.clear();
            }
        }
    }
    announcer.abort();
    let _ = announcer.await;
    conn.finish().await;
    writer.await??;
    Ok(())
}

struct Connection {
    fx: Arc<Fixture>,
    conversation: Arc<Conversation>,
    outbox: Outbox,
    calls: JoinSet<()>,
    listeners: JoinSet<()>,
}

impl Connection {
    fn send(&self, msg: Message) {
        // Fails only once the writer stopped (stdout closed); then nobody can hear us anyway.
        let _ = self.outbox.send(msg);
    }

    fn receive(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let msg = match Message::parse(line) {
            Ok(msg) => msg,
            Err(e) => {
                return self.send(Message::error(
                    None,
                    &RpcError::new(e.code(), e.to_string()),
                ));
            }
        };
        match msg.kind() {
            Kind::Response | Kind::Error => {
                self.conversation.deliver(msg);
            }
            Kind::Notification => {
                if msg.method() == Some("notifications/cancelled") {
                    self.conversation.cancel(msg.params());
                }
            }
            Kind::Request => self.request(msg),
        }
    }

    fn request(&mut self, msg: Message) {
        // Requests always carry an id: `Message::parse` classified this one by it.
        let id = msg.id().unwrap_or(Id::Int(0));
        let ex = match era::detect(None, &msg) {
            Era::Legacy => Exchange::legacy(&msg, self.conversation.clone(), self.outbox.clone()),
            Era::Modern => {
                let method = msg.method().unwrap_or_default();
                let checked = envelope::check_meta(&msg).and_then(envelope::check_version);
                let checked = checked.and_then(|()| {
                    if dispatch::modern_method_exists(method) {
                        Ok(())
                    } else {
                        Err(RpcError::new(
                            codes::METHOD_NOT_FOUND,
                            format!("Method not found: {method}"),
                        ))
                    }
                });
                let ex = checked.and_then(|()| Exchange::modern(&msg, self.outbox.clone()));
                match ex {
                    Ok(_) if method == "subscriptions/listen" => {
                        let task = listen_task(
                            self.fx.clone(),
                            self.conversation.clone(),
                            msg,
                            self.outbox.clone(),
                        );
                        self.listeners.spawn(task);
                        return;
                    }
                    Ok(ex) => ex,
                    Err(e) => return self.send(Message::error(Some(&id), &e)),
                }
            }
        };
        let (fx, conversation, outbox) = (
            self.fx.clone(),
            self.conversation.clone(),
            self.outbox.clone(),
        );
        self.calls.spawn(async move {
            let (_running, cancelled) = conversation.start_call(id);
            tokio::select! {
                biased;
                _ = cancelled.cancelled() => {}
                response = dispatch::respond(&fx, &msg, &ex) => {
                    let _ = outbox.send(response);
                }
            }
        });
    }

    /// The input ended: listeners stop at once, calls get a grace period.
    async fn finish(mut self) {
        self.listeners.abort_all();
        let drain = async { while self.calls.join_next().await.is_some() {} };
        if tokio::time::timeout(GRACE, drain).await.is_err() {
            self.calls.abort_all();
            while self.calls.join_next().await.is_some() {}
        }
        while self.listeners.join_next().await.is_some() {}
    }
}

/// A modern `subscriptions/listen` on stdio: the acknowledgement, then tagged change
/// notifications, until `notifications/cancelled` names it or the input ends.
async fn listen_task(
    fx: Arc<Fixture>,
    conversation: Arc<Conversation>,
    msg: Message,
    outbox: Outbox,
) {
    let mut changes = fx.subscribe();
    let id = msg.id().unwrap_or(Id::Int(0));
    let (opening, render) = match listen::subscription(&msg) {
        Ok(s) => s,
        Err(e) => {
            let _ = outbox.send(Message::error(Some(&id), &e));
            return;
        }
    };
    let (_running, cancelled) = conversation.start_call(id);
    let _ = outbox.send(opening);
    loop {
        tokio::select! {
            biased;
            _ = cancelled.cancelled() => return,
            change = changes.recv() => match change {
                Ok(change) => {
                    if let Some(msg) = render(change) {
                        let _ = outbox.send(msg);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Legacy clients hear about list changes unasked, once they have initialized.
async fn announce(
    mut changes: broadcast::Receiver<Change>,
    conversation: Arc<Conversation>,
    outbox: Outbox,
) {
    loop {
        match changes.recv().await {
            Ok(Change::ToolsListChanged) if conversation.is_initialized() => {
                let note = Message::notification(
                    "notifications/tools/list_changed",
                    serde_json::json!({}),
                );
                if outbox.send(note).is_err() {
                    return;
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Writes each message as one line, batching whatever is queued into one write.
async fn write_out<W: AsyncWrite + Unpin>(
    mut messages: mpsc::UnboundedReceiver<Message>,
    mut out: W,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8192);
    while let Some(msg) = messages.recv().await {
        append(&mut buf, &msg);
        while let Ok(msg) = messages.try_recv() {
            append(&mut buf, &msg);
        }
        out.write_all(&buf).await?;
        out.flush().await?;
        buf.clear();
    }
    Ok(())
}

fn append(buf: &mut Vec<u8>, msg: &Message) {
    // Compact output has no newlines.
    buf.extend_from_slice(&msg.to_bytes());
    buf.push(b'\n');
}
