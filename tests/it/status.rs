//! The connector state through the built binary: `seedwatch status --json` after real runs
//! (pending, online, degraded, offline), and the `status` function of `seedwatch serve` while a
//! reconcile runs (refreshing) and after it, as JSON and as the page, rendered by a real
//! headless Chromium.

use crate::support::{cli, fake_asm, fake_azure, host_emulator};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cli::Run;
use host_emulator::HostEmulator;

const KEY: &str = "asm-key-for-status-tests-never-printed";
const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const TAG: &str = "cloud-connector";
const SUB_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SUB_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
/// The function key an operator's address carries; it must never be written into the page.
const FUNCTION_KEY: &str = "fn-key-9d2c1b-must-not-appear";

struct World {
    azure: fake_azure::FakeAzure,
    asm: fake_asm::FakeAsm,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let azure = fake_azure::FakeAzure::start().await;
        azure.load(vec![
            fake_azure::public_ip(&pip(SUB_A), "203.0.113.1"),
            fake_azure::public_ip(&pip(SUB_B), "198.51.100.1"),
        ]);
        let asm = fake_asm::FakeAsm::start(KEY).await;
        asm.add_scan(SCAN);
        World {
            azure,
            asm,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn settings(&self, key: &str) -> Vec<(String, String)> {
        let yaml = format!(
            "scan_id: {SCAN}\nseed_tag: {TAG}\ndelete_stale_seeds: true\n\
             http:\n  retry_count: 1\n  retry_base_delay: 10ms\n  retry_max_delay: 20ms\n  timeout: 5s\n\
             asm:\n  base_url: {}\n\
             azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n\
             ledger:\n  kind: local\n  path: {}\n",
            self.asm.base_url(),
            self.azure.base_url(),
            self.dir.path().join("ledger.redb").display()
        );
        vec![
            ("CONNECTOR_CONFIG".into(), yaml),
            ("API_KEY".into(), key.into()),
            ("IDENTITY_ENDPOINT".into(), self.azure.identity_endpoint()),
            ("IDENTITY_HEADER".into(), self.azure.identity_header()),
            ("AZURE_CLIENT_ID".into(), self.azure.client_id()),
        ]
    }

    async fn run(&self, args: &[&str], key: &str) -> Run {
        cli::run(args, self.dir.path(), self.settings(key)).await
    }

    async fn status(&self, key: &str) -> (Run, Value) {
        let run = self.run(&["status", "--json"], key).await;
        let json = run.json();
        (run, json)
    }
}

fn pip(sub: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip")
}

fn reasons(status: &Value) -> String {
    status["reasons"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_then_online_then_offline_with_a_refused_key() {
    let w = World::start().await;
    let (run, status) = w.status(KEY).await;
    assert_eq!(status["state"], "pending", "{status:#}");
    assert!(reasons(&status).contains("no reconcile has finished yet"));
    assert_eq!(run.code, Some(1));

    w.run(&["sync"], KEY).await.ok();
    let (run, status) = w.status(KEY).await;
    assert_eq!(status["state"], "online", "{status:#}");
    assert_eq!(run.code, Some(0));
    let last = &status["runs"][0];
    assert_eq!(
        (last["trigger"].as_str(), last["result"].as_str()),
        (Some("cli"), Some("ok")),
        "{last}"
    );
    assert_eq!(last["added"], 2);
    assert_eq!(last["complete"], true);
    assert_eq!(last["seeds_by_check"]["check_public_ip_addresses"], 2, "{last}");

    let (run, status) = w.status("a-refused-key").await;
    assert_eq!(status["state"], "offline", "{status:#}");
    assert!(reasons(&status).contains("API_KEY"), "{status:#}");
    assert_eq!(run.code, Some(2));
    assert!(!run.stdout.contains(KEY));
    // The text form says the same.
    let text = w.run(&["status"], KEY).await;
    assert!(text.stdout.starts_with("state: online"), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_reconcile_degrades_the_connector() {
    let w = World::start().await;
    w.azure.forbid(SUB_B);
    w.run(&["sync"], KEY).await;
    let (run, status) = w.status(KEY).await;
    assert_eq!(status["state"], "degraded", "{status:#}");
    assert!(reasons(&status).contains("incomplete"), "{status:#}");
    assert!(reasons(&status).contains("seedwatch check"), "{status:#}");
    assert_eq!(run.code, Some(1));
    assert_eq!(status["runs"][0]["complete"], false);
}

/// A GET of the status function, as the host sends it, with this `Accept` header.
fn status_invocation(accept: &str) -> Value {
    json!({
        "Data": {"req": {
            "Url": format!("https://seedwatch.azurewebsites.net/api/status?code={FUNCTION_KEY}"),
            "Method": "GET",
            "Query": {"code": FUNCTION_KEY},
            "Headers": {"Accept": [accept], "Host": ["seedwatch.azurewebsites.net"]},
            "Params": {},
            "Identities": []
        }},
        "Metadata": {"Query": {"code": FUNCTION_KEY}, "Headers": {"Accept": accept}, "sys": {"MethodName": "status"}}
    })
}

async fn status_of(host: &HostEmulator, accept: &str) -> Value {
    let response = host
        .invoke("status", &status_invocation(accept), "inv-status", false)
        .await;
    response.assert_host_readable();
    assert_eq!(response.status, 200, "{}", response.body);
    response.body["Outputs"]["res"].clone()
}

/// Asks for the status until `state`, within a generous deadline.
async fn wait_for_state(host: &HostEmulator, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = status_of(host, "application/json").await;
        if res["body"]["state"] == state {
            return res["body"].clone();
        }
        assert!(Instant::now() < deadline, "never {state}: {res:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_function_shows_a_running_reconcile_then_serves_the_page() {
    let w = World::start().await;
    let settings = w.settings(KEY);
    let mut pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("LOG_LEVEL", "info"));
    let host = Arc::new(HostEmulator::start(&pairs).await);
    assert_eq!(wait_for_state(&host, "pending").await["state"], "pending");

    // A reconcile held inside its sweep: the state is refreshing until it ends.
    w.azure.hold_graph();
    let timer = {
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            host.invoke("reconcile", &host_emulator::timer_invocation(false), "inv-timer", false)
                .await
        })
    };
    let refreshing = wait_for_state(&host, "refreshing").await;
    assert!(
        refreshing["reasons"].to_string().contains("timer reconcile"),
        "{refreshing:#}"
    );
    w.azure.release_graph();
    assert_eq!(timer.await.unwrap().status, 200);
    let online = wait_for_state(&host, "online").await;
    assert_eq!(online["runs"][0]["trigger"], "timer", "{online:#}");
    assert!(online["last_event_applied"].is_null(), "{online:#}");

    // An applied event is recorded.
    let event = host_emulator::resources_event("Microsoft.Resources.ResourceWriteSuccess", &pip(SUB_A));
    let applied = host
        .invoke(
            "resource-events",
            &host_emulator::event_invocation(&event),
            "inv-event",
            false,
        )
        .await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    let after = wait_for_state(&host, "online").await;
    assert!(after["last_event_applied"].is_string(), "{after:#}");

    // A probe from `seedwatch check` is dropped by the retry function, not retried.
    let probe = host_emulator::servicebus_invocation(r#"{"kind":"probe","from":"seedwatch check"}"#, "probe-1", 1);
    let dropped = host.invoke("retry", &probe, "inv-probe", false).await;
    assert_eq!(dropped.status, 200, "{}", dropped.body);
    assert!(dropped.logs_text().contains("probe dropped"));

    // The read-only part of `check` ran at start-up and was logged.
    let startup: Vec<Value> = host
        .log_records()
        .into_iter()
        .filter(|r| r.to_string().contains("start-up check"))
        .collect();
    assert!(startup.iter().any(|r| r.to_string().contains("asm.key")), "{startup:?}");

    let page = status_of(&host, "text/html,application/xhtml+xml").await;
    assert_eq!(page["statusCode"], 200);
    assert!(
        page["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page["body"].as_str().unwrap().to_string();
    assert!(!html.contains(FUNCTION_KEY), "the key was written into the page");
    render_in_chromium(&html);
}

/// Where the page and its screenshot are kept (a test artifact).
fn artifact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("status-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> std::process::Command {
    let mut cmd = std::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ]);
    cmd.args(["--window-size=412,915", "--virtual-time-budget=5000"]);
    cmd
}

/// Opens the page as the operator would (with `?code=` in the address), reads the DOM after
/// its scripts ran, and keeps a phone-sized screenshot.
fn render_in_chromium(html: &str) {
    let dir = artifact_dir();
    let page = dir.join("status.html");
    std::fs::write(&page, html).unwrap();
    let url = format!("file://{}?code={FUNCTION_KEY}", page.display());
    let dom = chromium().arg("--dump-dom").arg(&url).output().unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}): run the tests through scripts/test.sh, which installs it")
    });
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    std::fs::write(dir.join("status.dom.html"), &dom).unwrap();
    assert!(
        dom.contains("data-ready=\"true\""),
        "the page's script did not run: {dom}"
    );
    assert!(dom.contains(">online</span>"), "no state shown: {dom}");
    assert!(dom.matches("class=\"run\"").count() >= 1, "no run shown");
    assert!(dom.contains("data-wired=\"true\""), "the button is not wired");
    let endpoint = dom
        .split("data-endpoint=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("");
    assert!(
        endpoint.ends_with("/resync"),
        "the button calls {endpoint:?}, not resync"
    );
    assert!(!dom.contains(FUNCTION_KEY), "the key was written into the DOM");
    assert!(dom.contains("class=\"series\""), "no chart series");
    let shot = dir.join("status.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium()
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
}
