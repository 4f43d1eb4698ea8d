#[rmi::expose]
pub trait Greeter {
    async fn name(&self) -> &'static str;
}

fn main() {}
