//! Path patterns (`/customer/{customer_id}`) and the aggressive path
//! normalisation that decides whether a raw request path is *erasure-like*.
//! Classification uses both: a path is matched in every spelling an upstream
//! might decode it to, and only the exact canonical spelling is accepted.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::text::{fold_case, is_identifier};

/// What a rendered capture leaves unencoded: RFC 3986 `pchar` less `%`, `;`
/// and `+` (unreserved, `!$&'()*,=:@`), so that a router decoding it once
/// reads back exactly the decided id.
const CAPTURE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// How many rounds of percent-decoding the normaliser applies. Real servers
/// decode once, sometimes twice (a proxy and then the framework); more rounds
/// only make the normalised form more suspicious, never less.
const MAX_DECODE_ROUNDS: usize = 8;

/// One segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternSegment {
    /// A fixed segment, matched byte for byte in canonical form.
    Literal {
        /// The segment as written in the profile.
        text: String,
        /// Its case-folded form, for matching normalised paths.
        folded: String,
    },
    /// A `{name}` capture: one non-empty segment.
    Capture(String),
}

/// A parsed path pattern such as `/customer/{customer_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPattern {
    segments: Vec<PatternSegment>,
}

/// Why a raw path that names the erasure endpoint is not its canonical
/// spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathIssue {
    /// The path does not start with `/`.
    NotAbsolute,
    /// Percent-encoded characters in a fixed segment (`%64elete_data`, `%2F`).
    PercentEncoding,
    /// A backslash, which some servers read as `/`.
    Backslash,
    /// An empty segment (`//`).
    EmptySegment,
    /// A `.` or `..` segment, plain or encoded.
    DotSegment,
    /// A trailing `/`.
    TrailingSlash,
    /// A letter-case variant of a fixed segment.
    LetterCase,
    /// A `;` path parameter.
    PathParameter,
    /// A captured parameter that decodes to a separator, a `%`, a control
    /// character, or a dot segment, so servers may disagree on its value.
    AmbiguousParameter,
    /// Some other spelling that normalises to the erasure path.
    OtherSpelling,
}

impl fmt::Display for PathIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::NotAbsolute => "the path does not start with `/`",
            Self::PercentEncoding => "percent-encoded characters in the path",
            Self::Backslash => "a backslash in the path",
            Self::EmptySegment => "an empty path segment (`//`)",
            Self::DotSegment => "a dot segment (`.` or `..`)",
            Self::TrailingSlash => "a trailing slash",
            Self::LetterCase => "a letter-case variant of the path",
            Self::PathParameter => "a `;` path parameter",
            Self::AmbiguousParameter => {
                "a path parameter that decodes to a separator, `%`, control character or dot segment"
            }
            Self::OtherSpelling => "a non-canonical spelling of the path",
        };
        f.write_str(text)
    }
}

/// Characters a fixed pattern segment may use: RFC 3986 `pchar` without
/// percent-encoding, so a literal is always its own canonical spelling.
fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,=:@".contains(c)
}

