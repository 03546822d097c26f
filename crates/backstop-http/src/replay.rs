//! Whether a request may be sent more than once, decided once, before its
//! first attempt, the same way by the middleware, the tower layer and the
//! helpers.
//!
//! The decision is not the classifier's. A classifier judges how an attempt
//! ended; whether the request may be *repeated* depends on the request alone,
//! and must hold however its attempt ends: with an error, a retryable
//! status, or cut by the per-attempt timeout (the case where the server may
//! well have done the work). A request that may not be repeated runs under
//! [`RetryPolicy::once`](backstop::RetryPolicy::once): one attempt, still
//! bounded by the per-attempt timeout and the deadline, still guarded.

use backstop::RetryPolicy;
use http::{HeaderMap, HeaderValue, Method};

use crate::error::NotRetried;
use crate::options::{IDEMPOTENCY_KEY, Options};

/// What the options decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// It may be sent again.
    Allowed,
    /// It is sent once, for this reason.
    Once(NotRetried),
}

impl Replay {
    /// The policy for this request: the run's own, or its single-attempt form.
    pub(crate) fn policy<'p>(self, policy: &'p RetryPolicy, once: &'p RetryPolicy) -> &'p RetryPolicy {
        match self {
            Replay::Allowed => policy,
            Replay::Once(_) => once,
        }
    }
}

impl Options {
    /// Prepares a request's headers and decides whether it may be repeated:
    /// adds `key` (made on demand, once per logical request) as the
    /// `Idempotency-Key` of a POST or PATCH when the options ask for it and
    /// the request has none, then applies [`Options::may_retry`].
    pub(crate) fn prepare(&self, method: &Method, headers: &mut HeaderMap, key: impl FnOnce() -> String) -> Replay {
        if self.idempotency_key && needs_key(method) && !headers.contains_key(IDEMPOTENCY_KEY) {
            if let Ok(value) = HeaderValue::from_str(&key()) {
                headers.insert(IDEMPOTENCY_KEY, value);
            }
        }
        if self.may_retry(method, headers) { Replay::Allowed } else { Replay::Once(NotRetried::NotIdempotent) }
    }
}

/// Whether the method is one a fresh `Idempotency-Key` is added to.
fn needs_key(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PATCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_added_once_and_makes_a_post_repeatable() {
        let options = Options::new().idempotency_key(true);
        let mut headers = HeaderMap::new();
        assert_eq!(options.prepare(&Method::POST, &mut headers, || "k1".into()), Replay::Allowed);
        assert_eq!(headers[IDEMPOTENCY_KEY], "k1");
        // A key already there is kept.
        assert_eq!(options.prepare(&Method::POST, &mut headers, || "k2".into()), Replay::Allowed);
        assert_eq!(headers[IDEMPOTENCY_KEY], "k1");
        // GET gets none and needs none.
        let mut get = HeaderMap::new();
        assert_eq!(options.prepare(&Method::GET, &mut get, || unreachable!()), Replay::Allowed);
        assert!(get.is_empty());
    }

    #[test]
    fn a_post_without_a_key_is_sent_once() {
        let mut headers = HeaderMap::new();
        let replay = Options::new().prepare(&Method::POST, &mut headers, || unreachable!());
        assert_eq!(replay, Replay::Once(NotRetried::NotIdempotent));
        assert!(headers.is_empty());
    }
}
