#[rmi::expose]
pub struct Greeter {
    name: String,
}

fn main() {}
