//! The notification a task's owner gets when it ends: completed or failed (a cancelled task
//! was stopped by somebody who knows; a retry is not an end).

use uuid::Uuid;

use crate::{
    api::tasks::TaskProgress,
    db::{Ending, TaskNotice},
};

/// The notification types of a kind's endings; a kind may name its own
/// ([`super::Job::NOTIFICATION_TYPES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationTypes {
    pub completed: &'static str,
    pub failed: &'static str,
}

impl NotificationTypes {
    /// The types of kinds that do not name their own.
    pub const TASK: NotificationTypes = NotificationTypes {
        completed: "task_complete",
        failed: "task_failed",
    };
}

/// Longest task name quoted in a title (titles hold 255 characters).
const TITLE_NAME_CHARS: usize = 200;
/// Longest error quoted in a message.
const MESSAGE_ERROR_CHARS: usize = 1000;

/// A task that ended, as its notification describes it.
pub(super) struct Concluded<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub owner_id: Option<i64>,
    pub ending: &'a Ending,
    pub progress: &'a TaskProgress,
}

/// The owner's notification of a task's ending; `None` for a task without owner, a
/// cancellation or a retry.
pub(super) fn task_notice(types: NotificationTypes, task: &Concluded) -> Option<TaskNotice> {
    let recipient_id = task.owner_id?;
    let name = shorten(task.name, TITLE_NAME_CHARS);
    let (kind, title, message) = match task.ending {
        Ending::Completed(result) => (
            types.completed,
            format!("“{name}” completed"),
            completion_message(result, task.progress),
        ),
        Ending::Failed(error) => (
            types.failed,
            format!("“{name}” failed"),
            shorten(error, MESSAGE_ERROR_CHARS),
        ),
        Ending::Cancelled | Ending::Retry { .. } => return None,
    };
    Some(TaskNotice {
        recipient_id,
        kind: kind.to_owned(),
        title,
        message,
        link: format!("/tasks/{}", task.id),
    })
}

/// The job's own `summary` when its result has one, else what the progress says.
fn completion_message(result: &serde_json::Value, progress: &TaskProgress) -> String {
    if let Some(summary) = result.get("summary").and_then(|summary| summary.as_str()) {
        return shorten(summary, MESSAGE_ERROR_CHARS);
    }
    match progress.total_items {
        Some(total) => format!(
            "Finished: {} of {total} items processed.",
            progress.processed_items
        ),
        None => "Finished successfully.".to_owned(),
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn concluded<'a>(ending: &'a Ending, progress: &'a TaskProgress) -> Concluded<'a> {
        Concluded {
            id: Uuid::nil(),
            name: "Nightly import",
            owner_id: Some(3),
            ending,
            progress,
        }
    }

    #[test]
    fn completion_and_failure_notify_the_owner_with_a_link_to_the_task() {
        let progress = TaskProgress {
            total_items: Some(8),
            processed_items: 8,
            ..TaskProgress::default()
        };
        let done = Ending::Completed(json!({}));
        let notice = task_notice(NotificationTypes::TASK, &concluded(&done, &progress)).unwrap();
        assert_eq!(notice.recipient_id, 3);
        assert_eq!(notice.kind, "task_complete");
        assert_eq!(notice.title, "“Nightly import” completed");
        assert_eq!(notice.message, "Finished: 8 of 8 items processed.");
        assert_eq!(notice.link, format!("/tasks/{}", Uuid::nil()));

        let failed = Ending::Failed("feed unreachable".into());
        let notice = task_notice(NotificationTypes::TASK, &concluded(&failed, &progress)).unwrap();
        assert_eq!(notice.kind, "task_failed");
        assert_eq!(notice.message, "feed unreachable");
    }

    #[test]
    fn a_kind_names_its_own_types_and_its_summary_is_the_message() {
        let types = NotificationTypes {
            completed: "auto_ingest_complete",
            failed: "auto_ingest_error",
        };
        let done = Ending::Completed(json!({ "summary": "12 articles saved" }));
        let progress = TaskProgress::default();
        let notice = task_notice(types, &concluded(&done, &progress)).unwrap();
        assert_eq!(notice.kind, "auto_ingest_complete");
        assert_eq!(notice.message, "12 articles saved");
    }

    #[test]
    fn cancellations_retries_and_system_tasks_notify_nobody() {
        let progress = TaskProgress::default();
        let retry = Ending::Retry {
            error: "x".into(),
            run_after: chrono::Utc::now(),
        };
        for ending in [Ending::Cancelled, retry] {
            assert_eq!(
                task_notice(NotificationTypes::TASK, &concluded(&ending, &progress)),
                None
            );
        }
        let done = Ending::Completed(json!({}));
        let mut system = concluded(&done, &progress);
        system.owner_id = None;
        assert_eq!(task_notice(NotificationTypes::TASK, &system), None);
    }

    #[test]
    fn long_names_and_errors_are_shortened_on_a_character_boundary() {
        let name = "é".repeat(300);
        let error = Ending::Failed("ü".repeat(2000));
        let progress = TaskProgress::default();
        let mut task = concluded(&error, &progress);
        task.name = &name;
        let notice = task_notice(NotificationTypes::TASK, &task).unwrap();
        assert!(notice.title.chars().count() <= 255);
        assert_eq!(notice.message.chars().count(), MESSAGE_ERROR_CHARS + 1);
    }
}
