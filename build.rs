// `sqlx::migrate!` embeds the migration files at compile time; without this line Cargo would not
// rebuild when a migration is added or edited.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
