//! When a certificate is renewed while it is in use, as the kubelet's certificate manager
//! (client and, with `RotateKubeletServerCertificate`, serving certificates) does it: at a
//! point between 70% and 90% of its lifetime, spread over holders by the certificate's own
//! bytes (the last byte of its DER, part of its signature), and after a failed attempt again
//! within a tenth of its lifetime. Pure: the caller keeps the clock and the timer.

use std::time::Duration;

use x509_parser::prelude::{FromDer, X509Certificate};

/// Where the renewal falls in a certificate's lifetime: between these shares.
const RENEW_FROM: f64 = 0.7;
const RENEW_SPREAD: f64 = 0.2;
/// Bounds of the pause after a renewal or a failed attempt.
const PAUSE_MIN: Duration = Duration::from_secs(1);
const PAUSE_MAX: Duration = Duration::from_secs(300);

/// A DER certificate's validity, `notBefore` and `notAfter` in Unix seconds, if it parses.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some((
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    ))
}

/// When the DER certificate `der` is due for renewal (Unix seconds), if it parses.
pub fn due(der: &[u8]) -> Option<i64> {
    let (from, to) = validity(der)?;
    Some(renew_at(from, to, *der.last()?))
}

/// How long from `now` (Unix seconds) until `der` is due for renewal: zero if it is due or
/// cannot be read.
pub fn until_due(der: &[u8], now: i64) -> Duration {
    let due = due(der).unwrap_or(now);
    Duration::from_secs(u64::try_from(due - now).unwrap_or(0))
}

/// When a certificate valid from `from` to `to` is renewed: at 70% of its lifetime plus
/// `spread`/255 of another 20%.
pub fn renew_at(from: i64, to: i64, spread: u8) -> i64 {
    let share = RENEW_FROM + RENEW_SPREAD * f64::from(spread) / 255.0;
    from + ((to - from) as f64 * share).round() as i64
}

/// The pause after renewing `der`, or after failing to: a tenth of its lifetime, between one
/// second and five minutes (five minutes if it cannot be read). Renewals of a certificate
/// that comes back already due are never closer than this.
pub fn pause(der: &[u8]) -> Duration {
    let Some((from, to)) = validity(der) else {
        return PAUSE_MAX;
    };
    Duration::from_secs(u64::try_from((to - from) / 10).unwrap_or(0)).clamp(PAUSE_MIN, PAUSE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_falls_between_seventy_and_ninety_percent() {
        assert_eq!(renew_at(1000, 2000, 0), 1700);
        assert_eq!(renew_at(1000, 2000, 255), 1900);
        let middle = renew_at(0, 100_000, 128);
        assert!((80_000..80_100).contains(&middle), "{middle}");
    }

    #[test]
    fn an_unreadable_certificate_is_due_now_and_paused_the_longest() {
        assert_eq!(until_due(b"junk", 1_800_000_000), Duration::ZERO);
        assert_eq!(pause(b"junk"), PAUSE_MAX);
    }
}
