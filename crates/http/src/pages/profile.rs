//! The account page (`/account`): who you are, your role, and the email address order
//! confirmations, cancellation notices and password resets go to — shown and changed here, checked
//! like the sign-up form (every error beside its field), set through the log
//! (`Command::SetEmail`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::account::check_email;
use super::form::FormErrors;
use super::{Nav, field, form_pairs, login_first, see_other};
use crate::AppState;
use crate::extract::MaybeCaller;

pub fn routes() -> Router<AppState> {
    Router::new().route("/account", get(account).post(save))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/account.html")]
struct AccountPage {
    nav: Nav,
    username: String,
    role: &'static str,
    /// The address as stored, or as typed when the form had an error.
    email: String,
    errors: FormErrors,
    /// "Saved" after a change.
    notice: Option<&'static str>,
    /// Whether this node sends mail at all (else the page says so).
    mail_on: bool,
}

#[derive(serde::Deserialize)]
struct Saved {
    #[serde(default)]
    saved: Option<u8>,
}

async fn account(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Query(q): Query<Saved>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/account");
    };
    let email = state
        .node
        .shared
        .read()
        .account_mail()
        .email(c.user_id)
        .unwrap_or_default()
        .to_owned();
    AccountPage {
        nav: Nav::of(Some(&c)),
        username: c.username.clone(),
        role: crate::views::role_name(c.role),
        email,
        errors: FormErrors::new(),
        notice: q.saved.map(|_| "Saved."),
        mail_on: state.notifier.is_on(),
    }
    .into_response()
}

async fn save(State(state): State<AppState>, caller: MaybeCaller, body: Bytes) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/account");
    };
    let form = form_pairs(&body);
    let email = field(&form, "email").trim().to_owned();
    let mut errors = FormErrors::new();
    errors.check("email", check_email(&email));
    let result = if errors.is_empty() {
        let set = async {
            let address = crate::notify::validate_email(&email)?;
            crate::notify::set_email(&state, c.user_id, address).await
        };
        set.await.map_err(Some)
    } else {
        Err(None)
    };
    let status = match &result {
        Ok(()) => return see_other("/account?saved=1"),
        Err(None) => StatusCode::UNPROCESSABLE_ENTITY,
        Err(Some(e)) => {
            errors.api(e, |f| (f == "email").then_some("email"));
            e.problem().0
        }
    };
    let page = AccountPage {
        nav: Nav::of(Some(&c)),
        username: c.username.clone(),
        role: crate::views::role_name(c.role),
        email,
        errors,
        notice: None,
        mail_on: state.notifier.is_on(),
    };
    (status, page).into_response()
}
