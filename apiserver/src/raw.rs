//! Stored objects served as bytes: `metadata.resourceVersion` spliced into the JSON
//! the store holds, without parsing it into a tree and serializing it again.
//!
//! The store keeps objects as compact JSON without `resourceVersion` ([`objects::encode`]).
//! [`with_resource_version`] finds the top-level `metadata` object by scanning the
//! bytes (strings and nesting are skipped exactly) and appends the field at its end,
//! which is where [`objects::set_resource_version`] puts it, so both give the same
//! bytes. Anything unexpected (no `metadata`, a stored `resourceVersion`, malformed
//! JSON) falls back to the decode path.

use waggle_store::{KeyValue, Revision};

use crate::objects;
use crate::status::ApiError;

/// The object at `kv` as JSON bytes with `resourceVersion` set from `mod_revision`.
pub fn object_bytes(kv: &KeyValue) -> Result<Vec<u8>, ApiError> {
    object_bytes_at(kv, kv.mod_revision)
}

/// The object at `kv` as JSON bytes with `resourceVersion` set to `revision`.
pub fn object_bytes_at(kv: &KeyValue, revision: Revision) -> Result<Vec<u8>, ApiError> {
    if let Some(bytes) = with_resource_version(&kv.value, revision) {
        return Ok(bytes);
    }
    let mut obj = objects::decode(kv)?;
    objects::set_resource_version(&mut obj, revision);
    Ok(serde_json::to_vec(&obj).expect("JSON values always serialize"))
}

/// `json` (a stored object) with `"resourceVersion":"REVISION"` appended to its
/// top-level `metadata`; `None` if that cannot be done by splicing.
pub fn with_resource_version(json: &[u8], revision: Revision) -> Option<Vec<u8>> {
    let (start, end) = metadata_span(json)?;
    let metadata = &json[start..end];
    if member_names(metadata)?
        .iter()
        .any(|name| *name == b"resourceVersion")
    {
        return None;
    }
    let empty = metadata.len() == 2;
    let mut out = Vec::with_capacity(json.len() + 40);
    out.extend_from_slice(&json[..end - 1]);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(revision.to_string().as_bytes());
    out.extend_from_slice(b"\"");
    out.extend_from_slice(&json[end - 1..]);
    Some(out)
}

/// The byte range of the value of the top-level `metadata` member, if it is an object.
fn metadata_span(json: &[u8]) -> Option<(usize, usize)> {
    let mut scan = Scanner {
        bytes: json,
        pos: 0,
    };
    let mut found = None;
    scan.object_members(|scan, name| {
        let start = scan.pos;
        scan.value()?;
        if name == b"metadata" && json.get(start) == Some(&b'{') {
            found = Some((start, scan.pos));
        }
        Some(())
    })?;
    scan.space();
    (scan.pos == json.len()).then_some(found)?
}

/// The member names of a JSON object (raw, without unescaping).
fn member_names(json: &[u8]) -> Option<Vec<&[u8]>> {
    let mut scan = Scanner {
        bytes: json,
        pos: 0,
    };
    let mut names = Vec::new();
    scan.object_members(|scan, name| {
        names.push(name);
        scan.value()
    })?;
    Some(names)
}

/// A minimal JSON walker: enough to find member boundaries, nothing more.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// A string; returns its raw contents.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
        let contents = self.bytes.get(start..self.pos)?;
        self.pos += 1;
        Some(contents)
    }

    /// Walks `{ "name": value, ... }`, calling `member` positioned at each value.
    fn object_members(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        self.space();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            let name = self.string()?;
            self.expect(b':')?;
            self.space();
            member(self, name)?;
            self.space();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Skips one value of any kind.
    fn value(&mut self) -> Option<()> {
        self.space();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(b) if !matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn via_tree(obj: &Value, revision: Revision) -> Vec<u8> {
        let kv = KeyValue {
            key: "k".into(),
            value: objects::encode(obj),
            create_revision: 1,
            mod_revision: revision,
        };
        serde_json::to_vec(&objects::decode(&kv).unwrap()).unwrap()
    }

    #[test]
    fn splicing_gives_the_same_bytes_as_decoding() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"metadata": "}{\"x"}}, "spec": {"x": [1, {"y": "]"}]}}),
            json!({"kind": "X", "data": {"metadata": {"name": "decoy"}}, "metadata": {}, "z": null}),
            json!({"metadata": {"name": "esc\\\"aped", "annotations": {"a": "\\"}}, "n": -1.5e3, "t": true}),
        ];
        for obj in objects {
            let stored = objects::encode(&obj);
            assert_eq!(
                with_resource_version(&stored, 42).unwrap(),
                via_tree(&obj, 42),
                "{obj}"
            );
        }
    }

    #[test]
    fn unexpected_shapes_fall_back() {
        assert_eq!(
            with_resource_version(br#"{"metadata":{"resourceVersion":"1"}}"#, 2),
            None
        );
        assert_eq!(with_resource_version(br#"{"kind":"X"}"#, 2), None);
        assert_eq!(with_resource_version(br#"{"metadata":"x"}"#, 2), None);
        assert_eq!(with_resource_version(br#"{"metadata":{"a":"b"}"#, 2), None);
        assert_eq!(
            with_resource_version(br#"{"metadata":{}} trailing"#, 2),
            None
        );
        assert_eq!(with_resource_version(b"[]", 2), None);
        let kv = KeyValue {
            key: "k".into(),
            value: br#"{"metadata":{"resourceVersion":"1","name":"a"}}"#.to_vec(),
            create_revision: 1,
            mod_revision: 5,
        };
        let bytes = object_bytes(&kv).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap()["metadata"]["resourceVersion"],
            "5"
        );
    }
}
