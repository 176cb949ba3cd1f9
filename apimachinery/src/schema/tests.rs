//! Behaviour and message tests for pruning, defaulting and validation; expected texts are
//! those kube-apiserver 1.32 produces for the same schema and object.

use serde_json::{Value, json};

use super::{FieldError, apply_defaults, prune, validate};

fn err(reason: &'static str, field: &str, message: &str) -> FieldError {
    FieldError { reason, field: field.to_owned(), message: message.to_owned() }
}

/// A CR root schema with `spec` as given.
fn with_spec(spec: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

/// An object schema with the given properties.
fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

/// Validates `{"spec": {field: value}}` against a spec with one property `field`.
fn validate_field(field: &str, schema: Value, value: Value) -> Vec<FieldError> {
    let schema = with_spec(object(json!({ field: schema })));
    validate(&schema, &json!({"spec": { field: value }}))
}

mod pruning {
    use super::*;

    #[test]
    fn drops_undeclared_nested_fields_and_keeps_root_meta() {
        let schema = with_spec(object(json!({
            "replicas": {"type": "integer"},
            "template": object(json!({"name": {"type": "string"}})),
        })));
        let mut obj = json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "bogus": true},
            "spec": {"replicas": 1, "foo": "x", "template": {"name": "n", "bar": {"deep": 1}}},
            "status": {"ready": true},
        });
        let removed = prune(&schema, &mut obj);
        assert_eq!(removed, ["spec.foo", "spec.template.bar", "status"]);
        assert_eq!(
            obj,
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w", "bogus": true},
                "spec": {"replicas": 1, "template": {"name": "n"}},
            })
        );
    }

    #[test]
    fn array_items_and_upstream_sort_order() {
        let schema = with_spec(object(json!({
            "items": {"type": "array", "items": object(json!({"name": {"type": "string"}}))},
        })));
        let items: Vec<Value> = (0..11).map(|i| json!({"name": format!("n{i}"), "x": i})).collect();
        let mut obj = json!({"spec": {"items": items}});
        let removed = prune(&schema, &mut obj);
        // sort.Strings order: "[10]" sorts before "[1]".
        assert_eq!(removed[..4], ["spec.items[0].x", "spec.items[10].x", "spec.items[1].x", "spec.items[2].x"]);
        assert_eq!(removed.len(), 11);
        assert_eq!(obj["spec"]["items"][10], json!({"name": "n10"}));
    }

    #[test]
    fn array_without_items_schema_empties_objects() {
        let schema = with_spec(object(json!({"list": {"type": "array"}})));
        let mut obj = json!({"spec": {"list": [{"a": 1}, "s", 2]}});
        assert_eq!(prune(&schema, &mut obj), ["spec.list[0].a"]);
        assert_eq!(obj["spec"]["list"], json!([{}, "s", 2]));
    }

    #[test]
    fn additional_properties_schema_prunes_values() {
        let schema = with_spec(object(json!({
            "map": {"type": "object", "additionalProperties": object(json!({"keep": {"type": "string"}}))},
        })));
        let mut obj = json!({"spec": {"map": {"a": {"keep": "k", "drop": 1}, "b": {}}}});
        assert_eq!(prune(&schema, &mut obj), ["spec.map.a.drop"]);
        assert_eq!(obj["spec"]["map"], json!({"a": {"keep": "k"}, "b": {}}));
    }

    #[test]
    fn additional_properties_true_keeps_keys_but_not_their_fields() {
        let schema = with_spec(object(json!({"free": {"type": "object", "additionalProperties": true}})));
        let mut obj = json!({"spec": {"free": {"a": 1, "b": {"c": 1}}}});
        assert_eq!(prune(&schema, &mut obj), ["spec.free.b.c"]);
        assert_eq!(obj["spec"]["free"], json!({"a": 1, "b": {}}));
    }

    #[test]
    fn preserve_unknown_fields_still_prunes_declared_subtrees() {
        let schema = with_spec(json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "known": object(json!({"x": {"type": "string"}})),
                "list": {"type": "array", "items": object(json!({"y": {"type": "string"}}))},
                "kept": {
                    "type": "array",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "items": object(json!({"y": {"type": "string"}})),
                },
            },
        }));
        let mut obj = json!({"spec": {
            "anything": {"goes": [1, {"here": true}]},
            "known": {"x": "1", "y": "2"},
            "list": [{"y": "a", "z": "b"}],
            "kept": [{"y": "a", "z": "b"}],
        }});
        assert_eq!(prune(&schema, &mut obj), ["spec.known.y", "spec.list[0].z"]);
        assert_eq!(obj["spec"]["anything"], json!({"goes": [1, {"here": true}]}));
        assert_eq!(obj["spec"]["list"], json!([{"y": "a"}]));
        // The items of a preserving array are walked without pruning their unknown fields.
        assert_eq!(obj["spec"]["kept"], json!([{"y": "a", "z": "b"}]));
    }

    #[test]
    fn embedded_resources_keep_type_and_object_meta() {
        let schema = with_spec(object(json!({
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "properties": {"spec": object(json!({"image": {"type": "string"}}))},
            },
            "plain": object(json!({"name": {"type": "string"}})),
        })));
        let mut obj = json!({"spec": {
            "template": {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}, "whatever": 1},
                "spec": {"image": "i", "extra": 1}, "status": {},
            },
            "plain": {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "name": "n"},
        }});
        let removed = prune(&schema, &mut obj);
        assert_eq!(
            removed,
            [
                "spec.plain.apiVersion",
                "spec.plain.kind",
                "spec.plain.metadata",
                "spec.template.spec.extra",
                "spec.template.status",
            ]
        );
        assert_eq!(
            obj["spec"]["template"],
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}, "whatever": 1}, "spec": {"image": "i"}})
        );
        assert_eq!(obj["spec"]["plain"], json!({"name": "n"}));
    }

    #[test]
    fn root_without_properties_keeps_only_meta() {
        let mut obj = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}, "spec": {"a": 1}});
        assert_eq!(prune(&json!({"type": "object"}), &mut obj), ["spec"]);
        assert_eq!(obj, json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}}));
    }

    #[test]
    fn declared_fields_survive_whatever_their_value() {
        let schema = with_spec(object(json!({"a": {"type": "string"}, "b": {"type": "object"}})));
        let mut obj = json!({"spec": {"a": null, "b": {"c": 1}}});
        assert_eq!(prune(&schema, &mut obj), ["spec.b.c"]);
        assert_eq!(obj["spec"], json!({"a": null, "b": {}}));
    }
}

