use std::borrow::Cow;

#[rmi::expose]
pub trait Greeter {
    async fn welcome_message(&self, name: Cow<'a, str>) -> String;
}

fn main() {}
