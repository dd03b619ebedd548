//! Request bodies are read here, whole, before any route sees them: within
//! a deadline (a client that stops sending mid-body gets 408 and its
//! connection closes), at most `MAX_BODY_BYTES` (413), and a body that is
//! not valid HTTP framing, such as a malformed chunk, is the client's
//! fault (400), not a server error.
//!
//! rmcp reads the whole body before parsing it anyway, so buffering here
//! costs nothing extra; it lets every body error get its own status
//! instead of rmcp's 500 for any read failure. Responses are not touched:
//! an SSE stream or a long lock wait runs as long as it needs.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The largest request body accepted, rmcp's own limit for `/mcp`.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Reads the body of `request` whole, or answers the client.
// The error is the response to send, which is large by nature.
#[allow(clippy::result_large_err)]
pub async fn read_whole(request: Request, timeout: Duration) -> Result<(Parts, Bytes), Response> {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect());
    let bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("payload too large: the request body is over {MAX_BODY_BYTES} bytes\n"),
            ));
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, path = %parts.uri.path(), "a malformed request body");
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad request: the request body could not be read ({e}); send it with a valid Content-Length or chunked encoding\n"
                ),
            ));
        }
        Err(_) => {
            tracing::warn!(path = %parts.uri.path(), timeout_s = timeout.as_secs_f64(), "a request body did not arrive in time");
            return Err(refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request timeout: the request body did not arrive within {} ms\n",
                    timeout.as_millis()
                ),
            ));
        }
    };
    Ok((parts, bytes))
}

/// A refusal after which the connection closes: what is left of the body
/// on the wire cannot be told from the next request.
fn refuse(status: StatusCode, message: String) -> Response {
    (status, [(header::CONNECTION, "close")], message).into_response()
}
