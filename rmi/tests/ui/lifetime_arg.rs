#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: std::borrow::Cow<'a, str>) -> String;
}

fn main() {}
