//! The status page: one self-contained HTML document (inline style, script and SVG; no outside
//! asset), readable on a phone. It shows the state with its reasons, the last runs, seeds by
//! service check over time as an SVG chart, the failed changes and a "refresh now" button that
//! POSTs `{"scope":"all"}` to the `resync` function next to this one, with the function key
//! taken from the address the operator opened (`?code=`): the key is never written into the
//! page. Pure: the caller gathers the inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::state::{Decision, StatusInputs, rfc3339};
use crate::ledger::history::RunRecord;

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;padding:1rem;max-width:60rem;color:#1b1f24;background:#f6f8fa}\
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin-top:1.5rem}\
.state{display:inline-block;padding:.3rem .8rem;border-radius:1rem;color:#fff;font-weight:600;text-transform:uppercase}\
.online{background:#1a7f37}.degraded{background:#bf8700}.offline{background:#cf222e}.pending{background:#6e7781}.refreshing{background:#0969da}\
.card{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;padding:.8rem;margin:.6rem 0;overflow-x:auto}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eaeef2;white-space:nowrap}\
button{font-size:1rem;padding:.5rem 1rem;border-radius:.4rem;border:1px solid #0969da;background:#0969da;color:#fff}\
.advice{color:#57606a}svg{width:100%;height:auto}.legend span{margin-right:1rem;white-space:nowrap}";

/// Resolves `resync` next to this function's address and posts to it with the key of the
/// address the page was opened with; the key is read from `location`, not from the page.
const SCRIPT: &str = r#"(function(){
var button=document.getElementById('refresh');var out=document.getElementById('refresh-result');
var key=new URLSearchParams(window.location.search).get('code');
var endpoint=new URL('resync',window.location.href);endpoint.search='';
button.dataset.endpoint=endpoint.pathname;button.dataset.wired='true';
button.addEventListener('click',function(){
var target=new URL(endpoint.href);if(key){target.searchParams.set('code',key);}
button.disabled=true;out.textContent='asking for a resync…';
fetch(target.href,{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify({scope:'all'})})
.then(function(r){out.textContent=r.status===202?'resync queued: the state turns to refreshing when it starts':'resync answered '+r.status;})
.catch(function(e){out.textContent='resync failed: '+e;})
.finally(function(){button.disabled=false;});});
document.querySelectorAll('time[datetime]').forEach(function(t){var d=new Date(t.getAttribute('datetime'));if(!isNaN(d)){t.textContent=d.toLocaleString();}});
document.body.dataset.ready='true';})();"#;

/// The whole page.
pub(crate) fn render(inputs: &StatusInputs, decision: &Decision) -> String {
    let state = decision.state.as_str();
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>seedwatch: {state}</title><style>{STYLE}</style></head><body>\
<h1>seedwatch</h1><div class=\"card\"><span id=\"state\" class=\"state {state}\">{state}</span> \
<small>checked <time datetime=\"{at}\">{at}</time></small>{reasons}\
<p><button id=\"refresh\" type=\"button\">Refresh now</button> <span id=\"refresh-result\"></span></p></div>",
        at = rfc3339(inputs.now_ms),
        reasons = reasons(decision),
    );
    html.push_str(&runs_table(&inputs.runs));
    html.push_str(&chart(&inputs.runs));
    html.push_str(&failed_changes(inputs));
    let _ = write!(html, "<script>{SCRIPT}</script></body></html>");
    html
}

fn reasons(decision: &Decision) -> String {
    let mut out = String::from("<ul id=\"reasons\">");
    for r in &decision.reasons {
        let _ = write!(
            out,
            "<li>{}<br><span class=\"advice\">→ {}</span></li>",
            escape(&r.reason),
            escape(&r.advice)
        );
    }
    for note in &decision.notes {
        let _ = write!(out, "<li class=\"advice\">{}</li>", escape(note));
    }
    out.push_str("</ul>");
    out
}

