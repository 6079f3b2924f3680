//! Stripe's wire format for parameters: `application/x-www-form-urlencoded` bodies and
//! query strings with bracketed nested keys (`metadata[k]=v`, `line_items[0][price]=p`,
//! `expand[]=x`), decoded into a JSON tree of strings. The library API hands the same
//! tree in as JSON, so every handler reads parameters one way ([`Params`]).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Parses one urlencoded string into `into`. Keys are percent-decoded first, since
/// async-stripe (serde_qs) sends `metadata%5Bk%5D` and other SDKs send `metadata[k]`.
pub fn parse_into(into: &mut Map<String, Value>, input: &[u8]) -> Result<(), ApiError> {
    for (key, value) in form_urlencoded::parse(input) {
        let segments = split_key(&key).ok_or_else(|| {
            ApiError::invalid(key.to_string(), format!("Invalid parameter name: {key}"))
        })?;
        insert(into, &segments, Value::String(value.into_owned()), &key)?;
    }
    Ok(())
}

/// Parses query string and body into one tree, then turns `{ "0": …, "1": … }`
/// objects into arrays.
pub fn parse_request(query: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let mut map = Map::new();
    if let Some(q) = query {
        parse_into(&mut map, q.as_bytes())?;
    }
    parse_into(&mut map, body)?;
    let mut v = Value::Object(map);
    normalize_arrays(&mut v);
    Ok(v)
}

/// `a[b][]` → `["a", "b", ""]`; `None` for unbalanced brackets.
fn split_key(key: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut out = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        out.push(&inner[..end]);
        rest = &inner[end + 1..];
    }
    Some(out)
}

fn insert(
    map: &mut Map<String, Value>,
    segs: &[&str],
    value: Value,
    full: &str,
) -> Result<(), ApiError> {
    let (first, rest) = segs.split_first().expect("at least one segment");
    if rest.is_empty() {
        map.insert((*first).to_string(), value);
        return Ok(());
    }
    let slot = map.entry((*first).to_string()).or_insert_with(|| {
        if rest[0].is_empty() {
            Value::Array(vec![])
        } else {
            Value::Object(Map::new())
        }
    });
    insert_value(slot, rest, value, full)
}

fn insert_value(slot: &mut Value, segs: &[&str], value: Value, full: &str) -> Result<(), ApiError> {
    let conflict = || {
        ApiError::invalid(
            full.to_string(),
            format!("Invalid value for {full}: conflicting nested parameters."),
        )
    };
    // `[]` appends to an array.
    if segs[0].is_empty() {
        let Value::Array(arr) = slot else {
            return Err(conflict());
        };
        if segs.len() == 1 {
            arr.push(value);
            return Ok(());
        }
        let mut obj = Value::Object(Map::new());
        insert_value(&mut obj, &segs[1..], value, full)?;
        arr.push(obj);
        return Ok(());
    }
    match slot {
        Value::Object(map) => insert(map, segs, value, full),
        // `metadata=` (empty, meaning "unset all") followed by `metadata[k]=v`.
        Value::String(s) if s.is_empty() => {
            *slot = Value::Object(Map::new());
            insert_value(slot, segs, value, full)
        }
        _ => Err(conflict()),
    }
}

/// Objects whose keys are all array indices become arrays ordered by index.
fn normalize_arrays(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                normalize_arrays(child);
            }
            if !map.is_empty()
                && map
                    .keys()
                    .all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
            {
                let mut items: Vec<(usize, Value)> = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(usize::MAX), v))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                *v = Value::Array(items.into_iter().map(|(_, v)| v).collect());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_arrays),
        _ => {}
    }
}

/// Typed, Stripe-flavoured accessors over a parameter tree. Values may be strings
/// (wire) or JSON scalars (library API); both are accepted everywhere.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a>(pub &'a Value);

static NULL: Value = Value::Null;

