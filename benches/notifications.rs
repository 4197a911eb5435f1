//! Benchmark of the notification inbox (SPEC §6): with 1,000,000 notifications for 10,000 users
//! plus broadcasts, the unread count under 1 ms, a page of 50 under 5 ms and mark-all-read of
//! 10,000 under 100 ms.
//!
//! A fresh database is created through `Database::connect` and `migrate` — SQLite in a
//! temporary directory, and also PostgreSQL when `TIDINGS_BENCH_POSTGRES_URL` names a role that
//! may create databases (a database of its own is created and dropped again) — and seeded with
//! bulk `INSERT … SELECT`s:
//!
//! - 10,000 users with 100 notifications each (1,000,000): the oldest 60 read, and 10 of the
//!   newest 40, so each user has 30 unread among their newest (70 % read); half the users read
//!   their oldest 60 by "mark all read" (their watermark covers them), the others one by one;
//! - 20 of those users also hold 10,000 unread notifications each (200,000 more), for
//!   mark-all-read;
//! - 1,000 broadcasts; each user's broadcast watermark leaves 0–99 of them unread, and every
//!   other user has two receipts above it (one broadcast read, one deleted).
//!
//! All 1,201,000 rows are interleaved in id order as if they had arrived over time, so one
//! user's notifications are spread over the whole table, not stored side by side.
//!
//! The measures call the project's own functions (`Database::unread_count`,
//! `notifications_page`, `mark_notifications_read_up_to`), timed as a caller sees them (the
//! round trip to the database included), for users picked at random (a fixed sequence). The
//! table printed at the end judges each SPEC target on the p99.
//!
//! Run: `cargo bench --features ssr --bench notifications` (add `-- --samples 5000` etc.;
//! `-- --keep` leaves the databases behind for `EXPLAIN`).

use std::time::{Duration, Instant};

use clap::Parser as _;
use sqlx::{Connection, Executor, PgConnection};
use tidings::{config::DatabaseLocation, db::Database};

/// The environment variable naming a PostgreSQL role that may create databases.
const POSTGRES_URL_VARIABLE: &str = "TIDINGS_BENCH_POSTGRES_URL";

const USERS: i64 = 10_000;
const PER_USER: i64 = 100;
/// Users who also hold [`HEAVY_UNREAD`] unread notifications, for mark-all-read.
const HEAVY_USERS: i64 = 20;
const HEAVY_UNREAD: i64 = 10_000;
const BROADCASTS: i64 = 1_000;
/// Rows of one arrival "block": 1,000 own notifications, 200 of the heavy users' and one
/// broadcast. Within a block, every sixth row (position % 6 == 5) is a heavy user's.
const BLOCK: i64 = (USERS * PER_USER + HEAVY_USERS * HEAVY_UNREAD) / BROADCASTS + 1;
const TOTAL: i64 = BLOCK * BROADCASTS;
const _: () = assert!(BLOCK == 1201 && USERS * PER_USER == 5 * HEAVY_USERS * HEAVY_UNREAD);

const PAGE: u32 = 50;

