//! One connection's bounded queue of outgoing frames.
//!
//! The hub pushes already-serialised frames (shared by every connection, so a queued frame
//! costs a pointer, not a copy) or, for connections that write their own format, the shared
//! update itself; the connection's socket task takes them in batches. When a
//! progress tick arrives while an older tick of the same task is still waiting at the end of
//! that task's queued frames, the newer one takes its place: a slow client sees fewer ticks,
//! never stale ones. Anything else that does not fit closes the connection — its client
//! reconnects and resumes from a snapshot, so a state it did not get is not lost to it.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::tasks::TaskUpdate;

/// Frames one connection may have waiting; a client further behind is closed.
pub const OUTBOX_CAPACITY: usize = 512;

/// Something for a connection to send.
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// A frame ready to go.
    Frame(Utf8Bytes),
    /// A task update the connection turns into its own frame.
    Update(Arc<TaskUpdate>),
}

/// An item waiting to be sent.
struct Queued {
    item: Outgoing,
    /// The task this frame is about, if any.
    task: Option<Uuid>,
    /// A progress tick (no logged event): a newer tick of the same task may replace it.
    replaceable: bool,
}

/// What happened to a pushed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// It replaced an older progress tick of the same task that had not been sent yet.
    Replaced,
    /// The outbox is full: the connection has been told to close.
    Overflowed,
    /// The connection is closing; the frame was discarded.
    Closed,
}

/// The queue between the hub and one connection's socket.
pub struct Outbox {
    queue: Mutex<VecDeque<Queued>>,
    ready: Notify,
    /// Cancelled when the connection must end (it cannot keep up, or the hub lost updates).
    closing: CancellationToken,
    close_reason: Mutex<Option<&'static str>>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            closing: CancellationToken::new(),
            close_reason: Mutex::new(None),
        }
    }
}

impl Outbox {
    /// Queues a frame that must not be dropped: a reply, a snapshot, a logged event.
    pub fn push(&self, item: Outgoing, task: Option<Uuid>) -> Pushed {
        self.enqueue(Queued {
            item,
            task,
            replaceable: false,
        })
    }

    /// Queues a progress tick of `task`, replacing an older tick of it that is still waiting.
    pub fn push_progress(&self, item: Outgoing, task: Uuid) -> Pushed {
        self.enqueue(Queued {
            item,
            task: Some(task),
            replaceable: true,
        })
    }

    /// Queues a reply to the client's request.
    pub fn reply(&self, frame: Utf8Bytes) -> Pushed {
        self.push(Outgoing::Frame(frame), None)
    }

    fn enqueue(&self, item: Queued) -> Pushed {
        if self.closing.is_cancelled() {
            return Pushed::Closed;
        }
        let mut queue = self.queue.lock().expect("outbox lock");
        if item.replaceable
            && let Some(last) = queue
                .iter_mut()
                .rev()
                .find(|queued| queued.task == item.task)
            && last.replaceable
        {
            last.item = item.item;
            return Pushed::Replaced;
        }
        if queue.len() >= OUTBOX_CAPACITY {
            queue.clear();
            drop(queue);
            self.close("the client does not read its updates fast enough");
            return Pushed::Overflowed;
        }
        queue.push_back(item);
        drop(queue);
        self.ready.notify_one();
        Pushed::Queued
    }

    /// Moves every waiting item into `batch`, waiting until there is at least one. Returns
    /// `false` instead when the connection must close.
    pub async fn next_batch(&self, batch: &mut Vec<Outgoing>) -> bool {
        loop {
            {
                let mut queue = self.queue.lock().expect("outbox lock");
                if !queue.is_empty() {
                    batch.extend(queue.drain(..).map(|queued| queued.item));
                    return true;
                }
            }
            tokio::select! {
                () = self.ready.notified() => {}
                () = self.closing.cancelled() => return false,
            }
        }
    }

    /// Tells the connection to close with `reason` (the first reason given wins).
    pub fn close(&self, reason: &'static str) {
        self.close_reason
            .lock()
            .expect("close reason lock")
            .get_or_insert(reason);
        self.closing.cancel();
    }

    /// Resolves once the connection must close.
    pub async fn closing(&self) {
        self.closing.cancelled().await;
    }

    /// Why the connection must close, once it must.
    pub fn close_reason(&self) -> Option<&'static str> {
        *self.close_reason.lock().expect("close reason lock")
    }

    /// Frames waiting now.
    pub fn len(&self) -> usize {
        self.queue.lock().expect("outbox lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Outgoing {
        Outgoing::Frame(Utf8Bytes::from(text.to_owned()))
    }

    async fn drain(outbox: &Outbox) -> Vec<String> {
        let mut batch = Vec::new();
        assert!(outbox.next_batch(&mut batch).await);
        batch
            .iter()
            .map(|item| match item {
                Outgoing::Frame(frame) => frame.as_str().to_owned(),
                Outgoing::Update(update) => update.seq.to_string(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_newer_tick_replaces_the_waiting_one_in_place() {
        let outbox = Outbox::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(outbox.push_progress(frame("a1"), a), Pushed::Queued);
        assert_eq!(outbox.push_progress(frame("b1"), b), Pushed::Queued);
        assert_eq!(outbox.push_progress(frame("a2"), a), Pushed::Replaced);
        assert_eq!(outbox.push_progress(frame("a3"), a), Pushed::Replaced);
        assert_eq!(drain(&outbox).await, ["a3", "b1"]);
    }

    #[tokio::test]
    async fn a_tick_never_jumps_ahead_of_a_later_event_of_its_task() {
        let outbox = Outbox::default();
        let task = Uuid::from_u128(1);
        outbox.push_progress(frame("tick1"), task);
        outbox.push(frame("stage"), Some(task));
        assert_eq!(outbox.push_progress(frame("tick2"), task), Pushed::Queued);
        assert_eq!(drain(&outbox).await, ["tick1", "stage", "tick2"]);
    }

    #[tokio::test]
    async fn overflow_closes_instead_of_dropping_events() {
        let outbox = Outbox::default();
        let task = Uuid::from_u128(1);
        for seq in 0..OUTBOX_CAPACITY {
            assert_eq!(
                outbox.push(frame(&seq.to_string()), Some(task)),
                Pushed::Queued
            );
        }
        // Ticks of a task whose last waiting frame is an event cannot be merged either.
        assert_eq!(
            outbox.push_progress(frame("tick"), task),
            Pushed::Overflowed
        );
        assert!(outbox.close_reason().is_some());
        assert!(
            outbox.is_empty(),
            "a closing connection keeps nothing queued"
        );
        assert_eq!(outbox.push(frame("late"), None), Pushed::Closed);
        assert!(!outbox.next_batch(&mut Vec::new()).await);
    }

    #[tokio::test]
    async fn a_full_outbox_still_merges_ticks() {
        let outbox = Outbox::default();
        for task in 0..OUTBOX_CAPACITY as u128 {
            outbox.push_progress(frame("tick"), Uuid::from_u128(task));
        }
        assert_eq!(
            outbox.push_progress(frame("newer"), Uuid::from_u128(7)),
            Pushed::Replaced
        );
        assert_eq!(outbox.len(), OUTBOX_CAPACITY);
    }

    #[tokio::test]
    async fn the_first_close_reason_wins() {
        let outbox = Outbox::default();
        outbox.close("first");
        outbox.close("second");
        assert_eq!(outbox.close_reason(), Some("first"));
    }
}
