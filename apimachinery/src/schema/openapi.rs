//! The schema validator apiextensions-apiserver runs on custom resources: a port of
//! kube-openapi's `pkg/validation/validate` (`SchemaValidator` and its type, allOf/anyOf/
//! oneOf/not, string, format, number, slice, enum and object validators) with the error
//! texts of `pkg/validation/errors`.
//!
//! Each validator yields an [`Outcome`]: its errors, de-duplicated by message as upstream's
//! `Result.AddErrors` does, and a match count that upstream uses to pick which failing
//! `anyOf`/`oneOf` branch to report. Object fields are visited in sorted key order
//! (upstream walks Go maps, in random order).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::formats;
use super::gofmt::{self, GoNumber};
use super::node::Node;
use super::pattern;

/// What kind of failure an [`Issue`] is (kube-openapi's error codes, which decide the
/// `field.Error` it becomes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Code {
    InvalidType,
    Required,
    TooLong,
    MaxItems,
    TooManyProperties,
    Enum,
    /// Any other `errors.Validation` (pattern, bounds, sizes, ...).
    Other,
    /// A composite (`allOf`/`anyOf`/`oneOf`/`not`) error, which has no field name.
    Composite,
}

/// One kube-openapi validation error.
#[derive(Clone, Debug)]
pub(super) struct Issue {
    pub code: Code,
    /// kube-openapi's `Name`: the path as it built it (`spec.items[0].name`, `.foo` at the root).
    pub name: String,
    /// The error text (`spec.x in body must be of type integer: "string"`).
    pub message: String,
    /// `Value`: the offending datum, a type name, or a size.
    pub value: Option<Value>,
    /// `Valid`: the limit for too-long and too-many errors.
    pub valid: Option<i64>,
    /// The allowed values of an enum error.
    pub values: Vec<Value>,
}

impl Issue {
    fn new(code: Code, name: &str, message: String, value: Option<Value>) -> Self {
        Issue { code, name: name.to_owned(), message, value, valid: None, values: Vec::new() }
    }

    fn with_valid(mut self, valid: i64) -> Self {
        self.valid = Some(valid);
        self
    }

    fn composite(message: String) -> Self {
        Issue::new(Code::Composite, "", message, None)
    }

    /// `errors.InvalidType` with a string value: `<path> in body must be of type <t>: "<v>"`.
    fn invalid_type(path: &str, type_name: &str, value: &str) -> Self {
        let message = format!("{path} in body must be of type {type_name}: {}", gofmt::quote(value));
        Issue::new(Code::InvalidType, path, message, Some(Value::String(value.to_owned())))
    }
}

/// Errors and match count of one validation (kube-openapi's `Result`).
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub issues: Vec<Issue>,
    matches: usize,
}

impl Outcome {
    fn fail(issue: Issue) -> Self {
        Outcome { issues: vec![issue], matches: 0 }
    }

    fn matched() -> Self {
        Outcome { issues: Vec::new(), matches: 1 }
    }

    fn add(&mut self, issue: Issue) {
        if !self.issues.iter().any(|known| known.message == issue.message) {
            self.issues.push(issue);
        }
    }

    fn merge(&mut self, other: Outcome) {
        for issue in other.issues {
            self.add(issue);
        }
        self.matches += other.matches;
    }

    fn is_valid(&self) -> bool {
        self.issues.is_empty()
    }
}

