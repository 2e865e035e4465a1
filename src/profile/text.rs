//! Small text rules shared by paths, classification, parsing and profile
//! validation, so that each is written once.

pub(super) use crate::setting::fold_case;

/// A Cedar identifier (and a path capture name): `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name taken from a request (a field or query key), cut short and with
/// control characters replaced, fit for an error message.
pub(super) fn shown(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
