//! `scrm demo` as a new user meets it: no database configured, one command, a URL and
//! tokens printed, and both working; a second start reuses the data.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Demo {
    child: Child,
    url: String,
    guide_token: String,
    analyst_token: String,
    printed: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scrm"))
        .args(["demo", "--listen", "127.0.0.1:0", "--scale", "tiny"])
        .env_remove("DATABASE_URL")
        .env_remove("SCRM_JWT_SECRET")
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run scrm demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut guide_token, mut printed) = (None, None, String::new());
    let mut analyst_token = None;
    let (mut next_is_guide, mut next_is_analyst) = (false, false);
    for line in lines.by_ref() {
        let line = line.expect("stdout");
        printed.push_str(&line);
        printed.push('\n');
        let trimmed = line.trim();
        if next_is_guide {
            guide_token = Some(trimmed.to_string());
            next_is_guide = false;
        }
        if next_is_analyst {
            analyst_token = Some(trimmed.to_string());
            next_is_analyst = false;
        }
        next_is_analyst |= trimmed == "analyst:";
        if let Some(rest) = trimmed.strip_prefix("GraphiQL:") {
            url = rest.split_whitespace().next().map(str::to_string);
        }
        next_is_guide |= trimmed.starts_with("guide ");
        if trimmed.starts_with("Ctrl-C") {
            break;
        }
    }
    Demo {
        child,
        url: url.unwrap_or_else(|| panic!("no GraphiQL URL in:\n{printed}")),
        guide_token: guide_token.unwrap_or_else(|| panic!("no guide token in:\n{printed}")),
        analyst_token: analyst_token.unwrap_or_else(|| panic!("no analyst token in:\n{printed}")),
        printed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_graphiql_and_answers_its_printed_tokens() {
    let dir = std::env::temp_dir().join(format!("scrm-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let http = reqwest::Client::new();
    {
        let demo = start(&dir);
        assert!(
            demo.printed.contains("seeding the demo tenant"),
            "{}",
            demo.printed
        );
        let page = http.get(&demo.url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("graphiql"));
        let api = demo.url.replace("/graphiql", "/graphql");
        let body: serde_json::Value = http
            .post(&api)
            .bearer_auth(&demo.guide_token)
            .json(&serde_json::json!({ "query": "{ viewer { role } customers(first: 3) { edges { node { name stage } } } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["data"]["viewer"]["role"], "guide", "{body}");
        assert!(
            !body["data"]["customers"]["edges"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{body}"
        );
    }
    // Started again in the same place: the data is there, nothing is seeded twice.
    let demo = start(&dir);
    assert!(!demo.printed.contains("seeding"), "{}", demo.printed);
    // The generated mass messages are campaigns with a holdout: the printed query
    // answers with both arms.
    let at = demo
        .printed
        .find("{ campaignResults")
        .expect("a campaign query");
    let query = &demo.printed[at..];
    let end = "conversionUplift } }";
    let query = &query[..query.find(end).expect("the query's end") + end.len()];
    let query = query.replace('\n', " ");
    let api = demo.url.replace("/graphiql", "/graphql");
    let body: serde_json::Value = http
        .post(&api)
        .bearer_auth(&demo.analyst_token)
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = &body["data"]["campaignResults"];
    let reached = results["reached"]["customers"].as_i64().unwrap_or(0);
    let held = results["heldOut"]["customers"].as_i64().unwrap_or(0);
    assert!(reached > 0 && held > 0, "{query}\n{body}");
    assert!(reached > 2 * held, "one in ten held out: {body}");
    assert!(results["conversionUplift"].is_number(), "{body}");
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}
