//! `x-kubernetes-validations`: the CEL rules of a schema, evaluated at each node that
//! declares them with `self` bound to the value there (and `oldSelf` to the value it
//! replaces, for transition rules), as apiextensions-apiserver's CEL validator does.
//!
//! The evaluator is the `cel` crate: CEL's standard functions and macros (`size`, `has`,
//! `matches`, `startsWith`, `all`, `exists`, `exists_one`, `map`, `filter`, ...), the
//! strings extension Kubernetes also includes (`lowerAscii`, `split`, `replace`,
//! `substring`, `trim`, `indexOf`, `join`, `format`, ...), and Kubernetes' own libraries
//! (lists, regex, URLs, IPs and CIDRs, quantities, semver, sets: see
//! [`super::cel_library`]).
//! The rest of Kubernetes' environment (the authorizer and format libraries,
//! the newest quantity and comprehension functions) is not available: a rule that calls
//! it is not enforced, and [`unenforceable_rules`] lists such rules, and those that
//! cannot be compiled at all, so that definitions can say so. Transition rules are checked where the old value is found
//! at the same object path (not inside lists).

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, ExecutionError, Program};
use serde_json::Value;

use super::FieldError;
use super::node::Node;
use super::path;

/// The environment rules compile and run in: the standard library, the strings
/// extension and Kubernetes' libraries.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings).expect("the strings extension declares once");
    env.add_extension(super::cel_library::register).expect("Kubernetes' libraries declare once");
    Arc::new(env)
});

fn compile(rule: &str) -> Result<Program, String> {
    ENV.compile(rule).map_err(|e| e.to_string())
}

/// Validates `obj` (replacing `old`, on update) against every rule in `schema`.
pub fn validate_rules(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(Node::new(schema), obj, old, "", &mut errors);
    errors
}

/// The rules of `schema` this evaluator cannot compile, with why.
pub fn unenforceable_rules(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_uncompilable(Node::new(schema), &mut out);
    out
}

fn rules<'a>(node: Node<'a>) -> impl Iterator<Item = &'a Value> {
    node.array("x-kubernetes-validations").into_iter().flatten()
}

/// What of Kubernetes' CEL environment this evaluator does not provide, by the namespace
/// a rule names it through (`authorizer.group(...)`, `format.dns1123Label()`): the
/// authorizer and the format library.
const KUBERNETES_NAMESPACES: &[&str] = &["authorizer", "format"];

/// Functions of Kubernetes' CEL environment which this evaluator does not provide: the
/// newer quantity arithmetic, lists' `includes` and the two-variable comprehensions'
/// transforms.
const KUBERNETES_FUNCTIONS: &[&str] =
    &["mul", "div", "divInt", "includes", "transformList", "transformMap", "transformMapEntry"];

fn collect_uncompilable(node: Node<'_>, out: &mut Vec<String>) {
    for rule in rules(node) {
        let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
        match compile(text) {
            Err(reason) => out.push(format!("{text}: {}", reason.lines().next().unwrap_or_default())),
            Ok(program) => {
                let references = program.references();
                let namespaces = references.variables().into_iter().filter(|v| KUBERNETES_NAMESPACES.contains(v));
                let functions = references.functions().into_iter().filter(|f| KUBERNETES_FUNCTIONS.contains(f));
                let mut missing: Vec<&str> = namespaces.chain(functions).collect();
                missing.sort_unstable();
                if !missing.is_empty() {
                    out.push(format!("{text}: calls {}, which this server does not provide", missing.join(", ")));
                }
            }
        }
    }
    if let Some(properties) = node.properties() {
        for schema in properties.values() {
            collect_uncompilable(Node::new(schema), out);
        }
    }
    for child in [node.additional_properties().and_then(|a| a.schema), node.items()].into_iter().flatten() {
        collect_uncompilable(child, out);
    }
}

