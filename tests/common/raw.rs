//! Plain HTTP/1.1 spoken by hand over one TCP connection, for what an HTTP
//! library will not send (absolute-form targets, odd `Host` headers, broken
//! chunked bodies, two requests with one JSON-RPC id) and for reading a
//! response to its very end. Every read is bounded by `READ_LIMIT`.
//! `examples/loadgen.rs` measures a kept-alive connection with it too.

#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long any one response may take to arrive in full.
pub const READ_LIMIT: Duration = Duration::from_secs(20);
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct Raw {
    pub stream: BufReader<TcpStream>,
    pub addr: String,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The headers of a POST to `/mcp`, with a protocol session if given.
pub fn mcp_headers(session: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "Accept".to_string(),
            "application/json, text/event-stream".to_string(),
        ),
    ];
    if let Some(s) = session {
        headers.push(("Mcp-Session-Id".into(), s.into()));
        headers.push(("Mcp-Protocol-Version".into(), "2025-11-25".into()));
    }
    headers
}

/// The body of a `tools/call` request.
pub fn tool_call(id: u64, tool: &str, args: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
        .to_string()
}

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// One request on a connection of its own, its response read to the end;
/// `extra` headers beside `Host` and `Content-Length`.
pub async fn once(
    addr: &str,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Response {
    let headers: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Raw::connect(addr)
        .await
        .exchange(method, target, &headers, body)
        .await
}

impl Raw {
    pub async fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap();
        // As curl and most clients do: what is measured is the server's side.
        stream.set_nodelay(true).unwrap();
        Raw {
            stream: BufReader::new(stream),
            addr: addr.to_string(),
        }
    }

    /// Sends bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// Sends a request with `Host: addr` and a `Content-Length`, unless
    /// `headers` names either.
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &str,
    ) {
        let mut req = format!("{method} {target} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.addr));
        }
        if !headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        }) {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.send(req.as_bytes()).await;
    }

    /// `request`, then its response read to the end.
    pub async fn exchange(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Response {
        self.request(method, target, headers, body).await;
        self.response().await.unwrap()
    }

    /// A `tools/call` of `tool` with JSON-RPC id `id` on `session`, and its
    /// response read to the end.
    pub async fn call_tool(
        &mut self,
        session: &str,
        id: u64,
        tool: &str,
        args: serde_json::Value,
    ) -> Response {
        self.request(
            "POST",
            "/mcp",
            &mcp_headers(Some(session)),
            &tool_call(id, tool, args),
        )
        .await;
        self.response().await.unwrap()
    }

    /// Opens a protocol session on this connection; returns its id.
    pub async fn open_session(&mut self) -> String {
        let init = self
            .exchange("POST", "/mcp", &mcp_headers(None), INITIALIZE)
            .await;
        assert_eq!(init.status, 200, "initialize: {init:?}");
        let session = init
            .header("mcp-session-id")
            .expect("a session id")
            .to_string();
        let done = self
            .exchange(
                "POST",
                "/mcp",
                &mcp_headers(Some(&session)),
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            )
            .await;
        assert_eq!(done.status, 202, "notifications/initialized: {done:?}");
        session
    }

    /// The next response, read to its end (by length, chunks, or the
    /// connection closing), or an error if it does not end in time.
    pub async fn response(&mut self) -> Result<Response, String> {
        tokio::time::timeout(READ_LIMIT, self.read_response())
            .await
            .map_err(|_| format!("no complete response within {READ_LIMIT:?}"))?
    }

    async fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        let n = (&mut self.stream)
            .take(64 * 1024)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed".into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    async fn read_response(&mut self) -> Result<Response, String> {
        let status_line = self.line().await?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').ok_or("bad header line")?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
            if headers.len() > 100 {
                return Err("more than 100 headers".into());
            }
        }
        let mut response = Response {
            status,
            headers,
            body: String::new(),
        };
        let mut body = Vec::new();
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size_line = self.line().await?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| format!("bad chunk size {size_line:?}"))?;
                if size == 0 {
                    while !self.line().await?.is_empty() {}
                    break;
                }
                if body.len() + size > MAX_BODY {
                    return Err("body too large".into());
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.stream
                    .read_exact(&mut body[start..])
                    .await
                    .map_err(|e| e.to_string())?;
                self.line().await?;
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().map_err(|_| "bad content-length")?;
            if len > MAX_BODY {
                return Err("body too large".into());
            }
            body.resize(len, 0);
            self.stream
                .read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
        } else if status != 204 && status != 304 {
            (&mut self.stream)
                .take(MAX_BODY as u64)
                .read_to_end(&mut body)
                .await
                .map_err(|e| e.to_string())?;
        }
        response.body = String::from_utf8_lossy(&body).into_owned();
        Ok(response)
    }

    /// Returns true if and only if the server closes the connection (end
    /// of file or a reset) before `READ_LIMIT`, after any bytes it sends.
    pub async fn closed_by_server(&mut self) -> bool {
        let mut sink = Vec::new();
        match tokio::time::timeout(
            READ_LIMIT,
            (&mut self.stream)
                .take(MAX_BODY as u64)
                .read_to_end(&mut sink),
        )
        .await
        {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Err(_) => false,
        }
    }
}
