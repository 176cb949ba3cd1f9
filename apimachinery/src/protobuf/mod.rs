//! Decoding `application/vnd.kubernetes.protobuf` request bodies into JSON objects.
//!
//! kubectl 1.32 sends protobuf for the objects its generator commands build
//! (`create configmap|secret|namespace|deployment|service|job|serviceaccount`) and does
//! not fall back to JSON on 415, so the API server must read them. A body is the magic
//! `k8s\0` followed by a `runtime.Unknown` envelope (`typeMeta{apiVersion, kind}`, `raw`);
//! `raw` is decoded with the field numbers of the `fields` table and the property types
//! of the OpenAPI schemas, giving the JSON the client would have sent: Go zero values of
//! optional fields (which gogo-protobuf writes out) are dropped, `metav1.Time` becomes an
//! RFC 3339 string (an unset one `null`), `Quantity`/`IntOrString` their JSON forms,
//! `bytes` fields base64.
//!
//! Entry point: [`decode`]. Responses can stay JSON: kubectl's `Accept` lists it too.

mod fields;

use base64::Engine;
use serde_json::{Map, Value};

use crate::openapi::{self, definitions::ref_target};

/// The content type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Why a body could not be decoded (the server answers 400 BadRequest).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    #[error("the protobuf body does not start with the Kubernetes magic number")]
    NoMagic,
    #[error("truncated or malformed protobuf data")]
    Malformed,
    #[error("the protobuf envelope has no kind")]
    NoKind,
    #[error("no protobuf decoding is known for {api_version}, Kind={kind}")]
    UnknownKind { api_version: String, kind: String },
}

/// Decodes a protobuf request body into the JSON object it encodes (with `apiVersion`
/// and `kind` from the envelope).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for field in Reader(envelope) {
        let (number, value) = field?;
        match (number, value) {
            (1, Wire::Bytes(type_meta)) => {
                for f in Reader(type_meta) {
                    match f? {
                        (1, Wire::Bytes(b)) => api_version = String::from_utf8_lossy(b).into_owned(),
                        (2, Wire::Bytes(b)) => kind = String::from_utf8_lossy(b).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    if kind.is_empty() {
        return Err(ProtobufError::NoKind);
    }
    let defs = openapi::all_definitions();
    let root = openapi::navigate::Node::for_kind(defs, &api_version, &kind)
        .and_then(|n| n.name)
        .ok_or_else(|| ProtobufError::UnknownKind { api_version: api_version.clone(), kind: kind.clone() })?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), api_version.into());
    obj.insert("kind".into(), kind.into());
    decode_message(raw, root, root, &mut obj)?;
    Ok(Value::Object(obj))
}

/// A decoded field value by wire type.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates `(field number, value)` pairs of a message.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or(ProtobufError::Malformed)?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ProtobufError::Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ProtobufError> {
        if self.0.len() < n {
            return Err(ProtobufError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u32, Wire<'a>), ProtobufError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let mut step = || -> Result<(u32, Wire<'a>), ProtobufError> {
            let key = self.varint()?;
            let number = u32::try_from(key >> 3).map_err(|_| ProtobufError::Malformed)?;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    let b = self.take(8)?;
                    Wire::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| ProtobufError::Malformed)?))
                }
                2 => {
                    let len = usize::try_from(self.varint()?).map_err(|_| ProtobufError::Malformed)?;
                    let data: &'a [u8] = {
                        if self.0.len() < len {
                            return Err(ProtobufError::Malformed);
                        }
                        let (head, rest) = self.0.split_at(len);
                        self.0 = rest;
                        head
                    };
                    Wire::Bytes(data)
                }
                5 => {
                    let b = self.take(4)?;
                    Wire::Fixed32(u32::from_le_bytes(b.try_into().map_err(|_| ProtobufError::Malformed)?))
                }
                _ => return Err(ProtobufError::Malformed),
            };
            Ok((number, wire))
        };
        let item = step();
        if item.is_err() {
            self.0 = &[];
        }
        Some(item)
    }
}

fn table(key: &str) -> &'static [(u32, &'static str)] {
    fields::FIELDS
        .binary_search_by(|(name, _)| (*name).cmp(key))
        .map(|i| fields::FIELDS[i].1)
        .unwrap_or(&[])
}

