//! `JwtAuthLayer` on a plain hyper 1 server: no axum, no router, just tower.
//!
//! ```text
//! cargo run --example hyper
//! ```
//!
//! It starts a session for a demo user and prints its tokens and curl lines to try:
//!
//! ```text
//! curl -i http://127.0.0.1:3001/hello -H "Authorization: Bearer $ACCESS"   # 200 hello, demo
//! curl -i http://127.0.0.1:3001/hello                                      # 401 + WWW-Authenticate
//! curl -i -X POST http://127.0.0.1:3001/api/token/refresh/ \
//!      -H 'Content-Type: application/json' -d "{\"refresh\":\"$REFRESH\"}" # 200 a new pair
//! ```
//!
//! Refreshing twice with the same token revokes the session, and the layer's
//! revocation check then refuses its access token too. `BIND` changes the address.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::{
    Claims, Jwt, JwtAuthLayer, MemoryStore, MemoryUsers, NoCustomClaims, SessionEndpoint, Sessions,
};

/// The protected handler: the layer has validated the token and put its claims here.
async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let user = req
        .extensions()
        .get::<Claims>()
        .map(|c| c.user_id().to_owned())
        .unwrap_or_default();
    Ok(Response::new(Full::from(format!("hello, {user}\n"))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A random secret: tokens die with the process, which is what a demo wants.
    let secret = [
        *uuid::Uuid::new_v4().as_bytes(),
        *uuid::Uuid::new_v4().as_bytes(),
    ]
    .concat();
    let jwt = Jwt::builder().hs256("demo", secret).build()?;
    let store = Arc::new(MemoryStore::new());
    let users = Arc::new(MemoryUsers::<String, ()>::new());
    users.insert("demo".to_owned(), ());
    let sessions: Sessions<_> = Sessions::new(jwt.clone(), store.clone(), users);

    // Every path but the refresh endpoint is behind the layer, with the revocation
    // check on: a logged-out or reused session's access token is refused at once.
    let protected = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(jwt).revocation_check(store))
        .service(service_fn(hello));
    let refresh = SessionEndpoint::refresh(sessions.clone());
    let app = service_fn(move |req: Request<Incoming>| {
        let (protected, refresh) = (protected.clone(), refresh.clone());
        async move {
            if req.uri().path() == "/api/token/refresh/" {
                refresh.oneshot(req).await
            } else {
                protected.oneshot(req).await
            }
        }
    });

    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    let pair = sessions
        .login(
            &"demo".to_owned(),
            &NoCustomClaims,
            Some("hyper example".into()),
        )
        .await?;
    println!("listening on http://{addr}");
    println!("ACCESS={}", pair.access);
    println!("REFRESH={}", pair.refresh);
    println!("curl -i http://{addr}/hello -H \"Authorization: Bearer $ACCESS\"");
    println!(
        "curl -i -X POST http://{addr}/api/token/refresh/ -H 'Content-Type: application/json' -d \"{{\\\"refresh\\\":\\\"$REFRESH\\\"}}\""
    );

    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}
