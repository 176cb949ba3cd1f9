//! Upstream's `library.Quantity`: `quantity`, `isQuantity`, and `sign`, `isInteger`,
//! `asInteger`, `asApproximateFloat`, `add`, `sub`, `isGreaterThan`, `isLessThan` and
//! `compareTo` on a quantity.
//!
//! A quantity is held as `resource.Quantity` holds it: an `int64` scaled by a power of
//! ten while it fits, an arbitrary-precision decimal otherwise. The difference shows, as
//! upstream: `asInteger` only converts the former (`quantity('1000m').isInteger()` is
//! false, as its scale is negative), and arithmetic that overflows it moves to the
//! latter.

use std::cmp::Ordering;

use cel::common::types::{CelBool, CelDouble, CelInt, CelString, Type};
use cel::{DeclarationError, Env, ExecutionError};
use num_bigint::BigInt;
use num_traits::{One, Signed, ToPrimitive, Zero};
use thiserror::Error;

use super::{failure, opaque_value};

static QUANTITY_TYPE: Type = Type::new_unspecified_type("kubernetes.Quantity");

/// The most nanos a quantity keeps: smaller non-zero amounts round up to `1n`.
const NANO: i32 = -9;

/// The largest power of ten a quantity's suffix may carry (`1e10000`): upstream has no
/// bound, but comparing or adding quantities aligns their scales, which past this would
/// cost time and memory out of proportion to a validation rule.
const MAX_SCALE: i32 = 10_000;

/// A parsed quantity.
#[derive(Clone, Debug)]
pub(super) enum Quantity {
    /// `value × 10^scale`, Go's `int64Amount`.
    Int { value: i64, scale: i32 },
    /// `unscaled × 10^scale`, Go's `inf.Dec`.
    Dec { unscaled: BigInt, scale: i32 },
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

opaque_value!(Quantity, QUANTITY_TYPE);

/// Why a string is not a quantity; the texts are `resource.ParseQuantity`'s.
#[derive(Debug, Error, PartialEq)]
enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn quantity: (CelString) -> Result<Quantity>, id = "string_to_quantity")?;
    cel::add_overload!(env, fn is_quantity: (CelString) -> CelBool, id = "is_quantity_string")?;
    // Upstream declares `sign` as a global overload but documents `q.sign()`: both work.
    cel::add_overload!(env, fn sign: (Quantity) -> CelInt, id = "quantity_sign")?;
    cel::add_member_overload!(env, fn sign: (Quantity) -> CelInt, id = "quantity_member_sign")?;
    cel::add_member_overload!(env, fn is_greater_than: (Quantity, Quantity) -> CelBool,
        id = "quantity_is_greater_than")?;
    cel::add_member_overload!(env, fn is_less_than: (Quantity, Quantity) -> CelBool, id = "quantity_is_less_than")?;
    cel::add_member_overload!(env, fn compare_to: (Quantity, Quantity) -> CelInt, id = "quantity_compare_to")?;
    cel::add_member_overload!(env, fn as_approximate_float: (Quantity) -> CelDouble, id = "quantity_get_float")?;
    cel::add_member_overload!(env, fn as_integer: (Quantity) -> Result<CelInt>, id = "quantity_get_int")?;
    cel::add_member_overload!(env, fn is_integer: (Quantity) -> CelBool, id = "quantity_is_integer")?;
    cel::add_member_overload!(env, fn add: (Quantity, Quantity) -> Quantity, id = "quantity_add")?;
    cel::add_member_overload!(env, fn add_int: (Quantity, CelInt) -> Quantity, name = "add", id = "quantity_add_int")?;
    cel::add_member_overload!(env, fn sub: (Quantity, Quantity) -> Quantity, id = "quantity_sub")?;
    cel::add_member_overload!(env, fn sub_int: (Quantity, CelInt) -> Quantity, name = "sub", id = "quantity_sub_int")?;
    Ok(())
}

fn quantity(s: &CelString<'_>) -> Result<Quantity, ExecutionError> {
    Quantity::parse(s.inner()).map_err(|e| failure("quantity", e))
}

fn is_quantity(s: &CelString<'_>) -> CelBool {
    CelBool::from(Quantity::parse(s.inner()).is_ok())
}

