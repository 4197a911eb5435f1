//! Live subscriptions over `/ws`: a task's snapshot then its updates, resuming after a
//! reconnection, who may watch what, unsubscribing, limits, and a client that stops reading.
//!
//! Every wait is for a message or a state, with a timeout; nothing depends on how fast the
//! machine is. Negative checks ("no update of bob's task arrives") use a barrier the protocol
//! guarantees: the hub routes updates in the order the engine published them and each
//! connection sends in the order its frames were queued, so once a later update (or a reply)
//! has arrived, an earlier one that was going to arrive has arrived.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::future::join_all;
use reqwest::header;
use rstest::rstest;
use serde_json::{Value, json};
use tidings::{
    api::tasks::{Task, TaskEvent, TaskEventKind, TaskStatus, TaskUpdate},
    protocol::{
        ClientMessage, ErrorCode, MAX_SUBSCRIPTIONS, SNAPSHOT_EVENTS_LIMIT, ServerMessage, Topic,
    },
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use uuid::Uuid;

use crate::support::{
    Actor, Actors, Backend, TestServer, WsClient,
    tasks::{enqueue, events, request, task, wait_for, wait_until},
};

/// How long a client that stopped reading may take to read what was sent to it.
const RECEIVE_PATIENCE: Duration = Duration::from_secs(30);

/// A `test.steps` task that runs for about `steps × 50 ms`, logging a detail entry about once a
/// second.
fn steps(steps: u64) -> Value {
    json!({ "steps": steps, "step_ms": 50 })
}

/// A task that does nothing quickly: five log entries (pending, running, two stages, completed).
fn instant() -> Value {
    json!({ "steps": 0 })
}

/// Opens `/ws` as `actor` and reads the greeting.
async fn connect(server: &TestServer, actor: &Actor) -> WsClient {
    let mut socket = actor
        .websocket(server, "/ws")
        .await
        .unwrap_or_else(|status| panic!("{} may connect, got {status}", actor.label));
    assert!(matches!(
        socket.receive_message().await,
        ServerMessage::Hello { .. }
    ));
    socket
}

fn task_topic(id: Uuid) -> Topic {
    Topic::Task { id }
}

async fn subscribe(socket: &mut WsClient, topic: Topic, after: Option<i64>) {
    socket
        .send_message(&ClientMessage::Subscribe { topic, after })
        .await;
}

async fn unsubscribe(socket: &mut WsClient, topic: Topic) {
    socket
        .send_message(&ClientMessage::Unsubscribe { topic })
        .await;
}

/// The task a message is about, if any.
fn task_of(message: &ServerMessage) -> Option<Uuid> {
    match message {
        ServerMessage::TaskSnapshot { task, .. } => Some(task.id),
        ServerMessage::TaskUpdate { update } => Some(update.task_id),
        ServerMessage::Error {
            topic: Some(Topic::Task { id }),
            ..
        }
        | ServerMessage::Unsubscribed {
            topic: Topic::Task { id },
        } => Some(*id),
        _ => None,
    }
}

fn is_final_update_of(message: &ServerMessage, id: Uuid) -> bool {
    matches!(message, ServerMessage::TaskUpdate { update }
        if update.task_id == id && update.status.is_finished())
}

fn is_snapshot_of(message: &ServerMessage, id: Uuid) -> bool {
    matches!(message, ServerMessage::TaskSnapshot { task, .. } if task.id == id)
}

/// Receives up to the snapshot of task `id`; nothing else about that task may come first.
async fn receive_snapshot(socket: &mut WsClient, id: Uuid) -> (Task, Vec<TaskEvent>, bool) {
    let received = socket
        .receive_until(|message| task_of(message) == Some(id))
        .await;
    match received.into_iter().last() {
        Some(ServerMessage::TaskSnapshot {
            task,
            events,
            replaces_timeline,
        }) => (*task, events, replaces_timeline),
        other => panic!("the first message about task {id} must be its snapshot, got {other:?}"),
    }
}

/// The error answered for `topic`, after whatever else was queued before it.
async fn receive_error(socket: &mut WsClient, topic: Topic) -> (ErrorCode, String) {
    let received = socket
        .receive_until(|message| matches!(message, ServerMessage::Error { .. }))
        .await;
    match received.into_iter().last() {
        Some(ServerMessage::Error {
            code,
            message,
            topic: Some(echoed),
        }) => {
            assert_eq!(echoed, topic, "the error names its subscription");
            (code, message)
        }
        other => panic!("expected an error about {topic:?}, got {other:?}"),
    }
}

fn seqs(events: &[TaskEvent]) -> Vec<i64> {
    events.iter().map(|event| event.seq).collect()
}

/// A task as a client following the protocol's rule sees it: a snapshot, then updates applied
/// only when not older than the newest entry it knows, their entries appended only when newer.
/// Asserts on the way that updates come in order and entries without gaps.
struct Watched {
    task: Task,
    events: Vec<TaskEvent>,
    /// `seq` of the latest update received: the next may not be older.
    last_update: i64,
    finished: bool,
}

impl Watched {
    fn from_snapshot(task: Task, events: Vec<TaskEvent>) -> Self {
        let newest = events.last().map_or(task.last_event_seq, |event| event.seq);
        assert!(
            newest <= task.last_event_seq,
            "a snapshot's entries are not newer than its task ({newest} > {})",
            task.last_event_seq
        );
        assert_contiguous(&events);
        Watched {
            last_update: 0,
            finished: task.status.is_finished(),
            task,
            events,
        }
    }

    /// The newest entry the client knows.
    fn known(&self) -> i64 {
        self.task.last_event_seq
    }

    fn apply(&mut self, update: &TaskUpdate) {
        let id = self.task.id;
        assert_eq!(update.task_id, id);
        assert!(
            update.seq >= self.last_update,
            "task {id}: update {} after update {}",
            update.seq,
            self.last_update
        );
        self.last_update = update.seq;
        if update.seq < self.known() {
            return;
        }
        assert!(
            !self.finished || update.seq == self.known(),
            "task {id}: an update after its final status: {update:?}"
        );
        self.task.status = update.status;
        self.task.cancel_requested = update.cancel_requested;
        self.task.progress = update.progress.clone();
        self.finished = update.status.is_finished();
        if let Some(event) = &update.event {
            assert_eq!(event.seq, update.seq, "an update's seq is its entry's");
            if event.seq > self.known() {
                assert_eq!(
                    event.seq,
                    self.known() + 1,
                    "task {id}: entry {} skips after {}",
                    event.seq,
                    self.known()
                );
                self.task.last_event_seq = event.seq;
                self.events.push(event.clone());
            }
        }
    }
}

fn assert_contiguous(events: &[TaskEvent]) {
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq + 1,
            "events without gaps: {:?}",
            seqs(events)
        );
    }
}

