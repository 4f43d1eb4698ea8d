//! An XML-RPC codec (<http://xmlrpc.com/spec.md>): reading a `methodCall`, writing a
//! `methodResponse` or a fault, with values as JSON.
//!
//! Values map as the spec's types allow: `int`/`i4` (and the common `i8` extension) and
//! `double` are numbers, `boolean` a bool, `string` (or untyped text) and `dateTime.iso8601`
//! strings, `base64` an array of byte values, `array` an array, `struct` an object, and the
//! common `nil` extension `null`. Integers that do not fit the spec's 32-bit `int` are written
//! as `i8`, which Python's `xmlrpc.client`, Apache XML-RPC and others read; those above
//! `i64::MAX` (a `u64`) as `double`.
//!
//! Written here rather than with `dxr`, the maintained XML-RPC crates: `dxr` converts between
//! XML-RPC and Rust types known when it is compiled (`TryFromValue`, handlers registered by
//! method name), while the gateway relays calls to objects whose types it learns at run time,
//! so every value would pass through `dxr::Value` on its way to JSON and back; and the
//! gateway must refuse a DOCTYPE and cap nesting before anything is built from a hostile
//! body, which this reader does as it reads. What it covers is tested below against the
//! spec's cases: untyped text is a string, `i4`/`int`/`i8`, `double`, `boolean`, `string`
//! with entities and CDATA, `dateTime.iso8601`, `base64`, `nil`, nested arrays and structs,
//! and faults.

use base64::Engine as _;
use quick_xml::events::Event;
use serde_json::{Map, Number, Value};

/// How deep elements may nest in a request: values nested deeper are refused, so that reading
/// them never exhausts the stack.
const MAX_DEPTH: usize = 128;

/// A parsed `methodCall`.
#[derive(Debug, PartialEq)]
pub struct MethodCall {
    /// The `methodName`.
    pub method: String,
    /// The parameters, in order.
    pub params: Vec<Value>,
}

/// Why a request could not be read: not XML at all, or XML that is not an XML-RPC call.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// Not well-formed XML.
    #[error("{0}")]
    Xml(String),
    /// Well-formed, but not a `methodCall` as the spec has it.
    #[error("{0}")]
    NotACall(String),
}

/// One element of the request: its local name, its child elements, and its text.
#[derive(Debug, Default)]
struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Reads an XML-RPC `methodCall`.
///
/// # Errors
///
/// [`ReadError::Xml`] if `body` is not UTF-8 or not well-formed XML;
/// [`ReadError::NotACall`] if it has a DOCTYPE, nests too deep, or is not a `methodCall`
/// with a method name and well-formed `<param><value>`s.
///
/// ```
/// let call = rmi_gateway::xmlrpc::read_call(
///     b"<?xml version='1.0'?><methodCall><methodName>div</methodName><params>\
///       <param><value><int>8</int></value></param><param><value><i4>4</i4></value></param>\
///       </params></methodCall>",
/// )?;
/// assert_eq!(call.method, "div");
/// assert_eq!(call.params, vec![serde_json::json!(8), serde_json::json!(4)]);
/// # Ok::<(), rmi_gateway::xmlrpc::ReadError>(())
/// ```
pub fn read_call(body: &[u8]) -> Result<MethodCall, ReadError> {
    let root = read_tree(body)?;
    let not_a_call = |what: &str| ReadError::NotACall(what.to_owned());
    if root.name != "methodCall" {
        return Err(not_a_call(&format!(
            "the root element is <{}>, not <methodCall>",
            root.name
        )));
    }
    let method = root
        .child("methodName")
        .ok_or_else(|| not_a_call("<methodCall> has no <methodName>"))?
        .text
        .trim()
        .to_owned();
    if method.is_empty() {
        return Err(not_a_call("the <methodName> is empty"));
    }
    let mut params = Vec::new();
    if let Some(list) = root.child("params") {
        for param in &list.children {
            let value = (param.name == "param")
                .then(|| param.child("value"))
                .flatten()
                .ok_or_else(|| not_a_call("each <param> in <params> holds one <value>"))?;
            params.push(read_value(value).map_err(ReadError::NotACall)?);
        }
    }
    Ok(MethodCall { method, params })
}

