//! The ARM resource id grammar, applied by [`super::ResourceId::parse`].

use super::id::ResourceIdError;

/// Characters no ARM id segment may hold: URL syntax (`?` query, `#` fragment, `%` escapes,
/// `\\` a second path separator) and what the resource naming rules refuse in every name
/// (<https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules>).
pub(super) const FORBIDDEN: &[char] = &['?', '#', '%', '\\', '<', '>', '"', '&', '|', '^', '`', '{', '}'];

/// The id quoted in errors: at most 200 characters, so a hostile id cannot flood a log.
pub(super) fn quoted(raw: &str) -> String {
    raw.chars().take(200).collect()
}

/// The grammar check behind [`super::ResourceId::parse`], on the trimmed id.
pub(super) fn check_grammar(id: &str) -> Result<(), ResourceIdError> {
    let Some(rest) = id.strip_prefix('/') else {
        return Err(ResourceIdError::NotArm(quoted(id)));
    };
    let mut segments = Vec::new();
    let mut at = 1;
    for segment in rest.split('/') {
        check_segment(id, segment, at)?;
        segments.push(segment);
        at += segment.len() + 1;
    }
    let is = |i: usize, word: &str| segments.get(i).is_some_and(|s| s.eq_ignore_ascii_case(word));
    if !is(0, "subscriptions") {
        return Err(ResourceIdError::NotArm(quoted(id)));
    }
    let Some(subscription) = segments.get(1) else {
        return Err(shape(id, "no subscription id after /subscriptions/"));
    };
    check_chars(id, "subscription id", subscription, 64, |c| {
        c.is_ascii_alphanumeric() || c == '-'
    })?;
    let mut i = 2;
    if is(i, "resourceGroups") {
        let Some(group) = segments.get(i + 1) else {
            return Err(shape(id, "no resource group name after /resourceGroups/"));
        };
        check_resource_group(id, group)?;
        i += 2;
    }
    while i < segments.len() {
        if !is(i, "providers") {
            return Err(shape(
                id,
                &format!("expected \"providers\" at segment {}, found {:?}", i + 1, segments[i]),
            ));
        }
        i = check_provider_block(id, &segments, i + 1)?;
    }
    Ok(())
}

/// `{namespace}/{type}/{name}[/{type}/{name}]*` from `start`, up to the next `providers`
/// in a type position; returns the index after the block.
fn check_provider_block(id: &str, segments: &[&str], start: usize) -> Result<usize, ResourceIdError> {
    let Some(namespace) = segments.get(start) else {
        return Err(shape(id, "no resource provider namespace after /providers/"));
    };
    let namespace_char = |c: char| c.is_ascii_alphanumeric() || c == '.';
    check_chars(id, "provider namespace", namespace, 256, namespace_char)?;
    let mut i = start + 1;
    let mut pairs = 0;
    while i < segments.len() && !(pairs > 0 && segments[i].eq_ignore_ascii_case("providers")) {
        let type_char = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_';
        check_chars(id, "resource type", segments[i], 256, type_char)?;
        if i + 1 >= segments.len() {
            return Err(shape(
                id,
                &format!("resource type {:?} has no name after it", segments[i]),
            ));
        }
        i += 2;
        pairs += 1;
    }
    if pairs == 0 {
        return Err(shape(id, &format!("provider {namespace:?} names no resource type")));
    }
    Ok(i)
}

/// Every segment: not empty, not a path step, no URL syntax.
fn check_segment(id: &str, segment: &str, at: usize) -> Result<(), ResourceIdError> {
    if segment.is_empty() {
        return Err(ResourceIdError::EmptySegment { id: quoted(id), at });
    }
    if segment == "." || segment == ".." {
        return Err(ResourceIdError::DotSegment {
            id: quoted(id),
            segment: segment.to_string(),
        });
    }
    if let Some(found) = segment.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(ResourceIdError::ForbiddenCharacter {
            id: quoted(id),
            segment: quoted(segment),
            found,
        });
    }
    Ok(())
}

/// Resource group names: 1-90 letters, digits, `_`, `(`, `)`, `-`, `.`; not ending in `.`.
fn check_resource_group(id: &str, group: &str) -> Result<(), ResourceIdError> {
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '(' | ')' | '-' | '.');
    check_chars(id, "resource group name", group, 90, allowed)?;
    if group.ends_with('.') {
        return Err(ResourceIdError::BadSegment {
            id: quoted(id),
            what: "resource group name",
            segment: quoted(group),
            rule: "may not end with a period",
        });
    }
    Ok(())
}

fn check_chars(
    id: &str,
    what: &'static str,
    segment: &str,
    max_len: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), ResourceIdError> {
    let bad = |rule| ResourceIdError::BadSegment {
        id: quoted(id),
        what,
        segment: quoted(segment),
        rule,
    };
    if segment.chars().count() > max_len {
        return Err(bad("too long"));
    }
    if !segment.chars().all(allowed) {
        return Err(bad("holds a character the ARM naming rules refuse there"));
    }
    Ok(())
}

fn shape(id: &str, message: &str) -> ResourceIdError {
    ResourceIdError::Shape {
        id: quoted(id),
        message: message.to_string(),
    }
}
