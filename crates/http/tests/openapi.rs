//! Checks `openapi.json` (the hand-written OpenAPI document served at `/api/v1/openapi.json`)
//! against utoipa's model and against the routes registered in the router source.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tix_http::ops::OPENAPI_JSON;
use utoipa::openapi::{OpenApi, OpenApiVersion};

/// A route: its full path (axum and OpenAPI both write parameters as `{id}`) and its method.
type Route = (String, String);

/// Method names as they appear in axum's routing functions and as OpenAPI path-item keys.
const METHODS: [&str; 8] = [
    "get", "post", "put", "delete", "patch", "head", "options", "trace",
];

/// Paths served by the Swagger UI service, which are not `.route(...)` calls and not documented.
fn is_swagger_ui(path: &str) -> bool {
    path.starts_with("/api/docs") || path == "/api/v1/openapi.json"
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
}

/// Drops whole-line `//` comments, so routes shown in doc comments are not counted.
fn strip_line_comments(code: &str) -> String {
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Returns the text of a call's arguments: `text` starts just after the opening parenthesis.
fn call_arguments(text: &str) -> &str {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!(
        "unbalanced parentheses after: {}",
        &text[..text.len().min(80)]
    )
}

/// Returns the HTTP methods named in a route's method router, e.g. `get(list).post(create)`.
fn methods_in(handlers: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for method in METHODS {
        let call = format!("{method}(");
        for (at, _) in handlers.match_indices(&call) {
            let before = handlers[..at].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                found.insert(method.to_owned());
            }
        }
    }
    found
}

/// Returns the `(path, methods)` of every `.route("...", ...)` call in `code`.
fn route_calls(code: &str) -> Vec<(String, BTreeSet<String>)> {
    let code = strip_line_comments(code);
    let mut routes = Vec::new();
    for (at, call) in code.match_indices(".route(") {
        let arguments = call_arguments(&code[at + call.len()..]);
        let rest = arguments.trim_start();
        let rest = rest.strip_prefix('"').unwrap_or_else(|| {
            panic!("a .route( call whose path is not a string literal: .route({arguments})")
        });
        let end = rest.find('"').expect("the path literal is closed");
        let path = rest[..end].to_owned();
        let methods = methods_in(&rest[end + 1..]);
        assert!(
            !methods.is_empty(),
            "no get(/post(/put(/delete( found in .route({arguments})"
        );
        routes.push((path, methods));
    }
    routes
}

/// Reads `lib.rs` for the prefix the API is nested under and the modules merged into it:
/// `let api = Router::new().merge(auth::routes())...;` then `.nest("/api/v1", api)`.
fn nested_modules(lib: &str) -> (String, BTreeSet<String>) {
    let lib = strip_line_comments(lib);
    let nest_at = lib
        .find(".nest(")
        .expect("lib.rs nests the API router with .nest(");
    let nest = call_arguments(&lib[nest_at + ".nest(".len()..]);
    let (prefix, router) = nest.split_once(',').expect(".nest(prefix, router)");
    let prefix = prefix.trim().trim_matches('"').to_owned();
    let router = router.trim();
    let binding = format!("let {router} =");
    let start = lib
        .find(&binding)
        .unwrap_or_else(|| panic!("lib.rs has no `{binding}`"));
    let statement = &lib[start..start + lib[start..].find(';').expect("the let ends")];
    let mut modules = BTreeSet::new();
    for (at, _) in statement.match_indices("::routes()") {
        let head = &statement[..at];
        let name_start = head
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        modules.insert(head[name_start..].to_owned());
    }
    assert!(
        !modules.is_empty(),
        "no `module::routes()` merged into `{router}` in lib.rs"
    );
    (prefix, modules)
}

/// Every route registered in `src/*.rs`, with the file that registers it. Routes of the modules
/// merged into the nested API router get its prefix (`/api/v1`); the others are at the root.
fn router_routes() -> BTreeMap<Route, String> {
    let src = src_dir();
    let (prefix, nested) = nested_modules(&read(&src.join("lib.rs")));
    let mut files: Vec<PathBuf> = fs::read_dir(&src)
        .expect("src/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let mut routes = BTreeMap::new();
    for file in files {
        let module = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name")
            .to_owned();
        for (path, methods) in route_calls(&read(&file)) {
            let full = if nested.contains(&module) {
                format!("{prefix}{path}")
            } else {
                path
            };
            if is_swagger_ui(&full) {
                continue;
            }
            for method in methods {
                routes.insert((full.clone(), method), format!("src/{module}.rs"));
            }
        }
    }
    routes
}

/// Every (path, method) of the document's `paths`.
fn documented_routes(doc: &Value) -> BTreeSet<Route> {
    let paths = doc["paths"]
        .as_object()
        .expect("openapi.json has a paths object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for method in METHODS.iter().filter(|m| item.contains_key(**m)) {
            routes.insert((path.clone(), (*method).to_owned()));
        }
    }
    routes
}