#[derive(clap::Parser)]
struct Options {
    /// Unread counts to time, each for a user picked at random.
    #[arg(long, default_value_t = 2_000)]
    samples: usize,
    /// Pages to time per kind of page, each for a user picked at random.
    #[arg(long, default_value_t = 1_000)]
    page_samples: usize,
    /// Only SQLite, even when TIDINGS_BENCH_POSTGRES_URL is set.
    #[arg(long)]
    sqlite_only: bool,
    /// Keeps the databases afterwards (for EXPLAIN) and prints where they are.
    #[arg(long)]
    keep: bool,
    /// Accepts cargo bench's own flag.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The SQL that differs between the backends, for seeding only.
struct Dialect {
    /// A CTE `seq(n)` of 0 ‥ count - 1.
    sequence: fn(i64) -> String,
    /// A timestamp `EPOCH + seconds` for the SQL integer expression `seconds`.
    timestamp: fn(&str) -> String,
    random_uuid: &'static str,
}

/// The moment the first seeded notification arrived; one arrives every second after it.
const EPOCH: i64 = 1_790_000_000;

fn dialect(db: &Database) -> Dialect {
    match db {
        Database::Sqlite(_) => Dialect {
            sequence: |count| {
                format!(
                    "seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {})",
                    count - 1
                )
            },
            // The text sqlx writes for a `DateTime<Utc>`.
            timestamp: |seconds| {
                format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', {EPOCH} + {seconds}, 'unixepoch')")
            },
            random_uuid: "randomblob(16)",
        },
        Database::Postgres(_) => Dialect {
            sequence: |count| format!("seq(n) AS (SELECT generate_series(0, {}))", count - 1),
            timestamp: |seconds| format!("to_timestamp({EPOCH} + {seconds})"),
            random_uuid: "gen_random_uuid()",
        },
    }
}

async fn execute(db: &Database, sql: &str) -> u64 {
    let affected = match db {
        Database::Sqlite(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
        Database::Postgres(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
    };
    affected.unwrap_or_else(|error| panic!("{error}\n{sql}"))
}

async fn scalar(db: &Database, sql: &str) -> i64 {
    let value = match db {
        Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    };
    value.unwrap_or_else(|error| panic!("{error}\n{sql}"))
}

/// What the benchmark needs to know about the seeded data.
struct Seeded {
    /// The id of the first user; the users have ids `first_user ‥ first_user + USERS - 1`, the
    /// first [`HEAVY_USERS`] of them the heavy ones.
    first_user: i64,
    newest_id: i64,
}

async fn seed(db: &Database) -> Seeded {
    let sql = dialect(db);
    // A large page cache while loading (the pool's one connection keeps it), the default again
    // for the measures.
    let cache_size = match db {
        Database::Sqlite(_) => {
            let default = scalar(db, "PRAGMA cache_size").await;
            execute(db, "PRAGMA cache_size = -262144").await;
            Some(default)
        }
        Database::Postgres(_) => None,
    };
    let joined = (sql.timestamp)("0");
    execute(
        db,
        &format!(
            "WITH RECURSIVE {sequence} \
             INSERT INTO users (username, display_name, password_hash, role, created_at, updated_at) \
             SELECT 'user' || n, 'User ' || n, 'not a hash', 'user', {joined}, {joined} \
             FROM seq ORDER BY n",
            sequence = (sql.sequence)(USERS),
        ),
    )
    .await;
    let first_user = scalar(db, "SELECT MIN(id) FROM users").await;
    let last_user = scalar(db, "SELECT MAX(id) FROM users").await;
    assert_eq!(last_user - first_user + 1, USERS, "user ids are contiguous");

    // Row n of the arrival order: block j = n / BLOCK, position p = n % BLOCK. The last
    // position is a broadcast; every sixth other one is heavy row h = j * 200 + p / 6; the rest
    // is own row g = j * 1000 + (p / 6) * 5 + p % 6, of user g % USERS, who has it as their
    // k = g / USERS-th (0 ‥ 99): read when k < 60, or for a quarter of the newest 40. Half of
    // the ordinary users read their oldest 60 by "mark all read" (their watermark covers them,
    // set below), the others one by one.
    let heavy_per_block = HEAVY_USERS * HEAVY_UNREAD / BROADCASTS;
    let own_per_block = USERS * PER_USER / BROADCASTS;
    let created = (sql.timestamp)("n");
    let read = (sql.timestamp)("n + 3600");
    let inserted = execute(
        db,
        &format!(
            "WITH RECURSIVE {sequence}, \
             placed AS (SELECT n, n % {BLOCK} = {BLOCK} - 1 AS broadcast, \
                 n % {BLOCK} <> {BLOCK} - 1 AND n % {BLOCK} % 6 = 5 AS heavy, \
                 (n / {BLOCK}) * {heavy_per_block} + n % {BLOCK} / 6 AS h, \
                 (n / {BLOCK}) * {own_per_block} + (n % {BLOCK} / 6) * 5 + n % {BLOCK} % 6 AS g \
               FROM seq) \
             INSERT INTO notifications \
               (recipient_id, type, title, message, link, task_id, created_at, read_at) \
             SELECT \
               CASE WHEN broadcast THEN NULL \
                    WHEN heavy THEN {first_user} + h % {HEAVY_USERS} \
                    ELSE {first_user} + g % {USERS} END, \
               CASE WHEN broadcast THEN 'announcement' WHEN n % 3 = 0 THEN 'task_failed' \
                    ELSE 'task_complete' END, \
               'Notification ' || n, \
               'Something happened that you may want to know about: event number ' || n || '.', \
               CASE WHEN n % 4 = 0 THEN NULL ELSE '/tasks/' || n END, \
               CASE WHEN NOT broadcast AND n % 2 = 0 THEN {uuid} END, \
               {created}, \
               CASE WHEN NOT broadcast AND NOT heavy AND (\
                   (g / {USERS} < 60 AND (g % {USERS} % 2 = 0 OR g % {USERS} < {HEAVY_USERS})) \
                   OR (g / {USERS} >= 60 AND ((g % {USERS}) * 3 + g / {USERS}) % 4 = 0)) \
                 THEN {read} END \
             FROM placed",
            sequence = (sql.sequence)(TOTAL),
            uuid = sql.random_uuid,
        ),
    )
    .await;
    assert_eq!(inserted as i64, TOTAL);

    // Ids follow the arrival order: broadcast k has id first + k * BLOCK + BLOCK - 1.
    let first_id = scalar(db, "SELECT MIN(id) FROM notifications").await;
    let misplaced = scalar(
        db,
        &format!(
            "SELECT COUNT(*) FROM notifications WHERE recipient_id IS NULL \
             AND (id - {first_id}) % {BLOCK} <> {BLOCK} - 1"
        ),
    )
    .await;
    assert_eq!(misplaced, 0, "ids follow the arrival order");
    let last_broadcast = first_id + TOTAL - 1;
    // Each user has read the broadcasts up to their watermark: all but the newest 0 ‥ 99.
    execute(
        db,
        &format!(
            "UPDATE users SET broadcasts_read_through = \
             {first_id} + ({} + id % 100) * {BLOCK} + {BLOCK} - 1",
            BROADCASTS - 100
        ),
    )
    .await;
    // The other half of the ordinary users: their watermark is their 60th notification, own
    // row g = 59 * USERS + user (row n = (g / 1000) * BLOCK + (g % 1000 / 5) * 6 + g % 5).
    let sixtieth = format!("(59 * {USERS} + id - {first_user})");
    let marked = execute(
        db,
        &format!(
            "UPDATE users SET own_read_through = {first_id} \
               + {sixtieth} / {own_per_block} * {BLOCK} \
               + {sixtieth} % {own_per_block} / 5 * 6 + {sixtieth} % 5 \
             WHERE (id - {first_user}) % 2 = 1 AND id - {first_user} >= {HEAVY_USERS}"
        ),
    )
    .await;
    assert_eq!(marked as i64, (USERS - HEAVY_USERS) / 2);
    let covered = scalar(
        db,
        "SELECT COUNT(*) FROM users AS u JOIN notifications AS n \
         ON n.recipient_id = u.id AND n.id <= u.own_read_through",
    )
    .await;
    assert_eq!(
        covered,
        marked as i64 * 60,
        "each watermark covers 60 notifications"
    );
    // Every other user read the first broadcast above it one by one, and deleted the second.
    let now = (sql.timestamp)(&TOTAL.to_string());
    for (above, column) in [(1, "read_at"), (2, "deleted_at")] {
        execute(
            db,
            &format!(
                "INSERT INTO broadcast_receipts (user_id, notification_id, {column}) \
                 SELECT id, broadcasts_read_through + {above} * {BLOCK}, {now} FROM users \
                 WHERE id % 2 = 0 AND broadcasts_read_through + {above} * {BLOCK} <= {last_broadcast}"
            ),
        )
        .await;
    }
    if let Some(default) = cache_size {
        execute(db, &format!("PRAGMA cache_size = {default}")).await;
    }
    // The load's own write-out must not overlap the measures: SQLite copies its WAL into the
    // database now; PostgreSQL gets what autovacuum does to tables this size soon after a load
    // (statistics for the planner, a visibility map for index-only scans) and a checkpoint,
    // else its checkpointer spends the next ~15 s writing the load out (log_checkpoints shows
    // it) and adds milliseconds to the tail of every measure.
    match db {
        Database::Sqlite(_) => {
            execute(db, "PRAGMA wal_checkpoint(TRUNCATE)").await;
        }
        Database::Postgres(pool) => {
            execute(
                db,
                "VACUUM ANALYZE notifications, users, broadcast_receipts",
            )
            .await;
            if let Err(error) = sqlx::query("CHECKPOINT").execute(pool).await {
                println!(
                    "postgresql: no CHECKPOINT after the load ({error}): the checkpointer may \
                     still be writing it out during the measures (a role with pg_checkpoint, \
                     or a superuser, avoids that)"
                );
            }
        }
    }
    let newest_id = scalar(db, "SELECT MAX(id) FROM notifications").await;
    Seeded {
        first_user,
        newest_id,
    }
}

/// A fixed pseudo-random sequence (xorshift64*), so every run asks about the same users.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: i64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as i64 % bound
    }
}

/// Durations of the samples of one measure, sorted.
struct Timings(Vec<Duration>);

impl Timings {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Timings(samples)
    }

