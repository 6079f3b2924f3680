//! Stripe's search query language, the subset this simulator speaks:
//! `field:'v'` (exact), `field~'v'` (substring), `-field:'v'` (negation),
//! `metadata['k']:'v'`, `created>N` (and `>=`, `<`, `<=`, `:`), joined by `AND`.
//! Search is eventually consistent: an object appears only once its
//! `searchable_at_ms` (creation + search lag) has passed in simulator time.

use serde_json::Value;

use super::{Ctx, Table};
use crate::error::ApiError;
use crate::form::Params;
use crate::objects;

#[derive(Debug, PartialEq)]
enum Field {
    Plain(String),
    Metadata(String),
}

#[derive(Debug, PartialEq)]
struct Clause {
    negate: bool,
    field: Field,
    op: &'static str,
    value: String,
}

fn bad(query: &str, why: &str) -> ApiError {
    ApiError::invalid("query", format!("Invalid search query `{query}`: {why}."))
}

fn parse(query: &str, allowed: &[&str]) -> Result<Vec<Clause>, ApiError> {
    let mut clauses = Vec::new();
    let mut rest = query.trim();
    if rest.is_empty() {
        return Err(ApiError::missing_param("query"));
    }
    loop {
        let (clause, after) = parse_clause(rest, query)?;
        if let Field::Plain(f) = &clause.field {
            if f != "created" && !allowed.contains(&f.as_str()) {
                return Err(bad(query, &format!("field `{f}` is not supported")));
            }
        }
        clauses.push(clause);
        rest = after.trim_start();
        if rest.is_empty() {
            return Ok(clauses);
        }
        rest = rest
            .strip_prefix("AND ")
            .or_else(|| rest.strip_prefix("and "))
            .ok_or_else(|| {
                bad(
                    query,
                    "clauses must be joined by AND (OR is not supported here)",
                )
            })?
            .trim_start();
    }
}

fn parse_clause<'a>(s: &'a str, query: &str) -> Result<(Clause, &'a str), ApiError> {
    let (negate, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (field, s) = if let Some(r) = s.strip_prefix("metadata[") {
        let quote = r
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or_else(|| bad(query, "metadata key must be quoted"))?;
        let r = &r[1..];
        let end = r
            .find(quote)
            .ok_or_else(|| bad(query, "unterminated metadata key"))?;
        let key = r[..end].to_string();
        let r = r[end + 1..]
            .strip_prefix(']')
            .ok_or_else(|| bad(query, "expected `]`"))?;
        (Field::Metadata(key), r)
    } else {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        if end == 0 {
            return Err(bad(query, "expected a field name"));
        }
        (Field::Plain(s[..end].to_string()), &s[end..])
    };
    let op = ["<=", ">=", ":", "~", "<", ">"]
        .into_iter()
        .find(|op| s.starts_with(op))
        .ok_or_else(|| bad(query, "expected `:` after the field"))?;
    let s = &s[op.len()..];
    let (value, rest) = match s.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let mut out = String::new();
            let mut chars = s[1..].char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    c if c == q => {
                        end = Some(i + 2);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| bad(query, "unterminated string"))?;
            (out, &s[end..])
        }
        _ => {
            let end = s.find(char::is_whitespace).unwrap_or(s.len());
            if end == 0 {
                return Err(bad(query, "expected a value"));
            }
            (s[..end].to_string(), &s[end..])
        }
    };
    Ok((
        Clause {
            negate,
            field,
            op,
            value,
        },
        rest,
    ))
}

fn matches(obj: &Value, c: &Clause) -> bool {
    let actual = match &c.field {
        Field::Metadata(k) => obj["metadata"].get(k),
        Field::Plain(f) => obj.get(f),
    };
    let hit = match (c.op, actual) {
        (_, None | Some(Value::Null)) => false,
        (":", Some(Value::String(s))) => *s == c.value,
        ("~", Some(Value::String(s))) => s.to_lowercase().contains(&c.value.to_lowercase()),
        (op, Some(Value::Number(n))) => match (n.as_i64(), c.value.parse::<i64>()) {
            (Some(a), Ok(b)) => match op {
                ":" => a == b,
                ">" => a > b,
                ">=" => a >= b,
                "<" => a < b,
                "<=" => a <= b,
                _ => false,
            },
            _ => false,
        },
        (":", Some(Value::Bool(b))) => c.value.parse::<bool>().ok() == Some(*b),
        _ => false,
    };
    hit != c.negate
}

/// Runs a search over `table`; `page` is the opaque cursor from `next_page`.
pub(super) fn run(
    table: &Table,
    ctx: &Ctx,
    p: Params<'_>,
    url: &str,
    fields: &[&str],
) -> Result<Value, ApiError> {
    let query = p
        .str("query")?
        .ok_or_else(|| ApiError::missing_param("query"))?;
    let clauses = parse(&query, fields)?;
    let limit = p.limit()?;
    let after: Option<u64> = match p.str("page")? {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => Some(
            s.strip_prefix("page_")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| ApiError::invalid("page", format!("Invalid page token: {s}")))?,
        ),
    };
    let mut data = Vec::new();
    let mut last_seq = 0;
    let mut has_more = false;
    for e in table.iter_newest() {
        if after.is_some_and(|a| e.seq >= a) || e.searchable_at_ms > ctx.now_ms {
            continue;
        }
        if !clauses.iter().all(|c| matches(&e.obj, c)) {
            continue;
        }
        if data.len() == limit {
            has_more = true;
            break;
        }
        last_seq = e.seq;
        data.push(e.obj.clone());
    }
    let next = has_more.then(|| format!("page_{last_seq}"));
    Ok(objects::search_result(url, data, has_more, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_matches() {
        let c = parse(
            "metadata['tenant_id']:'t-1' AND email:\"a@b.c\"",
            &["email"],
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].field, Field::Metadata("tenant_id".into()));
        let obj = json!({"email": "a@b.c", "metadata": {"tenant_id": "t-1"}, "created": 10});
        assert!(c.iter().all(|c| matches(&obj, c)));
        let c = parse("created>5 AND -email:'x@y.z' AND email~'B.C'", &["email"]).unwrap();
        assert!(c.iter().all(|c| matches(&obj, c)));
        assert!(parse("email:'a' OR email:'b'", &["email"]).is_err());
        assert!(parse("bogus:'a'", &["email"]).is_err());
        assert!(parse("metadata[tenant]:'a'", &["email"]).is_err());
    }
}
