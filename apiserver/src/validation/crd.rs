//! CustomResourceDefinition (`apiextensions.k8s.io/v1`) validation, with the field paths
//! and messages kube-apiserver's apiextensions validation reports.
//!
//! Upstream validates the CRD's internal form, into which v1 converts by hoisting
//! per-version `schema`, `subresources`, `additionalPrinterColumns` and
//! `selectableFields` to the top level whenever every version has the same value, and
//! by flattening `spec.conversion.webhook`. Error paths follow that form: the schema
//! errors of a one-version CRD read `spec.validation.openAPIV3Schema...`, those of a
//! CRD whose versions' schemas differ `spec.versions[1].schema.openAPIV3Schema...`,
//! and webhook settings are `spec.conversion.webhookClientConfig...`.
//!
//! The status that upstream validates is the one its strategy prepares: on create
//! only `storedVersions` (the storage version), on update the stored object's status
//! plus the storage version.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::{Errors, at, names};
use crate::status::Cause;

/// `printerColumnDatatypes`, listed sorted as upstream prints the set.
const COLUMN_TYPES: [&str; 5] = ["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: [&str; 8] = [
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];
const OPENAPI_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const VALIDATION_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];
/// ConversionReview versions a webhook may be asked to speak.
const REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];
const MAX_SELECTABLE_FIELDS: usize = 8;
const APPROVAL_ANNOTATION: &str = "api-approved.kubernetes.io";
/// The schema keywords (by upstream's Go field name) allowed at the root of a schema
/// whose version has the status subresource, printed as Go prints a `[]string`.
const ROOT_FIELDS_WITH_STATUS: &str = "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations]";
/// A Go pointer as `%#v` prints it; the address means nothing to clients, so one is fixed.
const GO_POINTER: &str = "0xc000000000";

