//! The original system's WebSocket endpoints, kept for its existing clients (SPEC §1.2,
//! "Compatibility endpoints"): `/ws/bulk-process/{job_id}` follows one job,
//! `/ws/progress/{topic_id}` follows the jobs its client subscribes to.
//!
//! Both are served like the app's own [`/ws`](super::ws): the caller must be signed in
//! (session cookie or API token; 401 otherwise), a socket opened by another site's page is
//! refused with 403, a job is visible to its owner and to administrators only (anybody else's
//! job is "not found", like an unknown one), the server pings, and everything sent goes
//! through the connection's outbox of the [live hub](crate::live).
//!
//! # Messages
//!
//! Every frame is a JSON object with a `type`; `timestamp`s are RFC 3339 in UTC.
//!
//! Server to client:
//! - `{"type":"direct_message","status":"connected","job_id"|"topic_id":…,"timestamp":…,
//!   "message":…}` — the greeting.
//! - `{"type":"job_update","job_id":…,"timestamp":…,"status":…,"task_status":…, payload}` —
//!   the state of a job. `status` is the original system's: `progress` (pending or running; a
//!   pending job has `stage` `"queued"`), `batch_update` (the job reported structured detail),
//!   `completed`, or `error` (failed or cancelled). `task_status` is this server's status
//!   (`pending`, `running`, `completed`, `failed`, `cancelled`). The payload has `progress`
//!   (percent, 0–100; 100 once completed), `processed`, `total` (null while unknown),
//!   `stage`, `message` and `current_item` (null when unset); a `batch_update` also has every
//!   key of the job's detail, and `batch_completed` / `total_batches` / `results` when the
//!   detail has them (`batch_completed` from `batch_completed`, `batch` or
//!   `completed_batches`; `total_batches` from `total_batches` or `batches`); `completed` has
//!   `results` (the job's result, null if it has none) and `error` has `error` (the failure's
//!   text; `"cancelled"` for a cancelled job). The first `job_update` of a subscription is
//!   the job's snapshot, marked `"snapshot":true`; it may also carry `queue_position` and the
//!   batch fields of the job's latest detail. The envelope — `type`, `job_id`, `timestamp`,
//!   `status`, `task_status` (and `snapshot`) — is written last: keys of the job's detail
//!   never replace it.
//! - `{"type":"job_status", …}` — the answer to `get_status`: shaped like a snapshot
//!   (`job_update` fields, `task_status`, no `snapshot` flag), read fresh from the database.
//! - `{"type":"pong","timestamp":…}`, `{"type":"subscribed","job_id":…,"timestamp":…}`,
//!   `{"type":"unsubscribed","job_id":…,"timestamp":…}`.
//! - `{"type":"error","message":…}`, with the request's `job_id` when it named one; a frame
//!   that is not JSON gets exactly `{"type":"error","message":"Invalid JSON message"}`.
//!
//! Client to server: `{"type":"ping"}`; `{"type":"get_status"}` (on `/ws/progress` with a
//! `job_id`); on `/ws/progress` only, `{"type":"subscribe_job","job_id":…}` and
//! `{"type":"unsubscribe_job","job_id":…}`. Anything else gets an `error` and the socket
//! stays open.
//!
//! # `/ws/bulk-process/{job_id}`
//!
//! Sends the greeting, then the job's snapshot, then its updates. A malformed, unknown or
//! foreign job id gets an `error` message, then a close frame with code 1008 (policy
//! violation) and reason `invalid job id` or `job not found` (1011 when the database cannot
//! answer). When the job has ended (`completed` or `error`), the socket stays open until the
//! client closes it: `get_status` and `ping` keep working.
//!
//! # `/ws/progress/{topic_id}`
//!
//! `topic_id` is a free label (at most 200 characters, no control characters; otherwise an
//! `error` and close 1008). `subscribe_job` answers `subscribed`, then the job's snapshot,
//! then its updates; up to [`MAX_SUBSCRIPTIONS`] jobs per socket. Subscribing to a job again
//! answers a fresh snapshot. An unknown or foreign job gets an `error` and the socket stays
//! open.
//!
//! # Snapshot, then stream
//!
//! As on `/ws` (see `services::live`): a subscription checks access, queues the greeting or
//! `subscribed`, reserves the snapshot's place in the outbox, registers the job's hub route and
//! reads the job into that place. Updates routed meanwhile leave after the snapshot; those it
//! already covers (`seq` below its `last_event_seq`, or an event it counts) are dropped, since
//! the original's clients do not sort them out themselves.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{
        Path, State,
        ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code},
    },
    http::HeaderMap,
    response::Response,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    AppState,
    ws::{READ_BUFFER_BYTES, SocketSession, close, close_handshake, send_all, serve_socket},
};
use crate::{
    api::tasks::{Task, TaskEvent, TaskEventKind, TaskProgress, TaskStatus, TaskUpdate},
    auth::{CurrentUser, middleware::is_same_origin},
    error::AppError,
    live::{Connection, Dialect, Outbox, Outgoing, Route},
    protocol::{MAX_CLIENT_MESSAGE_BYTES, MAX_SUBSCRIPTIONS, Topic},
    services::{self, tasks},
};

