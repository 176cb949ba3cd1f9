//! Upstream's `library.URLs`: `url`, `isURL`, and `getScheme`, `getHost`, `getHostname`,
//! `getPort`, `getEscapedPath` and `getQuery` on a URL.
//!
//! A URL is what Go's `url.ParseRequestURI` accepts (an absolute URI or an absolute path),
//! taken apart as Go's `url.Parse` does: the host is kept as written (brackets and port
//! included, no case folding, no default ports dropped), and the path keeps its escapes.
//! The `url` crate follows the WHATWG URL standard, which normalizes all of those, so the
//! parsing here is Go's.

use std::collections::HashMap;

use cel::common::types::{CelBool, CelList, CelMap, CelMapKey, CelString, Type};
use cel::common::value::Val;
use cel::{DeclarationError, Env, ExecutionError};
use thiserror::Error;

use super::super::formats::{is_request_uri, split_scheme};
use super::{failure, opaque_value};

static URL_TYPE: Type = Type::new_unspecified_type("kubernetes.URL");

/// A parsed URL: the parts the accessors return.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Url {
    scheme: String,
    host: String,
    escaped_path: String,
    raw_query: String,
}

opaque_value!(Url, URL_TYPE);

/// Why a string is not a URL; the text is Go's.
#[derive(Debug, Error)]
enum UrlError {
    #[error("parse {0:?}: invalid URI for request")]
    NotRequestUri(String),
    #[error("parse {0:?}: invalid port {1:?} after host")]
    InvalidPort(String, String),
    #[error("parse {0:?}: missing ']' in host")]
    MissingBracket(String),
    #[error("parse {0:?}: invalid URL escape {1:?}")]
    InvalidEscape(String, String),
}

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn url: (CelString) -> Result<Url>, id = "string_to_url")?;
    cel::add_overload!(env, fn is_url: (CelString) -> CelBool, name = "isURL", id = "is_url_string")?;
    cel::add_member_overload!(env, fn get_scheme: (Url) -> CelString, id = "url_get_scheme")?;
    cel::add_member_overload!(env, fn get_host: (Url) -> CelString, id = "url_get_host")?;
    cel::add_member_overload!(env, fn get_hostname: (Url) -> CelString, id = "url_get_hostname")?;
    cel::add_member_overload!(env, fn get_port: (Url) -> CelString, id = "url_get_port")?;
    cel::add_member_overload!(env, fn get_escaped_path: (Url) -> CelString, id = "url_get_escaped_path")?;
    cel::add_member_overload!(env, fn get_query: (Url) -> CelMap, id = "url_get_query")?;
    Ok(())
}

fn url(s: &CelString<'_>) -> Result<Url, ExecutionError> {
    Url::parse(s.inner()).map_err(|e| failure("url", format!("URL parse error during conversion from string: {e}")))
}

fn is_url(s: &CelString<'_>) -> CelBool {
    CelBool::from(is_request_uri(s.inner()))
}

fn get_scheme(url: &Url) -> CelString<'static> {
    url.scheme.clone().into()
}

fn get_host(url: &Url) -> CelString<'static> {
    url.host.clone().into()
}

fn get_hostname(url: &Url) -> CelString<'static> {
    url.hostname().to_owned().into()
}

fn get_port(url: &Url) -> CelString<'static> {
    url.port().to_owned().into()
}

fn get_escaped_path(url: &Url) -> CelString<'static> {
    url.escaped_path.clone().into()
}

fn get_query(url: &Url) -> CelMap<'static> {
    let mut entries: HashMap<CelMapKey<'static>, Box<dyn Val>> = HashMap::new();
    for (key, values) in url.query() {
        let values: Vec<Box<dyn Val>> =
            values.into_iter().map(|v| Box::new(CelString::from(v)) as Box<dyn Val>).collect();
        entries.insert(CelMapKey::from(key), Box::new(CelList::from(values)));
    }
    CelMap::from(entries)
}

