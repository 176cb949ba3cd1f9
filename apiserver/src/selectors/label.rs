//! Label selectors: the string form of list/watch requests (`a=b,c in (d,e),!f`) and
//! the object form of workload specs (`matchLabels`/`matchExpressions`).

use std::fmt;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// A conjunction of requirements; empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

impl Requirement {
    fn matches(&self, labels: Option<&Value>) -> bool {
        let value = labels.and_then(|l| l.get(&self.key)).and_then(Value::as_str);
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.iter().any(|w| w == v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| self.values.iter().all(|w| w != v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
        }
    }
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Parses the string form.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(input)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Selector { requirements })
    }

    /// Builds a selector from a `metav1.LabelSelector` object; `Err` names the problem.
    pub fn from_object(selector: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                let value = value.as_str().ok_or_else(|| format!("matchLabels[{key}] must be a string"))?;
                requirements.push(Requirement { key: key.clone(), op: Op::Equals, values: vec![value.into()] });
            }
        }
        if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
            for expr in exprs {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
                let values: Vec<String> = expr
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                let op = match expr.get("operator").and_then(Value::as_str).unwrap_or_default() {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    other => return Err(format!("\"{other}\" is not a valid label selector operator")),
                };
                requirements.push(Requirement { key, op, values });
            }
        }
        Ok(Selector { requirements })
    }
}

impl fmt::Display for Selector {
    /// The canonical string form (as `Scale.status.selector` carries it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.op {
                Op::Equals => format!("{}={}", r.key, r.values.join(",")),
                Op::NotEquals => format!("{}!={}", r.key, r.values.join(",")),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(input: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced ')' in \"{input}\""));
                }
            }
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unclosed '(' in \"{input}\""));
    }
    parts.push(&input[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement { key: key.into(), op: Op::DoesNotExist, values: vec![] });
    }
    for (token, op) in [("!=", Op::NotEquals), ("==", Op::Equals), ("=", Op::Equals)] {
        if let Some((key, value)) = part.split_once(token) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key)?;
            check_value(value)?;
            return Ok(Requirement { key: key.into(), op, values: vec![value.into()] });
        }
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim();
    let rest = words.next().unwrap_or_default().trim();
    check_key(key)?;
    if rest.is_empty() {
        return Ok(Requirement { key: key.into(), op: Op::Exists, values: vec![] });
    }
    let (op, list) = if let Some(list) = rest.strip_prefix("notin") {
        (Op::NotIn, list)
    } else if let Some(list) = rest.strip_prefix("in") {
        (Op::In, list)
    } else {
        return Err(format!("found '{rest}', expected: in, notin, =, ==, !="));
    };
    let list = list.trim();
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("found '{list}', expected: '('"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return Err(format!("for '{}' operator, values set can't be empty", if op == Op::In { "in" } else { "notin" }));
    }
    for v in &values {
        check_value(v)?;
    }
    Ok(Requirement { key: key.into(), op, values })
}

fn check_key(key: &str) -> Result<(), String> {
    crate::validation::names::qualified_name(key).map_err(|e| format!("key: Invalid value: \"{key}\": {e}"))
}

fn check_value(value: &str) -> Result<(), String> {
    crate::validation::names::label_value(value).map_err(|e| format!("values[0]: Invalid value: \"{value}\": {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn equality_and_set_based_requirements() {
        let labels = json!({"app": "web", "tier": "front"});
        assert!(sel("app=web").matches(Some(&labels)));
        assert!(sel("app==web,tier!=back").matches(Some(&labels)));
        assert!(!sel("app!=web").matches(Some(&labels)));
        assert!(sel("tier in (front, back)").matches(Some(&labels)));
        assert!(!sel("tier notin (front)").matches(Some(&labels)));
        assert!(sel("app,!missing").matches(Some(&labels)));
        assert!(!sel("missing").matches(Some(&labels)));
        assert!(sel("missing notin (x)").matches(None));
        assert!(sel("").matches(None));
    }

    #[test]
    fn bad_selectors_are_errors() {
        assert!(Selector::parse("a in (b").is_err());
        assert!(Selector::parse("a foo b").is_err());
        assert!(Selector::parse("a in ()").is_err());
        assert!(Selector::parse("-bad-=x").is_err());
    }

    #[test]
    fn object_form_and_display() {
        let s = Selector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }))
        .unwrap();
        assert_eq!(s.to_string(), "app=web,tier in (a,b)");
        assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
    }
}