/// The longest `topic_id`, in characters.
const MAX_TOPIC_CHARS: usize = 200;
/// A client's `job_id` is repeated in an error only up to this many characters.
const MAX_ECHOED_JOB_ID_CHARS: usize = 100;
/// A client's unknown `type` is quoted in the error only up to this many characters.
const MAX_ECHOED_TYPE_CHARS: usize = 50;

const INVALID_JSON: &str = "Invalid JSON message";
const NOT_AN_OBJECT: &str = "A message must be a JSON object with a string \"type\"";
const INVALID_JOB_ID: &str = "Invalid job id";
const MISSING_JOB_ID: &str = "Missing job_id";
const JOB_NOT_FOUND: &str = "Job not found";
const UNAVAILABLE: &str = "The server cannot answer now; try again";
const BINARY_FRAME: &str = "Binary frames are not supported; send JSON text";

/// `/ws/bulk-process/{job_id}`: the updates of one job.
pub async fn bulk_process(
    caller: CurrentUser,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    State(state): State<AppState>,
    socket: WebSocketUpgrade,
) -> Result<Response, AppError> {
    accept(
        &headers,
        state,
        caller,
        socket,
        Endpoint::BulkProcess(job_id),
    )
}

/// `/ws/progress/{topic_id}`: the updates of the jobs the client subscribes to.
pub async fn progress(
    caller: CurrentUser,
    headers: HeaderMap,
    Path(topic_id): Path<String>,
    State(state): State<AppState>,
    socket: WebSocketUpgrade,
) -> Result<Response, AppError> {
    accept(
        &headers,
        state,
        caller,
        socket,
        Endpoint::Progress(topic_id),
    )
}

/// What the client connected to, as its path gave it.
enum Endpoint {
    BulkProcess(String),
    Progress(String),
}

/// Accepts the upgrade for a signed-in caller from a page of this site (403 otherwise).
fn accept(
    headers: &HeaderMap,
    state: AppState,
    caller: CurrentUser,
    socket: WebSocketUpgrade,
    endpoint: Endpoint,
) -> Result<Response, AppError> {
    if !is_same_origin(headers) {
        return Err(AppError::Forbidden("cross-site WebSocket refused".into()));
    }
    Ok(socket
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_connection(socket, state, caller, endpoint)))
}

async fn serve_connection(
    mut socket: WebSocket,
    state: AppState,
    caller: CurrentUser,
    endpoint: Endpoint,
) {
    tracing::debug!(user = %caller.user.username, "compatibility websocket connected");
    let mut session = Session {
        live: state.live.connect(Dialect::Updates),
        state,
        caller,
        watches: HashMap::new(),
        job: None,
    };
    let outbox = session.live.outbox().clone();
    if let Err(refusal) = session.open(endpoint).await {
        let mut frames = vec![
            Message::Text(text(&refusal.message)),
            Message::Close(Some(close(refusal.code, refusal.reason))),
        ];
        // The peer may already be gone; there is nobody left to tell about a failure here.
        let _ = send_all(&mut socket, &mut frames, &outbox).await;
        return;
    }
    let closing = serve_socket(&mut socket, &mut session).await;
    // The connection no longer takes updates, whatever the closing handshake takes.
    drop(session);
    if let Some(frame) = closing {
        close_handshake(&mut socket, frame).await;
    }
    tracing::debug!("compatibility websocket closed");
}

impl SocketSession for Session {
    fn outbox(&self) -> &Arc<Outbox> {
        self.live.outbox()
    }

    fn shutdown(&self) -> &CancellationToken {
        &self.state.shutdown
    }

