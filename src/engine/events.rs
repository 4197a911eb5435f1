//! How task updates reach their watchers: a small interface, so that a cluster can carry them
//! between nodes (PostgreSQL `LISTEN/NOTIFY`) while the live layer keeps subscribing the same
//! way.

use tokio::sync::broadcast;

use crate::api::tasks::TaskUpdate;

/// Updates a subscriber may fall behind by before it starts losing the oldest (it then learns
/// how many it missed and can catch up from the task's event log).
const CHANNEL_CAPACITY: usize = 4096;

pub trait EventBus: Send + Sync + 'static {
    fn publish(&self, update: TaskUpdate);
    fn subscribe(&self) -> broadcast::Receiver<TaskUpdate>;
}

/// Delivers updates within this process.
pub struct LocalEventBus {
    sender: broadcast::Sender<TaskUpdate>,
}

impl Default for LocalEventBus {
    fn default() -> Self {
        LocalEventBus {
            sender: broadcast::channel(CHANNEL_CAPACITY).0,
        }
    }
}

impl EventBus for LocalEventBus {
    fn publish(&self, update: TaskUpdate) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.sender.send(update);
    }

    fn subscribe(&self) -> broadcast::Receiver<TaskUpdate> {
        self.sender.subscribe()
    }
}
