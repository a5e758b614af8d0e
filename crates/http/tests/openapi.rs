//! Checks the generated OpenAPI document (`tix_http::openapi::ApiDoc`, served at
//! `/api/v1/openapi.json`): valid OpenAPI 3.1 for utoipa's model, deterministic, every route of
//! the router documented with its methods and nothing else, every reference resolving, every
//! error body the server can build matching the `Problem` schema, and the documented limits
//! equal to the ones the handlers enforce.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tix_core::Rejection;
use tix_http::ApiError;
use tix_http::openapi::{ApiDoc, document_json};
use utoipa::OpenApi;
use utoipa::openapi::OpenApiVersion;

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

/// The generated document as JSON.
fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
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
        .expect("the document has a paths object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for method in METHODS.iter().filter(|m| item.contains_key(**m)) {
            routes.insert((path.clone(), (*method).to_owned()));
        }
    }
    routes
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

// Builds the document twice and through utoipa's model: 3.1, identical bytes, nothing lost.
#[test]
fn document_is_openapi_3_1_and_serializes_deterministically() {
    let spec = ApiDoc::openapi();
    assert!(
        spec.openapi == OpenApiVersion::Version31,
        "the document must declare OpenAPI 3.1.x"
    );
    assert!(!spec.paths.paths.is_empty(), "the document has no paths");
    let first = document_json();
    assert_eq!(first, document_json(), "two builds serialize differently");
    let parsed: utoipa::openapi::OpenApi =
        serde_json::from_str(&first).expect("the document parses as utoipa's OpenApi");
    let again = parsed.to_pretty_json().expect("serializes");
    assert_eq!(
        first, again,
        "utoipa's model does not keep the document as built"
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
        "the router and the OpenAPI document disagree\n\
         in the router but missing from the document (add #[utoipa::path] and list the handler \
         in openapi::ApiDoc) ({}):\n  {}\n\
         in the document but not in the router ({}):\n  {}",
        undocumented.len(),
        undocumented.join("\n  "),
        unrouted.len(),
        unrouted.join("\n  "),
    );
}

// Every operation names a bearer requirement, an optional bearer (anonymous or signed in, as the
// assistant) or none, has a 2xx and documents 500 and 503.
#[test]
fn every_operation_documents_success_internal_and_unavailable() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes.keys().collect::<Vec<_>>(), ["bearerAuth"]);
    assert_eq!(schemes["bearerAuth"]["scheme"], json!("bearer"));
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let responses = operation["responses"].as_object().expect("responses");
            let at = format!("{} {path}", method.to_uppercase());
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{at}: no success"
            );
            for status in ["500", "503"] {
                assert!(responses.contains_key(status), "{at}: no {status}");
            }
            if let Some(security) = operation.get("security") {
                let required = json!([{"bearerAuth": []}]);
                let optional = json!([{}, {"bearerAuth": []}]);
                assert!(
                    *security == required || *security == optional,
                    "{at}: {security}"
                );
                assert!(responses.contains_key("401"), "{at}: secured but no 401");
            }
        }
    }
}

