//! Resource quantities (`100m`, `1.5Gi`, `2e3`) as integers, rounded up as
//! `resource.Quantity`'s `MilliValue` and `Value` round.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A quantity in thousandths (CPU in millicores); `None` when malformed.
pub fn milli(quantity: &Quantity) -> Option<i64> {
    scaled(&quantity.0, 3)
}

/// A quantity in units (bytes, pods); `None` when malformed.
pub fn value(quantity: &Quantity) -> Option<i64> {
    scaled(&quantity.0, 0)
}

/// `text` × 10^`scale`, rounded up, saturating at the bounds of `i64`.
fn scaled(text: &str, scale: i32) -> Option<i64> {
    let text = text.trim();
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let (mut exponent, binary): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => {
            let digits = other.strip_prefix(['e', 'E'])?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (digits.parse().ok()?, 0)
        }
    };
    // Leading zeros carry nothing; more than 30 significant digits is beyond any request.
    let digits: String = format!("{whole}{fraction}").trim_start_matches('0').to_owned();
    if digits.len() > 30 {
        return None;
    }
    let mut mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    exponent += scale - i32::try_from(fraction.len()).ok()?;
    mantissa = mantissa.checked_mul(1i128 << binary).unwrap_or(i128::MAX);
    let magnitude = if exponent >= 0 {
        10i128.checked_pow(exponent.unsigned_abs()).and_then(|p| mantissa.checked_mul(p)).unwrap_or(i128::MAX)
    } else {
        match 10i128.checked_pow(exponent.unsigned_abs()) {
            Some(divisor) => (mantissa + divisor - 1) / divisor,
            None => i128::from(mantissa > 0),
        }
    };
    let signed = if negative { -magnitude } else { magnitude };
    Some(i64::try_from(signed).unwrap_or(if negative { i64::MIN } else { i64::MAX }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity(text.to_owned())
    }

    #[test]
    fn rounds_up_as_resource_quantity() {
        assert_eq!(milli(&q("100m")), Some(100));
        assert_eq!(milli(&q("1")), Some(1000));
        assert_eq!(milli(&q("1.5")), Some(1500));
        assert_eq!(milli(&q("0.0001")), Some(1));
        assert_eq!(milli(&q("2e-3")), Some(2));
        assert_eq!(value(&q("1Gi")), Some(1 << 30));
        assert_eq!(value(&q("1.5Ki")), Some(1536));
        assert_eq!(value(&q("200M")), Some(200_000_000));
        assert_eq!(value(&q("2E3")), Some(2000));
        assert_eq!(value(&q("110")), Some(110));
        assert_eq!(value(&q("500m")), Some(1));
        assert_eq!(value(&q("-1")), Some(-1));
        assert_eq!(value(&q("1e30")), Some(i64::MAX));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "abc", "1xi", "1..2", "Gi", "1e", "."] {
            assert_eq!(value(&q(bad)), None, "{bad}");
        }
    }
}
