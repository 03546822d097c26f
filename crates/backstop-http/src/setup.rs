//! What [`RetryMiddleware`](crate::RetryMiddleware) and
//! [`RetryLayer`](crate::RetryLayer) are made of, the same for both:
//! [`Setup`].

use backstop::hedge::Hedge;
use backstop::keyed::Keyed;
use backstop::{Guards, RetryPolicy};

use crate::options::Options;

/// A client's retry settings: the policy, the guards (and those per
/// origin), the options, the hedge and (feature `chaos`) injected faults.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) policy: RetryPolicy,
    /// `policy` with one attempt, for requests that are sent once.
    pub(crate) once: RetryPolicy,
    pub(crate) guards: Guards,
    pub(crate) per_origin: Option<Keyed<Guards>>,
    pub(crate) options: Options,
    pub(crate) hedge: Option<Hedge>,
    #[cfg(feature = "chaos")]
    pub(crate) chaos: Option<backstop::chaos::Chaos>,
}

impl Setup {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Setup {
            once: policy.once(),
            policy,
            guards: Guards::default(),
            per_origin: None,
            options: Options::default(),
            hedge: None,
            #[cfg(feature = "chaos")]
            chaos: None,
        }
    }
}
