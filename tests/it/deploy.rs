//! Deployment checks: the Bicep template sets every app setting the code reads, grants exactly
//! the least-privilege roles, filters Event Grid to the tracked types; the Functions metadata
//! (`host.json`, `function/*/function.json`) matches the routes `seedwatch serve` answers; and
//! `scripts/package.sh` produces the zip layout the Functions host expects.
//!
//! These read the repository's own files: the template and the code are checked against each
//! other, so a new `env::var` read or a renamed function fails here before it fails in Azure.

use crate::support::template;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use template::{bicep_code, bicep_text};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn files_with_extension(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_with_extension(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

/// The shared reader (`tests/it/support/template.rs`) takes a setting only from code: one that is
/// commented out is not set.
#[test]
fn app_settings_are_read_from_code_not_comments() {
    let bicep = "appSettings: [\n  {\n    name: 'LOG_LEVEL'\n    value: 'info'\n  }\n  // {\n  //   name: 'OLD'\n  //   value: 'x'\n  // }\n  /*\n  {\n    name: 'BLOCK'\n    value: 'y'\n  }\n  */\n]\n";
    let settings = template::app_settings_in(&template::strip_bicep_comments(bicep));
    assert_eq!(
        settings,
        BTreeMap::from([("LOG_LEVEL".to_string(), "'info'".to_string())])
    );
    let everything = template::template_app_settings();
    assert!(
        everything.contains_key("AZURE_CLIENT_ID") && everything.contains_key("CONNECTOR_CONFIG"),
        "{everything:?}"
    );
}

#[test]
fn bicep_comments_are_stripped_and_strings_kept() {
    let text = "a: 'https://x/y' // allowSharedKeyAccess: false\n/* httpsOnly: true\n */b: 'it\\'s // kept'\nc: \'\'\'\n// in a string\n\'\'\'\n";
    let code = template::strip_bicep_comments(text);
    assert!(
        !code.contains("allowSharedKeyAccess") && !code.contains("httpsOnly"),
        "{code}"
    );
    assert!(
        code.contains("'https://x/y'") && code.contains("'it\\'s // kept'") && code.contains("// in a string"),
        "{code}"
    );
    assert_eq!(code.lines().count(), text.lines().count());
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Non-test source of every file under src/ (unit tests live after `#[cfg(test)]`, or in
/// `tests.rs` files).
fn source_files() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    files_with_extension(&repo().join("src"), "rs", &mut files);
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|f| {
            let text = read(&f);
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            (f, code)
        })
        .collect()
}

/// `line` after its leading `pub`, `pub(crate)` or `pub(super)`; a line that starts with `mod `
/// as it is (a private `mod env` counts too); otherwise `None`.
fn without_visibility(line: &str) -> Option<&str> {
    ["pub(crate) ", "pub(super) ", "pub "]
        .iter()
        .find_map(|v| line.strip_prefix(v))
        .or_else(|| line.starts_with("mod ").then_some(line))
}

/// The string values of every `env` constants module in src/ (`config::env`, which lists the
/// settings, and any other, such as the credential's), with the file that declares each.
fn env_module_names() -> BTreeMap<String, PathBuf> {
    let mut names = BTreeMap::new();
    for (file, code) in source_files() {
        let lines: Vec<&str> = code.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if without_visibility(trimmed) != Some("mod env {") {
                continue;
            }
            let closing = format!("{}}}", &line[..line.len() - trimmed.len()]);
            for inner in lines[at + 1..].iter().take_while(|l| **l != closing) {
                let inner = inner.trim();
                if !without_visibility(inner).is_some_and(|rest| rest.starts_with("const "))
                    || !inner.contains(": &str =")
                {
                    continue;
                }
                let value = inner
                    .split('"')
                    .nth(1)
                    .unwrap_or_else(|| panic!("env constant without a literal: {inner}"));
                assert!(is_env_name(value), "env constant {inner} is not a variable name");
                names.entry(value.to_string()).or_insert_with(|| file.clone());
            }
        }
    }
    assert!(
        names.contains_key("CONNECTOR_CONFIG"),
        "config::env not found: {names:?}"
    );
    names
}

/// Literal names passed to `var("…")` / `var_os("…")` anywhere in src/ outside test code.
fn literal_env_reads() -> BTreeMap<String, PathBuf> {
    let mut reads = BTreeMap::new();
    for (file, code) in source_files() {
        for pattern in ["var(\"", "var_os(\""] {
            for (at, _) in code.match_indices(pattern) {
                let name = code[at + pattern.len()..].split('"').next().unwrap_or_default();
                if is_env_name(name) {
                    reads.entry(name.to_string()).or_insert_with(|| file.clone());
                }
            }
        }
    }
    reads
}

/// Variables the code may read that the template deliberately does not set, and why.
const NOT_SET_BY_TEMPLATE: &[(&str, &str)] = &[
    // Set by the Functions host / App Service platform itself.
    ("FUNCTIONS_CUSTOMHANDLER_PORT", "the host picks the port and sets it"),
    ("FUNCTIONS_HTTPWORKER_PORT", "legacy name of the same, set by the host"),
    ("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "set by the host"),
    ("IDENTITY_ENDPOINT", "managed identity endpoint, set by App Service"),
    ("IDENTITY_HEADER", "managed identity secret header, set by App Service"),
    ("MSI_ENDPOINT", "legacy managed identity endpoint, set by App Service"),
    ("MSI_SECRET", "legacy managed identity secret, set by App Service"),
    ("WEBSITE_SITE_NAME", "set by App Service"),
    ("WEBSITE_HOSTNAME", "set by App Service"),
    ("WEBSITE_INSTANCE_ID", "set by App Service"),
    // Connection-string forms: the template uses the identity-based `__` settings instead.
    (
        "AzureWebJobsStorage",
        "connection-string form (Azurite, local runs); the template sets AzureWebJobsStorage__*",
    ),
    (
        "ServiceBusConnection",
        "connection-string form; the template sets ServiceBusConnection__fullyQualifiedNamespace",
    ),
    // Other credential kinds: laptops (Azure CLI), workload identity, client secrets, Lambda.
    (
        "AZURE_TENANT_ID",
        "client secret / workload identity credentials, not managed identity",
    ),
    ("AZURE_CLIENT_SECRET", "client secret credential (laptop, AWS Lambda)"),
    (
        "AZURE_FEDERATED_TOKEN_FILE",
        "workload identity (Kubernetes, AWS Lambda federation)",
    ),
    ("AZURE_AUTHORITY_HOST", "sovereign-cloud credentials outside Azure"),
    ("AZURE_CLIENT_CERTIFICATE_PATH", "certificate credential outside Azure"),
    (
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "certificate credential outside Azure (PKCS#12 password)",
    ),
    (
        "SSL_CERT_FILE",
        "extra CA roots (TLS-inspecting proxies, private CAs), never needed on Azure",
    ),
    ("AZURE_CONFIG_DIR", "Azure CLI credential (laptops)"),
    // AWS Lambda runtime (issue 8), never on Azure.
    ("AWS_LAMBDA_RUNTIME_API", "set by the Lambda runtime"),
    ("AWS_LAMBDA_FUNCTION_NAME", "set by the Lambda runtime"),
    ("AWS_REGION", "set by the Lambda runtime"),
    (
        "WEBHOOK_SECRET",
        "seedwatch-lambda's function URL secret (docs/deploy-aws.md), never on Azure",
    ),
    // Process and terminal.
    ("HOME", "process environment"),
    ("PATH", "process environment"),
    ("TERM", "terminal detection"),
    ("NO_COLOR", "terminal colour preference"),
    ("RUST_LOG", "local debugging; LOG_LEVEL is the setting"),
    ("RUST_BACKTRACE", "local debugging"),
];

#[test]
fn template_sets_every_setting_the_code_reads() {
    let settings = template::template_app_settings();
    assert!(
        settings.contains_key("AzureWebJobsStorage__accountName"),
        "the app-settings parser found nothing sensible: {settings:?}"
    );
    let not_set: BTreeMap<&str, &str> = NOT_SET_BY_TEMPLATE.iter().copied().collect();

    let mut read_by_code = BTreeMap::new();
    for (name, file) in env_module_names().into_iter().chain(literal_env_reads()) {
        let file = file.strip_prefix(repo()).unwrap_or(&file).display().to_string();
        read_by_code.entry(name).or_insert(file);
    }

    let missing: Vec<String> = read_by_code
        .iter()
        .filter(|(name, _)| !settings.contains_key(name.as_str()) && !not_set.contains_key(name.as_str()))
        .map(|(name, file)| format!("{name} (read in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "app settings the code reads but infra/ does not set (set them in infra/modules/app.bicep, or list them in NOT_SET_BY_TEMPLATE with the reason): {missing:?}"
    );

    // The allow list must not hide something the template does set.
    let both: Vec<&&str> = not_set.keys().filter(|n| settings.contains_key(**n)).collect();
    assert!(both.is_empty(), "listed as not set but set by the template: {both:?}");
}

#[test]
fn settings_hold_no_keys_and_secrets_come_from_key_vault() {
    let bicep = bicep_text();
    let settings = template::app_settings_in(&bicep);
    for secret in ["API_KEY", "CONNECTOR_CONFIG"] {
        let value = settings.get(secret).unwrap_or_else(|| panic!("{secret} is not set"));
        assert!(
            value.starts_with("'@Microsoft.KeyVault(SecretUri="),
            "{secret} must be a Key Vault reference, is {value}"
        );
    }
    // Identity-based connections only: no connection strings, no keys.
    for name in ["AzureWebJobsStorage", "ServiceBusConnection", "AzureWebJobsServiceBus"] {
        assert!(!settings.contains_key(name), "{name} would be a connection string");
    }
    for (name, value) in &settings {
        for forbidden in ["AccountKey=", "SharedAccessKey", "listKeys(", "listConnectionStrings("] {
            assert!(!value.contains(forbidden), "{name} carries a key ({forbidden})");
        }
    }
    for name in ["AzureWebJobsStorage__credential", "ServiceBusConnection__credential"] {
        assert_eq!(
            settings.get(name).map(String::as_str),
            Some("'managedidentity'"),
            "{name}"
        );
    }
    for name in [
        "AzureWebJobsStorage__clientId",
        "ServiceBusConnection__clientId",
        "AZURE_CLIENT_ID",
    ] {
        assert_eq!(
            settings.get(name).map(String::as_str),
            Some("identity.properties.clientId"),
            "{name} must select the user-assigned identity"
        );
    }
    assert_eq!(
        settings.get("FUNCTIONS_WORKER_RUNTIME").map(String::as_str),
        Some("'custom'")
    );
    for fact in [
        "allowSharedKeyAccess: false",
        "allowBlobPublicAccess: false",
        "minimumTlsVersion: 'TLS1_2'",
        "disableLocalAuth: true",
        "enableRbacAuthorization: true",
        "enablePurgeProtection: true",
        "deadLetteringOnMessageExpiration: true",
        "requiresDuplicateDetection: true",
        "keyVaultReferenceIdentity: identity.id",
        "httpsOnly: true",
    ] {
        assert!(bicep.contains(fact), "infra/ no longer says `{fact}`");
    }
}

/// Built-in role definition ids the template may use, and who gets them.
const ALLOWED_ROLES: &[(&str, &str)] = &[
    (
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Reader: identity, monitored subscriptions or management group",
    ),
    (
        "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
        "Azure Service Bus Data Sender: identity, retry queue",
    ),
    (
        "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
        "Azure Service Bus Data Receiver: identity, retry queue",
    ),
    (
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "Storage Blob Data Reader: identity, package container (Consumption)",
    ),
    (
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "Storage Table Data Contributor: identity, storage account (the ledger creates its table)",
    ),
    (
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User: identity, vault",
    ),
    (
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "Key Vault Secrets Officer: deployer only, vault",
    ),
    (
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Storage Blob Data Contributor: identity on the host containers and (Flex) the package \
         container; deployer on the package container (Consumption)",
    ),
];

/// Every role assignment in infra/modules/app.bicep as (principal, role, scope), exactly.
const APP_ROLE_ASSIGNMENTS: &[(&str, &str, &str)] = &[
    (
        "identity.properties.principalId",
        "roles.storageBlobDataContributor",
        "hostContainers[i]",
    ),
    ("identity.properties.principalId", "packageRoleId", "packageContainer"),
    (
        "identity.properties.principalId",
        "roles.storageTableDataContributor",
        "storage",
    ),
    ("identity.properties.principalId", "roleId", "retryQueue"),
    ("identity.properties.principalId", "roles.keyVaultSecretsUser", "vault"),
    ("deployerPrincipalId", "roles.keyVaultSecretsOfficer", "vault"),
    (
        "deployerPrincipalId",
        "roles.storageBlobDataContributor",
        "packageContainer",
    ),
];

/// The value after `key: ` on the first line of `block` that has it.
fn field<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    block.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::trim)
}

#[test]
fn app_role_assignments_are_exactly_these_with_their_scopes() {
    let app = bicep_code(&repo().join("infra/modules/app.bicep"));
    let mut found = Vec::new();
    for block in app.split("Microsoft.Authorization/roleAssignments@").skip(1) {
        let role = field(
            block,
            "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', ",
        )
        .and_then(|r| r.strip_suffix(')'))
        .expect("roleDefinitionId");
        let scope = field(block, "scope: ").expect("role assignment without scope");
        let principal = field(block, "principalId: ").expect("principalId");
        found.push((principal.to_string(), role.to_string(), scope.to_string()));
    }
    let expected: Vec<(String, String, String)> = APP_ROLE_ASSIGNMENTS
        .iter()
        .map(|(p, r, s)| (p.to_string(), r.to_string(), s.to_string()))
        .collect();
    assert_eq!(found, expected, "role assignments in app.bicep");
    // What the indirections stand for.
    for fact in [
        "var packageRoleId = isFlex ? roles.storageBlobDataContributor : roles.storageBlobDataReader",
        "for (name, i) in hostContainerNames: {",
        "var hostContainerNames = [\n  'azure-webjobs-hosts'\n  'azure-webjobs-secrets'\n]",
        "var queueRoleIds = [\n  roles.serviceBusDataSender\n  roles.serviceBusDataReceiver\n]",
        "for roleId in queueRoleIds: {",
        "if (!empty(deployerPrincipalId) && !isFlex) {\n  name: guid(packageContainer.id, deployerPrincipalId, roles.storageBlobDataContributor)",
    ] {
        assert!(app.contains(fact), "app.bicep no longer says `{fact}`");
    }
    assert!(
        !app.contains("AzureWebJobsStorage__queueServiceUri"),
        "the host gets no queue endpoint: it has no queue role"
    );
}

#[test]
fn basic_auth_publishing_is_disabled_for_scm_and_ftp() {
    let app = bicep_code(&repo().join("infra/modules/app.bicep"));
    let mut policies = BTreeSet::new();
    for block in app
        .split("'Microsoft.Web/sites/basicPublishingCredentialsPolicies@")
        .skip(1)
    {
        let block: String = block.lines().take_while(|l| *l != "}").collect::<Vec<_>>().join("\n");
        assert_eq!(field(&block, "parent: "), Some("site"), "{block}");
        assert_eq!(field(&block, "allow: "), Some("false"), "{block}");
        policies.insert(field(&block, "name: ").unwrap_or_default().to_string());
    }
    assert_eq!(policies, BTreeSet::from(["'ftp'".to_string(), "'scm'".to_string()]));
}

const FORBIDDEN_ROLES: &[(&str, &str)] = &[
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
    ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner"),
    ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Storage Queue Data Contributor"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    ("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator"),
];

fn guids(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    for start in 0..bytes.len().saturating_sub(35) {
        let candidate = &text.as_bytes()[start..start + 36];
        let shaped = candidate.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
        if shaped {
            found.insert(String::from_utf8_lossy(candidate).to_lowercase());
        }
    }
    found
}

#[test]
fn role_assignments_are_exactly_the_least_privilege_set() {
    let bicep = bicep_text();
    let used = guids(&bicep);
    for (id, name) in FORBIDDEN_ROLES {
        assert!(!used.contains(*id), "infra/ uses the {name} role");
    }
    let allowed: BTreeSet<String> = ALLOWED_ROLES.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(
        used, allowed,
        "role definition ids in infra/ differ from the reviewed least-privilege set"
    );
    // Every role assignment goes to the identity or to the explicit deployer parameter.
    let mut assignments = 0;
    for block in bicep.split("Microsoft.Authorization/roleAssignments@").skip(1) {
        assignments += 1;
        let principal = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("principalId: "))
            .expect("role assignment without principalId");
        assert!(
            ["identity.properties.principalId", "principalId", "deployerPrincipalId"].contains(&principal),
            "role assignment to an unexpected principal: {principal}"
        );
    }
    assert!(
        assignments >= 6,
        "expected the identity's role assignments, found {assignments}"
    );
}

