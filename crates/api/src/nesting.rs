//! A cheap bound on how deeply a YAML or JSON text nests, checked before it is parsed
//! (the YAML parser's cost grows far faster than the input when nesting is deep).

/// The deepest nesting a manifest may have: far beyond any real object.
pub const MAX_DEPTH: usize = 100;

/// An upper estimate of `text`'s nesting: block levels (indentation and `- ` items) plus
/// unclosed flow brackets outside quotes, comments and block scalars.
pub fn depth_exceeds(text: &str, max: usize) -> bool {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut scalar_indent: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(parent) = scalar_indent {
            if indent > parent {
                continue;
            }
            scalar_indent = None;
        }
        if flow == 0 {
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let items = trimmed
            .as_bytes()
            .chunks(2)
            .take_while(|pair| *pair == b"- ")
            .count();
        flow = scan_flow(trimmed, flow);
        if indents.len() + items + flow > max {
            return true;
        }
        let end = trimmed.trim_end();
        if flow == 0
            && ["|", ">", "|-", ">-", "|+", ">+"]
                .iter()
                .any(|s| end.ends_with(s))
        {
            scalar_indent = Some(indent);
        }
    }
    false
}

/// The flow depth after `line`, starting from `depth`.
fn scan_flow(line: &str, mut depth: usize) -> usize {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if previous == ' ' || "[{,:".contains(previous) => quote = Some(c),
                '#' if previous == ' ' => break,
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        previous = c;
    }
    depth
}
