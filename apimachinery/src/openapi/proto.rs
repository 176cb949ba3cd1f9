//! Encodes a swagger 2.0 JSON document as gnostic's `openapi.v2.Document` protobuf, the
//! only form client-go's `OpenAPISchema()` accepts from `/openapi/v2` (kubectl asks for
//! `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and validates every
//! `create`/`apply` against it). Field numbers follow gnostic's `OpenAPIv2.proto`.
//! Extension and `default`/`enum` values travel as gnostic `Any{yaml}`; JSON text is
//! valid YAML, so values are written as JSON.

use serde_json::Value;

/// A protobuf message under construction (proto3: empty fields are omitted).
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn opt_string(&mut self, field: u32, v: Option<&Value>) {
        if let Some(s) = v.and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            self.bytes(field, s.as_bytes());
        }
    }
}

/// `Any { yaml = 2 }`.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &v.to_string());
    m
}

/// `NamedAny` entries for every `x-` key of `obj`.
fn vendor_extensions(m: &mut Msg, field: u32, obj: &serde_json::Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Msg::default();
        named.string(1, k);
        named.message(2, any(v));
        m.message(field, named);
    }
}

fn schema(v: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = v.as_object() else { return m };
    m.opt_string(1, o.get("$ref"));
    m.opt_string(2, o.get("format"));
    m.opt_string(3, o.get("title"));
    m.opt_string(4, o.get("description"));
    if let Some(d) = o.get("default") {
        m.message(5, any(d));
    }
    m.strings(19, o.get("required"));
    for e in o.get("enum").and_then(Value::as_array).into_iter().flatten() {
        m.message(20, any(e));
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            m.message(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            m.message(21, item);
        }
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => {
            let mut item = Msg::default();
            item.string(1, t);
            m.message(22, item);
        }
        Some(types @ Value::Array(_)) => {
            let mut item = Msg::default();
            item.strings(1, Some(types));
            m.message(22, item);
        }
        _ => {}
    }
    if let Some(items) = o.get("items") {
        let mut item = Msg::default();
        match items {
            Value::Array(list) => list.iter().for_each(|s| item.message(1, schema(s))),
            s => item.message(1, schema(s)),
        }
        m.message(23, item);
    }
    for s in o.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        m.message(24, schema(s));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (name, s) in props {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema(s));
            p.message(1, named);
        }
        m.message(25, p);
    }
    m.boolean(27, o.get("readOnly").and_then(Value::as_bool).unwrap_or(false));
    vendor_extensions(&mut m, 31, o);
    m
}

fn parameter(v: &Value) -> Msg {
    let mut item = Msg::default();
    let Some(o) = v.as_object() else { return item };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        let mut reference = Msg::default();
        reference.string(1, r);
        item.message(2, reference);
        return item;
    }
    let required = o.get("required").and_then(Value::as_bool).unwrap_or(false);
    let mut param = Msg::default();
    match o.get("in").and_then(Value::as_str) {
        Some("body") => {
            let mut body = Msg::default();
            body.opt_string(1, o.get("description"));
            body.opt_string(2, o.get("name"));
            body.string(3, "body");
            body.boolean(4, required);
            if let Some(s) = o.get("schema") {
                body.message(5, schema(s));
            }
            param.message(1, body);
        }
        Some(location @ ("query" | "path")) => {
            // Query and path sub-schemas share fields 1-4; `type` is 6 for query, 5 for path.
            let mut sub = Msg::default();
            sub.boolean(1, required);
            sub.string(2, location);
            sub.opt_string(3, o.get("description"));
            sub.opt_string(4, o.get("name"));
            let unique = o.get("uniqueItems").and_then(Value::as_bool).unwrap_or(false);
            let mut non_body = Msg::default();
            if location == "query" {
                sub.opt_string(6, o.get("type"));
                sub.boolean(20, unique);
                non_body.message(3, sub);
            } else {
                sub.opt_string(5, o.get("type"));
                sub.boolean(19, unique);
                non_body.message(4, sub);
            }
            param.message(2, non_body);
        }
        _ => return item,
    }
    item.message(1, param);
    item
}

fn operation(v: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = v.as_object() else { return m };
    m.strings(1, o.get("tags"));
    m.opt_string(3, o.get("description"));
    m.opt_string(5, o.get("operationId"));
    m.strings(6, o.get("produces"));
    m.strings(7, o.get("consumes"));
    for p in o.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        m.message(8, parameter(p));
    }
    if let Some(responses) = o.get("responses").and_then(Value::as_object) {
        let mut rs = Msg::default();
        for (code, r) in responses {
            let mut response = Msg::default();
            response.opt_string(1, r.get("description"));
            if let Some(s) = r.get("schema") {
                let mut item = Msg::default();
                item.message(1, schema(s));
                response.message(2, item);
            }
            let mut value = Msg::default();
            value.message(1, response);
            let mut named = Msg::default();
            named.string(1, code);
            named.message(2, value);
            rs.message(1, named);
        }
        m.message(9, rs);
    }
    m.strings(10, o.get("schemes"));
    vendor_extensions(&mut m, 13, o);
    m
}

fn path_item(v: &Value) -> Msg {
    let mut m = Msg::default();
    for (field, verb) in [(2, "get"), (3, "put"), (4, "post"), (5, "delete"), (8, "patch")] {
        if let Some(op) = v.get(verb) {
            m.message(field, operation(op));
        }
    }
    for p in v.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        m.message(9, parameter(p));
    }
    m
}

/// The protobuf encoding of swagger document `doc`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    m.opt_string(1, doc.get("swagger"));
    if let Some(info) = doc.get("info") {
        let mut i = Msg::default();
        i.opt_string(1, info.get("title"));
        i.opt_string(2, info.get("version"));
        m.message(2, i);
    }
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (path, item) in paths {
            let mut named = Msg::default();
            named.string(1, path);
            named.message(2, path_item(item));
            p.message(2, named);
        }
        m.message(8, p);
    }
    if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
        let mut d = Msg::default();
        for (name, s) in defs {
            let mut named = Msg::default();
            named.string(1, name);
            named.message(2, schema(s));
            d.message(1, named);
        }
        m.message(9, d);
    }
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn varints_and_strings_encode_like_protobuf() {
        let mut m = Msg::default();
        m.string(1, "2.0");
        assert_eq!(m.0, [0x0a, 3, b'2', b'.', b'0']);
        let mut m = Msg::default();
        m.varint(300);
        assert_eq!(m.0, [0xac, 0x02]);
    }

    #[test]
    fn schema_encodes_type_properties_and_extensions() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string"}}, "x-k": "v"});
        let bytes = schema(&s).0;
        // type (22, wire 2) = TypeItem{value: "object"}
        assert_eq!(&bytes[..3], &[0xb2, 0x01, 8]);
        assert_eq!(&bytes[3..5], &[0x0a, 6]);
        assert_eq!(&bytes[5..11], b"object");
        // the extension's yaml is the JSON text of its value
        let tail = String::from_utf8_lossy(&bytes);
        assert!(tail.contains("x-k") && tail.contains("\"v\""));
    }
}