/// Types whose changes matter besides the extractor registry's owner types.
const TRACKED_BESIDES_OWNERS: &[&str] = &[
    // A companion: its static-website flag changes the storage account's seeds.
    "microsoft.storage/storageaccounts/blobservices",
    // Deleting a resource group deletes every owner in it.
    "microsoft.resources/subscriptions/resourcegroups",
];

/// Owner types deliberately left out of the Event Grid filter, and why.
const NOT_EVENT_TRACKED: &[(&str, &str)] = &[(
    "microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces/ipconfigurations/publicipaddresses",
    "VMSS instance public IPs raise no ARM event of their own (they come and go with scale operations); \
     the timer reconcile covers them",
)];

fn tracked_prefixes() -> Vec<String> {
    let path = repo().join("infra/tracked-operations.json");
    let json: Value = serde_json::from_str(&read(&path)).expect("infra/tracked-operations.json is not JSON");
    json["prefixes"]
        .as_array()
        .expect("tracked-operations.json: prefixes must be an array")
        .iter()
        .map(|p| p.as_str().expect("prefixes must be strings").to_string())
        .collect()
}

#[test]
fn event_filter_covers_every_tracked_type_without_overlap() {
    let prefixes = tracked_prefixes();
    for prefix in &prefixes {
        assert!(
            prefix.ends_with('/'),
            "{prefix} must end with '/' (else redis/ matches redisEnterprise)"
        );
        assert!(
            prefix.starts_with("Microsoft."),
            "{prefix} is not an operation-name prefix"
        );
        assert!(
            prefix.len() <= 512,
            "Event Grid string values are at most 512 characters"
        );
    }
    // Disjoint (case-insensitively, as Event Grid compares): no event reaches two subscriptions.
    for (i, a) in prefixes.iter().enumerate() {
        for b in prefixes.iter().skip(i + 1) {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            assert!(!a.starts_with(&b) && !b.starts_with(&a), "{a} and {b} overlap");
        }
    }
    let owners: Vec<&str> = seedwatch::domain::extract::registry()
        .iter()
        .map(|e| e.arm_type)
        .collect();
    assert!(owners.len() >= 25, "the extractor registry looks empty: {owners:?}");
    let skipped: BTreeSet<&str> = NOT_EVENT_TRACKED.iter().map(|(t, _)| *t).collect();
    for arm_type in &skipped {
        assert!(
            owners.contains(arm_type),
            "{arm_type} is listed as not event-tracked but is not an owner type"
        );
    }
    for arm_type in owners
        .iter()
        .copied()
        .filter(|t| !skipped.contains(t))
        .chain(TRACKED_BESIDES_OWNERS.iter().copied())
    {
        // operationName = <type path>/write|delete|action: a type is covered when one prefix
        // is a prefix of "<type>/".
        let operation = format!("{arm_type}/write");
        assert!(
            prefixes.iter().any(|p| operation.starts_with(&p.to_lowercase())),
            "no Event Grid prefix covers {arm_type}"
        );
    }
    let events = bicep_code(&repo().join("infra/modules/events.bicep"));
    for event_type in [
        "'Microsoft.Resources.ResourceWriteSuccess'",
        "'Microsoft.Resources.ResourceDeleteSuccess'",
        "'Microsoft.Resources.ResourceActionSuccess'",
    ] {
        assert!(
            events.contains(event_type),
            "events.bicep does not include {event_type}"
        );
    }
    assert!(
        !events.contains("Failure'") && !events.contains("Cancel'"),
        "only Success events are delivered"
    );
    for fact in [
        "var maxValuesPerSubscription = 25",
        "key: 'data.operationName'",
        "operatorType: 'StringBeginsWith'",
        "endpointType: 'AzureFunction'",
        "topicType: 'Microsoft.Resources.Subscriptions'",
        "deadLetterWithResourceIdentity",
        "loadJsonContent('../tracked-operations.json')",
    ] {
        assert!(events.contains(fact), "events.bicep no longer says `{fact}`");
    }
    let main = bicep_code(&repo().join("infra/main.bicep"));
    assert!(
        main.contains("/functions/resource-events'"),
        "the event destination must be the resource-events function"
    );
}

