//! The layer rules of `docs/ARCHITECTURE.md`, enforced. The test reads the
//! document's ```` ```layers ```` block, so the rules checked are exactly the
//! rules written, and scans every file in `src/` for `crate::…` paths, paths
//! into the listed crates and, inside `routes/`, `super::…` paths. It is a
//! text scan, not the compiler: comments and string literals are skipped,
//! and a name a file binds itself (`mod stripe;`, `use crate::stripe;`) is
//! not mistaken for the crate of the same name.

use std::path::Path;

/// Which modules (or files, `metrics/http`) a rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// `*`
    Any,
    /// A list; `-` is the empty one.
    Only(Vec<String>),
    /// `!a !b`: anywhere but these.
    AllBut(Vec<String>),
}

impl Allowed {
    fn parse(entries: &[&str]) -> Allowed {
        match entries {
            ["*"] => Allowed::Any,
            ["-"] => Allowed::Only(Vec::new()),
            _ if entries.iter().all(|e| e.starts_with('!')) => {
                Allowed::AllBut(entries.iter().map(|e| e[1..].to_owned()).collect())
            }
            _ => Allowed::Only(entries.iter().map(|e| (*e).to_owned()).collect()),
        }
    }

    /// Whether a place is admitted; `names` are the ways to name it, most
    /// general first (`metrics`, `metrics/http`).
    fn admits(&self, names: &[&str]) -> bool {
        let listed = |list: &[String]| list.iter().any(|entry| names.contains(&entry.as_str()));
        match self {
            Allowed::Any => true,
            Allowed::Only(list) => listed(list),
            Allowed::AllBut(list) => !listed(list),
        }
    }

    fn describe(&self) -> String {
        match self {
            Allowed::Any => "*".into(),
            Allowed::Only(list) if list.is_empty() => "-".into(),
            Allowed::Only(list) => list.join(" "),
            Allowed::AllBut(list) => list
                .iter()
                .map(|e| format!("!{e}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The three tables of the block.
#[derive(Debug, Default)]
struct Rules {
    /// Top-level module → which modules it may import.
    modules: Vec<(String, Allowed)>,
    /// Crate or crate path (`actix_web::rt`) → which modules may use it.
    crates: Vec<(String, Allowed)>,
    /// File of `routes/` (`routes/mod`, or `routes/*`) → which sibling files.
    routes: Vec<(String, Allowed)>,
}

impl Rules {
    fn parse(document: &str) -> Rules {
        let start = document
            .find("```layers\n")
            .expect("docs/ARCHITECTURE.md has a ```layers block");
        let block = &document[start + "```layers\n".len()..];
        let block = &block[..block.find("\n```").expect("the layers block is closed")];
        let mut rules = Rules::default();
        let mut section = None;
        for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(header) = line.strip_prefix('#') {
                section = Some(
                    header
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
                continue;
            }
            let mut words = line.split_whitespace();
            let keys = words.next().unwrap_or_default();
            let entries: Vec<&str> = words.collect();
            assert!(
                !entries.is_empty(),
                "a layers rule without a right side: {line}"
            );
            let table = match section.as_deref() {
                Some("module") => &mut rules.modules,
                Some("crate") => &mut rules.crates,
                Some("file") => &mut rules.routes,
                other => panic!("a layers rule outside a known section ({other:?}): {line}"),
            };
            for key in keys.split(',') {
                table.push((key.to_owned(), Allowed::parse(&entries)));
            }
        }
        rules
    }

    fn module(&self, name: &str) -> Option<&Allowed> {
        self.modules
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, allowed)| allowed)
    }

    /// The rule of the longest key that `path` starts with, segment-wise.
    fn crate_rule(&self, path: &str) -> Option<(&str, &Allowed)> {
        self.crates
            .iter()
            .filter(|(key, _)| path == key || path.starts_with(&format!("{key}::")))
            .max_by_key(|(key, _)| key.len())
            .map(|(key, allowed)| (key.as_str(), allowed))
    }

    fn is_listed_crate(&self, name: &str) -> bool {
        self.crates
            .iter()
            .any(|(key, _)| key.split("::").next() == Some(name))
    }

    fn routes_file(&self, file: &str) -> Option<&Allowed> {
        let exact = self.routes.iter().find(|(key, _)| key == file);
        let any = self.routes.iter().find(|(key, _)| key == "routes/*");
        exact.or(any).map(|(_, allowed)| allowed)
    }
}

/// The source with comments, string and character literals blanked out
/// (newlines kept, so line numbers still hold).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && !is_ident(chars.get(i.wrapping_sub(1)).copied())
        {
            // A raw string: r"…", r#"…"#.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            out.push_str(&" ".repeat(2 + hashes));
            i += 2 + hashes;
            while i < chars.len() && !chars[i..].iter().collect::<String>().starts_with(&close) {
                out.push(blank(chars[i]));
                i += 1;
            }
            out.push_str(&" ".repeat(close.len()));
            i += close.len();
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\''), not a lifetime.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\\') {
                j += 2;
            } else {
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            out.push_str(&" ".repeat(j + 1 - i));
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Every path of two or more segments (`a::b…`) that starts where no other
/// path continues, with its line number.
fn paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let starts = is_ident(Some(chars[i]))
                && !is_ident(i.checked_sub(1).map(|p| chars[p]))
                && !(i >= 1 && chars[i - 1] == ':');
            if !starts {
                i += 1;
                continue;
            }
            let mut path = String::new();
            let mut j = i;
            loop {
                let begin = j;
                while j < chars.len() && is_ident(Some(chars[j])) {
                    j += 1;
                }
                path.extend(&chars[begin..j]);
                let separated = chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':');
                if separated && is_ident(chars.get(j + 2).copied()) {
                    path.push_str("::");
                    j += 2;
                } else {
                    if separated {
                        // `a::{b, c}` or `a::*`: the path so far is what is named.
                        path.push_str("::");
                    }
                    break;
                }
            }
            if path.contains("::") {
                found.push((number + 1, path.trim_end_matches("::").to_owned()));
            }
            i = j.max(i + 1);
        }
    }
    found
}

