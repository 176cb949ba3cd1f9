//! Label and field selectors of list and watch requests.

pub mod field;
pub mod label;

use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use crate::status::ApiError;

/// The selectors of one request, applied to every listed or watched object.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub labels: label::Selector,
    pub fields: field::Selector,
}

impl Filter {
    /// Parses `labelSelector` and `fieldSelector`, checking fields against `resource`.
    pub fn parse(resource: &Resource, labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        let labels = label::Selector::parse(labels.unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = field::Selector::parse(resource, fields.unwrap_or_default())?;
        Ok(Filter { labels, fields })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, resource: &Resource, obj: &Value) -> bool {
        self.labels.matches(obj.pointer("/metadata/labels")) && self.fields.matches(resource, obj)
    }
}