    fn percentile(&self, fraction: f64) -> Duration {
        self.0[((self.0.len() as f64 - 1.0) * fraction).round() as usize]
    }

    fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
}

struct Row {
    measure: String,
    timings: Timings,
    /// The SPEC §6 target, judged on p99.
    target: Option<Duration>,
}

async fn time<T, F: Future<Output = T>>(call: F) -> (Duration, T) {
    let started = Instant::now();
    let value = call.await;
    (started.elapsed(), value)
}

fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1000.0)
}

async fn run(db: &Database, backend: &str, options: &Options) -> Vec<Row> {
    let started = Instant::now();
    let seeded = seed(db).await;
    println!(
        "{backend}: seeded {USERS} users, {TOTAL} notifications ({} own, {} for {HEAVY_USERS} \
         heavy users, {BROADCASTS} broadcasts) in {:.1} s",
        USERS * PER_USER,
        HEAVY_USERS * HEAVY_UNREAD,
        started.elapsed().as_secs_f64()
    );
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let first_user = seeded.first_user;
    // An ordinary user, not one of the heavy ones.
    let mut ordinary = || first_user + HEAVY_USERS + random.below(USERS - HEAVY_USERS);
    let heavy: Vec<i64> = (first_user..first_user + HEAVY_USERS).collect();
    let mut rows = Vec::new();

    // Warm up: the first queries on a connection prepare their statements.
    for _ in 0..200 {
        db.unread_count(ordinary()).await.unwrap();
        db.notifications_page(ordinary(), false, None, PAGE)
            .await
            .unwrap();
        db.notifications_page(ordinary(), true, None, PAGE)
            .await
            .unwrap();
    }

    let mut samples = Vec::with_capacity(options.samples);
    for _ in 0..options.samples {
        let user = ordinary();
        let (elapsed, count) = time(db.unread_count(user)).await;
        let count = count.unwrap().count;
        assert!(
            (30..30 + 100).contains(&count),
            "user {user}: {count} unread"
        );
        samples.push(elapsed);
    }
    rows.push(Row {
        measure: format!(
            "unread count, {} users (30 own + 0–99 broadcasts unread)",
            options.samples
        ),
        timings: Timings::new(samples),
        target: Some(Duration::from_millis(1)),
    });
    let mut samples = Vec::new();
    for _ in 0..10 {
        for &user in &heavy {
            let (elapsed, count) = time(db.unread_count(user)).await;
            assert!(count.unwrap().count >= HEAVY_UNREAD + 30);
            samples.push(elapsed);
        }
    }
    rows.push(Row {
        measure: format!("unread count, {HEAVY_USERS} users with 10,030+ unread (×10)"),
        timings: Timings::new(samples),
        target: None,
    });

    let users: Vec<i64> = (0..options.page_samples).map(|_| ordinary()).collect();
    let mut first_pages = Vec::new();
    let mut cursors = Vec::new();
    for &user in &users {
        let (elapsed, page) = time(db.notifications_page(user, false, None, PAGE)).await;
        let page = page.unwrap();
        assert_eq!(page.len(), PAGE as usize);
        cursors.push(page.last().unwrap().id);
        first_pages.push(elapsed);
    }
    rows.push(Row {
        measure: format!("page of 50, all, newest ({} users)", users.len()),
        timings: Timings::new(first_pages),
        target: Some(Duration::from_millis(5)),
    });
    let mut next_pages = Vec::new();
    for (&user, &cursor) in users.iter().zip(&cursors) {
        let (elapsed, page) = time(db.notifications_page(user, false, Some(cursor), PAGE)).await;
        let page = page.unwrap();
        assert_eq!(page.len(), PAGE as usize);
        assert!(page[0].id < cursor);
        next_pages.push(elapsed);
    }
    rows.push(Row {
        measure: "page of 50, all, `before` the first page's last".into(),
        timings: Timings::new(next_pages),
        target: Some(Duration::from_millis(5)),
    });
    let mut unread_pages = Vec::new();
    for &user in &users {
        let (elapsed, page) = time(db.notifications_page(user, true, None, PAGE)).await;
        let page = page.unwrap();
        assert!(page.len() >= 30 && page.iter().all(|n| !n.read));
        unread_pages.push(elapsed);
    }
    rows.push(Row {
        measure: "page of 50, unread only, newest".into(),
        timings: Timings::new(unread_pages),
        target: Some(Duration::from_millis(5)),
    });
    let mut deep_pages = Vec::new();
    for _ in 0..10 {
        for &user in &heavy {
            // Unread only, from the middle of the heavy user's 10,000.
            let cursor = seeded.newest_id / 2;
            let (elapsed, page) = time(db.notifications_page(user, true, Some(cursor), PAGE)).await;
            assert_eq!(page.unwrap().len(), PAGE as usize);
            deep_pages.push(elapsed);
        }
    }
    rows.push(Row {
        measure: format!("page of 50, unread only, mid-history, {HEAVY_USERS} heavy users (×10)"),
        timings: Timings::new(deep_pages),
        target: Some(Duration::from_millis(5)),
    });

    // Mark-all-read last: it changes what the measures above read.
    let mut marks = Vec::new();
    for &user in &heavy {
        let unread = db.unread_count(user).await.unwrap().count;
        let (elapsed, changed) =
            time(db.mark_notifications_read_up_to(user, seeded.newest_id)).await;
        assert_eq!(changed.unwrap().count, unread, "user {user}");
        assert_eq!(db.unread_count(user).await.unwrap().count, 0);
        marks.push(elapsed);
    }
    rows.push(Row {
        measure: format!("mark all read, {HEAVY_USERS} users with 10,030+ unread"),
        timings: Timings::new(marks),
        target: Some(Duration::from_millis(100)),
    });
    let mut marks = Vec::new();
    for _ in 0..200 {
        let user = ordinary();
        let (elapsed, changed) =
            time(db.mark_notifications_read_up_to(user, seeded.newest_id)).await;
        changed.unwrap();
        marks.push(elapsed);
    }
    rows.push(Row {
        measure: "mark all read, 200 ordinary users (~80 unread)".into(),
        timings: Timings::new(marks),
        target: None,
    });
    rows
}

