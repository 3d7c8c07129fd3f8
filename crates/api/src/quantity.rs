//! Kubernetes quantities (`500m`, `2`, `0.5`, `128Mi`, `1G`, `1e3`), parsed exactly
//! (integer arithmetic, rounding up like Kubernetes does).

/// A quantity that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantity {input:?} is invalid: {reason}")]
pub struct QuantityError {
    pub input: String,
    pub reason: &'static str,
}

/// CPU in millicores: `500m` → 500, `2` → 2000, `0.1` → 100.
pub fn parse_cpu_millis(q: &str) -> Result<u64, QuantityError> {
    parse_scaled(q, 1000)
}

/// Bytes: `128Mi` → 134217728, `1G` → 1000000000.
pub fn parse_bytes(q: &str) -> Result<u64, QuantityError> {
    parse_scaled(q, 1)
}

/// `500m`, or whole cores when exact (`2`).
pub fn format_cpu_millis(m: u64) -> String {
    if m.is_multiple_of(1000) {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

/// The largest exact binary unit: `128Mi`, `1Gi`, or plain bytes.
pub fn format_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    UNITS
        .iter()
        .find(|(_, size)| b >= *size && b.is_multiple_of(*size))
        .map(|(unit, size)| format!("{}{unit}", b / size))
        .unwrap_or_else(|| b.to_string())
}

/// The quantity times `unit_scale`, rounded up to an integer.
fn parse_scaled(input: &str, unit_scale: u128) -> Result<u64, QuantityError> {
    let err = |reason| QuantityError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(err("must not be negative"));
    }
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(err("expected a number such as 500m, 0.5 or 128Mi"));
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let mantissa: u128 = digits.parse().map_err(|_| err("number is too large"))?;
    // value = mantissa / 10^frac * 2^bin * 10^dec
    let mut frac_digits = frac_part.len() as i32;
    let (binary_shift, decimal_exp) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().map_err(|_| err("bad exponent"))?;
            (0, e)
        }
        _ => {
            return Err(err(
                "unknown suffix (use n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or eN)",
            ))
        }
    };
    frac_digits -= decimal_exp;
    let overflow = || err("value is too large");
    let mut numerator = mantissa
        .checked_mul(unit_scale)
        .and_then(|n| n.checked_mul(1u128.checked_shl(binary_shift)?))
        .ok_or_else(overflow)?;
    let mut denominator: u128 = 1;
    if frac_digits >= 0 {
        denominator = 10u128
            .checked_pow(frac_digits as u32)
            .ok_or_else(overflow)?;
    } else {
        numerator = numerator
            .checked_mul(
                10u128
                    .checked_pow((-frac_digits) as u32)
                    .ok_or_else(overflow)?,
            )
            .ok_or_else(overflow)?;
    }
    let value = numerator.div_ceil(denominator);
    u64::try_from(value).map_err(|_| overflow())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        for (q, m) in [
            ("500m", 500),
            ("2", 2000),
            ("0.5", 500),
            ("0.1", 100),
            ("1.5", 1500),
            ("1u", 1),
            ("250000u", 250),
            ("1e3", 1_000_000),
            ("+1", 1000),
        ] {
            assert_eq!(parse_cpu_millis(q), Ok(m), "{q}");
        }
    }

    #[test]
    fn bytes() {
        for (q, b) in [
            ("128Mi", 128 << 20),
            ("1Gi", 1 << 30),
            ("1G", 1_000_000_000),
            ("100k", 100_000),
            ("1e3", 1000),
            ("0.5Ki", 512),
            ("42", 42),
            ("1.5Gi", 3 << 29),
        ] {
            assert_eq!(parse_bytes(q), Ok(b), "{q}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for q in [
            "",
            "abc",
            "12Zi",
            "-1",
            "1.2.3",
            ".",
            "1e",
            "99999999999999999999999999999999999999999999Ei",
            "5 Mi",
        ] {
            assert!(parse_bytes(q).is_err(), "{q} parsed");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_cpu_millis(500), "500m");
        assert_eq!(format_cpu_millis(2000), "2");
        assert_eq!(format_bytes(128 << 20), "128Mi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
