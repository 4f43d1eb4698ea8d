#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: String) -> String {
        format!("Hi welcome {name}")
    }
}

fn main() {}
