//! A fuzzing target for `POST /graphql` (issue 14): documents and variables generated
//! from a grammar of GraphQL built on this schema's names, deep and wide (nesting into
//! the thousands, hundreds of repeated fields, NUL characters, numbers past 2^31,
//! undefined variables, token soup), sent by every kind of caller to a live server on
//! PostgreSQL. Properties: the server always answers with a status the GraphQL-over-HTTP
//! rules allow, never an internal error, never dies; and its memory stays bounded.
//!
//! Cases come from PROPTEST_CASES (64 when unset, so `cargo test` stays quick; CI runs
//! a few thousand, bounded in time).

use std::fmt::Write;

use engine::auth::Role;
use harness::live::token;
use harness::world::{served, ONE_TENANT};
use harness::TestDb;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

const FIELDS: &[&str] = &[
    "viewer",
    "role",
    "subject",
    "customers",
    "customer",
    "edges",
    "node",
    "cursor",
    "pageInfo",
    "hasNextPage",
    "endCursor",
    "id",
    "name",
    "stage",
    "tags",
    "timeline",
    "kind",
    "summary",
    "staff",
    "tagGroups",
    "staffMembers",
    "departures",
    "funnel",
    "projections",
    "eventsApplied",
    "job",
    "status",
    "wecomNotices",
    "__typename",
    "__schema",
    "types",
    "__type",
    "fields",
    "nope",
];

const MUTATIONS: &[&str] = &[
    "setRemark",
    "tagCustomer",
    "untagCustomer",
    "issueCoupon",
    "redeemCoupon",
    "createTagGroup",
    "createTag",
    "renameTag",
];

const ARGS: &[&str] = &[
    "first",
    "after",
    "id",
    "filter",
    "scope",
    "stages",
    "by",
    "status",
    "input",
    "customerId",
    "remark",
    "idempotencyKey",
    "valueFen",
    "expiresAt",
    "name",
    "if",
    "activeSince",
];

const ENUMS: &[&str] = &[
    "FRIEND", "LOYAL", "LOST", "MINE", "STORE", "TENANT", "STORE_ID", "FAILED", "true", "null",
];

const TYPES: &[&str] = &[
    "ID!",
    "ID",
    "Int",
    "String!",
    "CustomerFilter",
    "[CustomerStage!]",
    "SetRemarkInput!",
    "IssueCouponInput",
    "DateTime",
    "Nope",
];

const STRINGS: &[&str] = &[
    "",
    "金饰",
    "a\\u0000b",
    "\\u0000",
    "\\\"",
    "\\\\",
    "\\uD800",
    "2026-13-45T25:61:00Z",
    "2030-01-01T00:00:00Z",
    "Q3VzdG9tZXI6d21YWFg=",
    "00000000-0000-0000-0000-000000000000",
    "x' OR '1'='1",
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "50",
    "2147483647",
    "2147483648",
    "-2147483649",
    "99999999999999999999999",
    "1e308",
    "1.5",
    "-0",
];

fn pick(words: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(words)
}

/// A GraphQL input value, nested up to a few levels (the deep ones come from `deep`).
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        pick(NUMBERS).prop_map(str::to_string),
        pick(STRINGS).prop_map(|s| format!("\"{s}\"")),
        pick(ENUMS).prop_map(str::to_string),
        pick(ARGS).prop_map(|a| format!("${a}")),
        Just("\"\"\"block \\\"\"\" string\"\"\"".to_string()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((pick(ARGS), inner), 0..6).prop_map(|v| {
                let fields: Vec<String> = v.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

/// A value nested `levels` deep in lists or objects: the shape that overflowed the stack.
fn deep() -> impl Strategy<Value = String> {
    // Mostly within the limit (so the parser and the resolvers see them), often far past.
    let levels = prop_oneof![3 => 0usize..80, 1 => 0usize..6_000];
    (levels, any::<bool>()).prop_map(|(levels, list)| {
        if list {
            format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
        } else {
            format!("{}1{}", "{a: ".repeat(levels / 3), "}".repeat(levels / 3))
        }
    })
}

fn arguments() -> impl Strategy<Value = String> {
    prop::collection::vec((pick(ARGS), prop_oneof![4 => value(), 1 => deep()]), 0..4).prop_map(
        |args| {
            if args.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = args.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("({})", list.join(", "))
            }
        },
    )
}

fn directives() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (pick(&["include", "skip", "deprecated", "nope"]), value()),
        0..2,
    )
    .prop_map(|ds| {
        ds.iter()
            .map(|(d, v)| format!(" @{d}(if: {v})"))
            .collect::<String>()
    })
}

