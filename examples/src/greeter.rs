//! The greeter of Pyro's tutorial: `welcome_message(name)` returns `Hi welcome <name>`.

/// The name the greeter server registers under.
pub const NAME: &str = "server";

/// Greets people.
#[rmi::expose]
pub trait Greeter {
    /// `Hi welcome <name>`.
    async fn welcome_message(&self, name: String) -> String;
}

/// The greeter object.
pub struct Server;

impl Greeter for Server {
    async fn welcome_message(&self, name: String) -> String {
        format!("Hi welcome {name}")
    }
}