    async fn frames(&mut self, batch: &mut Vec<Outgoing>) -> Vec<Message> {
        self.render(batch).await
    }

    async fn answer(&mut self, message: Message) {
        Session::answer(self, message).await;
    }
}

/// Why a socket is closed right after it opened: the message to send, then the close frame.
struct Refusal {
    message: Value,
    code: u16,
    reason: &'static str,
}

/// One compatibility connection: its registration with the hub and the jobs it follows.
struct Session {
    state: AppState,
    caller: CurrentUser,
    live: Connection,
    /// The followed jobs, each with the `last_event_seq` of its snapshot.
    watches: HashMap<Uuid, i64>,
    /// The job of a `/ws/bulk-process` socket; `None` on `/ws/progress`.
    job: Option<Uuid>,
}

impl Session {
    /// Greets (and, on `/ws/bulk-process`, starts following the job), or says why not.
    async fn open(&mut self, endpoint: Endpoint) -> Result<(), Refusal> {
        match endpoint {
            Endpoint::BulkProcess(raw) => {
                let Ok(job) = Uuid::parse_str(&raw) else {
                    return Err(Refusal {
                        message: error_message(INVALID_JOB_ID, echoed(&raw)),
                        code: close_code::POLICY,
                        reason: "invalid job id",
                    });
                };
                self.job = Some(job);
                let greeting = connected_message("job_id", &job.to_string(), Utc::now());
                self.watch(job, greeting).await.map_err(|error| {
                    let (code, reason) = match error {
                        AppError::NotFound => (close_code::POLICY, "job not found"),
                        _ => (close_code::ERROR, "server unavailable"),
                    };
                    Refusal {
                        message: failure_message(&error, job),
                        code,
                        reason,
                    }
                })
            }
            Endpoint::Progress(topic) => {
                if !is_valid_topic(&topic) {
                    return Err(Refusal {
                        message: error_message("Invalid topic id", None),
                        code: close_code::POLICY,
                        reason: "invalid topic id",
                    });
                }
                self.reply(&connected_message("topic_id", &topic, Utc::now()));
                Ok(())
            }
        }
    }

    /// Starts following `job`: checks access, queues `opening`, then the job's snapshot ahead
    /// of every update routed from now on.
    async fn watch(&mut self, job: Uuid, opening: Value) -> Result<(), AppError> {
        let topic = Topic::Task { id: job };
        services::live::authorize(&self.state, &self.caller, topic, None).await?;
        self.reply(&opening);
        let place = self.live.reserve(Some(job));
        self.live.subscribe(Route::Task(job));
        let snapshot = match tasks::get(&self.state, &self.caller, job).await {
            Ok(task) => {
                self.watches.insert(job, task.last_event_seq);
                snapshot_message(&task, Utc::now())
            }
            Err(error) => {
                self.watches.remove(&job);
                self.live.unsubscribe(Route::Task(job));
                failure_message(&error, job)
            }
        };
        place.fill(Outgoing::Frame(text(&snapshot)));
        Ok(())
    }

    /// Turns a batch from the outbox into frames: replies and snapshots as they are, and the
    /// updates of followed jobs that their snapshot does not cover into `job_update`s.
    async fn render(&mut self, batch: &mut Vec<Outgoing>) -> Vec<Message> {
        let mut frames = Vec::with_capacity(batch.len());
        for item in batch.drain(..) {
            let update = match item {
                Outgoing::Frame(frame) => {
                    frames.push(Message::Text(frame));
                    continue;
                }
                Outgoing::Update(update) => update,
            };
            let Some(&floor) = self.watches.get(&update.task_id) else {
                continue;
            };
            if is_covered(&update, floor) {
                continue;
            }
            // An update has no result: the finished job's is read when it ends.
            let finished = if update.status.is_finished() {
                tasks::get(&self.state, &self.caller, update.task_id)
                    .await
                    .ok()
            } else {
                None
            };
            let message = update_message(&update, finished.as_ref(), Utc::now());
            frames.push(Message::Text(text(&message)));
        }
        frames
    }

    /// Handles one frame from the client; every reply goes through the outbox.
    async fn answer(&mut self, message: Message) {
        match message {
            Message::Text(frame) => match parse_request(&frame) {
                Ok(request) => self.handle(request).await,
                Err(error) => self.reply(&error),
            },
            Message::Binary(_) => self.reply(&error_message(BINARY_FRAME, None)),
            // axum answers pings by itself; any frame already counted as a sign of life.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
        }
    }

