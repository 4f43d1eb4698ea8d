#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: impl Into<String>) -> String;
}

fn main() {}