// ---- Functions metadata against the handler's routes ----

const FUNCTIONS: &[&str] = &["reconcile", "resource-events", "resync", "retry", "status"];

/// host.json and the function folders must be in the repository.
fn assert_functions_metadata_present() {
    assert!(
        repo().join("host.json").is_file(),
        "host.json missing at the repository root"
    );
    for name in FUNCTIONS {
        let path = repo().join("function").join(name).join("function.json");
        assert!(path.is_file(), "{} missing", path.display());
    }
}

fn function_json(name: &str) -> Value {
    let path = repo().join("function").join(name).join("function.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: not valid JSON: {e}", path.display()))
}

fn single_binding<'a>(function: &'a Value, binding_type: &str, name: &str) -> &'a Value {
    let bindings = function["bindings"].as_array().expect("bindings must be an array");
    let matching: Vec<&Value> = bindings.iter().filter(|b| b["type"] == binding_type).collect();
    assert_eq!(matching.len(), 1, "expected one {binding_type} binding in {bindings:?}");
    assert_eq!(matching[0]["name"], name, "{binding_type} binding name");
    matching[0]
}

/// Route paths registered in `seedwatch serve`: string literals passed to `.route("…"` in the
/// handler's source.
fn serve_routes() -> BTreeSet<String> {
    let mut files = Vec::new();
    files_with_extension(&repo().join("src/transport/functions"), "rs", &mut files);
    files.push(repo().join("src/transport/cli/serve.rs"));
    let mut routes = BTreeSet::new();
    for file in files.iter().filter(|f| f.is_file()) {
        let text = read(file);
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (at, _) in text.match_indices(".route(") {
            let rest = text[at + ".route(".len()..].trim_start();
            if let Some(literal) = rest.strip_prefix('"') {
                routes.insert(literal.split('"').next().unwrap_or_default().to_string());
            }
        }
    }
    routes
}

