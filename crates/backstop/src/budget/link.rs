//! What a shared budget tells its store: [`BudgetLink`].

/// What a shared budget tells its store. Called on the callers' threads:
/// it must return at once, with no I/O.
pub trait BudgetLink: Send + Sync {
    /// After every retry asked for (granted or refused), with the tokens
    /// left in the local lease: a store tops the lease up when this falls
    /// low.
    fn withdrew(&self, level: f64);

    /// After a granted retry was refunded (its run ended before the retry
    /// was made): the tokens are back in the lease, and the fleet's count
    /// of the tokens out should hear of it soon.
    fn refunded(&self);
}
