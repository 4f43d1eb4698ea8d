//! Reading serpent: the Python literals that `ast.literal_eval` accepts and serpent writes
//! (<https://docs.python.org/3/library/ast.html#ast.literal_eval>), into a [`Value`].
//!
//! A hand-written recursive-descent parser. Every container level is counted against
//! [`MAX_DEPTH`], so hostile text cannot exhaust the stack, and a [`Value`] is never larger
//! than a small multiple of the text it came from.

use crate::error::{Error, Result};
use crate::value::Value;

/// The deepest containers may nest. Python's own parser stops near 200 levels of brackets,
/// and serpent refuses to write more than 500.
pub const MAX_DEPTH: usize = 128;

/// Parses `text`, a whole serpent document (its header line is a comment), into a [`Value`].
pub(crate) fn parse(text: &str) -> Result<Value> {
    let mut parser = Parser {
        text: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let value = parser.value()?;
    parser.skip_blank();
    if parser.at < parser.text.len() {
        return Err(parser.error("text after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Syntax {
            at: self.at,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Skips spaces, line breaks, comments (serpent's header is one) and line continuations.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.at += 1,
                b'\\' if matches!(self.text.get(self.at + 1), Some(b'\n')) => self.at += 2,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_blank();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value> {
        self.skip_blank();
        let Some(c) = self.peek() else {
            return Err(self.error("a value was expected, the text ended"));
        };
        match c {
            b'[' => self.nested(|p| p.items(b']').map(Value::List)),
            b'(' => self.nested(Self::parenthesized),
            b'{' => self.nested(Self::braced),
            b'\'' | b'"' => self.strings(),
            b'-' | b'+' | b'0'..=b'9' | b'.' => self.number_sum(),
            c if c.is_ascii_alphabetic() || c == b'_' => self.word(),
            _ => Err(self.error(format!("unexpected character {:?}", char::from(c)))),
        }
    }

    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Result<Value>) -> Result<Value> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::TooDeep {
                at: self.at,
                limit: MAX_DEPTH,
            });
        }
        self.depth += 1;
        self.at += 1; // the opening bracket
        let value = inner(self);
        self.depth -= 1;
        value
    }

    /// Values separated by commas up to `close`, a trailing comma allowed.
    fn items(&mut self, close: u8) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                return self.close(close).map(|()| items);
            }
        }
    }

    fn close(&mut self, close: u8) -> Result<()> {
        if self.eat(close) {
            Ok(())
        } else {
            Err(self.error(format!("expected ',' or '{}'", char::from(close))))
        }
    }

    /// `()`, `(x)` (just x), `(x,)` and `(x, y)`.
    fn parenthesized(&mut self) -> Result<Value> {
        if self.eat(b')') {
            return Ok(Value::Tuple(Vec::new()));
        }
        let first = self.value()?;
        if self.eat(b')') {
            return Ok(first);
        }
        if !self.eat(b',') {
            return Err(self.error("expected ',' or ')'"));
        }
        let mut items = vec![first];
        items.extend(self.items(b')')?);
        Ok(Value::Tuple(items))
    }

    /// `{}` (a dict), `{k: v, …}` or `{x, …}` (a set).
    fn braced(&mut self) -> Result<Value> {
        if self.eat(b'}') {
            return Ok(Value::Dict(Vec::new()));
        }
        let first = self.value()?;
        if !self.eat(b':') {
            let mut items = vec![first];
            if self.eat(b',') {
                items.extend(self.items(b'}')?);
            } else {
                self.close(b'}')?;
            }
            return Ok(Value::Set(items));
        }
        let mut entries = vec![(first, self.value()?)];
        loop {
            if !self.eat(b',') {
                self.close(b'}')?;
                return Ok(Value::Dict(entries));
            }
            if self.eat(b'}') {
                return Ok(Value::Dict(entries));
            }
            let key = self.value()?;
            if !self.eat(b':') {
                return Err(self.error("expected ':' in a dict"));
            }
            entries.push((key, self.value()?));
        }
    }

    /// `None`, `True`, `False`, `set()`, or a string with a prefix (`b'…'`, `r'…'`).
    fn word(&mut self) -> Result<Value> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.at += 1;
        }
        let word = &self.text[start..self.at];
        if matches!(self.peek(), Some(b'\'' | b'"')) && word.len() <= 2 {
            self.at = start;
            return self.strings();
        }
        match word {
            b"None" => Ok(Value::None),
            b"True" => Ok(Value::Bool(true)),
            b"False" => Ok(Value::Bool(false)),
            b"set" if self.eat(b'(') && self.eat(b')') => Ok(Value::Set(Vec::new())),
            _ => {
                self.at = start;
                Err(self.error(format!(
                    "unexpected name '{}': only literals are allowed",
                    String::from_utf8_lossy(word)
                )))
            }
        }
    }

    /// One or more string literals side by side, joined as Python joins them.
    fn strings(&mut self) -> Result<Value> {
        let mut joined: Option<Value> = None;
        loop {
            self.skip_blank();
            if !self.at_string() {
                break;
            }
            let start = self.at;
            let next = self.string()?;
            joined = Some(match (joined, next) {
                (None, next) => next,
                (Some(Value::Str(mut a)), Value::Str(b)) => {
                    a.push_str(&b);
                    Value::Str(a)
                }
                (Some(Value::Bytes(mut a)), Value::Bytes(b)) => {
                    a.extend(b);
                    Value::Bytes(a)
                }
                _ => {
                    self.at = start;
                    return Err(self.error("cannot join bytes and str literals"));
                }
            });
        }
        joined.ok_or_else(|| self.error("a string was expected"))
    }

    /// Whether a string literal (with an optional prefix) starts here.
    fn at_string(&self) -> bool {
        let rest = &self.text[self.at..];
        let prefix = rest
            .iter()
            .take(2)
            .take_while(|c| matches!(c.to_ascii_lowercase(), b'r' | b'b' | b'u'))
            .count();
        matches!(rest.get(prefix), Some(b'\'' | b'"'))
    }

    fn string(&mut self) -> Result<Value> {
        let (mut raw, mut bytes) = (false, false);
        while let Some(c) = self.peek().filter(|c| !matches!(c, b'\'' | b'"')) {
            match c.to_ascii_lowercase() {
                b'r' => raw = true,
                b'b' => bytes = true,
                _ => {} // u: the default
            }
            self.at += 1;
        }
        let quote = self.text[self.at];
        let triple = self.text[self.at..].starts_with(&[quote; 3]);
        let width = if triple { 3 } else { 1 };
        self.at += width;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("the string is not closed"));
            };
            if c == quote && (!triple || self.text[self.at..].starts_with(&[quote; 3])) {
                self.at += width;
                break;
            }
            if c == b'\n' && !triple {
                return Err(self.error("a line break inside a string"));
            }
            if c == b'\\' && !raw {
                self.escape(bytes, &mut out)?;
            } else {
                if bytes && !c.is_ascii() {
                    return Err(self.error("a bytes literal holds ASCII characters only"));
                }
                out.push(c);
                self.at += 1;
            }
        }
        if bytes {
            return Ok(Value::Bytes(out));
        }
        // The text was UTF-8 and escapes push UTF-8, so this holds; checked all the same.
        String::from_utf8(out)
            .map(Value::Str)
            .map_err(|_| self.error("the string is not UTF-8"))
    }

    /// One backslash escape, as Python reads it in a str or a bytes literal.
    fn escape(&mut self, bytes: bool, out: &mut Vec<u8>) -> Result<()> {
        let Some(&c) = self.text.get(self.at + 1) else {
            return Err(self.error("the string ends in a backslash"));
        };
        self.at += 2;
        let simple = match c {
            b'\n' => Some(None),
            b'\\' => Some(Some(b'\\')),
            b'\'' => Some(Some(b'\'')),
            b'"' => Some(Some(b'"')),
            b'a' => Some(Some(0x07)),
            b'b' => Some(Some(0x08)),
            b'f' => Some(Some(0x0c)),
            b'n' => Some(Some(b'\n')),
            b'r' => Some(Some(b'\r')),
            b't' => Some(Some(b'\t')),
            b'v' => Some(Some(0x0b)),
            _ => None,
        };
        if let Some(byte) = simple {
            out.extend(byte);
            return Ok(());
        }
        let code = match c {
            b'0'..=b'7' => {
                self.at -= 1;
                self.digits(8, 1, 3)?
            }
            b'x' => self.digits(16, 2, 2)?,
            b'u' if !bytes => self.digits(16, 4, 4)?,
            b'U' if !bytes => self.digits(16, 8, 8)?,
            b'N' if !bytes => return Err(self.error("named escapes (\\N{…}) are not supported")),
            _ => {
                // Python keeps an unknown escape as it is.
                out.extend([b'\\', c]);
                return Ok(());
            }
        };
        if bytes {
            let byte = u8::try_from(code).map_err(|_| self.error("an octal escape over 0o377"))?;
            out.push(byte);
        } else {
            let ch = char::from_u32(code)
                .ok_or_else(|| self.error(format!("escape of U+{code:X}, not a character")))?;
            out.extend(ch.encode_utf8(&mut [0; 4]).as_bytes());
        }
        Ok(())
    }

    /// Between `min` and `max` digits of `radix`, as a number.
    fn digits(&mut self, radix: u32, min: usize, max: usize) -> Result<u32> {
        let start = self.at;
        let mut code: u32 = 0;
        while self.at - start < max {
            let Some(d) = self.peek().and_then(|c| char::from(c).to_digit(radix)) else {
                break;
            };
            code = code * radix + d;
            self.at += 1;
        }
        if self.at - start < min {
            return Err(self.error(format!("an escape needs {min} digits")));
        }
        Ok(code)
    }

    /// A number, or a sum of a real and an imaginary number (`(1.5+2j)`, as serpent writes a
    /// complex), with signs.
    fn number_sum(&mut self) -> Result<Value> {
        let first = self.signed_number()?;
        self.skip_blank();
        let (Some(op @ (b'+' | b'-')), Value::Int(_) | Value::Float(_)) = (self.peek(), &first)
        else {
            return Ok(first);
        };
        self.at += 1;
        self.skip_blank();
        let Value::Complex(_, im) = self.number()? else {
            return Err(self.error("only an imaginary number may be added to a number"));
        };
        let re = as_float(&first);
        Ok(Value::Complex(re, if op == b'-' { -im } else { im }))
    }

    fn signed_number(&mut self) -> Result<Value> {
        self.skip_blank();
        match self.peek() {
            Some(b'-') => {
                self.at += 1;
                negate(self.signed_number()?).ok_or_else(|| self.error("cannot negate this"))
            }
            Some(b'+') => {
                self.at += 1;
                self.signed_number()
            }
            _ => self.number(),
        }
    }

    /// An unsigned int, float or imaginary literal.
    fn number(&mut self) -> Result<Value> {
        let start = self.at;
        while self.peek().is_some_and(|c| {
            c.is_ascii_alphanumeric()
                || c == b'_'
                || c == b'.'
                || (matches!(c, b'+' | b'-')
                    && matches!(self.text[self.at - 1].to_ascii_lowercase(), b'e')
                    && !is_radix_prefixed(&self.text[start..self.at]))
        }) {
            self.at += 1;
        }
        let literal = std::str::from_utf8(&self.text[start..self.at])
            .expect("ASCII")
            .replace('_', "");
        let error = || Error::Syntax {
            at: start,
            reason: format!("'{literal}' is not a number"),
        };
        if literal.is_empty() {
            return Err(self.error("a number was expected"));
        }
        if let Some(imag) = literal.strip_suffix(['j', 'J']) {
            return imag
                .parse()
                .map(|im| Value::Complex(0.0, im))
                .map_err(|_| error());
        }
        if let Some(int) = parse_int(&literal) {
            return int.map(Value::Int).ok_or_else(|| Error::Syntax {
                at: start,
                reason: format!("the integer {literal} is beyond what this reader holds (i128)"),
            });
        }
        if literal.bytes().all(|c| c.is_ascii_digit()) {
            return Err(error()); // a decimal with a leading zero, as Python refuses
        }
        let valid = literal
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
        match literal.parse::<f64>() {
            Ok(f) if valid => Ok(Value::Float(f)),
            _ => Err(error()),
        }
    }
}