impl PathPattern {
    /// Parses a pattern.
    ///
    /// # Errors
    /// A human-readable reason when the pattern is not absolute, has an empty,
    /// dot or trailing segment, a character that would need percent-encoding,
    /// or a malformed or repeated `{capture}`.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err("must start with `/`".to_owned());
        };
        if rest.is_empty() {
            return Err("must name at least one segment".to_owned());
        }
        let mut segments = Vec::new();
        let mut captures: Vec<&str> = Vec::new();
        for segment in rest.split('/') {
            if segment.is_empty() {
                return Err("has an empty segment or a trailing slash".to_owned());
            }
            if segment == "." || segment == ".." {
                return Err("has a dot segment".to_owned());
            }
            if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if !is_identifier(inner) {
                    return Err(format!(
                        "capture `{{{inner}}}` must be a name of letters, digits and `_`"
                    ));
                }
                if captures.contains(&inner) {
                    return Err(format!("capture `{{{inner}}}` appears twice"));
                }
                captures.push(inner);
                segments.push(PatternSegment::Capture(inner.to_owned()));
            } else if segment.chars().all(is_literal_char) {
                segments.push(PatternSegment::Literal {
                    text: segment.to_owned(),
                    folded: fold_case(segment),
                });
            } else {
                return Err(format!(
                    "segment `{segment}` must be a whole `{{capture}}` or use only unreserved characters"
                ));
            }
        }
        Ok(Self { segments })
    }

    /// The names of the pattern's captures, in order.
    pub(crate) fn captures(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            PatternSegment::Capture(name) => Some(name.as_str()),
            PatternSegment::Literal { .. } => None,
        })
    }

    /// The canonical path with each capture's value percent-encoded; a
    /// capture without a value renders empty (the caller passes them all).
    pub(crate) fn render(&self, captures: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                PatternSegment::Literal { text, .. } => out.push_str(text),
                PatternSegment::Capture(name) => {
                    if let Some(value) = captures.get(name) {
                        out.extend(utf8_percent_encode(value, CAPTURE));
                    }
                }
            }
        }
        out
    }

    fn matches_normalised(&self, segments: &[String]) -> bool {
        segments.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(pattern, seg)| match pattern {
                    PatternSegment::Literal { folded, .. } => folded == seg,
                    PatternSegment::Capture(_) => !seg.is_empty(),
                })
    }

    /// Whether any way a server might decode `raw` names this pattern.
    pub(crate) fn is_erasure_like(&self, raw: &str) -> bool {
        if let Some(matches) = self.matches_plain(raw) {
            return matches;
        }
        self.matches_normalised(&normalise_whole(raw))
            || self.matches_normalised(&normalise_by_segment(raw))
    }

    /// [`is_erasure_like`](Self::is_erasure_like) without allocating, for
    /// a plain path: `/` and the characters a literal may use, and no dot
    /// segment. Decoding, cutting and trimming leave such a path as it is,
    /// so both normalisations come to its non-empty segments with ASCII
    /// case folded. `None` for any other path (the normalisations decide).
    fn matches_plain(&self, raw: &str) -> Option<bool> {
        let plain = raw.chars().all(|c| c == '/' || is_literal_char(c))
            && !raw.split('/').any(|s| s == "." || s == "..");
        if !plain {
            return None;
        }
        let mut pattern = self.segments.iter();
        for segment in raw.split('/').filter(|s| !s.is_empty()) {
            let fits = match pattern.next() {
                None => false,
                Some(PatternSegment::Literal { folded, .. }) => {
                    segment.eq_ignore_ascii_case(folded)
                }
                Some(PatternSegment::Capture(_)) => true,
            };
            if !fits {
                return Some(false);
            }
        }
        Some(pattern.next().is_none())
    }

    /// The captures of `raw` when it is exactly the canonical spelling of the
    /// pattern, each percent-decoded once (as routers hand them to handlers).
    ///
    /// # Errors
    /// The first [`PathIssue`] that makes `raw` non-canonical.
    pub(crate) fn canonical_captures(
        &self,
        raw: &str,
    ) -> Result<BTreeMap<String, String>, PathIssue> {
        if raw.contains('\\') {
            return Err(PathIssue::Backslash);
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathIssue::NotAbsolute);
        };
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() != self.segments.len() {
            return Err(diagnose_path(raw));
        }
        let mut captures = BTreeMap::new();
        for (pattern, segment) in self.segments.iter().zip(segments) {
            match pattern {
                PatternSegment::Literal { text, .. } => {
                    if segment != text {
                        return Err(diagnose_segment(segment, text));
                    }
                }
                PatternSegment::Capture(name) => {
                    captures.insert(name.clone(), canonical_capture(segment)?);
                }
            }
        }
        Ok(captures)
    }
}

