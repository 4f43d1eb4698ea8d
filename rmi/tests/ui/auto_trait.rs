#[rmi::expose]
pub auto trait Store {}

fn main() {}
