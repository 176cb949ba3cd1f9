//! Query parameters of resource requests.

use crate::status::ApiError;

/// The raw `?a=b&c=d` pairs, looked up by name.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (decode(k), decode(v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value given for `name`, in order (`?exclude=a&exclude=b`).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A non-empty value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// `true`/`1` (and bare `?watch`).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| matches!(v, "" | "1" | "true" | "True"))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.value(name)
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid value for {name}: \"{v}\""))))
            .transpose()
    }

    /// `dryRun=All`; any other value is rejected as upstream does.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let values: Vec<&str> = self.values("dryRun").collect();
        match values.as_slice() {
            [] => Ok(false),
            ["All"] => Ok(true),
            other => Err(ApiError::bad_request(format!("Invalid dryRun value: {other:?}; only \"All\" is supported"))),
        }
    }
}

/// Percent-decoding of one query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_selectors() {
        let p = Params::parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&limit=5&x=%"));
        assert_eq!(p.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(p.flag("watch"));
        assert_eq!(p.int("limit").unwrap(), Some(5));
        assert_eq!(p.get("x"), Some("%"));
        assert!(!p.dry_run().unwrap());
        assert!(Params::parse(Some("dryRun=All")).dry_run().unwrap());
        assert!(Params::parse(Some("dryRun=Foo")).dry_run().is_err());
    }
}
