//! Retry budgets: the arithmetic of each kind, and budgets in runs.

use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::Duration;

use backstop::{Backoff, ManualClock, RetryBudget, RetryError, RetryPolicy, Verdict};

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn aws_standard_500_tokens_allow_exactly_100_retries() {
    let budget = RetryBudget::token_bucket("retry_budget").build().unwrap();
    assert_eq!(budget.level(), 500.0);
    for i in 0..100 {
        assert!(budget.try_withdraw(Verdict::Retry).is_some(), "retry {i}");
    }
    assert!(budget.try_withdraw(Verdict::Retry).is_none());
    assert_eq!(budget.level(), 0.0);
    assert_eq!(budget.denied(), 1);
    // Five first-attempt successes refund 1 each: one more retry.
    for _ in 0..5 {
        budget.record_success(None);
    }
    assert_eq!(budget.try_withdraw(Verdict::Retry).map(|w| w.cost()), Some(5));
    assert!(budget.try_withdraw(Verdict::Retry).is_none());
}

#[test]
fn timeouts_cost_more_and_successful_retries_refund_their_cost() {
    let budget = RetryBudget::token_bucket("retry_budget").capacity(30).build().unwrap();
    let t = budget.try_withdraw(Verdict::Timeout).unwrap();
    assert_eq!(t.cost(), 10);
    let r = budget.try_withdraw(Verdict::Throttled).unwrap();
    assert_eq!(r.cost(), 5);
    assert_eq!(budget.level(), 15.0);
    budget.record_success(Some(t));
    assert_eq!(budget.level(), 25.0);
    budget.refund(r);
    assert_eq!(budget.level(), 30.0);
    // Never above capacity.
    budget.record_success(None);
    assert_eq!(budget.level(), 30.0);
}

#[test]
fn an_optional_refill_adds_tokens_with_time() {
    let clock = ManualClock::new();
    let budget =
        RetryBudget::token_bucket("retry_budget").capacity(10).refill_per_sec(2.5).clock(&clock).build().unwrap();
    let _ = budget.try_withdraw(Verdict::Retry).unwrap();
    let _ = budget.try_withdraw(Verdict::Retry).unwrap();
    assert!(budget.try_withdraw(Verdict::Retry).is_none());
    clock.advance(S(2)); // +5 tokens
    assert!(budget.try_withdraw(Verdict::Retry).is_some());
    assert!(budget.try_withdraw(Verdict::Retry).is_none());
}

#[test]
fn ratio_allows_the_floor_plus_a_share_of_requests() {
    let clock = ManualClock::new();
    let budget =
        RetryBudget::ratio("retry_budget").ratio(0.2).window(S(10)).min_per_sec(1.0).clock(&clock).build().unwrap();
    // No requests: the floor, 1/s over 10 s.
    let granted = (0..100).filter(|_| budget.try_withdraw(Verdict::Retry).is_some()).count();
    assert_eq!(granted, 10);
    // 100 requests add 20 retries.
    for _ in 0..100 {
        budget.record_request();
    }
    let granted = (0..100).filter(|_| budget.try_withdraw(Verdict::Retry).is_some()).count();
    assert_eq!(granted, 20);
    // After the window, it all expires and the floor is back.
    clock.advance(S(11));
    assert_eq!(budget.level(), 10.0);
}

#[test]
fn small_ratios_are_not_truncated_to_zero() {
    // tower#857: integer scaling made small ratios allow nothing.
    let clock = ManualClock::new();
    let budget = RetryBudget::ratio("retry_budget").ratio(0.001).min_per_sec(0.0).clock(&clock).build().unwrap();
    for _ in 0..2_999 {
        budget.record_request();
    }
    assert_eq!((0..10).filter(|_| budget.try_withdraw(Verdict::Retry).is_some()).count(), 2);
    budget.record_request();
    assert!(budget.try_withdraw(Verdict::Retry).is_some(), "3000 requests: the third retry");
}

#[test]
fn bad_settings_name_their_field() {
    let cases = [
        (RetryBudget::token_bucket("retry_budget").capacity(0).build().unwrap_err(), "capacity"),
        (RetryBudget::token_bucket("retry_budget").capacity(4).retry_cost(5).build().unwrap_err(), "retry_cost"),
        (RetryBudget::token_bucket("retry_budget").timeout_cost(0).build().unwrap_err(), "timeout_cost"),
        (RetryBudget::token_bucket("retry_budget").refill_per_sec(f64::NAN).build().unwrap_err(), "refill_per_sec"),
        (RetryBudget::ratio("retry_budget").ratio(-1.0).build().unwrap_err(), "ratio"),
        (RetryBudget::ratio("retry_budget").window(Duration::ZERO).build().unwrap_err(), "window"),
        (RetryBudget::ratio("retry_budget").min_per_sec(f64::INFINITY).build().unwrap_err(), "min_per_sec"),
    ];
    for (err, field) in cases {
        assert_eq!(err.field(), field);
        assert!(err.to_string().starts_with("invalid retry budget: "), "{err}");
    }
}

