//! One module per page.

mod account;
mod home;
mod login;
mod not_found;
mod setup;
mod users;

pub use account::AccountPage;
pub use home::HomePage;
pub use login::LoginPage;
pub use not_found::NotFound;
pub use setup::SetupPage;
pub use users::UsersPage;
