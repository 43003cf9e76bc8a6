//! Request counters and a latency histogram for `/metrics`, kept in atomics: recording
//! costs a few nanoseconds and never takes a lock on the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 10] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0,
];

/// How a GraphQL request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Answered with errors (user or request errors, rejected callers).
    Errors,
    /// Refused before execution: content type, body, accept header.
    Refused,
    RateLimited,
    Timeout,
}

const OUTCOMES: [(Outcome, &str); 5] = [
    (Outcome::Ok, "ok"),
    (Outcome::Errors, "errors"),
    (Outcome::Refused, "refused"),
    (Outcome::RateLimited, "rate_limited"),
    (Outcome::Timeout, "timeout"),
];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Metrics {
    pub fn record(&self, outcome: Outcome, took: Duration) {
        let i = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition of the request metrics.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP scrm_graphql_requests_total GraphQL requests by outcome.\n");
        out.push_str("# TYPE scrm_graphql_requests_total counter\n");
        for (i, (_, name)) in OUTCOMES.iter().enumerate() {
            out.push_str(&format!(
                "scrm_graphql_requests_total{{outcome=\"{name}\"}} {}\n",
                self.requests[i].load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP scrm_graphql_request_seconds GraphQL request latency.\n");
        out.push_str("# TYPE scrm_graphql_request_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            out.push_str(&format!(
                "scrm_graphql_request_seconds_bucket{{le=\"{bound}\"}} {}\n",
                bucket.load(Ordering::Relaxed)
            ));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!(
            "scrm_graphql_request_seconds_bucket{{le=\"+Inf\"}} {count}\n"
        ));
        out.push_str(&format!(
            "scrm_graphql_request_seconds_sum {}\n",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out.push_str(&format!("scrm_graphql_request_seconds_count {count}\n"));
    }
}
