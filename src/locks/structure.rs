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
    use std::pin::{Pin, pin};
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Polls a future once with a waker that does nothing: its output if it
    /// is ready now, without waiting for anything or anyone.
    fn ready_now<F: Future>(f: Pin<&mut F>) -> Option<F::Output> {
        match f.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        }
    }

    #[test]
    fn exclusive_is_not_granted_while_shared_is_held() {
        let lock = StructureLock::new();
        let shared = ready_now(pin!(lock.shared())).expect("a free lock");
        let mut exclusive = pin!(lock.exclusive());
        assert!(
            ready_now(exclusive.as_mut()).is_none(),
            "exclusive granted beside a shared holder"
        );
        drop(shared);
        assert!(
            ready_now(exclusive.as_mut()).is_some(),
            "exclusive not granted once the shared holder left"
        );
    }

    #[test]
    fn new_shared_does_not_get_in_ahead_of_a_queued_exclusive() {
        let lock = StructureLock::new();
        let first = ready_now(pin!(lock.shared())).expect("a free lock");
        let mut exclusive = pin!(lock.exclusive());
        assert!(ready_now(exclusive.as_mut()).is_none());
        // Shared would be compatible with the shared holder, but an
        // exclusive request is queued: the new one waits behind it.
        let mut late = pin!(lock.shared());
        assert!(
            ready_now(late.as_mut()).is_none(),
            "a new shared got in ahead of the queued exclusive"
        );
        drop(first);
        let exclusive = ready_now(exclusive.as_mut()).expect("the exclusive goes first");
        assert!(
            ready_now(late.as_mut()).is_none(),
            "shared beside exclusive"
        );
        drop(exclusive);
        assert!(ready_now(late.as_mut()).is_some());
    }
}
