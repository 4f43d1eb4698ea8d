#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(name: String) -> String;
}

fn main() {}
