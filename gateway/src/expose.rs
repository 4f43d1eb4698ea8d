//! Which names the gateway exposes: the `--expose` regular expressions, matched whole.

use regex::Regex;

/// The names a gateway may reach: those that match one of the `--expose` regular
/// expressions, whole. With none given, no name is reachable.
///
/// ```
/// let expose = rmi_gateway::Expose::new(&["string|math".to_owned(), "example\\..*".to_owned()])?;
/// assert!(expose.allows("math"));
/// assert!(expose.allows("example.chainTopology.1"));
/// assert!(!expose.allows("mathematics"));
/// assert!(!rmi_gateway::Expose::nothing().allows("math"));
/// # Ok::<(), regex::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Expose(Option<Regex>);

impl Expose {
    /// The names matching one of `patterns` (each anchored at both ends).
    ///
    /// # Errors
    ///
    /// A [`regex::Error`] if a pattern is not a valid regular expression (or together they
    /// make one too large).
    pub fn new(patterns: &[String]) -> Result<Expose, regex::Error> {
        if patterns.is_empty() {
            return Ok(Expose::nothing());
        }
        let alternatives: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
        Regex::new(&format!("^(?:{})$", alternatives.join("|"))).map(|r| Expose(Some(r)))
    }

    /// No name at all.
    pub fn nothing() -> Expose {
        Expose(None)
    }

    /// Whether `name` may be reached.
    pub fn allows(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|regex| regex.is_match(name))
    }
}
