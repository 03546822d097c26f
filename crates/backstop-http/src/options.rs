//! Which requests may be sent more than once: [`Options`].

use std::time::Duration;

pub use backstop::http::IDEMPOTENCY_KEY;
use backstop::http::may_send_twice;
use http::{HeaderMap, Method};

/// How the HTTP helpers and middleware treat requests that are not safe to
/// send twice, and how long one attempt may take.
///
/// By default only idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT,
/// DELETE) and requests carrying an `Idempotency-Key` are retried; a POST or
/// PATCH without one is sent once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub(crate) retry_non_idempotent: bool,
    pub(crate) idempotency_key: bool,
    pub(crate) attempt_timeout: Option<Duration>,
}

impl Options {
    /// The defaults: idempotent requests only, no key added, no timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries POST and PATCH too (only when the server tolerates duplicates).
    pub fn retry_non_idempotent(mut self, yes: bool) -> Self {
        self.retry_non_idempotent = yes;
        self
    }

    /// Adds a fresh `Idempotency-Key` to POST and PATCH requests that lack
    /// one, the same key on every attempt of a call, and so retries them.
    pub fn idempotency_key(mut self, yes: bool) -> Self {
        self.idempotency_key = yes;
        self
    }

    /// Drops an attempt that takes longer than `limit` and retries it as a
    /// timeout (middleware and tower layer; for [`send`](crate::send) use
    /// `.attempt_timeout(limit, HttpError::TimedOut)` on the returned run).
    pub fn attempt_timeout(mut self, limit: Duration) -> Self {
        self.attempt_timeout = Some(limit);
        self
    }

    /// Whether a request with this method and these headers may be retried.
    pub fn may_retry(&self, method: &Method, headers: &HeaderMap) -> bool {
        self.retry_non_idempotent
            || may_send_twice(method, headers)
            || (self.idempotency_key && (*method == Method::POST || *method == Method::PATCH))
    }
}

/// A fresh idempotency key: 128 random bits, in hex.
pub(crate) fn fresh_key() -> String {
    format!("{:032x}", fastrand::u128(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_requests_are_retried_by_default() {
        let none = HeaderMap::new();
        let o = Options::new();
        assert!(o.may_retry(&Method::GET, &none));
        assert!(o.may_retry(&Method::PUT, &none));
        assert!(!o.may_retry(&Method::POST, &none));
        let mut keyed = HeaderMap::new();
        keyed.insert(IDEMPOTENCY_KEY, "abc".parse().unwrap());
        assert!(o.may_retry(&Method::POST, &keyed));
        assert!(o.idempotency_key(true).may_retry(&Method::PATCH, &none));
        assert!(o.retry_non_idempotent(true).may_retry(&Method::POST, &none));
    }

    #[test]
    fn keys_are_fresh_and_valid_headers() {
        let (a, b) = (fresh_key(), fresh_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(http::HeaderValue::from_str(&a).is_ok());
    }
}