fn is_radix_prefixed(literal: &[u8]) -> bool {
    literal.len() >= 2 && literal[0] == b'0' && literal[1].is_ascii_alphabetic()
}

/// An integer literal: `Some(None)` if it is one too large to hold, `None` if it is not an
/// integer literal at all.
fn parse_int(literal: &str) -> Option<Option<i128>> {
    let (digits, radix) = match literal.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => (&literal[2..], 16),
        Some("0o") => (&literal[2..], 8),
        Some("0b") => (&literal[2..], 2),
        _ => (literal, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Python refuses leading zeros on a decimal, except for zero itself.
    if radix == 10
        && digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().any(|c| c != b'0')
    {
        return None;
    }
    Some(i128::from_str_radix(digits, radix).ok())
}

fn negate(value: Value) -> Option<Value> {
    match value {
        Value::Int(i) => i.checked_neg().map(Value::Int),
        Value::Float(f) => Some(Value::Float(-f)),
        Value::Complex(re, im) => Some(Value::Complex(-re, -im)),
        _ => None,
    }
}

fn as_float(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn scalars() {
        assert_eq!(p("# serpent utf-8 python3.2\nNone"), Value::None);
        assert_eq!(p("True"), Value::Bool(true));
        assert_eq!(p("-12"), Value::Int(-12));
        assert_eq!(p("0x1F"), Value::Int(31));
        assert_eq!(p("1_000"), Value::Int(1000));
        assert_eq!(p("2.5e-3"), Value::Float(0.0025));
        assert_eq!(p("1e30000"), Value::Float(f64::INFINITY));
        assert_eq!(p("-1e30000"), Value::Float(f64::NEG_INFINITY));
        assert_eq!(p("(1.5+2.0j)"), Value::Complex(1.5, 2.0));
        assert_eq!(p("(-0.0-1j)"), Value::Complex(-0.0, -1.0));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(p(r"'a\'b\n\x41\u00e9\U0001F600'"), Value::from("a'b\nAé😀"));
        assert_eq!(p(r#""it's""#), Value::from("it's"));
        assert_eq!(p("'ab' \"cd\""), Value::from("abcd"));
        assert_eq!(p(r"b'\x00\xff'"), Value::Bytes(vec![0, 255]));
        assert_eq!(p(r"r'\n'"), Value::from("\\n"));
        assert_eq!(p("'''a\nb'''"), Value::from("a\nb"));
        assert_eq!(p("'é'"), Value::from("é"));
    }

    #[test]
    fn containers() {
        assert_eq!(p("()"), Value::Tuple(vec![]));
        assert_eq!(p("(1,)"), Value::Tuple(vec![Value::Int(1)]));
        assert_eq!(p("(1)"), Value::Int(1));
        assert_eq!(
            p("[1, [2,],]"),
            Value::List(vec![Value::Int(1), Value::List(vec![Value::Int(2)])])
        );
        assert_eq!(p("{1,2}"), Value::Set(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(p("set()"), Value::Set(vec![]));
        assert_eq!(p("{}"), Value::Dict(vec![]));
        assert_eq!(
            p("{'a':1,(1,2):None,}"),
            Value::Dict(vec![
                (Value::from("a"), Value::Int(1)),
                (
                    Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                    Value::None
                ),
            ])
        );
    }

    #[test]
    fn what_is_refused_says_where() {
        for (text, at) in [
            ("[1,", 3),
            ("foo", 0),
            ("'abc", 4),
            ("1 2", 2),
            ("{1:}", 3),
            ("01", 0),
        ] {
            match parse(text) {
                Err(Error::Syntax { at: got, .. }) => assert_eq!(got, at, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(parse(&"9".repeat(50)), Err(Error::Syntax { .. })));
        assert!(parse("__import__('os')").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing_further() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse(&deep),
            Err(Error::TooDeep {
                at: MAX_DEPTH,
                limit: MAX_DEPTH
            })
        );
        let ok = format!(
            "{}{}",
            "(".repeat(MAX_DEPTH - 1) + "[",
            "]".to_owned() + &")".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
    }
}
