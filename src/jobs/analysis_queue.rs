//! The analysis queue (SPEC §3.1): the items of every analysing task wait in one bounded queue
//! and are worked on by a fixed number of workers, first come first served.
//!
//! Each item is a future its own task awaits, so its result can only ever go back to that task
//! (the original system shared one result queue between jobs and results leaked between them).
//! A producer whose item does not fit waits (back-pressure); a request that would not fit at all
//! is refused up front ([`AnalysisQueue::check_room`]); an item whose task is cancelled leaves
//! the queue at once.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Settings of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// Items waiting or being worked on, over all tasks.
    pub capacity: usize,
    /// Items worked on at once.
    pub workers: usize,
    /// An item taking longer fails with [`ItemError::TimedOut`].
    pub item_timeout: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            capacity: 100,
            workers: 3,
            item_timeout: Duration::from_secs(60),
        }
    }
}

/// Why an item produced no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("timed out after {} s", .0.as_secs_f64())]
    TimedOut(Duration),
    #[error("cancelled")]
    Cancelled,
}

/// A request for more places than the queue has free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the analysis queue is full: {requested} items asked for, {free} of {capacity} places free; \
     try again later"
)]
pub struct QueueFull {
    pub requested: usize,
    pub free: usize,
    pub capacity: usize,
}

/// The queue; cheap to clone, shared by every task.
#[derive(Clone, Debug)]
pub struct AnalysisQueue {
    places: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    settings: QueueSettings,
}

impl AnalysisQueue {
    pub fn new(settings: QueueSettings) -> Self {
        AnalysisQueue {
            places: Arc::new(Semaphore::new(settings.capacity)),
            workers: Arc::new(Semaphore::new(settings.workers)),
            settings,
        }
    }

    /// Places free now.
    pub fn free_places(&self) -> usize {
        self.places.available_permits()
    }

    /// Refuses a request of `items` that the queue cannot take now; answered as 503 so the
    /// client tries again later instead of waiting behind everybody.
    pub fn check_room(&self, items: usize) -> Result<(), QueueFull> {
        let free = self.free_places();
        if items > free {
            return Err(QueueFull {
                requested: items,
                free,
                capacity: self.settings.capacity,
            });
        }
        Ok(())
    }

    /// Waits for a place in the queue, then for a worker, then runs `work` with the item
    /// timeout. Returns early with [`ItemError::Cancelled`] as soon as `cancel` fires, wherever
    /// the item is.
    pub async fn process<T>(
        &self,
        cancel: &CancellationToken,
        work: impl Future<Output = T>,
    ) -> Result<T, ItemError> {
        let queued_and_worked = async {
            let _place = self.places.acquire().await.expect("never closed");
            let _worker = self.workers.acquire().await.expect("never closed");
            tokio::time::timeout(self.settings.item_timeout, work)
                .await
                .map_err(|_| ItemError::TimedOut(self.settings.item_timeout))
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ItemError::Cancelled),
            result = queued_and_worked => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::join_all;

    use super::*;

    fn queue(capacity: usize, workers: usize, timeout_ms: u64) -> AnalysisQueue {
        AnalysisQueue::new(QueueSettings {
            capacity,
            workers,
            item_timeout: Duration::from_millis(timeout_ms),
        })
    }

    #[tokio::test]
    async fn no_more_than_the_workers_run_at_once() {
        let queue = queue(100, 3, 60_000);
        let cancel = CancellationToken::new();
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (running, most) = (&running, &most);
        let items = (0..20).map(|item| {
            queue.process(&cancel, async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                item
            })
        });
        let results: Vec<_> = join_all(items).await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
        let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            results,
            (0..20).collect::<Vec<_>>(),
            "each result goes to its own caller"
        );
    }

    #[tokio::test]
    async fn a_slow_item_times_out() {
        let queue = queue(10, 1, 50);
        let cancel = CancellationToken::new();
        let slow = queue.process(&cancel, tokio::time::sleep(Duration::from_secs(5)));
        assert_eq!(
            slow.await,
            Err(ItemError::TimedOut(Duration::from_millis(50)))
        );
        assert_eq!(queue.free_places(), 10, "its place is free again");
    }

    #[tokio::test]
    async fn cancelling_drains_the_waiting_items_of_that_task_only() {
        let queue = queue(10, 1, 60_000);
        let (mine, theirs) = (CancellationToken::new(), CancellationToken::new());
        let blocker = queue.process(&theirs, tokio::time::sleep(Duration::from_millis(100)));
        let waiting = queue.process(&mine, async { "never runs" });
        let after = queue.process(&theirs, async { "runs" });
        mine.cancel();
        let (blocked, waited, later) = tokio::join!(blocker, waiting, after);
        assert_eq!(blocked, Ok(()));
        assert_eq!(waited, Err(ItemError::Cancelled));
        assert_eq!(later, Ok("runs"));
    }

    #[tokio::test]
    async fn a_full_queue_makes_producers_wait_and_refuses_requests_that_do_not_fit() {
        let queue = queue(2, 1, 60_000);
        let cancel = CancellationToken::new();
        assert_eq!(queue.check_room(2), Ok(()));
        let first = queue.process(&cancel, tokio::time::sleep(Duration::from_millis(100)));
        let second = queue.process(&cancel, tokio::time::sleep(Duration::from_millis(100)));
        let third = queue.process(&cancel, async { tokio::time::Instant::now() });
        let started = tokio::time::Instant::now();
        let polled_both = async {
            tokio::task::yield_now().await;
            let refused = queue.check_room(1);
            assert_eq!(
                refused,
                Err(QueueFull {
                    requested: 1,
                    free: 0,
                    capacity: 2
                })
            );
        };
        let (_, _, third, ()) = tokio::join!(first, second, third, polled_both);
        assert!(
            third.unwrap() - started >= Duration::from_millis(100),
            "the third item waited for a place"
        );
    }
}
