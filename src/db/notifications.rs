//! Notifications and each reader's state of them.
//!
//! A user's own notification is read when its row says so (`read_at`, set when it is marked
//! read on its own) or when its id is at most the user's watermark `users.own_read_through`;
//! deleting it deletes the row. A broadcast (`recipient_id` NULL) is stored once; a reader's
//! state of it is their watermark `users.broadcasts_read_through` (every broadcast up to it is
//! read) plus a receipt for each broadcast they marked read or deleted one by one. "Mark all
//! read" therefore moves two watermarks in one row, whatever the number of notifications: the
//! benchmark's 10,000 unread rows, scattered over a table of a million, took ~0.5 s to rewrite
//! one by one on SQLite (a page written per row), against the target of 100 ms.
//!
//! Every write bumps `notification_clock` in its transaction; an unread count is read together
//! with the clock in one statement, so it carries the version it was counted at.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Database, DbError, on_pool};
use crate::api::notifications::{Notification, UnreadCount};

/// A notification to store.
#[derive(Clone, Debug)]
pub struct NotificationInsert<'a> {
    /// `None`: a broadcast to everyone.
    pub recipient_id: Option<i64>,
    pub kind: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub link: Option<&'a str>,
    pub created_at: DateTime<Utc>,
}

/// Bumps the version of the notification state; the first statement of every write.
pub(super) const BUMP_NOTIFICATION_CLOCK: &str =
    "UPDATE notification_clock SET version = version + 1 WHERE id = 1";

/// Evaluates `$body` in a transaction, bound to `$transaction`, that first bumps the
/// notification clock as every write of notifications must, then commits; answers the body's
/// value. An error (`?` in the body) rolls it back.
macro_rules! notification_write {
    ($database:expr, |$transaction:ident| $body:expr) => {
        on_pool!($database, |pool| {
            let mut $transaction = pool.begin().await?;
            sqlx::query(BUMP_NOTIFICATION_CLOCK)
                .execute(&mut *$transaction)
                .await?;
            let answer = $body;
            $transaction.commit().await?;
            answer
        })
    };
}

/// The columns of [`NotificationRow`] from `n` (a notification) and `u` (its recipient), with
/// `read` given as an SQL expression.
fn columns(read: &str) -> String {
    format!(
        "n.id, u.username, n.type AS kind, n.title, n.message, n.link, n.task_id, \
         {read} AS read, n.created_at"
    )
}

/// `read` of reader `$1`'s own notification `n`.
const OWN_READ: &str = "(n.read_at IS NOT NULL \
     OR n.id <= (SELECT own_read_through FROM users WHERE id = $1))";

/// The condition that the own notification `n` of reader `reader` (an SQL expression of their
/// id) is unread: a range of the index `notifications_unread`, above the watermark.
fn own_unread(reader: &str) -> String {
    format!("n.read_at IS NULL AND n.id > (SELECT own_read_through FROM users WHERE id = {reader})")
}

/// `read` of a broadcast for reader `$1`, with its receipt joined as `r`.
const BROADCAST_READ: &str = "(n.id <= (SELECT broadcasts_read_through FROM users WHERE id = $1) \
     OR r.read_at IS NOT NULL)";

/// The columns `version`, the clock, and `count`, the unread notifications of reader `reader`
/// (an SQL expression of their id that does not name `n` or `r`), which one statement reads
/// from the same state. A receipt exists only for a broadcast read or deleted.
fn unread_count_columns(reader: &str) -> String {
    format!(
        "(SELECT version FROM notification_clock WHERE id = 1) AS version, \
     (SELECT COUNT(*) FROM notifications AS n WHERE n.recipient_id = {reader} \
      AND {own_unread}) + \
     (SELECT COUNT(*) FROM notifications AS n WHERE n.recipient_id IS NULL \
      AND n.id > (SELECT broadcasts_read_through FROM users WHERE id = {reader}) \
      AND NOT EXISTS (SELECT 1 FROM broadcast_receipts AS r \
                      WHERE r.user_id = {reader} AND r.notification_id = n.id)) AS count",
        own_unread = own_unread(reader)
    )
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: i64,
    username: Option<String>,
    kind: String,
    title: String,
    message: String,
    link: Option<String>,
    task_id: Option<Uuid>,
    read: bool,
    created_at: DateTime<Utc>,
}

