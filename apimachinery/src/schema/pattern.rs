//! `pattern` is a Go (RE2) regular expression; this compiles one with Rust's `regex`
//! after rewriting the spots where the two dialects differ:
//!
//! - Go's Perl classes `\d \w \s` (and negations) and `\b \B` are ASCII-only; Rust's are
//!   Unicode-aware.
//! - Go reads a `{` that does not start a valid repetition (`{a}`, `{,3}`) as a literal;
//!   Rust rejects it.
//! - In a Go character class `[` (outside `[:alpha:]`), `&&` and `~~` are literals; Rust
//!   reads nested classes and set operations.
//! - Go's `\Q...\E` quoting, `\<`/`\>` as escaped literals, octal escapes (`\101`).

use regex::{Regex, RegexBuilder};

/// Compiles a Go regular expression; the error text follows Go's `error parsing regexp: ...` lead.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&translate(pattern))
        .octal(true)
        .build()
        .map_err(|e| format!("error parsing regexp: {}", e.to_string().lines().last().unwrap_or_default().trim()))
}

const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = r"\t\n\f\r ";

/// Rewrites Go regexp syntax into the equivalent Rust regex syntax.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    // Inside a character class, and whether a `]` would still be a literal (first item).
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        let at_class_start = std::mem::take(&mut class_start);
        match c {
            '\\' => rest = escape(rest, in_class, &mut out),
            '[' if in_class => match rest.find(":]").filter(|_| rest.starts_with(':')) {
                Some(end) => {
                    out.push('[');
                    out.push_str(&rest[..end + 2]);
                    rest = &rest[end + 2..];
                }
                None => out.push_str(r"\["),
            },
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                if let Some(r) = rest.strip_prefix('^') {
                    out.push('^');
                    rest = r;
                }
            }
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '{' if !in_class => match repetition_len(rest) {
                Some(len) => {
                    out.push('{');
                    out.push_str(&rest[..len]);
                    rest = &rest[len..];
                }
                None => out.push_str(r"\{"),
            },
            '}' if !in_class => out.push_str(r"\}"),
            c => out.push(c),
        }
    }
    out
}

/// The length of `n}`, `n,}` or `n,m}` at the start of `s` (what follows a `{` that Go
/// reads as a repetition), or `None` when Go reads the `{` literally.
fn repetition_len(s: &str) -> Option<usize> {
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
    let min = digits(s);
    if min == 0 {
        return None;
    }
    let mut len = min;
    if s[len..].starts_with(',') {
        len += 1 + digits(&s[len + 1..]);
    }
    s[len..].starts_with('}').then_some(len + 1)
}

/// Translates the escape after a `\`; returns the remaining input.
fn escape<'a>(rest: &'a str, in_class: bool, out: &mut String) -> &'a str {
    let Some(c) = rest.chars().next() else {
        out.push('\\');
        return rest;
    };
    let after = &rest[c.len_utf8()..];
    let class = |set: &str, negated: bool| match (in_class, negated) {
        (true, false) => set.to_owned(),
        (_, true) => format!("[^{set}]"),
        (false, false) => format!("[{set}]"),
    };
    match c {
        'd' | 'D' => out.push_str(&class(DIGIT, c == 'D')),
        'w' | 'W' => out.push_str(&class(WORD, c == 'W')),
        's' | 'S' => out.push_str(&class(SPACE, c == 'S')),
        'b' | 'B' if !in_class => {
            out.push_str(&format!(r"(?-u:\{c})"));
        }
        'Q' => {
            let (quoted, remaining) = after.split_once(r"\E").unwrap_or((after, ""));
            out.push_str(&regex::escape(quoted));
            return remaining;
        }
        '<' | '>' => out.push(c),
        'p' | 'P' | 'x' if after.starts_with('{') => {
            let end = after.find('}').map_or(after.len(), |i| i + 1);
            out.push('\\');
            out.push(c);
            out.push_str(&after[..end]);
            return &after[end..];
        }
        c => {
            out.push('\\');
            out.push(c);
        }
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, s: &str) -> bool {
        compile(pattern).map(|re| re.is_match(s)).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        assert!(matches(r"^\d+$", "123"));
        assert!(!matches(r"^\d+$", "١٢٣"));
        assert!(matches(r"^\D$", "١"));
        assert!(!matches(r"^\w+$", "héllo"));
        assert!(matches(r"^[\w.-]+$", "a_b.c-d"));
        assert!(!matches(r"^[\w]+$", "é"));
        assert!(matches(r"^\s$", "\t"));
        assert!(!matches(r"^\s$", "\u{a0}"));
        assert!(matches(r"\bfoo\b", "a foo b"));
        assert!(matches(r"^[^\S]$", " "));
    }

    #[test]
    fn literals_go_accepts() {
        assert!(matches(r"^{abc}$", "{abc}"));
        assert!(matches(r"^a{,3}$", "a{,3}"));
        assert!(matches(r"^a{2,3}$", "aaa"));
        assert!(matches(r"^[a[]+$", "a[a"));
        assert!(matches(r"^[a&&b]+$", "a&b"));
        assert!(matches(r"^[[:alpha:]]+$", "abc"));
        assert!(matches(r"^[]a]+$", "]a"));
        assert!(matches(r"^\Q.*\E$", ".*"));
        assert!(matches(r"^\<a\>$", "<a>"));
        assert!(matches(r"^\p{Greek}\x{41}$", "αA"));
        assert!(matches(r"^\101$", "A"));
    }

    #[test]
    fn invalid_patterns_error() {
        let err = compile("(a").unwrap_err();
        assert!(err.starts_with("error parsing regexp: "), "{err}");
    }
}
