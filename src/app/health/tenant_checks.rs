//! `seedwatch check` with `azure.tenants`: per connection, a token from its tenant, the
//! subscriptions it reads, and (for the deployment's own credential, whose identity the
//! token probe named) Reader on each; the Event Grid subscription of each through that
//! connection. Every line names the tenant.

use std::sync::Arc;

use super::arm_checks;
use super::probes::Identity;
use super::report::CheckLine;
use crate::adapters::azure::TokenSource;
use crate::config::tenants::TenantCredential;
use crate::config::{Config, EnvSource};

pub(crate) async fn lines(
    config: &Config,
    env: &dyn EnvSource,
    tokens: &Arc<dyn TokenSource>,
    identity: &Identity,
) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    for (settings, reader) in crate::adapters::azure::tenants::connections(config, tokens, env) {
        let tenant = settings.tenant_id.clone();
        let name = format!("tenant.{tenant}");
        let live = match reader {
            Ok(live) => live,
            Err(e) => {
                lines.push(CheckLine::failed(
                    name,
                    e,
                    "set the connection's client_id and the environment variables it names",
                ));
                continue;
            }
        };
        let subscriptions = match live.subscriptions_in_scope().await {
            Ok((subs, report)) if !report.scope_unknown => subs,
            Ok(_) => {
                lines.push(CheckLine::failed(
                    name,
                    format!("tenant {tenant}: the connection can see no subscription"),
                    "grant the connection's application Reader on the subscriptions of that tenant",
                ));
                continue;
            }
            Err(e) => {
                lines.push(CheckLine::failed(
                    name,
                    format!("tenant {tenant}: cannot list subscriptions: {e}"),
                    "check the connection's credential (a refused token) and its Reader role",
                ));
                continue;
            }
        };
        lines.push(CheckLine::ok(
            name,
            format!(
                "tenant {tenant} ({}): {} subscription(s) in scope",
                settings.credential.name(),
                subscriptions.len()
            ),
        ));
        for sub in &subscriptions {
            if settings.credential == TenantCredential::Default {
                lines.push(tagged(
                    arm_checks::subscription_line(live.arm(), sub, identity).await,
                    &tenant,
                ));
            }
            lines.push(tagged(arm_checks::event_grid_line(live.arm(), sub).await, &tenant));
        }
    }
    lines
}

fn tagged(mut line: CheckLine, tenant: &str) -> CheckLine {
    line.detail = format!("tenant {tenant}: {}", line.detail);
    line
}