impl From<NotificationRow> for Notification {
    fn from(row: NotificationRow) -> Self {
        Notification {
            id: row.id,
            username: row.username,
            kind: row.kind,
            title: row.title,
            message: row.message,
            link: row.link,
            task_id: row.task_id,
            read: row.read,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TaskNotificationRow {
    recipient_id: i64,
    #[sqlx(flatten)]
    notification: NotificationRow,
    #[sqlx(flatten)]
    unread: CountRow,
}

#[derive(sqlx::FromRow)]
struct CountRow {
    count: i64,
    version: i64,
}

impl From<CountRow> for UnreadCount {
    fn from(row: CountRow) -> Self {
        UnreadCount {
            count: row.count,
            version: row.version,
        }
    }
}

/// What [`Database::mark_notifications_read_up_to`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkedRead {
    /// How many notifications it marked read.
    pub count: i64,
    /// Every notification up to this id is now read for the reader.
    pub up_to: i64,
}

/// Parameters of [`task_notification_sql`].
pub(super) const TASK_NOTICE_PARAMS: usize = 7;

/// The statements that give a concluded task's owner its notification, updating the one an
/// earlier run of the task left (a retried task's notification is updated, not duplicated).
/// That one is the task's own — [`Database::move_task_notification`] points it at the retry
/// when the retry is started — or, when the retry ended before that, still the retried task's:
/// then it is taken over here.
/// The updated notification is unread again; when its id is under the recipient's watermark
/// `own_read_through`, the watermark is first lowered below it and the recipient's notifications
/// it thereby stops covering are marked read in their rows, so that they stay read.
/// They act only when the task concluded at `at` — the round's settlement took effect — so
/// they run in the round's transaction after it, following [`BUMP_NOTIFICATION_CLOCK`].
/// Parameters, numbered from `first`: task, at, recipient, type, title, message, link.
pub(super) fn task_notification_sql(first: usize) -> [String; 4] {
    let [task, at, recipient, kind, title, message, link] =
        std::array::from_fn(|index| format!("${}", first + index));
    let concluded = format!(
        "EXISTS (SELECT 1 FROM tasks WHERE id = {task} AND completed_at = {at} \
         AND status IN ('completed', 'failed'))"
    );
    let has_own = format!("EXISTS (SELECT 1 FROM notifications WHERE task_id = {task})");
    let updated = format!(
        "(task_id = {task} OR (NOT {has_own} \
           AND task_id = (SELECT retry_of FROM tasks WHERE id = {task})))"
    );
    let updated_id = format!("(SELECT MIN(id) FROM notifications WHERE {updated})");
    [
        format!(
            "UPDATE notifications SET read_at = {at} \
             WHERE recipient_id = {recipient} AND read_at IS NULL AND id >= {updated_id} \
             AND id <= (SELECT own_read_through FROM users WHERE id = {recipient}) AND {concluded}"
        ),
        format!(
            "UPDATE users SET own_read_through = {updated_id} - 1 \
             WHERE id = {recipient} AND own_read_through >= {updated_id} AND {concluded}"
        ),
        format!(
            "UPDATE notifications SET task_id = {task}, recipient_id = {recipient}, \
             type = {kind}, title = {title}, message = {message}, link = {link}, \
             created_at = {at}, read_at = NULL WHERE {concluded} AND {updated}"
        ),
        format!(
            "INSERT INTO notifications (recipient_id, type, title, message, link, task_id, \
             created_at) SELECT {recipient}, {kind}, {title}, {message}, {link}, {task}, {at} \
             WHERE {concluded} AND NOT {has_own}"
        ),
    ]
}

/// The notification about a task, whom it is for and their unread count, as of one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskNotification {
    pub recipient_id: i64,
    pub notification: Notification,
    pub unread: UnreadCount,
}

/// A concluded task's notification for its owner: who gets it and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskNotice {
    pub recipient_id: i64,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub link: String,
}