#[test]
fn a_small_bucket_lowers_the_default_costs_to_its_capacity() {
    // capacity(5): a retry costs 5 and a timed-out retry 5 (not 10, which would not fit).
    let budget = RetryBudget::token_bucket("retry_budget").capacity(5).build().unwrap();
    assert_eq!(budget.try_withdraw(Verdict::Timeout).map(|w| w.cost()), Some(5));
    assert!(budget.try_withdraw(Verdict::Retry).is_none());
    let tiny = RetryBudget::token_bucket("retry_budget").capacity(3).build().unwrap();
    assert_eq!(tiny.try_withdraw(Verdict::Retry).map(|w| w.cost()), Some(3));
    // A cost set by hand that does not fit says which setting to change.
    let err = RetryBudget::token_bucket("retry_budget").capacity(5).timeout_cost(10).build().unwrap_err();
    assert_eq!(err.field(), "timeout_cost");
    assert_eq!(
        err.to_string(),
        "invalid retry budget: timeout_cost is 10 with capacity 5; allowed: 1 ..= capacity (lower the cost or raise the capacity)"
    );
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder().max_attempts(attempts).backoff(Backoff::constant(S(1))).build().unwrap()
}

#[test]
fn a_spent_budget_ends_the_run_at_once_keeping_the_last_error() {
    let clock = ManualClock::new();
    let budget = RetryBudget::token_bucket("s3").capacity(10).build().unwrap();
    let err = policy(10)
        .retry(|| Err::<(), _>("503 SlowDown"))
        .name("upload_to_s3")
        .budget(&budget)
        .clock(&clock)
        .call()
        .unwrap_err();
    assert!(matches!(err, RetryError::BudgetExhausted { attempts: 3, last: "503 SlowDown", .. }));
    assert_eq!(clock.sleeps(), [S(1), S(1)], "two retries of cost 5, then no sleep");
    assert_eq!(err.to_string(), "upload_to_s3 stopped after 3 attempts: the retry budget is spent");
    assert_eq!(format!("{err:#}"), "upload_to_s3 stopped after 3 attempts: the retry budget is spent: 503 SlowDown");
}

#[test]
fn successes_deposit_in_runs() {
    let clock = ManualClock::new();
    let budget = RetryBudget::token_bucket("retry_budget").capacity(10).build().unwrap();
    let mut fail_once = true;
    let v = policy(3)
        .retry(|| if std::mem::take(&mut fail_once) { Err("503") } else { Ok(1) })
        .budget(&budget)
        .clock(&clock)
        .call();
    assert_eq!(v, Ok(1));
    assert_eq!(budget.level(), 10.0, "the successful retry refunded its cost");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_gives_its_tokens_back() {
    let budget = RetryBudget::token_bucket("retry_budget").capacity(10).build().unwrap();
    let clock = backstop::SystemClock; // tokio's timer, paused
    let slow = policy(5).to_builder().backoff(Backoff::constant(S(3600))).build().unwrap();
    {
        let fut = slow.retry(|| async { Err::<(), _>("503") }).budget(&budget).clock(&clock).into_future();
        let mut fut = pin!(fut);
        // First attempt fails; 5 tokens are withdrawn for the retry; the run
        // sleeps for an hour...
        assert!(fut.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        assert_eq!(budget.level(), 5.0);
    } // ...and is dropped.
    assert_eq!(budget.level(), 10.0);
}

#[test]
fn ratio_budgets_count_each_run_as_one_request() {
    let clock = ManualClock::new();
    let budget = RetryBudget::ratio("retry_budget").ratio(0.5).min_per_sec(0.0).clock(&clock).build().unwrap();
    for _ in 0..4 {
        policy(1).retry(|| Ok::<_, &str>(())).budget(&budget).clock(&clock).call().unwrap();
    }
    assert_eq!(budget.level(), 2.0);
}

#[test]
fn a_ratio_refund_never_outlives_the_withdrawal_it_cancels() {
    // A limit of 1 retry per 10 s: withdraw at 0 s, refund at 9.5 s. At
    // 10.5 s the withdrawal has left the window, and so must its refund:
    // one retry is granted, not two.
    let clock = ManualClock::new();
    let budget =
        RetryBudget::ratio("retry_budget").ratio(0.0).min_per_sec(0.1).window(S(10)).clock(&clock).build().unwrap();
    let w = budget.try_withdraw(Verdict::Retry).unwrap();
    assert!(budget.try_withdraw(Verdict::Retry).is_none());
    clock.advance(Duration::from_millis(9500));
    budget.refund(w);
    clock.advance(S(1));
    assert!(budget.try_withdraw(Verdict::Retry).is_some());
    assert!(budget.try_withdraw(Verdict::Retry).is_none(), "granted more than 1 per 10 s");
    // A refund inside the window still gives the retry back.
    let clock = ManualClock::new();
    let budget =
        RetryBudget::ratio("retry_budget").ratio(0.0).min_per_sec(0.1).window(S(10)).clock(&clock).build().unwrap();
    let w = budget.try_withdraw(Verdict::Retry).unwrap();
    clock.advance(S(5));
    budget.refund(w);
    assert!(budget.try_withdraw(Verdict::Retry).is_some());
}
