//! Health and identity of the running server.

use crate::{api::system::SystemStatus, error::AppError, server::AppState};

/// The server's status, after checking that the database answers.
pub async fn status(state: &AppState) -> Result<SystemStatus, AppError> {
    let schema_version = state.db.schema_version().await.map_err(|error| {
        tracing::warn!(%error, "database is not answering");
        AppError::Unavailable("the database is not answering".into())
    })?;
    Ok(SystemStatus {
        server_version: crate::VERSION.to_owned(),
        database: state.db.backend().name().to_owned(),
        schema_version,
        installed_at: state.info.installed_at,
        started_at: state.info.started_at,
    })
}
