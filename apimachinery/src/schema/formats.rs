//! The string formats CRD validation checks, after kube-openapi's `strfmt` default registry
//! (which apiextensions-apiserver's `StripUnsupportedFormatsPostProcess` narrows down:
//! every other format, e.g. `int32`, `int64`, `float`, `double`, is dropped and never checked).
//! Format names are compared with dashes removed (`date-time` is `datetime`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// The formats apiextensions-apiserver keeps (all of them registered in `strfmt.Default`).
const SUPPORTED: [&str; 24] = [
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

fn normalize(format: &str) -> String {
    format.replace('-', "")
}

/// Whether the format survives upstream's stripping of unsupported formats (and so is checked).
pub(super) fn is_supported(format: &str) -> bool {
    !format.is_empty() && SUPPORTED.contains(&normalize(format).as_str())
}

/// Whether `data` is valid for the (supported) `format`.
pub(super) fn validates(format: &str, data: &str) -> bool {
    match normalize(format).as_str() {
        "bsonobjectid" => data.len() == 24 && data.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_request_uri(data),
        "email" => is_email(data),
        "hostname" => is_hostname(data),
        "ipv4" => parse_ip_sloppy(data).is_some() && data.contains('.'),
        "ipv6" => data.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr_sloppy(data),
        "mac" => is_mac(data),
        "uuid" => UUID.is_match(data),
        "uuid3" => UUID3.is_match(data),
        "uuid4" => UUID4.is_match(data),
        "uuid5" => UUID5.is_match(data),
        "isbn" => is_isbn10(data) || is_isbn13(data),
        "isbn10" => is_isbn10(data),
        "isbn13" => is_isbn13(data),
        "creditcard" => is_credit_card(data),
        "ssn" => data.len() == 11 && SSN.is_match(data),
        "hexcolor" => HEX_COLOR.is_match(data),
        "rgbcolor" => RGB_COLOR.is_match(data),
        "byte" => BASE64.is_match(data),
        "password" => true,
        "date" => is_date(data),
        "duration" => is_duration(data),
        "datetime" => is_date_time(data),
        _ => false,
    }
}

fn regex(pattern: &str) -> Regex {
    // The patterns below are constants known to compile.
    Regex::new(pattern).unwrap_or_else(|e| panic!("format pattern {pattern}: {e}"))
}

static UUID: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID3: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID4: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
static UUID5: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
static SSN: LazyLock<Regex> = LazyLock::new(|| regex(r"^[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}$"));
static HEX_COLOR: LazyLock<Regex> = LazyLock::new(|| regex(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGB_COLOR: LazyLock<Regex> = LazyLock::new(|| {
    let n = r"(0|[1-9][0-9]?|1[0-9][0-9]?|2[0-4][0-9]|25[0-5])";
    let s = r"[\t\n\f\r ]*";
    regex(&format!(r"^rgb\({s}{n}{s},{s}{n}{s},{s}{n}{s}\)$"))
});
static BASE64: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"));
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    let c = r"[a-zA-Z0-9\p{S}\p{L}]";
    regex(&format!(
        r"^({c}((-?{c}{{0,62}})?)|({c}(([a-zA-Z0-9\-\p{{S}}\p{{L}}]{{0,61}}{c})?)(\.)){{1,}}([a-zA-Z\p{{L}}]){{2,63}})$"
    ))
});
static DATE_TIME_CLOCK: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"));
static SCALA_DURATION: LazyLock<Regex> = LazyLock::new(|| regex(r"([0-9]+)[\t\n\f\r ]*([A-Za-zµ]+)"));

/// strfmt's `IsHostname`: the RFC 1034 pattern (with Unicode letters and symbols), at
/// most 255 bytes, labels of at most 63 bytes.
fn is_hostname(s: &str) -> bool {
    HOSTNAME.is_match(s) && s.len() <= 255 && s.split('.').all(|label| label.len() <= 63)
}

/// Go's `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r.clone()].iter().all(u8::is_ascii_digit).then(|| s[r].parse::<u32>().ok()).flatten()
    };
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// strfmt's `IsDateTime`: a date, a `t` (any case), and a clock with zone, checked field by field.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let mut parts = lower.split('t');
    let (Some(date), Some(clock)) = (parts.next(), parts.next()) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let Some(caps) = DATE_TIME_CLOCK.captures(clock) else {
        return false;
    };
    let field = |i: usize| caps.get(i).map_or("", |m| m.as_str());
    field(1) <= "23" && field(2) <= "59" && field(3) <= "59"
}

