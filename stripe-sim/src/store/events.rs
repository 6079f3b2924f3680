//! Events as `GET /v1/events` shows them (newest first, filter by `type`).

use serde_json::Value;

use super::{created_filter, paginate, Store};
use crate::error::ApiError;
use crate::form::Params;

impl Store {
    pub fn retrieve_event(&self, id: &str) -> Result<&Value, ApiError> {
        self.events
            .get(id)
            .ok_or_else(|| ApiError::no_such("event", id))
    }

    /// `type` may end in `.*` (`customer.*`); `types[]` lists several exact types.
    pub fn list_events(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let kind = p.str("type")?;
        let types: Vec<String> = p
            .array("types")?
            .iter()
            .filter_map(|v| v.0.as_str().map(str::to_string))
            .collect();
        let created = created_filter(p)?;
        paginate(&self.events, p, "/v1/events", "event", |e| {
            let t = e["type"].as_str().unwrap_or("");
            let kind_ok = match kind.as_deref() {
                None => true,
                Some(k) => match k.strip_suffix('*') {
                    Some(prefix) => t.starts_with(prefix),
                    None => t == k,
                },
            };
            kind_ok && (types.is_empty() || types.iter().any(|x| x == t)) && created(e)
        })
    }
}
