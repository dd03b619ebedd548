//! `cograph status --watch`: the page's essentials, live in a terminal, for
//! an operator on ssh. Follows the hub's `GET /api/stream` (the page's
//! server-sent events) and redraws on each document, and once a second so
//! that lease time left and ages move. On a terminal each frame replaces
//! the last; piped, frames follow one another, each ending with a line
//! `--`.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use serde_json::Value;

/// Follows the hub at `addr` until it goes or the user interrupts.
pub fn watch(addr: &str, token: Option<&str>) -> anyhow::Result<()> {
    let mut reader = open(addr, token)?;
    let (tx, rx) = mpsc::channel::<anyhow::Result<Value>>();
    std::thread::spawn(move || {
        loop {
            let frame = next_document(&mut reader);
            let end = frame.is_err();
            if tx.send(frame).is_err() || end {
                return;
            }
        }
    });
    let tty = std::io::stdout().is_terminal();
    let mut view: Option<(Value, SystemTime)> = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(v)) => view = Some((v, SystemTime::now())),
            Ok(Err(e)) => return Err(e),
            // Piped output redraws only on a change: a log of frames.
            Err(mpsc::RecvTimeoutError::Timeout) if !tty => continue,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the hub closed the stream"),
        }
        if let Some((v, at)) = &view {
            let elapsed = at.elapsed().unwrap_or_default();
            let mut out = std::io::stdout().lock();
            if tty {
                // Home, clear: each frame replaces the last.
                write!(out, "\x1b[H\x1b[2J")?;
            }
            write!(out, "{}", render(v, elapsed))?;
            if !tty {
                writeln!(out, "--")?;
            }
            out.flush()?;
        }
    }
}

fn open(addr: &str, token: Option<&str>) -> anyhow::Result<BufReader<std::net::TcpStream>> {
    let mut stream = std::net::TcpStream::connect(addr)
        .with_context(|| format!("cannot reach the hub at {addr}"))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{auth}\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let status = line(&mut reader)?;
    if !status.starts_with("HTTP/1.1 200") {
        bail!("the hub answered {status}");
    }
    let mut chunked = false;
    loop {
        let header = line(&mut reader)?;
        if header.is_empty() {
            break;
        }
        chunked |= header
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked");
    }
    if !chunked {
        bail!("the hub's stream is not chunked");
    }
    Ok(reader)
}

fn line(reader: &mut impl BufRead) -> anyhow::Result<String> {
    let mut s = String::new();
    if reader.read_line(&mut s)? == 0 {
        bail!("the hub closed the stream");
    }
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads chunks until a whole `view` event is in; returns its document.
fn next_document(reader: &mut BufReader<std::net::TcpStream>) -> anyhow::Result<Value> {
    let mut pending = String::new();
    loop {
        let size = usize::from_str_radix(line(reader)?.split(';').next().unwrap_or(""), 16)
            .context("a malformed chunk size")?;
        if size == 0 {
            bail!("the hub ended the stream");
        }
        let mut chunk = vec![0; size];
        reader.read_exact(&mut chunk)?;
        line(reader)?;
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let frame: String = pending.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for l in frame.lines() {
                if let Some(e) = l.strip_prefix("event: ") {
                    event = e;
                } else if let Some(d) = l.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            match event {
                "view" => return Ok(serde_json::from_str(&data)?),
                "problem" => bail!("the hub reports: {data}"),
                _ => {}
            }
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn seconds_until(rfc3339: &str, now: SystemTime) -> Option<i64> {
    let t = cograph::service::time::parse_rfc3339(rfc3339)?;
    Some(match t.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    })
}

fn span(s: i64) -> String {
    let s = s.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn claim(h: &Value) -> String {
    match h["permits"].as_u64() {
        Some(k) => format!("{k} permit{}", if k == 1 { "" } else { "s" }),
        None => str_of(h, "mode").to_string(),
    }
}

/// One frame: the header, agents, locks with holders and waiters, the
/// newest commits and events. `elapsed` is the time since the document
/// came, added to its clock.
pub fn render(v: &Value, elapsed: Duration) -> String {
    use std::fmt::Write;
    let empty = Vec::new();
    let list = |key: &str| v[key].as_array().unwrap_or(&empty);
    let now = cograph::service::time::parse_rfc3339(str_of(v, "now"))
        .unwrap_or_else(SystemTime::now)
        + elapsed;
    let mut o = String::new();
    let r = &v["rates"];
    let rate = |k: &str| r[k].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        o,
        "cograph  r{}  {} agents  {} locked   per min: {:.1} commits, {:.1} conflicts, {:.1} denials, {:.1} timeouts, {:.1} deadlocks",
        v["revision"],
        list("agents").len(),
        list("locks").len(),
        rate("commits"),
        rate("conflicts"),
        rate("denials"),
        rate("timeouts"),
        rate("deadlocks"),
    );
    let _ = writeln!(o, "\nAGENTS");
    for a in list("agents") {
        let idle = a["idle_s"].as_i64().unwrap_or(0) + elapsed.as_secs() as i64;
        let _ = writeln!(
            o,
            "  {:<18} {:<13} idle {:>7}  {}{}",
            str_of(a, "name"),
            str_of(a, "transport"),
            span(idle),
            a["purpose"].as_str().unwrap_or(""),
            match a["waits"].as_array() {
                Some(w) if !w.is_empty() => format!("  [waits: {}]", join(w)),
                _ => String::new(),
            }
        );
    }
    let _ = writeln!(o, "\nLOCKS");
    if list("locks").is_empty() {
        let _ = writeln!(o, "  (nothing is locked)");
    }
    for l in list("locks") {
        let cap = match (l["in_use"].as_u64(), l["capacity"].as_u64()) {
            (Some(u), Some(c)) => format!("  [{u}/{c} permits]"),
            _ => String::new(),
        };
        let _ = writeln!(o, "  {}{cap}", str_of(l, "resource"));
        for h in l["holders"].as_array().unwrap_or(&empty) {
            let left = seconds_until(str_of(h, "expires_at"), now)
                .map_or(String::new(), |s| format!(", {} left", span(s)));
            let idle = h["idle_s"].as_i64().unwrap_or(0);
            let _ = writeln!(
                o,
                "    held  {} ({}){left}{}{}",
                str_of(h, "agent_name"),
                claim(h),
                if idle >= 300 {
                    format!(", IDLE {}", span(idle))
                } else {
                    String::new()
                },
                h["purpose"]
                    .as_str()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default()
            );
        }
        for w in l["waiters"].as_array().unwrap_or(&empty) {
            let waited = seconds_until(str_of(w, "since"), now).map_or(0, |s| -s);
            let _ = writeln!(
                o,
                "    {}.    {} ({}), waiting {}",
                w["position"],
                str_of(w, "agent_name"),
                claim(w),
                span(waited)
            );
        }
    }
    let _ = writeln!(o, "\nCOMMITS");
    for c in list("commits").iter().take(8) {
        let _ = writeln!(
            o,
            "  r{:<5} {:<14} {}{}",
            c["revision"],
            str_of(c, "agent"),
            str_of(c, "summary"),
            match c["merged"].as_u64() {
                Some(n) if n > 0 => format!("  (merged {n})"),
                _ => String::new(),
            }
        );
    }
    let _ = writeln!(o, "\nEVENTS");
    for e in list("events").iter().take(10) {
        let at = str_of(e, "at");
        let _ = writeln!(
            o,
            "  {} {} {}",
            at.get(11..19).unwrap_or(at),
            str_of(e, "agent"),
            str_of(e, "text")
        );
    }
    o
}

fn join(values: &[Value]) -> String {
    values
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