/// strfmt's `ParseDuration`: Go's `time.ParseDuration`, else any `<digits> <unit>` pair with
/// a unit it knows (`5 minutes`, `3 days`).
fn is_duration(s: &str) -> bool {
    go_parse_duration(s).is_some() || is_scala_duration(s)
}

/// Go's `time.ParseDuration` (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`), as a validity check.
fn go_parse_duration(s: &str) -> Option<()> {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 1<<63 ns
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return Some(());
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None if int.is_empty() => return None,
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after.bytes().take_while(|b| *b != b'.' && !b.is_ascii_digit()).count();
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        let value: f64 = format!("{}.{}0", if int.is_empty() { "0" } else { int }, frac).parse().ok()?;
        total += value * scale;
        if total > LIMIT {
            return None;
        }
        rest = after;
    }
    Some(())
}

fn is_scala_duration(s: &str) -> bool {
    const UNITS: [&[&str]; 8] = [
        &["ns", "nano"],
        &["us", "µs", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    let mut ok = false;
    for caps in SCALA_DURATION.captures_iter(s) {
        let (Some(digits), Some(unit)) = (caps.get(1), caps.get(2)) else { continue };
        // Go's strconv.Atoi fails on overflow, which fails the whole parse.
        if digits.as_str().parse::<i64>().is_err() {
            return false;
        }
        let unit = unit.as_str().trim().to_lowercase();
        ok |= UNITS.iter().any(|variants| {
            variants
                .iter()
                .enumerate()
                .any(|(i, v)| (i == variants.len() - 1 && unit.starts_with(v)) || v.eq_ignore_ascii_case(&unit))
        });
    }
    ok
}

/// Go 1.16's lenient IPv4 parser (k8s.io/utils/net `ParseIPSloppy`): decimal fields with
/// leading zeros allowed.
fn parse_ipv4_sloppy(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut fields = s.split('.');
    for octet in &mut octets {
        let field = fields.next()?;
        *octet = u8::try_from(decimal(field)?).ok()?;
    }
    fields.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// IPv6 as Go 1.16 parsed it: an embedded IPv4 tail may have leading zeros.
fn parse_ipv6_sloppy(s: &str) -> Option<Ipv6Addr> {
    if let Some((head, tail)) = s.rsplit_once(':')
        && tail.contains('.')
    {
        let v4 = parse_ipv4_sloppy(tail)?;
        return format!("{head}:{v4}").parse().ok();
    }
    s.parse().ok()
}

/// `ParseIPSloppy`: IPv4 when a `.` comes before any `:`, IPv6 when a `:` does.
fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    match s.bytes().find(|b| *b == b'.' || *b == b':')? {
        b'.' => parse_ipv4_sloppy(s).map(IpAddr::V4),
        _ => parse_ipv6_sloppy(s).map(IpAddr::V6),
    }
}

/// `ParseCIDRSloppy`: address `/` decimal prefix length within the address size.
fn is_cidr_sloppy(s: &str) -> bool {
    let Some((addr, mask)) = s.split_once('/') else { return false };
    let bits = if parse_ipv4_sloppy(addr).is_some() {
        32
    } else if parse_ipv6_sloppy(addr).is_some() {
        128
    } else {
        return false;
    };
    decimal(mask).is_some_and(|n| n <= bits)
}

/// A non-empty run of ASCII digits (leading zeros allowed, as Go's `dtoi`), up to a
/// million; `None` for anything else.
fn decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = s.trim_start_matches('0');
    if significant.len() > 6 {
        return None;
    }
    Some(significant.parse().unwrap_or(0))
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx.xxxx`.
fn is_mac(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 14 {
        return false;
    }
    let hex2 = |pair: &[u8]| pair.len() == 2 && pair.iter().all(u8::is_ascii_hexdigit);
    let (group, sep) = if b[2] == b':' || b[2] == b'-' {
        (2, b[2])
    } else if b[4] == b'.' {
        (4, b'.')
    } else {
        return false;
    };
    if !(b.len() + 1).is_multiple_of(group + 1) {
        return false;
    }
    let groups = (b.len() + 1) / (group + 1);
    if ![6, 8, 20].contains(&(groups * group / 2)) {
        return false;
    }
    b.split(|c| *c == sep).count() == groups
        && b.split(|c| *c == sep).all(|g| g.len() == group && g.chunks(2).all(hex2))
}

fn is_isbn10(s: &str) -> bool {
    let d: Vec<u8> = s.bytes().filter(|b| !is_go_space(*b) && *b != b'-').collect();
    if d.len() != 10 || !d[..9].iter().all(u8::is_ascii_digit) || !(d[9].is_ascii_digit() || d[9] == b'X') {
        return false;
    }
    let head: u32 = d[..9].iter().enumerate().map(|(i, c)| (i as u32 + 1) * u32::from(c - b'0')).sum();
    let last = if d[9] == b'X' { 100 } else { 10 * u32::from(d[9] - b'0') };
    (head + last).is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let d: Vec<u8> = s.bytes().filter(|b| !is_go_space(*b) && *b != b'-').collect();
    if d.len() != 13 || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = d[..12].iter().enumerate().map(|(i, c)| if i % 2 == 0 { 1 } else { 3 } * u32::from(c - b'0')).sum();
    u32::from(d[12] - b'0') == (10 - sum % 10) % 10
}

/// Go's `\s` (ASCII whitespace without `\v`).
fn is_go_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// govalidator's `IsCreditCard`: the digits (everything else ignored) match a card
/// number prefix pattern and pass the Luhn check.
fn is_credit_card(s: &str) -> bool {
    static CARD: LazyLock<Regex> = LazyLock::new(|| {
        regex(
            r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11})$",
        )
    });
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if !CARD.is_match(&digits) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let n = u32::from(c - b'0');
            if i % 2 == 1 { if n * 2 >= 10 { n * 2 % 10 + 1 } else { n * 2 } } else { n }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Go's `url.ParseRequestURI` as a validity check: an absolute URI or an absolute path,
/// no control bytes, a valid authority (host characters, numeric port, userinfo) and
/// well-formed `%` escapes.
pub(super) fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if s == "*" {
        return true;
    }
    let Some((scheme, rest)) = split_scheme(s) else { return false };
    let rest = match rest.strip_suffix('?') {
        Some(r) if !r.contains('?') => r,
        _ => rest.split_once('?').map_or(rest, |(path, _)| path),
    };
    if !rest.starts_with('/') {
        // An opaque URI (`mailto:x`) needs a scheme.
        return !scheme.is_empty();
    }
    let path = match rest.strip_prefix("//").filter(|_| !scheme.is_empty()) {
        Some(after) => {
            let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
            if !valid_authority(authority) {
                return false;
            }
            path
        }
        None => rest,
    };
    valid_escapes(path)
}

/// Go's `getScheme`: `(scheme, rest)`, scheme empty when there is none; `None` for a
/// leading `:` ("missing protocol scheme").
pub(super) fn split_scheme(s: &str) -> Option<(&str, &str)> {
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some((&s[..i], &s[i + 1..])),
            _ => return Some(("", s)),
        }
    }
    Some(("", s))
}

fn valid_authority(authority: &str) -> bool {
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let userinfo_ok = userinfo.is_none_or(|u| {
        u.chars().all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c)) && valid_escapes(u)
    });
    userinfo_ok && valid_host(host)
}

fn valid_host(host: &str) -> bool {
    let port_ok = |p: &str| p.is_empty() || p.strip_prefix(':').is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    if host.starts_with('[') {
        let Some(end) = host.rfind(']') else { return false };
        if !port_ok(&host[end + 1..]) {
            return false;
        }
    } else if let Some(i) = host.rfind(':')
        && !port_ok(&host[i..])
    {
        return false;
    }
    let bytes = host.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let escape = host.get(i..i + 3).unwrap_or_default();
            let hex = escape.len() == 3 && escape.bytes().skip(1).all(|c| c.is_ascii_hexdigit());
            // In a host, only %25 may escape an ASCII byte.
            if !hex || (escape.as_bytes()[1] < b'8' && escape != "%25") {
                return false;
            }
            i += 3;
            continue;
        }
        if b < 0x80 && !(b.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Every `%` starts a two-hex-digit escape.
fn valid_escapes(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().filter(|(_, b)| **b == b'%').all(|(i, _)| {
        bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    })
}

/// Go's `net/mail.ParseAddress(s)` succeeding with a non-empty address: an addr-spec
/// (`a@b.c`, `"quoted local"@b`, `a@[10.0.0.1]`), optionally followed by a comment, or a
/// phrase and `<addr-spec>` (`Jane Doe <jane@example.com>`). Groups are not accepted.
fn is_email(s: &str) -> bool {
    let mut p = MailParser { s };
    p.address().is_some() && p.skip_cfws() && p.s.is_empty()
}

struct MailParser<'a> {
    s: &'a str,
}

impl MailParser<'_> {
    fn skip_space(&mut self) {
        self.s = self.s.trim_start_matches([' ', '\t']);
    }

    fn consume(&mut self, c: char) -> bool {
        match self.s.strip_prefix(c) {
            Some(rest) => {
                self.s = rest;
                true
            }
            None => false,
        }
    }

    fn address(&mut self) -> Option<()> {
        self.skip_space();
        if self.s.is_empty() {
            return None;
        }
        let saved = self.s;
        if self.addr_spec().is_some() {
            self.skip_space();
            if self.consume('(') {
                return self.comment().then_some(());
            }
            return Some(());
        }
        self.s = saved;
        if !self.s.starts_with('<') {
            self.phrase()?;
        }
        self.skip_space();
        if !self.consume('<') {
            return None;
        }
        self.addr_spec()?;
        self.consume('>').then_some(())
    }

    fn addr_spec(&mut self) -> Option<()> {
        self.skip_space();
        if self.s.starts_with('"') {
            if self.quoted_string()?.is_empty() {
                return None;
            }
        } else {
            self.atom(true, false)?;
        }
        if !self.consume('@') {
            return None;
        }
        self.skip_space();
        if self.s.starts_with('[') { self.domain_literal() } else { self.atom(true, false).map(|_| ()) }
    }

    fn atom(&mut self, dot: bool, permissive: bool) -> Option<&str> {
        let len: usize = self.s.chars().take_while(|c| is_atext(*c, dot)).map(char::len_utf8).sum();
        if len == 0 {
            return None;
        }
        let (atom, rest) = self.s.split_at(len);
        if !permissive && (atom.starts_with('.') || atom.ends_with('.') || atom.contains("..")) {
            return None;
        }
        self.s = rest;
        Some(atom)
    }

    fn quoted_string(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut escaped = false;
        let mut chars = self.s.char_indices().skip(1);
        loop {
            let (i, c) = chars.next()?;
            if escaped {
                if !is_vchar(c) && !is_wsp(c) {
                    return None;
                }
                out.push(c);
                escaped = false;
            } else if c == '"' {
                self.s = &self.s[i + 1..];
                return Some(out);
            } else if c == '\\' {
                escaped = true;
            } else if is_vchar(c) || is_wsp(c) {
                out.push(c);
            } else {
                return None;
            }
        }
    }

    fn domain_literal(&mut self) -> Option<()> {
        self.consume('[');
        let end = self.s.find(']')?;
        let dtext = &self.s[..end];
        if !dtext.chars().all(|c| c != '[' && c != '\\' && is_vchar(c)) || dtext.parse::<IpAddr>().is_err() {
            return None;
        }
        self.s = &self.s[end + 1..];
        Some(())
    }

    /// One or more words (atoms or quoted strings); an error after the first word ends the phrase.
    fn phrase(&mut self) -> Option<()> {
        let mut words = 0;
        loop {
            if words > 0 && !self.skip_cfws() {
                return None;
            }
            self.skip_space();
            if self.s.is_empty() {
                break;
            }
            let word = if self.s.starts_with('"') {
                self.quoted_string().map(|_| ())
            } else {
                self.atom(true, true).map(|_| ())
            };
            if word.is_none() {
                break;
            }
            words += 1;
        }
        (words > 0).then_some(())
    }

    fn skip_cfws(&mut self) -> bool {
        self.skip_space();
        while self.consume('(') {
            if !self.comment() {
                return false;
            }
            self.skip_space();
        }
        true
    }

    /// A (nested) comment after its `(`; false when unclosed.
    fn comment(&mut self) -> bool {
        let mut depth = 1;
        let bytes = self.s.as_bytes();
        let mut i = 0;
        while i < bytes.len() && depth > 0 {
            match bytes[i] {
                b'\\' if i + 1 < bytes.len() => i += 1,
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        self.s = &self.s[i..];
        depth == 0
    }
}

fn is_vchar(c: char) -> bool {
    ('!'..='~').contains(&c) || !c.is_ascii()
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_atext(c: char, dot: bool) -> bool {
    match c {
        '.' => dot,
        '(' | ')' | '<' | '>' | '[' | ']' | ':' | ';' | '@' | '\\' | ',' | '"' => false,
        c => is_vchar(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(format: &str, good: &[&str], bad: &[&str]) {
        for s in good {
            assert!(validates(format, s), "{format}: {s:?} should be valid");
        }
        for s in bad {
            assert!(!validates(format, s), "{format}: {s:?} should be invalid");
        }
    }

    #[test]
    fn only_upstream_formats_are_supported() {
        assert!(is_supported("date-time") && is_supported("byte") && is_supported("uuid"));
        assert!(!is_supported("int32") && !is_supported("int64") && !is_supported("double") && !is_supported(""));
    }

    #[test]
    fn dates_and_times() {
        check("date", &["2024-02-29", "0001-01-01"], &["2023-02-29", "2024-13-01", "2024-1-01", "2024-01-01x", ""]);
        check(
            "date-time",
            &["2024-01-02T03:04:05Z", "2024-01-02t03:04:05.123+01:00", "2024-01-02T23:59:59-05:30"],
            &["2024-01-02", "2024-01-02T24:00:00Z", "2024-01-02T03:04:05", "2024-01-32T03:04:05Z", "x"],
        );
        check("duration", &["1h30m", "-1.5s", "0", "300ms", "5 minutes", "3 days", "2µs"], &["", "1x", "abc", "5"]);
    }

    #[test]
    fn network_formats() {
        check("ipv4", &["10.0.0.1", "010.000.000.001", "::ffff:1.2.3.4"], &["10.0.0", "256.0.0.1", "::1", "a.b.c.d"]);
        check("ipv6", &["::1", "fe80::1", "::ffff:1.2.3.4"], &["1.2.3.4", "fe80::1%eth0", "x"]);
        check("cidr", &["10.0.0.0/8", "fd00::/64", "010.0.0.0/24"], &["10.0.0.0", "10.0.0.0/33", "10.0.0.0/x"]);
        check(
            "mac",
            &["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e"],
            &["00:1a:2b:3c:4d", "00:1a-2b:3c:4d:5e", "zz:1a:2b:3c:4d:5e"],
        );
        check(
            "hostname",
            &["example.com", "a", "my-host.example.co.uk", "bücher.de"],
            &["-a.com", "a..b", "under_score.com", ""],
        );
        check(
            "uri",
            &["http://example.com/a?b=c", "/just/a/path", "mailto:me@example.com", "https://user:pw@h:8080/x", "*"],
            &["", "relative/path", "http://exa mple.com/", "http://h:port/", ":nope", "http://h#frag", "/a%zz"],
        );
        check(
            "email",
            &["a@b.c", "first.last@example.com", "Jane Doe <jane@example.com>", "\"q u\"@example.com", "a@[10.0.0.1]"],
            &["a", "a@", "@b.c", "a..b@c.d", "a@b@c", "Jane <jane@example.com"],
        );
    }

    #[test]
    fn identifier_formats() {
        check("uuid", &["123e4567-e89b-12d3-a456-426614174000", "123E4567E89B12D3A456426614174000"], &["123e4567"]);
        check("uuid4", &["123e4567-e89b-42d3-a456-426614174000"], &["123e4567-e89b-12d3-a456-426614174000"]);
        check("bsonobjectid", &["507f1f77bcf86cd799439011"], &["507f1f77bcf86cd79943901z", "507f"]);
        check("byte", &["aGVsbG8=", "aGk=", "YWJj"], &["", "aGVsbG8", "a=b="]);
        check("isbn10", &["0-306-40615-2", "043942089X"], &["0306406153"]);
        check("isbn13", &["978-0-306-40615-7"], &["9780306406158"]);
        check("isbn", &["0306406152", "9780306406157"], &["123"]);
        check("creditcard", &["4111 1111 1111 1111", "5500-0000-0000-0004"], &["4111111111111112", "1234"]);
        check("ssn", &["123-45-6789", "123 45 6789"], &["123456789", "12-345-6789"]);
        check("hexcolor", &["#fff", "A0B1C2"], &["#ffff", "ggg"]);
        check("rgbcolor", &["rgb(0,128, 255)", "rgb( 1 , 2 , 3 )"], &["rgb(256,0,0)", "rgb(1,2)"]);
        check("password", &["", "anything"], &[]);
    }
}
