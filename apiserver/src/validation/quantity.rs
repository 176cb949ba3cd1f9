//! Resource quantities (`100m`, `1Gi`, `2e3`), as `resource.Quantity` parses them.

/// The upstream parse error text.
pub const QUANTITY_MSG: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const SUFFIXES: &[&str] = &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"];

/// The value of a quantity as a float (enough to check the sign), or `None` if malformed.
pub fn parse(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let number_len = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_len);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let valid_suffix = SUFFIXES.contains(&suffix)
        || suffix
            .strip_prefix(['e', 'E'])
            .is_some_and(|exp| {
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
            });
    if !valid_suffix {
        return None;
    }
    let magnitude: f64 = number.parse().ok()?;
    Some(if s.starts_with('-') { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_like_resource_quantity() {
        for ok in ["1", "100m", "1.5Gi", "2e3", "0.5", "+1k", "1E-2"] {
            assert!(parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "abc", "1xi", "1..2", "Gi", "1e"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(parse("-1").unwrap() < 0.0);
    }
}
