//! The page shell every dashboard page shares: title, navigation, the signed-in user, and the
//! namespace chooser; and the page a refused read shows.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::error::ApiError;
use crate::identity::UserInfo;

/// The pages in the navigation bar.
const NAV: [(&str, &str); 5] = [
    ("/ui/", "Overview"),
    ("/ui/nodes", "Nodes"),
    ("/ui/workloads", "Workloads"),
    ("/ui/pods", "Pods"),
    ("/ui/events", "Events"),
];

/// A document with the style sheet and, if `script`, the dashboard's script.
fn document(title: &str, script: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · Skiff" }
                link rel="stylesheet" href="/ui/static/style.css";
                @if script {
                    script src="/ui/static/app.js" defer {}
                }
            }
            body { (body) }
        }
    }
}

/// A page without navigation (the login form).
pub fn bare(title: &str, body: Markup) -> Markup {
    document(title, false, html! { main { (body) } })
}

/// A dashboard page for `user`: navigation, then `body`.
pub fn page(title: &str, user: &UserInfo, body: Markup) -> Markup {
    document(
        title,
        true,
        html! {
            nav {
                strong { "Skiff" }
                @for (href, label) in NAV {
                    a href=(href) { (label) }
                }
                span.user { "Signed in as " (user.name) }
                form.logout method="post" action="/ui/logout" {
                    button type="submit" { "Sign out" }
                }
            }
            main {
                h1 { (title) }
                (body)
            }
        },
    )
}

/// The namespace chooser of namespaced pages (empty: all namespaces).
pub fn namespace_form(action: &str, namespace: Option<&str>) -> Markup {
    html! {
        form.namespace method="get" action=(action) {
            label for="namespace" { "Namespace" }
            input #namespace name="namespace" value=(namespace.unwrap_or("")) placeholder="all namespaces";
            button type="submit" { "Show" }
        }
    }
}

/// What a read the user may not make shows in place of its table.
pub fn refused(err: &ApiError) -> Markup {
    html! { p.error { (err.to_string()) } }
}

/// A whole page whose main read failed, with that read's status (403 when refused), and
/// `then` below the reason (a namespace chooser: a user may list one namespace but not all).
pub fn error_page(title: &str, user: &UserInfo, err: &ApiError, then: Markup) -> Response {
    let status = err.code();
    let heading = match status {
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "Not found",
        _ => title,
    };
    let body = html! { (refused(err)) (then) };
    (status, page(heading, user, body)).into_response()
}
