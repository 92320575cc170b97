//! `405 Method Not Allowed` for a path the app serves under other methods. Every route is its own
//! actix resource guarded by its method, so a request whose path matches but whose method matches
//! none would fall through to the app's 404. [`not_allowed`] is one more resource over such paths,
//! registered after their routes: it has no route of its own, so actix's resource default answers
//! with 405 and an `Allow` header naming the methods the earlier resources serve there (their
//! method guards record themselves as they are checked), and `error::shape_errors` gives it the
//! standard JSON body (`method_not_allowed`). A path nothing serves matches none of it: 404.

use actix_web::{Resource, web};

/// The fallback resource over `paths`, route patterns as registered (`/api/v1/patients/{patient_id}`).
/// Register it after every route serving them: routes are tried in registration order.
pub fn not_allowed<S: Into<String>>(paths: impl IntoIterator<Item = S>) -> Resource {
    web::resource(paths.into_iter().map(Into::into).collect::<Vec<String>>())
}
