#[rmi::expose]
pub trait Greeter {
    fn welcome_message(&self, name: String) -> String;
}

fn main() {}
