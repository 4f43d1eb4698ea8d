#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: &str) -> String;
}

fn main() {}
