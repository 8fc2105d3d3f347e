//! Name patterns in token claims: `*` matches any run of characters except `/`, `**` any run
//! at all, everything else itself. `team-*` matches the room `team-blue`; `/topic/chat.*`
//! matches `/topic/chat.en` but not `/topic/chat.en/x`; `/topic/**` matches every topic.

/// Whether `name` matches `pattern`. Runs in O(len(pattern) × len(name)) whatever the stars.
pub fn matches(pattern: &str, name: &str) -> bool {
    let tokens = tokens(pattern.as_bytes());
    let name = name.as_bytes();
    // reachable[j]: the tokens so far can match exactly name[..j].
    let mut reachable = vec![false; name.len() + 1];
    reachable[0] = true;
    for token in tokens {
        let mut next = vec![false; name.len() + 1];
        match token {
            Token::Byte(b) => {
                for j in 0..name.len() {
                    next[j + 1] = reachable[j] && name[j] == b;
                }
            }
            Token::Star { crosses_slash } => {
                let mut open = false;
                for j in 0..=name.len() {
                    open =
                        reachable[j] || (open && j > 0 && (crosses_slash || name[j - 1] != b'/'));
                    next[j] = open;
                }
            }
        }
        reachable = next;
    }
    reachable[name.len()]
}

/// Whether `name` matches any of `patterns`.
pub fn any_matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|pattern| matches(pattern, name))
}

#[derive(Clone, Copy)]
enum Token {
    Byte(u8),
    Star { crosses_slash: bool },
}

fn tokens(pattern: &[u8]) -> Vec<Token> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        if pattern[i] == b'*' {
            let crosses_slash = pattern.get(i + 1) == Some(&b'*');
            i += if crosses_slash { 2 } else { 1 };
            out.push(Token::Star { crosses_slash });
        } else {
            out.push(Token::Byte(pattern[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literals_match_only_themselves() {
        assert!(matches("lobby", "lobby"));
        assert!(!matches("lobby", "lobby2"));
        assert!(!matches("lobby", "lobb"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }

    #[test]
    fn a_star_stays_within_a_segment() {
        assert!(matches("team-*", "team-blue"));
        assert!(matches("team-*", "team-"));
        assert!(!matches("team-*", "teams"));
        assert!(matches("/topic/chat.*", "/topic/chat.en"));
        assert!(!matches("/topic/chat.*", "/topic/chat.en/x"));
        assert!(matches("/topic/*/news", "/topic/eu/news"));
        assert!(!matches("/topic/*/news", "/topic/eu/x/news"));
    }

    #[test]
    fn a_double_star_crosses_segments() {
        assert!(matches("/topic/**", "/topic/a/b/c"));
        assert!(matches("/topic/**", "/topic/"));
        assert!(!matches("/topic/**", "/queue/a"));
        assert!(matches("**", "anything/at/all"));
        assert!(matches("/user/**/inbox", "/user/a/b/inbox"));
    }

    #[test]
    fn many_stars_take_no_exponential_time() {
        let pattern = "*a".repeat(100);
        let name = "a".repeat(199) + "b";
        assert!(!matches(&pattern, &name));
    }
}