/// Receives until every task of `watched` has finished, checking each task's stream.
async fn watch_to_the_end(socket: &mut WsClient, watched: &mut HashMap<Uuid, Watched>) {
    while watched.values().any(|task| !task.finished) {
        match socket.receive_message().await {
            ServerMessage::TaskUpdate { update } => {
                if let Some(task) = watched.get_mut(&update.task_id) {
                    task.apply(&update);
                }
            }
            other => panic!("expected task updates, got {other:?}"),
        }
    }
}

/// The client's view of the log must be the log.
async fn assert_same_log(server: &TestServer, watched: &Watched) {
    let stored = events(server, watched.task.id).await;
    assert_eq!(seqs(&watched.events), seqs(&stored));
    for (seen, logged) in watched.events.iter().zip(&stored) {
        assert_eq!((seen.kind, &seen.data), (logged.kind, &logged.data));
    }
}

#[rstest]
#[tokio::test]
async fn a_subscription_gets_the_snapshot_then_every_update_in_order(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let id = enqueue(&server, Some("ann"), "test.steps", steps(100)).await;
    // Progress is saved about once a second (updates carry it in between): wait until the
    // total is saved, so that the snapshot shows it whether it reads the database or the
    // running job.
    wait_until(&server, id, "running with its total saved", |task| {
        task.status == TaskStatus::Running && task.progress.total_items.is_some()
    })
    .await;

    let mut socket = connect(&server, &actors.user_a).await;
    subscribe(&mut socket, task_topic(id), None).await;
    let (snapshot, events, replaces_timeline) = receive_snapshot(&mut socket, id).await;
    assert!(
        replaces_timeline,
        "a first subscription replaces the timeline"
    );
    assert_eq!(snapshot.status, TaskStatus::Running);
    assert_eq!(snapshot.owner.as_deref(), Some("ann"));
    assert_eq!(snapshot.progress.total_items, Some(100));
    assert!(snapshot.progress.processed_items <= 100);
    assert_eq!(snapshot.progress.stage.as_deref(), Some("processing"));
    assert_eq!(
        seqs(&events),
        (1..=snapshot.last_event_seq).collect::<Vec<_>>(),
        "a first snapshot carries the whole (short) log"
    );
    assert_eq!(events[0].kind, TaskEventKind::Status);
    assert_eq!(events[0].data["status"], "pending");

    let mut watched = HashMap::from([(id, Watched::from_snapshot(snapshot, events))]);
    let mut progress = Vec::new();
    while !watched[&id].finished {
        match socket.receive_message().await {
            ServerMessage::TaskUpdate { update } => {
                assert_eq!(update.task_id, id);
                progress.push(update.progress.processed_items);
                watched.get_mut(&id).unwrap().apply(&update);
            }
            other => panic!("expected task updates, got {other:?}"),
        }
    }
    let watched = &watched[&id];
    assert_eq!(watched.task.status, TaskStatus::Completed);
    assert_eq!(watched.task.progress.progress, 100.0);
    assert_eq!(watched.task.progress.processed_items, 100);
    assert!(
        progress.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress never goes back: {progress:?}"
    );
    let last = watched.events.last().unwrap();
    assert_eq!(
        (last.kind, &last.data["status"]),
        (TaskEventKind::Status, &json!("completed"))
    );
    assert_same_log(&server, watched).await;
    // Nothing follows the final update.
    assert_eq!(socket.round_trip(1).await, []);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_task_that_finished_before_the_client_came_shows_as_finished(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let id = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 3 })).await;
    let done = wait_for(&server, id, TaskStatus::Completed).await;

    let mut socket = connect(&server, &actors.user_a).await;
    subscribe(&mut socket, task_topic(id), None).await;
    let (snapshot, events, replaces_timeline) = receive_snapshot(&mut socket, id).await;
    assert!(replaces_timeline);
    assert_eq!(snapshot.status, TaskStatus::Completed);
    assert_eq!(snapshot.progress.progress, 100.0);
    assert_eq!(snapshot.result, Some(json!({ "steps": 3, "attempt": 1 })));
    assert_eq!(snapshot.last_event_seq, done.last_event_seq);
    assert!(snapshot.completed_at.is_some());
    let watched = Watched::from_snapshot(snapshot, events);
    assert_same_log(&server, &watched).await;
    assert_eq!(watched.events.last().unwrap().data["status"], "completed");

    // `after` = 0 (the client has nothing) replays the whole short log, to append.
    subscribe(&mut socket, task_topic(id), Some(0)).await;
    let (_, replayed, replaces_timeline) = receive_snapshot(&mut socket, id).await;
    assert!(!replaces_timeline);
    assert_eq!(seqs(&replayed), seqs(&watched.events));
    assert_eq!(
        socket.round_trip(1).await,
        [],
        "a finished task sends no updates"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_client_that_reconnects_gets_exactly_what_it_missed(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let id = enqueue(&server, Some("ann"), "test.steps", steps(80)).await;
    wait_for(&server, id, TaskStatus::Running).await;

    let mut socket = connect(&server, &actors.user_a).await;
    subscribe(&mut socket, task_topic(id), None).await;
    let (snapshot, events, _) = receive_snapshot(&mut socket, id).await;
    let mut watched = Watched::from_snapshot(snapshot, events);
    // Read a little of the stream, then lose the connection.
    while watched.events.len() < 4 {
        match socket.receive_message().await {
            ServerMessage::TaskUpdate { update } => watched.apply(&update),
            other => panic!("expected task updates, got {other:?}"),
        }
    }
    drop(socket);
    let seen = watched.known();
    wait_until(&server, id, "two events further", |task| {
        task.last_event_seq >= seen + 2
    })
    .await;

    let mut socket = connect(&server, &actors.user_a).await;
    subscribe(&mut socket, task_topic(id), Some(seen)).await;
    let (snapshot, missed, replaces_timeline) = receive_snapshot(&mut socket, id).await;
    assert!(!replaces_timeline, "a short gap is replayed, not replaced");
    assert!(snapshot.last_event_seq >= seen + 2);
    assert_eq!(
        seqs(&missed),
        (seen + 1..=snapshot.last_event_seq).collect::<Vec<_>>(),
        "exactly the missed events"
    );
    watched.task = snapshot;
    watched.events.extend(missed);
    watched.last_update = 0;
    watched.finished = watched.task.status.is_finished();
    let mut all = HashMap::from([(id, watched)]);
    watch_to_the_end(&mut socket, &mut all).await;
    assert_eq!(all[&id].task.status, TaskStatus::Completed);
    assert_same_log(&server, &all[&id]).await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_gap_too_long_to_replay_replaces_the_timeline(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    // `test.fanout` runs until cancelled and logs nothing of its own; the log it should have
    // is written here, as a job's stages would be.
    let id = enqueue(
        &server,
        Some("ann"),
        "test.fanout",
        json!({ "children": 0 }),
    )
    .await;
    wait_for(&server, id, TaskStatus::Running).await;
    let extra = i64::from(SNAPSHOT_EVENTS_LIMIT) + 50;
    for stage in 0..extra {
        server
            .state()
            .db
            .log_stage(id, &format!("stage {stage}"), None, chrono::Utc::now())
            .await
            .unwrap()
            .expect("the task is running");
    }
    let newest = task(&server, id).await.last_event_seq;
    assert_eq!(newest, 2 + extra);
    let limit = i64::from(SNAPSHOT_EVENTS_LIMIT);
    let newest_page: Vec<i64> = (newest - limit + 1..=newest).collect();

    let mut socket = connect(&server, &actors.user_a).await;
    let cases = [
        (None, true, newest_page.clone()),
        (Some(0), true, newest_page.clone()),
        (Some(newest - limit - 1), true, newest_page.clone()),
        (Some(newest - limit), false, newest_page.clone()),
        (Some(newest - 3), false, (newest - 2..=newest).collect()),
        (Some(newest), false, Vec::new()),
        // Further than the log: the client's state is not this server's; start over.
        (Some(newest + 10), true, newest_page.clone()),
        (Some(i64::MAX), true, newest_page),
    ];
    for (after, replaces, expected) in cases {
        subscribe(&mut socket, task_topic(id), after).await;
        let (snapshot, events, replaces_timeline) = receive_snapshot(&mut socket, id).await;
        assert_eq!(snapshot.last_event_seq, newest);
        assert_eq!(replaces_timeline, replaces, "after {after:?}");
        assert_eq!(seqs(&events), expected, "after {after:?}");
    }

    for after in [-1, i64::MIN] {
        subscribe(&mut socket, task_topic(id), Some(after)).await;
        let (code, message) = receive_error(&mut socket, task_topic(id)).await;
        assert_eq!(code, ErrorCode::MalformedMessage, "after {after}");
        assert!(message.contains("after"), "{message}");
    }
    assert_eq!(socket.round_trip(7).await, [], "the connection stays open");

    // The subscription made above still streams: the cancellation arrives.
    let stored = task(&server, id).await;
    server.state().engine.cancel(&stored).await.unwrap();
    let received = socket
        .receive_until(|message| is_final_update_of(message, id))
        .await;
    let ServerMessage::TaskUpdate { update } = received.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(update.status, TaskStatus::Cancelled);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn updates_of_tasks_running_side_by_side_each_come_in_order(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let input = json!({ "steps": 60, "step_ms": 20 });
    let anns = enqueue(&server, Some("ann"), "test.steps", input.clone()).await;
    let bobs = enqueue(&server, Some("bob"), "test.steps", input).await;
    wait_for(&server, anns, TaskStatus::Running).await;
    wait_for(&server, bobs, TaskStatus::Running).await;

    // The admin watches both tasks directly and through every task: each update still comes
    // once.
    let mut socket = connect(&server, &actors.admin).await;
    let mut watched = HashMap::new();
    for id in [anns, bobs] {
        subscribe(&mut socket, task_topic(id), None).await;
        let (snapshot, events, _) = receive_snapshot(&mut socket, id).await;
        watched.insert(id, Watched::from_snapshot(snapshot, events));
    }
    subscribe(&mut socket, Topic::Tasks, None).await;
    let mut event_seqs: HashMap<Uuid, Vec<i64>> = HashMap::new();
    while watched.values().any(|task| !task.finished) {
        match socket.receive_message().await {
            ServerMessage::TaskUpdate { update } => {
                let task = watched.get_mut(&update.task_id).expect("one of the two");
                if let Some(event) = &update.event
                    && event.seq > task.known()
                {
                    event_seqs
                        .entry(update.task_id)
                        .or_default()
                        .push(event.seq);
                }
                task.apply(&update);
            }
            ServerMessage::TasksSnapshot { .. } => {}
            other => panic!("expected task updates, got {other:?}"),
        }
    }
    for id in [anns, bobs] {
        assert_eq!(watched[&id].task.status, TaskStatus::Completed);
        assert_same_log(&server, &watched[&id]).await;
        let new = &event_seqs[&id];
        assert!(
            new.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "each new event once, in order: {new:?}"
        );
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn the_tasks_topic_brings_each_new_tasks_log_in_order(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let mut socket = connect(&server, &actors.user_a).await;
    subscribe(&mut socket, Topic::Tasks, None).await;
    socket
        .receive_until(|message| matches!(message, ServerMessage::TasksSnapshot { .. }))
        .await;
    // Tasks enqueued while others run: a watcher sees each from its first entry.
    let template = request(&server, Some("ann"), "test.steps", instant()).await;
    let ids: Vec<Uuid> = join_all((0..30).map(|_| server.state().engine.enqueue(template.clone())))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut logs: HashMap<Uuid, Vec<i64>> = HashMap::new();
    let mut finished = HashSet::new();
    while finished.len() < ids.len() {
        match socket.receive_message().await {
            ServerMessage::TaskUpdate { update } => {
                if let Some(event) = &update.event {
                    logs.entry(update.task_id).or_default().push(event.seq);
                }
                if update.status.is_finished() {
                    finished.insert(update.task_id);
                }
            }
            other => panic!("expected task updates, got {other:?}"),
        }
    }
    for id in &ids {
        let stored = seqs(&events(&server, *id).await);
        assert_eq!(
            logs[id], stored,
            "task {id}: its entries once each, in order"
        );
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_user_cannot_watch_somebody_elses_task(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    // Bob's task ticks about ten times a second for a while.
    let bobs = enqueue(
        &server,
        Some("bob"),
        "test.steps",
        json!({ "steps": 400, "step_ms": 10 }),
    )
    .await;
    wait_for(&server, bobs, TaskStatus::Running).await;

    let mut ann = connect(&server, &actors.user_a).await;
    // Many attempts while bob's task keeps changing: none may let an update through, not even
    // one published while the answer was being prepared.
    const ATTEMPTS: usize = 50;
    let mut leaked = 0;
    for round in 0..10 {
        for _ in 0..ATTEMPTS {
            subscribe(&mut ann, task_topic(bobs), None).await;
        }
        for _ in 0..ATTEMPTS {
            let received = ann
                .receive_until(|message| matches!(message, ServerMessage::Error { .. }))
                .await;
            let Some(ServerMessage::Error {
                code,
                topic,
                message,
            }) = received.last()
            else {
                unreachable!()
            };
            assert_eq!(*code, ErrorCode::NotFound, "{message}");
            assert_eq!(*topic, Some(task_topic(bobs)));
            leaked += received
                .iter()
                .filter(|message| {
                    matches!(
                        message,
                        ServerMessage::TaskUpdate { .. } | ServerMessage::TaskSnapshot { .. }
                    ) && task_of(message) == Some(bobs)
                })
                .count();
        }
        let metrics = server.state().live.metrics();
        assert_eq!(metrics.subscriptions, 0, "round {round}: no route is kept");
    }
    assert_eq!(leaked, 0, "updates of bob's task reached ann");

    for id in [Uuid::nil(), Uuid::now_v7(), Uuid::max()] {
        subscribe(&mut ann, task_topic(id), None).await;
        let (code, _) = receive_error(&mut ann, task_topic(id)).await;
        assert_eq!(code, ErrorCode::NotFound, "{id}");
    }
    assert_eq!(ann.round_trip(1).await, [], "the connection stays open");

    // Bob and the admin may watch it.
    for actor in [&actors.user_b, &actors.admin] {
        let mut socket = connect(&server, actor).await;
        subscribe(&mut socket, task_topic(bobs), None).await;
        let (snapshot, _, _) = receive_snapshot(&mut socket, bobs).await;
        assert_eq!(snapshot.owner.as_deref(), Some("bob"), "{}", actor.label);
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn the_tasks_topic_shows_a_user_their_own_tasks_and_an_admin_everybodys(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let anns_done = enqueue(&server, Some("ann"), "test.steps", instant()).await;
    let bobs_done = enqueue(&server, Some("bob"), "test.steps", instant()).await;
    wait_for(&server, anns_done, TaskStatus::Completed).await;
    wait_for(&server, bobs_done, TaskStatus::Completed).await;
    // Running until cancelled.
    let until_cancelled = json!({ "children": 0 });
    let anns = enqueue(&server, Some("ann"), "test.fanout", until_cancelled.clone()).await;
    let bobs = enqueue(&server, Some("bob"), "test.fanout", until_cancelled).await;
    let anns_running = wait_for(&server, anns, TaskStatus::Running).await;
    let bobs_running = wait_for(&server, bobs, TaskStatus::Running).await;

    let mut ann = connect(&server, &actors.user_a).await;
    let mut admin = connect(&server, &actors.admin).await;
    let mut snapshots = Vec::new();
    for socket in [&mut ann, &mut admin] {
        subscribe(socket, Topic::Tasks, None).await;
        let received = socket
            .receive_until(|message| matches!(message, ServerMessage::TasksSnapshot { .. }))
            .await;
        assert!(
            received.len() == 1,
            "the snapshot is the first answer: {received:?}"
        );
        let Some(ServerMessage::TasksSnapshot {
            summary,
            active,
            recent,
        }) = received.into_iter().last()
        else {
            unreachable!()
        };
        let ids = |tasks: &[Task]| tasks.iter().map(|task| task.id).collect::<HashSet<_>>();
        snapshots.push((summary, ids(&active), ids(&recent)));
    }
    let (summary, active, recent) = &snapshots[0];
    assert_eq!(
        (summary.total, summary.running, summary.completed),
        (2, 1, 1)
    );
    assert_eq!(*active, HashSet::from([anns]));
    assert_eq!(*recent, HashSet::from([anns_done]));
    let (summary, active, recent) = &snapshots[1];
    assert_eq!(
        (summary.total, summary.running, summary.completed),
        (4, 2, 2)
    );
    assert_eq!(*active, HashSet::from([anns, bobs]));
    assert_eq!(*recent, HashSet::from([anns_done, bobs_done]));

    // Both tasks end; then one more of ann's runs, after them: once it has reached a client,
    // everything published before it has too.
    for task in [&anns_running, &bobs_running] {
        server.state().engine.cancel(task).await.unwrap();
        wait_for(&server, task.id, TaskStatus::Cancelled).await;
    }
    let last = enqueue(&server, Some("ann"), "test.steps", instant()).await;
    let anns_view = updates_until_final(&mut ann, last).await;
    let admins_view = updates_until_final(&mut admin, last).await;
    let tasks_in =
        |view: &[(Uuid, TaskStatus)]| view.iter().map(|(id, _)| *id).collect::<HashSet<_>>();
    assert_eq!(tasks_in(&anns_view), HashSet::from([anns, last]));
    assert_eq!(tasks_in(&admins_view), HashSet::from([anns, bobs, last]));
    for view in [&anns_view, &admins_view] {
        assert!(view.contains(&(anns, TaskStatus::Cancelled)));
        assert!(view.contains(&(last, TaskStatus::Completed)));
    }
    assert!(admins_view.contains(&(bobs, TaskStatus::Cancelled)));
    server.stop().await;
}

/// The (task, status) of every update received up to the final update of task `last`.
async fn updates_until_final(socket: &mut WsClient, last: Uuid) -> Vec<(Uuid, TaskStatus)> {
    socket
        .receive_until(|message| is_final_update_of(message, last))
        .await
        .iter()
        .map(|message| match message {
            ServerMessage::TaskUpdate { update } => (update.task_id, update.status),
            other => panic!("expected task updates, got {other:?}"),
        })
        .collect()
}

/// Starts a task that runs until cancelled, watches it, cancels it and receives up to its
/// final update: the hub routes in order, so whatever it routed to this connection before has
/// arrived by then. Answers what came before that final update.
async fn barrier(server: &TestServer, socket: &mut WsClient, owner: &str) -> Vec<ServerMessage> {
    let id = enqueue(server, Some(owner), "test.fanout", json!({ "children": 0 })).await;
    let running = wait_for(server, id, TaskStatus::Running).await;
    subscribe(socket, task_topic(id), None).await;
    let mut received = socket
        .receive_until(|message| is_snapshot_of(message, id))
        .await;
    server.state().engine.cancel(&running).await.unwrap();
    received.extend(
        socket
            .receive_until(|message| is_final_update_of(message, id))
            .await,
    );
    received.retain(|message| task_of(message) != Some(id));
    received
}

#[rstest]
#[tokio::test]
async fn subscribing_twice_gives_a_fresh_snapshot_and_one_stream(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let id = enqueue(&server, Some("ann"), "test.steps", steps(40)).await;
    wait_for(&server, id, TaskStatus::Running).await;
    let mut socket = connect(&server, &actors.user_a).await;

    subscribe(&mut socket, task_topic(id), None).await;
    let (first, first_events, _) = receive_snapshot(&mut socket, id).await;
    subscribe(&mut socket, task_topic(id), Some(first.last_event_seq)).await;
    let mut received = socket
        .receive_until(|message| is_snapshot_of(message, id))
        .await;
    let Some(ServerMessage::TaskSnapshot {
        task: second,
        events: replayed,
        replaces_timeline,
    }) = received.pop()
    else {
        unreachable!()
    };
    assert!(!replaces_timeline);
    assert!(second.last_event_seq >= first.last_event_seq);
    assert_eq!(
        seqs(&replayed),
        (first.last_event_seq + 1..=second.last_event_seq).collect::<Vec<_>>()
    );
    assert_eq!(server.state().live.metrics().subscriptions, 1, "one route");
    received.extend(
        socket
            .receive_until(|message| is_final_update_of(message, id))
            .await,
    );
    // One route, so each logged entry comes as an update at most once; with the snapshots,
    // the client has the whole log.
    let updated: Vec<i64> = received
        .iter()
        .filter_map(|message| match message {
            ServerMessage::TaskUpdate { update } => update.event.as_ref().map(|event| event.seq),
            other => panic!("expected task updates, got {other:?}"),
        })
        .collect();
    assert!(
        updated.windows(2).all(|pair| pair[0] < pair[1]),
        "each entry once, in order: {updated:?}"
    );
    let mut known: Vec<i64> = seqs(&first_events);
    known.extend(seqs(&replayed));
    known.extend(updated);
    known.sort_unstable();
    known.dedup();
    assert_eq!(known, seqs(&events(&server, id).await));
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn unsubscribing_stops_the_updates(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let id = enqueue(
        &server,
        Some("ann"),
        "test.fanout",
        json!({ "children": 0 }),
    )
    .await;
    let running = wait_for(&server, id, TaskStatus::Running).await;
    let mut socket = connect(&server, &actors.user_a).await;
    subscribe(&mut socket, task_topic(id), None).await;
    receive_snapshot(&mut socket, id).await;
    assert_eq!(server.state().live.metrics().subscriptions, 1);

    let unsubscribed = ServerMessage::Unsubscribed {
        topic: task_topic(id),
    };
    unsubscribe(&mut socket, task_topic(id)).await;
    socket
        .receive_until(|message| *message == unsubscribed)
        .await;
    assert_eq!(server.state().live.metrics().subscriptions, 0);
    // Unsubscribing again (or from anything not subscribed) is answered the same way.
    unsubscribe(&mut socket, task_topic(id)).await;
    assert_eq!(socket.receive_message().await, unsubscribed);
    unsubscribe(&mut socket, Topic::Tasks).await;
    assert_eq!(
        socket.receive_message().await,
        ServerMessage::Unsubscribed {
            topic: Topic::Tasks
        }
    );

    // The task changes and ends unwatched: none of its updates arrive.
    server.state().engine.cancel(&running).await.unwrap();
    wait_for(&server, id, TaskStatus::Cancelled).await;
    let received = barrier(&server, &mut socket, "ann").await;
    assert!(
        !received.iter().any(|message| task_of(message) == Some(id)),
        "nothing about an unsubscribed task: {received:?}"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn each_subscription_starts_with_its_snapshot(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = TestServer::start_with(backend, |config| config.tasks.max_concurrent = 8).await;
    let actors = Actors::sign_up(&server).await;
    // Busy tasks: each ticks about ten times a second.
    let busy = json!({ "steps": 2000, "step_ms": 2 });
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(enqueue(&server, Some("ann"), "test.steps", busy.clone()).await);
    }
    for id in &ids {
        wait_for(&server, *id, TaskStatus::Running).await;
    }
    let mut socket = connect(&server, &actors.admin).await;
    // A client that subscribes cannot tell an update queued before the snapshot from one that
    // is newer than it: the snapshot must come first.
    for round in 0..100 {
        let id = ids[round % ids.len()];
        subscribe(&mut socket, task_topic(id), None).await;
        receive_snapshot(&mut socket, id).await;
        unsubscribe(&mut socket, task_topic(id)).await;
        socket
            .receive_until(|message| matches!(message, ServerMessage::Unsubscribed { .. }))
            .await;

        subscribe(&mut socket, Topic::Tasks, None).await;
        let first = socket.receive_message().await;
        assert!(
            matches!(first, ServerMessage::TasksSnapshot { .. }),
            "round {round}: the first answer must be the snapshot, got {first:?}"
        );
        unsubscribe(&mut socket, Topic::Tasks).await;
        socket
            .receive_until(|message| matches!(message, ServerMessage::Unsubscribed { .. }))
            .await;
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_connection_holds_a_limited_number_of_subscriptions(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let request = request(&server, Some("ann"), "test.steps", instant()).await;
    let ids: Vec<Uuid> = join_all((0..MAX_SUBSCRIPTIONS).map(|_| {
        let request = request.clone();
        let engine = server.state().engine.clone();
        async move { engine.enqueue(request).await.unwrap() }
    }))
    .await;
    for id in &ids {
        wait_for(&server, *id, TaskStatus::Completed).await;
    }

    let mut socket = connect(&server, &actors.user_a).await;
    subscribe(&mut socket, Topic::Tasks, None).await;
    for id in &ids[1..] {
        subscribe(&mut socket, task_topic(*id), None).await;
    }
    let mut snapshots = 0;
    while snapshots < MAX_SUBSCRIPTIONS {
        match socket.receive_message().await {
            ServerMessage::TaskSnapshot { .. } | ServerMessage::TasksSnapshot { .. } => {
                snapshots += 1;
            }
            other => panic!("expected snapshots, got {other:?}"),
        }
    }
    assert_eq!(
        server.state().live.metrics().subscriptions,
        MAX_SUBSCRIPTIONS as u64
    );

    let one_too_many = task_topic(ids[0]);
    subscribe(&mut socket, one_too_many, None).await;
    let (code, message) = receive_error(&mut socket, one_too_many).await;
    assert_eq!(code, ErrorCode::TooManySubscriptions);
    assert!(
        message.contains(&MAX_SUBSCRIPTIONS.to_string()),
        "{message}"
    );
    // Renewing a subscription held is no new subscription.
    subscribe(&mut socket, task_topic(ids[1]), None).await;
    receive_snapshot(&mut socket, ids[1]).await;
    // After one unsubscription there is room again.
    unsubscribe(&mut socket, task_topic(ids[1])).await;
    socket
        .receive_until(|message| matches!(message, ServerMessage::Unsubscribed { .. }))
        .await;
    subscribe(&mut socket, one_too_many, None).await;
    receive_snapshot(&mut socket, ids[0]).await;
    assert_eq!(
        server.state().live.metrics().subscriptions,
        MAX_SUBSCRIPTIONS as u64
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_holds_up_nobody(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    // A busy task: stage changes of about 33 KB each (the message is in the progress and in the
    // logged event), published as fast as they are logged once the go file exists. A client
    // that stops reading falls OUTBOX_CAPACITY frames behind after the kernel's buffers
    // (a few megabytes on loopback) are full: well before the task's end.
    let go = tempfile::tempdir().unwrap();
    let go_file = go.path().join("go");
    let updates = 1200;
    let id = enqueue(
        &server,
        Some("ann"),
        "test.broadcast",
        json!({ "updates": updates, "padding": 16 * 1024, "go_file": go_file }),
    )
    .await;
    wait_until(&server, id, "waiting for its go file", |task| {
        task.progress.stage.as_deref() == Some("waiting")
    })
    .await;

    let mut reader = connect(&server, &actors.user_a).await;
    subscribe(&mut reader, task_topic(id), None).await;
    let (snapshot, events, _) = receive_snapshot(&mut reader, id).await;
    let mut watched = Watched::from_snapshot(snapshot, events);
    // The same subscription, never read again.
    let headers = [
        (header::ORIGIN, server.origin()),
        (header::COOKIE, actors.user_a.cookie.clone().unwrap()),
    ];
    let mut stalled = WsClient::connect_with_small_window(server.address, "/ws", &headers).await;
    subscribe(&mut stalled, task_topic(id), None).await;
    server
        .wait_for_live("both subscribed", |metrics| metrics.subscriptions == 2)
        .await;

    std::fs::write(&go_file, b"").unwrap();
    let mut stalled = Some(stalled);
    let mut stalled_end = None;
    let mut stages = 0;
    while !watched.finished {
        // Once the server has given up on the stalled client, the client reads what reached
        // it (the server waits a while for it to take the close frame).
        if server.state().live.metrics().slow_closed > 0
            && let Some(mut stalled) = stalled.take()
        {
            stalled_end = Some(tokio::spawn(async move {
                stalled.drain_until_closed(RECEIVE_PATIENCE).await
            }));
        }
        match reader.receive_message().await {
            ServerMessage::TaskUpdate { update } => {
                if update.event.as_ref().is_some_and(|event| {
                    event.kind == TaskEventKind::Stage && event.data["stage"] == "broadcast"
                }) {
                    stages += 1;
                }
                watched.apply(&update);
            }
            other => panic!("expected task updates, got {other:?}"),
        }
    }
    assert_eq!(watched.task.status, TaskStatus::Completed);
    assert_eq!(stages, updates, "the reader got every stage");
    assert_same_log(&server, &watched).await;

    let metrics = server.state().live.metrics();
    assert_eq!(
        metrics.slow_closed, 1,
        "the stalled client was closed: {metrics:?}"
    );
    assert_eq!(metrics.lag_resets, 0);
    // What reached the stalled client before it was closed, then the reason.
    let (frames, close) = stalled_end
        .expect("the stalled client was closed while the task ran")
        .await
        .unwrap();
    let close = close.expect("the server says why it closed");
    assert_eq!(close.code, CloseCode::Again);
    assert!(close.reason.contains("fast enough"), "{}", close.reason);
    assert!(
        frames < updates,
        "the server dropped what the stalled client could not take ({frames} frames)"
    );
    server
        .wait_for_live("the stalled connection gone", |metrics| {
            metrics.connections == 1 && metrics.subscriptions == 1
        })
        .await;
    assert_eq!(reader.round_trip(1).await, [], "the reader is unaffected");
    server.stop().await;
}

#[tokio::test]
async fn malformed_subscriptions_get_an_error_and_the_connection_stays_open() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let mut socket = connect(&server, &actors.user_a).await;
    let id = Uuid::now_v7();
    let bad_frames = [
        json!({ "type": "subscribe" }),
        json!({ "type": "subscribe", "topic": null }),
        json!({ "type": "subscribe", "topic": "tasks" }),
        json!({ "type": "subscribe", "topic": {} }),
        json!({ "type": "subscribe", "topic": { "kind": "everything" } }),
        json!({ "type": "subscribe", "topic": { "kind": "task" } }),
        json!({ "type": "subscribe", "topic": { "kind": "task", "id": null } }),
        json!({ "type": "subscribe", "topic": { "kind": "task", "id": "not-a-uuid" } }),
        json!({ "type": "subscribe", "topic": { "kind": "task", "id": 42 } }),
        json!({ "type": "subscribe", "topic": { "kind": "task", "id": id, "owner": "bob" } }),
        json!({ "type": "subscribe", "topic": { "kind": "tasks" }, "all": true }),
        json!({ "type": "subscribe", "topic": { "kind": "task", "id": id }, "after": "3" }),
        json!({ "type": "subscribe", "topic": { "kind": "task", "id": id }, "after": 1.5 }),
        json!({ "type": "subscribe", "topic": { "kind": "task", "id": id }, "after": 1e30 }),
        json!({ "type": "subscribe", "topic": [{ "kind": "tasks" }] }),
        json!({ "type": "unsubscribe" }),
        json!({ "type": "unsubscribe", "topic": { "kind": "task", "id": "x" } }),
        json!({ "type": "unsubscribe", "topic": { "kind": "tasks" }, "after": 1 }),
        json!({ "type": "Subscribe", "topic": { "kind": "tasks" } }),
    ];
    for (nonce, frame) in (0..).zip(bad_frames) {
        socket.send_json(frame.clone()).await;
        match socket.receive_message().await {
            ServerMessage::Error {
                code: ErrorCode::MalformedMessage,
                message,
                topic: None,
            } => assert!(!message.is_empty()),
            other => panic!("{frame} was answered with {other:?}"),
        }
        assert_eq!(socket.round_trip(nonce).await, [], "after {frame}");
    }
    let metrics = server.state().live.metrics();
    assert_eq!((metrics.connections, metrics.subscriptions), (1, 0));
    // The connection still serves real subscriptions.
    subscribe(&mut socket, Topic::Tasks, None).await;
    assert!(matches!(
        socket.receive_message().await,
        ServerMessage::TasksSnapshot { .. }
    ));
    server.stop().await;
}

/// Extra fields in a topic are refused like extra fields anywhere else in a frame: a client
/// that believes it asked for something narrower (or wider) must learn that it did not.
#[tokio::test]
async fn a_topic_with_unknown_fields_is_malformed() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let mut socket = connect(&server, &actors.user_a).await;
    for frame in [
        json!({ "type": "subscribe", "topic": { "kind": "tasks", "owner": "bob" } }),
        json!({ "type": "subscribe", "topic": { "kind": "tasks", "id": Uuid::nil() } }),
        json!({ "type": "unsubscribe", "topic": { "kind": "tasks", "all": true } }),
    ] {
        socket.send_json(frame.clone()).await;
        let reply = socket.receive_message().await;
        assert!(
            matches!(
                reply,
                ServerMessage::Error {
                    code: ErrorCode::MalformedMessage,
                    ..
                }
            ),
            "{frame} was answered with {reply:?}"
        );
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn the_hub_counts_connections_and_subscriptions_until_they_end(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let id = enqueue(&server, Some("ann"), "test.steps", instant()).await;
    wait_for(&server, id, TaskStatus::Completed).await;
    assert_eq!(
        server.state().live.metrics().connections,
        0,
        "nobody is connected yet"
    );

    let mut ann = connect(&server, &actors.user_a).await;
    let mut admin = connect(&server, &actors.admin).await;
    let mut bob = connect(&server, &actors.user_b).await;
    for socket in [&mut ann, &mut admin] {
        subscribe(socket, Topic::Tasks, None).await;
        subscribe(socket, task_topic(id), None).await;
        receive_snapshot(socket, id).await;
    }
    // A refused subscription holds nothing.
    subscribe(&mut bob, task_topic(id), None).await;
    receive_error(&mut bob, task_topic(id)).await;
    let metrics = server.state().live.metrics();
    assert_eq!((metrics.connections, metrics.subscriptions), (3, 4));

    unsubscribe(&mut ann, Topic::Tasks).await;
    ann.receive_until(|message| matches!(message, ServerMessage::Unsubscribed { .. }))
        .await;
    assert_eq!(server.state().live.metrics().subscriptions, 3);

    drop(admin);
    server
        .wait_for_live("the admin's connection gone", |metrics| {
            metrics.connections == 2 && metrics.subscriptions == 1
        })
        .await;
    // A connection that ends with a close handshake is forgotten the same way.
    drop(bob);
    ann.close().await;
    server
        .wait_for_live("every connection gone", |metrics| {
            metrics.connections == 0 && metrics.subscriptions == 0
        })
        .await;
    server.stop().await;
}