/// Every error the handlers can answer, with the variants' fields filled in.
fn every_error() -> Vec<ApiError> {
    let rejections = [
        Rejection::UnknownEvent,
        Rejection::SoldOut,
        Rejection::SeatTaken { seat: 5 },
        Rejection::SeatOutOfRange { seat: 9, seats: 8 },
        Rejection::SeatBlocked { seat: 1 },
        Rejection::SeatNotApplicable,
        Rejection::DuplicateSeat { seat: 3 },
        Rejection::BadQuantity {
            quantity: 11,
            max: 10,
        },
        Rejection::CustomerLimit { max: 4 },
        Rejection::KeyReused,
        Rejection::BadKey,
        Rejection::BadTtl { max_ms: 1000 },
        Rejection::UnknownHold,
        Rejection::NotYours,
        Rejection::HoldExpired,
        Rejection::UnknownTicket,
        Rejection::AlreadyRefunded,
        Rejection::AlreadyCheckedIn,
        Rejection::NotRefundable,
    ];
    let mut errors: Vec<ApiError> = rejections.into_iter().map(ApiError::Rejected).collect();
    let extra = json!({"at": "2027-06-01T19:42:10Z", "by": null});
    errors.extend([
        ApiError::MalformedJson("x".into()),
        ApiError::invalid("venue.lat", "out of range"),
        ApiError::Unauthenticated,
        ApiError::BadCredentials,
        ApiError::TooManyAttempts { retry_after_s: 8 },
        ApiError::TooManySignups { retry_after_s: 60 },
        ApiError::CrossOrigin,
        ApiError::UnsupportedMediaType,
        ApiError::PayloadTooLarge,
        ApiError::MethodNotAllowed,
        ApiError::Forbidden("no"),
        ApiError::NotFound("event"),
        ApiError::UsernameTaken,
        ApiError::LastAdmin,
        ApiError::VersionConflict { current_version: 3 },
        ApiError::PaymentDeclined("declined".into()),
        ApiError::CheckInRefused {
            reason: "already_admitted",
            detail: "already admitted".into(),
            extra: extra.as_object().cloned().expect("an object"),
        },
        ApiError::CheckInRefused {
            reason: "refunded",
            detail: "refunded".into(),
            extra: Default::default(),
        },
        ApiError::Image(tix_core::ImageProblem::Empty),
        ApiError::Image(tix_core::ImageProblem::TooLarge {
            bytes_max: tix_core::EVENT_IMAGE_BYTES_MAX as u32,
        }),
        ApiError::Image(tix_core::ImageProblem::Svg),
        ApiError::Image(tix_core::ImageProblem::UnsupportedType),
        ApiError::Image(tix_core::ImageProblem::Malformed),
        ApiError::Image(tix_core::ImageProblem::Animated),
        ApiError::Image(tix_core::ImageProblem::TooManyPixels {
            width: 9000,
            height: 10,
        }),
        ApiError::ImageContentType,
        ApiError::Unavailable("no leader".into()),
        ApiError::ClusterUnavailable {
            cause: "internal".into(),
        },
    ]);
    errors
}

/// Checks `value` against a property schema of `Problem`: its type and enum.
fn conforms(value: &Value, schema: &Value, components: &Value) -> Result<(), String> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(target) => {
            let name = target.rsplit('/').next().expect("a name");
            &components["schemas"][name]
        }
        None => schema,
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let type_ok = types.iter().any(|t| match *t {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "null" => value.is_null(),
        _ => true,
    });
    if !types.is_empty() && !type_ok {
        return Err(format!("{value} is not {types:?}"));
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return Err(format!("{value} is not one of {values:?}"));
    }
    Ok(())
}

// Renders every ApiError (every domain refusal included) and checks each member against Problem.
#[test]
fn every_problem_body_matches_the_problem_schema() {
    let doc = document();
    let components = &doc["components"];
    let problem = &components["schemas"]["Problem"];
    let properties = problem["properties"].as_object().expect("properties");
    let required = problem["required"].as_array().expect("required");
    for error in every_error() {
        let (status, body) = error.problem();
        for name in required {
            let name = name.as_str().expect("a name");
            assert!(
                body.contains_key(name),
                "{error:?}: no `{name}` in {body:?}"
            );
        }
        for (name, value) in &body {
            let schema = properties
                .get(name)
                .unwrap_or_else(|| panic!("{error:?}: `{name}` is not in the Problem schema"));
            if let Err(why) = conforms(value, schema, components) {
                panic!("{error:?}: `{name}`: {why}");
            }
        }
        assert_eq!(body["status"], json!(status.as_u16()));
        let kind = body["type"].as_str().expect("a type");
        let kind = kind
            .strip_prefix("https://tix.invalid/problems/")
            .unwrap_or_else(|| panic!("{error:?}: type {kind}"));
        assert!(
            !kind.is_empty() && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{error:?}: kind {kind}"
        );
        if let Some(outcome) = body.get("outcome") {
            assert_eq!(outcome, &json!("rejected"), "{error:?}");
        }
    }
}

/// Reads a number at a JSON pointer of the document.
fn number_at(doc: &Value, pointer: &str) -> u64 {
    doc.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {pointer}"))
}

