//! Adding what Python's `+` adds, numbers or text: the authenticated message-passing demo
//! (Python's `multiprocessing.connection` with an `authkey`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id the calc server hosts its object under: `rmi:calc@HOST:PORT`.
pub const ID: &str = "calc";

/// The port the calc demo uses unless told otherwise.
pub const PORT: u16 = 25000;

/// What both calc programs take: the key file and the server's address.
#[derive(clap::Args)]
pub struct KeyAndAddress {
    /// The file holding the key (the server's clients must prove it).
    #[arg(long, env = "RMI_KEY_FILE")]
    pub key_file: std::path::PathBuf,
    /// Where the server listens.
    #[command(flatten)]
    pub address: crate::sockets::Address<PORT>,
}

impl KeyAndAddress {
    /// The key in the key file.
    pub fn key(&self) -> Result<rmi::Key, rmi::Error> {
        rmi::Key::from_file(&self.key_file)
    }
}

/// A number or a text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// A whole number.
    Int(i64),
    /// A text.
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Text(text) => f.write_str(text),
        }
    }
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "number",
            Value::Text(_) => "text",
        }
    }
}

/// Why two values do not add up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CalcError {
    /// A number and a text.
    #[error("cannot add a {0} and a {1}")]
    Mismatch(String, String),
    /// The sum does not fit in an `i64`.
    #[error("{0} + {1} does not fit in an i64")]
    Overflow(i64, i64),
}

/// Adds.
#[rmi::expose]
pub trait Calc {
    /// `x + y`: the sum of two numbers, or two texts one after the other.
    async fn add(&self, x: Value, y: Value) -> Result<Value, CalcError>;
}

/// The calc object.
pub struct Calculator;

impl Calc for Calculator {
    async fn add(&self, x: Value, y: Value) -> Result<Value, CalcError> {
        match (x, y) {
            (Value::Int(x), Value::Int(y)) => x
                .checked_add(y)
                .map(Value::Int)
                .ok_or(CalcError::Overflow(x, y)),
            (Value::Text(x), Value::Text(y)) => Ok(Value::Text(x + &y)),
            (x, y) => Err(CalcError::Mismatch(x.kind().into(), y.kind().into())),
        }
    }
}
