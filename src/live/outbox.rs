//! One connection's bounded queue of outgoing frames.
//!
//! The hub pushes already-serialised frames (shared by every connection, so a queued frame
//! costs a pointer, not a copy) or, for connections that write their own format, the shared
//! update itself; the connection's socket task takes them in batches. When a
//! progress tick arrives while an older tick of the same task is still waiting at the end of
//! that task's queued frames, the newer one takes its place: a slow client sees fewer ticks,
//! never stale ones. Anything else that does not fit closes the connection — its client
//! reconnects and resumes from a snapshot, so a state it did not get is not lost to it.
//!
//! A frame that takes time to make (a subscription's snapshot, read from the database) can
//! [reserve](Outbox::reserve) its place first: nothing queued after the reservation leaves
//! before the frame is in it. The socket then sends the snapshot before every update routed
//! while it was read, so an update never arrives ahead of a snapshot older than it.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
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
    /// `None` while a [`Reservation`] holds the place: the queue stops here until it is filled.
    item: Option<Outgoing>,
    /// The reservation that holds (or held) this place.
    reservation: Option<u64>,
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
    /// Set with `closing`; read on every push without the token's lock.
    closed: AtomicBool,
    close_reason: Mutex<Option<&'static str>>,
    next_reservation: AtomicU64,
}

/// A place held in an [`Outbox`] for a frame that is being made; see [`Outbox::reserve`].
/// Dropping it unfilled gives the place up.
#[must_use = "the outbox holds everything queued after the reservation until it is filled"]
pub struct Reservation {
    outbox: Arc<Outbox>,
    /// `None` when the outbox was closing or full: there is nothing to fill.
    id: Option<u64>,
}

impl Reservation {
    /// Puts `item` in the reserved place; what was queued after it may leave now.
    pub fn fill(mut self, item: Outgoing) {
        if let Some(id) = self.id.take() {
            self.outbox.settle(id, Some(item));
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.outbox.settle(id, None);
        }
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            closing: CancellationToken::new(),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            next_reservation: AtomicU64::new(0),
        }
    }
}

impl Outbox {
    /// Queues a frame that must not be dropped: a reply, a snapshot, a logged event.
    pub fn push(&self, item: Outgoing, task: Option<Uuid>) -> Pushed {
        self.enqueue(Queued {
            item: Some(item),
            reservation: None,
            task,
            replaceable: false,
        })
    }

    /// Queues a progress tick of `task`, replacing an older tick of it that is still waiting.
    pub fn push_progress(&self, item: Outgoing, task: Uuid) -> Pushed {
        self.enqueue(Queued {
            item: Some(item),
            reservation: None,
            task: Some(task),
            replaceable: true,
        })
    }

    /// Holds the next place in the queue for a frame about `task` (or about no task) that is
    /// still being made: everything queued after it waits until the [`Reservation`] is filled
    /// or dropped. Answers how the place was taken ([`Pushed::Overflowed`] and
    /// [`Pushed::Closed`] give a reservation that holds nothing).
    pub fn reserve(self: &Arc<Self>, task: Option<Uuid>) -> (Reservation, Pushed) {
        let id = self.next_reservation.fetch_add(1, Ordering::Relaxed);
        let pushed = self.enqueue(Queued {
            item: None,
            reservation: Some(id),
            task,
            replaceable: false,
        });
        let reservation = Reservation {
            outbox: self.clone(),
            id: (pushed == Pushed::Queued).then_some(id),
        };
        (reservation, pushed)
    }

    /// Fills the place of reservation `id` with `item`, or gives it up.
    fn settle(&self, id: u64, item: Option<Outgoing>) {
        let mut queue = self.queue.lock().expect("outbox lock");
        // Gone when an overflow emptied the queue: the connection is closing anyway.
        let Some(index) = queue
            .iter()
            .position(|queued| queued.item.is_none() && queued.reservation == Some(id))
        else {
            return;
        };
        match item {
            Some(item) => queue[index].item = Some(item),
            None => {
                queue.remove(index);
            }
        }
        drop(queue);
        self.ready.notify_one();
    }

    /// Queues a reply to the client's request.
    pub fn reply(&self, frame: Utf8Bytes) -> Pushed {
        self.push(Outgoing::Frame(frame), None)
    }

