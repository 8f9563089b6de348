//! Subjects as NATS names them: dot-separated tokens; in a filter `*`
//! matches one token and a final `>` one or more. The embedded log uses
//! the same names and the same matching as JetStream, so consumers and
//! replays do not care which one stores the events.

/// Longest subject or filter, in bytes.
pub const SUBJECT_LEN_MAX: usize = 256;

/// Why a subject or filter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("a subject has 1 to {SUBJECT_LEN_MAX} bytes")]
    Length,
    #[error("a subject's tokens are non-empty, without spaces or control characters")]
    Token,
    #[error("wildcards (* and a final >) are for filters, not subjects")]
    Wildcard,
}

fn check_tokens(text: &str, wildcards: bool) -> Result<(), SubjectError> {
    if text.is_empty() || text.len() > SUBJECT_LEN_MAX {
        return Err(SubjectError::Length);
    }
    let count = text.split('.').count();
    for (index, token) in text.split('.').enumerate() {
        if token.is_empty() || token.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
            return Err(SubjectError::Token);
        }
        let wildcard = token == "*" || (token == ">" && index + 1 == count);
        if token.contains(['*', '>']) && !(wildcards && wildcard) {
            return Err(if wildcards { SubjectError::Token } else { SubjectError::Wildcard });
        }
    }
    Ok(())
}

/// Checks a subject events are stored under (no wildcards).
pub fn check_subject(subject: &str) -> Result<(), SubjectError> {
    check_tokens(subject, false)
}

/// A checked filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFilter(String);

impl SubjectFilter {
    pub fn new(filter: &str) -> Result<SubjectFilter, SubjectError> {
        check_tokens(filter, true)?;
        Ok(SubjectFilter(filter.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, subject: &str) -> bool {
        let mut tokens = subject.split('.');
        for pattern in self.0.split('.') {
            match (pattern, tokens.next()) {
                (">", Some(_)) => return true,
                ("*", Some(_)) => {}
                (pattern, Some(token)) if pattern == token => {}
                _ => return false,
            }
        }
        tokens.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_nats_does() {
        let all = SubjectFilter::new("game.>").unwrap();
        let events = SubjectFilter::new("game.*.events").unwrap();
        let room = SubjectFilter::new("game.42.>").unwrap();
        let exact = SubjectFilter::new("game.42.events").unwrap();
        assert!(all.matches("game.42.events") && all.matches("game.7.moments"));
        assert!(!all.matches("game"), "> needs one token or more");
        assert!(events.matches("game.42.events") && !events.matches("game.42.moments"));
        assert!(!events.matches("game.42.events.extra") && !events.matches("game.events"));
        assert!(room.matches("game.42.moments") && !room.matches("game.420.moments"));
        assert!(exact.matches("game.42.events") && !exact.matches("game.42.events2"));
    }

    #[test]
    fn bad_subjects_and_filters_are_refused() {
        assert_eq!(check_subject("game.1.events"), Ok(()));
        assert_eq!(check_subject(""), Err(SubjectError::Length));
        assert_eq!(check_subject(&"a".repeat(257)), Err(SubjectError::Length));
        assert_eq!(check_subject("game..events"), Err(SubjectError::Token));
        assert_eq!(check_subject("game.1 .events"), Err(SubjectError::Token));
        assert_eq!(check_subject("game.*.events"), Err(SubjectError::Wildcard));
        assert_eq!(check_subject("game.>"), Err(SubjectError::Wildcard));
        assert!(SubjectFilter::new("game.>.events").is_err(), "> only last");
        assert!(SubjectFilter::new("game.a*").is_err(), "wildcards are whole tokens");
        assert!(SubjectFilter::new(">").is_ok());
    }
}