    async fn handle(&mut self, request: Request) {
        let now = Utc::now();
        match (request, self.job) {
            (Request::Ping, _) => {
                self.reply(&json!({ "type": "pong", "timestamp": timestamp(now) }))
            }
            (Request::GetStatus { .. }, Some(job)) => self.status(job).await,
            (Request::GetStatus { job_id }, None) => match parse_job_id(job_id.as_ref()) {
                Ok(job) => self.status(job).await,
                Err(error) => self.reply(&error),
            },
            (Request::SubscribeJob { job_id }, None) => match parse_job_id(job_id.as_ref()) {
                Ok(job) => self.subscribe(job).await,
                Err(error) => self.reply(&error),
            },
            (Request::UnsubscribeJob { job_id }, None) => match parse_job_id(job_id.as_ref()) {
                Ok(job) => {
                    if self.watches.remove(&job).is_some() {
                        self.live.unsubscribe(Route::Task(job));
                    }
                    self.reply(&job_message("unsubscribed", job, now));
                }
                Err(error) => self.reply(&error),
            },
            (Request::Unknown(kind), _) => self.reply(&unknown_type(&kind)),
            // Following other jobs is for `/ws/progress`.
            (Request::SubscribeJob { .. }, Some(_)) => self.reply(&unknown_type("subscribe_job")),
            (Request::UnsubscribeJob { .. }, Some(_)) => {
                self.reply(&unknown_type("unsubscribe_job"));
            }
        }
    }

    /// Answers the job's current state, read now.
    async fn status(&mut self, job: Uuid) {
        let reply = match tasks::get(&self.state, &self.caller, job).await {
            Ok(task) => task_message("job_status", &task, Utc::now()),
            Err(error) => failure_message(&error, job),
        };
        self.reply(&reply);
    }

    async fn subscribe(&mut self, job: Uuid) {
        if !self.watches.contains_key(&job) && self.watches.len() >= MAX_SUBSCRIPTIONS {
            let message = format!("A connection may follow at most {MAX_SUBSCRIPTIONS} jobs");
            self.reply(&error_message(&message, Some(&job.to_string())));
            return;
        }
        let subscribed = job_message("subscribed", job, Utc::now());
        if let Err(error) = self.watch(job, subscribed).await {
            self.reply(&failure_message(&error, job));
        }
    }

    fn reply(&self, message: &Value) {
        self.live.outbox().reply(text(message));
    }
}

/// Whether a snapshot whose `last_event_seq` is `floor` already shows `update`.
fn is_covered(update: &TaskUpdate, floor: i64) -> bool {
    update.seq < floor
        || update
            .event
            .as_ref()
            .is_some_and(|event| event.seq <= floor)
}

/// A client's request.
#[derive(Debug, PartialEq)]
enum Request {
    Ping,
    GetStatus { job_id: Option<Value> },
    SubscribeJob { job_id: Option<Value> },
    UnsubscribeJob { job_id: Option<Value> },
    Unknown(String),
}

/// Reads a client's text frame; a frame that is no request gets its error message.
fn parse_request(frame: &str) -> Result<Request, Value> {
    let Ok(value) = serde_json::from_str::<Value>(frame) else {
        return Err(error_message(INVALID_JSON, None));
    };
    let Value::Object(mut fields) = value else {
        return Err(error_message(NOT_AN_OBJECT, None));
    };
    let Some(Value::String(kind)) = fields.remove("type") else {
        return Err(error_message(NOT_AN_OBJECT, None));
    };
    let job_id = fields.remove("job_id");
    Ok(match kind.as_str() {
        "ping" => Request::Ping,
        "get_status" => Request::GetStatus { job_id },
        "subscribe_job" => Request::SubscribeJob { job_id },
        "unsubscribe_job" => Request::UnsubscribeJob { job_id },
        _ => Request::Unknown(kind),
    })
}

/// The job a request names, or the error to answer.
fn parse_job_id(job_id: Option<&Value>) -> Result<Uuid, Value> {
    match job_id {
        None | Some(Value::Null) => Err(error_message(MISSING_JOB_ID, None)),
        Some(Value::String(text)) => {
            Uuid::parse_str(text).map_err(|_| error_message(INVALID_JOB_ID, echoed(text)))
        }
        Some(_) => Err(error_message(INVALID_JOB_ID, None)),
    }
}

