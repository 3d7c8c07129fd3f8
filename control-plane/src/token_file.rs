//! Static bearer tokens (`skiff server --token-auth-file FILE`), in Kubernetes' format: CSV lines
//! `token,user,uid[,"group1,group2"]`, blank lines and `#` comments skipped. The file is read
//! once, at start; a bearer token found there authenticates as its user. Tokens are kept only
//! as SHA-256 digests and compared in constant time.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::identity::UserInfo;

/// The users of a token file, by token digest.
#[derive(Debug, Default)]
pub struct StaticTokens {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    digest: [u8; 32],
    user: UserInfo,
}

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {}, line {line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: LineError,
    },
}

/// What is wrong with one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("expected at least 3 columns (token, user name, uid), found {0}")]
    TooFewColumns(usize),
    #[error("the token is empty")]
    EmptyToken,
    #[error("the user name is empty")]
    EmptyUser,
    #[error("a quoted field is not closed")]
    UnclosedQuote,
    #[error("this token is already on line {0}")]
    DuplicateToken(usize),
}

impl StaticTokens {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<StaticTokens, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        StaticTokens::parse(&text).map_err(|(line, reason)| TokenFileError::Line {
            path: path.to_path_buf(),
            line,
            reason,
        })
    }

    /// Parses a token file's text; an error names the (1-based) line.
    pub fn parse(text: &str) -> Result<StaticTokens, (usize, LineError)> {
        let mut entries = Vec::new();
        let mut lines_of = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line).map_err(|e| (number, e))?;
            if let Some(i) = entries
                .iter()
                .position(|e: &Entry| e.digest == entry.digest)
            {
                return Err((number, LineError::DuplicateToken(lines_of[i])));
            }
            entries.push(entry);
            lines_of.push(number);
        }
        Ok(StaticTokens { entries })
    }

    /// The user `token` authenticates as, if it is in the file. Every entry is compared, in
    /// constant time, so the time taken does not tell how much of a token was right.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let digest = digest(token);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(&entry.user);
            }
        }
        found.cloned()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_line(line: &str) -> Result<Entry, LineError> {
    let fields = csv_fields(line)?;
    if fields.len() < 3 {
        return Err(LineError::TooFewColumns(fields.len()));
    }
    if fields[0].is_empty() {
        return Err(LineError::EmptyToken);
    }
    if fields[1].is_empty() {
        return Err(LineError::EmptyUser);
    }
    let groups = fields
        .get(3)
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut user = UserInfo::authenticated(fields[1].clone(), groups);
    user.uid = Some(fields[2].clone()).filter(|uid| !uid.is_empty());
    Ok(Entry {
        digest: digest(&fields[0]),
        user,
    })
}

/// The fields of one CSV line: commas separate, a field in double quotes may hold commas, and
/// `""` inside quotes is one quote; spaces before a field are dropped (as Go's
/// `csv.Reader{TrimLeadingSpace: true}` that Kubernetes reads this file with).
fn csv_fields(line: &str) -> Result<Vec<String>, LineError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(LineError::UnclosedQuote),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            // Anything between the closing quote and the next comma is kept, as text.
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AUTHENTICATED_GROUP;

    const FILE: &str = "# static tokens\n\
        \n\
        s3cr3t,alice,u-1,\"dev,ops\"\n\
        t0k3n,bob,u-2\n\
        \"q,uoted\",carol,,solo\n";

    #[test]
    fn lines_give_users_with_their_groups() {
        let tokens = StaticTokens::parse(FILE).expect("parse");
        assert_eq!(tokens.entries.len(), 3);
        let alice = tokens.authenticate("s3cr3t").expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid.as_deref(), Some("u-1"));
        assert_eq!(alice.groups, ["dev", "ops", AUTHENTICATED_GROUP]);
        let bob = tokens.authenticate("t0k3n").expect("bob");
        assert_eq!(bob.groups, [AUTHENTICATED_GROUP]);
        let carol = tokens.authenticate("q,uoted").expect("carol");
        assert_eq!((carol.name.as_str(), carol.uid), ("carol", None));
        assert_eq!(carol.groups, ["solo", AUTHENTICATED_GROUP]);
    }

    #[test]
    fn unknown_and_partial_tokens_authenticate_no_one() {
        let tokens = StaticTokens::parse(FILE).expect("parse");
        for wrong in ["", "s3cr3", "s3cr3t ", "S3CR3T", "s3cr3tX", "alice"] {
            assert_eq!(tokens.authenticate(wrong), None, "{wrong:?}");
        }
        assert!(StaticTokens::default().authenticate("s3cr3t").is_none());
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let cases = [
            ("a,b,c\nonly,two\n", 2, LineError::TooFewColumns(2)),
            ("# c\n\n,bob,u\n", 3, LineError::EmptyToken),
            ("t,,u\n", 1, LineError::EmptyUser),
            ("t,bob,u,\"g1,g2\n", 1, LineError::UnclosedQuote),
            ("t,bob,u\nx,y,z\nt,eve,v\n", 3, LineError::DuplicateToken(1)),
        ];
        for (text, line, reason) in cases {
            assert_eq!(
                StaticTokens::parse(text).expect_err(text),
                (line, reason),
                "{text:?}"
            );
        }
    }

    #[test]
    fn quotes_escape_quotes_and_leading_spaces_are_dropped() {
        assert_eq!(
            csv_fields(r#"a, "b ""x"" c",d"#).expect("fields"),
            ["a", r#"b "x" c"#, "d"]
        );
        assert_eq!(csv_fields("a,,").expect("fields"), ["a", "", ""]);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = StaticTokens::load(Path::new("/nonexistent/tokens.csv")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/tokens.csv"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "good,u,1\nbad\n").expect("write");
        let err = StaticTokens::load(&path).expect_err("bad line");
        let text = err.to_string();
        assert!(
            text.contains("tokens.csv") && text.contains("line 2"),
            "{text}"
        );
    }
}