/// Parses `body` into a tree of elements, refusing DTDs and nesting past [`MAX_DEPTH`].
fn read_tree(body: &[u8]) -> Result<Element, ReadError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ReadError::Xml(format!("the request is not UTF-8: {e}")))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let xml = |e: &dyn std::fmt::Display| ReadError::Xml(e.to_string());
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| xml(&e))?;
        let finished = match event {
            Event::Start(start) => {
                if open.len() >= MAX_DEPTH {
                    return Err(ReadError::NotACall(format!(
                        "elements nest more than {MAX_DEPTH} deep"
                    )));
                }
                open.push(element(start.local_name().as_ref())?);
                None
            }
            Event::Empty(empty) => Some(element(empty.local_name().as_ref())?),
            Event::End(_) => open.pop(),
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| xml(&e))?;
                append_text(&mut open, &text)?;
                None
            }
            Event::CData(data) => {
                let data =
                    String::from_utf8(data.into_inner().into_owned()).map_err(|e| xml(&e))?;
                append_text(&mut open, &data)?;
                None
            }
            Event::DocType(_) => {
                return Err(ReadError::NotACall(
                    "an XML-RPC request has no DOCTYPE".into(),
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => None,
            Event::Eof => break,
        };
        if let Some(done) = finished {
            match open.last_mut() {
                Some(parent) => parent.children.push(done),
                None if root.is_none() => root = Some(done),
                None => return Err(xml(&"more than one root element")),
            }
        }
    }
    if !open.is_empty() {
        return Err(xml(&format!("<{}> is not closed", open[0].name)));
    }
    root.ok_or_else(|| xml(&"the request is empty"))
}

fn element(name: &[u8]) -> Result<Element, ReadError> {
    let name = std::str::from_utf8(name).map_err(|e| ReadError::Xml(e.to_string()))?;
    Ok(Element {
        name: name.to_owned(),
        ..Element::default()
    })
}

fn append_text(open: &mut [Element], text: &str) -> Result<(), ReadError> {
    match open.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(ReadError::Xml("text outside the root element".into())),
    }
    Ok(())
}

