//! Small building blocks shared by pages.

mod article_parts;
mod bell;
mod connection_indicator;
mod form_error;
mod job_forms;
mod notification_item;
mod post_button;
mod progress_bar;
mod status_badge;
mod time_ago;

pub use article_parts::{
    ARTICLE_STATUSES, ArticleStatus, KeywordChips, Score, article_status_label,
};
pub use bell::Bell;
pub use connection_indicator::ConnectionIndicator;
pub use form_error::FormError;
pub use job_forms::JobForms;
pub use notification_item::{ItemPlace, NotificationItem, item_key};
pub use post_button::PostButton;
pub use progress_bar::{Clock, ProgressBar};
pub use status_badge::{StatusBadge, status_label};
pub use time_ago::TimeAgo;
