//! ConnectWise's `conditions` query language, as far as the sandbox needs it: `field op value` with the operators
//! `= != < <= > >= contains like not like in not in`, `and`/`or` (and binds tighter) and parentheses; string values in
//! double quotes (`\"` escapes), `*` as the `like` wildcard, numbers, `true`/`false`/`null`, `[dates]`; references
//! with `/` (`board/name`). Strings compare without case, as on ConnectWise's SQL Server.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare { field: Vec<String>, op: Op, value: Literal },
    In { field: Vec<String>, values: Vec<Literal>, negated: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
    Contains,
    NotContains,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Date(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Date(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a string value is missing its closing quote".into()),
                        Some('\\') => {
                            if let Some(next) = chars.get(i + 1) {
                                s.push(*next);
                            }
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            s.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']').ok_or("a date is missing its closing ]")?;
                tokens.push(Token::Date(chars[i + 1..i + end].iter().collect()));
                i += end + 1;
            }
            '=' => {
                tokens.push(Token::Op("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op("!="));
                i += 2;
            }
            '<' | '>' => {
                let with_eq = chars.get(i + 1) == Some(&'=');
                tokens.push(Token::Op(match (c, with_eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    ('>', true) => ">=",
                    _ => ">",
                }));
                i += if with_eq { 2 } else { 1 };
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                tokens.push(Token::Num(text.parse().map_err(|_| format!("{text} is not a number"))?));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '/' | '.')) {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err("a parenthesis is not closed".into());
            }
            return Ok(inner);
        }
        let field = match self.next() {
            Some(Token::Ident(name)) => name.split('/').map(str::to_string).collect::<Vec<_>>(),
            other => return Err(format!("expected a field name, found {other:?}")),
        };
        let negated = if self.keyword("not") {
            self.pos += 1;
            true
        } else {
            false
        };
        let op = match self.next() {
            Some(Token::Op("=")) if !negated => Op::Eq,
            Some(Token::Op("!=")) if !negated => Op::Ne,
            Some(Token::Op("<")) if !negated => Op::Lt,
            Some(Token::Op("<=")) if !negated => Op::Le,
            Some(Token::Op(">")) if !negated => Op::Gt,
            Some(Token::Op(">=")) if !negated => Op::Ge,
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("like") => {
                if negated {
                    Op::NotLike
                } else {
                    Op::Like
                }
            }
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("contains") => {
                if negated {
                    Op::NotContains
                } else {
                    Op::Contains
                }
            }
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("in") => {
                if self.next() != Some(Token::Open) {
                    return Err("expected ( after in".into());
                }
                let mut values = Vec::new();
                loop {
                    values.push(self.literal()?);
                    match self.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::Close) => break,
                        _ => return Err("expected , or ) in an in list".into()),
                    }
                }
                return Ok(Expr::In { field, values, negated });
            }
            other => return Err(format!("expected an operator after {}, found {other:?}", field.join("/"))),
        };
        Ok(Expr::Compare { field, op, value: self.literal()? })
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::Str(s)),
            Some(Token::Num(n)) => Ok(Literal::Num(n)),
            Some(Token::Date(d)) => Ok(Literal::Date(d)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            other => Err(format!("expected a value (strings in double quotes), found {other:?}")),
        }
    }
}

pub fn parse(input: &str) -> Result<Expr, String> {
    let mut parser = Parser { tokens: tokenize(input)?, pos: 0 };
    let expr = parser.or()?;
    if parser.pos < parser.tokens.len() {
        return Err(format!("unexpected {:?} after the condition", parser.tokens[parser.pos]));
    }
    Ok(expr)
}

/// The value at a `/` path, keys compared without case.
pub fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |current, key| {
        current.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
    })
}

pub fn matches(expr: &Expr, item: &Value) -> bool {
    match expr {
        Expr::And(a, b) => matches(a, item) && matches(b, item),
        Expr::Or(a, b) => matches(a, item) || matches(b, item),
        Expr::In { field, values, negated } => {
            let found = values.iter().any(|v| compare(lookup(item, field), Op::Eq, v));
            found != *negated
        }
        Expr::Compare { field, op, value } => compare(lookup(item, field), *op, value),
    }
}

fn compare(actual: Option<&Value>, op: Op, expected: &Literal) -> bool {
    use std::cmp::Ordering;
    let actual = actual.unwrap_or(&Value::Null);
    let ordering: Option<Ordering> = match (actual, expected) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (_, Literal::Null) | (Value::Null, _) => None,
        (Value::String(a), Literal::Str(b) | Literal::Date(b)) => match op {
            Op::Like => return glob(&a.to_lowercase(), &b.to_lowercase()),
            Op::NotLike => return !glob(&a.to_lowercase(), &b.to_lowercase()),
            Op::Contains => return a.to_lowercase().contains(&b.to_lowercase()),
            Op::NotContains => return !a.to_lowercase().contains(&b.to_lowercase()),
            _ => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        },
        (Value::Number(a), Literal::Num(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ordering) {
        (Op::Ne, None) => !matches!(expected, Literal::Null) || !actual.is_null(),
        (_, None) => false,
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        (Op::Like | Op::Contains, Some(o)) => o == Ordering::Equal,
        (Op::NotLike | Op::NotContains, Some(o)) => o != Ordering::Equal,
    }
}

/// `*` matches any run of characters (also `%`, as SQL's LIKE).
fn glob(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut t, mut p) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '*' || pattern[p] == '%') {
            star = Some(p);
            mark = t;
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            t += 1;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*' || *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(conditions: &str, item: &Value) -> bool {
        matches(&parse(conditions).expect("parses"), item)
    }

    #[test]
    fn evaluates_manage_conditions() {
        let acme = json!({"id": 2, "name": "Acme Corporation", "status": {"name": "Active"}, "deleted": false});
        assert!(check(r#"name="Acme Corporation""#, &acme));
        assert!(check(r#"name="acme corporation""#, &acme), "case-insensitive");
        assert!(!check(r#"name="Acme""#, &acme));
        assert!(check(r#"name like "Acme*""#, &acme));
        assert!(check(r#"name like "*corp*""#, &acme));
        assert!(!check(r#"name not like "*corp*""#, &acme));
        assert!(check(r#"name contains "Corp" and id=2"#, &acme));
        assert!(check(r#"id > 1 and id <= 2 and status/name="Active""#, &acme));
        assert!(check(r#"(name="x" or name="Acme Corporation") and deleted=false"#, &acme));
        assert!(check(r#"id in (1, 2, 3)"#, &acme));
        assert!(check(r#"id not in (5)"#, &acme));
        assert!(check(r#"name="Globex, Inc." or id != 3"#, &acme));
        assert!(check(r#"name="say \"hi\"" or id=2"#, &acme));
        assert!(check(r#"missing=null"#, &acme));
        assert!(parse(r#"name="unterminated"#).is_err());
        assert!(parse(r#"name "x""#).is_err());
        assert!(parse(r#"name = "x" trailing"#).is_err());
    }
}
