//! The backends a test's hub can keep its store in, so that one test runs
//! against each: `each_store!` turns one test into a module with a
//! `sqlite` and a `postgres` case of it (the latter on a fresh database of
//! the test process's PostgreSQL cluster, `pg.rs`).

use cograph::service::HubConfig;
use cograph::store::StoreLocation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A test's store: its data directory (removed when dropped) and where the
/// store lives. Opening a hub again on the same `TestStore` reopens the
/// same store.
pub struct TestStore {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub location: StoreLocation,
}

impl TestStore {
    pub fn new(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let location = match backend {
            Backend::Sqlite => StoreLocation::Dir(dir.path().to_path_buf()),
            Backend::Postgres => {
                StoreLocation::Postgres(super::pg::fresh_database().parse().unwrap())
            }
        };
        TestStore {
            backend,
            dir,
            location,
        }
    }

    /// A hub configuration on this store.
    pub fn config(&self) -> HubConfig {
        let mut config = HubConfig::new(self.dir.path());
        config.store = self.location.clone();
        config
    }

    /// A hub on this store again, after the last one was dropped. A
    /// directory closed just before may still look in use for a moment:
    /// another test's thread spawning a process (`pg.rs`'s `createdb`)
    /// forks this process with the directory's lock file open, and the
    /// child holds the lock until its exec closes it.
    pub fn reopen(&self) -> std::sync::Arc<cograph::service::Hub> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match cograph::service::Hub::open(self.config()) {
                Err(cograph::service::HubError::Store(cograph::store::StoreError::InUse {
                    ..
                })) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => return result.unwrap(),
            }
        }
    }

    /// The command-line arguments that name this store.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--data".to_string(), self.dir.path().display().to_string()];
        if let StoreLocation::Postgres(url) = &self.location {
            args.extend(["--store".to_string(), url.secret().to_string()]);
        }
        args
    }
}

/// One test, run against each backend: `each_store! { #[tokio::test]
/// async fn name(store) { ... } }` makes `name::sqlite` and
/// `name::postgres`, each with `store: TestStore` of its backend.
#[macro_export]
macro_rules! each_store {
    ($(#[$attr:meta])* async fn $name:ident($store:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            async fn sqlite() {
                let $store = $crate::common::stores::TestStore::new(
                    $crate::common::stores::Backend::Sqlite,
                );
                $body
            }

            $(#[$attr])*
            async fn postgres() {
                let $store = $crate::common::stores::TestStore::new(
                    $crate::common::stores::Backend::Postgres,
                );
                $body
            }
        }
    };
}