/// A label of printable characters, at most [`MAX_TOPIC_CHARS`] of them.
fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.chars().count() <= MAX_TOPIC_CHARS
        && !topic.chars().any(char::is_control)
}

/// The client's job id, if short enough to repeat to it.
fn echoed(job_id: &str) -> Option<&str> {
    (job_id.chars().count() <= MAX_ECHOED_JOB_ID_CHARS).then_some(job_id)
}

fn error_message(message: &str, job_id: Option<&str>) -> Value {
    let mut error = json!({ "type": "error", "message": message });
    if let Some(job_id) = job_id {
        error["job_id"] = job_id.into();
    }
    error
}

fn unknown_type(kind: &str) -> Value {
    let quoted: String = kind.chars().take(MAX_ECHOED_TYPE_CHARS).collect();
    error_message(&format!("Unknown message type: {quoted}"), None)
}

/// The error for a job that could not be read.
fn failure_message(error: &AppError, job: Uuid) -> Value {
    let job_id = Some(job.to_string());
    match error {
        AppError::NotFound => error_message(JOB_NOT_FOUND, job_id.as_deref()),
        _ => error_message(UNAVAILABLE, job_id.as_deref()),
    }
}

fn connected_message(key: &str, id: &str, now: DateTime<Utc>) -> Value {
    let what = if key == "job_id" { "job" } else { "topic" };
    let mut greeting = json!({
        "type": "direct_message",
        "status": "connected",
        "timestamp": timestamp(now),
        "message": format!("Connected to {what} {id}"),
    });
    greeting[key] = id.into();
    greeting
}

/// `subscribed` / `unsubscribed`.
fn job_message(kind: &str, job: Uuid, now: DateTime<Utc>) -> Value {
    json!({ "type": kind, "job_id": job, "timestamp": timestamp(now) })
}

/// The original system's name for the state a job is in.
fn compat_status(status: TaskStatus, event: Option<&TaskEvent>) -> &'static str {
    match status {
        TaskStatus::Completed => "completed",
        TaskStatus::Failed | TaskStatus::Cancelled => "error",
        TaskStatus::Pending | TaskStatus::Running => match event {
            Some(event) if event.kind == TaskEventKind::Detail => "batch_update",
            _ => "progress",
        },
    }
}

/// The `job_update` of a live update; `finished` is the job as read when the update ended it.
fn update_message(update: &TaskUpdate, finished: Option<&Task>, now: DateTime<Utc>) -> Value {
    let event = update.event.as_ref();
    let status = compat_status(update.status, event);
    let mut payload = Map::new();
    if status == "batch_update"
        && let Some(Value::Object(detail)) = event.map(|event| &event.data)
    {
        payload.extend(detail.clone());
    }
    progress_fields(&mut payload, &update.progress, update.status);
    if let Some(event) = event {
        let said = |key: &str| event.data.get(key).and_then(Value::as_str);
        match event.kind {
            TaskEventKind::Detail => batch_fields(&mut payload, &event.data),
            TaskEventKind::Error => {
                if let Some(message) = said("message") {
                    payload.insert("message".into(), message.into());
                }
            }
            TaskEventKind::Retry => {
                let error = said("error").unwrap_or("an attempt failed");
                payload.insert("message".into(), format!("retrying: {error}").into());
            }
            TaskEventKind::CancelRequested => {
                payload.insert("message".into(), "cancellation requested".into());
            }
            TaskEventKind::Status | TaskEventKind::Stage => {}
        }
    }
    let error = finished
        .and_then(|task| task.error.as_deref())
        .or_else(|| event.and_then(|event| event.data.get("error")?.as_str()));
    ending_fields(
        &mut payload,
        update.status,
        finished.and_then(|task| task.result.as_ref()),
        error,
    );
    envelope(
        payload,
        "job_update",
        update.task_id,
        status,
        update.status,
        now,
    )
}

/// A job's state as read from the database (`job_update` snapshot or `job_status`).
fn task_message(kind: &str, task: &Task, now: DateTime<Utc>) -> Value {
    let mut payload = Map::new();
    progress_fields(&mut payload, &task.progress, task.status);
    if let Some(detail) = &task.detail {
        batch_fields(&mut payload, detail);
    }
    if let Some(position) = task.queue_position {
        payload.insert("queue_position".into(), position.into());
    }
    ending_fields(
        &mut payload,
        task.status,
        task.result.as_ref(),
        task.error.as_deref(),
    );
    envelope(
        payload,
        kind,
        task.id,
        compat_status(task.status, None),
        task.status,
        now,
    )
}