fn decode_fully(s: &str) -> String {
    let mut current = s.to_owned();
    for _ in 0..MAX_DECODE_ROUNDS {
        let next = percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Cuts a segment at the first character some server treats as its end
/// (`;` matrix parameters, a decoded `?` or `#`, a NUL), trims whitespace and
/// control characters, and folds case.
fn fold_segment(segment: &str) -> String {
    let end = segment.find([';', '?', '#', '\0']).unwrap_or(segment.len());
    let kept = segment
        .get(..end)
        .unwrap_or(segment)
        .trim_matches(|c: char| c.is_whitespace() || c.is_control());
    fold_case(kept)
}

fn push_segment(out: &mut Vec<String>, segment: String, resolve_dots: bool) {
    if segment.is_empty() || (resolve_dots && segment == ".") {
        return;
    }
    if resolve_dots && segment == ".." {
        out.pop();
        return;
    }
    out.push(segment);
}

/// Decode everything first, then split: `%2F` becomes a separator and
/// `%2e%2e` a dot segment.
fn normalise_whole(raw: &str) -> Vec<String> {
    let decoded = decode_fully(raw).replace('\\', "/");
    let end = decoded.find(['?', '#', '\0']).unwrap_or(decoded.len());
    let mut out = Vec::new();
    for segment in decoded.get(..end).unwrap_or(&decoded).split('/') {
        push_segment(&mut out, fold_segment(segment), true);
    }
    out
}

/// Split first, then decode each segment: `%2F` stays inside a segment, as
/// routers that match before decoding see it (`/customer/a%2Fb` is customer
/// `a/b` to Express).
fn normalise_by_segment(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    for segment in raw.split(['/', '\\']) {
        if segment == "." || segment == ".." {
            push_segment(&mut out, segment.to_owned(), true);
            continue;
        }
        let decoded = decode_fully(segment);
        let folded = fold_segment(&decoded);
        // A raw segment that folds to nothing (`%20`, `%3Bx`) is still a
        // segment to a router that matches before decoding.
        push_segment(
            &mut out,
            if folded.is_empty() { decoded } else { folded },
            false,
        );
    }
    out
}

fn diagnose_path(raw: &str) -> PathIssue {
    if raw.contains('%') {
        PathIssue::PercentEncoding
    } else if raw.contains(';') {
        PathIssue::PathParameter
    } else if raw.contains("//") {
        PathIssue::EmptySegment
    } else if raw.split('/').any(|s| s == "." || s == "..") {
        PathIssue::DotSegment
    } else if raw.len() > 1 && raw.ends_with('/') {
        PathIssue::TrailingSlash
    } else {
        PathIssue::OtherSpelling
    }
}

fn diagnose_segment(segment: &str, literal: &str) -> PathIssue {
    if segment.contains('%') {
        PathIssue::PercentEncoding
    } else if segment.contains(';') {
        PathIssue::PathParameter
    } else if segment == "." || segment == ".." {
        PathIssue::DotSegment
    } else if fold_case(segment) == fold_case(literal) {
        PathIssue::LetterCase
    } else {
        PathIssue::OtherSpelling
    }
}

fn canonical_capture(segment: &str) -> Result<String, PathIssue> {
    if segment.is_empty() {
        return Err(PathIssue::EmptySegment);
    }
    if segment.contains(';') {
        return Err(PathIssue::PathParameter);
    }
    if segment == "." || segment == ".." {
        return Err(PathIssue::DotSegment);
    }
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| PathIssue::AmbiguousParameter)?;
    let ambiguous = decoded == "."
        || decoded == ".."
        || decoded.trim().is_empty()
        || decoded
            .chars()
            .any(|c| c.is_control() || matches!(c, '%' | '/' | '\\' | ';' | '?' | '#'));
    if ambiguous {
        return Err(PathIssue::AmbiguousParameter);
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// The allocation-free answer for plain paths is the normalisations'.
        #[test]
        fn the_plain_path_fast_path_agrees_with_both_normalisations(
            raw in "/?((customers|CUSTOMERS|Customer|delete_data|DELETE_DATA|x|\\.|\\.\\.|%2F|%2e|;a|ſ|K|~|@|)/?){0,4}",
            pattern in prop::sample::select(vec!["/customers/delete_data", "/customer/{id}", "/x"]),
        ) {
            let p = PathPattern::parse(pattern).unwrap();
            let slow = p.matches_normalised(&normalise_whole(&raw))
                || p.matches_normalised(&normalise_by_segment(&raw));
            prop_assert_eq!(p.is_erasure_like(&raw), slow);
            if let Some(fast) = p.matches_plain(&raw) {
                prop_assert_eq!(fast, slow);
            }
        }
    }

    #[test]
    fn plain_paths_take_the_fast_path_and_others_do_not() {
        let p = PathPattern::parse("/customers/delete_data").unwrap();
        assert_eq!(p.matches_plain("/customers/delete_data"), Some(true));
        assert_eq!(p.matches_plain("//Customers//DELETE_DATA/"), Some(true));
        assert_eq!(p.matches_plain("/customers/delete_data/x"), Some(false));
        assert_eq!(p.matches_plain("/api/v1/things"), Some(false));
        for other in [
            "/customers/delete%5Fdata",
            "/x/../customers/delete_data",
            "/cuſtomers/delete_data",
            "/customers/delete_data;a",
        ] {
            assert_eq!(p.matches_plain(other), None, "{other}");
            assert!(p.is_erasure_like(other), "{other}");
        }
    }

    #[test]
    fn patterns_parse_literals_and_captures() {
        let p = PathPattern::parse("/customer/{customer_id}").unwrap();
        assert_eq!(p.captures().collect::<Vec<_>>(), ["customer_id"]);
    }

    #[test]
    fn malformed_patterns_are_rejected_with_a_reason() {
        for bad in [
            "customer",
            "/",
            "/a//b",
            "/a/",
            "/a/./b",
            "/a/{x",
            "/a/{x}{y}",
            "/a/{1x}",
            "/a/{x}/{x}",
            "/a%20b",
            "/a b",
            "/a;b",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn encoded_slash_inside_a_capture_is_still_erasure_like() {
        let p = PathPattern::parse("/customer/{customer_id}").unwrap();
        assert!(p.is_erasure_like("/customer/a%2Fb"));
        assert_eq!(
            p.canonical_captures("/customer/a%2Fb"),
            Err(PathIssue::AmbiguousParameter)
        );
    }

    #[test]
    fn a_capture_is_decoded_exactly_once() {
        let p = PathPattern::parse("/customer/{customer_id}").unwrap();
        let caps = p.canonical_captures("/customer/a%40b.com").unwrap();
        assert_eq!(caps.get("customer_id").map(String::as_str), Some("a@b.com"));
        assert_eq!(
            p.canonical_captures("/customer/a%2540b"),
            Err(PathIssue::AmbiguousParameter)
        );
    }

    #[test]
    fn unicode_case_tricks_fold_onto_the_pattern() {
        let p = PathPattern::parse("/customers/delete_data").unwrap();
        assert!(p.is_erasure_like("/cuſtomers/delete_data"));
        assert!(p.is_erasure_like("/CUSTOMERS/DELETE_DATA"));
    }
}