/// Reads a `<value>` element.
fn read_value(value: &Element) -> Result<Value, String> {
    let Some(typed) = value.children.first() else {
        // No type element: a string, as the spec says.
        return Ok(Value::String(value.text.clone()));
    };
    if value.children.len() > 1 {
        return Err("a <value> holds one type element".into());
    }
    let text = typed.text.trim();
    let number = |parsed: Option<Number>| {
        parsed
            .map(Value::Number)
            .ok_or_else(|| format!("<{}>{text}</{}> is not a number", typed.name, typed.name))
    };
    match typed.name.as_str() {
        "int" | "i4" | "i8" => number(text.parse::<i64>().ok().map(Number::from)),
        "double" => number(text.parse::<f64>().ok().and_then(Number::from_f64)),
        "boolean" => match text {
            "1" | "true" => Ok(Value::Bool(true)),
            "0" | "false" => Ok(Value::Bool(false)),
            other => Err(format!("<boolean>{other}</boolean>: a boolean is 0 or 1")),
        },
        "string" => Ok(Value::String(typed.text.clone())),
        "dateTime.iso8601" => Ok(Value::String(text.to_owned())),
        "base64" => {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| format!("<base64> does not decode: {e}"))?;
            Ok(Value::Array(bytes.into_iter().map(Value::from).collect()))
        }
        "nil" => Ok(Value::Null),
        "array" => {
            let data = typed
                .child("data")
                .ok_or("an <array> holds a <data> element")?;
            data.children
                .iter()
                .map(|item| match item.name.as_str() {
                    "value" => read_value(item),
                    other => Err(format!("<data> holds <value> elements, not <{other}>")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "struct" => {
            let mut members = Map::new();
            for member in &typed.children {
                let (Some(name), Some(value)) = (member.child("name"), member.child("value"))
                else {
                    return Err("each <member> of a <struct> holds a <name> and a <value>".into());
                };
                members.insert(name.text.clone(), read_value(value)?);
            }
            Ok(Value::Object(members))
        }
        other => Err(format!("<{other}> is not an XML-RPC type")),
    }
}

/// A `methodResponse` carrying `value`.
///
/// ```
/// let xml = rmi_gateway::xmlrpc::response(&serde_json::json!(["a", 2, true]));
/// assert!(xml.contains("<array><data><value><string>a</string></value>\
///     <value><int>2</int></value><value><boolean>1</boolean></value></data></array>"));
/// ```
pub fn response(value: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse><params><param><value>");
    write_value(&mut out, value);
    out.push_str("</value></param></params></methodResponse>\n");
    out
}

/// A `methodResponse` carrying a fault with `code` and `message`.
///
/// ```
/// let xml = rmi_gateway::xmlrpc::fault(-32601, "no method 'x'");
/// assert!(xml.contains("<name>faultCode</name><value><int>-32601</int></value>"));
/// assert!(xml.contains("<name>faultString</name><value><string>no method 'x'</string>"));
/// ```
pub fn fault(code: i32, message: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse><fault><value>");
    write_value(
        &mut out,
        &serde_json::json!({ "faultCode": code, "faultString": message }),
    );
    out.push_str("</value></fault></methodResponse>\n");
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil/>"),
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Number(n) => {
            let (tag, text) = match (n.as_i64(), n.as_f64()) {
                (Some(i), _) if i32::try_from(i).is_ok() => ("int", i.to_string()),
                (Some(i), _) => ("i8", i.to_string()),
                // Display never uses an exponent, which the spec's `double` does not allow.
                (None, Some(f)) => ("double", f.to_string()),
                (None, None) => ("double", n.to_string()),
            };
            out.push_str(&format!("<{tag}>{text}</{tag}>"));
        }
        Value::String(s) => {
            out.push_str("<string>");
            escape_into(out, s);
            out.push_str("</string>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                out.push_str("<value>");
                write_value(out, item);
                out.push_str("</value>");
            }
            out.push_str("</data></array>");
        }
        Value::Object(members) => {
            out.push_str("<struct>");
            for (name, item) in members {
                out.push_str("<member><name>");
                escape_into(out, name);
                out.push_str("</name><value>");
                write_value(out, item);
                out.push_str("</value></member>");
            }
            out.push_str("</struct>");
        }
    }
}

/// Writes `text` as XML character data. Characters XML 1.0 cannot carry at all (most control
/// characters) become U+FFFD; `\r` is written as a reference, which parsers keep (a literal one
/// they would turn into `\n`).
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// The XML-RPC type a Rust type as written travels as, for `system.methodSignature`.
///
/// ```
/// use rmi_gateway::xmlrpc::type_of;
/// assert_eq!(type_of("i64"), "int");
/// assert_eq!(type_of("Result<i64, MathError>"), "int");
/// assert_eq!(type_of("Vec<String>"), "array");
/// assert_eq!(type_of("Option<f64>"), "double");
/// assert_eq!(type_of("Line"), "struct");
/// ```
pub fn type_of(rust: &str) -> &'static str {
    let rust = rust.trim();
    if rust == "()" {
        return "nil";
    }
    if rust.starts_with('(') || rust.starts_with('[') {
        return "array";
    }
    let (path, args) = match rust.split_once('<') {
        Some((path, rest)) => (path.trim(), rest.strip_suffix('>').unwrap_or(rest)),
        None => (rust, ""),
    };
    let last = path.rsplit("::").next().unwrap_or(path);
    match last {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => "int",
        "f32" | "f64" => "double",
        "bool" => "boolean",
        "String" | "str" | "char" | "PathBuf" => "string",
        "Option" | "Result" | "Box" | "Arc" => type_of(first_argument(args)),
        "Vec" | "VecDeque" | "HashSet" | "BTreeSet" | "Stream" => "array",
        _ => "struct",
    }
}

/// The first of the comma-separated type arguments `args`, whatever they nest.
fn first_argument(args: &str) -> &str {
    let mut depth = 0usize;
    for (at, c) in args.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return &args[..at],
            _ => {}
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(params: &str) -> Result<MethodCall, ReadError> {
        read_call(
            format!("<methodCall><methodName>m</methodName><params>{params}</params></methodCall>")
                .as_bytes(),
        )
    }

    #[test]
    fn every_type_reads_as_json() {
        let read = call(
            "<param><value><i4>-3</i4></value></param>\
             <param><value><double>2.5</double></value></param>\
             <param><value><boolean>1</boolean></value></param>\
             <param><value>untyped &amp; text</value></param>\
             <param><value><string> spaced </string></value></param>\
             <param><value><string><![CDATA[<raw>]]></string></value></param>\
             <param><value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601></value></param>\
             <param><value><base64>aGk=</base64></value></param>\
             <param><value><nil/></value></param>\
             <param><value><array><data><value><int>1</int></value><value>x</value></data></array></value></param>\
             <param><value><struct><member><name>a</name><value><i8>9000000000</i8></value></member></struct></value></param>\
             <param><value><string/></value></param>",
        )
        .unwrap();
        assert_eq!(
            read.params,
            vec![
                json!(-3),
                json!(2.5),
                json!(true),
                json!("untyped & text"),
                json!(" spaced "),
                json!("<raw>"),
                json!("19980717T14:08:55"),
                json!([104, 105]),
                json!(null),
                json!([1, "x"]),
                json!({"a": 9000000000i64}),
                json!(""),
            ]
        );
    }

    #[test]
    fn values_round_trip_through_the_writer() {
        let value = json!({
            "n": [1, -2147483649i64, 0.5, true, null],
            "s": "a < b & \"c\"\r\n\u{1}",
            "nested": {"deep": [[[]]]},
        });
        let xml = response(&value);
        let back = read_tree(xml.as_bytes()).unwrap();
        let read = read_value(
            back.child("params")
                .and_then(|p| p.child("param"))
                .and_then(|p| p.child("value"))
                .unwrap(),
        )
        .unwrap();
        let mut expected = value.clone();
        expected["s"] = json!("a < b & \"c\"\r\n\u{FFFD}");
        assert_eq!(read, expected);
        assert!(xml.contains("<i8>-2147483649</i8>"));
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        assert!(matches!(read_call(b"<methodCall>"), Err(ReadError::Xml(_))));
        assert!(matches!(read_call(b"not xml"), Err(ReadError::Xml(_))));
        assert!(matches!(
            read_call(b"<methodCall></methodCall>"),
            Err(ReadError::NotACall(_))
        ));
        assert!(matches!(
            read_call(b"<methodResponse/>"),
            Err(ReadError::NotACall(_))
        ));
        assert!(matches!(
            call("<param><value><int>x</int></value></param>"),
            Err(ReadError::NotACall(_))
        ));
        assert!(matches!(
            call("<param><value><blob/></value></param>"),
            Err(ReadError::NotACall(_))
        ));
        let dtd = b"<!DOCTYPE x [<!ENTITY a \"b\">]><methodCall><methodName>&a;</methodName></methodCall>";
        assert!(read_call(dtd).is_err());
        let deep = format!(
            "<methodCall><methodName>m</methodName><params><param><value>{}{}</value></param></params></methodCall>",
            "<array><data><value>".repeat(200),
            "</value></data></array>".repeat(200)
        );
        assert!(matches!(
            read_call(deep.as_bytes()),
            Err(ReadError::NotACall(m)) if m.contains("nest")
        ));
    }

    #[test]
    fn a_fault_is_the_specs_struct_of_code_and_string() {
        let xml = fault(-32601, "no method <x> & more");
        let tree = read_tree(xml.as_bytes()).unwrap();
        assert_eq!(tree.name, "methodResponse");
        assert!(tree.child("params").is_none(), "a fault has no params");
        let value = tree.child("fault").and_then(|f| f.child("value")).unwrap();
        assert_eq!(
            read_value(value).unwrap(),
            json!({"faultCode": -32601, "faultString": "no method <x> & more"})
        );
    }

    #[test]
    fn a_call_without_params_has_none() {
        let read =
            read_call(b"<methodCall><methodName>system.listMethods</methodName></methodCall>")
                .unwrap();
        assert_eq!(read.method, "system.listMethods");
        assert!(read.params.is_empty());
    }
}