    fn enqueue(&self, item: Queued) -> Pushed {
        if self.closed.load(Ordering::Acquire) {
            return Pushed::Closed;
        }
        let mut queue = self.queue.lock().expect("outbox lock");
        // A tick never moves ahead of a reserved frame (a snapshot, which may be older).
        if item.replaceable
            && let Some(last) = queue
                .iter_mut()
                .rev()
                .find(|queued| queued.task == item.task || queued.reservation.is_some())
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

    /// Moves every waiting item up to the first unfilled reservation into `batch`, waiting
    /// until there is at least one. Returns `false` instead when the connection must close.
    pub async fn next_batch(&self, batch: &mut Vec<Outgoing>) -> bool {
        loop {
            {
                let mut queue = self.queue.lock().expect("outbox lock");
                let ready = queue
                    .iter()
                    .position(|queued| queued.item.is_none())
                    .unwrap_or(queue.len());
                if ready > 0 {
                    batch.extend(queue.drain(..ready).filter_map(|queued| queued.item));
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
        self.closed.store(true, Ordering::Release);
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

    /// What `next_batch` hands out now, without waiting.
    fn ready_now(outbox: &Outbox) -> Option<Vec<String>> {
        use futures::FutureExt;
        drain(outbox).now_or_never()
    }

    #[tokio::test]
    async fn a_reservation_holds_back_what_is_queued_after_it() {
        let outbox = Arc::new(Outbox::default());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        outbox.push(frame("before"), Some(a));
        let (place, pushed) = outbox.reserve(Some(a));
        assert_eq!(pushed, Pushed::Queued);
        outbox.push(frame("event"), Some(a));
        outbox.push_progress(frame("tick"), b);
        outbox.reply(Utf8Bytes::from_static("reply"));
        assert_eq!(ready_now(&outbox).unwrap(), ["before"]);
        assert_eq!(
            ready_now(&outbox),
            None,
            "nothing passes an unfilled reservation"
        );
        place.fill(frame("snapshot"));
        assert_eq!(
            ready_now(&outbox).unwrap(),
            ["snapshot", "event", "tick", "reply"]
        );
    }

    #[tokio::test]
    async fn a_dropped_reservation_gives_its_place_up() {
        let outbox = Arc::new(Outbox::default());
        let (place, _) = outbox.reserve(None);
        outbox.push(frame("after"), None);
        assert_eq!(ready_now(&outbox), None);
        drop(place);
        assert_eq!(ready_now(&outbox).unwrap(), ["after"]);
    }

    #[tokio::test]
    async fn a_tick_never_jumps_ahead_of_a_reserved_frame() {
        let outbox = Arc::new(Outbox::default());
        let task = Uuid::from_u128(1);
        outbox.push_progress(frame("tick1"), task);
        // A snapshot of every task (no task of its own) still covers this one.
        let (place, _) = outbox.reserve(None);
        assert_eq!(outbox.push_progress(frame("tick2"), task), Pushed::Queued);
        place.fill(frame("snapshot"));
        assert_eq!(
            outbox.push_progress(frame("tick3"), task),
            Pushed::Replaced,
            "ticks after the snapshot still merge"
        );
        assert_eq!(ready_now(&outbox).unwrap(), ["tick1", "snapshot", "tick3"]);
    }

    #[tokio::test]
    async fn a_reservation_in_a_full_or_closed_outbox_holds_nothing() {
        let outbox = Arc::new(Outbox::default());
        for seq in 0..OUTBOX_CAPACITY {
            outbox.push(frame(&seq.to_string()), None);
        }
        let (place, pushed) = outbox.reserve(None);
        assert_eq!(pushed, Pushed::Overflowed);
        place.fill(frame("snapshot"));
        assert!(outbox.is_empty());
        let (place, pushed) = outbox.reserve(None);
        assert_eq!(pushed, Pushed::Closed);
        drop(place);
        assert!(!outbox.next_batch(&mut Vec::new()).await);
    }

    #[tokio::test]
    async fn the_first_close_reason_wins() {
        let outbox = Outbox::default();
        outbox.close("first");
        outbox.close("second");
        assert_eq!(outbox.close_reason(), Some("first"));
    }
}
