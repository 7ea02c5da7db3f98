//! [`JwksEndpoint`]: the public keys as a JWKS document, for other services
//! that verify this app's tokens.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;

use super::service::{Endpoint, Route};
use crate::error::AuthError;
use crate::jwt::Jwt;
use crate::wire::BoxFuture;
use crate::wire::response::{DEFAULT_REALM, error_response, json};

/// `GET /.well-known/jwks.json` as a tower `Service`: 200 with the signing
/// keys' public halves (`kid`, `alg`, `use: sig`; never an HMAC secret), as
/// they are at each request, so a rotated key shows at once; cacheable for
/// [`JwksEndpoint::max_age`] (default 5 minutes). Methods other than `GET` and
/// `HEAD` get 405.
///
/// ```
/// use axum::Router;
/// use tower_jwt_auth::endpoints::JwksEndpoint;
/// # use tower_jwt_auth::{Algorithm, Jwt, Key};
/// # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [5u8; 32]).unwrap()).build().unwrap();
///
/// let app: Router = Router::new().route_service("/.well-known/jwks.json", JwksEndpoint::new(jwt));
/// ```
pub type JwksEndpoint = Endpoint<JwksRoute>;

/// What a [`JwksEndpoint`] serves: the keys of a [`Jwt`], and how long
/// clients may cache them.
#[derive(Debug, Clone)]
pub struct JwksRoute {
    jwt: Jwt,
    max_age: Duration,
}

impl JwksEndpoint {
    /// The JWKS of `jwt`'s keys.
    pub fn new(jwt: Jwt) -> Self {
        Endpoint::from_route(JwksRoute {
            jwt,
            max_age: Duration::from_secs(300),
        })
    }

    /// How long clients may cache the document (`Cache-Control: public,
    /// max-age`). Keep it below the time a retired key stays published after
    /// a rotation, so verifiers see a new key before tokens signed with it.
    pub fn max_age(self, max_age: Duration) -> Self {
        self.map_route(|r| r.max_age = max_age)
    }
}

impl Route for JwksRoute {
    fn handle<B>(self, req: Request<B>) -> BoxFuture<Result<Response<Full<Bytes>>, AuthError>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        Box::pin(async move {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                let mut res = error_response(&AuthError::MethodNotAllowed, DEFAULT_REALM);
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                return Ok(res);
            }
            let mut res = json(StatusCode::OK, &self.jwt.jwks());
            let cache = format!("public, max-age={}", self.max_age.as_secs());
            if let Ok(value) = HeaderValue::from_str(&cache) {
                res.headers_mut().insert(CACHE_CONTROL, value);
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::jwt::Key;
    use jsonwebtoken::Algorithm;

    const EC_KEY: &[u8] = include_bytes!("../../tests/keys/es256.pem");

    #[tokio::test]
    async fn serves_the_public_keys_and_refuses_other_methods() {
        let jwt = Jwt::builder()
            .signing_key(Key::from_private_pem("ec-1", Algorithm::ES256, EC_KEY).unwrap())
            .build()
            .unwrap();
        let ep = JwksEndpoint::new(jwt).max_age(Duration::from_secs(60));
        let get = Request::get("/").body(Full::<Bytes>::default()).unwrap();
        let res = ep.clone().oneshot(get).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[CACHE_CONTROL], "public, max-age=60");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let jwks: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], "ec-1");
        assert!(jwks["keys"][0].get("d").is_none(), "no private part");
        let post = Request::post("/").body(Full::<Bytes>::default()).unwrap();
        let res = ep.oneshot(post).await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()[ALLOW], "GET, HEAD");
    }
}
