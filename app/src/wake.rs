//! Wakes this process's delivery worker (server only). Kept apart from the worker so that [`crate::state`], which
//! every server function reads, depends on this small handle and not on the worker and all it imports.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes the worker of this process (after an import queued deliveries, or a Retry / Enable).
#[derive(Clone, Default, Debug)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits for the next [`Wake::wake`] (or takes one given since the last wait).
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}
