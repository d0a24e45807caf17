//! The ASM API key never reaches the output of the built binary, whatever form the server
//! echoes it in and wherever a cut falls in the quoted text.

use crate::support::{cli, fake_asm, fake_azure, host_emulator};

use base64::Engine;
use fake_asm::{FakeAsm, Fault, Route};
use fake_azure::FakeAzure;

/// A key with characters that every encoding spells differently.
const KEY: &str = "hx-7Fq2+Zp/9w Lr\"8Tk=Vn%3Jd&Ye";
const SCAN: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const SUB: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// Every form of the key a server might echo.
fn key_forms() -> Vec<(&'static str, String)> {
    let json = serde_json::to_string(KEY).unwrap();
    let url = |upper: bool| -> String {
        KEY.bytes()
            .map(|b| match b {
                b if b.is_ascii_alphanumeric() || b == b'-' => (b as char).to_string(),
                b' ' => "+".into(),
                b if upper => format!("%{b:02X}"),
                b => format!("%{b:02x}"),
            })
            .collect()
    };
    vec![
        ("raw", KEY.to_string()),
        ("JSON-escaped", json[1..json.len() - 1].to_string()),
        ("URL-encoded, upper-case hex", url(true)),
        ("URL-encoded, lower-case hex", url(false)),
        (
            "base64 in a basic-auth header",
            base64::engine::general_purpose::STANDARD.encode(format!("api:{KEY}")),
        ),
    ]
}

/// Whether any 8-character piece of the key (or of one of its encoded forms) is in `text`.
fn leaks(text: &str) -> Option<String> {
    key_forms().into_iter().find_map(|(_, form)| {
        let form = form.as_bytes();
        let tail = form.len().saturating_sub(2);
        // The last characters of a base64 form mix in the bytes after the key.
        form[..tail.max(8)]
            .windows(8)
            .find(|piece| text.as_bytes().windows(8).any(|t| t == *piece))
            .map(|piece| String::from_utf8_lossy(piece).into_owned())
    })
}

fn env(asm: &FakeAsm, azure: &FakeAzure) -> Vec<(String, String)> {
    let yaml = format!(
        "scan_id: {SCAN}\nseed_tag: cloud-connector\n\
         http:\n  retry_count: 0\n  timeout: 5s\n\
         asm:\n  base_url: {}\n\
         azure:\n  credential: managed_identity\n  endpoints:\n    resource_manager: {}\n",
        asm.base_url(),
        azure.base_url()
    );
    vec![
        ("CONNECTOR_CONFIG".into(), yaml),
        ("API_KEY".into(), KEY.into()),
        ("LOG_LEVEL".into(), "trace".into()),
        ("IDENTITY_ENDPOINT".into(), azure.identity_endpoint()),
        ("IDENTITY_HEADER".into(), azure.identity_header()),
        ("AZURE_CLIENT_ID".into(), azure.client_id()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_the_key_reaches_stdout_or_stderr() {
    let azure = FakeAzure::start().await;
    let id = format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip-1");
    azure.load(vec![fake_azure::public_ip(&id, "203.0.113.7")]);
    let asm = FakeAsm::start(KEY).await;
    asm.add_scan(SCAN);
    for (form_name, form) in key_forms() {
        // The key placed across the 300-character cut of a quoted message, and again whole.
        for padding in [0, 276] {
            let message = format!("{}invalid key {form} given", "x".repeat(padding));
            for code in [Some("BAD_SEED".to_string()), None] {
                asm.fail_next(
                    Route::Add,
                    1,
                    Fault::BadRequest {
                        code: code.clone(),
                        message: message.clone(),
                    },
                );
                // A fresh ledger each time: a refusal is remembered, and the seed not sent again.
                let dir = tempfile::tempdir().unwrap();
                let run = cli::run(&["sync"], dir.path(), env(&asm, &azure)).await;
                assert_eq!(asm.seed_names(SCAN).len(), 0, "the add was refused: {run:?}");
                let output = format!("{}\n{}", run.stdout, run.stderr);
                assert!(
                    output.contains(&message[..12]),
                    "the message was quoted ({form_name}, code {code:?}): {run:?}"
                );
                if let Some(piece) = leaks(&output) {
                    panic!("{form_name} (padding {padding}, code {code:?}) leaked {piece:?}: {output}");
                }
            }
        }
    }
}

/// The same echoes through `seedwatch serve`, as the Functions host runs it: no piece of the key
/// reaches an invocation's `Logs` (which the host writes to Application Insights), stdout or
/// stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_the_key_reaches_the_handler_logs_stdout_or_stderr() {
    let azure = FakeAzure::start().await;
    let asm = FakeAsm::start(KEY).await;
    asm.add_scan(SCAN);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = env(&asm, &azure);
    settings[0].1 += &format!(
        "ledger:\n  kind: local\n  path: {}\n",
        dir.path().join("ledger.redb").display()
    );
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let host = host_emulator::HostEmulator::start(&pairs).await;

    let mut cases = Vec::new();
    for (form_name, form) in key_forms() {
        for padding in [0, 276] {
            for code in [Some("BAD_SEED".to_string()), None] {
                cases.push((
                    form_name,
                    format!("{}invalid key {form} given", "x".repeat(padding)),
                    code,
                ));
            }
        }
    }
    // One resource per case: a refused seed is remembered, and not sent again for that resource.
    let estate = (0..cases.len())
        .map(|n| fake_azure::public_ip(&pip(n), &format!("203.0.113.{}", n + 1)))
        .collect();
    azure.load(estate);

    let mut logs = Vec::new();
    for (n, (form_name, message, code)) in cases.iter().enumerate() {
        asm.fail_next(
            Route::Add,
            1,
            Fault::BadRequest {
                code: code.clone(),
                message: message.clone(),
            },
        );
        let event = host_emulator::resources_event("Microsoft.Resources.ResourceWriteSuccess", &pip(n));
        let response = host
            .invoke(
                "resource-events",
                &host_emulator::event_invocation(&event),
                &format!("inv-{n}"),
                false,
            )
            .await;
        response.assert_host_readable();
        let text = format!("{}\n{}", response.logs_text(), response.body);
        if let Some(piece) = leaks(&text) {
            panic!("{form_name} (code {code:?}) leaked {piece:?} into the invocation's answer: {text}");
        }
        logs.push(text);
    }
    assert!(asm.seed_names(SCAN).is_empty(), "every add was refused");
    let (stdout, stderr) = host.terminate_and_collect_output().await;
    let output = format!("{}\n{}\n{}", logs.join("\n"), stdout.join("\n"), stderr.join("\n"));
    assert!(
        output.contains("invalid key"),
        "the refusals were quoted, so the check looked at them: {output}"
    );
    if let Some(piece) = leaks(&output) {
        panic!("the handler leaked {piece:?}: {output}");
    }
}

fn pip(n: usize) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip-{n}")
}