fn snapshot_message(task: &Task, now: DateTime<Utc>) -> Value {
    let mut message = task_message("job_update", task, now);
    message["snapshot"] = true.into();
    message
}

fn progress_fields(payload: &mut Map<String, Value>, progress: &TaskProgress, status: TaskStatus) {
    let percent = if status == TaskStatus::Completed {
        100.0
    } else {
        progress.progress
    };
    let stage = match status {
        TaskStatus::Pending => Some("queued"),
        _ => progress.stage.as_deref(),
    };
    payload.insert("progress".into(), percent.into());
    payload.insert("processed".into(), progress.processed_items.into());
    payload.insert("total".into(), progress.total_items.into());
    payload.insert("stage".into(), stage.into());
    payload.insert("message".into(), progress.message.as_deref().into());
    payload.insert(
        "current_item".into(),
        progress.current_item.as_deref().into(),
    );
}

/// The batch counters and results of a job's detail, under the original system's names.
fn batch_fields(payload: &mut Map<String, Value>, detail: &Value) {
    let number = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| detail.get(key).filter(|value| value.is_number()))
            .cloned()
    };
    if let Some(completed) = number(&["batch_completed", "batch", "completed_batches"]) {
        payload.insert("batch_completed".into(), completed);
    }
    if let Some(total) = number(&["total_batches", "batches"]) {
        payload.insert("total_batches".into(), total);
    }
    if let Some(results) = detail.get("results") {
        payload.insert("results".into(), results.clone());
    }
}

/// `results` of a completed job, `error` of a failed or cancelled one.
fn ending_fields(
    payload: &mut Map<String, Value>,
    status: TaskStatus,
    result: Option<&Value>,
    error: Option<&str>,
) {
    match status {
        TaskStatus::Completed => {
            payload.insert("results".into(), result.cloned().unwrap_or(Value::Null));
        }
        TaskStatus::Failed => {
            payload.insert("error".into(), error.unwrap_or("failed").into());
        }
        TaskStatus::Cancelled => {
            payload.insert("error".into(), "cancelled".into());
        }
        TaskStatus::Pending | TaskStatus::Running => {}
    }
}

