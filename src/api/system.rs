//! What the server reports about itself.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The state of the running server and its database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    pub server_version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The newest database migration applied.
    pub schema_version: Option<i64>,
    /// When this database was first used by Tidings.
    pub installed_at: DateTime<Utc>,
    /// When this server process started.
    pub started_at: DateTime<Utc>,
}

/// Reports the server version, the database it uses and whether that database answers.
#[server(endpoint = "system/status")]
pub async fn get_system_status() -> Result<SystemStatus, AppError> {
    let state = expect_context::<crate::server::AppState>();
    crate::auth::CurrentUser::from_leptos_context()?;
    crate::services::system::status(&state).await
}
