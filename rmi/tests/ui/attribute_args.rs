#[rmi::expose(name = "greeter")]
pub trait Greeter {
    async fn welcome_message(&self, name: String) -> String;
}

fn main() {}