/// Writes the envelope over the payload, so that no payload key can stand for it.
fn envelope(
    mut payload: Map<String, Value>,
    kind: &str,
    job: Uuid,
    status: &str,
    task_status: TaskStatus,
    now: DateTime<Utc>,
) -> Value {
    payload.insert("type".into(), kind.into());
    payload.insert("job_id".into(), job.to_string().into());
    payload.insert("timestamp".into(), timestamp(now).into());
    payload.insert("status".into(), status.into());
    payload.insert("task_status".into(), task_status.as_str().into());
    payload.remove("snapshot");
    Value::Object(payload)
}

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn text(message: &Value) -> Utf8Bytes {
    message.to_string().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn job() -> Uuid {
        Uuid::from_u128(7)
    }

    fn event(seq: i64, kind: TaskEventKind, data: Value) -> TaskEvent {
        TaskEvent {
            seq,
            kind,
            data,
            created_at: now(),
        }
    }

    fn update(seq: i64, status: TaskStatus, event: Option<TaskEvent>) -> TaskUpdate {
        TaskUpdate {
            task_id: job(),
            owner_id: Some(1),
            status,
            cancel_requested: false,
            progress: TaskProgress {
                progress: 40.0,
                total_items: Some(10),
                processed_items: 4,
                current_item: Some("item 4".into()),
                stage: Some("processing".into()),
                message: Some("counting".into()),
            },
            seq,
            event,
        }
    }

    fn task(status: TaskStatus) -> Task {
        let mut task = Task::sample(job(), status);
        task.owner = Some("ann".into());
        task.owner_id = Some(1);
        task.progress = update(0, status, None).progress;
        task.last_event_seq = 5;
        task.run_after = now();
        task.created_at = now();
        task
    }

    #[test]
    fn a_running_tick_is_progress_with_the_seeds_fields() {
        let message = update_message(&update(3, TaskStatus::Running, None), None, now());
        assert_eq!(
            message,
            json!({
                "type": "job_update",
                "job_id": job().to_string(),
                "timestamp": "2023-11-14T22:13:20.000Z",
                "status": "progress",
                "task_status": "running",
                "progress": 40.0,
                "processed": 4,
                "total": 10,
                "stage": "processing",
                "message": "counting",
                "current_item": "item 4",
            })
        );
    }

    #[test]
    fn a_detail_is_a_batch_update_with_its_counters_under_the_seeds_names() {
        let detail = json!({ "batch": 3, "batches": 8, "results": [1, 2], "note": "x" });
        let update = update(
            4,
            TaskStatus::Running,
            Some(event(4, TaskEventKind::Detail, detail)),
        );
        let message = update_message(&update, None, now());
        assert_eq!(message["status"], "batch_update");
        assert_eq!(message["batch_completed"], 3);
        assert_eq!(message["total_batches"], 8);
        assert_eq!(message["results"], json!([1, 2]));
        assert_eq!(message["note"], "x", "the detail's own keys come along");

        let detail = json!({ "batch_completed": 5, "total_batches": 9, "batch": 1 });
        let update = self::update(
            5,
            TaskStatus::Running,
            Some(event(5, TaskEventKind::Detail, detail)),
        );
        let message = update_message(&update, None, now());
        assert_eq!(message["batch_completed"], 5);
        assert_eq!(message["total_batches"], 9);
    }

    #[test]
    fn detail_keys_never_replace_the_envelope_or_the_progress() {
        let detail = json!({
            "type": "direct_message", "job_id": "someone-else", "status": "completed",
            "timestamp": "never", "task_status": "completed", "snapshot": true,
            "progress": 100, "batch_completed": "many",
        });
        let update = update(
            4,
            TaskStatus::Running,
            Some(event(4, TaskEventKind::Detail, detail)),
        );
        let message = update_message(&update, None, now());
        assert_eq!(message["type"], "job_update");
        assert_eq!(message["job_id"], job().to_string());
        assert_eq!(message["status"], "batch_update");
        assert_eq!(message["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(message["task_status"], "running");
        assert_eq!(message["progress"], 40.0);
        assert!(message.get("snapshot").is_none());
        assert_eq!(
            message["batch_completed"], "many",
            "a non-numeric counter is left as the job said it"
        );
    }

    #[test]
    fn endings_carry_results_or_the_error() {
        let mut done = task(TaskStatus::Completed);
        done.result = Some(json!({ "steps": 3 }));
        let ended = update(
            9,
            TaskStatus::Completed,
            Some(event(
                9,
                TaskEventKind::Status,
                json!({ "status": "completed" }),
            )),
        );
        let message = update_message(&ended, Some(&done), now());
        assert_eq!(message["status"], "completed");
        assert_eq!(message["results"], json!({ "steps": 3 }));
        assert_eq!(message["progress"], 100.0);
        assert!(message.get("error").is_none());
        // The job could not be read again: the result is unknown, not invented.
        assert_eq!(update_message(&ended, None, now())["results"], Value::Null);

        let failed_event = event(
            9,
            TaskEventKind::Status,
            json!({ "status": "failed", "error": "step 2 failed" }),
        );
        let failed = update(9, TaskStatus::Failed, Some(failed_event));
        let message = update_message(&failed, None, now());
        assert_eq!(message["status"], "error");
        assert_eq!(message["task_status"], "failed");
        assert_eq!(message["error"], "step 2 failed");
        assert!(message.get("results").is_none());

        let cancelled = update(
            9,
            TaskStatus::Cancelled,
            Some(event(
                9,
                TaskEventKind::Status,
                json!({ "status": "cancelled" }),
            )),
        );
        let message = update_message(&cancelled, None, now());
        assert_eq!(message["status"], "error");
        assert_eq!(message["error"], "cancelled");
    }

    #[test]
    fn a_pending_job_is_queued_progress() {
        let retry = event(
            6,
            TaskEventKind::Retry,
            json!({ "status": "pending", "error": "boom", "run_after": "x" }),
        );
        let message = update_message(&update(6, TaskStatus::Pending, Some(retry)), None, now());
        assert_eq!(message["status"], "progress");
        assert_eq!(message["stage"], "queued");
        assert_eq!(message["message"], "retrying: boom");

        let mut waiting = task(TaskStatus::Pending);
        waiting.queue_position = Some(2);
        let message = snapshot_message(&waiting, now());
        assert_eq!(message["status"], "progress");
        assert_eq!(message["task_status"], "pending");
        assert_eq!(message["stage"], "queued");
        assert_eq!(message["queue_position"], 2);
        assert_eq!(message["snapshot"], true);
    }

    #[test]
    fn snapshots_and_status_answers_come_from_the_task() {
        let mut running = task(TaskStatus::Running);
        running.detail = Some(json!({ "batch": 2, "batches": 4 }));
        let message = task_message("job_status", &running, now());
        assert_eq!(message["type"], "job_status");
        assert_eq!(message["status"], "progress");
        assert_eq!(message["batch_completed"], 2);
        assert_eq!(message["total_batches"], 4);
        assert!(message.get("snapshot").is_none());

        let mut failed = task(TaskStatus::Failed);
        failed.error = Some("it broke".into());
        assert_eq!(snapshot_message(&failed, now())["error"], "it broke");
        let mut done = task(TaskStatus::Completed);
        done.result = Some(json!(42));
        let message = snapshot_message(&done, now());
        assert_eq!(
            (message["status"].clone(), message["results"].clone()),
            (json!("completed"), json!(42))
        );
    }

    #[test]
    fn requests_are_parsed_and_bad_frames_get_their_error() {
        assert_eq!(parse_request(r#"{"type":"ping"}"#), Ok(Request::Ping));
        assert_eq!(
            parse_request(r#"{"type":"subscribe_job","job_id":"x"}"#),
            Ok(Request::SubscribeJob {
                job_id: Some(json!("x"))
            })
        );
        assert_eq!(
            parse_request("{not json"),
            Err(json!({ "type": "error", "message": "Invalid JSON message" }))
        );
        for frame in ["[]", "42", r#"{"type":7}"#, "{}"] {
            assert_eq!(
                parse_request(frame).unwrap_err()["message"],
                NOT_AN_OBJECT,
                "{frame}"
            );
        }
        assert_eq!(
            parse_request(r#"{"type":"dance"}"#),
            Ok(Request::Unknown("dance".into()))
        );
        let long = "y".repeat(500);
        let error = unknown_type(&long);
        assert_eq!(
            error["message"].as_str().unwrap().len(),
            "Unknown message type: ".len() + 50
        );
    }

    #[test]
    fn job_ids_and_topics_are_checked() {
        let id = Uuid::from_u128(99);
        assert_eq!(parse_job_id(Some(&json!(id.to_string()))), Ok(id));
        assert_eq!(parse_job_id(None).unwrap_err()["message"], MISSING_JOB_ID);
        assert_eq!(
            parse_job_id(Some(&json!(5))).unwrap_err()["message"],
            INVALID_JOB_ID
        );
        assert_eq!(
            parse_job_id(Some(&json!("nope"))).unwrap_err()["job_id"],
            "nope"
        );
        let long = "z".repeat(101);
        assert!(
            parse_job_id(Some(&json!(long)))
                .unwrap_err()
                .get("job_id")
                .is_none()
        );

        assert!(is_valid_topic("bulk-analysis 2024/07 ✓"));
        assert!(is_valid_topic(&"t".repeat(200)));
        assert!(!is_valid_topic(&"t".repeat(201)));
        assert!(!is_valid_topic("line\nbreak"));
        assert!(!is_valid_topic(""));
    }

    #[test]
    fn the_greeting_names_what_was_connected_to() {
        let greeting = connected_message("topic_id", "imports", now());
        assert_eq!(
            greeting,
            json!({
                "type": "direct_message",
                "status": "connected",
                "topic_id": "imports",
                "timestamp": "2023-11-14T22:13:20.000Z",
                "message": "Connected to topic imports",
            })
        );
    }

    #[test]
    fn updates_older_than_the_snapshot_are_skipped() {
        let tick = |seq| update(seq, TaskStatus::Running, None);
        let logged = |seq| {
            update(
                seq,
                TaskStatus::Running,
                Some(event(seq, TaskEventKind::Stage, json!({}))),
            )
        };
        assert!(is_covered(&tick(4), 5));
        assert!(is_covered(&logged(5), 5));
        assert!(
            !is_covered(&tick(5), 5),
            "a tick may be newer than the saved progress"
        );
        assert!(!is_covered(&logged(6), 5));
    }
}
