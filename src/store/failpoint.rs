//! A test failpoint: an injected write failure in the store's writer, so
//! that the poison path (a write or fsync error stops the server) can be
//! tested in-process and through the built binary.
//!
//! `COGRAPH_FAILPOINT=store-write-after:N` lets the writer write N batches
//! and makes the next one, the (N+1)th since the store opened, fail with an
//! injected I/O error. The failure strikes after the batch's rows are
//! written and before its transaction commits, where a failing write or
//! fsync would strike, so SQLite rolls the batch back. The variable is read
//! once, when the store opens; an unset or empty variable means no
//! failpoint, and a value this file cannot parse is an error rather than a
//! silently ignored test setting.
//!
//! This exists for tests only. Nothing in normal operation sets it.

use super::StoreError;

/// The environment variable that arms the failpoint.
pub const FAILPOINT_ENV: &str = "COGRAPH_FAILPOINT";

/// Which injected failures the store's writer performs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failpoint {
    /// Fail the batch after this many batches were written.
    pub write_fails_after: Option<u64>,
}

impl Failpoint {
    /// No injected failures.
    pub fn none() -> Failpoint {
        Failpoint::default()
    }

    /// Fails the (n+1)th batch since the store opened.
    pub fn write_fails_after(n: u64) -> Failpoint {
        Failpoint {
            write_fails_after: Some(n),
        }
    }

    /// The failpoint `COGRAPH_FAILPOINT` asks for.
    pub fn from_env() -> Result<Failpoint, StoreError> {
        match std::env::var(FAILPOINT_ENV) {
            Ok(value) => Failpoint::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(Failpoint::none()),
            Err(std::env::VarError::NotUnicode(_)) => Err(StoreError::Failpoint {
                value: "(not unicode)".into(),
                reason: "expected `store-write-after:N`".into(),
            }),
        }
    }

    /// Parses `store-write-after:N`; empty means none.
    pub fn parse(value: &str) -> Result<Failpoint, StoreError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Failpoint::none());
        }
        let bad = |reason: &str| StoreError::Failpoint {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let n = value
            .strip_prefix("store-write-after:")
            .ok_or_else(|| bad("expected `store-write-after:N`"))?;
        let n = n
            .parse::<u64>()
            .map_err(|_| bad("N must be a whole number of batches"))?;
        Ok(Failpoint::write_fails_after(n))
    }

    /// Returns true if and only if the batch with this index (0 for the
    /// first since the store opened) must fail.
    pub(super) fn fails_batch(&self, batch_idx: u64) -> bool {
        self.write_fails_after == Some(batch_idx)
    }
}

/// The error an injected write failure reports: SQLite's own I/O error
/// code, so that it takes the path a real one would.
pub(super) fn injected_write_error() -> StoreError {
    StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_WRITE),
        Some(format!(
            "disk I/O error injected by the test failpoint {FAILPOINT_ENV}"
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_store_write_after() {
        assert_eq!(
            Failpoint::parse("store-write-after:3").unwrap(),
            Failpoint::write_fails_after(3)
        );
    }

    #[test]
    fn parse_empty_is_none() {
        assert_eq!(Failpoint::parse("").unwrap(), Failpoint::none());
        assert_eq!(Failpoint::parse("  ").unwrap(), Failpoint::none());
    }

    #[test]
    fn parse_refuses_an_unknown_failpoint() {
        let e = Failpoint::parse("store-fsync:3").unwrap_err();
        assert!(e.to_string().contains("store-write-after:N"), "{e}");
    }

    #[test]
    fn parse_refuses_a_count_that_is_not_a_number() {
        assert!(Failpoint::parse("store-write-after:").is_err());
        assert!(Failpoint::parse("store-write-after:-1").is_err());
        assert!(Failpoint::parse("store-write-after:two").is_err());
    }

    #[test]
    fn fails_only_the_batch_after_n() {
        let fp = Failpoint::write_fails_after(2);
        assert_eq!(
            (0..5).map(|i| fp.fails_batch(i)).collect::<Vec<_>>(),
            [false, false, true, false, false]
        );
        assert!(!(0..5).any(|i| Failpoint::none().fails_batch(i)));
    }

    #[test]
    fn the_injected_error_is_an_sqlite_io_error() {
        let StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, Some(msg))) =
            injected_write_error()
        else {
            panic!("not an sqlite failure")
        };
        assert_eq!(e.code, rusqlite::ErrorCode::SystemIoFailure);
        assert!(msg.contains(FAILPOINT_ENV));
    }
}
