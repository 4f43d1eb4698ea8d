//! [`Error`]: why a value could not be written as serpent, or serpent text could not be read.

/// What went wrong. A reading error names the byte offset in the text where it was found.
///
/// ```
/// let err = rmi_serpent::from_str::<i32>("[1,").unwrap_err();
/// assert!(err.to_string().contains("at byte 3"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a Python literal of the kind serpent writes.
    #[error("invalid serpent at byte {at}: {reason}")]
    Syntax {
        /// Byte offset in the text.
        at: usize,
        /// What was expected or found.
        reason: String,
    },
    /// Containers nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("serpent nests deeper than {limit} levels at byte {at}; flatten the value (Pyro5's own serpent refuses about 500)")]
    TooDeep {
        /// Byte offset of the container that went too deep.
        at: usize,
        /// The limit.
        limit: usize,
    },
    /// The value read does not fit the type asked for, or a type cannot be written (serde's
    /// own messages).
    #[error("{0}")]
    Message(String),
}

impl serde::ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Message(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Message(msg.to_string())
    }
}

/// A `Result` whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
