//! Integration tests of the bench against real Redis and PostgreSQL: the baselines must
//! measure what they claim (exactly K accepted under concurrency, the rows an order writes).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod baselines;