impl Url {
    /// Go's `url.ParseRequestURI` as the check, then `url.Parse` for the parts.
    fn parse(s: &str) -> Result<Url, UrlError> {
        if !is_request_uri(s) {
            return Err(UrlError::NotRequestUri(s.to_owned()));
        }
        let whole = s.split_once('#').map_or(s, |(u, _)| u);
        if whole == "*" {
            return Ok(Url {
                scheme: String::new(),
                host: String::new(),
                escaped_path: "*".to_owned(),
                raw_query: String::new(),
            });
        }
        let (scheme, rest) = split_scheme(whole).ok_or_else(|| UrlError::NotRequestUri(s.to_owned()))?;
        let scheme = scheme.to_ascii_lowercase();
        let (rest, raw_query) = match rest.strip_suffix('?') {
            Some(r) if !r.contains('?') => (r, ""),
            _ => rest.split_once('?').unwrap_or((rest, "")),
        };
        if !rest.starts_with('/') {
            // An opaque URI, `mailto:x`: no host, no path.
            return Ok(Url {
                scheme,
                host: String::new(),
                escaped_path: String::new(),
                raw_query: raw_query.to_owned(),
            });
        }
        let (host, path) = match rest.strip_prefix("//") {
            Some(after) if !scheme.is_empty() || !rest.starts_with("///") => {
                let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                (parse_host(whole, host)?, path)
            }
            _ => (String::new(), rest),
        };
        let escaped_path = if valid_encoded_path(path) {
            path.to_owned()
        } else {
            escape_path(&unescape_bytes(path, false).map_err(|e| UrlError::InvalidEscape(whole.to_owned(), e))?)
        };
        Ok(Url { scheme, host, escaped_path, raw_query: raw_query.to_owned() })
    }

    /// Go's `URL.Hostname`: the host without its port, and without the brackets of an
    /// IPv6 literal.
    fn hostname(&self) -> &str {
        let (host, _) = split_host_port(&self.host);
        host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
    }

    /// Go's `URL.Port`: the digits after the host's last `:`, if only digits follow it.
    fn port(&self) -> &str {
        split_host_port(&self.host).1
    }

    /// Go's `URL.Query`: the `&`-separated `key=value` pairs, unescaped (`+` is a
    /// space), values of a repeated key in order. Pairs with a `;` or a malformed escape
    /// are dropped, as are empty ones.
    fn query(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for pair in self.raw_query.split('&') {
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Ok(key), Ok(value)) = (query_unescape(key), query_unescape(value)) else { continue };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => out.push((key, vec![value])),
            }
        }
        out
    }
}

/// Go's `splitHostPort`: `(host, port)`, the port empty unless the host ends in `:digits`.
fn split_host_port(host_port: &str) -> (&str, &str) {
    match host_port.rfind(':') {
        Some(i) if valid_optional_port(&host_port[i..]) => (&host_port[..i], &host_port[i + 1..]),
        _ => (host_port, ""),
    }
}

fn valid_optional_port(port: &str) -> bool {
    port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's `parseHost`: the port (after the brackets of an IPv6 literal) must be numeric;
/// the host is unescaped.
fn parse_host(url: &str, host: &str) -> Result<String, UrlError> {
    let colon_port = if host.starts_with('[') {
        let end = host.rfind(']').ok_or_else(|| UrlError::MissingBracket(url.to_owned()))?;
        &host[end + 1..]
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    if !valid_optional_port(colon_port) {
        return Err(UrlError::InvalidPort(url.to_owned(), colon_port.to_owned()));
    }
    unescape(host).map_err(|e| UrlError::InvalidEscape(url.to_owned(), e))
}

/// Go's `validEncoded(s, encodePath)`: `s` needs no escaping to be a path.
fn valid_encoded_path(s: &str) -> bool {
    s.bytes().all(|b| b"!$&'()*+,;=:@[]%".contains(&b) || !should_escape_in_path(b))
}

/// Go's `shouldEscape(c, encodePath)`.
fn should_escape_in_path(b: u8) -> bool {
    !(b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b))
}

/// Go's `escape(s, encodePath)`.
fn escape_path(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if should_escape_in_path(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// `%XX` escapes decoded; the malformed escape as the error.
fn unescape_bytes(s: &str, plus_is_space: bool) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    return Err(s[i..].chars().take(3).collect());
                };
                out.push(value);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn unescape(s: &str) -> Result<String, String> {
    unescape_bytes(s, false).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn query_unescape(s: &str) -> Result<String, String> {
    unescape_bytes(s, true).map(|b| String::from_utf8_lossy(&b).into_owned())
}
