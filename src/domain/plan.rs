//! The plan: the seeds that would be pushed, with their sources and the warnings met on the
//! way, rendered as a table for people or as one JSON object for programs. Pure apart from
//! [`plan_estate`], which reads its input through [`crate::domain::estate::stream_estate`].
//!
//! Callers build a [`Plan`] from an [`Extraction`] (a live sweep), or stream an estate file
//! into one ([`plan_estate`]), may add their own sections (the live path adds a
//! completeness report) and print it.

mod build;
mod owners;
mod stream;

pub use build::PlanBuilder;
pub use owners::{OwnerId, OwnerIndex, Owners};
pub use stream::{EstatePlanner, plan_estate};

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::ops::Range;

use serde::Serialize;
use serde_json::Value;

use crate::domain::check::EnabledChecks;
use crate::domain::extract::{Extraction, ItemSeeds, Warning, extract_resources};
use crate::domain::resource::{Resource, ResourceId};
use crate::domain::seed::{Seed, SeedKind};

/// One seed with every resource it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSeed {
    pub seed: Seed,
    /// Where its sources are in the plan's list (sorted by id, without duplicates).
    first_source: u32,
    source_count: u32,
}

impl PlannedSeed {
    /// How many resources the seed comes from.
    pub(crate) fn source_count(&self) -> usize {
        self.source_count as usize
    }

    fn sources(&self) -> Range<usize> {
        let start = self.first_source as usize;
        start..start + self.source_count as usize
    }
}

/// What `seedwatch plan` shows.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Sorted: domains (grouped by parent domain), then IPv4, IPv6, ranges.
    pub seeds: Vec<PlannedSeed>,
    /// Every seed's sources, one seed after the other.
    sources: Vec<OwnerIndex>,
    owners: Owners,
    /// Input warnings (unreadable items) first, then extraction warnings.
    pub warnings: Vec<Warning>,
    /// How many resources were read.
    pub resources: usize,
}

impl Plan {
    /// Builds the plan from an extraction; `input_warnings` are problems met while reading the
    /// resources (they are listed first), `resources` is how many were read.
    pub fn new(extraction: &Extraction, input_warnings: Vec<Warning>, resources: usize) -> Plan {
        let mut builder = PlanBuilder::new();
        for warning in input_warnings {
            builder.input_warning(warning);
        }
        builder.count_resources(resources);
        let mut last: Option<(&ResourceId, OwnerIndex)> = None;
        for contribution in &extraction.contributions {
            let owner = match last {
                Some((id, index)) if *id == contribution.owner => index,
                _ => builder.owner(&contribution.owner),
            };
            last = Some((&contribution.owner, owner));
            builder.add_seed(owner, contribution.seed.clone());
        }
        builder.add(
            0,
            0,
            ItemSeeds {
                seeds: Vec::new(),
                warnings: extraction.warnings.clone(),
            },
        );
        builder.finish()
    }

