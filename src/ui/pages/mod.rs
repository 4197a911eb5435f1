//! One module per page.

mod account;
mod article;
mod articles;
mod home;
mod ingest;
mod login;
mod not_found;
mod notifications;
mod setup;
mod task;
mod tasks;
mod users;

pub use account::AccountPage;
pub use article::ArticlePage;
pub use articles::ArticlesPage;
pub use home::HomePage;
pub use ingest::IngestPage;
pub use login::LoginPage;
pub use not_found::NotFound;
pub use notifications::NotificationsPage;
pub use setup::SetupPage;
pub use task::TaskPage;
pub use tasks::TasksPage;
pub use users::UsersPage;
