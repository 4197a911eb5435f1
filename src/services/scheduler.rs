//! Scheduled runs of auto-ingest and the keyword check, when intervals are configured (none
//! by default).
//!
//! Every node ticks; the `schedules` table decides which node takes a due run, and a kind
//! with a run in progress skips its turn, so a cluster runs each kind once at a time.
//! Scheduled runs belong to nobody: a scheduled keyword check that finds matches tells
//! everyone.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use uuid::Uuid;

use crate::{
    api::tasks::{TaskStatus, TaskUpdate},
    config::AnalysisSettings,
    db::NotificationInsert,
    engine::{Job, TaskRequest},
    error::AppError,
    jobs::{auto_ingest::AutoIngest, keyword_check::KeywordCheck},
    server::AppState,
    services::{ingest, notifications},
};

/// How often each kind runs; `None`: not on a schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedules {
    pub auto_ingest: Option<Duration>,
    pub keyword_check: Option<Duration>,
}

impl Schedules {
    pub fn from_settings(settings: &AnalysisSettings) -> Self {
        Schedules {
            auto_ingest: settings.auto_ingest_interval_secs.map(Duration::from_secs),
            keyword_check: settings
                .keyword_check_interval_secs
                .map(Duration::from_secs),
        }
    }

    fn scheduled(self) -> Vec<(&'static str, Duration)> {
        [
            (AutoIngest::KIND, self.auto_ingest),
            (KeywordCheck::KIND, self.keyword_check),
        ]
        .into_iter()
        .filter_map(|(kind, every)| every.map(|every| (kind, every)))
        .collect()
    }
}

/// The longest a due run waits for the scheduler's next look.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Starts the scheduled runs of `state.schedules`, until shutdown.
pub fn run_on_schedule(state: AppState) {
    let scheduled = state.schedules.scheduled();
    if scheduled.is_empty() {
        return;
    }
    tokio::spawn(async move {
        loop {
            for &(kind, every) in &scheduled {
                if let Err(error) = start_if_due(&state, kind, every).await {
                    tracing::warn!(%error, kind, "could not start a scheduled run");
                }
            }
            tokio::select! {
                () = state.shutdown.cancelled() => return,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    });
}

async fn start_if_due(state: &AppState, kind: &str, every: Duration) -> Result<(), AppError> {
    if kind == AutoIngest::KIND && !state.db.auto_ingest_config().await?.enabled {
        return Ok(());
    }
    let now = Utc::now();
    let next = now + chrono::Duration::from_std(every).map_err(|_| AppError::Internal)?;
    if !state.db.take_scheduled_run(kind, now, next).await? {
        return Ok(());
    }
    if ingest::active_run(state, kind).await?.is_some() {
        tracing::info!(
            kind,
            "a run is still in progress: the scheduled one is skipped"
        );
        return Ok(());
    }
    // Subscribed before the task exists, so that its ending cannot be missed.
    let updates = state.engine.subscribe();
    let id = state
        .engine
        .enqueue(TaskRequest {
            kind: kind.to_owned(),
            name: format!("Scheduled {}", kind.replace('_', " ")),
            owner_id: None,
            input: serde_json::json!({}),
            priority: 0,
            retry_of: None,
        })
        .await?;
    if kind == KeywordCheck::KIND {
        tokio::spawn(announce_matches(state.clone(), id, updates));
    }
    Ok(())
}

/// Tells everyone about the new matches of the scheduled keyword check `task` when it
/// completes with some.
async fn announce_matches(state: AppState, task: Uuid, mut updates: Receiver<TaskUpdate>) {
    loop {
        let update = tokio::select! {
            () = state.shutdown.cancelled() => return,
            update = updates.recv() => update,
        };
        let ended = match update {
            Ok(update) if update.task_id == task => update.status.is_finished(),
            Ok(_) => false,
            // Missed updates may hold the ending: the stored task tells.
            Err(RecvError::Lagged(_)) => match state.db.task(task).await {
                Ok(stored) => stored.is_none_or(|stored| stored.status.is_finished()),
                Err(error) => {
                    tracing::warn!(%error, %task, "cannot follow a scheduled keyword check");
                    return;
                }
            },
            Err(RecvError::Closed) => return,
        };
        if ended {
            if let Err(error) = announce(&state, task).await {
                tracing::warn!(%error, %task, "could not announce keyword matches");
            }
            return;
        }
    }
}

async fn announce(state: &AppState, task: Uuid) -> Result<(), AppError> {
    let Some(result) = state
        .db
        .task(task)
        .await?
        .filter(|task| task.status == TaskStatus::Completed)
        .and_then(|task| task.result)
    else {
        return Ok(());
    };
    let new_alerts = result["new_alerts"].as_u64().unwrap_or_default();
    if new_alerts == 0 {
        return Ok(());
    }
    let message = result["summary"].as_str().unwrap_or_default();
    let link = format!("/tasks/{task}");
    notifications::send(
        state,
        &NotificationInsert {
            recipient_id: None,
            kind: "keyword_alert",
            title: "New keyword matches",
            message,
            link: Some(&link),
            created_at: Utc::now(),
        },
    )
    .await?;
    Ok(())
}