#[test]
fn function_bindings_match_the_issue_and_the_serve_routes() {
    assert_functions_metadata_present();
    let reconcile = function_json("reconcile");
    let timer = single_binding(&reconcile, "timerTrigger", "timer");
    assert_eq!(timer["direction"], "in");
    assert_eq!(
        timer["schedule"], "%RECONCILE_SCHEDULE%",
        "the schedule comes from the app setting"
    );

    let events = function_json("resource-events");
    assert_eq!(single_binding(&events, "eventGridTrigger", "event")["direction"], "in");

    let resync = function_json("resync");
    let request = single_binding(&resync, "httpTrigger", "req");
    assert_eq!(request["authLevel"], "function");
    let methods: Vec<String> = request["methods"]
        .as_array()
        .expect("resync methods")
        .iter()
        .map(|m| m.as_str().unwrap_or_default().to_lowercase())
        .collect();
    assert!(
        methods.contains(&"post".to_string()),
        "resync must accept POST: {methods:?}"
    );
    assert_eq!(single_binding(&resync, "http", "res")["direction"], "out");

    let retry = function_json("retry");
    let message = single_binding(&retry, "serviceBusTrigger", "msg");
    assert_eq!(message["queueName"], "%RETRY_QUEUE%");
    assert_eq!(message["connection"], "ServiceBusConnection");

    let status = function_json("status");
    let request = single_binding(&status, "httpTrigger", "req");
    assert_eq!(request["authLevel"], "function");
    assert_eq!(request["methods"], Value::from(vec!["get"]), "status answers GET only");
    assert_eq!(single_binding(&status, "http", "res")["direction"], "out");

    // Every %SETTING% the metadata refers to is set by the template; the connection prefix too.
    let settings = template::template_app_settings();
    let mut metadata = read(&repo().join("host.json"));
    for name in FUNCTIONS {
        metadata.push_str(&read(&repo().join("function").join(name).join("function.json")));
    }
    for reference in metadata.split('%').skip(1).step_by(2) {
        assert!(
            settings.contains_key(reference),
            "%{reference}% is not set by the template"
        );
    }
    assert!(settings.contains_key("ServiceBusConnection__fullyQualifiedNamespace"));

    // One route per function folder, and no route without a function.
    let routes = serve_routes();
    for name in FUNCTIONS {
        assert!(
            routes.contains(&format!("/{name}")),
            "serve has no route /{name}: {routes:?}"
        );
    }
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(repo().join("function")).unwrap() {
        let entry = entry.unwrap();
        if entry.path().join("function.json").is_file() {
            folders.push(entry.file_name().to_string_lossy().to_string());
        }
    }
    folders.sort();
    let mut expected: Vec<String> = FUNCTIONS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(folders, expected, "function folders");
    for route in &routes {
        let name = route.trim_start_matches('/');
        assert!(
            name.is_empty() || FUNCTIONS.contains(&name),
            "serve route {route} has no function folder"
        );
    }

    let host: Value = serde_json::from_str(&read(&repo().join("host.json"))).expect("host.json is not JSON");
    assert_eq!(host["version"], "2.0");
    let description = &host["customHandler"]["description"];
    assert_eq!(
        description["defaultExecutablePath"], "seedwatch",
        "the zip's binary is `seedwatch`"
    );
    let arguments = description["arguments"].as_array().expect("customHandler arguments");
    assert!(
        arguments.iter().any(|a| a == "serve"),
        "the host must run `seedwatch serve`"
    );
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
}

