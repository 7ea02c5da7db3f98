//! The one `Service` impl every endpoint shares: an [`Endpoint`] wraps a route
//! (what the endpoint does with a request), answers errors as JSON with the
//! RFC 6750 challenge of its realm, and never fails as a service.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use crate::error::AuthError;
use crate::wire::BoxFuture;
use crate::wire::response::{DEFAULT_REALM, challenge_realm, error_response};

/// What an endpoint does with one request: [`SessionRoute`](crate::endpoints::SessionRoute)
/// and [`SlidingRoute`](crate::endpoints::SlidingRoute), or an app's own route
/// that wants the same error responses.
pub trait Route: Clone + Send + Sync + 'static {
    /// Handles one request; an error becomes the JSON error response.
    fn handle<B>(self, req: Request<B>) -> BoxFuture<Result<Response<Full<Bytes>>, AuthError>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static;
}

/// A tower `Service` for one of the crate's endpoints; see
/// [`SessionEndpoint`](crate::SessionEndpoint) and
/// [`SlidingEndpoint`](crate::SlidingEndpoint) for what each does. Always
/// ready, never fails: refusals are responses.
pub struct Endpoint<T> {
    pub(crate) route: T,
    realm: Arc<str>,
}

impl<T> Endpoint<T> {
    pub(crate) fn from_route(route: T) -> Self {
        Endpoint {
            route,
            realm: DEFAULT_REALM.into(),
        }
    }

    /// The realm named in `WWW-Authenticate` challenges (default `api`).
    /// Quotes, backslashes and control characters are dropped.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = challenge_realm(realm);
        self
    }

    pub(crate) fn map_route(mut self, f: impl FnOnce(&mut T)) -> Self {
        f(&mut self.route);
        self
    }
}

impl<T: Clone> Clone for Endpoint<T> {
    fn clone(&self) -> Self {
        Endpoint {
            route: self.route.clone(),
            realm: self.realm.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Endpoint<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("route", &self.route)
            .field("realm", &self.realm)
            .finish()
    }
}

impl<T, B> Service<Request<B>> for Endpoint<T>
where
    T: Route,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = self.route.clone();
        let realm = self.realm.clone();
        Box::pin(async move {
            Ok(route
                .handle(req)
                .await
                .unwrap_or_else(|e| error_response(&e, &realm)))
        })
    }
}
