//! Where a store lives: SQLite in the data directory (the default), or a
//! PostgreSQL database named by a `postgres://` URL (`--store`).
//!
//! The URL is kept as given, for connecting; what is shown of it (logs,
//! errors, `cograph status`) leaves out the password.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::StoreError;

/// The environment variable that names the store as `--store` does.
pub const STORE_ENV: &str = "COGRAPH_STORE";

/// Where a store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// `cograph.db` in this directory.
    Dir(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

impl StoreLocation {
    /// The store `--store` names, or SQLite in `data` when it names none.
    pub fn choose(store: Option<&str>, data: &Path) -> Result<StoreLocation, StoreError> {
        match store {
            None => Ok(StoreLocation::Dir(data.to_path_buf())),
            Some(url) => Ok(StoreLocation::Postgres(url.parse()?)),
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Dir(dir) => write!(f, "{}", dir.display()),
            StoreLocation::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// A `postgres://` (or `postgresql://`) URL that parses as a connection
/// configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
    shown: String,
}

impl PostgresUrl {
    /// The URL as given, password included: for connecting only.
    pub fn secret(&self) -> &str {
        &self.url
    }

    pub(super) fn config(&self) -> Result<postgres::Config, StoreError> {
        self.url.parse().map_err(|e| StoreError::Location {
            location: self.shown.clone(),
            reason: format!("{e}"),
        })
    }
}

impl FromStr for PostgresUrl {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<PostgresUrl, StoreError> {
        let shown = without_password(url);
        let bad = |reason: String| StoreError::Location {
            location: shown.clone(),
            reason,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad(
                "--store takes a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE); without --store the store is SQLite in --data".into(),
            ));
        }
        let config: postgres::Config = url.parse().map_err(|e| bad(format!("{e}")))?;
        if config.get_dbname().is_none() {
            return Err(bad(
                "the URL names no database (postgres://HOST/DATABASE)".into()
            ));
        }
        Ok(PostgresUrl {
            url: url.to_string(),
            shown,
        })
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", self.shown)
    }
}

/// `url` with the password between `user:` and `@` replaced by `***`, and
/// a `password=` query parameter's value too.
fn without_password(url: &str) -> String {
    let mut shown = url.to_string();
    if let Some(scheme_end) = shown.find("://") {
        let rest = scheme_end + 3;
        let authority_end = shown[rest..]
            .find(['/', '?'])
            .map_or(shown.len(), |i| rest + i);
        if let Some(at) = shown[rest..authority_end].rfind('@') {
            let userinfo = &shown[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                shown.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(q) = shown.find('?') {
        let (head, query) = shown.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "password" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        shown = format!("{head}{}", query.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_has_no_password() {
        let url: PostgresUrl =
            "postgres://ann:s3cret@db.example:5432/cograph?password=x&sslmode=disable"
                .parse()
                .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://ann:***@db.example:5432/cograph?password=***&sslmode=disable"
        );
        assert!(url.secret().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn a_url_without_a_password_is_shown_as_given() {
        let url: PostgresUrl = "postgresql://ann@127.0.0.1:5433/c".parse().unwrap();
        assert_eq!(url.to_string(), "postgresql://ann@127.0.0.1:5433/c");
    }

    #[test]
    fn what_is_not_a_postgres_url_is_refused_naming_it() {
        for (given, says) in [
            ("/var/lib/cograph", "takes a PostgreSQL URL"),
            ("mysql://h/db", "takes a PostgreSQL URL"),
            ("postgres://h:notaport/db", "invalid"),
            ("postgres://h:5432", "names no database"),
        ] {
            let e = given.parse::<PostgresUrl>().unwrap_err().to_string();
            assert!(e.contains(says), "{given}: {e}");
        }
        let e = "postgres://u:pw@h:x/db"
            .parse::<PostgresUrl>()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw@"), "{e}");
    }
}
