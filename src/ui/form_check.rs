//! Forms that are checked in the browser before they are sent, with the same rules as the
//! server. The forms stay plain `ActionForm`s, so they post without the WASM too (the server
//! then answers the same messages); once hydrated, the submit button's click reads the form
//! as the server function's arguments, runs the check, and keeps a failing form from being
//! sent. A click comes before every submission, the Enter key's included.

use leptos::{ev::MouseEvent, prelude::*};

use crate::error::AppError;

/// The field an error names: `"urls[2]: …"` and `"articles[0].url: …"` name `urls` and
/// `articles`, `"batch_size: …"` names `batch_size`; an error without a `field:` names none.
pub fn field_in_error(error: &str) -> Option<&str> {
    let (field, _) = error.split_once(':')?;
    let field = field.split(['[', '.']).next().unwrap_or(field).trim();
    let plain = !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then_some(field)
}

/// The message of one form: what the browser's check found, else the server's answer.
#[derive(Clone, Copy)]
pub struct CheckedForm {
    invalid: RwSignal<Option<String>>,
    error: Signal<Option<String>>,
}

impl CheckedForm {
    /// `server` is the error of the form's last submission (see `session::error_message`).
    pub fn new(server: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        let invalid = RwSignal::new(None::<String>);
        let server = Signal::derive(server);
        CheckedForm {
            invalid,
            error: Signal::derive(move || invalid.get().or_else(|| server.get())),
        }
    }

    /// The message to show under the form, if any.
    pub fn error(self) -> Signal<Option<String>> {
        self.error
    }

    /// `aria-invalid` of the input of `field`: "true" while the message names it.
    pub fn marks(self, field: &'static str) -> impl Fn() -> &'static str + Copy + Send + Sync {
        move || {
            let named = self
                .error
                .with(|error| error.as_deref().and_then(field_in_error) == Some(field));
            if named { "true" } else { "false" }
        }
    }

    /// Forgets the browser's message (a form that was reset).
    pub fn clear(self) {
        self.invalid.set(None);
    }

    /// The click handler of the form's submit button: reads the form as `Args` (the server
    /// function's arguments) and runs `check`; a failure stops the submission and is shown.
    /// A form that cannot be read as `Args` goes on, and the browser's own constraints (or
    /// the server) answer it.
    pub fn on_submit_click<Args>(
        self,
        check: fn(&Args) -> Result<(), AppError>,
    ) -> impl Fn(MouseEvent) + Copy + 'static
    where
        Args: serde::de::DeserializeOwned + 'static,
    {
        move |event: MouseEvent| {
            #[cfg(feature = "hydrate")]
            {
                let outcome = read_form::<Args>(&event).map(|args| check(&args));
                match outcome {
                    Some(Err(problem)) => {
                        event.prevent_default();
                        self.invalid.set(Some(problem.to_string()));
                    }
                    _ => self.invalid.set(None),
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (event, check);
        }
    }
}

/// The form around the clicked element, read as `Args` the way `ActionForm` reads it.
#[cfg(feature = "hydrate")]
fn read_form<Args: serde::de::DeserializeOwned>(event: &MouseEvent) -> Option<Args> {
    use leptos::{form::FromFormData, wasm_bindgen::JsCast};
    let target = event.target()?.dyn_into::<web_sys::Element>().ok()?;
    let form = target
        .closest("form")
        .ok()??
        .dyn_into::<web_sys::HtmlFormElement>()
        .ok()?;
    let data = web_sys::FormData::new_with_form(&form).ok()?;
    Args::from_form_data(&data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_field() {
        assert_eq!(
            field_in_error("batch_size: must be between 1 and 100"),
            Some("batch_size")
        );
        assert_eq!(
            field_in_error("urls[2]: \"x\" is not an http:// URL"),
            Some("urls")
        );
        assert_eq!(field_in_error("articles[0].url: missing"), Some("articles"));
        assert_eq!(field_in_error("not found"), None);
        assert_eq!(field_in_error("could not reach the server: timeout"), None);
    }
}