fn walk(node: Node<'_>, value: &Value, old: Option<&Value>, at: &str, errors: &mut Vec<FieldError>) {
    for rule in rules(node) {
        if let Some(error) = check(rule, node, value, old, at) {
            errors.push(error);
        }
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let old_child = old.and_then(|o| o.get(key));
                if let Some(schema) = node.property(key) {
                    walk(schema, child, old_child, &path::child(at, key), errors);
                } else if let Some(schema) = node.additional_properties().and_then(|a| a.schema) {
                    walk(schema, child, old_child, &path::key(at, key), errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(schema) = node.items() {
                for (i, item) in items.iter().enumerate() {
                    walk(schema, item, None, &path::index(at, i), errors);
                }
            }
        }
        _ => {}
    }
}

/// What evaluating one expression gave: a value, an error to report, or nothing to
/// enforce (the rule calls a function this evaluator lacks, or does not compile).
enum Outcome {
    Value(cel::Value),
    Failed(String),
    Unenforceable,
}

fn evaluate(expression: &str, value: &Value, old: Option<&Value>) -> Outcome {
    let Ok(program) = compile(expression) else {
        return Outcome::Unenforceable;
    };
    let mut context = Context::with_env(ENV.clone());
    if context.add_variable("self", value).is_err() {
        return Outcome::Unenforceable;
    }
    if let Some(old) = old
        && context.add_variable("oldSelf", old).is_err()
    {
        return Outcome::Unenforceable;
    }
    match program.execute(&context) {
        Ok(result) => Outcome::Value(result),
        // A function (or an overload of one) this evaluator lacks.
        Err(ExecutionError::UndeclaredReference(name)) if name.as_str() != "oldSelf" => Outcome::Unenforceable,
        Err(ExecutionError::NoSuchOverload(_) | ExecutionError::NotSupportedAsMethod { .. }) => Outcome::Unenforceable,
        Err(ExecutionError::NoSuchKey(key)) => Outcome::Failed(format!("no such key: {key}")),
        // A function's own error (a malformed address, quantity, pattern...): its message,
        // as upstream reports it.
        Err(ExecutionError::FunctionError { message, .. }) => Outcome::Failed(message),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// One rule at one value: `None` when it holds (or cannot be enforced).
fn check(rule: &Value, node: Node<'_>, value: &Value, old: Option<&Value>, at: &str) -> Option<FieldError> {
    let text = rule.get("rule").and_then(Value::as_str)?;
    let transition = text.contains("oldSelf");
    if transition && old.is_none() {
        return None;
    }
    let detail = match evaluate(text, value, old) {
        Outcome::Value(cel::Value::Bool(true)) | Outcome::Unenforceable => return None,
        Outcome::Value(cel::Value::Bool(false)) => message(rule, text, value, old),
        Outcome::Value(_) => format!("rule did not evaluate to a bool evaluating rule: {text}"),
        Outcome::Failed(e) => format!("{e} evaluating rule: {text}"),
    };
    let field = match rule.get("fieldPath").and_then(Value::as_str).filter(|p| !p.is_empty()) {
        Some(relative) if at.is_empty() => relative.trim_start_matches('.').to_owned(),
        Some(relative) => format!("{at}{relative}"),
        None if at.is_empty() => "<nil>".to_owned(),
        None => at.to_owned(),
    };
    let kind = node.str("type").unwrap_or(match value {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "",
    });
    let detail_value = Value::String(detail.clone());
    Some(match rule.get("reason").and_then(Value::as_str) {
        Some("FieldValueRequired") => FieldError::required(&field, &detail),
        Some("FieldValueForbidden") => FieldError::forbidden(&field, &detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(&field, &detail_value),
        _ => FieldError::invalid(&field, &Value::String(kind.to_owned()), &detail),
    })
}

/// A failed rule's message: its `messageExpression` when that gives a non-empty string,
/// else its `message`, else `failed rule: <rule>`.
fn message(rule: &Value, text: &str, value: &Value, old: Option<&Value>) -> String {
    if let Some(expression) = rule.get("messageExpression").and_then(Value::as_str)
        && let Outcome::Value(cel::Value::String(s)) = evaluate(expression, value, old)
        && !s.trim().is_empty()
    {
        return s.to_string();
    }
    match rule.get("message").and_then(Value::as_str).filter(|m| !m.is_empty()) {
        Some(message) => message.to_owned(),
        None => format!("failed rule: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {"rule": "self.minReplicas <= self.replicas", "message": "replicas must not be below minReplicas"},
                        {"rule": "!has(self.image) || self.image.startsWith('registry.example.com/')",
                         "messageExpression": "'image ' + self.image + ' is not from the registry'", "fieldPath": ".image"},
                        {"rule": "self.replicas >= oldSelf.replicas", "message": "replicas may only grow", "reason": "FieldValueForbidden"},
                    ],
                    "properties": {
                        "replicas": {"type": "integer"},
                        "minReplicas": {"type": "integer"},
                        "image": {"type": "string"},
                        "ports": {"type": "array", "items": {
                            "type": "object",
                            "x-kubernetes-validations": [{"rule": "self.port > 0 && self.port < 65536"}],
                            "properties": {"port": {"type": "integer"}},
                        }},
                        "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.lowerAscii() == self", "message": "lower case only"}]},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [{"rule": "self.isSorted()"}]},
                    },
                },
            },
        })
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn rules_hold_or_report_at_their_node() {
        let good = json!({"spec": {"replicas": 3, "minReplicas": 1, "image": "registry.example.com/app", "ports": [{"port": 80}]}});
        assert!(validate_rules(&schema(), &good, None).is_empty());
        let bad = json!({"spec": {"replicas": 1, "minReplicas": 2, "image": "docker.io/app", "ports": [{"port": 80}, {"port": 0}]}});
        assert_eq!(
            messages(&validate_rules(&schema(), &bad, None)),
            [
                "spec: Invalid value: \"object\": replicas must not be below minReplicas",
                "spec.image: Invalid value: \"object\": image docker.io/app is not from the registry",
                "spec.ports[1]: Invalid value: \"object\": failed rule: self.port > 0 && self.port < 65536",
            ]
        );
    }

    #[test]
    fn transition_rules_need_the_old_value_and_missing_fields_are_errors() {
        let old = json!({"spec": {"replicas": 3, "minReplicas": 1}});
        let shrunk = json!({"spec": {"replicas": 2, "minReplicas": 1}});
        assert_eq!(
            messages(&validate_rules(&schema(), &shrunk, Some(&old))),
            ["spec: Forbidden: replicas may only grow"]
        );
        assert!(validate_rules(&schema(), &shrunk, None).is_empty(), "no transition rule on create");
        let missing = json!({"spec": {"replicas": 2}});
        assert_eq!(
            messages(&validate_rules(&schema(), &missing, None)),
            [
                "spec: Invalid value: \"object\": no such key: minReplicas evaluating rule: self.minReplicas <= self.replicas"
            ]
        );
    }

    #[test]
    fn the_strings_extension_and_kubernetes_libraries_are_enforced_and_bad_rules_are_listed() {
        let named = json!({"spec": {"replicas": 1, "minReplicas": 1, "name": "MiXeD"}});
        assert_eq!(
            messages(&validate_rules(&schema(), &named, None)),
            ["spec.name: Invalid value: \"string\": lower case only"]
        );
        let unsorted = json!({"spec": {"replicas": 1, "minReplicas": 1, "tags": ["b", "a"]}});
        assert_eq!(
            messages(&validate_rules(&schema(), &unsorted, None)),
            ["spec.tags: Invalid value: \"array\": failed rule: self.isSorted()"]
        );
        assert!(unenforceable_rules(&schema()).is_empty());
        let authorized = json!({"type": "object", "x-kubernetes-validations": [{"rule": "authorizer.path('/x').check('get').allowed()"}]});
        assert_eq!(
            unenforceable_rules(&authorized),
            ["authorizer.path('/x').check('get').allowed(): calls authorizer, which this server does not provide"]
        );
        assert!(validate_rules(&authorized, &json!({}), None).is_empty(), "not enforced");
        let broken = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a >"}]});
        let listed = unenforceable_rules(&broken);
        assert_eq!(listed.len(), 1);
        assert!(listed[0].starts_with("self.a >: "), "{listed:?}");
    }
}