fn sign(q: &Quantity) -> CelInt {
    CelInt::from(match q {
        Quantity::Int { value, .. } => value.signum(),
        Quantity::Dec { unscaled, .. } => unscaled.signum().to_i64().unwrap_or(0),
    })
}

fn is_greater_than(q: &Quantity, other: &Quantity) -> CelBool {
    CelBool::from(q.cmp(other) == Ordering::Greater)
}

fn is_less_than(q: &Quantity, other: &Quantity) -> CelBool {
    CelBool::from(q.cmp(other) == Ordering::Less)
}

fn compare_to(q: &Quantity, other: &Quantity) -> CelInt {
    CelInt::from(q.cmp(other) as i64)
}

fn as_approximate_float(q: &Quantity) -> CelDouble {
    CelDouble::from(q.approximate_float())
}

fn as_integer(q: &Quantity) -> Result<CelInt, ExecutionError> {
    q.as_int64().map(CelInt::from).ok_or_else(|| failure("asInteger", "cannot convert value to integer"))
}

fn is_integer(q: &Quantity) -> CelBool {
    CelBool::from(q.as_int64().is_some())
}

fn add(q: &Quantity, other: &Quantity) -> Quantity {
    q.add(other)
}

fn add_int(q: &Quantity, n: &CelInt) -> Quantity {
    q.add(&Quantity::Int { value: *n.inner(), scale: 0 })
}

fn sub(q: &Quantity, other: &Quantity) -> Quantity {
    q.sub(other)
}

fn sub_int(q: &Quantity, n: &CelInt) -> Quantity {
    q.sub(&Quantity::Int { value: *n.inner(), scale: 0 })
}

/// The parts of a quantity's text, as Go's `parseQuantityString` splits it.
struct Parts<'a> {
    positive: bool,
    /// Integer digits, leading zeros stripped, `"0"` if none.
    num: &'a str,
    /// Fraction digits.
    denom: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let digits_end = |from: usize| s[from..].find(|c: char| !c.is_ascii_digit()).map_or(s.len(), |i| from + i);
    let (positive, mut pos) = match s.as_bytes().first() {
        Some(b'-') => (false, 1),
        Some(b'+') => (true, 1),
        _ => (true, 0),
    };
    pos += s[pos..].len() - s[pos..].trim_start_matches('0').len();
    if pos == s.len() {
        return Ok(Parts { positive, num: "0", denom: "", suffix: "" });
    }
    let num_end = digits_end(pos);
    let num = if num_end == pos { "0" } else { &s[pos..num_end] };
    pos = num_end;
    let mut denom = "";
    if s[pos..].starts_with('.') {
        let end = digits_end(pos + 1);
        denom = &s[pos + 1..end];
        pos = end;
    }
    let suffix_start = pos;
    pos += s[pos..].len() - s[pos..].trim_start_matches(|c| "eEinumkKMGTP".contains(c)).len();
    if s[pos..].starts_with(['-', '+']) {
        pos += 1;
    }
    if digits_end(pos) != s.len() {
        return Err(QuantityError::Format);
    }
    Ok(Parts { positive, num, denom, suffix: &s[suffix_start..] })
}

