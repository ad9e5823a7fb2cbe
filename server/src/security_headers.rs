//! One layer that gives every response the browser security headers: a Content-Security-Policy
//! the Leptos pages hydrate under, `X-Content-Type-Options: nosniff`, framing refused
//! (`frame-ancestors 'none'` and `X-Frame-Options: DENY`) and `Referrer-Policy`.
//!
//! The CSP allows what hydration needs and nothing from elsewhere: `'wasm-unsafe-eval'` to
//! compile the app's wasm, and `'unsafe-inline'` scripts because Leptos' `HydrationScripts`
//! writes an inline module script that imports the bundle and calls `hydrate()`. Styles allow
//! inline for the charts' SVG `style` attributes. Data is fetched from the same origin only
//! (server functions, `/api/v1/*`). A handler that sets one of these headers itself keeps its
//! own value.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of every page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The middleware; use with `axum::middleware::from_fn`.
pub async fn layer(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ] {
        set_if_absent(headers, name, value);
    }
    resp
}

fn set_if_absent(headers: &mut axum::http::HeaderMap, name: HeaderName, value: HeaderValue) {
    if !headers.contains_key(&name) {
        headers.insert(name, value);
    }
}
