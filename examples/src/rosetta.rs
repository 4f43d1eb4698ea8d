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
