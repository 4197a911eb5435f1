-- Retention prunes by creation time, not by when a notification was read: index what it reads,
-- and drop the index on read_at, which no query uses.
DROP INDEX notifications_read;
CREATE INDEX notifications_by_age ON notifications (created_at);
