//! When to try a notification again, and how long to wait first.

use std::time::Duration;

use http::StatusCode;

/// The longest wait between two attempts, however many retries came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A receiver's `Retry-After` is honoured up to this long: a longer one would hold up
/// every notification queued behind this one.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// What an HTTP status means for the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// The receiver is overloaded or broken for now (5xx, 429, 408).
    Retry,
    /// The receiver refused this request (other 4xx) or answered something a webhook
    /// never gets (1xx, 3xx: redirects are not followed, so a signed body is never sent
    /// anywhere but the configured URL). Sending it again would be refused again.
    GiveUp,
}

pub fn verdict(status: StatusCode) -> Verdict {
    if status.is_success() {
        Verdict::Delivered
    } else if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Verdict::Retry
    } else {
        Verdict::GiveUp
    }
}

/// The wait before retry number `retry` (0 for the first), from `base` doubling each
/// time up to [`MAX_BACKOFF`], with "equal jitter" (`jitter` in 0..1 picks a point in
/// the upper half) so several cameras that lost the same receiver do not all come back
/// at the same instant. A `Retry-After` from the receiver, capped at
/// [`RETRY_AFTER_CAP`], is the least wait.
pub fn delay(base: Duration, retry: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let exp = base
        .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF);
    let jittered = exp / 2 + exp.mul_f64(jitter.clamp(0.0, 1.0) / 2.0);
    match retry_after {
        Some(after) => jittered.max(after.min(RETRY_AFTER_CAP)),
        None => jittered,
    }
}

/// `Retry-After` as seconds (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`).
/// A date in the past means "now"; anything else unreadable is ignored.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(at.duration_since(now).try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_throttling_are_retried_other_refusals_are_not() {
        assert_eq!(verdict(StatusCode::NO_CONTENT), Verdict::Delivered);
        assert_eq!(verdict(StatusCode::INTERNAL_SERVER_ERROR), Verdict::Retry);
        assert_eq!(verdict(StatusCode::BAD_GATEWAY), Verdict::Retry);
        assert_eq!(verdict(StatusCode::TOO_MANY_REQUESTS), Verdict::Retry);
        assert_eq!(verdict(StatusCode::REQUEST_TIMEOUT), Verdict::Retry);
        assert_eq!(verdict(StatusCode::BAD_REQUEST), Verdict::GiveUp);
        assert_eq!(verdict(StatusCode::UNAUTHORIZED), Verdict::GiveUp);
        assert_eq!(verdict(StatusCode::NOT_FOUND), Verdict::GiveUp);
        assert_eq!(verdict(StatusCode::MOVED_PERMANENTLY), Verdict::GiveUp);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(1);
        // Without jitter: the lower half-point; with full jitter: the full delay.
        assert_eq!(delay(base, 0, 0.0, None), Duration::from_millis(500));
        assert_eq!(delay(base, 0, 1.0, None), Duration::from_secs(1));
        assert_eq!(delay(base, 3, 1.0, None), Duration::from_secs(8));
        assert_eq!(delay(base, 3, 0.5, None), Duration::from_secs(6));
        assert_eq!(delay(base, 20, 1.0, None), MAX_BACKOFF);
        assert_eq!(delay(base, u32::MAX, 1.0, None), MAX_BACKOFF);
        for retry in 0..10 {
            let lo = delay(base, retry, 0.0, None);
            let hi = delay(base, retry, 1.0, None);
            assert!(
                lo <= hi && hi <= lo * 2,
                "jitter stays within the upper half"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor_and_is_capped() {
        let base = Duration::from_millis(100);
        let ra = Some(Duration::from_secs(5));
        assert_eq!(delay(base, 0, 1.0, ra), Duration::from_secs(5));
        let huge = Some(Duration::from_secs(3600));
        assert_eq!(delay(base, 0, 1.0, huge), RETRY_AFTER_CAP);
        // A short Retry-After never makes the backoff shorter.
        let short = Some(Duration::from_millis(1));
        assert_eq!(delay(base, 2, 1.0, short), Duration::from_millis(400));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:27:00Z".parse().unwrap();
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
