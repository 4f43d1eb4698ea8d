// Every problem of a trait is reported in one build, not only the first.
#[rmi::expose]
pub trait Greeter {
    const GREETING: &'static str;
    fn welcome_message(&self, name: &str) -> String;
    async fn rename(&mut self, name: String);
    async fn uri(&self) -> String;
}

fn main() {}
