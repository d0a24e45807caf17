//! Secrets (the ASM API key, SAS keys, account keys): the value is reachable only through
//! [`Secret::expose`], and `Debug`/`Display` print a placeholder, so a secret cannot reach a
//! log line, an error or a panic message by accident.

use std::fmt;

mod scrub;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it (a header, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***`, in each form a server may
    /// echo it: raw, JSON-escaped (`\"`, `\\`, `\/`, `\uXXXX`), URL-encoded (`%XX` in either
    /// case, `+` for a space, any mix of encoded and plain characters) and base64 (standard or
    /// URL-safe, at any alignment inside a longer base64 text). Scrub before cutting a text
    /// short, so no piece of a secret straddles the cut.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub::scrub(text, self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