fn runs_table(runs: &[RunRecord]) -> String {
    let mut out = String::from(
        "<h2>Last runs</h2><div class=\"card\"><table id=\"runs\"><thead><tr><th>started</th><th>trigger</th>\
<th>scope</th><th>result</th><th>added</th><th>deleted</th><th>kept by guard rails</th><th>warnings</th>\
<th>complete</th></tr></thead><tbody>",
    );
    if runs.is_empty() {
        out.push_str("<tr><td colspan=\"9\">no reconcile recorded yet</td></tr>");
    }
    for run in runs.iter().take(20) {
        let result = match (&run.result, &run.error) {
            (crate::ledger::history::RunResult::Running, _) => "running".to_string(),
            (crate::ledger::history::RunResult::Ok, _) => "ok".to_string(),
            (_, Some(e)) => format!("failed: {e}"),
            (_, None) => format!("failed ({} writes)", run.failed_writes),
        };
        let started = rfc3339(run.started_ms);
        let _ = write!(
            out,
            "<tr class=\"run\"><td><time datetime=\"{started}\">{started}</time></td><td>{}</td><td>{}</td><td>{}</td>\
<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&run.trigger),
            escape(&run.scope),
            escape(&result),
            run.added,
            run.deleted,
            run.kept_by_guard_rails,
            run.warnings,
            complete_cell(run)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// "yes" or "no", with each tenant's with `azure.tenants`.
fn complete_cell(run: &RunRecord) -> String {
    let overall = if run.complete { "yes" } else { "no" };
    if run.tenants.is_empty() {
        return overall.to_string();
    }
    let tenants: Vec<String> = run
        .tenants
        .iter()
        .map(|t| {
            format!(
                "tenant {}: {}",
                escape(&t.tenant),
                if t.complete { "yes" } else { "no" }
            )
        })
        .collect();
    format!("{overall} ({})", tenants.join("; "))
}

const COLOURS: [&str; 8] = [
    "#0969da", "#1a7f37", "#bf8700", "#cf222e", "#8250df", "#1b7c83", "#bc4c00", "#57606a",
];

/// Seeds by service check over the finished runs (oldest left), one polyline per check.
fn chart(runs: &[RunRecord]) -> String {
    let points: Vec<&RunRecord> = runs
        .iter()
        .rev()
        .filter(|r| r.ended_ms.is_some() && !r.seeds_by_check.is_empty())
        .collect();
    let mut out = String::from("<h2>Seeds by service check</h2><div class=\"card\">");
    if points.is_empty() {
        out.push_str("<p id=\"chart-empty\">no finished reconcile with seed counts yet</p></div>");
        return out;
    }
    let checks: BTreeSet<&String> = points.iter().flat_map(|r| r.seeds_by_check.keys()).collect();
    let max = points
        .iter()
        .flat_map(|r| r.seeds_by_check.values())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, pad) = (600.0_f64, 200.0_f64, 24.0_f64);
    let step = if points.len() > 1 {
        (width - 2.0 * pad) / (points.len() - 1) as f64
    } else {
        0.0
    };
    let _ = write!(
        out,
        "<svg id=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"seeds by service check over time\">\
<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#d0d7de\"/><text x=\"2\" y=\"{pad}\" font-size=\"14\">{max}</text>",
        b = height - pad,
        r = width - pad
    );
    let mut legend = String::from("<div class=\"legend\">");
    for (i, check) in checks.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let coords: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(n, r)| {
                let value = r.seeds_by_check.get(*check).copied().unwrap_or(0) as f64;
                let y = height - pad - value / max as f64 * (height - 2.0 * pad);
                format!("{:.1},{:.1}", pad + step * n as f64, y)
            })
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"series\" data-check=\"{c}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            coords.join(" "),
            c = escape(check)
        );
        for point in &coords {
            let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(out, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>");
        }
        let last = points
            .last()
            .and_then(|r| r.seeds_by_check.get(*check))
            .copied()
            .unwrap_or(0);
        let _ = write!(
            legend,
            "<span style=\"color:{colour}\">■ {} ({last})</span>",
            escape(check)
        );
    }
    let _ = write!(out, "</svg>{legend}</div></div>");
    out
}

fn failed_changes(inputs: &StatusInputs) -> String {
    let mut out = String::from("<h2>Failed changes</h2><div class=\"card\"><table id=\"failed\"><tbody>");
    if inputs.failed_changes.is_empty() {
        out.push_str("<tr><td>none</td></tr>");
    }
    for f in &inputs.failed_changes {
        let at = rfc3339(f.failed_ms);
        let _ = write!(
            out,
            "<tr><td><time datetime=\"{at}\">{at}</time></td><td>{}</td><td>{}</td><td>{} attempts</td><td>{}</td></tr>",
            escape(&f.resource),
            escape(&f.change),
            f.attempts,
            escape(&f.cause)
        );
    }
    let pending: BTreeMap<&str, i64> = inputs
        .pending_retries
        .iter()
        .map(|p| (p.resource.as_str(), p.since_ms))
        .collect();
    let _ = write!(out, "</tbody></table><p>retries pending: {}</p></div>", pending.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::health::state::decide;
    use serde_json::json;

    #[test]
    fn the_page_escapes_data_and_holds_no_outside_asset() {
        let run = RunRecord::started("timer", "<script>alert(1)</script>", 1_000)
            .finished_ok(&json!({"seeds_by_check": {"check_public_ip_addresses": 3}}), 2_000);
        let inputs = StatusInputs {
            runs: vec![run],
            now_ms: 3_000,
            ..StatusInputs::default()
        };
        let html = render(&inputs, &decide(&inputs));
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(1)"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no outside asset"
        );
        assert!(html.contains("data-check=\"check_public_ip_addresses\""));
        assert!(html.contains("id=\"refresh\""));
    }
}
