//! [`FleetError`]: why a [`Fleet`](crate::Fleet) could not be built.

use std::error::Error;
use std::fmt;

/// A [`FleetBuilder`](crate::FleetBuilder) setting that is out of range, a
/// Redis URL that does not parse, or a thread that could not start. The
/// message never holds the URL (it may hold a password).
#[derive(Debug)]
pub struct FleetError {
    what: String,
    source: Option<Box<dyn Error + Send + Sync>>,
}

impl FleetError {
    pub(crate) fn setting(field: &'static str, problem: String, allowed: &str) -> Self {
        FleetError { what: format!("invalid fleet setting: {field} {problem}; allowed: {allowed}"), source: None }
    }

    pub(crate) fn url(error: &redis::RedisError) -> Self {
        // Only the kind of problem: the redis crate's details may quote
        // parts of the URL.
        let what = format!("invalid Redis URL ({:?}); expected redis://[:password@]host[:port][/db]", error.kind());
        FleetError { what, source: None }
    }

    pub(crate) fn thread(error: std::io::Error) -> Self {
        FleetError { what: "could not start the fleet's thread".into(), source: Some(Box::new(error)) }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl Error for FleetError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}