/// A selection set: fields with aliases, arguments, directives and sub-selections,
/// inline fragments and spreads; some repeated hundreds of times (wide).
fn selection_set() -> impl Strategy<Value = String> {
    let field = (
        proptest::option::of(pick(FIELDS)),
        pick(FIELDS),
        arguments(),
        directives(),
    )
        .prop_map(|(alias, name, args, dirs)| match alias {
            Some(a) => format!("{a}: {name}{args}{dirs}"),
            None => format!("{name}{args}{dirs}"),
        })
        .boxed();
    let leaf =
        prop::collection::vec(field.clone(), 1..5).prop_map(|f| format!("{{ {} }}", f.join(" ")));
    leaf.prop_recursive(6, 64, 5, move |inner| {
        prop_oneof![
            prop::collection::vec((field.clone(), proptest::option::of(inner.clone())), 1..5)
                .prop_map(|items| {
                    let mut out = String::from("{ ");
                    for (f, sub) in items {
                        let _ = write!(out, "{f} {} ", sub.unwrap_or_default());
                    }
                    out.push('}');
                    out
                }),
            (inner.clone(), 1usize..800).prop_map(|(set, n)| {
                let body = set
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .to_string();
                // Wide, but mostly within the document cap however they nest.
                let n = n.min(15_000 / body.len().max(1)).max(1);
                format!("{{ {} }}", body.repeat(n))
            }),
            inner
                .clone()
                .prop_map(|set| format!("{{ ... on Query {set} ...F }}")),
            prop_oneof![3 => 0usize..60, 1 => 0usize..3_000].prop_map(|n| format!(
                "{}{}",
                "{ viewer ".repeat(n),
                "}".repeat(n)
            )),
        ]
    })
}

fn variable_definitions() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            pick(ARGS),
            pick(TYPES),
            proptest::option::of(prop_oneof![value(), deep()]),
        ),
        0..3,
    )
    .prop_map(|defs| {
        if defs.is_empty() {
            return String::new();
        }
        let list: Vec<String> = defs
            .iter()
            .map(|(n, t, d)| match d {
                Some(d) => format!("${n}: {t} = {d}"),
                None => format!("${n}: {t}"),
            })
            .collect();
        format!("({})", list.join(", "))
    })
}

/// A whole document: an operation (query, mutation or subscription), maybe named, maybe
/// with variables, and maybe fragments; or token soup.
fn document() -> impl Strategy<Value = String> {
    let operation = (
        pick(&[
            "",
            "query",
            "query Q",
            "mutation",
            "mutation M",
            "subscription",
        ]),
        variable_definitions(),
        selection_set(),
        pick(MUTATIONS),
        arguments(),
        proptest::option::of(selection_set()),
    )
        .prop_map(|(kind, vars, set, mutation, args, fragment)| {
            let body = if kind.starts_with("mutation") {
                format!("{{ {mutation}{args} {set} }}")
            } else {
                set
            };
            let keyword = if kind.is_empty() && !vars.is_empty() {
                "query"
            } else {
                kind
            };
            let mut doc = format!("{keyword}{vars} {body}");
            if let Some(f) = fragment {
                let _ = write!(doc, " fragment F on Query {f}");
            }
            doc
        });
    let soup = prop::collection::vec(
        pick(&[
            "{",
            "}",
            "(",
            ")",
            "[",
            "]",
            ":",
            "$",
            "@",
            "...",
            "!",
            "=",
            "\"",
            "\"\"\"",
            "#",
            "\n",
            "query",
            "fragment",
            "on",
            "viewer",
            "customers",
            "1",
            "\\",
            "\u{0}",
            ",",
            "|",
        ]),
        0..200,
    )
    .prop_map(|tokens| tokens.join(" "));
    prop_oneof![6 => operation, 1 => soup]
}

