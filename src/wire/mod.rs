//! What the layer and the endpoints share on the HTTP side, below both:
//! reading credentials from headers, turning errors into responses, and the
//! boxed future type. Private to the crate.

pub(crate) mod credentials;
pub(crate) mod response;

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