// Reads the documented bounds and compares them with the constants the handlers validate with.
#[test]
fn documented_limits_are_the_enforced_ones() {
    let doc = document();
    let limits = tix_core::Limits::default();
    let schemas = "/components/schemas";
    let checks: Vec<(String, u64)> = vec![
        (
            format!("{schemas}/SignupBody/properties/username/minLength"),
            tix_http::auth::USERNAME_CHARS_MIN as u64,
        ),
        (
            format!("{schemas}/SignupBody/properties/username/maxLength"),
            tix_http::auth::USERNAME_CHARS_MAX as u64,
        ),
        (
            format!("{schemas}/SignupBody/properties/password/minLength"),
            tix_http::auth::PASSWORD_CHARS_MIN as u64,
        ),
        (
            format!("{schemas}/SignupBody/properties/password/maxLength"),
            tix_http::auth::PASSWORD_CHARS_MAX as u64,
        ),
        (
            format!("{schemas}/EventCreateRequest/properties/description/maxLength"),
            tix_http::events::DESCRIPTION_CHARS_MAX as u64,
        ),
        (
            format!("{schemas}/EventCreateRequest/properties/price_cents/maximum"),
            limits.price_cents_max,
        ),
        (
            format!("{schemas}/InventoryBody/oneOf/0/properties/capacity/maximum"),
            u64::from(limits.event_capacity_max),
        ),
        (
            format!("{schemas}/InventoryBody/oneOf/1/properties/seats/maximum"),
            u64::from(limits.event_capacity_max),
        ),
        (
            format!("{schemas}/InventoryBody/oneOf/1/properties/blocked/maxItems"),
            tix_http::events::BLOCKED_SEATS_MAX as u64,
        ),
        (
            format!("{schemas}/PurchaseBody/properties/client_id/maxLength"),
            u64::from(limits.key_bytes_max),
        ),
        (
            format!("{schemas}/PurchaseBody/properties/seat/maximum"),
            u64::from(limits.event_capacity_max),
        ),
        (
            format!("{schemas}/HoldRequest/allOf/0/properties/quantity/maximum"),
            u64::from(limits.seats_per_order_max),
        ),
        (
            format!("{schemas}/HoldRequest/allOf/0/properties/seats/maxItems"),
            u64::from(limits.seats_per_order_max),
        ),
        (
            format!("{schemas}/BatchBody/properties/purchases/maxItems"),
            tix_http::sales::PURCHASE_BATCH_ITEMS_MAX as u64,
        ),
        (
            "/paths/~1api~1v1~1events/get/parameters/4/schema/maximum".to_owned(),
            u64::from(tix_http::events::PER_PAGE_MAX),
        ),
        (
            "/paths/~1api~1v1~1events~1{id}~1image/put/parameters/1/schema/maxLength".to_owned(),
            tix_core::IMAGE_ALT_CHARS_MAX as u64,
        ),
    ];
    for (pointer, enforced) in checks {
        assert_eq!(number_at(&doc, &pointer), enforced, "{pointer}");
    }
    // Names are limited after trimming, in the pattern: a first and a last character and at most
    // NAME_CHARS_MAX - 2 between them.
    let between = format!("{{0,{}}}", tix_http::events::NAME_CHARS_MAX - 2);
    for pointer in [
        format!("{schemas}/EventCreateRequest/properties/name/pattern"),
        format!("{schemas}/VenueBody/properties/name/pattern"),
    ] {
        let pattern = doc.pointer(&pointer).and_then(Value::as_str);
        assert!(
            pattern.is_some_and(|p| p.contains(&between)),
            "{pointer}: {pattern:?} does not bound the length with {between}"
        );
    }
    // The same for a cancellation's reason, bounded by the core's limit.
    let between = format!("{{0,{}}}", tix_core::CANCEL_REASON_CHARS_MAX - 2);
    let pointer = format!("{schemas}/CancelBody/properties/reason/pattern");
    let pattern = doc.pointer(&pointer).and_then(Value::as_str);
    assert!(
        pattern.is_some_and(|p| p.contains(&between)),
        "{pointer}: {pattern:?} does not bound the length with {between}"
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
        "unresolved references in the document: {broken:?}"
    );
}
