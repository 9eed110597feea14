//! The rules every name a partner gives follows (organizations, integrations): pure, shared by browser and server.

/// `name` trimmed, when it has 1 to `max` characters and no line breaks or control characters; otherwise the
/// sentence to show (`empty` when nothing was entered).
pub fn validate(name: &str, max: usize, empty: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(empty.into());
    }
    if name.chars().count() > max {
        return Err(format!("The name is too long: at most {max} characters."));
    }
    if name.chars().any(char::is_control) {
        return Err("The name cannot contain line breaks or control characters.".into());
    }
    Ok(name.to_string())
}

/// The form names are compared in for uniqueness: trimmed and lower-cased (Unicode), identical on both backends.
pub fn key(name: &str) -> String {
    name.trim().to_lowercase()
}
/// `word` with its indefinite article, by its first letter: "a ConnectWise", "an Autotask", "a summary".
pub fn with_article(word: &str) -> String {
    let vowel = word.chars().next().is_some_and(|c| "AEIOUaeiou".contains(c));
    format!("{} {word}", if vowel { "an" } else { "a" })
}
