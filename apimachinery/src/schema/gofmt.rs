//! How Go prints the values that end up in upstream's messages: `strconv.Quote` (`%q`),
//! `%v` of numbers, `%#v` of unstructured JSON (`map[string]interface {}{...}`) and
//! `encoding/json` output. The unstructured decoder types JSON numbers as `int64` when the
//! literal is an integer that fits, `float64` otherwise; [`GoNumber`] captures that.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// A JSON number as Go's unstructured decoder types it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum GoNumber {
    Int(i64),
    Float(f64),
}

impl GoNumber {
    pub(super) fn of(n: &Number) -> Self {
        match n.as_i64() {
            Some(i) => GoNumber::Int(i),
            None => GoNumber::Float(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    /// The value as a float64 (Go's `valueHelp.asFloat64`).
    pub(super) fn as_f64(self) -> f64 {
        match self {
            // Precision loss above 2^53 is what Go's float64(int64) does too.
            GoNumber::Int(i) => i as f64,
            GoNumber::Float(f) => f,
        }
    }

    /// `%v`.
    pub(super) fn render(self) -> String {
        match self {
            GoNumber::Int(i) => i.to_string(),
            GoNumber::Float(f) => float(f),
        }
    }
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` (letters, marks, numbers, punctuation,
/// symbols and the ASCII space): controls, non-ASCII spaces, the common format characters
/// and private-use code points are not printable.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
        | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff
        | 0xf0000..=0x10ffff)
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits
/// that round-trip, in exponent form when the decimal exponent is below -4 or at least 6
/// (`1e+06`, `123456`, `1.5e-07`).
pub(super) fn float(f: f64) -> String {
    float_with(f, |exp| !(-4..6).contains(&exp))
}

/// The shared digit logic of Go's shortest float formats; `use_exponent` decides between
/// `%e` and `%f` layout from the decimal exponent of the first digit.
fn float_with(f: f64, use_exponent: impl Fn(i32) -> bool) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if use_exponent(exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// How `field.Error` prints a bad value: `null` and strings quoted, numbers and booleans
/// with `%v`, objects and arrays with `%#v`.
pub(super) fn bad_value(v: &Value) -> String {
    match v {
        Value::Null => quote("null"),
        Value::String(s) => quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => GoNumber::of(n).render(),
        Value::Array(_) | Value::Object(_) => go_syntax(v),
    }
}

/// Go's `%#v` of an unstructured value: `map[string]interface {}{"a":1, "b":"c"}`,
/// `[]interface {}{"x", true}`, `interface {}(nil)`.
pub(super) fn go_syntax(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => GoNumber::of(n).render(),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_syntax).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> =
                sorted(map).into_iter().map(|(k, v)| format!("{}:{}", quote(k), go_syntax(v))).collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// Go's plain `%v` of an unstructured value (`[a 1 map[k:v]]`).
pub(super) fn plain(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => GoNumber::of(n).render(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let inner: Vec<String> = sorted(map).into_iter().map(|(k, v)| format!("{k}:{}", plain(v))).collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Go's `json.Marshal` of an unstructured value: sorted keys, HTML-safe string escapes,
/// floats in `%f` form between 1e-6 and 1e21 and in cleaned-up `%e` form outside.
pub(super) fn json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match GoNumber::of(n) {
            GoNumber::Int(i) => out.push_str(&i.to_string()),
            GoNumber::Float(f) => out.push_str(&json_float(f)),
        },
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
    }
}

fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // `%e`, then Go's clean-up of a two-digit negative exponent: e-07 -> e-7.
        let s = float_with(f, |_| true);
        match s.rsplit_once("e-0") {
            Some((mantissa, digit)) if digit.len() == 1 => format!("{mantissa}e-{digit}"),
            _ => s,
        }
    } else {
        float_with(f, |_| false)
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Map entries in Go's printing order (sorted keys).
pub(super) fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quote_escapes_like_strconv() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\n\t\u{1}\u{7f}"), r#""\n\t\x01\x7f""#);
        assert_eq!(quote("héllo ✓"), "\"héllo ✓\"");
        assert_eq!(quote("\u{a0}\u{200b}\u{feff}"), r#""\u00a0\u200b\ufeff""#);
    }

    #[test]
    fn floats_print_like_go_v() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (0.0, "0"),
        ];
        for (f, want) in cases {
            assert_eq!(float(f), want, "{f}");
        }
    }

    #[test]
    fn json_matches_go_marshal() {
        let v = json!({"b": [1, 1.5, 1e21, 1e-7, 2.0], "a": "<&>", "c": null});
        assert_eq!(json(&v), r#"{"a":"\u003c\u0026\u003e","b":[1,1.5,1e+21,1e-7,2],"c":null}"#);
    }

    #[test]
    fn go_syntax_of_unstructured() {
        let v = json!({"name": "a", "n": 1, "l": [true, null, 0.5], "m": {}});
        assert_eq!(
            go_syntax(&v),
            r#"map[string]interface {}{"l":[]interface {}{true, interface {}(nil), 0.5}, "m":map[string]interface {}{}, "n":1, "name":"a"}"#
        );
        assert_eq!(bad_value(&Value::Null), r#""null""#);
        assert_eq!(bad_value(&json!(2.5)), "2.5");
        assert_eq!(plain(&json!(["a", 1, {"k": "v"}])), "[a 1 map[k:v]]");
    }
}
