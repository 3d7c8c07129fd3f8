//! Int-or-percent values (`maxSurge: 1` or `maxSurge: "25%"`), as Kubernetes' `intstr` package.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A string int-or-percent that is not a percent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?}: a percent must be a whole number followed by '%'")]
pub struct NotAPercent {
    /// The string as given.
    pub value: String,
}

/// The number in a percent string: `"25%"` is 25.
pub fn percent(value: &str) -> Result<u32, NotAPercent> {
    value
        .strip_suffix('%')
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| NotAPercent {
            value: value.to_string(),
        })
}

/// The absolute value of `value` against `total`: an int as it is, a percent of `total` rounded
/// up or down (Kubernetes' `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, NotAPercent> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let scaled = i64::from(percent(s)?) * i64::from(total);
            let count = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            Ok(i32::try_from(count).unwrap_or(i32::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn percents_round_as_asked() {
        assert_eq!(scaled_value(&pct("25%"), 3, true), Ok(1));
        assert_eq!(scaled_value(&pct("25%"), 3, false), Ok(0));
        assert_eq!(scaled_value(&pct("50%"), 4, true), Ok(2));
        assert_eq!(scaled_value(&pct("100%"), 7, false), Ok(7));
        assert_eq!(scaled_value(&pct("0%"), 7, true), Ok(0));
    }

    #[test]
    fn ints_are_taken_as_they_are() {
        assert_eq!(scaled_value(&IntOrString::Int(2), 3, false), Ok(2));
        assert_eq!(scaled_value(&IntOrString::Int(5), 3, true), Ok(5));
    }

    #[test]
    fn strings_that_are_not_percents_are_refused() {
        for bad in ["25", "%", "x%", "-5%", "2.5%"] {
            assert!(
                scaled_value(&pct(bad), 10, true).is_err(),
                "{bad:?} is not a percent"
            );
        }
        assert_eq!(percent("30%"), Ok(30));
    }
}
