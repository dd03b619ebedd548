//! Newline-delimited JSON-RPC over a byte stream: `cograph stdio
//! --standalone` on stdin/stdout and every session on the hub's socket.
//!
//! It replaces rmcp's async-rw transport for one reason: that transport
//! drops a line that is not JSON (or not UTF-8, or nested too deep) without
//! an answer, so a client waits forever for a reply that never comes. Here
//! such a line gets a JSON-RPC parse error (-32700, id null), a JSON value
//! that is no JSON-RPC message gets invalid request (-32600), and the
//! session keeps serving the next line. Lines are bounded (16 MiB, as in
//! rmcp); a longer one is discarded up to its newline and answered with a
//! parse error. What a message means is rmcp's business, not this file's.

use std::future::Future;
use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::requests;

/// The longest line accepted, as rmcp's stdio transport has it.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// One MCP session's transport over a reader and a writer.
pub struct LineTransport<R, W> {
    read: BufReader<R>,
    /// The line read so far. It lives here, not in `receive`, because rmcp
    /// polls `receive` inside a `select!` and may drop it mid-line; the
    /// next call goes on with the same line.
    line: Vec<u8>,
    /// Set while skipping the rest of an over-long line.
    discarding: bool,
    /// Shared by concurrent sends. A tokio mutex: it is held across the
    /// write's `.await`, so that two messages never interleave.
    write: Arc<tokio::sync::Mutex<W>>,
}

enum LineRead {
    Line,
    Oversized,
    Eof,
}

/// What to do with one line.
enum Decoded {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Answer with these bytes (an error response) and read on.
    Answer(Vec<u8>),
    /// Nothing to do (an empty line, a notification rmcp has no use for).
    Skip,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    pub fn new(read: R, write: W) -> Self {
        LineTransport {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            write: Arc::new(tokio::sync::Mutex::new(write)),
        }
    }

    /// Reads up to and including the next newline into `self.line`,
    /// never holding more than `MAX_LINE` bytes of it.
    async fn read_line(&mut self) -> std::io::Result<LineRead> {
        loop {
            let buf = self.read.fill_buf().await?;
            if buf.is_empty() {
                // A trailing line without its newline is incomplete: like
                // rmcp, deliver nothing.
                return Ok(LineRead::Eof);
            }
            let (n, complete) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if !self.discarding {
                if self.line.len() + n > MAX_LINE + 1 {
                    self.discarding = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(&buf[..n]);
                }
            }
            self.read.consume(n);
            if complete {
                return Ok(if std::mem::take(&mut self.discarding) {
                    LineRead::Oversized
                } else {
                    LineRead::Line
                });
            }
        }
    }

    /// Sends an error response on its own task, so that a `receive` that
    /// rmcp drops half-way cannot cut the answer short.
    fn answer(&self, bytes: Vec<u8>) {
        let write = self.write.clone();
        tokio::spawn(async move {
            if let Err(e) = write_line(&write, &bytes).await {
                tracing::debug!(error = %e, "could not answer a malformed line");
            }
        });
    }
}

async fn write_line<W: AsyncWrite + Unpin>(
    write: &tokio::sync::Mutex<W>,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut write = write.lock().await;
    write.write_all(bytes).await?;
    write.flush().await
}

/// Decides what one line (without its newline) is.
fn decode(line: &[u8]) -> Decoded {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Skip;
    }
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(e) => {
            return Decoded::Answer(requests::parse_error_line(&format!(
                "the line is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )));
        }
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            return Decoded::Answer(requests::parse_error_line(
                "the JSON is nested more than 128 levels deep",
            ));
        }
        Err(e) => {
            return Decoded::Answer(requests::parse_error_line(&format!(
                "the line is not valid JSON ({e})"
            )));
        }
    };
    if !value.is_object() {
        return Decoded::Answer(requests::invalid_request_line(
            &value,
            "expected one JSON-RPC message (an object) per line",
        ));
    }
    if let Some(error) = requests::check_raw(&value) {
        return Decoded::Answer(requests::error_response_line(&value, &error));
    }
    let has_id = value.get("id").is_some();
    let shape = value.clone();
    match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(value) {
        Ok(message) => Decoded::Message(Box::new(message)),
        // A notification gets no answer, even a malformed one (JSON-RPC 2.0).
        Err(_) if !has_id => Decoded::Skip,
        Err(e) => Decoded::Answer(requests::invalid_request_line(&shape, &e.to_string())),
    }
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        let bytes = serde_json::to_vec(&item).map(|mut bytes| {
            bytes.push(b'\n');
            bytes
        });
        async move { write_line(&write, &bytes?).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.read_line().await {
                Ok(LineRead::Line) => {}
                Ok(LineRead::Oversized) => {
                    self.answer(requests::parse_error_line(&format!(
                        "the line is longer than {} MiB",
                        MAX_LINE / (1024 * 1024)
                    )));
                    continue;
                }
                Ok(LineRead::Eof) => return None,
                Err(e) => {
                    tracing::debug!(error = %e, "reading a session's input failed");
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            match decode(line.strip_suffix(b"\n").unwrap_or(&line)) {
                Decoded::Message(message) => return Some(*message),
                Decoded::Answer(bytes) => self.answer(bytes),
                Decoded::Skip => {}
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.write.lock().await.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(line: &[u8]) -> Value {
        match decode(line) {
            Decoded::Answer(bytes) => serde_json::from_slice(&bytes).unwrap(),
            Decoded::Message(_) => panic!("decoded as a message"),
            Decoded::Skip => panic!("skipped"),
        }
    }

    #[test]
    fn not_json_is_a_parse_error_with_id_null() {
        let a = answer(b"not json");
        assert_eq!(a["error"]["code"], -32700);
        assert_eq!(a["id"], Value::Null);
    }

    #[test]
    fn too_deep_is_a_parse_error_saying_so() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let a = answer(deep.as_bytes());
        assert!(
            a["error"]["message"]
                .as_str()
                .unwrap()
                .contains("128 levels")
        );
    }

    #[test]
    fn a_request_of_no_known_shape_is_invalid_request_under_its_id() {
        let a = answer(br#"{"jsonrpc":"2.0","id":7}"#);
        assert_eq!(a["error"]["code"], -32600);
        assert_eq!(a["id"], 7);
    }

    #[test]
    fn empty_lines_are_skipped() {
        assert!(matches!(decode(b"  \r"), Decoded::Skip));
    }
}
