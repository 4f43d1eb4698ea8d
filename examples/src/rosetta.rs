//! Two objects in one server, with a typed remote error: the Rosetta Code "Distributed
//! programming" Pyro variant.

use serde::{Deserialize, Serialize};

/// The name of the string object.
pub const STRING: &str = "string";
/// The name of the math object.
pub const MATH: &str = "math";

/// Text tools.
#[rmi::expose]
pub trait StringTools {
    /// `text` in capitals.
    async fn make_upper(&self, text: String) -> String;
}

/// Arithmetic that can fail.
#[rmi::expose]
pub trait Math {
    /// `a / b`, or why not.
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
}

/// Why a division failed: it travels to the caller typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MathError {
    /// The divisor was 0.
    #[error("division by zero: {dividend} / 0")]
    DivisionByZero {
        /// What was to be divided.
        dividend: i64,
    },
    /// The quotient does not fit in an `i64` (`i64::MIN / -1`).
    #[error("overflow: {dividend} / {divisor} does not fit in an i64")]
    Overflow {
        /// What was to be divided.
        dividend: i64,
        /// By what.
        divisor: i64,
    },
}

/// The string object.
pub struct StringServer;

impl StringTools for StringServer {
    async fn make_upper(&self, text: String) -> String {
        text.to_uppercase()
    }
}

/// The math object.
pub struct MathServer;

impl Math for MathServer {
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        if b == 0 {
            return Err(MathError::DivisionByZero { dividend: a });
        }
        a.checked_div(b).ok_or(MathError::Overflow {
            dividend: a,
            divisor: b,
        })
    }
}

/// The name of the XML-RPC handler object.
pub const HANDLER: &str = "handler";

/// The Rosetta Code XML-RPC variant's handler (`MyHandlerInstance` and `foo_function`): what
/// its client calls through the HTTP gateway, as `rpc.echo(…)` and `rpc.div(8, 4)`.
#[rmi::expose]
pub trait Handler {
    /// Method for returning data got from client.
    async fn echo(&self, data: String) -> String;
    /// Method for divide 2 numbers.
    async fn div(&self, num1: i64, num2: i64) -> Result<i64, MathError>;
    /// A function (not an instance method).
    async fn foo_function(&self) -> bool;
}

/// The XML-RPC handler object.
pub struct HandlerServer;

impl Handler for HandlerServer {
    async fn echo(&self, data: String) -> String {
        format!("Server responded: {data}")
    }

    async fn div(&self, num1: i64, num2: i64) -> Result<i64, MathError> {
        // The same arithmetic, and the same typed error, as the `math` object.
        MathServer.div(num1, num2).await
    }

    async fn foo_function(&self) -> bool {
        true
    }
}
