//! The global structure lock: module-structure commits (create, delete,
//! rename a function) hold it exclusively; function commits share it.
//!
//! It is a tokio `RwLock`, not a std one, because a commit holds it across
//! `.await` points while it prepares (store reads for old versions). Its
//! write side is fair in tokio, so a stream of function commits cannot
//! starve a structure commit.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Default)]
pub struct StructureLock(RwLock<()>);

impl StructureLock {
    pub fn new() -> StructureLock {
        StructureLock::default()
    }

    /// Held by a commit that changes function bodies only.
    pub async fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read().await
    }

    /// Held by a commit that creates, deletes or renames functions.
    pub async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn exclusive_waits_for_shared_and_blocks_new_shared() {
        let lock = std::sync::Arc::new(StructureLock::new());
        let shared = lock.shared().await;
        let l2 = lock.clone();
        let writer = tokio::spawn(async move {
            let _g = l2.exclusive().await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished());
        drop(shared);
        writer.await.unwrap();
        let _again = lock.shared().await;
    }
}
