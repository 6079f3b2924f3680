//! Injected faults: for the next `count` requests matching a method and a path
//! template, answer an error status without running the request, run it and hold the
//! answer, or run it and drop the connection without answering.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer this status with Stripe's error body; the request is not executed.
    Status(u16),
    /// Execute, then hold the answer this long (a client with a shorter timeout
    /// gives up although the object was created).
    DelayMs(u64),
    /// Execute, then close the connection without writing any response byte.
    Drop,
}

/// A fault rule. `path` is a template such as `/v1/customers/{id}` (the concrete
/// path also matches); `method` and `path` may be `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub method: String,
    pub path: String,
    pub count: u32,
    pub kind: FaultKind,
}

impl Fault {
    /// Reads the control-plane form `{"method","path","count", and one of "status" |
    /// "delay_ms" | "drop"}`.
    pub fn from_json(v: &Value) -> Result<Fault, String> {
        let method = v["method"].as_str().unwrap_or("*").to_ascii_uppercase();
        let path = v["path"].as_str().ok_or("`path` is required")?.to_string();
        let count = match &v["count"] {
            Value::Null => 1,
            c => c
                .as_u64()
                .filter(|c| *c <= u32::MAX as u64)
                .ok_or("`count` must be a positive integer")? as u32,
        };
        let kinds = [
            v.get("status").map(|s| {
                s.as_u64()
                    .filter(|s| (400..=599).contains(s))
                    .map(|s| FaultKind::Status(s as u16))
                    .ok_or("`status` must be 400..=599")
            }),
            v.get("delay_ms").map(|d| {
                d.as_u64()
                    .map(FaultKind::DelayMs)
                    .ok_or("`delay_ms` must be a non-negative integer")
            }),
            v.get("drop").and_then(|d| {
                (d != &Value::Bool(false) && !d.is_null()).then_some(Ok(FaultKind::Drop))
            }),
        ];
        let mut chosen = kinds.into_iter().flatten();
        let kind = chosen
            .next()
            .ok_or("one of `status`, `delay_ms`, `drop` is required")??;
        if chosen.next().is_some() {
            return Err("give only one of `status`, `delay_ms`, `drop`".into());
        }
        Ok(Fault {
            method,
            path,
            count,
            kind,
        })
    }

    fn matches(&self, method: &str, template: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && (self.path == "*" || self.path == template || self.path == path)
    }
}

/// A fault that strikes each matching request with a chance of `percent` in
/// 100, until cleared (`DELETE /_sim/faults`): "fail 20 % of meter events".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomFault {
    pub method: String,
    pub path: String,
    /// 1..=100.
    pub percent: u8,
    pub kind: FaultKind,
}

impl RandomFault {
    /// Reads the control-plane form: a fault's (`count` ignored) plus `percent`.
    pub fn from_json(v: &Value) -> Result<RandomFault, String> {
        let percent = v["percent"]
            .as_u64()
            .filter(|p| (1..=100).contains(p))
            .ok_or("`percent` must be 1..=100")? as u8;
        let fault = Fault::from_json(v)?;
        Ok(RandomFault {
            method: fault.method,
            path: fault.path,
            percent,
            kind: fault.kind,
        })
    }

    fn matches(&self, method: &str, template: &str, path: &str) -> bool {
        Fault {
            method: self.method.clone(),
            path: self.path.clone(),
            count: 1,
            kind: self.kind.clone(),
        }
        .matches(method, template, path)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<Fault>,
    random: Vec<RandomFault>,
}

impl Faults {
    pub(crate) fn add(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.rules.push(fault);
        }
    }

    pub(crate) fn add_random(&mut self, fault: RandomFault) {
        self.random.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
        self.random.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.random.is_empty()
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.rules.clone()
    }

    pub(crate) fn list_random(&self) -> Vec<RandomFault> {
        self.random.clone()
    }

    /// Consumes one use of the first matching rule; else rolls the dice of
    /// each matching random fault, in the order they were added.
    pub(crate) fn take(&mut self, method: &str, template: &str, path: &str) -> Option<FaultKind> {
        let Some(idx) = self
            .rules
            .iter()
            .position(|f| f.matches(method, template, path))
        else {
            return self
                .random
                .iter()
                .filter(|f| f.matches(method, template, path))
                .find(|f| rand::Rng::gen_range(&mut rand::thread_rng(), 0..100u8) < f.percent)
                .map(|f| f.kind.clone());
        };
        let rule = &mut self.rules[idx];
        rule.count -= 1;
        let kind = rule.kind.clone();
        if rule.count == 0 {
            self.rules.remove(idx);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_counts_down() {
        let f = Fault::from_json(
            &json!({"method":"post","path":"/v1/customers","count":2,"status":500}),
        )
        .unwrap();
        assert_eq!(f.kind, FaultKind::Status(500));
        let mut faults = Faults::default();
        faults.add(f);
        assert_eq!(faults.take("GET", "/v1/customers", "/v1/customers"), None);
        assert!(faults
            .take("POST", "/v1/customers", "/v1/customers")
            .is_some());
        assert!(faults
            .take("POST", "/v1/customers", "/v1/customers")
            .is_some());
        assert_eq!(faults.take("POST", "/v1/customers", "/v1/customers"), None);
        assert!(Fault::from_json(&json!({"path":"/v1/x","drop":true,"status":500})).is_err());
        assert_eq!(
            Fault::from_json(&json!({"path":"/v1/x","drop":true}))
                .unwrap()
                .kind,
            FaultKind::Drop
        );
        assert!(Fault::from_json(&json!({"path":"/v1/x"})).is_err());
    }
}