/// Whether `name` is bound in the file itself (a submodule, or a module
/// of this crate imported under its own name), not an external crate.
fn binds_locally(code: &str, name: &str) -> bool {
    let squeezed: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    [
        format!("mod {name};"),
        format!("mod {name} {{"),
        format!("use crate::{name};"),
        format!("use crate::{name}::{{self"),
        format!("use super::{name};"),
        format!("use super::{name}::{{self"),
    ]
    .iter()
    .any(|binding| squeezed.contains(binding.as_str()))
}

/// The ways to name the place of `file` (relative to `src/`), most general
/// first: `billing`, `billing/webhooks`.
fn place(file: &str) -> (String, String) {
    let key = file
        .trim_end_matches(".rs")
        .trim_end_matches("/mod")
        .to_owned();
    let top = key.split('/').next().unwrap_or_default().to_owned();
    (top, key)
}

/// Every reference of `file` (relative to `src/`) that the rules forbid.
fn violations(rules: &Rules, file: &str, source: &str) -> Vec<String> {
    let code = code_only(source);
    let (top, key) = place(file);
    let names = [top.as_str(), key.as_str()];
    let mut found = Vec::new();
    let Some(module_rule) = rules.module(&top) else {
        return vec![format!(
            "src/{file}: module `{top}` has no rule in the layers block"
        )];
    };
    for (line, path) in paths(&code) {
        let mut segments = path.split("::");
        let first = segments.next().unwrap_or_default();
        let second = segments.next().unwrap_or_default();
        if first == "crate" {
            if second != top && !module_rule.admits(&[second]) {
                found.push(format!(
                    "src/{file}:{line}: `{top}` imports crate::{second} (allowed: {})",
                    module_rule.describe()
                ));
            }
        } else if rules.is_listed_crate(first) && !binds_locally(&code, first) {
            if let Some((crate_key, allowed)) = rules.crate_rule(&path) {
                if !allowed.admits(&names) {
                    found.push(format!(
                        "src/{file}:{line}: `{key}` uses {path} ({crate_key} only in: {})",
                        allowed.describe()
                    ));
                }
            }
        }
        // Inside routes/, files are checked by their own name (`routes/mod`).
        let file_key = file.trim_end_matches(".rs");
        let sibling = match (first, second) {
            ("super", _) => Some(second),
            ("crate", "routes") => path.split("::").nth(2),
            _ => None,
        };
        if let (true, Some(sibling)) = (top == "routes", sibling) {
            let own = file_key.trim_start_matches("routes/");
            let allowed = rules.routes_file(file_key).unwrap_or(&Allowed::Any);
            if sibling != own && !sibling.is_empty() && !allowed.admits(&[sibling]) {
                found.push(format!(
                    "src/{file}:{line}: `{file_key}` imports routes/{sibling} (allowed: {})",
                    allowed.describe()
                ));
            }
        }
    }
    found
}

