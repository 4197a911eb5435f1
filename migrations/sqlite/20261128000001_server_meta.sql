-- Facts about this installation (first start, last start, server version), one row per key.
CREATE TABLE server_meta (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL -- RFC 3339, UTC
) STRICT;
