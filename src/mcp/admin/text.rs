//! How the answers to shell commands read: what goes to stdout (what a
//! script captures: a handle, `TOKEN RESOURCE` lines, the lock table),
//! what goes to stderr (for the person watching: what happened, a
//! refusal with the holders and the queue, a hint), and the kind of
//! refusal, which the command line turns into its exit code.
//!
//! Nothing here talks to the hub; it only words what the hub answered.

use super::{AdminGuard, AdminReply, Refusal};
use crate::mcp::error::holder_text;
use crate::mcp::types::{ClaimView, LockView};
use crate::mcp::views::{claim_text, waiter_line};

/// An answer as a command prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    pub stdout: String,
    pub stderr: String,
    /// `None` when the command did what it was asked.
    pub refusal: Option<Refusal>,
}

/// How a shell command shows the hub's answer.
pub fn show(reply: &AdminReply) -> Shown {
    let mut shown = Shown::default();
    match reply {
        AdminReply::Started(s) => {
            shown.stdout = format!("{}\n", s.session);
            shown.stderr = format!(
                "started agent {} ({}); it ends after {} without a command, or with `cograph agent end`\n",
                s.name,
                s.agent_id,
                duration_text(s.idle_s)
            );
        }
        AdminReply::Ended {
            agent_id,
            name,
            n_released,
        } => {
            shown.stderr = format!("ended agent {name} ({agent_id}): released {n_released} locks\n")
        }
        AdminReply::Granted {
            token,
            waited_ms,
            locks,
        } => {
            for l in locks {
                shown.stdout.push_str(&format!("{token} {}\n", l.resource));
                shown.stderr.push_str(&format!(
                    "locked {} ({}) until {}\n",
                    l.resource,
                    claim_text(l.mode, l.permits),
                    l.expires_at
                ));
            }
            if *waited_ms > 0 {
                shown
                    .stderr
                    .push_str(&format!("granted after waiting {waited_ms} ms\n"));
            }
        }
        AdminReply::Released {
            released,
            n_still_held,
        } => {
            let names: Vec<String> = released
                .iter()
                .map(|r| format!("{} ({})", r.resource, claim_text(r.mode, r.permits)))
                .collect();
            shown.stderr = match names.len() {
                0 => format!("nothing to release; {n_still_held} locks still held\n"),
                n => format!(
                    "released {n}: {}; {n_still_held} still held\n",
                    names.join(", ")
                ),
            };
        }
        AdminReply::Locks { locks } if locks.is_empty() => {
            shown.stderr = "no locks are held or waited for\n".into();
        }
        AdminReply::Locks { locks } => shown.stdout = lock_table(locks),
        AdminReply::Guard(g) => {
            shown.stderr = guard_text(g);
            if !g.refused.is_empty() {
                shown.refusal = Some(Refusal::Denied);
            }
        }
        AdminReply::Error {
            message,
            refusal,
            hint,
            lines,
        } => {
            shown.stderr = format!("error: {message}\n");
            for line in lines {
                shown.stderr.push_str(&format!("  {line}\n"));
            }
            if let Some(hint) = hint {
                shown.stderr.push_str(&format!("hint: {hint}\n"));
            }
            shown.refusal = Some(*refusal);
        }
        other => {
            shown.stderr = format!("error: the hub answered {other:?}\n");
            shown.refusal = Some(Refusal::Failed);
        }
    }
    shown
}

/// A `waiting` report, for stderr.
pub fn waiting_text(lines: &[String]) -> String {
    let mut out = String::from("waiting:\n");
    for line in lines {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// `30 min`, `1 h 30 min`, `90 s`.
fn duration_text(s: u64) -> String {
    match s {
        s if s < 60 || s % 60 != 0 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The lock table, one row per holder (a resource only waited for has
/// one row without a holder), its waiters in order on its first row:
/// `RESOURCE  HOLDER  MODE  EXPIRES  WAITERS  PURPOSE`.
fn lock_table(locks: &[LockView]) -> String {
    let mut rows: Vec<[String; 6]> = vec![
        [
            "RESOURCE", "HOLDER", "MODE", "EXPIRES", "WAITERS", "PURPOSE",
        ]
        .map(String::from),
    ];
    for l in locks {
        let resource = match (l.capacity, l.in_use) {
            (Some(c), Some(u)) => format!("{} [{u} of {c} in use]", l.resource),
            _ => l.resource.clone(),
        };
        let waiters = match l.waiters.as_slice() {
            [] => "-".to_string(),
            ws => ws.iter().map(waiter_line).collect::<Vec<_>>().join(", "),
        };
        if l.holders.is_empty() {
            rows.push([
                resource,
                "-".into(),
                "-".into(),
                "-".into(),
                waiters,
                "-".into(),
            ]);
            continue;
        }
        for (idx, h) in l.holders.iter().enumerate() {
            let first = idx == 0;
            rows.push([
                if first {
                    resource.clone()
                } else {
                    String::new()
                },
                h.agent_name.clone(),
                claim_text(h.mode, h.permits),
                h.expires_at.clone().unwrap_or_else(|| "-".into()),
                if first {
                    waiters.clone()
                } else {
                    String::new()
                },
                h.purpose.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The guard's verdict: each refused path with the locks in its way, or
/// that the commit may go.
pub fn guard_text(g: &AdminGuard) -> String {
    if g.refused.is_empty() {
        return format!(
            "cograph guard: checked {}; none is locked by another agent\n",
            paths(g.n_checked)
        );
    }
    let mut out = format!(
        "cograph guard: refusing the commit ({}): {} of {} refused\n",
        match &g.committer {
            Some(name) => format!("committer: {name}"),
            None => "no committer: set COGRAPH_AGENT to your agent's handle".into(),
        },
        g.refused.len(),
        paths(g.n_checked),
    );
    for r in &g.refused {
        out.push_str(&format!("  {}:", r.path));
        let holders: Vec<String> = r.held_by.iter().map(held_by).collect();
        if !holders.is_empty() {
            out.push_str(&format!(" {}", holders.join("; ")));
        }
        if r.not_locked {
            if !holders.is_empty() {
                out.push(';');
            }
            out.push_str(&format!(
                " you hold no write lock on it or a directory above it (cograph lock path:{})",
                r.path
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "hint: wait for those locks to go (`cograph locks --kind path`), commit other paths, or take the lock yourself (`cograph lock PATH --wait 5m`); `git commit --no-verify` skips the guard\n",
    );
    out
}

/// `1 staged path`, `3 staged paths`.
fn paths(n: usize) -> String {
    match n {
        1 => "1 staged path".into(),
        n => format!("{n} staged paths"),
    }
}

fn held_by(h: &ClaimView) -> String {
    format!("held by {}", holder_text(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        for (s, text) in [
            (90, "90 s"),
            (1800, "30 min"),
            (3600, "1 h"),
            (5400, "1 h 30 min"),
        ] {
            assert_eq!(duration_text(s), text);
        }
    }
}