/// Decodes message `bytes` using field table `key`; property types come from the schema
/// of definition `schema_def` (the same, except for inlined embedded messages).
fn decode_message(bytes: &[u8], key: &str, schema_def: &str, out: &mut Map<String, Value>) -> Result<(), ProtobufError> {
    let defs = openapi::all_definitions();
    let schema = defs.get(schema_def);
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fields = table(key);
    for field in Reader(bytes) {
        let (number, wire) = field?;
        let Some((_, name)) = fields.iter().find(|(n, _)| *n == number) else { continue };
        if let Some(inner) = name.strip_prefix("$inline:") {
            if let Wire::Bytes(b) = wire {
                decode_message(b, inner, schema_def, out)?;
            }
            continue;
        }
        let Some(prop) = schema.and_then(|s| s.pointer(&format!("/properties/{name}"))) else { continue };
        if prop.get("type").and_then(Value::as_str) == Some("array") {
            let items = prop.get("items").cloned().unwrap_or(Value::Null);
            let list = out.entry((*name).to_owned()).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                push_repeated(&items, wire, list)?;
            }
            continue;
        }
        if let Some(additional) = prop.get("additionalProperties").filter(|a| a.is_object()) {
            if let Wire::Bytes(entry) = wire {
                let (k, v) = map_entry(entry, additional)?;
                let map = out.entry((*name).to_owned()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(k, v);
                }
            }
            continue;
        }
        let value = scalar_or_message(prop, wire)?;
        let keep = required.contains(name) || !is_zero(&value) || *name == "replicas";
        if keep {
            out.insert((*name).to_owned(), value);
        }
    }
    Ok(())
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn map_entry(entry: &[u8], value_schema: &Value) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value = default_for(value_schema);
    for f in Reader(entry) {
        match f? {
            (1, Wire::Bytes(b)) => key = String::from_utf8_lossy(b).into_owned(),
            (2, w) => value = scalar_or_message(value_schema, w)?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// What an absent map value means: the zero value of its type.
fn default_for(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => Value::String(String::new()),
        Some("integer" | "number") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        _ => Value::Null,
    }
}

fn push_repeated(items: &Value, wire: Wire<'_>, list: &mut Vec<Value>) -> Result<(), ProtobufError> {
    let numeric = matches!(items.get("type").and_then(Value::as_str), Some("integer" | "boolean" | "number"));
    match wire {
        Wire::Bytes(packed) if numeric => {
            let mut r = Reader(packed);
            while !r.0.is_empty() {
                list.push(scalar_or_message(items, Wire::Varint(r.varint()?))?);
            }
        }
        w => list.push(scalar_or_message(items, w)?),
    }
    Ok(())
}

fn timestamp(bytes: &[u8], micro: bool) -> Result<Value, ProtobufError> {
    let (mut seconds, mut nanos) = (None::<i64>, 0i64);
    for f in Reader(bytes) {
        match f? {
            (1, Wire::Varint(v)) => seconds = Some(v as i64),
            (2, Wire::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    let Some(seconds) = seconds else { return Ok(Value::Null) };
    let ts = jiff::Timestamp::new(seconds, i32::try_from(nanos).unwrap_or(0)).map_err(|_| ProtobufError::Malformed)?;
    let text = if micro { ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string() } else { ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string() };
    Ok(Value::String(text))
}

fn scalar_or_message(schema: &Value, wire: Wire<'_>) -> Result<Value, ProtobufError> {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str).and_then(ref_target) {
        let Wire::Bytes(b) = wire else { return Err(ProtobufError::Malformed) };
        return special_or_message(target, b);
    }
    let kind = schema.get("type").and_then(Value::as_str).unwrap_or_default();
    let format = schema.get("format").and_then(Value::as_str).unwrap_or_default();
    Ok(match (kind, wire) {
        ("string", Wire::Bytes(b)) if format == "byte" => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        ("string", Wire::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        ("integer", Wire::Varint(v)) if format == "int32" => Value::from(v as i32),
        ("integer", Wire::Varint(v)) => Value::from(v as i64),
        ("boolean", Wire::Varint(v)) => Value::Bool(v != 0),
        ("number", Wire::Fixed64(v)) => serde_json::Number::from_f64(f64::from_bits(v)).map_or(Value::Null, Value::Number),
        ("number", Wire::Fixed32(v)) => serde_json::Number::from_f64(f64::from(f32::from_bits(v))).map_or(Value::Null, Value::Number),
        ("object", Wire::Bytes(b)) => serde_json::from_slice(b).unwrap_or(Value::Null),
        (_, Wire::Varint(v)) => Value::from(v as i64),
        (_, Wire::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        _ => return Err(ProtobufError::Malformed),
    })
}

fn special_or_message(definition: &str, bytes: &[u8]) -> Result<Value, ProtobufError> {
    let first_bytes = |b: &[u8]| -> Result<Option<Vec<u8>>, ProtobufError> {
        for f in Reader(b) {
            if let (1, Wire::Bytes(v)) = f? {
                return Ok(Some(v.to_vec()));
            }
        }
        Ok(None)
    };
    match definition {
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time" => timestamp(bytes, false),
        "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => timestamp(bytes, true),
        "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
            Ok(first_bytes(bytes)?.map_or(Value::Null, |v| Value::String(String::from_utf8_lossy(&v).into_owned())))
        }
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1" | "io.k8s.apimachinery.pkg.runtime.RawExtension" => {
            Ok(first_bytes(bytes)?.and_then(|v| serde_json::from_slice(&v).ok()).unwrap_or_else(|| Value::Object(Map::new())))
        }
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
            let (mut kind, mut int, mut text) = (0, 0i64, String::new());
            for f in Reader(bytes) {
                match f? {
                    (1, Wire::Varint(v)) => kind = v,
                    (2, Wire::Varint(v)) => int = i64::from(v as i32),
                    (3, Wire::Bytes(b)) => text = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
            }
            Ok(if kind == 1 { Value::String(text) } else { Value::from(int) })
        }
        _ => {
            let mut obj = Map::new();
            decode_message(bytes, definition, definition, &mut obj)?;
            Ok(Value::Object(obj))
        }
    }
}

#[cfg(test)]
mod tests;