/// Appends the JSON pointers where `a` and `b` differ.
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (x.get(key), y.get(key)) {
                    (Some(u), Some(v)) => differences(u, v, &here, out),
                    (Some(_), None) => out.push(format!("{here}: dropped")),
                    (None, Some(_)) => out.push(format!("{here}: added")),
                    (None, None) => unreachable!("the key came from one of the maps"),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                differences(u, v, &format!("{at}/{i}"), out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a == b => {}
        _ => out.push(format!("{at}: {a} became {b}")),
    }
}

/// Collects every `$ref` and discriminator mapping target in the document.
fn references(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => {
                        out.insert(target.clone());
                    }
                    ("mapping", Value::Object(mapping)) => {
                        out.extend(
                            mapping
                                .values()
                                .filter_map(|t| t.as_str().map(str::to_owned)),
                        );
                    }
                    _ => references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

// Deserializes the embedded document into utoipa's OpenApi, as ops::routes() does, and checks 3.1.
#[test]
fn document_parses_as_openapi_3_1() {
    let spec: OpenApi = serde_json::from_str(OPENAPI_JSON)
        .unwrap_or_else(|e| panic!("openapi.json does not deserialize as utoipa OpenApi: {e}"));
    assert!(
        spec.openapi == OpenApiVersion::Version31,
        "openapi.json must declare OpenAPI 3.1.x"
    );
    assert!(
        !spec.paths.paths.is_empty(),
        "openapi.json documents no paths"
    );
}

// Re-serializes the parsed OpenApi and diffs it with the file: whatever utoipa drops is not served.
#[test]
fn document_survives_the_utoipa_round_trip() {
    let original = document();
    let spec: OpenApi = serde_json::from_value(original.clone()).expect("parses as OpenApi");
    let served = serde_json::to_value(&spec).expect("serializes");
    let mut diffs = Vec::new();
    differences(&original, &served, "", &mut diffs);
    assert!(
        diffs.is_empty(),
        "utoipa changes openapi.json when it serves it (use only keywords its model keeps):\n  {}",
        diffs.join("\n  ")
    );
}

// Scans `.route(` calls in src/*.rs (API modules get /api/v1) and diffs (path, method) both ways.
#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let registered = router_routes();
    let documented = documented_routes(&document());
    let undocumented: Vec<String> = registered
        .iter()
        .filter(|(route, _)| !documented.contains(*route))
        .map(|((path, method), file)| format!("{} {path} ({file})", method.to_uppercase()))
        .collect();
    let unrouted: Vec<String> = documented
        .iter()
        .filter(|route| !registered.contains_key(*route))
        .map(|(path, method)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "the router and openapi.json disagree\n\
         in the router but missing from openapi.json ({}):\n  {}\n\
         in openapi.json but not in the router ({}):\n  {}",
        undocumented.len(),
        undocumented.join("\n  "),
        unrouted.len(),
        unrouted.join("\n  "),
    );
}

// Runs the route scanner on a snippet with chained, multi-line and commented-out routes.
#[test]
fn route_scanner_reads_chained_and_multiline_routes() {
    let code = r#"
        Router::new()
            // .route("/commented", get(nothing))
            .route("/events", get(list).post(create))
            .route(
                "/holds/{id}",
                get(get_hold).delete(release_hold),
            )
            .route("/x", routing::put(put_thing))
    "#;
    let routes = route_calls(code);
    let as_text: Vec<String> = routes
        .iter()
        .map(|(path, methods)| format!("{path} {methods:?}"))
        .collect();
    assert_eq!(
        as_text,
        [
            r#"/events {"get", "post"}"#,
            r#"/holds/{id} {"delete", "get"}"#,
            r#"/x {"put"}"#
        ]
    );
    let (prefix, modules) = nested_modules(&read(&src_dir().join("lib.rs")));
    assert_eq!(prefix, "/api/v1");
    assert!(
        modules.contains("auth") && modules.contains("shop"),
        "found {modules:?}"
    );
}

// Resolves every `$ref` and discriminator mapping target as a JSON pointer into the document.
#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut targets = BTreeSet::new();
    references(&doc, &mut targets);
    let resolves = |target: &str| {
        target
            .strip_prefix('#')
            .and_then(|p| doc.pointer(p))
            .is_some()
    };
    let broken: Vec<&String> = targets.iter().filter(|t| !resolves(t)).collect();
    assert!(
        broken.is_empty(),
        "unresolved references in openapi.json: {broken:?}"
    );
}
