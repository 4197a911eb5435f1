use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::accounts::{
        CreateUser, ResetUserPassword, Role, SetUserActive, SetUserRole, User, list_users,
    },
    ui::{components::FormError, format::date_time, session::error_message},
};

/// The actions of this page; every change reloads the list.
#[derive(Clone, Copy)]
struct UserActions {
    create: ServerAction<CreateUser>,
    set_active: ServerAction<SetUserActive>,
    set_role: ServerAction<SetUserRole>,
    reset_password: ServerAction<ResetUserPassword>,
}

impl UserActions {
    fn version(&self) -> (usize, usize, usize, usize) {
        (
            self.create.version().get(),
            self.set_active.version().get(),
            self.set_role.version().get(),
            self.reset_password.version().get(),
        )
    }

    /// The newest error of any action on this page.
    fn error(&self) -> Option<String> {
        error_message(self.set_active.value().get())
            .or_else(|| error_message(self.set_role.value().get()))
            .or_else(|| error_message(self.reset_password.value().get()))
    }
}

/// Administration of user accounts (admins only).
#[component]
pub fn UsersPage() -> impl IntoView {
    let actions = UserActions {
        create: ServerAction::new(),
        set_active: ServerAction::new(),
        set_role: ServerAction::new(),
        reset_password: ServerAction::new(),
    };
    let users = Resource::new(move || actions.version(), |_| list_users());
    view! {
        <Title text="Users"/>
        <section class="page-header">
            <h1>"Users"</h1>
            <p class="lede">"Add people, change their role, reset passwords, deactivate accounts."</p>
        </section>
        <section class="card" aria-labelledby="users-heading">
            <h2 id="users-heading">"Accounts"</h2>
            <FormError message=Signal::derive(move || actions.error())/>
            <Show when=move || matches!(actions.reset_password.value().get(), Some(Ok(())))>
                <p class="form-success" role="status">"Password reset; that user's sessions were signed out."</p>
            </Show>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || users.get().map(|result| match result {
                    Ok(users) => view! { <UserTable users actions/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
        <CreateUserCard action=actions.create/>
    }
}

#[component]
fn UserTable(users: Vec<User>, actions: UserActions) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="table">
                <thead>
                    <tr>
                        <th scope="col">"User"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"New password"</th>
                    </tr>
                </thead>
                <tbody>
                    {users.into_iter().map(|user| view! { <UserRow user actions/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn UserRow(user: User, actions: UserActions) -> impl IntoView {
    let other_role = match user.role {
        Role::Admin => Role::User,
        Role::User => Role::Admin,
    };
    let role_button = match other_role {
        Role::Admin => "Make admin",
        Role::User => "Make user",
    };
    let (status, status_button) = if user.active {
        ("active", "Deactivate")
    } else {
        ("deactivated", "Activate")
    };
    let row_name = user.username.clone();
    view! {
        <tr data-username=row_name>
            <td>
                <strong>{user.display_name}</strong>
                <br/>
                <code>{user.username}</code>
                <small class="muted">" since " {date_time(user.created_at)}</small>
            </td>
            <td>
                <span class="badge">{user.role.as_str()}</span>
                <ActionForm action=actions.set_role attr:class="inline">
                    <input type="hidden" name="id" value=user.id/>
                    <input type="hidden" name="role" value=other_role.as_str()/>
                    <button class="button button--quiet" type="submit">{role_button}</button>
                </ActionForm>
            </td>
            <td>
                <span class="badge" class:badge--off=!user.active>{status}</span>
                <ActionForm action=actions.set_active attr:class="inline">
                    <input type="hidden" name="id" value=user.id/>
                    <input type="hidden" name="active" value=(!user.active).to_string()/>
                    <button class="button button--quiet" type="submit">{status_button}</button>
                </ActionForm>
            </td>
            <td>
                <ActionForm action=actions.reset_password attr:class="inline-form">
                    <input type="hidden" name="id" value=user.id/>
                    <input type="password" name="password" autocomplete="new-password" required minlength="8"
                        aria-label="New password"/>
                    <button class="button button--quiet" type="submit">"Reset"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
fn CreateUserCard(action: ServerAction<CreateUser>) -> impl IntoView {
    let created = move || {
        action
            .value()
            .get()
            .and_then(Result::ok)
            .map(|user| user.username)
    };
    view! {
        <section class="card" aria-labelledby="new-user-heading">
            <h2 id="new-user-heading">"Add a user"</h2>
            <ActionForm action attr:class="stack">
                <label>
                    "Username"
                    <input name="username" required minlength="3" maxlength="32" autocomplete="off"/>
                </label>
                <label>"Display name" <input name="display_name" maxlength="100" autocomplete="off"/></label>
                <label>
                    "Password"
                    <input type="password" name="password" required minlength="8" autocomplete="new-password"/>
                </label>
                <label>
                    "Role"
                    <select name="role">
                        <option value="user" selected>"User"</option>
                        <option value="admin">"Administrator"</option>
                    </select>
                </label>
                <FormError message=Signal::derive(move || error_message(action.value().get()))/>
                {move || created().map(|username| view! {
                    <p class="form-success" role="status">"Created " <code>{username}</code> "."</p>
                })}
                <button class="button" type="submit" disabled=move || action.pending().get()>"Add user"</button>
            </ActionForm>
        </section>
    }
}