/// Validates a CRD (a create when `old` is None).
pub fn validate(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    let crd = Internal::of(spec);
    let spec_names = Names::read(at(spec, "/names"), true);
    let group = text(spec, "group");
    // Upstream checks the name rule only on create (the name is immutable after).
    let name = crate::objects::name(obj);
    if old.is_none() && !name.is_empty() && name != format!("{}.{group}", spec_names.plural) {
        errors.push(Cause::invalid(
            "metadata.name",
            &string(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let opts = Options::new(old);
    validate_spec(spec, &crd, &spec_names, opts, errors);
    if let Some(old) = old {
        let old_spec = at(old, "/spec");
        let old_names = Names::read(at(old_spec, "/names"), true);
        if opts.immutable_names {
            immutable(
                errors,
                "spec.scope",
                text(spec, "scope"),
                text(old_spec, "scope"),
            );
            immutable(errors, "spec.names.kind", spec_names.kind, old_names.kind);
        }
        immutable(errors, "spec.group", group, text(old_spec, "group"));
        immutable(
            errors,
            "spec.names.plural",
            spec_names.plural,
            old_names.plural,
        );
        validate_names(
            &Names::read(at(old, "/status/acceptedNames"), false),
            "status.acceptedNames",
            errors,
        );
    }
    validate_stored_versions(&stored_versions(crd.versions, old), crd.versions, errors);
    validate_approval(obj, old, group, errors);
    let preserve = |o: &Value| {
        o.pointer("/spec/preserveUnknownFields")
            .and_then(Value::as_bool)
            == Some(true)
    };
    if !old.is_some_and(preserve) && preserve(obj) {
        errors.push(Cause::invalid(
            "spec.preserveUnknownFields",
            &Value::Bool(true),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
}

/// Which checks apply: all on create; on update upstream does not tighten the rules
/// an already stored CRD broke.
#[derive(Clone, Copy)]
struct Options {
    require_schema: bool,
    require_valid_type: bool,
    require_structural: bool,
    require_atomic_set: bool,
    require_map_list_keys: bool,
    require_review_version: bool,
    /// Scope and kind are fixed once the CRD is established.
    immutable_names: bool,
}

impl Options {
    fn new(old: Option<&Value>) -> Self {
        let Some(old) = old else {
            return Options {
                require_schema: true,
                require_valid_type: true,
                require_structural: true,
                require_atomic_set: true,
                require_map_list_keys: true,
                require_review_version: true,
                immutable_names: false,
            };
        };
        let old_spec = at(old, "/spec");
        let versions = list(old_spec, "versions");
        let schemas: Vec<&Value> = versions
            .iter()
            .filter_map(|v| v.pointer("/schema/openAPIV3Schema"))
            .filter(|s| s.is_object())
            .collect();
        let any = |pred: &dyn Fn(&Value) -> bool| schemas.iter().any(|s| schema_has(s, pred));
        let review = list_at(old_spec, "/conversion/webhook/conversionReviewVersions");
        let established = super::items(old, "/status/conditions")
            .iter()
            .any(|c| text(c, "type") == "Established" && text(c, "status") == "True");
        Options {
            require_schema: versions.iter().all(|v| {
                v.pointer("/schema/openAPIV3Schema")
                    .is_some_and(Value::is_object)
            }),
            require_valid_type: !any(&|s| {
                !text(s, "type").is_empty() && !OPENAPI_TYPES.contains(&text(s, "type"))
            }),
            require_structural: !schemas
                .iter()
                .any(|s| unsupported(s).is_some() || !structural(s, "").is_empty()),
            require_atomic_set: !any(&non_atomic_set),
            require_map_list_keys: !any(&|s| !map_list_key_errors(s, "").is_empty()),
            require_review_version: review.is_empty()
                || review
                    .iter()
                    .any(|v| REVIEW_VERSIONS.contains(&v.as_str().unwrap_or_default())),
            immutable_names: established,
        }
    }
}

/// A per-version part of the spec, as upstream's internal form keeps it: once at the
/// top level when all versions agree, else in each version.
struct Shared<'a> {
    key: &'static str,
    hoisted: bool,
    top: Option<&'a Value>,
}

impl<'a> Shared<'a> {
    fn of(versions: &'a [Value], key: &'static str) -> Self {
        let hoisted = !versions.is_empty()
            && versions
                .iter()
                .all(|v| same(v.get(key), versions[0].get(key)));
        let top = if hoisted {
            present(&versions[0], key)
        } else {
            None
        };
        Shared { key, hoisted, top }
    }

    /// The version's own value (none when hoisted).
    fn of_version(&self, version: &'a Value) -> Option<&'a Value> {
        if self.hoisted {
            None
        } else {
            present(version, self.key)
        }
    }
}

/// The internal form of a v1 spec.
struct Internal<'a> {
    versions: &'a [Value],
    /// Whether `versions` is there at all (Go tells a nil list from an empty one).
    listed: bool,
    schema: Shared<'a>,
    subresources: Shared<'a>,
    columns: Shared<'a>,
    selectable: Shared<'a>,
}

impl<'a> Internal<'a> {
    fn of(spec: &'a Value) -> Self {
        let versions = list(spec, "versions");
        Internal {
            versions,
            listed: spec.get("versions").is_some_and(Value::is_array),
            schema: Shared::of(versions, "schema"),
            subresources: Shared::of(versions, "subresources"),
            columns: Shared::of(versions, "additionalPrinterColumns"),
            selectable: Shared::of(versions, "selectableFields"),
        }
    }

    /// The subresources that apply to `version`.
    fn subresources_of(&self, version: &'a Value) -> Option<&'a Value> {
        if self.subresources.hoisted {
            self.subresources.top
        } else {
            self.subresources.of_version(version)
        }
    }
}

/// `spec.names` (with v1's defaults for singular and listKind) or `status.acceptedNames`.
struct Names<'a> {
    plural: &'a str,
    singular: String,
    kind: &'a str,
    list_kind: String,
    short_names: &'a [Value],
    categories: &'a [Value],
}

impl<'a> Names<'a> {
    fn read(names: &'a Value, defaults: bool) -> Self {
        let kind = text(names, "kind");
        let mut singular = text(names, "singular").to_owned();
        let mut list_kind = text(names, "listKind").to_owned();
        if defaults && singular.is_empty() {
            singular = kind.to_lowercase();
        }
        if defaults && list_kind.is_empty() && !kind.is_empty() {
            list_kind = format!("{kind}List");
        }
        Names {
            plural: text(names, "plural"),
            singular,
            kind,
            list_kind,
            short_names: list(names, "shortNames"),
            categories: list(names, "categories"),
        }
    }
}

fn validate_spec(
    spec: &Value,
    crd: &Internal,
    spec_names: &Names,
    mut opts: Options,
    errors: &mut Errors,
) {
    let group = text(spec, "group");
    if group.is_empty() {
        errors.push(Cause::required("spec.group"));
    } else if let Err(e) = names::dns1123_subdomain(group) {
        errors.push(Cause::invalid("spec.group", &string(group), e));
    } else if !group.contains('.') {
        errors.push(Cause::invalid(
            "spec.group",
            &string(group),
            "should be a domain with at least one dot",
        ));
    }
    enum_string(
        errors,
        "spec.scope",
        text(spec, "scope"),
        &["Cluster", "Namespaced"],
    );

    let preserve_unknown = spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true);
    if !preserve_unknown {
        opts.require_structural = true;
    }
    let has_schema = |v: Option<&Value>| {
        v.and_then(|s| s.get("openAPIV3Schema"))
            .is_some_and(Value::is_object)
    };
    if !has_schema(crd.schema.top) {
        for (i, version) in crd.versions.iter().enumerate() {
            let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
            if has_schema(crd.schema.of_version(version)) {
                continue;
            }
            if opts.require_schema {
                errors.push(required(path, "schemas are required"));
            } else if !preserve_unknown && is_true(version, "served") {
                errors.push(required(path, "because otherwise all fields are pruned"));
            }
        }
    }
    let schemas: Vec<&Value> = crd
        .versions
        .iter()
        .filter_map(|v| v.pointer("/schema/openAPIV3Schema"))
        .filter(|s| s.is_object())
        .collect();
    if schemas
        .iter()
        .any(|s| schema_has(s, &|n| present(n, "default").is_some()))
    {
        opts.require_structural = true;
        if preserve_unknown {
            errors.push(Cause::invalid(
                "spec.preserveUnknownFields",
                &Value::Bool(true),
                "must be false in order to use defaults in the schema",
            ));
        }
    }
    if schemas
        .iter()
        .any(|s| schema_has(s, &has_kubernetes_extensions))
    {
        opts.require_structural = true;
    }

    let mut storage = 0;
    let mut seen = HashSet::new();
    let mut unique = true;
    for (i, version) in crd.versions.iter().enumerate() {
        let name = text(version, "name");
        if is_true(version, "storage") {
            storage += 1;
        }
        unique &= seen.insert(name);
        if let Err(e) = names::dns1035_label(name) {
            errors.push(Cause::invalid(
                format!("spec.versions[{i}].name"),
                &string(name),
                e,
            ));
        }
        let status = crd
            .subresources_of(version)
            .is_some_and(|s| present(s, "status").is_some());
        validate_version(
            crd,
            version,
            &format!("spec.versions[{i}]"),
            status,
            &opts,
            errors,
        );
    }
    if !unique {
        errors.push(invalid_go(
            "spec.versions",
            go_versions(crd),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errors.push(invalid_go(
            "spec.versions",
            go_versions(crd),
            "must have exactly one version marked as storage version",
        ));
    }
    // The internal form's `spec.version` is the first version's name.
    if let Some(first) = crd
        .versions
        .first()
        .map(|v| text(v, "name"))
        .filter(|n| !n.is_empty())
        && let Err(e) = names::dns1035_label(first)
    {
        errors.push(Cause::invalid("spec.version", &string(first), e));
    }

    for (field, value) in [
        ("plural", spec_names.plural),
        ("singular", spec_names.singular.as_str()),
        ("kind", spec_names.kind),
        ("listKind", spec_names.list_kind.as_str()),
    ] {
        if value.is_empty() {
            errors.push(Cause::required(format!("spec.names.{field}")));
        }
    }
    validate_names(spec_names, "spec.names", errors);

    let any_status = crd.versions.iter().any(|v| {
        crd.subresources_of(v)
            .is_some_and(|s| present(s, "status").is_some())
    });
    validate_schema(crd.schema.top, any_status, "spec.validation", &opts, errors);
    validate_subresources(crd.subresources.top, "spec.subresources", errors);
    for (i, column) in as_list(crd.columns.top).iter().enumerate() {
        validate_column(
            column,
            &format!("spec.additionalPrinterColumns[{i}]"),
            errors,
        );
    }
    let top_fields = as_list(crd.selectable.top);
    if !top_fields.is_empty() {
        match crd.schema.top {
            None => errors.push(Cause::invalid(
                "spec.selectableFields",
                &string(""),
                "selectableFields may only be set when validations.schema is included",
            )),
            Some(validation) => selectable_fields(
                top_fields,
                validation.get("openAPIV3Schema"),
                "spec.schema.openAPIV3Schema",
                "spec.selectableFields",
                errors,
            ),
        }
    }

    let conversion = present(spec, "conversion");
    // v1 defaults an absent conversion to the None strategy.
    let strategy = conversion.map_or("None", |c| text(c, "strategy"));
    if strategy != "None" && preserve_unknown {
        errors.push(Cause::invalid(
            "spec.conversion.strategy",
            &string(strategy),
            "must be None if spec.preserveUnknownFields is true",
        ));
    }
    if let Some(conversion) = conversion {
        validate_conversion(conversion, strategy, &opts, errors);
    }
}

fn validate_version(
    crd: &Internal,
    version: &Value,
    path: &str,
    status: bool,
    opts: &Options,
    errors: &mut Errors,
) {
    let warning = version.get("deprecationWarning").and_then(Value::as_str);
    for problem in deprecation_warning(is_true(version, "deprecated"), warning) {
        errors.push(Cause::invalid(
            format!("{path}.deprecationWarning"),
            &string(warning.unwrap_or_default()),
            problem,
        ));
    }
    let schema = crd.schema.of_version(version);
    validate_schema(schema, status, &format!("{path}.schema"), opts, errors);
    validate_subresources(
        crd.subresources.of_version(version),
        &format!("{path}.subresources"),
        errors,
    );
    for (i, column) in as_list(crd.columns.of_version(version)).iter().enumerate() {
        validate_column(
            column,
            &format!("{path}.additionalPrinterColumns[{i}]"),
            errors,
        );
    }
    let fields = as_list(crd.selectable.of_version(version));
    if !fields.is_empty() {
        match schema.and_then(|s| s.get("openAPIV3Schema")).filter(|s| s.is_object()) {
            // Upstream's wording, "not" included.
            None => errors.push(Cause::invalid(
                format!("{path}.selectableFields"),
                &string(""),
                "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
            )),
            Some(schema) => selectable_fields(fields, Some(schema), &format!("{path}.schema.openAPIV3Schema"), &format!("{path}.selectableFields"), errors),
        }
    }
}

fn deprecation_warning(deprecated: bool, warning: Option<&str>) -> Vec<String> {
    let Some(warning) = warning else {
        return Vec::new();
    };
    if !deprecated {
        return vec!["can only be set for deprecated versions".into()];
    }
    let mut problems = Vec::new();
    if warning.len() > 256 {
        problems.push("must be <= 256 characters long".into());
    }
    if warning.is_empty() {
        problems.push("must not be an empty string".into());
    }
    if let Some((i, _)) = warning.char_indices().find(|(_, c)| !go_printable(*c)) {
        problems.push(format!("must only contain printable UTF-8 characters; non-printable character found at index {i}"));
    }
    problems
}

/// Go's `unicode.IsPrint` (roughly): graphic characters and the ASCII space.
fn go_printable(c: char) -> bool {
    let format = matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}');
    c == ' ' || !(c.is_control() || c.is_whitespace() || format)
}

fn validate_names(n: &Names, path: &str, errors: &mut Errors) {
    let label = |errors: &mut Errors, field: String, value: &str, checked: &str, prefix: &str| {
        if let Err(e) = names::dns1035_label(checked) {
            errors.push(Cause::invalid(
                field,
                &string(value),
                format!("{prefix}{e}"),
            ));
        }
    };
    if !n.plural.is_empty() {
        label(errors, format!("{path}.plural"), n.plural, n.plural, "");
    }
    if !n.singular.is_empty() {
        label(
            errors,
            format!("{path}.singular"),
            &n.singular,
            &n.singular,
            "",
        );
    }
    let mixed = "may have mixed case, but should otherwise match: ";
    if !n.kind.is_empty() {
        label(
            errors,
            format!("{path}.kind"),
            n.kind,
            &n.kind.to_lowercase(),
            mixed,
        );
    }
    if !n.list_kind.is_empty() {
        label(
            errors,
            format!("{path}.listKind"),
            &n.list_kind,
            &n.list_kind.to_lowercase(),
            mixed,
        );
    }
    for (i, short) in n.short_names.iter().enumerate() {
        let short = short.as_str().unwrap_or_default();
        label(errors, format!("{path}.shortNames[{i}]"), short, short, "");
    }
    if !n.kind.is_empty() && n.kind == n.list_kind {
        errors.push(Cause::invalid(
            format!("{path}.listKind"),
            &string(&n.list_kind),
            "kind and listKind may not be the same",
        ));
    }
    for (i, category) in n.categories.iter().enumerate() {
        let category = category.as_str().unwrap_or_default();
        label(
            errors,
            format!("{path}.categories[{i}]"),
            category,
            category,
            "",
        );
    }
}

fn validate_column(column: &Value, path: &str, errors: &mut Errors) {
    if text(column, "name").is_empty() {
        errors.push(Cause::required(format!("{path}.name")));
    }
    let types = format!("must be one of {}", COLUMN_TYPES.join(","));
    match text(column, "type") {
        "" => errors.push(required(format!("{path}.type"), &types)),
        t if !COLUMN_TYPES.contains(&t) => {
            errors.push(Cause::invalid(format!("{path}.type"), &string(t), &types))
        }
        _ => {}
    }
    let format = text(column, "format");
    if !format.is_empty() && !COLUMN_FORMATS.contains(&format) {
        errors.push(Cause::invalid(
            format!("{path}.format"),
            &string(format),
            format!("must be one of {}", COLUMN_FORMATS.join(",")),
        ));
    }
    // Upstream names the field by its Go name.
    let json_path = text(column, "jsonPath");
    if json_path.is_empty() {
        errors.push(Cause::required(format!("{path}.JSONPath")));
    } else {
        simple_json_path(json_path, &format!("{path}.JSONPath"), errors);
    }
}

/// A JSON path in dot notation: `.spec.replicas`. Returns whether it is one.
fn simple_json_path(s: &str, path: &str, errors: &mut Errors) -> bool {
    if s.is_empty() {
        errors.push(Cause::invalid(path, &string(s), "must not be empty"));
        false
    } else if !s.starts_with('.') {
        errors.push(Cause::invalid(
            path,
            &string(s),
            "must be a simple json path starting with .",
        ));
        false
    } else {
        true
    }
}

fn validate_subresources(subresources: Option<&Value>, path: &str, errors: &mut Errors) {
    let Some(scale) = subresources.and_then(|s| present(s, "scale")) else {
        return;
    };
    for (field, under) in [
        ("specReplicasPath", ".spec"),
        ("statusReplicasPath", ".status"),
    ] {
        let field_path = format!("{path}.scale.{field}");
        let value = text(scale, field);
        if value.is_empty() {
            errors.push(Cause::required(field_path));
        } else if simple_json_path(value, &field_path, errors)
            && !value.starts_with(&format!("{under}."))
        {
            errors.push(Cause::invalid(
                field_path,
                &string(value),
                format!("should be a json path under {under}"),
            ));
        }
    }
    let selector = text(scale, "labelSelectorPath");
    let field_path = format!("{path}.scale.labelSelectorPath");
    if !selector.is_empty()
        && simple_json_path(selector, &field_path, errors)
        && !selector.starts_with(".spec.")
        && !selector.starts_with(".status.")
    {
        errors.push(Cause::invalid(
            field_path,
            &string(selector),
            "should be a json path under either .spec or .status",
        ));
    }
}

fn validate_conversion(conversion: &Value, strategy: &str, opts: &Options, errors: &mut Errors) {
    enum_string(
        errors,
        "spec.conversion.strategy",
        strategy,
        &["None", "Webhook"],
    );
    let webhook = present(conversion, "webhook");
    let client = webhook.and_then(|w| present(w, "clientConfig"));
    let review = webhook
        .map(|w| list(w, "conversionReviewVersions"))
        .unwrap_or_default();
    let client_path = "spec.conversion.webhookClientConfig";
    let review_path = "spec.conversion.conversionReviewVersions";
    if strategy != "Webhook" {
        if client.is_some() {
            errors.push(Cause::forbidden(
                client_path,
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !review.is_empty() {
            errors.push(Cause::forbidden(
                review_path,
                "should not be set when strategy is not set to Webhook",
            ));
        }
        return;
    }
    match client {
        None => errors.push(required(
            client_path,
            "required when strategy is set to Webhook",
        )),
        Some(client) => match (present(client, "url"), present(client, "service")) {
            (Some(url), None) => webhook_url(
                &format!("{client_path}.url"),
                url.as_str().unwrap_or_default(),
                errors,
            ),
            (None, Some(service)) => {
                webhook_service(&format!("{client_path}.service"), service, errors)
            }
            _ => errors.push(required(
                client_path,
                "exactly one of url or service is required",
            )),
        },
    }
    if review.is_empty() {
        errors.push(Cause::required(review_path));
        return;
    }
    let mut seen = HashSet::new();
    let mut recognized = false;
    for (i, version) in review.iter().enumerate() {
        let version = version.as_str().unwrap_or_default();
        let field = format!("{review_path}[{i}]");
        if !seen.insert(version) {
            errors.push(Cause::invalid(field, &string(version), "duplicate version"));
            continue;
        }
        if let Err(e) = names::dns1035_label(version) {
            errors.push(Cause::invalid(field, &string(version), e));
        }
        recognized |= REVIEW_VERSIONS.contains(&version);
    }
    if opts.require_review_version && !recognized {
        errors.push(invalid_go(
            review_path,
            go_strings(review),
            &format!(
                "must include at least one of {}",
                REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
}

fn webhook_url(path: &str, raw: &str, errors: &mut Errors) {
    const FORM: &str = "; desired format: https://host[/path]";
    let url = match GoUrl::parse(raw, false) {
        Ok(url) => url,
        Err(e) => {
            errors.push(required(
                path,
                &format!("url must be a valid URL: parse {raw:?}: {e}{FORM}"),
            ));
            return;
        }
    };
    if url.scheme != "https" {
        errors.push(Cause::invalid(
            path,
            &string(&url.scheme),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    if url.host.is_empty() {
        errors.push(Cause::invalid(
            path,
            &string(""),
            format!("host must be specified{FORM}"),
        ));
    }
    if let Some(user) = url.user {
        errors.push(Cause::invalid(
            path,
            &string(&user),
            "user information is not permitted in the URL",
        ));
    }
    if !url.fragment.is_empty() {
        errors.push(Cause::invalid(
            path,
            &string(&url.fragment),
            "fragments are not permitted in the URL",
        ));
    }
    if !url.query.is_empty() {
        errors.push(Cause::invalid(
            path,
            &string(&url.query),
            "query parameters are not permitted in the URL",
        ));
    }
}

fn webhook_service(path: &str, service: &Value, errors: &mut Errors) {
    if text(service, "name").is_empty() {
        errors.push(required(format!("{path}.name"), "service name is required"));
    }
    if text(service, "namespace").is_empty() {
        errors.push(required(
            format!("{path}.namespace"),
            "service namespace is required",
        ));
    }
    // v1 defaults the port to 443.
    let port = service.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errors.push(Cause::invalid(
            format!("{path}.port"),
            &Value::from(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let Some(url_path) = service.get("path").and_then(Value::as_str) else {
        return;
    };
    let field = format!("{path}.path");
    if url_path.is_empty() || url_path == "/" {
        return;
    }
    if url_path == "//" {
        errors.push(Cause::invalid(
            field,
            &string(url_path),
            "segment[0] may not be empty",
        ));
        return;
    }
    if !url_path.starts_with('/') {
        errors.push(Cause::invalid(
            &*field,
            &string(url_path),
            "must start with a '/'",
        ));
    }
    let trimmed = url_path.get(1..).unwrap_or_default();
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    for (i, step) in trimmed.split('/').enumerate() {
        if step.is_empty() {
            errors.push(Cause::invalid(
                &*field,
                &string(url_path),
                format!("segment[{i}] may not be empty"),
            ));
        } else if let Err(e) = names::dns1123_subdomain(step) {
            errors.push(Cause::invalid(
                &*field,
                &string(url_path),
                format!("segment[{i}]: {e}"),
            ));
        }
    }
}

/// The parts of a URL Go's `url.Parse` tells apart that the webhook checks need.
#[derive(Debug, Default)]
struct GoUrl {
    scheme: String,
    user: Option<String>,
    host: String,
    query: String,
    fragment: String,
}

impl GoUrl {
    /// Parses as Go's `url.Parse` (or, with `request`, `url.ParseRequestURI`); the error
    /// is the part of Go's message after `parse "<url>": `.
    fn parse(raw: &str, request: bool) -> Result<GoUrl, String> {
        let mut url = GoUrl::default();
        let mut rest = raw;
        if !request && let Some((before, fragment)) = rest.split_once('#') {
            url.fragment = fragment.to_owned();
            rest = before;
        }
        if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("net/url: invalid control character in URL".into());
        }
        if rest.is_empty() && request {
            return Err("empty url".into());
        }
        for (i, c) in rest.char_indices() {
            match c {
                'a'..='z' | 'A'..='Z' => {}
                '0'..='9' | '+' | '-' | '.' if i > 0 => {}
                ':' if i == 0 => return Err("missing protocol scheme".into()),
                ':' => {
                    url.scheme = rest[..i].to_ascii_lowercase();
                    rest = &rest[i + 1..];
                    break;
                }
                _ => break,
            }
        }
        if let Some((before, query)) = rest.split_once('?') {
            url.query = query.to_owned();
            rest = before;
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                return Ok(url); // opaque, as `mailto:x`
            }
            if request {
                return Err("invalid URI for request".into());
            }
            if rest
                .split('/')
                .next()
                .is_some_and(|segment| segment.contains(':'))
            {
                return Err("first path segment in URL cannot contain colon".into());
            }
        }
        if (!url.scheme.is_empty() || !request && !rest.starts_with("///"))
            && rest.starts_with("//")
        {
            let authority = rest[2..].split('/').next().unwrap_or_default();
            let host = match authority.rsplit_once('@') {
                Some((user, host)) => {
                    url.user = Some(user.to_owned());
                    host
                }
                None => authority,
            };
            let port = host.rsplit_once(']').map_or(host, |(_, after)| after);
            if let Some((_, port)) = port.rsplit_once(':')
                && !port.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!("invalid port \":{port}\" after host"));
            }
            url.host = host.to_owned();
        }
        Ok(url)
    }
}

/// Status as upstream's strategy prepares it: the old stored versions (none on create)
/// plus the first version marked as storage.
fn stored_versions(versions: &[Value], old: Option<&Value>) -> Vec<String> {
    let mut stored: Vec<String> = old
        .map(|o| {
            super::items(o, "/status/storedVersions")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(storage) = versions.iter().find(|v| is_true(v, "storage")) {
        let name = text(storage, "name");
        if !stored.iter().any(|s| s == name) {
            stored.push(name.to_owned());
        }
    }
    stored
}

fn validate_stored_versions(stored: &[String], versions: &[Value], errors: &mut Errors) {
    let path = "status.storedVersions";
    if stored.is_empty() {
        errors.push(invalid_go(
            path,
            "[]string(nil)".into(),
            "must have at least one stored version",
        ));
        return;
    }
    let rendered = || {
        let quoted: Vec<String> = stored.iter().map(|s| format!("{s:?}")).collect();
        format!("[]string{{{}}}", quoted.join(", "))
    };
    let mut remaining: BTreeMap<&str, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    for version in versions {
        let name = text(version, "name");
        let found = remaining.remove(name).is_some();
        if is_true(version, "storage") && !found {
            errors.push(invalid_go(
                path,
                rendered(),
                &format!("must have the storage version {name}"),
            ));
        }
    }
    let mut left: Vec<(usize, &str)> = remaining.into_iter().map(|(name, i)| (i, name)).collect();
    left.sort();
    for (i, name) in left {
        errors.push(Cause::invalid(
            format!("{path}[{i}]"),
            &string(name),
            "must appear in spec.versions",
        ));
    }
}

/// Groups under `k8s.io` and `kubernetes.io` need an API review's approval annotation.
fn validate_approval(obj: &Value, old: Option<&Value>, group: &str, errors: &mut Errors) {
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|d| group == *d || group.ends_with(&format!(".{d}")));
    if !protected {
        return;
    }
    let annotation = |o: &Value| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(APPROVAL_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let new = annotation(obj);
    let state = approval_state(&new);
    if old.is_some_and(|o| approval_state(&annotation(o)) == state) {
        return;
    }
    let field = format!("metadata.annotations[{APPROVAL_ANNOTATION}]");
    match state {
        Approval::Missing => errors.push(required(
            field,
            &format!("protected groups must have approval annotation {APPROVAL_ANNOTATION:?}, see https://github.com/kubernetes/enhancements/pull/1111"),
        )),
        Approval::Invalid => errors.push(Cause::invalid(
            field,
            &string(&new),
            format!("protected groups must have approval annotation {APPROVAL_ANNOTATION:?} with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"),
        )),
        Approval::Approved | Approval::Bypassed => {}
    }
}

#[derive(PartialEq, Eq)]
enum Approval {
    Missing,
    Bypassed,
    Approved,
    Invalid,
}

fn approval_state(annotation: &str) -> Approval {
    if annotation.is_empty() {
        Approval::Missing
    } else if annotation.starts_with("unapproved") {
        Approval::Bypassed
    } else if GoUrl::parse(annotation, true)
        .is_ok_and(|u| !u.scheme.is_empty() && !u.host.is_empty())
    {
        Approval::Approved
    } else {
        Approval::Invalid
    }
}

// ---- schemas ----

/// Validates one `CustomResourceValidation` (`{openAPIV3Schema: ...}`) at `prefix`.
fn validate_schema(
    validation: Option<&Value>,
    status: bool,
    prefix: &str,
    opts: &Options,
    errors: &mut Errors,
) {
    let Some(schema) = validation
        .and_then(|v| v.get("openAPIV3Schema"))
        .filter(|s| s.is_object())
    else {
        return;
    };
    let path = format!("{prefix}.openAPIV3Schema");
    let mut found = Vec::new();
    if status {
        status_root(schema, &path, &mut found);
    }
    if is_true(schema, "nullable") {
        found.push(Cause::forbidden(
            format!("{path}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let mut init_errors = Vec::new();
    if opts.require_structural {
        match unsupported(schema) {
            Some(e) => init_errors.push(Cause::invalid(&*path, &string(""), e)),
            None => found.extend(structural(schema, &path)),
        }
    }
    let walk = Walk {
        opts,
        forbid_defaults: None,
        inside_meta: false,
    };
    walk.schema(schema, &path, true, &mut found);
    if found.is_empty() {
        found = init_errors;
    }
    for cause in found {
        errors.push(cause);
    }
}

/// With the status subresource, the root may only hold keywords that keep their meaning
/// when `properties.status` is split off.
fn status_root(schema: &Value, path: &str, found: &mut Vec<Cause>) {
    // Upstream's JSONSchemaProps fields in declaration order, by JSON name.
    const ORDER: [&str; 44] = [
        "id",
        "$schema",
        "$ref",
        "description",
        "type",
        "nullable",
        "format",
        "title",
        "default",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "properties",
        "additionalProperties",
        "patternProperties",
        "dependencies",
        "additionalItems",
        "definitions",
        "externalDocs",
        "example",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    ];
    const ALLOWED: [&str; 22] = [
        "description",
        "type",
        "format",
        "title",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "required",
        "items",
        "properties",
        "externalDocs",
        "example",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-validations",
    ];
    for key in ORDER {
        let Some(value) = schema.get(key).filter(|v| !go_zero(v)) else {
            continue;
        };
        if key == "type" {
            if value.as_str() != Some("object") {
                found.push(Cause::invalid(
                    format!("{path}.type"),
                    value,
                    "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                ));
                return;
            }
            continue;
        }
        if !ALLOWED.contains(&key) {
            found.push(Cause::invalid(
                path,
                schema,
                format!("only {ROOT_FIELDS_WITH_STATUS} fields are allowed at the root of the schema if the status subresource is enabled"),
            ));
            return;
        }
    }
}

/// Whether a decoded field holds its Go zero value (false, "", nil).
fn go_zero(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false)) || value.as_str() == Some("")
}

/// The checks of upstream's schema walk (`ValidateCustomResourceDefinitionOpenAPISchema`).
#[derive(Clone)]
struct Walk<'o> {
    opts: &'o Options,
    /// Why defaults are forbidden here, if they are.
    forbid_defaults: Option<String>,
    /// Inside `metadata`, `kind` or `apiVersion` of a resource.
    inside_meta: bool,
}

impl Walk<'_> {
    fn forbidding_defaults(&self, reason: String) -> Self {
        Walk {
            forbid_defaults: Some(reason),
            ..self.clone()
        }
    }

    fn schema(&self, s: &Value, path: &str, root: bool, out: &mut Vec<Cause>) {
        if !s.is_object() {
            return;
        }
        let ty = text(s, "type");
        if self.opts.require_valid_type && !ty.is_empty() && !OPENAPI_TYPES.contains(&ty) {
            out.push(Cause::not_supported(
                format!("{path}.type"),
                &string(ty),
                &OPENAPI_TYPES,
            ));
        }
        if let (Some(_), Some(reason)) = (present(s, "default"), &self.forbid_defaults) {
            out.push(Cause::forbidden(
                format!("{path}.default"),
                format!("must not be set {reason}"),
            ));
        }
        if !text(s, "id").is_empty() {
            out.push(Cause::forbidden(
                format!("{path}.id"),
                "id is not supported",
            ));
        }
        if present(s, "additionalItems").is_some() {
            out.push(Cause::forbidden(
                format!("{path}.additionalItems"),
                "additionalItems is not supported",
            ));
        }
        if !entries(s, "patternProperties").is_empty() {
            out.push(Cause::forbidden(
                format!("{path}.patternProperties"),
                "patternProperties is not supported",
            ));
        }
        if !entries(s, "definitions").is_empty() {
            out.push(Cause::forbidden(
                format!("{path}.definitions"),
                "definitions is not supported",
            ));
        }
        if present(s, "dependencies").is_some() {
            out.push(Cause::forbidden(
                format!("{path}.dependencies"),
                "dependencies is not supported",
            ));
        }
        if present(s, "$ref").is_some() {
            out.push(Cause::forbidden(
                format!("{path}.$ref"),
                "$ref is not supported",
            ));
        }
        if ty == "null" {
            out.push(Cause::forbidden(
                format!("{path}.type"),
                "type cannot be set to null, use nullable as an alternative",
            ));
        }
        if s.get("items")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            out.push(Cause::forbidden(
                format!("{path}.items"),
                "items must be a schema object and not an array",
            ));
        }
        if self.inside_meta && is_true(s, "x-kubernetes-embedded-resource") {
            out.push(Cause::forbidden(
                format!("{path}.x-kubernetes-embedded-resource"),
                "must not be used inside of resource meta",
            ));
        }
        if is_true(s, "uniqueItems") {
            out.push(Cause::forbidden(
                format!("{path}.uniqueItems"),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ));
        }
        let properties = entries(s, "properties");
        if let Some(additional) = present(s, "additionalProperties") {
            if !properties.is_empty()
                && (additional.as_bool() == Some(false) || additional.is_object())
            {
                out.push(Cause::forbidden(
                    format!("{path}.additionalProperties"),
                    "additionalProperties and properties are mutual exclusive",
                ));
            }
            let sub = if self.inside_meta {
                self.forbidding_defaults(
                    "inside additionalProperties applying to object metadata".into(),
                )
            } else {
                self.clone()
            };
            sub.schema(
                additional,
                &format!("{path}.additionalProperties"),
                false,
                out,
            );
        }
        let embedded = is_true(s, "x-kubernetes-embedded-resource");
        for (key, property) in &properties {
            let mut sub = self.clone();
            if (root || embedded) && matches!(key.as_str(), "metadata" | "kind" | "apiVersion") {
                sub.inside_meta = true;
                if root {
                    sub = sub.forbidding_defaults(format!("in top-level {key}"));
                }
            }
            sub.schema(property, &format!("{path}.properties[{key}]"), false, out);
        }
        if let Some(not) = present(s, "not") {
            self.schema(not, &format!("{path}.not"), false, out);
        }
        for junctor in ["allOf", "oneOf", "anyOf"] {
            for (i, sub) in list(s, junctor).iter().enumerate() {
                self.schema(sub, &format!("{path}.{junctor}[{i}]"), false, out);
            }
        }
        for (key, definition) in entries(s, "definitions") {
            self.schema(
                definition,
                &format!("{path}.definitions[{key}]"),
                false,
                out,
            );
        }
        match s.get("items") {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.schema(item, &format!("{path}.items[{i}]"), false, out);
                }
            }
            Some(item) => self.schema(item, &format!("{path}.items"), false, out),
            None => {}
        }
        for (key, dependency) in entries(s, "dependencies") {
            self.schema(
                dependency,
                &format!("{path}.dependencies[{key}]"),
                false,
                out,
            );
        }
        if s.get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(false)
        {
            out.push(Cause::invalid(
                format!("{path}.x-kubernetes-preserve-unknown-fields"),
                &Value::Bool(false),
                "must be true or undefined",
            ));
        }
        self.list_and_map_types(s, path, out);
        if self.opts.require_map_list_keys {
            out.extend(map_list_key_errors(s, path));
        }
        for (i, rule) in list(s, "x-kubernetes-validations").iter().enumerate() {
            validation_rule(
                s,
                rule,
                &format!("{path}.x-kubernetes-validations[{i}]"),
                out,
            );
        }
    }

    fn list_and_map_types(&self, s: &Value, path: &str, out: &mut Vec<Cause>) {
        let ty = text(s, "type");
        let map_type = present(s, "x-kubernetes-map-type");
        let list_type = present(s, "x-kubernetes-list-type");
        let type_must_be = |out: &mut Vec<Cause>, wanted: &str, detail: &str| {
            if ty.is_empty() {
                out.push(required(format!("{path}.type"), detail));
            } else if ty != wanted {
                out.push(Cause::invalid(format!("{path}.type"), &string(ty), detail));
            }
        };
        if let Some(map_type) = map_type {
            type_must_be(
                out,
                "object",
                "must be object if x-kubernetes-map-type is specified",
            );
            if !matches!(map_type.as_str(), Some("atomic" | "granular")) {
                out.push(Cause::not_supported(
                    format!("{path}.x-kubernetes-map-type"),
                    map_type,
                    &["atomic", "granular"],
                ));
            }
        }
        let items = s.get("items").filter(|i| i.is_object());
        if let Some(list_type) = list_type {
            if ty != "array" {
                type_must_be(
                    out,
                    "array",
                    "must be array if x-kubernetes-list-type is specified",
                );
            } else if let (true, Some("set"), Some(item)) =
                (self.opts.require_atomic_set, list_type.as_str(), items)
            {
                let set_item = "must be atomic as item of a list with x-kubernetes-list-type=set";
                let item_list_type = present(item, "x-kubernetes-list-type");
                match text(item, "type") {
                    "array" if item_list_type.is_some_and(|t| t.as_str() != Some("atomic")) => {
                        out.push(Cause::invalid(
                            format!("{path}.items.x-kubernetes-list-type"),
                            item_list_type.unwrap_or(&Value::Null),
                            set_item,
                        ));
                    }
                    // Upstream reports the item's list type here, not its map type.
                    "object" if text(item, "x-kubernetes-map-type") != "atomic" => {
                        out.push(Cause::invalid(
                            format!("{path}.items.x-kubernetes-map-type"),
                            item_list_type.unwrap_or(&Value::Null),
                            set_item,
                        ));
                    }
                    _ => {}
                }
            }
            if !matches!(list_type.as_str(), Some("atomic" | "set" | "map")) {
                out.push(Cause::not_supported(
                    format!("{path}.x-kubernetes-list-type"),
                    list_type,
                    &["atomic", "set", "map"],
                ));
            }
        }
        let keys = list(s, "x-kubernetes-list-map-keys");
        if !keys.is_empty() {
            match list_type {
                None => out.push(required(
                    format!("{path}.x-kubernetes-list-type"),
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )),
                Some(t) if t.as_str() != Some("map") => {
                    out.push(Cause::invalid(
                        format!("{path}.x-kubernetes-list-type"),
                        t,
                        "must be map if x-kubernetes-list-map-keys is non-empty",
                    ));
                }
                Some(_) => {}
            }
        }
        if list_type.and_then(Value::as_str) != Some("map") {
            return;
        }
        if keys.is_empty() {
            out.push(required(
                format!("{path}.x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match present(s, "items") {
            None => out.push(required(
                format!("{path}.items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(items @ Value::Array(_)) => {
                out.push(Cause::invalid(
                    format!("{path}.items"),
                    items,
                    "must only have a single schema if x-kubernetes-list-type is map",
                ));
            }
            Some(item) if text(item, "type") != "object" => {
                out.push(Cause::invalid(
                    format!("{path}.items.type"),
                    &string(text(item, "type")),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            }
            Some(item) => {
                let mut seen = HashSet::new();
                for key in keys {
                    let key_name = key.as_str().unwrap_or_default();
                    match item.get("properties").and_then(|p| p.get(key_name)) {
                        // Upstream reports the item's type here.
                        Some(property) if matches!(text(property, "type"), "array" | "object") => out.push(Cause::invalid(
                            format!("{path}.items.properties[{key_name}].type"),
                            &string("object"),
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        )),
                        Some(_) => {}
                        None => out.push(invalid_go(
                            format!("{path}.x-kubernetes-list-map-keys"),
                            go_strings(keys),
                            "entries must all be names of item properties",
                        )),
                    }
                    if !seen.insert(key_name) {
                        out.push(invalid_go(
                            format!("{path}.x-kubernetes-list-map-keys"),
                            go_strings(keys),
                            "must not contain duplicate entries",
                        ));
                    }
                }
            }
        }
    }
}

/// Items of `set` and `map` lists may not be nullable; map keys must be required or defaulted.
fn map_list_key_errors(s: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let (Some(item), Some(list_type)) = (
        s.get("items").filter(|i| i.is_object()),
        s.get("x-kubernetes-list-type").and_then(Value::as_str),
    ) else {
        return out;
    };
    if list_type != "set" && list_type != "map" {
        return out;
    }
    if is_true(item, "nullable") {
        out.push(Cause::forbidden(
            format!("{path}.items.nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {list_type}"),
        ));
    }
    if list_type == "map" {
        let required_keys: Vec<&str> = list(item, "required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for key in list(s, "x-kubernetes-list-map-keys")
            .iter()
            .filter_map(Value::as_str)
        {
            let Some(property) = item.get("properties").and_then(|p| p.get(key)) else {
                continue;
            };
            if !required_keys.contains(&key) && present(property, "default").is_none() {
                out.push(required(
                    format!("{path}.items.properties[{key}].default"),
                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                ));
            }
            if is_true(property, "nullable") {
                out.push(Cause::forbidden(
                    format!("{path}.items.properties[{key}].nullable"),
                    "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                ));
            }
        }
    }
    out
}

/// A set list whose items are not atomic (old CRDs may keep one).
fn non_atomic_set(s: &Value) -> bool {
    let Some(item) = s.get("items").filter(|i| i.is_object()) else {
        return false;
    };
    if text(s, "x-kubernetes-list-type") != "set" {
        return false;
    }
    match text(item, "type") {
        "array" => {
            present(item, "x-kubernetes-list-type").is_some_and(|t| t.as_str() != Some("atomic"))
        }
        "object" => text(item, "x-kubernetes-map-type") != "atomic",
        _ => false,
    }
}

/// The static checks of one `x-kubernetes-validations` rule (CEL is not compiled).
fn validation_rule(s: &Value, rule: &Value, path: &str, out: &mut Vec<Cause>) {
    let newlines = |t: &str| t.contains(['\n', '\r']);
    let text_of = |key| rule.get(key).and_then(Value::as_str).unwrap_or_default();
    let (expression, message, message_expression) = (
        text_of("rule").trim(),
        text_of("message"),
        text_of("messageExpression"),
    );
    if expression.is_empty() {
        out.push(required(format!("{path}.rule"), "rule is not specified"));
    } else if !message.is_empty() && message.trim().is_empty() {
        out.push(Cause::invalid(
            format!("{path}.message"),
            &string(message),
            "message must be non-empty if specified",
        ));
    } else if newlines(message.trim()) {
        out.push(Cause::invalid(
            format!("{path}.message"),
            &string(message),
            "message must not contain line breaks",
        ));
    } else if newlines(expression) && message.trim().is_empty() {
        out.push(required(
            format!("{path}.message"),
            "message must be specified if rule contains line breaks",
        ));
    }
    if !message_expression.is_empty() && message_expression.trim().is_empty() {
        out.push(required(
            format!("{path}.messageExpression"),
            "messageExpression must be non-empty if specified",
        ));
    }
    if let Some(reason) = present(rule, "reason")
        && !reason
            .as_str()
            .is_some_and(|r| VALIDATION_REASONS.contains(&r))
    {
        out.push(Cause::not_supported(
            format!("{path}.reason"),
            reason,
            &VALIDATION_REASONS,
        ));
    }
    let field_path = text_of("fieldPath");
    if !field_path.is_empty() && field_path.trim().is_empty() {
        out.push(Cause::invalid(
            format!("{path}.fieldPath"),
            &string(field_path),
            "fieldPath must be non-empty if specified",
        ));
    }
    if newlines(field_path) {
        out.push(Cause::invalid(
            format!("{path}.fieldPath"),
            &string(field_path),
            "fieldPath must not contain line breaks",
        ));
    }
    if !field_path.is_empty()
        && unsupported(s).is_none()
        && resolve_field_path(field_path, s, true).is_err()
    {
        out.push(Cause::invalid(
            format!("{path}.fieldPath"),
            &string(field_path),
            "fieldPath must be a valid path",
        ));
    }
}

fn selectable_fields(
    fields: &[Value],
    schema: Option<&Value>,
    schema_path: &str,
    path: &str,
    errors: &mut Errors,
) {
    let Some(schema) = schema.filter(|s| s.is_object()) else {
        return;
    };
    if let Some(e) = unsupported(schema) {
        errors.push(Cause::invalid(schema_path, &string(""), e));
        return;
    }
    let mut unique = HashSet::new();
    for (i, selectable) in fields.iter().enumerate() {
        let field = format!("{path}[{i}].jsonPath");
        let json_path = text(selectable, "jsonPath");
        if json_path.is_empty() {
            errors.push(Cause::required(field));
            continue;
        }
        let (resolved, found) = match resolve_field_path(json_path, schema, false) {
            Ok(ok) => ok,
            Err(e) => {
                errors.push(Cause::invalid(
                    field,
                    &string(json_path),
                    format!("is an invalid path: {e}"),
                ));
                continue;
            }
        };
        if resolved.split(['.', '[']).next() == Some("metadata") {
            errors.push(Cause::invalid(
                &*field,
                &string(json_path),
                "must not point to fields in metadata",
            ));
        }
        if !found.is_some_and(|f| matches!(text(f, "type"), "string" | "boolean" | "integer")) {
            errors.push(Cause::invalid(
                &*field,
                &string(json_path),
                "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
            ));
        }
        if !unique.insert(resolved) {
            errors.push(Cause::duplicate(field, &string(json_path)));
        }
    }
    if unique.len() > MAX_SELECTABLE_FIELDS {
        errors.push(Cause {
            reason: "FieldValueTooMany",
            field: path.into(),
            message: format!(
                "Too many: {}: must have at most {MAX_SELECTABLE_FIELDS} items",
                unique.len()
            ),
        });
    }
}

/// Follows a JSON path of field (`.a`) and, with `arrays`, map-key (`['a']`) accessors
/// through a structural schema: the path in field-path form and the schema it reaches.
fn resolve_field_path<'a>(
    json_path: &str,
    schema: &'a Value,
    arrays: bool,
) -> Result<(String, Option<&'a Value>), String> {
    let mut tokens = Vec::new();
    let mut rest = json_path;
    while !rest.is_empty() {
        let len = if rest.starts_with('\'') {
            let bytes = rest.as_bytes();
            (1..bytes.len())
                .find(|&i| bytes[i] == b'\'' && bytes[i - 1] != b'\\')
                .map_or(rest.len(), |i| i + 1)
        } else if rest.starts_with(['.', '[', ']']) {
            1
        } else {
            rest.find(['.', '[', ']']).unwrap_or(rest.len())
        };
        tokens.push(&rest[..len]);
        rest = &rest[len..];
    }
    let end = || "unexpected end of JSON path".to_owned();
    let mut resolved = String::new();
    let mut node = Some(schema);
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        let name = match token {
            "[" => {
                if !arrays {
                    return Err("array notation is not allowed".into());
                }
                let quoted = tokens.next().ok_or_else(end)?;
                if quoted.len() < 2 || !quoted.starts_with('\'') || !quoted.ends_with('\'') {
                    return Err(format!("expected single quoted string but got {quoted}"));
                }
                let name = quoted[1..quoted.len() - 1]
                    .replace("\\'", "'")
                    .replace("\\\\", "\\");
                match tokens.next() {
                    None => return Err(end()),
                    Some("]") => name,
                    Some(other) => return Err(format!("expected ] but got {other}")),
                }
            }
            "." => tokens.next().ok_or_else(end)?.to_owned(),
            other => return Err(format!("expected [ or . but got: {other}")),
        };
        let current = node.ok_or("does not refer to a valid field")?;
        let properties = entries(current, "properties");
        if !properties.is_empty() {
            node = Some(
                properties
                    .into_iter()
                    .find(|(k, _)| **k == name)
                    .ok_or("does not refer to a valid field")?
                    .1,
            );
            if !resolved.is_empty() {
                resolved.push('.');
            }
            resolved.push_str(&name);
        } else if let Some(additional) = present(current, "additionalProperties") {
            node = additional.is_object().then_some(additional);
            resolved.push_str(&format!("[{name}]"));
        } else {
            return Err("does not refer to a valid field".into());
        }
    }
    Ok((resolved, node))
}

// ---- structural schemas (upstream's `apiserver/schema` package) ----

/// Why upstream cannot build a structural schema from `s`, if it cannot.
fn unsupported(s: &Value) -> Option<&'static str> {
    if !s.is_object() {
        return None;
    }
    let checks: [(bool, &'static str); 7] = [
        (
            !text(s, "id").is_empty(),
            "OpenAPIV3Schema 'id' is not supported",
        ),
        (
            !text(s, "$schema").is_empty(),
            "OpenAPIV3Schema 'schema' is not supported",
        ),
        (
            !text(s, "$ref").is_empty(),
            "OpenAPIV3Schema '$ref' is not supported",
        ),
        (
            !entries(s, "patternProperties").is_empty(),
            "OpenAPIV3Schema 'patternProperties' is not supported",
        ),
        (
            !entries(s, "dependencies").is_empty(),
            "OpenAPIV3Schema 'dependencies' is not supported",
        ),
        (
            present(s, "additionalItems").is_some(),
            "OpenAPIV3Schema 'additionalItems' is not supported",
        ),
        (
            !entries(s, "definitions").is_empty(),
            "OpenAPIV3Schema 'definitions' is not supported",
        ),
    ];
    if let Some((_, e)) = checks.iter().find(|(bad, _)| *bad) {
        return Some(*e);
    }
    let nested = present(s, "not")
        .into_iter()
        .chain(["allOf", "anyOf", "oneOf"].iter().flat_map(|j| list(s, j)));
    for sub in nested {
        if let Some(e) = unsupported(sub) {
            return Some(e);
        }
    }
    if s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(false)
    {
        return Some(
            "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined",
        );
    }
    match s.get("items") {
        Some(Value::Array(items)) if !items.is_empty() => {
            return Some("OpenAPIV3Schema 'items' must be a schema, but is an array");
        }
        Some(item) => {
            if let Some(e) = unsupported(item) {
                return Some(e);
            }
        }
        None => {}
    }
    entries(s, "properties")
        .into_iter()
        .map(|(_, p)| p)
        .chain(present(s, "additionalProperties"))
        .find_map(unsupported)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Upstream's `ValidateStructural`: the invariants and completeness of a structural
/// schema, sorted as upstream sorts them.
fn structural(s: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    invariants(s, Level::Root, path, &mut out);
    completeness(s, path, &mut out);
    out.sort_by_cached_key(|c| format!("{}: {}", c.field, c.message));
    out
}

fn invariants(s: &Value, lvl: Level, path: &str, out: &mut Vec<Cause>) {
    if !s.is_object() {
        return;
    }
    let ty = text(s, "type");
    let items = s.get("items").filter(|i| i.is_object());
    if ty == "array" && items.is_none() {
        out.push(required(format!("{path}.items"), "must be specified"));
    }
    if let Some(items) = items {
        invariants(items, Level::Item, &format!("{path}.items"), out);
    }
    let properties = entries(s, "properties");
    for (key, property) in &properties {
        invariants(
            property,
            Level::Field,
            &format!("{path}.properties[{key}]"),
            out,
        );
    }
    let additional = present(s, "additionalProperties");
    if let Some(additional) = additional {
        if lvl == Level::Root {
            out.push(Cause::forbidden(
                format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if additional.is_object() {
            invariants(
                additional,
                Level::Field,
                &format!("{path}.additionalProperties"),
                out,
            );
        }
    }
    let int_or_string = is_true(s, "x-kubernetes-int-or-string");
    let preserve = is_true(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = is_true(s, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        out.push(Cause::invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        out.push(Cause::invalid(
            format!("{path}.x-kubernetes-embedded-resource"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = int_or_string_any_of(s);
    let skip_first_all_of_any_of = list(s, "allOf").first().is_some_and(int_or_string_any_of);
    value_validation(s, skip_any_of, skip_first_all_of_any_of, lvl, path, out);

    if embedded && ty != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        if ty.is_empty() {
            out.push(required(format!("{path}.type"), detail));
        } else {
            out.push(Cause::invalid(format!("{path}.type"), &string(ty), detail));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(required(format!("{path}.type"), detail));
    }
    if embedded && additional.is_some() {
        out.push(Cause::forbidden(
            format!("{path}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        out.push(Cause::invalid(
            format!("{path}.type"),
            &string(ty),
            "must be object at the root",
        ));
    }
    let check_metadata = lvl == Level::Root || embedded;
    for key in ["kind", "apiVersion"] {
        if let Some((_, property)) = properties
            .iter()
            .find(|(k, _)| *k == key)
            .filter(|_| check_metadata)
            && text(property, "type") != "string"
        {
            out.push(Cause::invalid(
                format!("{path}.properties[{key}].type"),
                &string(text(property, "type")),
                "must be string",
            ));
        }
    }
    if let Some((_, metadata)) = properties.iter().find(|(k, _)| *k == "metadata") {
        let metadata_path = format!("{path}.properties[metadata]");
        if check_metadata && text(metadata, "type") != "object" {
            out.push(Cause::invalid(
                format!("{metadata_path}.type"),
                &string(text(metadata, "type")),
                "must be object",
            ));
        }
        if lvl == Level::Root && metadata_restricts_more(metadata) {
            out.push(Cause::forbidden(metadata_path, "must not specify anything other than name and generateName, but metadata is implicitly specified"));
        }
    }
    if embedded && !preserve && properties.is_empty() {
        out.push(required(format!("{path}.properties"), "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"));
    }
}

/// The root `metadata` schema may only restrict `name` and `generateName` (and give a type).
fn metadata_restricts_more(metadata: &Value) -> bool {
    let Some(map) = metadata.as_object() else {
        return false;
    };
    map.iter().any(|(key, value)| match key.as_str() {
        // Cleared before the comparison, or not part of a structural schema.
        "type" | "default" | "example" | "externalDocs" => false,
        "properties" => {
            let keys: Vec<&String> = value
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            !keys.iter().all(|k| *k == "name" || *k == "generateName")
        }
        "enum" | "allOf" | "anyOf" | "oneOf" => value.as_array().is_some_and(|a| !a.is_empty()),
        "items" => value.is_object(),
        _ => !go_zero(value),
    })
}

/// `anyOf: [{type: integer}, {type: string}]`, the int-or-string pattern.
fn int_or_string_any_of(s: &Value) -> bool {
    let any_of = list(s, "anyOf");
    let only_type = |v: &Value, ty: &str| {
        v.as_object().is_some_and(|m| {
            m.iter().all(|(k, v)| {
                if k == "type" {
                    v.as_str() == Some(ty)
                } else {
                    go_zero(v)
                }
            })
        })
    };
    any_of.len() == 2 && only_type(&any_of[0], "integer") && only_type(&any_of[1], "string")
}

fn value_validation(
    v: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    lvl: Level,
    path: &str,
    out: &mut Vec<Cause>,
) {
    if !skip_any_of {
        for (i, sub) in list(v, "anyOf").iter().enumerate() {
            nested(sub, false, lvl, &format!("{path}.anyOf[{i}]"), out);
        }
    }
    for (i, sub) in list(v, "allOf").iter().enumerate() {
        nested(
            sub,
            skip_first_all_of_any_of && i == 0,
            lvl,
            &format!("{path}.allOf[{i}]"),
            out,
        );
    }
    for (i, sub) in list(v, "oneOf").iter().enumerate() {
        nested(sub, false, lvl, &format!("{path}.oneOf[{i}]"), out);
    }
    if let Some(not) = present(v, "not") {
        nested(not, false, lvl, &format!("{path}.not"), out);
    }
    let pattern = text(v, "pattern");
    if let Err(e) = go_regexp(pattern) {
        out.push(Cause::invalid(
            format!("{path}.pattern"),
            &string(pattern),
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

/// A value validation under `allOf`, `anyOf`, `oneOf` or `not`: it may not say anything
/// structural.
fn nested(v: &Value, skip_any_of: bool, lvl: Level, path: &str, out: &mut Vec<Cause>) {
    if !v.is_object() {
        return;
    }
    value_validation(v, skip_any_of, false, lvl, path, out);
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        nested(items, false, lvl, &format!("{path}.items"), out);
    }
    let properties = entries(v, "properties");
    for (key, property) in &properties {
        nested(
            property,
            false,
            Level::Field,
            &format!("{path}.properties[{key}]"),
            out,
        );
    }
    let forbid = |out: &mut Vec<Cause>, field: &str, detail: &str| {
        out.push(Cause::forbidden(format!("{path}.{field}"), detail))
    };
    if !text(v, "type").is_empty() {
        forbid(out, "type", "must be empty to be structural");
    }
    if v.get("additionalProperties")
        .is_some_and(|a| a.is_object() || a.as_bool() == Some(true))
    {
        forbid(
            out,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if present(v, "default").is_some() {
        forbid(out, "default", "must be undefined to be structural");
    }
    for field in ["title", "description"] {
        if !text(v, field).is_empty() {
            forbid(out, field, "must be empty to be structural");
        }
    }
    if is_true(v, "nullable") {
        forbid(out, "nullable", "must be false to be structural");
    }
    for field in [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if is_true(v, field) {
            forbid(out, field, "must be false to be structural");
        }
    }
    if !list(v, "x-kubernetes-list-map-keys").is_empty() {
        forbid(
            out,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    for field in ["x-kubernetes-list-type", "x-kubernetes-map-type"] {
        if present(v, field).is_some() {
            forbid(out, field, "must be undefined to be structural");
        }
    }
    if !list(v, "x-kubernetes-validations").is_empty() {
        forbid(
            out,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if properties.iter().any(|(k, _)| *k == "metadata") {
        forbid(
            out,
            "properties[metadata]",
            "must not be specified in a nested context",
        );
    }
}

/// Every property and items a root value validation (`allOf`, `anyOf`, `oneOf`, `not`)
/// speaks of must also be specified structurally. Upstream checks the root's only.
fn completeness(s: &Value, path: &str, out: &mut Vec<Cause>) {
    junctors_complete(s, Some(s), path, path, out);
}

fn junctors_complete(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<Cause>,
) {
    if let Some(not) = present(v, "not") {
        nested_complete(not, s, s_path, &format!("{v_path}.not"), out);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in list(v, junctor).iter().enumerate() {
            nested_complete(sub, s, s_path, &format!("{v_path}.{junctor}[{i}]"), out);
        }
    }
}

fn nested_complete(v: &Value, s: Option<&Value>, s_path: &str, v_path: &str, out: &mut Vec<Cause>) {
    if !v.is_object() {
        return;
    }
    let Some(s) = s else {
        out.push(required(
            s_path,
            &format!("because it is defined in {v_path}"),
        ));
        return;
    };
    junctors_complete(v, Some(s), s_path, v_path, out);
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        let s_items = s.get("items").filter(|i| i.is_object());
        nested_complete(
            items,
            s_items,
            &format!("{s_path}.items"),
            &format!("{v_path}.items"),
            out,
        );
    }
    let s_properties = entries(s, "properties");
    for (key, property) in entries(v, "properties") {
        let s_field = format!("{s_path}.properties[{key}]");
        let v_field = format!("{v_path}.properties[{key}]");
        match s_properties.iter().find(|(k, _)| *k == key) {
            Some((_, s_property)) => {
                nested_complete(property, Some(s_property), &s_field, &v_field, out)
            }
            None => out.push(required(
                s_field,
                &format!("because it is defined in {v_field}"),
            )),
        }
    }
}

/// Whether any schema node under `s` (inclusive) satisfies `pred`.
fn schema_has(s: &Value, pred: &dyn Fn(&Value) -> bool) -> bool {
    if !s.is_object() {
        return false;
    }
    if pred(s) {
        return true;
    }
    let singles = ["not", "additionalProperties", "additionalItems"]
        .into_iter()
        .filter_map(|k| s.get(k));
    let lists = ["allOf", "anyOf", "oneOf"]
        .into_iter()
        .flat_map(|k| list(s, k));
    let maps = [
        "properties",
        "patternProperties",
        "definitions",
        "dependencies",
    ]
    .into_iter()
    .flat_map(|k| entries(s, k).into_iter().map(|(_, v)| v));
    let items: Vec<&Value> = match s.get("items") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(item) => vec![item],
        None => Vec::new(),
    };
    singles
        .chain(lists)
        .chain(maps)
        .chain(items)
        .any(|sub| schema_has(sub, pred))
}

fn has_kubernetes_extensions(s: &Value) -> bool {
    is_true(s, "x-kubernetes-embedded-resource")
        || present(s, "x-kubernetes-preserve-unknown-fields").is_some()
        || is_true(s, "x-kubernetes-int-or-string")
        || !list(s, "x-kubernetes-list-map-keys").is_empty()
        || present(s, "x-kubernetes-list-type").is_some()
        || !list(s, "x-kubernetes-validations").is_empty()
}

/// Checks `pattern` for the RE2 syntax errors Go's `regexp.Compile` reports most often,
/// with its wording: unbalanced groups and classes, a trailing backslash, unknown
/// escapes and repetitions without an operand.
fn go_regexp(pattern: &str) -> Result<(), String> {
    let fail = |code: &str, expr: &str| Err(format!("error parsing regexp: {code}: `{expr}`"));
    let chars: Vec<(usize, char)> = pattern.char_indices().collect();
    let mut depth = 0usize;
    // Whether the last item can take a repetition operator.
    let mut operand = false;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            '\\' => {
                let Some(&(_, next)) = chars.get(i + 1) else {
                    return fail("trailing backslash at end of expression", "");
                };
                if next.is_ascii_alphanumeric() && !"dDsSwWbBAzpPQExafntrv01234567".contains(next) {
                    return fail("invalid escape sequence", &format!("\\{next}"));
                }
                i += 2;
                operand = true;
                continue;
            }
            '[' => {
                let mut j = i + 1;
                if chars.get(j).is_some_and(|(_, c)| *c == '^') {
                    j += 1;
                }
                if chars.get(j).is_some_and(|(_, c)| *c == ']') {
                    j += 1;
                }
                loop {
                    match chars.get(j) {
                        None => return fail("missing closing ]", &pattern[at..]),
                        Some((_, '\\')) => j += 2,
                        Some((_, '[')) if chars.get(j + 1).is_some_and(|(_, c)| *c == ':') => {
                            j = (j + 2..chars.len())
                                .find(|&k| chars[k].1 == ']' && chars[k - 1].1 == ':')
                                .map_or(j + 1, |k| k + 1);
                        }
                        Some((_, ']')) => break,
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
                operand = true;
                continue;
            }
            '(' => {
                depth += 1;
                operand = false;
            }
            ')' => {
                if depth == 0 {
                    return fail("unexpected )", pattern);
                }
                depth -= 1;
                operand = true;
            }
            '|' => operand = false,
            '*' | '+' | '?' | '{' => {
                let end = if c == '{' {
                    match chars[i..].iter().position(|(_, c)| *c == '}') {
                        Some(len) if repeat_bounds(&chars[i + 1..i + len]) => i + len,
                        // Not a repetition: a literal brace.
                        _ => {
                            operand = true;
                            i += 1;
                            continue;
                        }
                    }
                } else {
                    i
                };
                let mut stop = end + 1;
                if chars.get(stop).is_some_and(|(_, c)| *c == '?') {
                    stop += 1;
                }
                let text_end = chars.get(stop).map_or(pattern.len(), |(p, _)| *p);
                if !operand {
                    return fail(
                        "missing argument to repetition operator",
                        &pattern[at..text_end],
                    );
                }
                if let Some(&(_, next)) = chars.get(stop)
                    && matches!(next, '*' | '+' | '?')
                {
                    let next_end = chars.get(stop + 1).map_or(pattern.len(), |(p, _)| *p);
                    return fail("invalid nested repetition operator", &pattern[at..next_end]);
                }
                i = stop;
                operand = true;
                continue;
            }
            _ => operand = true,
        }
        if c == '(' && chars.get(i + 1).is_some_and(|(_, c)| *c == '?') {
            // Flags and group names: `(?i)`, `(?:`, `(?P<name>`.
            let close = chars[i..]
                .iter()
                .position(|(_, c)| matches!(c, ')' | ':' | '>'));
            match close {
                Some(len) if chars[i + len].1 == ')' => {
                    depth -= 1;
                    i += len + 1;
                    continue;
                }
                Some(len) => {
                    i += len + 1;
                    continue;
                }
                None => return fail("missing closing )", pattern),
            }
        }
        i += 1;
    }
    if depth > 0 {
        return fail("missing closing )", pattern);
    }
    Ok(())
}

/// The inside of `{n}`, `{n,}` or `{n,m}`.
fn repeat_bounds(inside: &[(usize, char)]) -> bool {
    let text: String = inside.iter().map(|(_, c)| c).collect();
    let (low, high) = text.split_once(',').unwrap_or((&text, "0"));
    !low.is_empty()
        && low.bytes().all(|b| b.is_ascii_digit())
        && high.bytes().all(|b| b.is_ascii_digit())
}

// ---- helpers ----

fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn is_true(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool) == Some(true)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    as_list(v.get(key))
}

fn list_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    as_list(v.pointer(pointer))
}

fn as_list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A map's entries sorted by key (upstream walks Go maps, in no fixed order).
fn entries<'a>(v: &'a Value, key: &str) -> Vec<(&'a String, &'a Value)> {
    let mut entries: Vec<_> = v
        .get(key)
        .and_then(Value::as_object)
        .map(Map::iter)
        .into_iter()
        .flatten()
        .collect();
    entries.sort_by_key(|(k, _)| *k);
    entries
}

fn string(s: &str) -> Value {
    Value::String(s.into())
}

/// Equal as Go's semantic equality sees decoded values: absent, null and empty lists alike.
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    let empty = |v: Option<&Value>| {
        v.is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
    };
    match (a, b) {
        _ if empty(a) && empty(b) => true,
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            x.keys().chain(y.keys()).all(|k| same(x.get(k), y.get(k)))
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(Some(p), Some(q)))
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `Required value: <detail>`.
fn required(field: impl Into<String>, detail: &str) -> Cause {
    let mut cause = Cause::required(field);
    if !detail.is_empty() {
        cause.message = format!("Required value: {detail}");
    }
    cause
}

/// An invalid value already rendered as Go's `%#v` prints it.
fn invalid_go(field: impl Into<String>, rendered: String, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {rendered}: {detail}"),
    }
}

fn enum_string(errors: &mut Errors, field: &str, value: &str, allowed: &[&str]) {
    if value.is_empty() {
        errors.push(Cause::required(field));
    } else if !allowed.contains(&value) {
        errors.push(Cause::not_supported(field, &string(value), allowed));
    }
}

fn immutable(errors: &mut Errors, field: &str, new: &str, old: &str) {
    super::immutable(errors, field, &string(new), &string(old));
}

/// A string list as Go's `%#v` prints it: `[]string{"a", "b"}`.
fn go_strings(list: &[Value]) -> String {
    let quoted: Vec<String> = list
        .iter()
        .map(|v| format!("{:?}", v.as_str().unwrap_or_default()))
        .collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `spec.versions` in upstream's internal form, as Go's `%#v` prints it.
fn go_versions(crd: &Internal) -> String {
    if !crd.listed {
        return "[]apiextensions.CustomResourceDefinitionVersion(nil)".into();
    }
    let pointer =
        |ty: &str, set: bool| format!("(*{ty})({})", if set { GO_POINTER } else { "nil" });
    let versions: Vec<String> = crd
        .versions
        .iter()
        .map(|v| {
            let columns = match crd.columns.of_version(v).and_then(Value::as_array) {
                None => "[]apiextensions.CustomResourceColumnDefinition(nil)".to_owned(),
                Some(columns) => {
                    let columns: Vec<String> = columns
                        .iter()
                        .map(|c| {
                            format!(
                                "apiextensions.CustomResourceColumnDefinition{{Name:{:?}, Type:{:?}, Format:{:?}, Description:{:?}, Priority:{}, JSONPath:{:?}}}",
                                text(c, "name"),
                                text(c, "type"),
                                text(c, "format"),
                                text(c, "description"),
                                c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                                text(c, "jsonPath"),
                            )
                        })
                        .collect();
                    format!("[]apiextensions.CustomResourceColumnDefinition{{{}}}", columns.join(", "))
                }
            };
            let fields = match crd.selectable.of_version(v).and_then(Value::as_array) {
                None => "[]apiextensions.SelectableField(nil)".to_owned(),
                Some(fields) => {
                    let fields: Vec<String> = fields.iter().map(|f| format!("apiextensions.SelectableField{{JSONPath:{:?}}}", text(f, "jsonPath"))).collect();
                    format!("[]apiextensions.SelectableField{{{}}}", fields.join(", "))
                }
            };
            format!(
                "apiextensions.CustomResourceDefinitionVersion{{Name:{:?}, Served:{}, Storage:{}, Deprecated:{}, DeprecationWarning:{}, Schema:{}, Subresources:{}, AdditionalPrinterColumns:{columns}, SelectableFields:{fields}}}",
                text(v, "name"),
                is_true(v, "served"),
                is_true(v, "storage"),
                is_true(v, "deprecated"),
                pointer("string", v.get("deprecationWarning").is_some_and(Value::is_string)),
                pointer("apiextensions.CustomResourceValidation", crd.schema.of_version(v).is_some()),
                pointer("apiextensions.CustomResourceSubresources", crd.subresources.of_version(v).is_some()),
            )
        })
        .collect();
    format!(
        "[]apiextensions.CustomResourceDefinitionVersion{{{}}}",
        versions.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
                "versions": [{
                    "name": "v1",
                    "served": true,
                    "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "color": {"type": "string", "enum": ["red", "blue"], "pattern": "^[a-z]+$"},
                                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                    "ports": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
                                    },
                                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
                                },
                                "x-kubernetes-validations": [{"rule": "self.replicas >= 0", "message": "no negatives", "fieldPath": ".replicas"}]
                            },
                            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}}
                        }
                    }},
                    "subresources": {
                        "status": {},
                        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}
                    },
                    "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "format": "int32", "jsonPath": ".spec.replicas"}],
                    "selectableFields": [{"jsonPath": ".spec.color"}]
                }]
            }
        })
    }

    fn causes(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut errors = Errors::default();
        validate(obj, old, &mut errors);
        errors.0
    }

    fn summaries(obj: &Value, old: Option<&Value>) -> Vec<String> {
        causes(obj, old)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn cause(reason: &'static str, field: &str, message: &str) -> Cause {
        Cause {
            reason,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `obj` with the JSON pointer `path` set to `value` (its parent must exist).
    fn with(mut obj: Value, path: &str, value: Value) -> Value {
        let (parent, key) = path.rsplit_once('/').unwrap();
        let parent = obj
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {path}"));
        match parent {
            Value::Array(list) => list[key.parse::<usize>().unwrap()] = value,
            _ => parent[key] = value,
        }
        obj
    }

    fn without(mut obj: Value, path: &str) -> Value {
        let (parent, key) = path.rsplit_once('/').unwrap();
        obj.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap()
            .remove(key);
        obj
    }

    /// A one-version CRD with `schema` as its openAPIV3Schema (and no subresources,
    /// which restrict the root).
    fn with_schema(schema: Value) -> Value {
        let obj = with(crd(), "/spec/versions/0/schema/openAPIV3Schema", schema);
        let obj = without(obj, "/spec/versions/0/selectableFields");
        without(obj, "/spec/versions/0/subresources")
    }

    /// The causes of a one-version CRD with `schema`, as `field: message`.
    fn schema_errors(schema: Value) -> Vec<String> {
        summaries(&with_schema(schema), None)
    }

    #[test]
    fn a_valid_crd_passes() {
        assert_eq!(causes(&crd(), None), vec![]);
        // Several versions with their own schemas, a webhook conversion, defaults for
        // singular and listKind.
        let mut obj = crd();
        let mut v2 = obj["spec"]["versions"][0].clone();
        v2["name"] = json!("v2beta1");
        v2["storage"] = json!(false);
        v2["deprecated"] = json!(true);
        v2["deprecationWarning"] = json!("use v1");
        v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["extra"] =
            json!({"type": "boolean", "default": false});
        v2["selectableFields"] = json!([{"jsonPath": ".spec.extra"}]);
        obj["spec"]["versions"].as_array_mut().unwrap().push(v2);
        obj["spec"]["names"] = json!({"plural": "widgets", "kind": "Widget"});
        obj["spec"]["conversion"] = json!({
            "strategy": "Webhook",
            "webhook": {
                "conversionReviewVersions": ["v1", "v1beta1"],
                "clientConfig": {"service": {"namespace": "default", "name": "conv", "path": "/convert"}}
            }
        });
        assert_eq!(causes(&obj, None), vec![]);
        assert_eq!(causes(&obj, Some(&obj)), vec![]);
        let url = with(
            obj.clone(),
            "/spec/conversion/webhook/clientConfig",
            json!({"url": "https://conv.example.com:8443/convert"}),
        );
        assert_eq!(causes(&url, None), vec![]);
    }

    #[test]
    fn upstream_structural_complete_schema_passes() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "string"}}}},
                "c": {"type": "array", "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                "d": {"type": "array", "items": {"type": "string"}},
                "e": {"type": "string"}, "f": {"type": "string"}, "g": {"type": "string"}
            },
            "not": {"properties": {
                "a": {},
                "b": {"not": {"properties": {"a": {}, "b": {"items": {}}}}},
                "c": {"items": {"not": {"items": {"properties": {"a": {}}}}}},
                "d": {"items": {}}
            }},
            "allOf": [{"properties": {"e": {}}}],
            "anyOf": [{"properties": {"f": {}}}],
            "oneOf": [{"properties": {"g": {}}}]
        });
        assert_eq!(schema_errors(schema), Vec::<String>::new());
        for metadata in [
            json!({"name": {"type": "string"}}),
            json!({"generateName": {"type": "string"}}),
            json!({"name": {"type": "string"}, "generateName": {"type": "string", "pattern": "^[a-z]+$"}}),
        ] {
            let schema = json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": metadata}}});
            assert_eq!(schema_errors(schema), Vec::<String>::new());
        }
    }

    #[test]
    fn name_must_be_plural_dot_group() {
        let obj = with(crd(), "/metadata/name", json!("gadgets.example.com"));
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueInvalid",
                "metadata.name",
                "Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group"
            )]
        );
        // Not checked on update: group and plural are immutable instead.
        assert_eq!(causes(&obj, Some(&crd())), vec![]);
    }

    #[test]
    fn group_rules() {
        let obj = with(
            with(crd(), "/spec/group", json!("")),
            "/metadata/name",
            json!("widgets."),
        );
        assert_eq!(
            causes(&obj, None),
            vec![cause("FieldValueRequired", "spec.group", "Required value")]
        );
        let obj = with(
            with(crd(), "/spec/group", json!("example")),
            "/metadata/name",
            json!("widgets.example"),
        );
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueInvalid",
                "spec.group",
                "Invalid value: \"example\": should be a domain with at least one dot"
            )]
        );
        let obj = with(
            with(crd(), "/spec/group", json!("Example.com")),
            "/metadata/name",
            json!("widgets.Example.com"),
        );
        let found = causes(&obj, None);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "spec.group");
        assert!(
            found[0]
                .message
                .starts_with("Invalid value: \"Example.com\": a lowercase RFC 1123 subdomain"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn names_rules() {
        let obj = with(crd(), "/spec/names", json!({}));
        let obj = with(obj, "/metadata/name", json!(".example.com"));
        assert_eq!(
            causes(&obj, None),
            vec![
                cause("FieldValueRequired", "spec.names.plural", "Required value"),
                cause(
                    "FieldValueRequired",
                    "spec.names.singular",
                    "Required value"
                ),
                cause("FieldValueRequired", "spec.names.kind", "Required value"),
                cause(
                    "FieldValueRequired",
                    "spec.names.listKind",
                    "Required value"
                ),
            ]
        );
        let obj = with(
            crd(),
            "/spec/names",
            json!({"plural": "widgets", "singular": "Widget", "kind": "Wid_get", "listKind": "Wid_get", "shortNames": ["ok", "1x"], "categories": ["a_b"]}),
        );
        let dns1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
        assert_eq!(
            causes(&obj, None),
            vec![
                cause(
                    "FieldValueInvalid",
                    "spec.names.singular",
                    &format!("Invalid value: \"Widget\": {dns1035}")
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.names.kind",
                    &format!(
                        "Invalid value: \"Wid_get\": may have mixed case, but should otherwise match: {dns1035}"
                    )
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.names.listKind",
                    &format!(
                        "Invalid value: \"Wid_get\": may have mixed case, but should otherwise match: {dns1035}"
                    )
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.names.shortNames[1]",
                    &format!("Invalid value: \"1x\": {dns1035}")
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.names.listKind",
                    "Invalid value: \"Wid_get\": kind and listKind may not be the same"
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.names.categories[0]",
                    &format!("Invalid value: \"a_b\": {dns1035}")
                ),
            ]
        );
    }

    #[test]
    fn scope_rules() {
        assert_eq!(
            causes(&with(crd(), "/spec/scope", json!("")), None),
            vec![cause("FieldValueRequired", "spec.scope", "Required value")]
        );
        assert_eq!(
            causes(&with(crd(), "/spec/scope", json!("Global")), None),
            vec![cause(
                "FieldValueNotSupported",
                "spec.scope",
                "Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""
            )]
        );
    }

    #[test]
    fn versions_rules() {
        let none = without(crd(), "/spec/versions");
        assert_eq!(
            summaries(&none, None),
            vec![
                "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion(nil): must have exactly one version marked as storage version",
                "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
            ]
        );
        let mut two = crd();
        let v1 = two["spec"]["versions"][0].clone();
        two["spec"]["versions"].as_array_mut().unwrap().push(v1);
        let version = "apiextensions.CustomResourceDefinitionVersion{Name:\"v1\", Served:true, Storage:true, Deprecated:false, DeprecationWarning:(*string)(nil), Schema:(*apiextensions.CustomResourceValidation)(nil), Subresources:(*apiextensions.CustomResourceSubresources)(nil), AdditionalPrinterColumns:[]apiextensions.CustomResourceColumnDefinition(nil), SelectableFields:[]apiextensions.SelectableField(nil)}";
        let list =
            format!("[]apiextensions.CustomResourceDefinitionVersion{{{version}, {version}}}");
        assert_eq!(
            summaries(&two, None),
            vec![
                format!("spec.versions: Invalid value: {list}: must contain unique version names"),
                format!("spec.versions: Invalid value: {list}: must have exactly one version marked as storage version"),
                // Only the first storage version is added to storedVersions.
                "status.storedVersions: Invalid value: []string{\"v1\"}: must have the storage version v1".into(),
            ]
        );
        let bad_name = with(crd(), "/spec/versions/0/name", json!("V1"));
        let dns1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
        assert_eq!(
            causes(&bad_name, None),
            vec![
                cause(
                    "FieldValueInvalid",
                    "spec.versions[0].name",
                    &format!("Invalid value: \"V1\": {dns1035}")
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.version",
                    &format!("Invalid value: \"V1\": {dns1035}")
                ),
            ]
        );
        let no_storage = with(crd(), "/spec/versions/0/storage", json!(false));
        let found = summaries(&no_storage, None);
        assert!(found[0].starts_with("spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{apiextensions.CustomResourceDefinitionVersion{Name:\"v1\", Served:true, Storage:false"), "{found:?}");
        assert!(found[0].ends_with(": must have exactly one version marked as storage version"));
        assert_eq!(
            found[1],
            "status.storedVersions: Invalid value: []string(nil): must have at least one stored version"
        );
    }

    #[test]
    fn schemas_are_required() {
        let obj = without(
            without(crd(), "/spec/versions/0/schema"),
            "/spec/versions/0/selectableFields",
        );
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueRequired",
                "spec.versions[0].schema.openAPIV3Schema",
                "Required value: schemas are required"
            )]
        );
    }

    #[test]
    fn shared_schemas_report_spec_validation_paths_and_differing_ones_per_version() {
        let mut obj = with_schema(
            json!({"type": "object", "properties": {"spec": {"properties": {"replicas": {"type": "integer"}}}}}),
        );
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueRequired",
                "spec.validation.openAPIV3Schema.properties[spec].type",
                "Required value: must not be empty for specified object fields"
            )]
        );
        let mut v2 = obj["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        v2["storage"] = json!(false);
        v2["schema"]["openAPIV3Schema"]["properties"]["spec"] =
            json!({"type": "object", "properties": {"replicas": {}}});
        obj["spec"]["versions"].as_array_mut().unwrap().push(v2);
        assert_eq!(
            summaries(&obj, None),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
                "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[replicas].type: Required value: must not be empty for specified object fields",
            ]
        );
    }

    #[test]
    fn upstream_missing_types_with_extensions() {
        let schema = json!({"properties": {
            "foo": {"properties": {"a": {}}},
            "bar": {"items": {"additionalProperties": {"properties": {"a": {}}, "items": {}}}},
            "abc": {"additionalProperties": {"properties": {"a": {"items": {"additionalProperties": {"items": null}}}}}},
            "json": {"x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {}}},
            "int-or-string": {"x-kubernetes-int-or-string": true, "properties": {"a": {}}}
        }});
        let p = "spec.validation.openAPIV3Schema";
        let field = "Required value: must not be empty for specified object fields";
        let item = "Required value: must not be empty for specified array items";
        assert_eq!(
            schema_errors(schema),
            vec![
                format!(
                    "{p}.properties[abc].additionalProperties.properties[a].items.additionalProperties.type: {field}"
                ),
                format!(
                    "{p}.properties[abc].additionalProperties.properties[a].items.type: {item}"
                ),
                format!("{p}.properties[abc].additionalProperties.properties[a].type: {field}"),
                format!("{p}.properties[abc].additionalProperties.type: {field}"),
                format!("{p}.properties[abc].type: {field}"),
                format!("{p}.properties[bar].items.additionalProperties.items.type: {item}"),
                format!(
                    "{p}.properties[bar].items.additionalProperties.properties[a].type: {field}"
                ),
                format!("{p}.properties[bar].items.additionalProperties.type: {field}"),
                format!("{p}.properties[bar].items.type: {item}"),
                format!("{p}.properties[bar].type: {field}"),
                format!("{p}.properties[foo].properties[a].type: {field}"),
                format!("{p}.properties[foo].type: {field}"),
                format!("{p}.properties[int-or-string].properties[a].type: {field}"),
                format!("{p}.properties[json].properties[a].type: {field}"),
                format!("{p}.type: Required value: must not be empty at the root"),
            ]
        );
    }

    #[test]
    fn upstream_int_or_string_variants() {
        let int_or_string = json!([{"type": "integer"}, {"type": "string"}]);
        let schema = json!({"type": "object", "properties": {
            "a": {"x-kubernetes-int-or-string": true},
            "b": {"x-kubernetes-int-or-string": true, "anyOf": int_or_string, "allOf": [{"pattern": "abc"}]},
            "c": {"x-kubernetes-int-or-string": true, "allOf": [{"anyOf": int_or_string}, {"pattern": "abc"}, {"pattern": "abc"}]},
            "d": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "abc"}]},
            "e": {"x-kubernetes-int-or-string": true, "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "abc"}]}, {"pattern": "abc"}]},
            "f": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}, {"pattern": "abc"}]},
            "g": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "string"}, {"type": "integer"}]}
        }});
        let p = "spec.validation.openAPIV3Schema.properties";
        let forbidden = "Forbidden: must be empty to be structural";
        assert_eq!(
            schema_errors(schema),
            vec![
                format!("{p}[d].anyOf[0].type: {forbidden}"),
                format!("{p}[d].anyOf[1].type: {forbidden}"),
                format!("{p}[e].allOf[0].anyOf[0].type: {forbidden}"),
                format!("{p}[e].allOf[0].anyOf[1].type: {forbidden}"),
                format!("{p}[f].anyOf[0].type: {forbidden}"),
                format!("{p}[f].anyOf[1].type: {forbidden}"),
                format!("{p}[g].anyOf[0].type: {forbidden}"),
                format!("{p}[g].anyOf[1].type: {forbidden}"),
            ]
        );
    }

    #[test]
    fn root_and_metadata_rules() {
        let p = "spec.validation.openAPIV3Schema";
        assert_eq!(
            causes(&with_schema(json!({"type": "integer"})), None),
            vec![cause(
                "FieldValueInvalid",
                &format!("{p}.type"),
                "Invalid value: \"integer\": must be object at the root"
            )]
        );
        let schema = json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}});
        assert_eq!(
            causes(&with_schema(schema), None),
            vec![cause(
                "FieldValueForbidden",
                &format!("{p}.properties[metadata]"),
                "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            )]
        );
        let schema = json!({"type": "object", "properties": {"metadata": {"type": "string"}, "kind": {"type": "integer"}}});
        assert_eq!(
            schema_errors(schema),
            vec![
                format!("{p}.properties[kind].type: Invalid value: \"integer\": must be string"),
                format!("{p}.properties[metadata].type: Invalid value: \"string\": must be object"),
            ]
        );
        let schema = json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}});
        assert_eq!(
            schema_errors(schema),
            vec![format!(
                "{p}.properties[metadata].default: Forbidden: must not be set in top-level metadata"
            )]
        );
        assert_eq!(
            schema_errors(json!({"type": "object", "nullable": true})),
            vec![format!(
                "{p}.nullable: Forbidden: nullable cannot be true at the root"
            )]
        );
        assert_eq!(
            schema_errors(json!({"type": "object", "additionalProperties": {"type": "string"}})),
            vec![format!(
                "{p}.additionalProperties: Forbidden: must not be used at the root"
            )]
        );
    }

    #[test]
    fn forbidden_keywords() {
        let p = "spec.validation.openAPIV3Schema.properties[spec]";
        let cases = [
            (
                json!({"type": "object", "$ref": "#/x"}),
                vec![format!("{p}.$ref: Forbidden: $ref is not supported")],
            ),
            (
                json!({"type": "object", "id": "x"}),
                vec![format!("{p}.id: Forbidden: id is not supported")],
            ),
            (
                json!({"type": "array", "items": {"type": "string"}, "additionalItems": false}),
                vec![format!(
                    "{p}.additionalItems: Forbidden: additionalItems is not supported"
                )],
            ),
            (
                json!({"type": "object", "patternProperties": {"^a": {"type": "string"}}}),
                vec![format!(
                    "{p}.patternProperties: Forbidden: patternProperties is not supported"
                )],
            ),
            (
                json!({"type": "object", "dependencies": {"a": ["b"]}}),
                vec![format!(
                    "{p}.dependencies: Forbidden: dependencies is not supported"
                )],
            ),
            (
                json!({"type": "object", "definitions": {"a": {"type": "string"}}}),
                vec![format!(
                    "{p}.definitions: Forbidden: definitions is not supported"
                )],
            ),
            (
                json!({"type": "array", "uniqueItems": true, "items": {"type": "string"}}),
                vec![format!(
                    "{p}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
                )],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}),
                vec![format!(
                    "{p}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
                )],
            ),
            (
                json!({"type": "null"}),
                vec![
                    format!(
                        "{p}.type: Forbidden: type cannot be set to null, use nullable as an alternative"
                    ),
                    format!(
                        "{p}.type: Unsupported value: \"null\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
                    ),
                ],
            ),
            (
                json!({"type": "array"}),
                vec![format!("{p}.items: Required value: must be specified")],
            ),
            (
                json!({"type": "array", "items": [{"type": "string"}]}),
                vec![format!(
                    "{p}.items: Forbidden: items must be a schema object and not an array"
                )],
            ),
            (
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false}),
                vec![format!(
                    "{p}.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"
                )],
            ),
        ];
        for (spec, expected) in cases {
            let mut found = schema_errors(json!({"type": "object", "properties": {"spec": spec}}));
            found.sort();
            let mut expected = expected;
            expected.sort();
            assert_eq!(found, expected);
        }
        // `$schema` only keeps a structural schema from being built: reported alone.
        assert_eq!(
            causes(
                &with_schema(
                    json!({"type": "object", "$schema": "http://json-schema.org/draft-04/schema#"})
                ),
                None
            ),
            vec![cause(
                "FieldValueInvalid",
                "spec.validation.openAPIV3Schema",
                "Invalid value: \"\": OpenAPIV3Schema 'schema' is not supported"
            )]
        );
    }

    #[test]
    fn nested_value_validations_must_not_be_structural() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{"properties": {"a": {"type": "string", "title": "t", "nullable": true}, "metadata": {}}}]});
        let p = "spec.validation.openAPIV3Schema";
        assert_eq!(
            schema_errors(schema),
            vec![
                format!(
                    "{p}.anyOf[0].properties[a].nullable: Forbidden: must be false to be structural"
                ),
                format!(
                    "{p}.anyOf[0].properties[a].title: Forbidden: must be empty to be structural"
                ),
                format!(
                    "{p}.anyOf[0].properties[a].type: Forbidden: must be empty to be structural"
                ),
                format!(
                    "{p}.anyOf[0].properties[metadata]: Forbidden: must not be specified in a nested context"
                ),
                format!(
                    "{p}.properties[metadata]: Required value: because it is defined in {p}.anyOf[0].properties[metadata]"
                ),
            ]
        );
    }

    #[test]
    fn embedded_resources() {
        let p = "spec.validation.openAPIV3Schema";
        assert_eq!(
            schema_errors(
                json!({"type": "object", "properties": {"e": {"type": "array", "items": {"type": "string"}, "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}})
            ),
            vec![format!(
                "{p}.properties[e].type: Invalid value: \"array\": must be object if x-kubernetes-embedded-resource is true"
            )]
        );
        assert_eq!(
            schema_errors(
                json!({"type": "object", "properties": {"e": {"type": "object", "x-kubernetes-embedded-resource": true}}})
            ),
            vec![format!(
                "{p}.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
            )]
        );
        assert_eq!(
            schema_errors(
                json!({"type": "object", "properties": {"e": {"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true}}})
            ),
            vec![format!(
                "{p}.properties[e].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
            )]
        );
    }

    #[test]
    fn list_and_map_types() {
        let p = "spec.validation.openAPIV3Schema.properties[l]";
        let check = |list: Value, expected: Vec<String>| {
            assert_eq!(
                schema_errors(json!({"type": "object", "properties": {"l": list}})),
                expected
            );
        };
        check(
            json!({"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {"k": {"type": "string"}}}}),
            vec![format!(
                "{p}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
            )],
        );
        check(
            json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["x"], "items": {"type": "object", "properties": {"k": {"type": "string"}}}}),
            vec![format!(
                "{p}.x-kubernetes-list-map-keys: Invalid value: []string{{\"x\"}}: entries must all be names of item properties"
            )],
        );
        check(
            json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"], "items": {"type": "object", "properties": {"k": {"type": "string"}}}}),
            vec![format!(
                "{p}.items.properties[k].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
            )],
        );
        check(
            json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object"}}),
            vec![format!(
                "{p}.items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set"
            )],
        );
        check(
            json!({"type": "object", "x-kubernetes-list-type": "bag"}),
            vec![
                format!(
                    "{p}.type: Invalid value: \"object\": must be array if x-kubernetes-list-type is specified"
                ),
                format!(
                    "{p}.x-kubernetes-list-type: Unsupported value: \"bag\": supported values: \"atomic\", \"set\", \"map\""
                ),
            ],
        );
        check(
            json!({"type": "object", "x-kubernetes-map-type": "loose"}),
            vec![format!(
                "{p}.x-kubernetes-map-type: Unsupported value: \"loose\": supported values: \"atomic\", \"granular\""
            )],
        );
    }

    #[test]
    fn patterns_and_validation_rules() {
        let p = "spec.validation.openAPIV3Schema.properties[s]";
        assert_eq!(
            schema_errors(
                json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "(abc"}}})
            ),
            vec![format!(
                "{p}.pattern: Invalid value: \"(abc\": must be a valid regular expression, but isn't: error parsing regexp: missing closing ): `(abc`"
            )]
        );
        let rules = json!([{"rule": " "}, {"rule": "self.a\n&& self.b"}, {"rule": "true", "reason": "FieldValueBad"}, {"rule": "true", "fieldPath": ".nope"}]);
        assert_eq!(
            schema_errors(
                json!({"type": "object", "properties": {"s": {"type": "object", "properties": {"a": {"type": "string"}}, "x-kubernetes-validations": rules}}})
            ),
            vec![
                format!(
                    "{p}.x-kubernetes-validations[0].rule: Required value: rule is not specified"
                ),
                format!(
                    "{p}.x-kubernetes-validations[1].message: Required value: message must be specified if rule contains line breaks"
                ),
                format!(
                    "{p}.x-kubernetes-validations[2].reason: Unsupported value: \"FieldValueBad\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
                ),
                format!(
                    "{p}.x-kubernetes-validations[3].fieldPath: Invalid value: \".nope\": fieldPath must be a valid path"
                ),
            ]
        );
    }

    #[test]
    fn go_regexp_errors() {
        for ok in [
            "",
            "^[a-z]+$",
            "a{2,3}",
            "(?i)abc",
            "(?:ab)+?",
            "[]a]",
            "[^]a]",
            "x{",
            "\\d+\\.\\d+",
            "[[:alpha:]]+",
            "(?P<n>a)|b",
            "^*",
        ] {
            assert_eq!(go_regexp(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("(abc", "missing closing ): `(abc`"),
            ("a)", "unexpected ): `a)`"),
            ("[a-z", "missing closing ]: `[a-z`"),
            ("ab\\", "trailing backslash at end of expression: ``"),
            ("*a", "missing argument to repetition operator: `*`"),
            ("(+?)", "missing argument to repetition operator: `+?`"),
            ("a**", "invalid nested repetition operator: `**`"),
            ("\\q", "invalid escape sequence: `\\q`"),
        ];
        for (pattern, error) in cases {
            assert_eq!(
                go_regexp(pattern),
                Err(format!("error parsing regexp: {error}")),
                "{pattern}"
            );
        }
    }

    #[test]
    fn status_subresource_restricts_the_root() {
        let obj = with(
            crd(),
            "/spec/versions/0/schema/openAPIV3Schema/anyOf",
            json!([{"required": ["spec"]}]),
        );
        let found = causes(&obj, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field, "spec.validation.openAPIV3Schema");
        assert!(found[0].message.ends_with(&format!(": only {ROOT_FIELDS_WITH_STATUS} fields are allowed at the root of the schema if the status subresource is enabled")));
    }

    #[test]
    fn scale_subresource_paths() {
        let obj = with(
            crd(),
            "/spec/versions/0/subresources/scale",
            json!({"specReplicasPath": ".status.replicas", "statusReplicasPath": "status.replicas", "labelSelectorPath": ".metadata.labels"}),
        );
        assert_eq!(
            summaries(&obj, None),
            vec![
                "spec.subresources.scale.specReplicasPath: Invalid value: \".status.replicas\": should be a json path under .spec",
                "spec.subresources.scale.statusReplicasPath: Invalid value: \"status.replicas\": must be a simple json path starting with .",
                "spec.subresources.scale.labelSelectorPath: Invalid value: \".metadata.labels\": should be a json path under either .spec or .status",
            ]
        );
        let obj = with(crd(), "/spec/versions/0/subresources/scale", json!({}));
        assert_eq!(
            causes(&obj, None),
            vec![
                cause(
                    "FieldValueRequired",
                    "spec.subresources.scale.specReplicasPath",
                    "Required value"
                ),
                cause(
                    "FieldValueRequired",
                    "spec.subresources.scale.statusReplicasPath",
                    "Required value"
                ),
            ]
        );
    }

    #[test]
    fn printer_columns() {
        let obj = with(
            crd(),
            "/spec/versions/0/additionalPrinterColumns",
            json!([{"type": "", "jsonPath": ""}, {"name": "Age", "type": "time", "format": "iso", "jsonPath": "metadata.creationTimestamp"}]),
        );
        assert_eq!(
            causes(&obj, None),
            vec![
                cause(
                    "FieldValueRequired",
                    "spec.additionalPrinterColumns[0].name",
                    "Required value"
                ),
                cause(
                    "FieldValueRequired",
                    "spec.additionalPrinterColumns[0].type",
                    "Required value: must be one of boolean,date,integer,number,string"
                ),
                cause(
                    "FieldValueRequired",
                    "spec.additionalPrinterColumns[0].JSONPath",
                    "Required value"
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.additionalPrinterColumns[1].type",
                    "Invalid value: \"time\": must be one of boolean,date,integer,number,string"
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.additionalPrinterColumns[1].format",
                    "Invalid value: \"iso\": must be one of byte,date,date-time,double,float,int32,int64,password"
                ),
                cause(
                    "FieldValueInvalid",
                    "spec.additionalPrinterColumns[1].JSONPath",
                    "Invalid value: \"metadata.creationTimestamp\": must be a simple json path starting with ."
                ),
            ]
        );
    }

    #[test]
    fn deprecation_warnings() {
        let obj = with(crd(), "/spec/versions/0/deprecationWarning", json!("old"));
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueInvalid",
                "spec.versions[0].deprecationWarning",
                "Invalid value: \"old\": can only be set for deprecated versions"
            )]
        );
        let long = "x".repeat(257);
        let obj = with(
            with(crd(), "/spec/versions/0/deprecated", json!(true)),
            "/spec/versions/0/deprecationWarning",
            json!(long),
        );
        assert_eq!(
            causes(&obj, None)[0].message,
            format!("Invalid value: \"{long}\": must be <= 256 characters long")
        );
        let obj = with(
            with(crd(), "/spec/versions/0/deprecated", json!(true)),
            "/spec/versions/0/deprecationWarning",
            json!("a\tb"),
        );
        assert_eq!(
            causes(&obj, None)[0].message,
            "Invalid value: \"a\tb\": must only contain printable UTF-8 characters; non-printable character found at index 1"
        );
    }

    #[test]
    fn conversion_rules() {
        let conversion = |c: Value| {
            with(crd(), "/spec", {
                let mut spec = crd()["spec"].clone();
                spec["conversion"] = c;
                spec
            })
        };
        assert_eq!(
            causes(&conversion(json!({"strategy": "Magic"})), None),
            vec![cause(
                "FieldValueNotSupported",
                "spec.conversion.strategy",
                "Unsupported value: \"Magic\": supported values: \"None\", \"Webhook\""
            )]
        );
        assert_eq!(
            causes(&conversion(json!({"strategy": "Webhook"})), None),
            vec![
                cause(
                    "FieldValueRequired",
                    "spec.conversion.webhookClientConfig",
                    "Required value: required when strategy is set to Webhook"
                ),
                cause(
                    "FieldValueRequired",
                    "spec.conversion.conversionReviewVersions",
                    "Required value"
                ),
            ]
        );
        let both = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2"], "clientConfig": {"url": "https://a", "service": {"namespace": "n", "name": "s"}}}});
        assert_eq!(
            summaries(&conversion(both), None),
            vec![
                "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
                "spec.conversion.conversionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
            ]
        );
        let url = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1", "v1"], "clientConfig": {"url": "http://user@a/convert?x=1#frag"}}});
        assert_eq!(
            summaries(&conversion(url), None),
            vec![
                "spec.conversion.webhookClientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "spec.conversion.webhookClientConfig.url: Invalid value: \"user\": user information is not permitted in the URL",
                "spec.conversion.webhookClientConfig.url: Invalid value: \"frag\": fragments are not permitted in the URL",
                "spec.conversion.webhookClientConfig.url: Invalid value: \"x=1\": query parameters are not permitted in the URL",
                "spec.conversion.conversionReviewVersions[1]: Invalid value: \"v1\": duplicate version",
            ]
        );
        let unparsable = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"url": ":foo"}}});
        assert_eq!(
            summaries(&conversion(unparsable), None),
            vec![
                "spec.conversion.webhookClientConfig.url: Required value: url must be a valid URL: parse \":foo\": missing protocol scheme; desired format: https://host[/path]"
            ]
        );
        let service = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"service": {"port": 70000, "path": "conv//x"}}}});
        assert_eq!(
            summaries(&conversion(service), None),
            vec![
                "spec.conversion.webhookClientConfig.service.name: Required value: service name is required",
                "spec.conversion.webhookClientConfig.service.namespace: Required value: service namespace is required",
                "spec.conversion.webhookClientConfig.service.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive",
                "spec.conversion.webhookClientConfig.service.path: Invalid value: \"conv//x\": must start with a '/'",
                "spec.conversion.webhookClientConfig.service.path: Invalid value: \"conv//x\": segment[1] may not be empty",
            ]
        );
        let none_with_webhook = json!({"strategy": "None", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://a"}}});
        assert_eq!(
            causes(&conversion(none_with_webhook), None),
            vec![
                cause(
                    "FieldValueForbidden",
                    "spec.conversion.webhookClientConfig",
                    "Forbidden: should not be set when strategy is not set to Webhook"
                ),
                cause(
                    "FieldValueForbidden",
                    "spec.conversion.conversionReviewVersions",
                    "Forbidden: should not be set when strategy is not set to Webhook"
                ),
            ]
        );
    }

    #[test]
    fn preserve_unknown_fields_cannot_be_set() {
        let obj = with(crd(), "/spec/preserveUnknownFields", json!(true));
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueInvalid",
                "spec.preserveUnknownFields",
                "Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"
            )]
        );
        // Kept when already stored that way.
        assert_eq!(causes(&obj, Some(&obj)), vec![]);
    }

    #[test]
    fn update_rules() {
        let old = crd();
        let changed = with(
            with(
                with(crd(), "/spec/scope", json!("Cluster")),
                "/spec/group",
                json!("example.org"),
            ),
            "/spec/names/kind",
            json!("Gadget"),
        );
        let changed = with(changed, "/spec/names/singular", json!("gadget"));
        assert_eq!(
            causes(&changed, Some(&old)),
            vec![cause(
                "FieldValueInvalid",
                "spec.group",
                "Invalid value: \"example.org\": field is immutable"
            )]
        );
        let plural = with(crd(), "/spec/names/plural", json!("gizmos"));
        assert_eq!(
            causes(&plural, Some(&old)),
            vec![cause(
                "FieldValueInvalid",
                "spec.names.plural",
                "Invalid value: \"gizmos\": field is immutable"
            )]
        );
        // Once established, scope and kind are fixed too.
        let established = with(old.clone(), "/metadata/name", json!("widgets.example.com"));
        let mut established = established;
        established["status"] = json!({"conditions": [{"type": "Established", "status": "True"}], "storedVersions": ["v1"]});
        let scope = with(crd(), "/spec/scope", json!("Cluster"));
        assert_eq!(
            causes(&scope, Some(&established)),
            vec![cause(
                "FieldValueInvalid",
                "spec.scope",
                "Invalid value: \"Cluster\": field is immutable"
            )]
        );
        let kind = with(
            with(crd(), "/spec/names/kind", json!("Gadget")),
            "/spec/names/singular",
            json!("gadget"),
        );
        assert_eq!(
            causes(&kind, Some(&established)),
            vec![cause(
                "FieldValueInvalid",
                "spec.names.kind",
                "Invalid value: \"Gadget\": field is immutable"
            )]
        );
    }

    #[test]
    fn stored_versions_must_remain_in_spec() {
        let mut old = crd();
        old["status"] = json!({"storedVersions": ["v1alpha1", "v1"]});
        assert_eq!(
            causes(&crd(), Some(&old)),
            vec![cause(
                "FieldValueInvalid",
                "status.storedVersions[0]",
                "Invalid value: \"v1alpha1\": must appear in spec.versions"
            )]
        );
        // A second storage version is not added to storedVersions.
        let mut two = crd();
        let mut v2 = two["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        two["spec"]["versions"].as_array_mut().unwrap().push(v2);
        let found = summaries(&two, None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].ends_with(": must have exactly one version marked as storage version"));
        assert_eq!(
            found[1],
            "status.storedVersions: Invalid value: []string{\"v1\"}: must have the storage version v2"
        );
    }

    #[test]
    fn protected_groups_need_approval() {
        let obj = with(
            with(crd(), "/spec/group", json!("widgets.k8s.io")),
            "/metadata/name",
            json!("widgets.widgets.k8s.io"),
        );
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueRequired",
                "metadata.annotations[api-approved.kubernetes.io]",
                "Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111"
            )]
        );
        let mut invalid = obj.clone();
        invalid["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": "yes"});
        assert_eq!(
            causes(&invalid, None),
            vec![cause(
                "FieldValueInvalid",
                "metadata.annotations[api-approved.kubernetes.io]",
                "Invalid value: \"yes\": protected groups must have approval annotation \"api-approved.kubernetes.io\" with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
            )]
        );
        // Unchanged on update: accepted as stored.
        assert_eq!(causes(&invalid, Some(&invalid)), vec![]);
        for ok in [
            "https://github.com/kubernetes/enhancements/pull/1111",
            "unapproved, testing only",
        ] {
            let mut approved = obj.clone();
            approved["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": ok});
            assert_eq!(causes(&approved, None), vec![], "{ok}");
        }
    }

    #[test]
    fn selectable_fields_rules() {
        let fields = |f: Value| with(crd(), "/spec/versions/0/selectableFields", f);
        let p = "spec.selectableFields";
        assert_eq!(
            summaries(
                &fields(
                    json!([{"jsonPath": ""}, {"jsonPath": ".metadata.name"}, {"jsonPath": ".spec.replicas"}, {"jsonPath": ".spec.labels"}, {"jsonPath": ".spec.nope"}, {"jsonPath": "spec.color"}, {"jsonPath": ".spec['color']"}, {"jsonPath": ".spec.replicas"}])
                ),
                None
            ),
            vec![
                format!("{p}[0].jsonPath: Required value"),
                format!(
                    "{p}[1].jsonPath: Invalid value: \".metadata.name\": must not point to fields in metadata"
                ),
                format!(
                    "{p}[3].jsonPath: Invalid value: \".spec.labels\": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."
                ),
                format!(
                    "{p}[4].jsonPath: Invalid value: \".spec.nope\": is an invalid path: does not refer to a valid field"
                ),
                format!(
                    "{p}[5].jsonPath: Invalid value: \"spec.color\": is an invalid path: expected [ or . but got: spec"
                ),
                format!(
                    "{p}[6].jsonPath: Invalid value: \".spec['color']\": is an invalid path: array notation is not allowed"
                ),
                format!("{p}[7].jsonPath: Duplicate value: \".spec.replicas\""),
            ]
        );
        let many: Vec<Value> = (0..9)
            .map(|i| json!({"jsonPath": format!(".spec.labels.k{i}")}))
            .collect();
        let found = causes(&fields(Value::Array(many)), None);
        assert_eq!(
            found.last(),
            Some(&cause(
                "FieldValueTooMany",
                p,
                "Too many: 9: must have at most 8 items"
            ))
        );
    }

    #[test]
    fn selectable_fields_shared_by_versions_with_different_schemas() {
        // As upstream: identical selectableFields move to the top level, where they need a
        // top-level schema, which differing per-version schemas do not give.
        let mut obj = crd();
        let mut v2 = obj["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        v2["storage"] = json!(false);
        v2["schema"]["openAPIV3Schema"]["description"] = json!("v2");
        obj["spec"]["versions"].as_array_mut().unwrap().push(v2);
        assert_eq!(
            causes(&obj, None),
            vec![cause(
                "FieldValueInvalid",
                "spec.selectableFields",
                "Invalid value: \"\": selectableFields may only be set when validations.schema is included"
            )]
        );
    }

    #[test]
    fn stored_rule_breaks_are_kept_on_update() {
        // An old CRD whose schema has a type upstream no longer accepts keeps it.
        let bad_type = with(
            crd(),
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/replicas/type",
            json!("int"),
        );
        let unsupported = "spec.validation.openAPIV3Schema.properties[spec].properties[replicas].type: Unsupported value: \"int\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"";
        assert!(summaries(&bad_type, None).contains(&unsupported.to_owned()));
        assert!(!summaries(&bad_type, Some(&bad_type)).contains(&unsupported.to_owned()));
    }
}