    /// The resources `seed` comes from, sorted by id.
    pub(crate) fn sources<'a>(&'a self, seed: &PlannedSeed) -> impl Iterator<Item = OwnerId<'a>> + 'a {
        self.sources
            .get(seed.sources())
            .unwrap_or_default()
            .iter()
            .map(|owner| self.owners.id(*owner))
    }

    /// Extracts `resources` with `checks` and builds the plan.
    pub fn from_resources(resources: &[Resource], input_warnings: Vec<Warning>, checks: &EnabledChecks) -> Plan {
        let extraction = extract_resources(resources, checks);
        Plan::new(&extraction, input_warnings, resources.len())
    }

    fn count(&self, kind: SeedKind) -> usize {
        self.seeds.iter().filter(|s| s.seed.kind() == kind).count()
    }

    /// `14 seeds (9 domains, 3 IPv4, 1 IPv6, 1 range) from 30 resources; 2 warnings.`
    pub(crate) fn summary_line(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut line = format!(
            "{} ({}, {}, {}, {}) from {}; {}",
            plural(self.seeds.len(), "seed", "seeds"),
            plural(self.count(SeedKind::Domain), "domain", "domains"),
            plural(self.count(SeedKind::Ipv4), "IPv4", "IPv4"),
            plural(self.count(SeedKind::Ipv6), "IPv6", "IPv6"),
            plural(self.count(SeedKind::IpRange), "range", "ranges"),
            plural(self.resources, "resource", "resources"),
            plural(self.warnings.len(), "warning", "warnings"),
        );
        line.push('.');
        line
    }

    /// The table, the warnings (at most `max_warnings` of them) and the summary line.
    pub(crate) fn render_text(&self, max_warnings: usize) -> String {
        let mut out = String::new();
        let rows: Vec<[String; 4]> = self
            .seeds
            .iter()
            .map(|s| {
                [
                    s.seed.name().to_string(),
                    s.seed.kind().as_str().to_string(),
                    s.source_count().to_string(),
                    self.sources(s).next().map(short_source).unwrap_or_default(),
                ]
            })
            .collect();
        let header = ["SEED", "TYPE", "SOURCES", "EXAMPLE SOURCE"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        if rows.is_empty() {
            out.push_str("No seeds.\n");
        } else {
            let line = |cells: [&str; 4]| {
                format!(
                    "{:<w0$}  {:<w1$}  {:>w2$}  {}",
                    cells[0],
                    cells[1],
                    cells[2],
                    cells[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                )
                .trim_end()
                .to_string()
            };
            out.push_str(&line(header));
            out.push('\n');
            for row in &rows {
                out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
                out.push('\n');
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(out, "\nWarnings ({}):", self.warnings.len());
            for warning in self.warnings.iter().take(max_warnings) {
                let _ = writeln!(out, "  - {warning}");
            }
            if self.warnings.len() > max_warnings {
                let _ = writeln!(
                    out,
                    "  … and {} more (use --json to see them all)",
                    self.warnings.len() - max_warnings
                );
            }
        }
        out.push('\n');
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// `{"seeds": [{"name", "type", "sources"}], "warnings": [{"resource", "path", "message"}],
    /// "summary": {...}}` as a value, for callers that add their own fields.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.json_view()).unwrap_or(Value::Null)
    }

    /// The same object as [`Plan::to_json`], written straight to `out` (no intermediate value:
    /// a large estate's plan is tens of megabytes).
    pub fn write_json(&self, out: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(out, &self.json_view())
    }

    fn json_view(&self) -> JsonPlan<'_> {
        JsonPlan {
            seeds: self
                .seeds
                .iter()
                .map(|s| JsonSeed {
                    name: s.seed.name(),
                    kind: s.seed.kind().as_str(),
                    sources: self.sources(s).collect(),
                })
                .collect(),
            warnings: &self.warnings,
            summary: JsonSummary {
                seeds: self.seeds.len(),
                domains: self.count(SeedKind::Domain),
                ipv4: self.count(SeedKind::Ipv4),
                ipv6: self.count(SeedKind::Ipv6),
                ipranges: self.count(SeedKind::IpRange),
                resources: self.resources,
                warnings: self.warnings.len(),
            },
        }
    }
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    seeds: Vec<JsonSeed<'a>>,
    warnings: &'a [Warning],
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonSeed<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    sources: Vec<OwnerId<'a>>,
}

#[derive(Serialize)]
struct JsonSummary {
    seeds: usize,
    domains: usize,
    ipv4: usize,
    ipv6: usize,
    ipranges: usize,
    resources: usize,
    warnings: usize,
}

/// `rg-web/Microsoft.Web/sites/app` from a full id: enough to find the resource in a table.
fn short_source(owner: OwnerId<'_>) -> String {
    let text = owner.to_string();
    let Some(id) = owner.to_resource_id() else {
        return text;
    };
    let Some(at) = text.to_ascii_lowercase().find("/providers/") else {
        return text;
    };
    match id.resource_group() {
        Some(rg) => format!("{rg}/{}", &text[at + "/providers/".len()..]),
        None => text[at + "/providers/".len()..].to_string(),
    }
}

/// Domains first, grouped under their parent domains (`contoso.com`, `api.contoso.com`,
/// `www.contoso.com`), then IPv4, IPv6 and ranges in numeric order.
pub(crate) fn display_order(a: &Seed, b: &Seed) -> Ordering {
    a.kind().cmp(&b.kind()).then_with(|| match a.kind() {
        SeedKind::Domain => labels_from_the_end(a.name(), b.name()),
        SeedKind::Ipv4 | SeedKind::Ipv6 => match (a.name().parse::<IpAddr>(), b.name().parse::<IpAddr>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.name().cmp(b.name()),
        },
        SeedKind::IpRange => match (a.name().parse::<ipnet::IpNet>(), b.name().parse::<ipnet::IpNet>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.name().cmp(b.name()),
        },
    })
}

/// `a.rsplit('.').cmp(b.rsplit('.'))` without the searcher: sorting a million seeds makes this
/// comparison a good part of `plan`'s time.
fn labels_from_the_end(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut a_end, mut b_end) = (Some(a.len()), Some(b.len()));
    loop {
        let (ae, be) = match (a_end, b_end) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(ae), Some(be)) => (ae, be),
        };
        let a_dot = a[..ae].iter().rposition(|c| *c == b'.');
        let b_dot = b[..be].iter().rposition(|c| *c == b'.');
        let a_label = &a[a_dot.map_or(0, |d| d + 1)..ae];
        let b_label = &b[b_dot.map_or(0, |d| d + 1)..be];
        match a_label.cmp(b_label) {
            Ordering::Equal => {}
            other => return other,
        }
        a_end = a_dot;
        b_end = b_dot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_of(values: Vec<Value>) -> Plan {
        let resources: Vec<Resource> = values.into_iter().map(|v| Resource::from_json(v).unwrap()).collect();
        Plan::from_resources(&resources, Vec::new(), &EnabledChecks::all())
    }

    fn site(name: &str, hosts: &[&str]) -> Value {
        json!({
            "id": format!("/subscriptions/1/resourceGroups/rg-web/providers/Microsoft.Web/sites/{name}"),
            "type": "Microsoft.Web/sites",
            "properties": {"hostNames": hosts},
        })
    }

    #[test]
    fn label_order_is_rsplit_order() {
        let names = [
            "",
            ".",
            "a",
            "a.",
            ".a",
            "com",
            "a.com",
            "b.com",
            "a.b.com",
            "ab.com",
            "a.bcom",
            "x.a.com",
            "contoso.com",
            "www.contoso.com",
            "api.contoso.com",
            "a..com",
            "z.org",
        ];
        for a in names {
            for b in names {
                assert_eq!(
                    labels_from_the_end(a, b),
                    a.rsplit('.').cmp(b.rsplit('.')),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn seeds_are_grouped_and_sorted() {
        let plan = plan_of(vec![
            site("b", &["www.contoso.com", "200.1.1.1", "9.1.1.1"]),
            site(
                "a",
                &[
                    "contoso.com",
                    "api.contoso.com",
                    "www.contoso.com",
                    "a.fabrikam.com",
                    "2001:db8::1",
                ],
            ),
        ]);
        let names: Vec<&str> = plan.seeds.iter().map(|s| s.seed.name()).collect();
        assert_eq!(
            names,
            [
                "contoso.com",
                "api.contoso.com",
                "www.contoso.com",
                "a.fabrikam.com",
                "9.1.1.1",
                "200.1.1.1",
                "2001:db8::1"
            ]
        );
        let www = &plan.seeds[2];
        assert_eq!(www.source_count(), 2);
    }

    #[test]
    fn text_has_table_warnings_and_summary() {
        let plan = plan_of(vec![site("a", &["www.contoso.com", "bad host", "x.azurewebsites.net"])]);
        let text = plan.render_text(50);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SEED"), "{text}");
        assert!(lines[1].starts_with("www.contoso.com "), "{text}");
        assert!(lines[1].contains(" domain "), "{text}");
        assert!(lines[1].ends_with("rg-web/Microsoft.Web/sites/a"), "{text}");
        assert!(text.contains("Warnings (1):"), "{text}");
        assert!(text.contains("properties.hostNames[1]"), "{text}");
        let last = lines.last().unwrap();
        assert_eq!(
            *last,
            "2 seeds (2 domains, 0 IPv4, 0 IPv6, 0 ranges) from 1 resource; 1 warning."
        );
    }

    #[test]
    fn warnings_are_capped_in_text_but_not_in_json() {
        let hosts: Vec<String> = (0..30).map(|i| format!("bad host {i}")).collect();
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let plan = plan_of(vec![site("a", &refs)]);
        let text = plan.render_text(10);
        assert!(text.contains("… and 20 more"), "{text}");
        assert_eq!(plan.to_json()["warnings"].as_array().unwrap().len(), 30);
    }

    #[test]
    fn written_json_is_the_same_object() {
        let plan = plan_of(vec![site("a", &["www.contoso.com", "bad host"])]);
        let mut bytes = Vec::new();
        plan.write_json(&mut bytes).unwrap();
        let written: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(written, plan.to_json());
        assert_eq!(written["warnings"][0]["path"], "properties.hostNames[1]");
    }

    #[test]
    fn json_has_the_agreed_fields() {
        let plan = plan_of(vec![site("a", &["www.contoso.com"])]);
        let value = plan.to_json();
        assert_eq!(
            value["seeds"],
            json!([{"name": "www.contoso.com", "type": "domain",
                    "sources": ["/subscriptions/1/resourceGroups/rg-web/providers/Microsoft.Web/sites/a"]}])
        );
        assert_eq!(value["warnings"], json!([]));
        assert_eq!(value["summary"]["seeds"], 1);
    }
}