/// What a suffix means: `(base, exponent, binary)`.
fn interpret(suffix: &str) -> Option<(u32, i32, bool)> {
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if let Some(i) = binary.iter().position(|b| *b == suffix) {
        return Some((2, 10 * (i as i32 + 1), true));
    }
    let decimal =
        [("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
    if let Some((_, exponent)) = decimal.iter().find(|(d, _)| *d == suffix) {
        return Some((10, *exponent, false));
    }
    let exponent = suffix.strip_prefix(['e', 'E']).filter(|e| !e.is_empty())?;
    // Go parses an int64 and keeps its low 32 bits.
    let exponent: i64 = exponent.parse().ok()?;
    Some((10, exponent as i32, false))
}

fn ten_to(n: i32) -> BigInt {
    num_traits::pow(BigInt::from(10), n.unsigned_abs() as usize)
}

/// `value × 10^scale` for `scale >= 0`, if it fits an `i64` (Go's `positiveScaleInt64`).
fn positive_scale(value: i64, scale: i32) -> Option<i64> {
    (0..scale).try_fold(value, |v, _| v.checked_mul(10))
}

/// Go's `int64Amount.Add`: `None` when the sum leaves `i64`.
fn int_add((a, a_scale): (i64, i32), (b, b_scale): (i64, i32)) -> Option<(i64, i32)> {
    match () {
        _ if b == 0 => Some((a, a_scale)),
        _ if a == 0 => Some((b, b_scale)),
        _ if a_scale == b_scale => Some((a.checked_add(b)?, a_scale)),
        _ if a_scale > b_scale => Some((positive_scale(a, a_scale - b_scale)?.checked_add(b)?, b_scale)),
        _ => Some((a.checked_add(positive_scale(b, b_scale - a_scale)?)?, a_scale)),
    }
}

/// Go's `math.Pow10`.
fn pow10(n: i32) -> f64 {
    format!("1e{n}").parse().unwrap_or(if n > 0 { f64::INFINITY } else { 0.0 })
}

impl Quantity {
    /// `resource.ParseQuantity`.
    fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        if s == "0" {
            return Ok(Quantity::Int { value: 0, scale: 0 });
        }
        let Parts { positive, num, denom, suffix } = split(s)?;
        let (base, exponent, binary) = interpret(suffix).ok_or(QuantityError::Suffix)?;
        if !(-MAX_SCALE..=MAX_SCALE).contains(&exponent) {
            return Err(QuantityError::Numeric);
        }
        let len = |s: &str| i32::try_from(s.len()).unwrap_or(i32::MAX);

        // The fast path: at most 18 digits, no finer than nanos, within an i64.
        let (mut scale, precision, mantissa) = if binary {
            if exponent >= 0 && denom.is_empty() {
                let digits = (exponent as f32 * 3.0 / 10.0) as i32;
                (0, 15 - len(num) - digits - 1, 1i64 << exponent)
            } else {
                (0, -1, 1)
            }
        } else {
            (exponent, 18_i32.saturating_sub(len(num).saturating_add(len(denom))), 1)
        };
        if precision >= 0 {
            scale -= len(denom);
            if scale >= NANO {
                let value: i64 = format!("{num}{denom}").parse().map_err(|_| QuantityError::Numeric)?;
                if let Some(value) = value.checked_mul(mantissa) {
                    return Ok(Quantity::Int { value: if positive { value } else { -value }, scale });
                }
            }
        }

        // The general case, an arbitrary-precision decimal.
        let mut unscaled: BigInt = format!("{num}{denom}").parse().map_err(|_| QuantityError::Numeric)?;
        let mut scale = -len(denom);
        if base == 10 {
            scale = scale.saturating_add(exponent);
        } else {
            unscaled <<= exponent as usize;
        }
        // Round up to a whole number of nanos.
        if !unscaled.is_zero() && scale < NANO {
            let divisor = ten_to(NANO - scale);
            unscaled = (unscaled + &divisor - BigInt::one()) / divisor;
            scale = NANO;
        }
        if binary {
            let max = Quantity::Int { value: i64::MAX, scale: 0 };
            let amount = Quantity::Dec { unscaled: unscaled.clone(), scale };
            if amount.cmp(&max) == Ordering::Greater {
                (unscaled, scale) = (BigInt::from(i64::MAX), 0);
            }
        }
        if !positive {
            unscaled = -unscaled;
        }
        Ok(Quantity::Dec { unscaled, scale })
    }

    fn as_dec(&self) -> (BigInt, i32) {
        match self {
            Quantity::Int { value, scale } => (BigInt::from(*value), *scale),
            Quantity::Dec { unscaled, scale } => (unscaled.clone(), *scale),
        }
    }

    /// `Quantity.Cmp`: exact.
    fn cmp(&self, other: &Quantity) -> Ordering {
        let ((a, a_scale), (b, b_scale)) = (self.as_dec(), other.as_dec());
        match a_scale.cmp(&b_scale) {
            Ordering::Equal => a.cmp(&b),
            Ordering::Greater => (a * ten_to(a_scale - b_scale)).cmp(&b),
            Ordering::Less => a.cmp(&(b * ten_to(b_scale - a_scale))),
        }
    }

    /// `Quantity.Add`: within `int64Amount` while the sum fits, a decimal otherwise.
    fn add(&self, other: &Quantity) -> Quantity {
        if let (Quantity::Int { value: a, scale: a_scale }, Quantity::Int { value: b, scale: b_scale }) = (self, other)
            && let Some((value, scale)) = int_add((*a, *a_scale), (*b, *b_scale))
        {
            return Quantity::Int { value, scale };
        }
        Quantity::dec_sum(self.as_dec(), other.as_dec())
    }

    /// `Quantity.Sub`.
    fn sub(&self, other: &Quantity) -> Quantity {
        if let (Quantity::Int { value: a, scale: a_scale }, Quantity::Int { value: b, scale: b_scale }) = (self, other)
            && let Some((value, scale)) = int_add((*a, *a_scale), (b.wrapping_neg(), *b_scale))
        {
            return Quantity::Int { value, scale };
        }
        let (b, b_scale) = other.as_dec();
        Quantity::dec_sum(self.as_dec(), (-b, b_scale))
    }

    fn dec_sum((a, a_scale): (BigInt, i32), (b, b_scale): (BigInt, i32)) -> Quantity {
        let scale = a_scale.min(b_scale);
        let unscaled = a * ten_to(a_scale - scale) + b * ten_to(b_scale - scale);
        Quantity::Dec { unscaled, scale }
    }

    /// `Quantity.AsInt64`: only an `int64Amount` of a scale that is not negative converts.
    fn as_int64(&self) -> Option<i64> {
        match self {
            Quantity::Int { value, scale } if *scale >= 0 => positive_scale(*value, *scale),
            _ => None,
        }
    }

    /// `Quantity.AsApproximateFloat64`.
    fn approximate_float(&self) -> f64 {
        let (base, exponent) = match self {
            Quantity::Int { value, scale } => (*value as f64, *scale),
            Quantity::Dec { unscaled, scale } => (
                unscaled.to_f64().unwrap_or(if unscaled.is_negative() { f64::NEG_INFINITY } else { f64::INFINITY }),
                *scale,
            ),
        };
        if exponent == 0 { base } else { base * pow10(exponent) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_as_resource_quantity_does() {
        assert_eq!(q("1Ki").as_int64(), Some(1024));
        assert_eq!(q("1.5k").as_int64(), Some(1500));
        assert_eq!(q("-2M").as_int64(), Some(-2_000_000));
        assert_eq!(q("2e3").as_int64(), Some(2000));
        assert_eq!(q("1000m").as_int64(), None, "a negative scale does not convert");
        assert_eq!(q("0.5").approximate_float(), 0.5);
        assert_eq!(q("9999999999999999999999999999999999999G").as_int64(), None);
        assert!(q("9999999999999999999999999999999999999G").approximate_float() > 9.9e45);
        assert_eq!(q("0.1n"), q("1n"), "rounded up to a nano");
        assert_eq!(q("200M"), q("0.2G"));
        assert_eq!(q("50M").cmp(&q("50Mi")), Ordering::Less);
        // Go's parser takes a missing number for zero (upstream's documentation says
        // otherwise of `Mi`, its code does not).
        assert_eq!(q("Mi").as_int64(), Some(0));
        for bad in ["", "200K", "Three", "10Mo", "1,3G", "1e", "1.5.5", "1ki"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Quantity::parse("200K"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("1,3G"), Err(QuantityError::Format));
        assert_eq!(q("1e10000").cmp(&q("1e-10000")), Ordering::Greater);
        assert_eq!(Quantity::parse("1e10001"), Err(QuantityError::Numeric), "beyond the bound");
    }

    #[test]
    fn arithmetic_stays_in_int64_while_it_fits() {
        assert_eq!(q("50k").add(&q("20k")), q("70k"));
        assert_eq!(q("50k").sub(&Quantity::Int { value: 20000, scale: 0 }).as_int64(), Some(30000));
        let big = q("9223372036854775807").add(&q("1"));
        assert!(matches!(big, Quantity::Dec { .. }), "{big:?}");
        assert_eq!(big.as_int64(), None);
        assert_eq!(big.cmp(&q("9223372036854775807")), Ordering::Greater);
    }
}
