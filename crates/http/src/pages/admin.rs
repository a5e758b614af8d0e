//! The admin's user management: `/admin/users` lists accounts by name (a page of at most
//! [`USERS_PER_PAGE_MAX`], a search by the start of the username, "next" from the last name
//! shown: through the state's username index, never a scan of every account), with a role form
//! per account that posts to `/admin/users/{id}/role` — the same `auth::change_role` as
//! `PUT /api/v1/users/{id}/role`, so the only admin cannot be demoted here either. Plain forms
//! with the session's CSRF token; others get the 403 page.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tix_core::UserId;

use super::{Nav, PageError, field, form_pairs, login_first, message_for, url_encode};
use crate::AppState;
use crate::auth::change_role;
use crate::error::ApiError;
use crate::extract::{Caller, MaybeCaller};

/// The most accounts one page lists.
pub const USERS_PER_PAGE_MAX: usize = 50;
/// The longest search text kept, in characters (usernames are shorter).
const SEARCH_CHARS_MAX: usize = 64;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users))
        .route("/admin/users/{id}/role", post(set_role))
}

/// An account in the list.
pub struct UserRow {
    pub id: u64,
    pub username: String,
    /// The role's wire name (`attendee`...).
    pub role: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    /// The search: the start of a username.
    q: String,
    /// Where "next" continues, if there are more accounts.
    next_link: Option<String>,
    /// Whether this page continues an earlier one (a link back to the first).
    continued: bool,
    roles: [&'static str; 4],
    notice: Option<String>,
    error: Option<String>,
}

/// `?q=` (start of a username) and `?after=` (the last name of the previous page).
#[derive(Debug, Default, serde::Deserialize)]
struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: Option<String>,
}

fn admin_only(c: &Caller) -> Result<(), PageError> {
    if c.is_admin() {
        Ok(())
    } else {
        Err(PageError::forbidden(
            Nav::of(Some(c)),
            "Managing users is for administrators.",
        ))
    }
}

/// Builds one page of the list.
fn users_page(
    state: &AppState,
    c: &Caller,
    query: &UsersQuery,
    notice: Option<String>,
    error: Option<String>,
) -> UsersPage {
    let q: String = query.q.trim().chars().take(SEARCH_CHARS_MAX).collect();
    let s = state.node.shared.read();
    let mut found = s.users_by_name(&q, query.after.as_deref(), USERS_PER_PAGE_MAX + 1);
    let more = found.len() > USERS_PER_PAGE_MAX;
    found.truncate(USERS_PER_PAGE_MAX);
    let next_link = match found.last() {
        Some(last) if more => Some(format!(
            "/admin/users?q={}&after={}",
            url_encode(&q),
            url_encode(&last.username)
        )),
        _ => None,
    };
    let users = found
        .iter()
        .map(|u| UserRow {
            id: u.id.0,
            username: u.username.clone(),
            role: crate::views::role_name(u.role),
        })
        .collect();
    UsersPage {
        nav: Nav::of(Some(c)),
        users,
        q,
        next_link,
        continued: query.after.is_some(),
        roles: ["attendee", "organizer", "staff", "admin"],
        notice,
        error,
    }
}

async fn users(
    State(state): State<AppState>,
    caller: MaybeCaller,
    query: Result<Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/admin/users");
    };
    if let Err(e) = admin_only(&c) {
        return e.into_response();
    }
    // A malformed query (a hand-edited link) shows the first page.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    users_page(&state, &c, &query, None, None).into_response()
}

async fn set_role(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/admin/users");
    };
    if let Err(e) = admin_only(&c) {
        return e.into_response();
    }
    let form = form_pairs(&body);
    let role = field(&form, "role");
    let query = UsersQuery {
        q: field(&form, "q").to_owned(),
        after: None,
    };
    let name = || {
        let s = state.node.shared.read();
        s.user(UserId(id)).map(|u| u.username.clone())
    };
    match change_role(&state, &c, UserId(id), role).await {
        Ok(()) => {
            let who = name().unwrap_or_else(|| format!("account {id}"));
            let notice = format!("{who} is now {role}.");
            users_page(&state, &c, &query, Some(notice), None).into_response()
        }
        Err(ApiError::NotFound(_)) => {
            PageError::not_found(Nav::of(Some(&c)), "account").into_response()
        }
        Err(e @ (ApiError::LastAdmin | ApiError::Invalid { .. })) => {
            let status = e.problem().0;
            let error = match e {
                ApiError::LastAdmin => format!(
                    "{} is the only admin, so it cannot be demoted: make another account admin \
                     first.",
                    name().unwrap_or_else(|| "This account".into())
                ),
                other => format!("Not changed: {}.", message_for(&other)),
            };
            let page = users_page(&state, &c, &query, None, Some(error));
            (status, page).into_response()
        }
        Err(e) => PageError::from_api(Nav::of(Some(&c)), e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    // The last-admin refusal keeps its API status on the page (409), so a test or a proxy sees
    // the same answer either way.
    #[test]
    fn last_admin_is_a_conflict() {
        let (status, _) = crate::error::ApiError::LastAdmin.problem();
        assert_eq!(status, StatusCode::CONFLICT);
    }
}