mod defaulting {
    use super::*;

    #[test]
    fn nested_object_defaults_apply_inside_defaults() {
        let schema = with_spec(json!({
            "type": "object",
            "default": {"replicas": 1},
            "properties": {
                "replicas": {"type": "integer", "default": 3},
                "mode": {"type": "string", "default": "auto"},
                "nested": object(json!({"deep": {"type": "boolean", "default": true}})),
            },
        }));
        let mut obj = json!({"apiVersion": "a/v1", "kind": "K"});
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"], json!({"replicas": 1, "mode": "auto"}));

        let mut obj = json!({"spec": {"replicas": 5, "nested": {}}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"], json!({"replicas": 5, "nested": {"deep": true}, "mode": "auto"}));
    }

    #[test]
    fn array_items_are_defaulted() {
        let schema = with_spec(object(json!({
            "ports": {"type": "array", "items": object(json!({
                "port": {"type": "integer"},
                "protocol": {"type": "string", "default": "TCP"},
            }))},
            "names": {"type": "array", "items": {"type": "string", "default": "unnamed"}},
            "free": {"type": "array", "items": {"type": "string"}},
        })));
        let mut obj = json!({"spec": {
            "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}],
            "names": ["a", null],
            "free": [null],
        }});
        apply_defaults(&schema, &mut obj);
        assert_eq!(
            obj["spec"],
            json!({
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                "names": ["a", "unnamed"],
                "free": [null],
            })
        );
    }

    #[test]
    fn nulls_follow_nullable() {
        let schema = with_spec(object(json!({
            "defaulted": {"type": "string", "default": "d"},
            "nullableDefaulted": {"type": "string", "nullable": true, "default": "d"},
            "nullable": {"type": "string", "nullable": true},
            "plain": {"type": "string"},
        })));
        let mut obj = json!({"spec": {"defaulted": null, "nullableDefaulted": null, "nullable": null, "plain": null, "unknown": null}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(
            obj["spec"],
            json!({"defaulted": "d", "nullableDefaulted": null, "nullable": null, "unknown": null})
        );
    }

    #[test]
    fn additional_properties_values_are_defaulted() {
        let schema = with_spec(object(json!({
            "map": {"type": "object", "additionalProperties": {
                "type": "object",
                "default": {"enabled": false},
                "properties": {"enabled": {"type": "boolean"}, "level": {"type": "integer", "default": 1}},
            }},
        })));
        let mut obj = json!({"spec": {"map": {"a": {"enabled": true}, "b": null}}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(
            obj["spec"]["map"],
            json!({"a": {"enabled": true, "level": 1}, "b": {"enabled": false, "level": 1}})
        );
    }

    #[test]
    fn existing_values_and_null_defaults_are_left_alone() {
        let schema = with_spec(object(json!({
            "a": {"type": "string", "default": "x"},
            "b": {"type": "string", "default": null},
        })));
        let mut obj = json!({"spec": {"a": "mine"}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"], json!({"a": "mine"}));
    }
}

mod validation {
    use super::*;

    const INVALID: &str = "FieldValueInvalid";
    const TYPE: &str = "FieldValueTypeInvalid";

    #[test]
    fn type_mismatch() {
        assert_eq!(
            validate_field("replicas", json!({"type": "integer"}), json!("3")),
            [err(
                TYPE,
                "spec.replicas",
                r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#
            )]
        );
        assert_eq!(
            validate_field("on", json!({"type": "boolean"}), json!({"a": 1})),
            [err(TYPE, "spec.on", r#"Invalid value: "object": spec.on in body must be of type boolean: "object""#)]
        );
        assert_eq!(
            validate_field("list", json!({"type": "array"}), json!("x")),
            [err(TYPE, "spec.list", r#"Invalid value: "string": spec.list in body must be of type array: "string""#)]
        );
    }

    #[test]
    fn integer_versus_number() {
        assert_eq!(
            validate_field("n", json!({"type": "integer"}), json!(1.5)),
            [err(TYPE, "spec.n", r#"Invalid value: "number": spec.n in body must be of type integer: "number""#)]
        );
        assert!(validate_field("n", json!({"type": "integer"}), json!(2.0)).is_empty());
        assert!(validate_field("n", json!({"type": "number"}), json!(3)).is_empty());
        // swag.IsFloat64AJSONInteger tolerates a relative 1e-9 above an integer.
        assert!(validate_field("n", json!({"type": "integer"}), json!(1.0000000001)).is_empty());
        assert_eq!(validate_field("n", json!({"type": "integer"}), json!(0.9999999999)).len(), 1);
    }

    #[test]
    fn nullable() {
        assert_eq!(
            validate_field("s", json!({"type": "string"}), Value::Null),
            [err(TYPE, "spec.s", r#"Invalid value: "null": spec.s in body must be of type string: "null""#)]
        );
        assert!(validate_field("s", json!({"type": "string", "nullable": true}), Value::Null).is_empty());
        assert!(
            validate_field("s", json!({"type": "string", "nullable": true, "minLength": 3}), Value::Null).is_empty()
        );
    }

    #[test]
    fn int_or_string() {
        let schema = json!({"x-kubernetes-int-or-string": true});
        assert!(validate_field("port", schema.clone(), json!(80)).is_empty());
        assert!(validate_field("port", schema.clone(), json!("http")).is_empty());
        assert_eq!(
            validate_field("port", schema, json!(true)),
            [err(
                TYPE,
                "spec.port",
                r#"Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
            )]
        );
    }

    #[test]
    fn formats() {
        assert_eq!(
            validate_field("at", json!({"type": "string", "format": "date-time"}), json!("yesterday")),
            [err(
                TYPE,
                "spec.at",
                r#"Invalid value: "yesterday": spec.at in body must be of type date-time: "yesterday""#
            )]
        );
        assert!(
            validate_field("at", json!({"type": "string", "format": "date-time"}), json!("2024-05-06T07:08:09Z"))
                .is_empty()
        );
        assert_eq!(
            validate_field("data", json!({"type": "string", "format": "byte"}), json!("not base64!")),
            [err(
                TYPE,
                "spec.data",
                r#"Invalid value: "not base64!": spec.data in body must be of type byte: "not base64!""#
            )]
        );
        // A non-string under a string format fails the type check on the format name.
        assert_eq!(
            validate_field("at", json!({"type": "string", "format": "date-time"}), json!(5)),
            [err(TYPE, "spec.at", r#"Invalid value: "int64": spec.at in body must be of type date-time: "int64""#)]
        );
        // int32/int64 are stripped by apiextensions-apiserver: no range check.
        assert!(validate_field("n", json!({"type": "integer", "format": "int32"}), json!(1_i64 << 40)).is_empty());
        assert!(validate_field("s", json!({"type": "string", "format": "no-such-format"}), json!("x")).is_empty());
    }

    #[test]
    fn enums() {
        let colors = json!({"type": "string", "enum": ["red", "green"]});
        assert_eq!(
            validate_field("color", colors.clone(), json!("blue")),
            [err(
                "FieldValueNotSupported",
                "spec.color",
                r#"Unsupported value: "blue": supported values: "red", "green""#
            )]
        );
        assert!(validate_field("color", colors, json!("red")).is_empty());
        assert_eq!(
            validate_field("n", json!({"type": "integer", "enum": [1, 2]}), json!(3)),
            [err("FieldValueNotSupported", "spec.n", r#"Unsupported value: 3: supported values: "1", "2""#)]
        );
        assert_eq!(
            validate_field("o", json!({"type": "object", "enum": [{"a": 1}]}), json!({"a": 2})),
            [err(
                "FieldValueNotSupported",
                "spec.o",
                r#"Unsupported value: map[string]interface {}{"a":2}: supported values: "{\"a\":1}""#
            )]
        );
        // null never matches an enum, even when nullable.
        assert_eq!(
            validate_field("c", json!({"type": "string", "nullable": true, "enum": ["a"]}), Value::Null),
            [err("FieldValueNotSupported", "spec.c", r#"Unsupported value: "null": supported values: "a""#)]
        );
        // kube-openapi converts the datum to the enum value's type: 1.5 becomes int64 1.
        assert!(validate_field("n", json!({"type": "number", "enum": [1]}), json!(1.5)).is_empty());
    }

    #[test]
    fn required() {
        let schema = json!({
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {"type": "object", "required": ["name", "size"], "properties": {"name": {"type": "string"}}}},
        });
        assert_eq!(validate(&schema, &json!({})), [err("FieldValueRequired", "spec", "Required value")]);
        assert_eq!(
            validate(&schema, &json!({"spec": {}})),
            [
                err("FieldValueRequired", "spec.name", "Required value"),
                err("FieldValueRequired", "spec.size", "Required value")
            ]
        );
        assert!(validate(&schema, &json!({"spec": {"name": "n", "size": null}})).is_empty());
    }

    #[test]
    fn numeric_bounds() {
        assert_eq!(
            validate_field("r", json!({"type": "integer", "minimum": 1}), json!(0)),
            [err(INVALID, "spec.r", "Invalid value: 0: spec.r in body should be greater than or equal to 1")]
        );
        assert_eq!(
            validate_field("r", json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true}), json!(1)),
            [err(INVALID, "spec.r", "Invalid value: 1: spec.r in body should be greater than 1")]
        );
        assert_eq!(
            validate_field("r", json!({"type": "number", "maximum": 10}), json!(10.5)),
            [err(INVALID, "spec.r", "Invalid value: 10.5: spec.r in body should be less than or equal to 10")]
        );
        assert_eq!(
            validate_field("r", json!({"type": "number", "maximum": 10, "exclusiveMaximum": true}), json!(10)),
            [err(INVALID, "spec.r", "Invalid value: 10: spec.r in body should be less than 10")]
        );
        // Go prints a float64 bound with %v (exponent form from 1e+06), an int64 one in full.
        assert_eq!(
            validate_field("r", json!({"type": "number", "maximum": 1e6}), json!(2.5e6)),
            [err(INVALID, "spec.r", "Invalid value: 2.5e+06: spec.r in body should be less than or equal to 1e+06")]
        );
        assert_eq!(
            validate_field("r", json!({"type": "integer", "maximum": 1e6}), json!(2000000)),
            [err(INVALID, "spec.r", "Invalid value: 2000000: spec.r in body should be less than or equal to 1000000")]
        );
    }

    #[test]
    fn multiple_of() {
        assert_eq!(
            validate_field("n", json!({"type": "integer", "multipleOf": 3}), json!(7)),
            [err(INVALID, "spec.n", "Invalid value: 7: spec.n in body should be a multiple of 3")]
        );
        assert!(validate_field("n", json!({"type": "integer", "multipleOf": 3}), json!(9)).is_empty());
        assert_eq!(
            validate_field("f", json!({"type": "number", "multipleOf": 0.1}), json!(0.35)),
            [err(INVALID, "spec.f", "Invalid value: 0.35: spec.f in body should be a multiple of 0.1")]
        );
        assert!(validate_field("f", json!({"type": "number", "multipleOf": 0.1}), json!(0.3)).is_empty());
    }

    #[test]
    fn string_lengths_and_pattern() {
        assert_eq!(
            validate_field("name", json!({"type": "string", "minLength": 3}), json!("ab")),
            [err(INVALID, "spec.name", r#"Invalid value: "ab": spec.name in body should be at least 3 chars long"#)]
        );
        assert_eq!(
            validate_field("name", json!({"type": "string", "maxLength": 3}), json!("abcd")),
            [err("FieldValueTooLong", "spec.name", "Too long: may not be more than 3 bytes")]
        );
        // Lengths count characters, not bytes.
        assert!(validate_field("name", json!({"type": "string", "maxLength": 5}), json!("héllo")).is_empty());
        assert_eq!(
            validate_field("name", json!({"type": "string", "pattern": "^[a-z]+$"}), json!("ABC")),
            [err(INVALID, "spec.name", r#"Invalid value: "ABC": spec.name in body should match '^[a-z]+$'"#)]
        );
        // Only the first failing string rule is reported.
        assert_eq!(
            validate_field("name", json!({"type": "string", "maxLength": 2, "pattern": "^[a-z]+$"}), json!("ABC"))
                .len(),
            1
        );
    }

    #[test]
    fn array_sizes_and_uniqueness() {
        assert_eq!(
            validate_field("items", json!({"type": "array", "minItems": 2}), json!([1])),
            [err(INVALID, "spec.items", "Invalid value: 1: spec.items in body should have at least 2 items")]
        );
        assert_eq!(
            validate_field("items", json!({"type": "array", "maxItems": 2}), json!([1, 2, 3])),
            [err("FieldValueTooMany", "spec.items", "Too many: 3: must have at most 2 items")]
        );
        assert_eq!(
            validate_field("tags", json!({"type": "array", "uniqueItems": true}), json!(["a", "b", "a"])),
            [err(INVALID, "spec.tags", r#"Invalid value: "": spec.tags in body shouldn't contain duplicates"#)]
        );
        // 1 and 1.0 are different Go values (int64 and float64).
        assert!(validate_field("tags", json!({"type": "array", "uniqueItems": true}), json!([1, 1.0])).is_empty());
    }

    #[test]
    fn item_paths() {
        let schema = json!({"type": "array", "items": object(json!({"name": {"type": "string"}}))});
        assert_eq!(
            validate_field("items", schema, json!([{"name": "a"}, {"name": 1}])),
            [err(
                TYPE,
                "spec.items[1].name",
                r#"Invalid value: "integer": spec.items[1].name in body must be of type string: "integer""#
            )]
        );
    }

    #[test]
    fn object_sizes_and_additional_properties() {
        let labels = |extra: Value| {
            let mut s = json!({"type": "object", "additionalProperties": {"type": "string"}});
            if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
                s.extend(extra.clone());
            }
            s
        };
        assert_eq!(
            validate_field("labels", labels(json!({"minProperties": 2})), json!({"a": "1"})),
            [err(INVALID, "spec.labels", "Invalid value: 1: spec.labels in body should have at least 2 properties")]
        );
        assert_eq!(
            validate_field("labels", labels(json!({"maxProperties": 2})), json!({"a": "1", "b": "2", "c": "3"})),
            [err("FieldValueTooMany", "spec.labels", "Too many: 3: must have at most 2 items")]
        );
        assert_eq!(
            validate_field("labels", labels(json!({})), json!({"a": 1})),
            [err(
                TYPE,
                "spec.labels.a",
                r#"Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#
            )]
        );
        assert_eq!(
            validate_field("closed", json!({"type": "object", "additionalProperties": false}), json!({"extra": 1})),
            [err(
                INVALID,
                "spec.closed",
                r#"Invalid value: "extra": spec.closed.extra in body is a forbidden property"#
            )]
        );
    }

    #[test]
    fn any_of_reports_the_best_branch() {
        let schema = json!({"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]});
        assert!(validate_field("n", schema.clone(), json!(20)).is_empty());
        assert_eq!(
            validate_field("n", schema, json!(5)),
            [
                err(INVALID, "<nil>", r#"Invalid value: "": "spec.n" must validate at least one schema (anyOf)"#),
                err(INVALID, "spec.n", "Invalid value: 5: spec.n in body should be greater than or equal to 10"),
            ]
        );
    }

    #[test]
    fn one_of_needs_exactly_one() {
        let schema = json!({"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]});
        assert!(validate_field("n", schema.clone(), json!(20)).is_empty());
        assert_eq!(
            validate_field("n", schema, json!(5)),
            [err(
                INVALID,
                "<nil>",
                r#"Invalid value: "": "spec.n" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
            )]
        );
        let schema = json!({"type": "string", "oneOf": [{"pattern": "^a"}, {"maxLength": 1}]});
        assert_eq!(
            validate_field("s", schema, json!("bcd")),
            [
                err(
                    INVALID,
                    "<nil>",
                    r#"Invalid value: "": "spec.s" must validate one and only one schema (oneOf). Found none valid"#
                ),
                err(INVALID, "spec.s", r#"Invalid value: "bcd": spec.s in body should match '^a'"#),
            ]
        );
    }

    #[test]
    fn all_of_and_not() {
        let schema = json!({"type": "integer", "allOf": [{"minimum": 10}, {"maximum": 0}]});
        assert_eq!(
            validate_field("n", schema, json!(20)),
            [
                err(INVALID, "spec.n", "Invalid value: 20: spec.n in body should be less than or equal to 0"),
                err(INVALID, "<nil>", r#"Invalid value: "": "spec.n" must validate all the schemas (allOf)"#),
            ]
        );
        let schema = json!({"type": "integer", "allOf": [{"minimum": 10}, {"minimum": 20}]});
        assert_eq!(
            validate_field("n", schema, json!(5))[2],
            err(
                INVALID,
                "<nil>",
                r#"Invalid value: "": "spec.n" must validate all the schemas (allOf). None validated"#
            )
        );
        assert_eq!(
            validate_field("s", json!({"type": "string", "not": {"enum": ["x"]}}), json!("x")),
            [err(INVALID, "<nil>", r#"Invalid value: "": "spec.s" must not validate the schema (not)"#)]
        );
    }

    #[test]
    fn duplicate_messages_are_reported_once() {
        let schema = with_spec(json!({"type": "object", "allOf": [{"required": ["name"]}, {"required": ["name"]}]}));
        assert_eq!(
            validate(&schema, &json!({"spec": {}})),
            [
                err("FieldValueRequired", "spec.name", "Required value"),
                err(
                    INVALID,
                    "<nil>",
                    r#"Invalid value: "": "spec" must validate all the schemas (allOf). None validated"#
                ),
            ]
        );
    }

    #[test]
    fn errors_follow_validator_and_field_order() {
        let schema = with_spec(object(json!({
            "b": {"type": "string", "enum": ["x"]},
            "a": {"type": "integer", "minimum": 5},
        })));
        assert_eq!(
            validate(&schema, &json!({"spec": {"b": 1, "a": 1}})),
            [
                err(INVALID, "spec.a", "Invalid value: 1: spec.a in body should be greater than or equal to 5"),
                err(TYPE, "spec.b", r#"Invalid value: "integer": spec.b in body must be of type string: "integer""#),
                err("FieldValueNotSupported", "spec.b", r#"Unsupported value: 1: supported values: "x""#),
            ]
        );
    }

    #[test]
    fn metadata_is_checked_only_as_declared() {
        let schema = json!({"type": "object", "properties": {
            "metadata": object(json!({"name": {"type": "string", "maxLength": 5}})),
        }});
        assert_eq!(
            validate(&schema, &json!({"metadata": {"name": "toolong", "labels": {"a": "b"}}})),
            [err("FieldValueTooLong", "metadata.name", "Too long: may not be more than 5 bytes")]
        );
        assert!(validate(&json!({"type": "object"}), &json!({"metadata": {"name": 1}})).is_empty());
    }

    #[test]
    fn list_type_set() {
        let schema = json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}});
        assert_eq!(
            validate_field("tags", schema, json!(["a", "b", "a", "a", "b"])),
            [
                err("FieldValueDuplicate", "spec.tags[2]", r#"Duplicate value: "a""#),
                err("FieldValueDuplicate", "spec.tags[4]", r#"Duplicate value: "b""#),
            ]
        );
        let schema = json!({"type": "array", "x-kubernetes-list-type": "set"});
        assert_eq!(
            validate_field("objs", schema, json!([{"a": 1}, {"a": 1}])),
            [err("FieldValueDuplicate", "spec.objs[1]", r#"Duplicate value: map[string]interface {}{"a":1}"#)]
        );
    }

    #[test]
    fn list_type_map() {
        let ports = json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": object(json!({"name": {"type": "string"}, "port": {"type": "integer"}})),
        });
        assert_eq!(
            validate_field(
                "ports",
                ports.clone(),
                json!([{"name": "a", "port": 1}, {"name": "a", "port": 2}, {"port": 3}, {"port": 4}])
            ),
            [
                err("FieldValueDuplicate", "spec.ports[1]", r#"Duplicate value: map[string]interface {}{"name":"a"}"#),
                err("FieldValueDuplicate", "spec.ports[3]", "Duplicate value: map[string]interface {}{}"),
            ]
        );
        let mut bare = ports.clone();
        bare["items"] = json!({});
        assert_eq!(
            validate_field("ports", bare, json!([{"name": "a"}, "x"])),
            [err(INVALID, "spec.ports[1]", r#"Invalid value: "x": must be an object for an array of list-type map"#)]
        );
        let multi = json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["proto", "port"],
            "items": {"type": "object"},
        });
        assert_eq!(
            validate_field("ports", multi, json!([{"proto": "TCP", "port": 80}, {"port": 80, "proto": "TCP", "x": 1}])),
            [err(
                "FieldValueDuplicate",
                "spec.ports[1]",
                r#"Duplicate value: map[string]interface {}{"port":80, "proto":"TCP"}"#
            )]
        );
    }

    #[test]
    fn list_types_under_maps_use_key_paths() {
        let schema = json!({"type": "object", "additionalProperties": {
            "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"},
        }});
        assert_eq!(
            validate_field("groups", schema, json!({"g": [1, 1]})),
            [err("FieldValueDuplicate", "spec.groups[g][1]", "Duplicate value: 1")]
        );
    }

    #[test]
    fn embedded_resource_type_meta() {
        let schema = json!({"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true});
        assert_eq!(
            validate_field("template", schema.clone(), json!({})),
            [
                err("FieldValueRequired", "spec.template.apiVersion", "Required value: must not be empty"),
                err("FieldValueRequired", "spec.template.kind", "Required value: must not be empty"),
            ]
        );
        assert_eq!(
            validate_field("template", schema.clone(), json!({"apiVersion": "a/b/c", "kind": "Foo_Bar"})),
            [
                err(
                    INVALID,
                    "spec.template.apiVersion",
                    r#"Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c"#
                ),
                err(
                    INVALID,
                    "spec.template.kind",
                    "Invalid value: \"Foo_Bar\": may have mixed case, but should otherwise match: a DNS-1035 label must \
                     consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end \
                     with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is \
                     '[a-z]([-a-z0-9]*[a-z0-9])?')"
                ),
            ]
        );
        assert_eq!(
            validate_field("template", schema.clone(), json!({"apiVersion": 1, "kind": ""})),
            [
                err(INVALID, "spec.template.apiVersion", "Invalid value: 1: must be a string"),
                err(INVALID, "spec.template.kind", r#"Invalid value: "": must not be empty"#),
            ]
        );
        assert!(validate_field("template", schema, json!({"apiVersion": "apps/v1", "kind": "Deployment"})).is_empty());
    }

    #[test]
    fn display_is_field_then_message() {
        let e = err("FieldValueRequired", "spec.name", "Required value");
        assert_eq!(e.to_string(), "spec.name: Required value");
    }
}

/// The three steps in upstream's order on one object.
#[test]
fn prune_default_validate_pipeline() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "default": 1},
                "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
            },
        }},
    });
    let mut obj =
        json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "k"}, "spec": {"size": null, "bogus": 1}});
    assert_eq!(prune(&schema, &mut obj), ["spec.bogus"]);
    apply_defaults(&schema, &mut obj);
    assert_eq!(obj["spec"], json!({"size": 1, "mode": "safe"}));
    assert!(validate(&schema, &obj).is_empty());
    obj["spec"]["mode"] = json!("slow");
    assert_eq!(
        validate(&schema, &obj),
        [err("FieldValueNotSupported", "spec.mode", r#"Unsupported value: "slow": supported values: "fast", "safe""#)]
    );
}