/// Binds a [`TaskNotice`] of `$task` concluded `$at` in [`task_notification_sql`]'s order.
macro_rules! bind_task_notice {
    ($query:expr, $task:expr, $at:expr, $notice:expr) => {{
        let notice: &$crate::db::TaskNotice = $notice;
        $query
            .bind($task)
            .bind($at)
            .bind(notice.recipient_id)
            .bind(notice.kind.as_str())
            .bind(notice.title.as_str())
            .bind(notice.message.as_str())
            .bind(notice.link.as_str())
    }};
}
pub(super) use bind_task_notice;

impl Database {
    /// Stores a notification and answers it as its recipient sees it (unread).
    pub async fn insert_notification(
        &self,
        new: &NotificationInsert<'_>,
    ) -> Result<Notification, DbError> {
        let id: i64 = notification_write!(self, |transaction| {
            sqlx::query_scalar(
                "INSERT INTO notifications (recipient_id, type, title, message, link, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(new.recipient_id)
            .bind(new.kind)
            .bind(new.title)
            .bind(new.message)
            .bind(new.link)
            .bind(new.created_at)
            .fetch_one(&mut *transaction)
            .await?
        });
        let username = match new.recipient_id {
            Some(recipient) => self.user(recipient).await?.map(|user| user.username),
            None => None,
        };
        Ok(Notification {
            id,
            username,
            kind: new.kind.to_owned(),
            title: new.title.to_owned(),
            message: new.message.to_owned(),
            link: new.link.map(str::to_owned),
            task_id: None,
            read: false,
            created_at: new.created_at,
        })
    }

    /// The notification about `task` as its recipient sees it, with their unread count, read
    /// in one statement: both come from the state at the count's version.
    pub async fn task_notification(&self, task: Uuid) -> Result<Option<TaskNotification>, DbError> {
        let sql = format!(
            "SELECT n.recipient_id, {}, {} FROM notifications AS n \
             JOIN users AS u ON u.id = n.recipient_id WHERE n.task_id = $1",
            columns("(n.read_at IS NOT NULL OR n.id <= u.own_read_through)"),
            unread_count_columns("u.id")
        );
        let row: Option<TaskNotificationRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(task).fetch_optional(pool).await
        })?;
        Ok(row.map(|row| TaskNotification {
            recipient_id: row.recipient_id,
            notification: row.notification.into(),
            unread: row.unread.into(),
        }))
    }

    /// Points the notification about `from` at `to`, a retry of it: the notification then
    /// follows the new run, and is updated when it ends. Answers whether there was one.
    pub async fn move_task_notification(&self, from: Uuid, to: Uuid) -> Result<bool, DbError> {
        let moved = notification_write!(self, |transaction| {
            // The retry may have ended already, with its own notification: that one stays.
            sqlx::query(
                "DELETE FROM notifications WHERE task_id = $1 \
                 AND EXISTS (SELECT 1 FROM notifications WHERE task_id = $2)",
            )
            .bind(from)
            .bind(to)
            .execute(&mut *transaction)
            .await?;
            let done = sqlx::query("UPDATE notifications SET task_id = $2 WHERE task_id = $1")
                .bind(from)
                .bind(to)
                .execute(&mut *transaction)
                .await?;
            done.rows_affected()
        });
        Ok(moved > 0)
    }

    /// `reader`'s unread count, with the version it was counted at.
    pub async fn unread_count(&self, reader: i64) -> Result<UnreadCount, DbError> {
        let row: CountRow = on_pool!(self, |pool| {
            sqlx::query_as(&format!("SELECT {}", unread_count_columns("$1")))
                .bind(reader)
                .fetch_one(pool)
                .await
        })?;
        Ok(row.into())
    }

    /// A page of what `reader` sees, newest first: their own notifications and the broadcasts
    /// they have not deleted, with ids below `before`.
    pub async fn notifications_page(
        &self,
        reader: i64,
        unread_only: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Notification>, DbError> {
        // Each half reads its own index newest first and stops at `limit`; the merge sorts at
        // most twice that.
        let (own_unread, broadcast_unread) = if unread_only {
            (
                format!(" AND {}", own_unread("$1")),
                format!(" AND NOT {BROADCAST_READ}"),
            )
        } else {
            (String::new(), String::new())
        };
        let sql = format!(
            "SELECT * FROM (\
               SELECT * FROM (SELECT {own} FROM notifications AS n \
                 JOIN users AS u ON u.id = n.recipient_id \
                 WHERE n.recipient_id = $1 AND n.id < $2{own_unread} \
                 ORDER BY n.id DESC LIMIT $3) AS own \
               UNION ALL \
               SELECT * FROM (SELECT {broadcast} FROM notifications AS n \
                 LEFT JOIN users AS u ON u.id = n.recipient_id \
                 LEFT JOIN broadcast_receipts AS r ON r.user_id = $1 AND r.notification_id = n.id \
                 WHERE n.recipient_id IS NULL AND n.id < $2 AND r.deleted_at IS NULL{broadcast_unread} \
                 ORDER BY n.id DESC LIMIT $3) AS everyone\
             ) AS page ORDER BY id DESC LIMIT $3",
            own = columns(OWN_READ),
            broadcast = columns(BROADCAST_READ),
        );
        let rows: Vec<NotificationRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(reader)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Whether `reader` sees notification `id`: their own, or a broadcast they did not delete.
    pub async fn notification_visible(&self, reader: i64, id: i64) -> Result<bool, DbError> {
        let visible = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM notifications AS n \
                 LEFT JOIN broadcast_receipts AS r ON r.user_id = $1 AND r.notification_id = n.id \
                 WHERE n.id = $2 AND (n.recipient_id = $1 OR n.recipient_id IS NULL) \
                 AND r.deleted_at IS NULL)",
            )
            .bind(reader)
            .bind(id)
            .fetch_one(pool)
            .await
        })?;
        Ok(visible)
    }

    /// Marks notification `id` read for `reader`. Answers whether it changed anything (it
    /// does not when the notification is already read or not `reader`'s to see).
    pub async fn mark_notification_read(
        &self,
        reader: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let changed = notification_write!(self, |transaction| {
            let own = sqlx::query(
                "UPDATE notifications SET read_at = $3 \
                 WHERE id = $2 AND recipient_id = $1 AND read_at IS NULL \
                 AND id > (SELECT own_read_through FROM users WHERE id = $1)",
            )
            .bind(reader)
            .bind(id)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            // An unread broadcast: not under the watermark and without a receipt.
            let broadcast = sqlx::query(
                "INSERT INTO broadcast_receipts (user_id, notification_id, read_at) \
                 SELECT $1, n.id, $3 FROM notifications AS n \
                 WHERE n.id = $2 AND n.recipient_id IS NULL \
                 AND n.id > (SELECT broadcasts_read_through FROM users WHERE id = $1) \
                 ON CONFLICT (user_id, notification_id) DO NOTHING",
            )
            .bind(reader)
            .bind(id)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            own + broadcast > 0
        });
        Ok(changed)
    }

    /// Marks read everything `reader` sees with an id up to `up_to` by moving the reader's two
    /// watermarks (one row, whatever the number of notifications), and answers how many
    /// notifications that changed and the watermark it applied: `up_to`, or the id of the
    /// newest notification there was when `up_to` is beyond it. That is what the reader's tabs
    /// are told was read: `up_to` itself (`i64::MAX` for "all") may also cover notifications
    /// that arrive afterwards, and those stay unread.
    pub async fn mark_notifications_read_up_to(
        &self,
        reader: i64,
        up_to: i64,
    ) -> Result<MarkedRead, DbError> {
        let marked = notification_write!(self, |transaction| {
            // Never beyond the newest id: a watermark above it would mark future notifications.
            // (Every writer bumps the clock first, so none allocates an id while this runs.)
            let newest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM notifications")
                .fetch_one(&mut *transaction)
                .await?;
            let up_to = up_to.min(newest);
            // What the watermarks will newly cover: own rows above the own watermark not read
            // one by one (a range of `notifications_unread`), and broadcasts likewise.
            let count: i64 = sqlx::query_scalar(&format!(
                "SELECT (SELECT COUNT(*) FROM notifications AS n WHERE n.recipient_id = $1 \
                   AND {} AND n.id <= $2) + \
                 (SELECT COUNT(*) FROM notifications AS n WHERE n.recipient_id IS NULL \
                   AND n.id > (SELECT broadcasts_read_through FROM users WHERE id = $1) \
                   AND n.id <= $2 AND NOT EXISTS (SELECT 1 FROM broadcast_receipts AS r \
                     WHERE r.user_id = $1 AND r.notification_id = n.id))",
                own_unread("$1")
            ))
            .bind(reader)
            .bind(up_to)
            .fetch_one(&mut *transaction)
            .await?;
            sqlx::query(
                "UPDATE users SET \
                 own_read_through = CASE WHEN own_read_through < $2 THEN $2 \
                   ELSE own_read_through END, \
                 broadcasts_read_through = CASE WHEN broadcasts_read_through < $2 THEN $2 \
                   ELSE broadcasts_read_through END \
                 WHERE id = $1",
            )
            .bind(reader)
            .bind(up_to)
            .execute(&mut *transaction)
            .await?;
            // Receipts that only said "read" are now said by the watermark.
            sqlx::query(
                "DELETE FROM broadcast_receipts \
                 WHERE user_id = $1 AND notification_id <= $2 AND deleted_at IS NULL",
            )
            .bind(reader)
            .bind(up_to)
            .execute(&mut *transaction)
            .await?;
            MarkedRead { count, up_to }
        });
        Ok(marked)
    }

    /// Deletes notification `id` for `reader`: their own is deleted, a broadcast is hidden
    /// from them only. Answers whether `reader` saw it.
    pub async fn delete_notification(
        &self,
        reader: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let deleted = notification_write!(self, |transaction| {
            let own = sqlx::query("DELETE FROM notifications WHERE id = $2 AND recipient_id = $1")
                .bind(reader)
                .bind(id)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            let broadcast = sqlx::query(
                "INSERT INTO broadcast_receipts (user_id, notification_id, deleted_at) \
                 SELECT $1, id, $3 FROM notifications WHERE id = $2 AND recipient_id IS NULL \
                 ON CONFLICT (user_id, notification_id) DO UPDATE SET deleted_at = $3 \
                 WHERE broadcast_receipts.deleted_at IS NULL",
            )
            .bind(reader)
            .bind(id)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            own + broadcast > 0
        });
        Ok(deleted)
    }

    /// Deletes every notification `reader` has read, and answers how many.
    pub async fn delete_read_notifications(
        &self,
        reader: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        let deleted = notification_write!(self, |transaction| {
            let own = sqlx::query(
                "DELETE FROM notifications WHERE recipient_id = $1 AND (read_at IS NOT NULL \
                 OR id <= (SELECT own_read_through FROM users WHERE id = $1))",
            )
            .bind(reader)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            let read_one_by_one = sqlx::query(
                "UPDATE broadcast_receipts SET deleted_at = $2 \
                 WHERE user_id = $1 AND read_at IS NOT NULL AND deleted_at IS NULL",
            )
            .bind(reader)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            let read_by_watermark = sqlx::query(
                "INSERT INTO broadcast_receipts (user_id, notification_id, deleted_at) \
                 SELECT $1, n.id, $2 FROM notifications AS n WHERE n.recipient_id IS NULL \
                 AND n.id <= (SELECT broadcasts_read_through FROM users WHERE id = $1) \
                 AND NOT EXISTS (SELECT 1 FROM broadcast_receipts AS r \
                   WHERE r.user_id = $1 AND r.notification_id = n.id) \
                 ON CONFLICT (user_id, notification_id) DO NOTHING",
            )
            .bind(reader)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            own + read_one_by_one + read_by_watermark
        });
        Ok(i64::try_from(deleted).unwrap_or(i64::MAX))
    }

    /// Deletes read notifications created before `cutoff`, and broadcasts created before it
    /// (each reader has their own state of a broadcast; past retention it has served its
    /// purpose). Answers how many went.
    pub async fn prune_notifications(&self, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
        let pruned = notification_write!(self, |transaction| {
            let done = sqlx::query(
                "DELETE FROM notifications WHERE created_at < $1 \
                 AND (read_at IS NOT NULL OR recipient_id IS NULL \
                   OR id <= (SELECT own_read_through FROM users \
                     WHERE users.id = notifications.recipient_id))",
            )
            .bind(cutoff)
            .execute(&mut *transaction)
            .await?;
            done.rows_affected()
        });
        Ok(pruned)
    }
}