/// The JSON kinds the validators dispatch on.
#[derive(Clone, Copy)]
enum Datum<'v> {
    Null,
    Bool,
    Number(GoNumber),
    String(&'v str),
    Array(&'v [Value]),
    Object(&'v Map<String, Value>),
}

impl<'v> Datum<'v> {
    fn of(v: &'v Value) -> Self {
        match v {
            Value::Null => Datum::Null,
            Value::Bool(_) => Datum::Bool,
            Value::Number(n) => Datum::Number(GoNumber::of(n)),
            Value::String(s) => Datum::String(s),
            Value::Array(a) => Datum::Array(a),
            Value::Object(m) => Datum::Object(m),
        }
    }

    /// The JSON schema type and Go-derived format kube-openapi infers for the datum.
    fn schema_info(self) -> (&'static str, &'static str) {
        match self {
            Datum::Null => ("", ""),
            Datum::Bool => ("boolean", ""),
            Datum::Number(GoNumber::Int(_)) => ("integer", "int64"),
            Datum::Number(GoNumber::Float(_)) => ("number", "float64"),
            Datum::String(_) => ("string", ""),
            Datum::Array(_) => ("array", ""),
            Datum::Object(_) => ("object", ""),
        }
    }
}

/// Validates values against schema nodes; caches compiled `pattern`s.
#[derive(Default)]
pub(super) struct Validator {
    patterns: RefCell<HashMap<String, Result<Regex, String>>>,
}

impl Validator {
    /// kube-openapi's `SchemaValidator.Validate` of `data` at `path`.
    pub(super) fn validate(&self, s: Node<'_>, data: &Value, path: &str) -> Outcome {
        let mut out = Outcome::default();
        let datum = Datum::of(data);
        if let Datum::Null = datum {
            out.merge(check_type(s, datum, path));
            out.merge(check_enum(s, data, path));
            return out;
        }
        if !s.types().is_empty() || !format_of(s).is_empty() {
            run(&mut out, check_type(s, datum, path));
        }
        run(&mut out, self.check_compositions(s, data, path));
        if let Datum::String(text) = datum {
            run(&mut out, self.check_string(s, text, path));
            if formats::is_supported(format_of(s)) {
                run(&mut out, check_format(s, text, path));
            }
        }
        if let Datum::Number(n) = datum {
            run(&mut out, check_number(s, n, path));
        }
        if let Datum::Array(items) = datum {
            run(&mut out, self.check_array(s, items, path));
        }
        run(&mut out, check_enum(s, data, path));
        if let Datum::Object(map) = datum {
            run(&mut out, self.check_object(s, map, path));
        }
        out.matches += 1;
        out
    }

    /// `allOf`, `anyOf`, `oneOf` and `not` (kube-openapi's `schemaPropsValidator`).
    fn check_compositions(&self, s: Node<'_>, data: &Value, path: &str) -> Outcome {
        let mut out = Outcome::default();
        if let Some(any) = self.check_any_of(s, data, path) {
            out.merge(any);
        }
        if let Some(one) = self.check_one_of(s, data, path) {
            out.merge(one);
        }
        self.check_all_of(s, data, path, &mut out);
        if let Some(not) = s.sub("not")
            && self.validate(not, data, path).is_valid()
        {
            out.add(Issue::composite(format!("{} must not validate the schema (not)", gofmt::quote(path))));
        }
        out.matches += 1;
        out
    }

    /// At least one branch must pass; otherwise the failures of the branch with the most
    /// matches are reported.
    fn check_any_of(&self, s: Node<'_>, data: &Value, path: &str) -> Option<Outcome> {
        let mut branches = s.schemas("anyOf").peekable();
        branches.peek()?;
        let mut best: Option<Outcome> = None;
        for branch in branches {
            let result = self.validate(branch, data, path);
            if result.is_valid() {
                return Some(result);
            }
            if best.as_ref().is_none_or(|b| result.matches > b.matches) {
                best = Some(result);
            }
        }
        let mut out = Outcome::default();
        out.add(Issue::composite(format!("{} must validate at least one schema (anyOf)", gofmt::quote(path))));
        out.merge(best.unwrap_or_default());
        Some(out)
    }

    /// Exactly one branch must pass.
    fn check_one_of(&self, s: Node<'_>, data: &Value, path: &str) -> Option<Outcome> {
        let mut branches = s.schemas("oneOf").peekable();
        branches.peek()?;
        let mut best: Option<Outcome> = None;
        let mut first_success: Option<Outcome> = None;
        let mut passed = 0;
        for branch in branches {
            let result = self.validate(branch, data, path);
            if result.is_valid() {
                passed += 1;
                best = None;
                first_success.get_or_insert(result);
            } else if passed == 0 && best.as_ref().is_none_or(|b| result.matches > b.matches) {
                best = Some(result);
            }
        }
        if passed == 1 {
            return first_success;
        }
        let detail =
            if passed == 0 { "Found none valid".to_owned() } else { format!("Found {passed} valid alternatives") };
        let mut out = Outcome::default();
        out.add(Issue::composite(format!(
            "{} must validate one and only one schema (oneOf). {detail}",
            gofmt::quote(path)
        )));
        out.merge(best.unwrap_or_default());
        Some(out)
    }

    /// Every branch must pass; all their failures are reported.
    fn check_all_of(&self, s: Node<'_>, data: &Value, path: &str, out: &mut Outcome) {
        let mut total = 0;
        let mut passed = 0;
        for branch in s.schemas("allOf") {
            total += 1;
            let result = self.validate(branch, data, path);
            if result.is_valid() {
                passed += 1;
            }
            out.merge(result);
        }
        if passed != total {
            let detail = if passed == 0 { ". None validated" } else { "" };
            out.add(Issue::composite(format!("{} must validate all the schemas (allOf){detail}", gofmt::quote(path))));
        }
    }

    /// `maxLength`, `minLength`, `pattern`: the first failure only.
    fn check_string(&self, s: Node<'_>, text: &str, path: &str) -> Outcome {
        let length = text.chars().count() as i64;
        let value = || Some(Value::String(text.to_owned()));
        if let Some(max) = s.i64("maxLength")
            && length > max
        {
            let message = format!("{path} in body should be at most {max} chars long");
            return Outcome::fail(Issue::new(Code::TooLong, path, message, value()).with_valid(max));
        }
        if let Some(min) = s.i64("minLength")
            && length < min
        {
            let message = format!("{path} in body should be at least {min} chars long");
            return Outcome::fail(Issue::new(Code::Other, path, message, value()).with_valid(min));
        }
        if let Some(pattern) = s.str("pattern").filter(|p| !p.is_empty()) {
            let shown = match self.matches_pattern(pattern, text) {
                Ok(true) => return Outcome::default(),
                Ok(false) => pattern.to_owned(),
                Err(e) => format!("{pattern}, but pattern is invalid: {e}"),
            };
            let message = format!("{path} in body should match '{shown}'");
            return Outcome::fail(Issue::new(Code::Other, path, message, value()));
        }
        Outcome::default()
    }

    fn matches_pattern(&self, pattern: &str, text: &str) -> Result<bool, String> {
        let mut cache = self.patterns.borrow_mut();
        let compiled = cache.entry(pattern.to_owned()).or_insert_with(|| pattern::compile(pattern));
        compiled.as_ref().map(|re| re.is_match(text)).map_err(Clone::clone)
    }

    /// `items` (each element), then `minItems`, `maxItems`, `uniqueItems`.
    fn check_array(&self, s: Node<'_>, items: &[Value], path: &str) -> Outcome {
        let mut out = Outcome::default();
        if let Some(item_schema) = s.items() {
            for (i, item) in items.iter().enumerate() {
                out.merge(self.validate(item_schema, item, &format!("{path}[{i}]")));
            }
        }
        let size = items.len() as i64;
        if let Some(min) = s.i64("minItems")
            && size < min
        {
            let message = format!("{path} in body should have at least {min} items");
            out.add(Issue::new(Code::Other, path, message, Some(size.into())).with_valid(min));
        }
        if let Some(max) = s.i64("maxItems")
            && size > max
        {
            let message = format!("{path} in body should have at most {max} items");
            out.add(Issue::new(Code::MaxItems, path, message, Some(size.into())).with_valid(max));
        }
        if s.flag("uniqueItems") && items.iter().enumerate().any(|(i, v)| items[..i].contains(v)) {
            out.add(Issue::new(Code::Other, path, format!("{path} in body shouldn't contain duplicates"), None));
        }
        out.matches += 1;
        out
    }

    /// `minProperties`, `maxProperties`, `additionalProperties`, `properties`, `required`.
    fn check_object(&self, s: Node<'_>, map: &Map<String, Value>, path: &str) -> Outcome {
        let mut out = Outcome::default();
        let size = map.len() as i64;
        if let Some(min) = s.i64("minProperties")
            && size < min
        {
            let message = format!("{path} in body should have at least {min} properties");
            out.add(Issue::new(Code::Other, path, message, Some(size.into())).with_valid(min));
        }
        if let Some(max) = s.i64("maxProperties")
            && size > max
        {
            let message = format!("{path} in body should have at most {max} properties");
            out.add(Issue::new(Code::TooManyProperties, path, message, Some(size.into())).with_valid(max));
        }
        let entries = gofmt::sorted(map);
        let declared = |key: &str| s.property(key).is_some();
        match s.additional_properties() {
            Some(additional) if !additional.allows => {
                for (key, _) in entries.iter().filter(|(k, _)| !declared(k)) {
                    let message = format!("{path}.{key} in body is a forbidden property");
                    out.add(Issue::new(Code::Other, path, message, Some(Value::String((*key).clone()))));
                }
            }
            Some(additional) => {
                if let Some(schema) = additional.schema {
                    for (key, value) in entries.iter().filter(|(k, _)| !declared(k)) {
                        out.merge(self.validate(schema, value, &format!("{path}.{key}")));
                    }
                }
            }
            None => {}
        }
        for (key, value) in &entries {
            if let Some(prop) = s.property(key) {
                let child = if path.is_empty() { (*key).clone() } else { format!("{path}.{key}") };
                out.merge(self.validate(prop, value, &child));
            }
        }
        for required in s.array("required").into_iter().flatten().filter_map(Value::as_str) {
            if !map.contains_key(required) {
                let name = format!("{path}.{required}");
                out.add(Issue::new(Code::Required, &name, format!("{name} in body is required"), None));
            }
        }
        out
    }
}

/// Merges one applicable validator's outcome, counting the validator as a match.
fn run(out: &mut Outcome, outcome: Outcome) {
    out.merge(outcome);
    out.matches += 1;
}

/// The schema's `format` as upstream keeps it: unsupported formats (e.g. `int32`) are
/// stripped before validation.
fn format_of(s: Node<'_>) -> &str {
    s.str("format").filter(|f| formats::is_supported(f)).unwrap_or("")
}

/// kube-openapi's `typeValidator`, including its leniencies: an integral float passes as
/// `integer`, an integer as `number`, and a string or array passes any non-numeric type
/// when a (supported) format is set.
fn check_type(s: Node<'_>, datum: Datum<'_>, path: &str) -> Outcome {
    let types = s.types();
    let format = format_of(s);
    if let Datum::Null = datum {
        if !types.is_empty() && !types.contains(&"null") && !s.nullable() {
            return Outcome::fail(Issue::invalid_type(path, &types.join(","), "null"));
        }
        return Outcome::matched();
    }
    let (schema_type, data_format) = datum.schema_info();
    let float_int =
        matches!(datum, Datum::Number(GoNumber::Float(f)) if is_json_integer(f)) && types.contains(&"integer");
    let int_float = schema_type == "integer" && types.contains(&"number");
    let string_or_array = matches!(datum, Datum::String(_) | Datum::Array(_));
    let type_ok = types.contains(&schema_type) || float_int || int_float;
    let format_fits = format.is_empty() || type_ok || data_format == format;
    if !string_or_array && !format_fits {
        return Outcome::fail(Issue::invalid_type(path, format, data_format));
    }
    let numeric = types.contains(&"number") || types.contains(&"integer");
    if !numeric && !format.is_empty() && string_or_array {
        return Outcome::matched();
    }
    if !type_ok {
        return Outcome::fail(Issue::invalid_type(path, &types.join(","), schema_type));
    }
    Outcome::matched()
}

/// A supported `format` the string does not satisfy.
fn check_format(s: Node<'_>, text: &str, path: &str) -> Outcome {
    let format = format_of(s);
    if formats::validates(format, text) {
        Outcome::default()
    } else {
        Outcome::fail(Issue::invalid_type(path, format, text))
    }
}

/// go-openapi's `swag.IsFloat64AJSONInteger`: integral within ±(2^53-1), or (for positive
/// values) within a relative 1e-9 above an integer.
fn is_json_integer(f: f64) -> bool {
    const LIMIT: f64 = 9_007_199_254_740_991.0;
    if !f.is_finite() || !(-LIMIT..=LIMIT).contains(&f) {
        return false;
    }
    if f.fract() == 0.0 {
        return true;
    }
    // Go's uint64 conversion of a negative float lands far away, failing the check.
    let g = f.trunc();
    f > 0.0 && g != 0.0 && (f - g) / (f + g) < 1e-9
}

/// `multipleOf`, `minimum`, `maximum` (reported in that order). Integers are compared with
/// the bound truncated to an integer, as kube-openapi's native-type checks do.
fn check_number(s: Node<'_>, n: GoNumber, path: &str) -> Outcome {
    let mut out = Outcome::default();
    let value = || Some(number_value(n));
    if let Some(factor) = s.f64("multipleOf") {
        match multiple_of(n, factor) {
            Multiple::Yes => {}
            Multiple::No(shown) => {
                let message = format!("{path} in body should be a multiple of {shown}");
                out.add(Issue::new(Code::Other, path, message, value()));
            }
            Multiple::NonPositive(shown, factor) => {
                let message = format!("factor MultipleOf declared for {path} must be positive: {shown}");
                out.add(Issue::new(Code::Other, path, message, Some(factor)));
            }
        }
    }
    let bounds =
        [("minimum", "exclusiveMinimum", false, "greater than"), ("maximum", "exclusiveMaximum", true, "less than")];
    for (key, exclusive_key, upper, relation) in bounds {
        let exclusive = s.flag(exclusive_key);
        if let Some(bound) = s.f64(key)
            && let Some(shown) = out_of_bounds(n, bound, exclusive, upper)
        {
            let or_equal = if exclusive { "" } else { " or equal to" };
            let message = format!("{path} in body should be {relation}{or_equal} {shown}");
            out.add(Issue::new(Code::Other, path, message, value()));
        }
    }
    out.matches += 1;
    out
}

/// `Some(bound as printed)` when `n` lies beyond the (upper or lower, exclusive or
/// inclusive) bound. An integer is compared with the bound truncated to an integer.
fn out_of_bounds(n: GoNumber, bound: f64, exclusive: bool, upper: bool) -> Option<String> {
    let fails = |ord: Ordering| match (upper, exclusive) {
        (true, false) => ord == Ordering::Greater,
        (true, true) => ord != Ordering::Less,
        (false, false) => ord == Ordering::Less,
        (false, true) => ord != Ordering::Greater,
    };
    match n {
        GoNumber::Int(i) => {
            let bound = bound as i64;
            fails(i.cmp(&bound)).then(|| bound.to_string())
        }
        GoNumber::Float(f) => f.partial_cmp(&bound).is_some_and(fails).then(|| gofmt::float(bound)),
    }
}

/// The outcome of a `multipleOf` check, with the factor as printed.
enum Multiple {
    Yes,
    No(String),
    /// A factor that is not positive (for an integer: after truncation), and its value.
    NonPositive(String, Value),
}

/// kube-openapi's `MultipleOfNativeType`: integer division for an integer (by the
/// truncated factor), a near-integer quotient for a float.
fn multiple_of(n: GoNumber, factor: f64) -> Multiple {
    match n {
        GoNumber::Int(i) => {
            let factor = factor as i64;
            if factor <= 0 {
                Multiple::NonPositive(factor.to_string(), Value::from(factor))
            } else if i % factor == 0 {
                Multiple::Yes
            } else {
                Multiple::No(factor.to_string())
            }
        }
        GoNumber::Float(f) => {
            if factor <= 0.0 {
                return Multiple::NonPositive(gofmt::float(factor), number_value(GoNumber::Float(factor)));
            }
            let quotient = if factor < 1.0 { 1.0 / factor * f } else { f / factor };
            if is_json_integer(quotient) { Multiple::Yes } else { Multiple::No(gofmt::float(factor)) }
        }
    }
}

fn number_value(n: GoNumber) -> Value {
    match n {
        GoNumber::Int(i) => Value::from(i),
        GoNumber::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
    }
}

/// `enum`, compared as kube-openapi does: the datum converted to each allowed value's Go
/// type (so `1.5` matches an integer `1`, and an integer matches the string of its code
/// point); `null` never matches.
fn check_enum(s: Node<'_>, data: &Value, path: &str) -> Outcome {
    let Some(allowed) = s.array("enum").filter(|values| !values.is_empty()) else {
        return Outcome::default();
    };
    if allowed.iter().any(|candidate| enum_matches(data, candidate)) {
        return Outcome::default();
    }
    let shown = gofmt::plain(&Value::Array(allowed.clone()));
    let mut issue =
        Issue::new(Code::Enum, path, format!("{path} in body should be one of {shown}"), Some(data.clone()));
    issue.values = allowed.clone();
    Outcome::fail(issue)
}

fn enum_matches(data: &Value, candidate: &Value) -> bool {
    match (data, candidate) {
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(d), Value::Number(c)) => match (GoNumber::of(d), GoNumber::of(c)) {
            (GoNumber::Int(d), GoNumber::Int(c)) => d == c,
            (GoNumber::Float(d), GoNumber::Int(c)) => d as i64 == c,
            (d, GoNumber::Float(c)) => d.as_f64() == c,
        },
        (Value::Number(d), Value::String(c)) => match GoNumber::of(d) {
            GoNumber::Int(i) => {
                let rune = u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{fffd}');
                c.chars().eq(std::iter::once(rune))
            }
            GoNumber::Float(_) => false,
        },
        (d, c) => d == c,
    }
}
