//! Task state kept live in the page: seeded with what the server rendered, then patched by the
//! subscriptions of the tab's [`LiveConnection`].

use leptos::prelude::*;
use uuid::Uuid;

use crate::{
    api::tasks::{Task, TaskEvent, TaskEventKind, TaskOverview, TaskUpdate},
    protocol::{ErrorCode, ServerMessage, Topic},
    ui::live::LiveConnection,
};

/// One task and its timeline, live.
#[derive(Clone, Copy)]
pub struct LiveTask {
    pub task: RwSignal<Task>,
    pub events: RwSignal<Vec<TaskEvent>>,
    /// The task was deleted (or is no longer visible) while the page showed it.
    pub gone: RwSignal<bool>,
    connection: LiveConnection,
}

impl LiveTask {
    /// Starts from the server-rendered task and events and follows the task's topic.
    pub fn follow(task: Task, events: Vec<TaskEvent>) -> Self {
        let topic = Topic::Task { id: task.id };
        let after = Some(task.last_event_seq);
        let live = LiveTask {
            task: RwSignal::new(task),
            events: RwSignal::new(events),
            gone: RwSignal::new(false),
            connection: LiveConnection::expect(),
        };
        let listener = Callback::new(move |message| live.receive(message));
        live.connection.subscribe(topic, after, listener);
        live
    }

    fn receive(self, message: ServerMessage) {
        match message {
            ServerMessage::TaskSnapshot {
                task,
                events,
                replaces_timeline,
            } => {
                self.events.update(|known| {
                    if replaces_timeline {
                        *known = events;
                    } else {
                        let newest = known.last().map_or(0, |event| event.seq);
                        known.extend(events.into_iter().filter(|event| event.seq > newest));
                    }
                });
                self.task.set(*task);
                self.gone.set(false);
            }
            ServerMessage::TaskUpdate { update } => self.apply(&update),
            ServerMessage::Error {
                code: ErrorCode::NotFound,
                ..
            } => self.gone.set(true),
            _ => {}
        }
    }

    fn apply(self, update: &TaskUpdate) {
        let mut event = None;
        self.task.update(|task| event = task.apply(update));
        if let Some(event) = event {
            self.events.update(|events| events.push(event));
        }
        // Updates carry progress, not results: a task that just ended is read again, whole.
        if changes_state(update) && update.status.is_finished() {
            self.connection.refresh(Topic::Task { id: update.task_id });
        }
    }
}

/// A task known only by its id (a notification's), live while the calling component lives:
/// `None` until the server's snapshot arrives, or for ever when the task is not visible.
pub fn watch_task(id: Uuid) -> RwSignal<Option<Task>> {
    let task = RwSignal::new(None::<Task>);
    let listener = Callback::new(move |message| match message {
        ServerMessage::TaskSnapshot { task: snapshot, .. } => task.set(Some(*snapshot)),
        ServerMessage::TaskUpdate { update } => task.update(|task| {
            if let Some(task) = task {
                task.apply(&update);
            }
        }),
        _ => {}
    });
    LiveConnection::expect().subscribe(Topic::Task { id }, None, listener);
    task
}

/// The dashboard's overview, live: updates patch the listed tasks in place; a task changing
/// state asks for a fresh overview (counts, queue positions, lists).
pub fn live_overview(initial: TaskOverview) -> RwSignal<TaskOverview> {
    let overview = RwSignal::new(initial);
    let refresh = LiveConnection::expect().debounced_refresh(Topic::Tasks);
    let listener = Callback::new(move |message| match message {
        ServerMessage::TasksSnapshot {
            summary,
            active,
            recent,
        } => overview.set(TaskOverview {
            summary,
            active,
            recent,
        }),
        ServerMessage::TaskUpdate { update } => {
            overview.update(|overview| {
                for task in overview.active.iter_mut().chain(&mut overview.recent) {
                    task.apply(&update);
                }
            });
            if changes_state(&update) {
                refresh.run(());
            }
        }
        _ => {}
    });
    LiveConnection::expect().subscribe(Topic::Tasks, None, listener);
    overview
}

/// A page of tasks, live: updates of the listed tasks patch them in place. Tasks that start
/// after the page was loaded are counted in `arrived`, for the page to offer a reload.
pub fn live_task_list(initial: Vec<Task>) -> (RwSignal<Vec<Task>>, RwSignal<usize>) {
    let tasks = RwSignal::new(initial);
    let arrived = RwSignal::new(0);
    let listener = Callback::new(move |message| {
        if let ServerMessage::TaskUpdate { update } = message {
            let mut known = false;
            tasks.update(|tasks| {
                for task in tasks.iter_mut().filter(|task| task.id == update.task_id) {
                    known = true;
                    task.apply(&update);
                }
            });
            if !known && is_new_task(&update) {
                arrived.update(|count| *count += 1);
            }
        }
    });
    LiveConnection::expect().subscribe(Topic::Tasks, None, listener);
    (tasks, arrived)
}

/// A logged status change (queued, started, finished).
fn changes_state(update: &TaskUpdate) -> bool {
    update
        .event
        .as_ref()
        .is_some_and(|event| event.kind == TaskEventKind::Status)
}

/// The first event of a task: it was just created.
fn is_new_task(update: &TaskUpdate) -> bool {
    changes_state(update) && update.event.as_ref().is_some_and(|event| event.seq == 1)
}