impl<'a> Params<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub fn child(&self, key: &str) -> Params<'a> {
        Params(self.get(key).unwrap_or(&NULL))
    }

    /// A string parameter; numbers and booleans are accepted in their text form.
    pub fn str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ApiError::invalid(
                key,
                format!("Invalid string: {key} must be a string."),
            )),
        }
    }

    pub fn required_str(&self, key: &str) -> Result<String, ApiError> {
        match self.str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::missing_param(key)),
        }
    }

    /// A string where `""` means "unset" (Stripe's convention on update).
    pub fn nullable_str(&self, key: &str) -> Result<Option<Option<String>>, ApiError> {
        Ok(self
            .str(key)?
            .map(|s| if s.is_empty() { None } else { Some(s) }))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::invalid(key, format!("Invalid integer: {n}"))),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(key, format!("Invalid integer: {s}"))),
            Some(v) => Err(ApiError::invalid(key, format!("Invalid integer: {v}"))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(v) => Err(ApiError::invalid(key, format!("Invalid boolean: {v}"))),
        }
    }

    /// `limit` for lists and searches: default 10, 1..=100 like Stripe.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.int("limit")? {
            None => Ok(10),
            Some(n) if (1..=100).contains(&n) => Ok(n as usize),
            Some(n) => Err(ApiError::invalid(
                "limit",
                format!("Invalid integer: {n}; limit must be between 1 and 100"),
            )),
        }
    }

    /// `expand[]` / `expand[0]` / a single `expand=`.
    pub fn expand(&self) -> Vec<String> {
        match self.get("expand") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// Array parameters (`line_items[0][…]`), as element views.
    pub fn array(&self, key: &str) -> Result<Vec<Params<'a>>, ApiError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.iter().map(Params).collect()),
            Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
            Some(_) => Err(ApiError::invalid(key, format!("Invalid array: {key}"))),
        }
    }

    /// A `metadata` parameter as updates: `Some(None)` for keys being unset (`""`).
    /// `Ok(None)` when absent; an empty string clears all keys (`MetadataUpdate::Clear`).
    pub fn metadata(&self, key: &str) -> Result<MetadataUpdate, ApiError> {
        match self.get(key) {
            None => Ok(MetadataUpdate::None),
            Some(Value::String(s)) if s.is_empty() => Ok(MetadataUpdate::Clear),
            Some(Value::Object(map)) => {
                let mut out = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let val = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => String::new(),
                        _ => {
                            return Err(ApiError::invalid(
                                format!("{key}[{k}]"),
                                format!(
                                "Invalid value for {key}[{k}]: metadata values must be strings."
                            ),
                            ))
                        }
                    };
                    if k.len() > 40 {
                        return Err(ApiError::invalid(
                            format!("{key}[{k}]"),
                            "Metadata keys can have a maximum length of 40 characters.",
                        ));
                    }
                    if val.len() > 500 {
                        return Err(ApiError::invalid(
                            format!("{key}[{k}]"),
                            "Metadata values can have a maximum length of 500 characters.",
                        ));
                    }
                    out.push((k.clone(), if val.is_empty() { None } else { Some(val) }));
                }
                Ok(MetadataUpdate::Set(out))
            }
            Some(_) => Err(ApiError::invalid(key, "Invalid metadata: must be a hash.")),
        }
    }
}

/// How a request changes an object's metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataUpdate {
    None,
    Clear,
    Set(Vec<(String, Option<String>)>),
}

impl MetadataUpdate {
    /// Applies the update to a JSON metadata object (merge; `None` values delete).
    pub fn apply(&self, target: &mut Value) {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let map = target.as_object_mut().expect("object");
        match self {
            MetadataUpdate::None => {}
            MetadataUpdate::Clear => map.clear(),
            MetadataUpdate::Set(items) => {
                for (k, v) in items {
                    match v {
                        Some(v) => {
                            map.insert(k.clone(), Value::String(v.clone()));
                        }
                        None => {
                            map.remove(k);
                        }
                    }
                }
            }
        }
    }

    /// A fresh metadata object from this update (for creates).
    pub fn to_value(&self) -> Value {
        let mut v = Value::Object(Map::new());
        self.apply(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_and_arrays() {
        let v = parse_request(
            Some("expand[]=customer&expand[]=subscription"),
            b"metadata%5Btenant_id%5D=t+1&line_items%5B0%5D%5Bprice%5D=price_1&line_items[0][quantity]=2\
              &line_items[1][price]=price_2&email=a%40b.c&subscription_data[metadata][k]=v",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "expand": ["customer", "subscription"],
                "metadata": {"tenant_id": "t 1"},
                "line_items": [{"price": "price_1", "quantity": "2"}, {"price": "price_2"}],
                "email": "a@b.c",
                "subscription_data": {"metadata": {"k": "v"}}
            })
        );
    }

    #[test]
    fn metadata_update_semantics() {
        let v = parse_request(None, b"metadata[a]=1&metadata[b]=").unwrap();
        let upd = Params(&v).metadata("metadata").unwrap();
        let mut target = json!({"b": "old", "c": "keep"});
        upd.apply(&mut target);
        assert_eq!(target, json!({"a": "1", "c": "keep"}));
        let v = parse_request(None, b"metadata=").unwrap();
        assert_eq!(
            Params(&v).metadata("metadata").unwrap(),
            MetadataUpdate::Clear
        );
    }

    #[test]
    fn rejects_bad_keys_and_limits() {
        assert!(parse_request(None, b"a[b=1").is_err());
        let v = parse_request(Some("limit=101"), b"").unwrap();
        assert_eq!(
            Params(&v).limit().unwrap_err().param.as_deref(),
            Some("limit")
        );
    }
}
