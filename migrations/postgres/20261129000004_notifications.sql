-- Notifications: to one user (`recipient_id`) or to everyone (`recipient_id` NULL, a broadcast).
--
-- Read and deleted state is each user's own. A user's own notification is read when its row
-- says so (`read_at`, set by marking it read on its own) or when its id is at most the user's
-- watermark `users.own_read_through`, which "mark all read" moves: that touches one row, not
-- one per notification (10,000 rows scattered over the table cost ~0.5 s to rewrite on SQLite).
-- Deleting one deletes its row. A broadcast is stored once: a user's state of it is the user's
-- watermark (`users.broadcasts_read_through`: every broadcast up to that id is read) plus a
-- receipt row only for the broadcasts the user marked read or deleted one by one.
CREATE TABLE notifications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 50),
    title        TEXT NOT NULL,
    message      TEXT NOT NULL,
    link         TEXT,
    -- No foreign key: the notification outlives the task's retention.
    task_id      UUID,
    created_at   TIMESTAMPTZ NOT NULL,
    read_at      TIMESTAMPTZ,
    CHECK (recipient_id IS NOT NULL OR read_at IS NULL)
);
-- A user's inbox, newest first.
CREATE INDEX notifications_inbox ON notifications (recipient_id, id);
-- The bell: only rows not marked read one by one; the unread ones among them are those above
-- the owner's watermark, a range of this index, so counting does not grow with the read ones.
CREATE INDEX notifications_unread ON notifications (recipient_id, id) WHERE read_at IS NULL;
CREATE INDEX notifications_broadcasts ON notifications (id, created_at) WHERE recipient_id IS NULL;
CREATE INDEX notifications_by_task ON notifications (task_id) WHERE task_id IS NOT NULL;
-- Retention prunes read notifications by age.
CREATE INDEX notifications_read ON notifications (read_at) WHERE read_at IS NOT NULL;

CREATE TABLE broadcast_receipts (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    notification_id BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    read_at         TIMESTAMPTZ,
    deleted_at      TIMESTAMPTZ,
    PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX broadcast_receipts_by_notification ON broadcast_receipts (notification_id);

ALTER TABLE users ADD COLUMN broadcasts_read_through BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN own_read_through BIGINT NOT NULL DEFAULT 0;

-- Bumped by every change of any notification state, in the same transaction (its row lock
-- orders the writers): an unread count read together with it in one statement is stamped with
-- the version it was counted at.
CREATE TABLE notification_clock (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO notification_clock (id, version) VALUES (1, 0);
