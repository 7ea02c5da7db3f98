//! The layer's response future: named, pin-projected, no box on the stateless path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::wire::BoxFuture;

pin_project! {
    /// Response future of [`JwtAuth`](super::JwtAuth).
    pub struct ResponseFuture<F: Future> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F: Future> {
        // The token was accepted: the inner service's own future.
        Inner { #[pin] fut: F },
        // The request was refused: the rejection response, ready.
        Rejected { output: Option<F::Output> },
        // The opt-in store checks run first, then the inner service.
        Checking { fut: BoxFuture<F::Output> },
    }
}

impl<F: Future> ResponseFuture<F> {
    pub(crate) fn inner(fut: F) -> Self {
        ResponseFuture {
            state: State::Inner { fut },
        }
    }

    pub(crate) fn rejected(output: F::Output) -> Self {
        ResponseFuture {
            state: State::Rejected {
                output: Some(output),
            },
        }
    }

    pub(crate) fn checking(fut: BoxFuture<F::Output>) -> Self {
        ResponseFuture {
            state: State::Checking { fut },
        }
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    // Polling a finished future breaks `Future`'s contract (a caller's bug,
    // not a request's input); it panics as std's and tower-http's futures do.
    #[allow(clippy::panic)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { fut } => fut.poll(cx),
            StateProj::Rejected { output } => match output.take() {
                Some(out) => Poll::Ready(out),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Checking { fut } => fut.as_mut().poll(cx),
        }
    }
}

impl<F: Future> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