fn report(backend: &str, rows: &[Row]) -> bool {
    println!();
    println!("{backend} — times in ms, as the caller sees them; targets judged on p99");
    println!(
        "| {:<66} | {:>6} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:<4} |",
        "measure", "n", "p50", "p99", "mean", "max", "target", ""
    );
    println!(
        "|{:-<68}|{:->8}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|{:-<6}|",
        "", "", "", "", "", "", "", ""
    );
    let mut all_met = true;
    for row in rows {
        let p99 = row.timings.percentile(0.99);
        let (target, verdict) = match row.target {
            Some(target) if p99 < target => (ms(target), "ok"),
            Some(target) => {
                all_met = false;
                (ms(target), "MISS")
            }
            None => ("—".into(), ""),
        };
        println!(
            "| {:<66} | {:>6} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:<4} |",
            row.measure,
            row.timings.0.len(),
            ms(row.timings.percentile(0.5)),
            ms(p99),
            ms(row.timings.mean()),
            ms(*row.timings.0.last().unwrap()),
            target,
            verdict,
        );
    }
    all_met
}

/// A PostgreSQL database of the benchmark's own, dropped again by [`PostgresDatabase::drop`].
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create(admin_url: String) -> Self {
        let name = format!("tidings_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL answers");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        let url = with_database(&admin_url, &name);
        PostgresDatabase {
            admin_url,
            name,
            url,
        }
    }

    async fn drop(self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = async {
            let mut admin = PgConnection::connect(&self.admin_url).await?;
            admin.execute(statement.as_str()).await
        };
        if let Err(error) = dropped.await {
            eprintln!("could not drop benchmark database {}: {error}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let mut all_met = true;

    let directory = tempfile::tempdir().unwrap();
    let location = DatabaseLocation::SqliteFile(directory.path().join("bench.db"));
    let db = Database::connect(&location).await.unwrap();
    db.migrate().await.unwrap();
    let rows = run(&db, "sqlite", &options).await;
    db.close().await;
    all_met &= report("SQLite", &rows);
    if options.keep {
        println!("kept {}", directory.keep().join("bench.db").display());
    }

    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(admin_url) if !options.sqlite_only => {
            let database = PostgresDatabase::create(admin_url).await;
            let db = Database::connect(&DatabaseLocation::Url(database.url.clone()))
                .await
                .unwrap();
            db.migrate().await.unwrap();
            let rows = run(&db, "postgresql", &options).await;
            db.close().await;
            if options.keep {
                println!("kept {}", database.url);
            } else {
                database.drop().await;
            }
            all_met &= report("PostgreSQL", &rows);
        }
        _ => println!(
            "\nPostgreSQL skipped: set {POSTGRES_URL_VARIABLE} to a role that may create databases"
        ),
    }
    println!();
    println!(
        "{}",
        if all_met {
            "all targets met"
        } else {
            "some targets missed"
        }
    );
}