/// Variables as raw JSON text: an object of values, sometimes nested past what
/// serde_json accepts, sometimes not an object at all.
fn variables() -> impl Strategy<Value = String> {
    let json_leaf = prop_oneof![
        Just("null".to_string()),
        Just("\"a\\u0000b\"".to_string()),
        Just("\"金饰\"".to_string()),
        Just("2147483648".to_string()),
        Just("-1".to_string()),
        Just("\"2030-01-01T00:00:00Z\"".to_string()),
        Just("true".to_string()),
    ];
    let json = json_leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((pick(ARGS), inner), 0..5).prop_map(|v| {
                let f: Vec<String> = v.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", f.join(","))
            }),
        ]
    });
    prop_oneof![
        20 => prop::collection::vec((pick(ARGS), json), 0..4).prop_map(|v| {
            let f: Vec<String> = v.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", f.join(","))
        }),
        1 => (0usize..20_000).prop_map(|n| format!("{{\"f\":{}1{}}}", "[".repeat(n), "]".repeat(n))),
        1 => Just("[]".to_string()),
        1 => Just("\"x\"".to_string()),
    ]
}

/// The peak resident memory of this process (server included), in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn generated_documents_and_variables_never_break_the_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_db, api, guide) = runtime.block_on(async {
        let (db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
        let guide: String = projections::on_pool!(&api.engine.db, |pool| {
            sqlx::query_scalar(
                "SELECT staff_id FROM rm_customer_staff WHERE tenant_id = 'acme' \
                 GROUP BY staff_id ORDER BY count(*) DESC LIMIT 1",
            )
            .fetch_one(pool)
            .await
        })
        .unwrap();
        (db, api, guide)
    });
    let callers: Vec<Option<String>> = vec![
        None,
        Some("Bearer forged".into()),
        Some(format!(
            "Bearer {}",
            token("acme", Role::Guide, Some(&guide), &[])
        )),
        Some(format!(
            "Bearer {}",
            token("acme", Role::Operations, None, &[])
        )),
        Some(format!(
            "Bearer {}",
            token("acme", Role::Analyst, None, &[])
        )),
        Some(format!("Bearer {}", token("acme", Role::Admin, None, &[]))),
        Some(format!(
            "Bearer {}",
            token("ghost-tenant", Role::Admin, None, &[])
        )),
    ];
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    // No pooled connections: the server closes one whose body it refused (413), and a
    // pooled client would send the next case on it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/graphql", api.base);
    let before = peak_kib();
    let started = std::time::Instant::now();
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    let refusals = std::sync::Mutex::new(std::collections::BTreeMap::<String, u32>::new());
    let result = runner.run(
        &(document(), variables(), 0..callers.len()),
        |(doc, vars, who)| {
            let body = format!(
                "{{\"query\": {}, \"variables\": {vars}}}",
                serde_json::to_string(&doc).unwrap()
            );
            let too_big = body.len() > server::http::MAX_BODY_BYTES;
            let answered = runtime.block_on(async {
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(auth) = &callers[who] {
                    request = request.header("authorization", auth);
                }
                let response = request.send().await?;
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                Ok::<_, reqwest::Error>((
                    status,
                    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                ))
            });
            let (status, answer) = match answered {
                Ok(answer) => answer,
                // A body over the cap may be refused before the client has written it
                // all (a broken pipe): refused either way.
                Err(e) if too_big && e.is_request() => (413, Value::Null),
                Err(e) => return Err(TestCaseError::fail(format!("no answer: {e}"))),
            };
            *statuses.lock().unwrap().entry(status).or_default() += 1;
            if status == 400 {
                let why: String = answer["errors"][0]["message"]
                    .as_str()
                    .unwrap_or("-")
                    .chars()
                    .take(40)
                    .collect();
                *refusals.lock().unwrap().entry(why).or_default() += 1;
            }
            prop_assert!(
                matches!(status, 200 | 400 | 413 | 429),
                "status {status}: {answer}"
            );
            let internal = answer["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["extensions"]["code"] == "INTERNAL");
            prop_assert!(
                !internal,
                "an internal error for {doc:?} / {vars:?}: {answer}"
            );
            Ok(())
        },
    );
    let grown_mib = peak_kib().saturating_sub(before) / 1024;
    println!(
        "graphql fuzz: {cases} cases in {:.1} s, statuses {:?}, peak memory grew {grown_mib} MiB",
        started.elapsed().as_secs_f64(),
        statuses.lock().unwrap()
    );
    println!("refused before execution: {:?}", refusals.lock().unwrap());
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // Still serving, and memory did not grow with the cases.
    let alive = runtime.block_on(async {
        client
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(alive.ok(), Some(200));
    assert!(grown_mib < 512, "peak memory grew {grown_mib} MiB");
}
