//! The doctor's report (pure): one line per dependency, each ok, warning or failed, with what
//! to do about it; rendered as text or JSON; the exit code follows the worst line.

use serde::Serialize;

/// How one dependency fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LineState {
    Ok,
    Warning,
    Failed,
}

impl LineState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LineState::Ok => "ok",
            LineState::Warning => "warning",
            LineState::Failed => "failed",
        }
    }
}

/// One checked dependency: a stable name (`config`, `token.arm`, `subscription.<id>`, ...),
/// what was found, and what to do when it is not ok. Fields in the JSON's key order
/// (alphabetical, as the report and the status document have always been written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CheckLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    pub detail: String,
    pub name: String,
    pub state: LineState,
}

impl CheckLine {
    pub(crate) fn ok(name: impl Into<String>, detail: impl Into<String>) -> CheckLine {
        CheckLine {
            name: name.into(),
            state: LineState::Ok,
            detail: detail.into(),
            advice: None,
        }
    }

    pub(crate) fn warning(name: impl Into<String>, detail: impl Into<String>, advice: impl Into<String>) -> CheckLine {
        CheckLine {
            name: name.into(),
            state: LineState::Warning,
            detail: detail.into(),
            advice: Some(advice.into()),
        }
    }

    pub(crate) fn failed(name: impl Into<String>, detail: impl Into<String>, advice: impl Into<String>) -> CheckLine {
        CheckLine {
            name: name.into(),
            state: LineState::Failed,
            detail: detail.into(),
            advice: Some(advice.into()),
        }
    }
}

/// [`Report::document`]: the worst state, the count of each, and the lines. Keys in
/// alphabetical order, as the report has always been written.
#[derive(Debug, Serialize)]
pub(crate) struct ReportDocument<'a> {
    checks: &'a [CheckLine],
    failed: usize,
    ok: usize,
    state: LineState,
    warnings: usize,
}

/// Every line of one `check` run, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    pub lines: Vec<CheckLine>,
}

impl Report {
    pub(crate) fn push(&mut self, line: CheckLine) {
        self.lines.push(line);
    }

    pub(crate) fn extend(&mut self, lines: impl IntoIterator<Item = CheckLine>) {
        self.lines.extend(lines);
    }

    /// The worst state of any line (ok for an empty report).
    pub(crate) fn worst(&self) -> LineState {
        self.lines.iter().map(|l| l.state).max().unwrap_or(LineState::Ok)
    }

    /// 0 when every line is ok, 1 with warnings, 2 when any line failed.
    pub(crate) fn exit_code(&self) -> u8 {
        match self.worst() {
            LineState::Ok => 0,
            LineState::Warning => 1,
            LineState::Failed => 2,
        }
    }

    /// The report as `seedwatch check --json` writes it (serialised at the edge).
    pub(crate) fn document(&self) -> ReportDocument<'_> {
        let count = |state: LineState| self.lines.iter().filter(|l| l.state == state).count();
        ReportDocument {
            checks: &self.lines,
            failed: count(LineState::Failed),
            ok: count(LineState::Ok),
            state: self.worst(),
            warnings: count(LineState::Warning),
        }
    }

    /// One line per check, `ok      name: detail`, with the advice indented below.
    pub(crate) fn render_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&format!("{:<8}{}: {}\n", line.state.as_str(), line.name, line.detail));
            if let Some(advice) = &line.advice {
                out.push_str(&format!("        → {advice}\n"));
            }
        }
        let worst = self.worst();
        out.push_str(&format!(
            "\n{}\n",
            match worst {
                LineState::Ok => "all checks ok",
                LineState::Warning => "some checks have warnings",
                LineState::Failed => "some checks failed",
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_follows_the_worst_line() {
        let mut report = Report::default();
        assert_eq!(report.exit_code(), 0);
        report.push(CheckLine::ok("a", "fine"));
        assert_eq!(report.exit_code(), 0);
        report.push(CheckLine::warning("b", "meh", "do x"));
        assert_eq!(report.exit_code(), 1);
        report.push(CheckLine::failed("c", "broken", "do y"));
        report.push(CheckLine::ok("d", "fine"));
        assert_eq!(report.exit_code(), 2);
        let json = serde_json::to_value(report.document()).unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["warnings"], 1);
        assert_eq!(json["checks"][2]["advice"], "do y");
        assert!(json["checks"][0].get("advice").is_none());
        assert!(report.render_text().contains("failed  c: broken\n        → do y"));
    }

    /// `seedwatch check --json`, pinned byte for byte (names, order, omitted advice).
    /// What reaches the CLI, written directly and through a `Value` (the same bytes).
    fn written(report: &Report) -> String {
        let direct = serde_json::to_string(&report.document()).unwrap();
        let through_value = serde_json::to_value(report.document()).unwrap().to_string();
        assert_eq!(direct, through_value);
        direct
    }

    #[test]
    fn the_json_report_is_pinned() {
        let mut report = Report::default();
        assert_eq!(
            written(&report),
            "{\"checks\":[],\"failed\":0,\"ok\":0,\"state\":\"ok\",\"warnings\":0}"
        );
        report.push(CheckLine::ok("config", "valid, from file"));
        report.push(CheckLine::warning(
            "asm.tag",
            "no seed carries \"seedwatch\"",
            "run `seedwatch sync`",
        ));
        report.push(CheckLine::failed(
            "subscription.s1",
            "no Reader → 403",
            "az role assignment create …",
        ));
        assert_eq!(
            written(&report),
            "{\"checks\":[{\"detail\":\"valid, from file\",\"name\":\"config\",\"state\":\"ok\"},{\"advice\":\"run `seedwatch sync`\",\"detail\":\"no seed carries \\\"seedwatch\\\"\",\"name\":\"asm.tag\",\"state\":\"warning\"},{\"advice\":\"az role assignment create …\",\"detail\":\"no Reader → 403\",\"name\":\"subscription.s1\",\"state\":\"failed\"}],\"failed\":1,\"ok\":1,\"state\":\"failed\",\"warnings\":1}"
        );
    }
}
