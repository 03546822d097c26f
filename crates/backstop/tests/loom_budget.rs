//! `loom` model of the token bucket's withdraw and deposit under two threads.
//! Run with the command in `tests/loom_breaker.rs`, naming `--test loom_budget`.
#![cfg(backstop_loom)]

use backstop::{RetryBudget, Verdict};
use loom::thread;

#[test]
fn two_withdrawals_never_overdraw() {
    loom::model(|| {
        // Room for exactly one retry of cost 5.
        let budget = RetryBudget::token_bucket("retry_budget").capacity(9).timeout_cost(9).build().unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let b = budget.clone();
                thread::spawn(move || b.try_withdraw(Verdict::Retry).is_some())
            })
            .collect();
        let granted = threads.into_iter().map(|t| t.join().unwrap()).filter(|g| *g).count();
        assert_eq!(granted, 1);
        assert_eq!(budget.level(), 4.0);
    });
}

#[test]
fn a_deposit_racing_a_withdrawal_loses_nothing_and_respects_capacity() {
    loom::model(|| {
        let budget = RetryBudget::token_bucket("retry_budget").capacity(10).build().unwrap();
        let withdrawal = budget.try_withdraw(Verdict::Retry).unwrap(); // 5 left
        let depositor = {
            let b = budget.clone();
            thread::spawn(move || b.record_success(Some(withdrawal))) // +5
        };
        let withdrawer = {
            let b = budget.clone();
            thread::spawn(move || b.try_withdraw(Verdict::Retry).is_some()) // -5
        };
        depositor.join().unwrap();
        let granted = withdrawer.join().unwrap();
        // 5 + 5 - 5 whatever the order, and never above the capacity of 10.
        assert!(granted);
        assert_eq!(budget.level(), 5.0);
    });
}