fn rules() -> Rules {
    let document =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .expect("read docs/ARCHITECTURE.md");
    Rules::parse(&document)
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_file_in_src_imports_across_a_forbidden_edge() {
    let rules = rules();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "src/ was not found");
    let mut found = Vec::new();
    for path in &files {
        let file = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let source = std::fs::read_to_string(path).unwrap();
        found.extend(violations(&rules, &file, &source));
    }
    assert!(
        found.is_empty(),
        "imports across a layer that docs/ARCHITECTURE.md forbids:\n{}",
        found.join("\n")
    );
}

// The scanner itself, on made-up files: each forbidden line is caught, and
// what only looks like one is not.

fn check(file: &str, source: &str) -> Vec<String> {
    violations(&rules(), file, source)
}

#[test]
fn a_service_that_imports_the_http_layer_fails() {
    let found = check(
        "billing/fake.rs",
        "use crate::routes::billing::actor;\nuse crate::error::ApiError;\nuse actix_web::HttpResponse;\n",
    );
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("src/billing/fake.rs:1") && found[0].contains("crate::routes"));
    assert!(found[1].contains("crate::error"));
    assert!(found[2].contains("actix_web::HttpResponse"));
}

#[test]
fn a_handler_that_reaches_past_billing_fails() {
    let found = check(
        "routes/fake.rs",
        "fn f() { crate::db::interact(); let _ = crate::stripe::verify_event; }\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn only_the_gateways_use_their_crates() {
    assert_eq!(
        check("billing/fake.rs", "use stripe_webhook::Webhook;").len(),
        1
    );
    assert_eq!(
        check("routes/fake.rs", "fn f(_: stripe::Client) {}").len(),
        1
    );
    assert_eq!(check("billing/fake.rs", "use diesel::prelude::*;").len(), 1);
    assert_eq!(
        check("stripe/fake.rs", "#[derive(utoipa::ToSchema)] struct S;").len(),
        1
    );
    assert!(check("stripe/fake.rs", "use stripe_webhook::Webhook;").is_empty());
    assert!(check("db/fake.rs", "use diesel::prelude::*;").is_empty());
}

#[test]
fn the_runtime_is_allowed_where_the_document_says() {
    assert!(check("db/fake.rs", "fn f() { actix_web::web::block(|| ()); }").is_empty());
    assert!(check(
        "db/fake.rs",
        "fn f() { actix_web::rt::System::try_current(); }"
    )
    .is_empty());
    assert_eq!(check("db/fake.rs", "use actix_web::HttpResponse;").len(), 1);
    assert_eq!(
        check("billing/fake.rs", "fn f() { actix_web::rt::spawn(x); }").len(),
        1
    );
    assert_eq!(
        check("domain/fake.rs", "fn f() { tokio::spawn(x); }").len(),
        1
    );
    assert!(check("billing/fake.rs", "fn f() { tokio::task::spawn_local(x); }").is_empty());
}

#[test]
fn comments_strings_and_local_names_are_not_imports() {
    let source = r#"
        //! billing never uses crate::routes::billing
        /* nor actix_web::HttpResponse */
        use crate::stripe::{self, WebhookEvent};
        const A: &str = "crate::error::ApiError and actix_web::web";
        const B: &str = r"diesel::insert_into";
        const C: char = '"';
        fn f<'a>(x: &'a str) { stripe::verify_event(x); }
    "#;
    assert_eq!(check("billing/fake.rs", source), Vec::<String>::new());
    // `mod stripe;` in settings is its own `[stripe]` section.
    assert!(check(
        "settings/fake.rs",
        "mod stripe;\npub use stripe::StripeSettings;"
    )
    .is_empty());
}

#[test]
fn route_files_import_only_the_shared_route_modules() {
    let found = check(
        "routes/seats.rs",
        "use super::billing::actor;\nuse super::openapi::TenantPath;\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(check(
        "routes/seats.rs",
        "use super::extract::Actor;\nuse super::problems::TenantPath;\nuse super::state;\n"
    )
    .is_empty());
    assert!(check(
        "routes/openapi.rs",
        "fn f() { super::billing::get_billing; }"
    )
    .is_empty());
}

#[test]
fn a_module_without_a_rule_fails() {
    let found = check("newthing/mod.rs", "use crate::domain::TenantId;");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("has no rule"));
}
