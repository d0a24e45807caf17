//! Base URLs: `https://` anywhere, `http://` only to this machine. A plain-text URL to another
//! host would send bearer tokens, SAS signatures and the ASM key in clear text, so a typo in a
//! test seam must not reach production.

use url::{Host, Url};

/// Checks a base URL (http or https, a host, no query) and returns it without a trailing
/// slash. The error says what is wrong, without the key or value (the caller names them).
pub(crate) fn check_base_url(raw: &str) -> Result<String, &'static str> {
    let url = Url::parse(raw).map_err(|_| "expected an http:// or https:// base URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || url.query().is_some() {
        return Err("expected an http:// or https:// base URL");
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err("http:// is allowed only for a loopback address (127.0.0.0/8, ::1, localhost); use https://");
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// Whether the URL's host is this machine: 127.0.0.0/8, `::1` or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