// ---- Packaging ----

/// Lists a zip's entries with their Unix modes, through python3's zipfile (always present).
fn zip_entries(zip: &Path) -> BTreeMap<String, u32> {
    let output = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             print(json.dumps({i.filename: (i.external_attr >> 16) & 0o7777 for i in z.infolist()}))",
        )
        .arg(zip)
        .output()
        .expect("python3 is needed to read the zip");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("zip listing")
}

fn zip_member(zip: &Path, member: &str) -> Vec<u8> {
    let output = Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile\nsys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))")
        .arg(zip)
        .arg(member)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn package(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join("scripts/package.sh"))
        .args(args)
        .output()
        .expect("run scripts/package.sh")
}

/// `scripts/package.sh` packaging an already built `binary` with the metadata under `source`.
fn package_prebuilt(binary: &Path, source: &Path, out: &Path) -> std::process::Output {
    package(&[
        "--skip-build",
        "--binary",
        binary.to_str().unwrap(),
        "--source",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn package_script_builds_the_layout_the_host_expects() {
    assert_functions_metadata_present();
    let scratch = tempfile::tempdir().unwrap();
    let source = repo();
    let out = scratch.path().join("dist");
    let binary = Path::new(env!("CARGO_BIN_EXE_seedwatch"));
    let output = package_prebuilt(binary, &source, &out);
    assert!(
        output.status.success(),
        "package.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let zip = out.join("seedwatch.zip");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        zip.to_str().unwrap(),
        "prints the zip path"
    );

    let entries = zip_entries(&zip);
    let mut expected: BTreeSet<String> = ["host.json", "seedwatch"].iter().map(|s| s.to_string()).collect();
    for name in FUNCTIONS {
        expected.insert(format!("{name}/function.json"));
    }
    assert_eq!(entries.keys().cloned().collect::<BTreeSet<_>>(), expected, "zip layout");
    assert_eq!(entries["seedwatch"] & 0o111, 0o111, "the binary must stay executable");
    assert_eq!(entries["host.json"] & 0o111, 0, "metadata is not executable");

    assert_eq!(
        zip_member(&zip, "seedwatch"),
        std::fs::read(binary).unwrap(),
        "the binary is packaged unchanged"
    );
    assert_eq!(
        zip_member(&zip, "host.json"),
        std::fs::read(source.join("host.json")).unwrap()
    );
    for name in FUNCTIONS {
        let member = format!("{name}/function.json");
        let original = std::fs::read(source.join("function").join(name).join("function.json")).unwrap();
        assert_eq!(zip_member(&zip, &member), original, "{member}");
    }

    // Packaging twice gives the same bytes (fixed timestamps, sorted entries).
    let first = std::fs::read(&zip).unwrap();
    let again = package_prebuilt(binary, &source, &out);
    assert!(again.status.success());
    assert_eq!(std::fs::read(&zip).unwrap(), first, "the zip is reproducible");
}

#[test]
fn package_script_refuses_what_the_host_cannot_run() {
    let scratch = tempfile::tempdir().unwrap();
    let source = repo();
    let out = scratch.path().join("dist");

    let not_a_binary = scratch.path().join("seedwatch.sh");
    std::fs::write(&not_a_binary, "#!/bin/sh\necho hello\n").unwrap();
    let output = package_prebuilt(&not_a_binary, &source, &out);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a Linux (ELF) executable"));

    let output = package(&["--skip-build", "--out", out.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--skip-build needs --binary"));

    // A missing function.json is an error naming it, not a zip without it.
    let broken = scratch.path().join("broken");
    std::fs::create_dir_all(broken.join("function/reconcile")).unwrap();
    std::fs::write(broken.join("host.json"), "{}").unwrap();
    let output = package_prebuilt(Path::new(env!("CARGO_BIN_EXE_seedwatch")), &broken, &out);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("function/reconcile/function.json not found"));
    assert!(!out.join("seedwatch.zip").exists(), "no zip from a broken tree");
}

#[test]
fn scripts_are_shellcheck_clean() {
    let scripts = [
        "scripts/package.sh",
        "scripts/deploy.sh",
        "scripts/checkov.sh",
        "scripts/test.sh",
    ];
    for script in scripts {
        let path = repo().join(script);
        let text = read(&path);
        assert!(text.starts_with("#!/usr/bin/env bash\n"), "{script}: bash shebang");
        assert!(text.contains("set -euo pipefail"), "{script}: strict mode");
    }
    // Not installed is a failure, not a skip: scripts/test.sh installs it.
    let output = Command::new("shellcheck")
        .args(scripts)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!("shellcheck could not run ({e}): run scripts/test.sh, or apt-get install shellcheck")
        });
    assert!(
        output.status.success(),
        "shellcheck: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---- deploy.sh against a fake `az` ----

/// A stand-in for the Azure CLI: records every call (one JSON argv per line), answers the
/// queries deploy.sh makes with fixed outputs, and keeps a copy of each secret file it is given.
const FAKE_AZ: &str = r#"#!/usr/bin/env python3
import json, os, re, shutil, sys
args = sys.argv[1:]
state = os.environ["FAKE_AZ_DIR"]
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\n")
line = " ".join(args)
outputs = {
    "resourceGroupName": "rg-seedwatch",
    "functionAppName": "seedwatch-app",
    "functionAppResourceId": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-seedwatch/providers/Microsoft.Web/sites/seedwatch-app",
    "hostingPlan": os.environ["FAKE_PLAN"],
    "keyVaultName": "kv-seedwatch-test",
    "identityPrincipalId": "33333333-3333-3333-3333-333333333333",
    "connectorConfigSecretName": "connector-config",
    "apiKeySecretName": "asm-api-key",
    "storageAccountName": "stseedwatchtest",
    "packageContainerName": "app-package",
    "packageBlobName": "seedwatch.zip",
}
def value(flag):
    return args[args.index(flag) + 1] if flag in args else None
if line == "account show --query id --output tsv":
    print("11111111-1111-1111-1111-111111111111")
elif line == "account show --query user.type --output tsv":
    print("user")
elif line == "ad signed-in-user show --query id --output tsv":
    print("22222222-2222-2222-2222-222222222222")
elif line.startswith("deployment sub show"):
    name = re.search(r"properties\.outputs\.(\w+)\.value", line).group(1)
    print(outputs[name])
elif line.startswith("keyvault secret set"):
    if "--value" in args:
        sys.exit("secret given on the command line")
    shutil.copy(value("--file"), os.path.join(state, "secret-" + value("--name")))
"#;

struct DeployRun {
    status: std::process::ExitStatus,
    stderr: String,
    calls: Vec<Vec<String>>,
    state: PathBuf,
    _scratch: tempfile::TempDir,
}

fn run_deploy(plan: &str, args: &[&str], api_key: Option<&str>) -> DeployRun {
    let scratch_dir = tempfile::tempdir().unwrap();
    let scratch = scratch_dir.path().to_path_buf();
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(&az, FAKE_AZ).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let state = scratch.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new("bash");
    command
        .arg(repo().join("scripts/deploy.sh"))
        .args(args)
        .current_dir(&scratch)
        .env("PATH", path)
        .env("FAKE_AZ_DIR", &state)
        .env("FAKE_PLAN", plan)
        .env_remove("SEEDWATCH_API_KEY");
    if let Some(key) = api_key {
        command.env("SEEDWATCH_API_KEY", key);
    }
    std::fs::write(scratch.join("params.json"), r#"{"parameters": {}}"#).unwrap();
    std::fs::write(
        scratch.join("config.yml"),
        "scan_id: 7b0c6f1e-0000-4000-8000-000000000000\n",
    )
    .unwrap();
    std::fs::write(scratch.join("seedwatch.zip"), b"PK\x05\x06").unwrap();
    let output = command.output().expect("run scripts/deploy.sh");
    let calls = std::fs::read_to_string(state.join("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    DeployRun {
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        calls,
        state,
        _scratch: scratch_dir,
    }
}

impl DeployRun {
    /// Index of the first call starting with `prefix` and containing every `needle`.
    fn position(&self, prefix: &[&str], needles: &[&str]) -> Option<usize> {
        self.calls.iter().position(|call| {
            call.len() >= prefix.len()
                && call.iter().zip(prefix).all(|(a, b)| a == b)
                && needles.iter().all(|n| call.iter().any(|a| a == n))
        })
    }

    fn expect(&self, prefix: &[&str], needles: &[&str]) -> usize {
        self.position(prefix, needles)
            .unwrap_or_else(|| panic!("no `az {}` with {needles:?} in {:#?}", prefix.join(" "), self.calls))
    }
}

const DEPLOY_ARGS: &[&str] = &[
    "--parameters",
    "params.json",
    "--location",
    "westeurope",
    "--config",
    "config.yml",
    "--zip",
    "seedwatch.zip",
    "--yes",
];

#[test]
fn deploy_previews_then_deploys_in_two_phases_with_secrets_from_files() {
    let key = "hx-secret-key-0123456789";
    let run = run_deploy("FlexConsumption", DEPLOY_ARGS, Some(key));
    assert!(run.status.success(), "deploy.sh failed: {}", run.stderr);

    let what_if_infra = run.expect(&["deployment", "sub", "what-if"], &["deployEventSubscriptions=false"]);
    let create_infra = run.expect(&["deployment", "sub", "create"], &["deployEventSubscriptions=false"]);
    let config_secret = run.expect(
        &["keyvault", "secret", "set"],
        &["connector-config", "kv-seedwatch-test"],
    );
    let key_secret = run.expect(&["keyvault", "secret", "set"], &["asm-api-key"]);
    let code = run.expect(&["functionapp", "deploy"], &["seedwatch-app", "zip"]);
    let registered = run.expect(&["functionapp", "function", "show"], &["resource-events"]);
    let what_if_events = run.expect(&["deployment", "sub", "what-if"], &["deployEventSubscriptions=true"]);
    let create_events = run.expect(&["deployment", "sub", "create"], &["deployEventSubscriptions=true"]);
    let order = [
        what_if_infra,
        create_infra,
        config_secret,
        key_secret,
        code,
        registered,
        what_if_events,
        create_events,
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "steps out of order: {order:?} in {:#?}",
        run.calls
    );

    // The template gets the user's parameters file (by absolute path) and the deployer's id.
    let create = &run.calls[create_infra];
    assert!(
        create
            .iter()
            .any(|a| a.starts_with("@/") && a.ends_with("/params.json")),
        "{create:?}"
    );
    assert!(create.contains(&"infra/main.bicep".to_string()));
    assert!(create.contains(&"deployerPrincipalId=22222222-2222-2222-2222-222222222222".to_string()));

    // Secrets travel in files: the key is never an argument, and its temporary file is gone.
    assert!(
        run.calls.iter().flatten().all(|a| !a.contains(key)),
        "the API key appeared in az arguments"
    );
    assert_eq!(
        std::fs::read_to_string(run.state.join("secret-asm-api-key")).unwrap(),
        key
    );
    assert_eq!(
        std::fs::read_to_string(run.state.join("secret-connector-config")).unwrap(),
        "scan_id: 7b0c6f1e-0000-4000-8000-000000000000\n"
    );
    let key_file = &run.calls[key_secret];
    let key_path = &key_file[key_file.iter().position(|a| a == "--file").unwrap() + 1];
    assert!(
        !Path::new(key_path).exists(),
        "the temporary key file {key_path} was left behind"
    );
    assert!(
        run.position(&["storage", "blob", "upload"], &[]).is_none(),
        "Flex deploys through functionapp deploy"
    );
}

#[test]
fn deploy_on_consumption_uploads_the_package_and_syncs_triggers() {
    let run = run_deploy("Consumption", DEPLOY_ARGS, None);
    assert!(run.status.success(), "deploy.sh failed: {}", run.stderr);
    let upload = run.expect(
        &["storage", "blob", "upload"],
        &[
            "--auth-mode",
            "login",
            "stseedwatchtest",
            "app-package",
            "seedwatch.zip",
        ],
    );
    let restart = run.expect(&["functionapp", "restart"], &["seedwatch-app"]);
    let sync = run.expect(&["resource", "invoke-action"], &["syncfunctiontriggers"]);
    assert!(
        run.calls[sync].iter().any(|a| a.ends_with("/sites/seedwatch-app")),
        "{:?}",
        run.calls[sync]
    );
    let events = run.expect(&["deployment", "sub", "create"], &["deployEventSubscriptions=true"]);
    assert!(upload < restart && restart < sync && sync < events, "{:#?}", run.calls);
    assert!(run.position(&["functionapp", "deploy"], &[]).is_none());
    assert!(
        run.position(&["keyvault", "secret", "set"], &["asm-api-key"]).is_none(),
        "no key was given"
    );
}

#[test]
fn deploy_what_if_only_changes_nothing() {
    let run = run_deploy(
        "FlexConsumption",
        &[
            "--parameters",
            "params.json",
            "--location",
            "westeurope",
            "--what-if-only",
        ],
        Some("hx-key"),
    );
    assert!(run.status.success(), "deploy.sh failed: {}", run.stderr);
    run.expect(&["deployment", "sub", "what-if"], &["deployEventSubscriptions=true"]);
    for call in &run.calls {
        let verb = call.iter().take(3).cloned().collect::<Vec<_>>().join(" ");
        assert!(
            ["account show", "ad signed-in-user show", "deployment sub what-if"]
                .iter()
                .any(|v| verb.starts_with(v)),
            "--what-if-only ran `az {}`",
            call.join(" ")
        );
    }

    let missing = run_deploy("FlexConsumption", &["--location", "westeurope"], None);
    assert!(!missing.status.success());
    assert!(
        missing.stderr.contains("--parameters FILE is required"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.calls.is_empty(),
        "nothing is called before the arguments are valid"
    );
}
